"""Spectral indices of Sentinel-2 reflectances, and the mining-disturbance score 0..1.

Pure functions: arrays in, arrays out, no files. The index formulas work on numpy,
dask and xarray arrays alike; the score works on numpy arrays of one tile (a halo
around it lets :func:`river_corridor` see water just outside the tile).

Reflectances are surface reflectance (Level-2A, bottom of atmosphere) as fractions,
typically 0..1 (digital number x 1e-4, plus the -0.1 offset of processing baseline
04.00 and later). Band names are Sentinel-2 MSI bands: B02 blue (490 nm), B03 green
(560 nm), B04 red (665 nm), B08 near infrared (842 nm), B11 short-wave infrared
(1610 nm). Every index is dimensionless in -1..1, NaN where its denominator is 0.

How the score works (see :func:`disturbance_score`)
---------------------------------------------------
A period's pixel is compared with the *baseline* period, the state before mining:

- each clear observation of the period is paired with the baseline's clear
  observation nearest in season (same day of year within ``season_window_days``:
  anniversary-date change detection), so that seasonal greening cancels out even when
  clouds hid one season in one year (:func:`geo.composite.season_matched`). The NDVI
  and BSI of the paired observations and of their partners are each reduced to a
  per-pixel median composite;
- **vegetation loss** is the partners' composite NDVI minus the period's paired
  composite NDVI; **bare-soil gain** is the period's composite BSI minus the partners'.
  A pixel with no pair within the window falls back to the cautious comparison: the
  baseline's least green NDVI (its dry-season state) and most bare BSI against the
  period's composite, so greening alone can never look like loss;
- the loss and gain of each pixel are replaced by the median of its 3 x 3
  neighbourhood (:func:`nan_median_filter`): a pit is a blob of many pixels while sensor
  noise changes from pixel to pixel, so this halves the noise and keeps the pit's edges;
- each difference goes through a linear ramp to 0..1 and the score is
  ``min(1, 0.6 * vegetation loss + 0.6 * bare-soil gain)``: either signal at full
  strength alone, or both at half strength, reach 0.6. Medians need the pixel to be
  disturbed on at least half of the period's clear dates (persistence), which also
  outvotes a single bad observation;
- **water** (:func:`open_water`: MNDWI or NDWI above 0): water seen on any clear
  baseline date (rivers, lakes, floods) is not disturbance (score 0). A *river corridor*
  is that water grown by ``corridor_m``; inside it, ground that was bare in the baseline
  (sandbars) or is water now (a river that moved or flooded) scores 0 too. New water
  outside the corridor on ground that was vegetated is a pit pond: its score is the
  vegetation loss alone (water is not bare soil, so BSI cannot see it);
- a working that existed in the baseline was bare then and shows no change; when it
  grows, its new edge is active and touches the old floor, so active pixels spread
  through ground that is bare on every clear date (or is a new pond) for up to
  ``grow_m`` (:func:`grow_into_workings`); isolated bare ground (rock) stays inactive;
- pixels never seen clear in the period or in the baseline are NaN, never 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from geo.composite import nan_max, nan_median, nan_min

#: Band order of every stack this module takes: ``(date, band, row, column)``.
STACK_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11")
BLUE, GREEN, RED, NIR, SWIR1 = range(len(STACK_BANDS))


def normalized_difference(a, b):
    """``(a - b) / (a + b)``, NaN where ``a + b`` is 0 (numpy, dask or xarray arrays)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        numerator = a - b
        denominator = a + b
        ratio = numerator / denominator
    if hasattr(ratio, "where") and not isinstance(ratio, np.ndarray):  # xarray keeps its coordinates
        return ratio.where(denominator != 0)
    if isinstance(ratio, np.ndarray):  # in place: these arrays are whole tiles of every date
        ratio[denominator == 0] = np.nan
        return ratio
    return np.where(denominator != 0, ratio, np.nan).astype(np.result_type(ratio, np.float32))


def ndvi(nir, red):
    """Normalized Difference Vegetation Index, ``(B08 - B04) / (B08 + B04)``.

    Rouse, J. W., Haas, R. H., Schell, J. A. and Deering, D. W. (1974), *Monitoring
    vegetation systems in the Great Plains with ERTS*, NASA SP-351, 309-317; the "NDVI"
    entry of Awesome Spectral Indices (Montero et al. 2023, doi:10.1038/s41597-023-02096-0,
    the catalogue that ``spyndex`` implements): ``(N - R) / (N + R)``.

    Parameters
    ----------
    nir, red:
        Surface reflectance of B08 (842 nm) and B04 (665 nm).
    """
    return normalized_difference(nir, red)


def bsi(blue, red, nir, swir1):
    """Bare Soil Index, ``((B11 + B04) - (B08 + B02)) / ((B11 + B04) + (B08 + B02))``.

    Rikimaru, A., Roy, P. S. and Miyatake, S. (2002), *Tropical forest cover density
    mapping*, Tropical Ecology 43(1), 39-47; the "BI" (Bare Soil Index) entry of Awesome
    Spectral Indices: ``((S1 + R) - (N + B)) / ((S1 + R) + (N + B))``. High over bare soil
    and gravel (SWIR and red bright), low over vegetation (NIR bright) and water.

    Parameters
    ----------
    blue, red, nir, swir1:
        Surface reflectance of B02, B04, B08 and B11 (1610 nm).
    """
    return normalized_difference(swir1 + red, nir + blue)


def mndwi(green, swir1):
    """Modified Normalized Difference Water Index, ``(B03 - B11) / (B03 + B11)``.

    Xu, H. (2006), *Modification of normalised difference water index (NDWI) to enhance
    open water features in remotely sensed imagery*, International Journal of Remote
    Sensing 27(14), 3025-3033, doi:10.1080/01431160600589179 (Awesome Spectral Indices
    "MNDWI": ``(G - S1) / (G + S1)``). Positive over open water, including turbid pit
    ponds; negative over soil and vegetation.

    Parameters
    ----------
    green, swir1:
        Surface reflectance of B03 (560 nm) and B11 (1610 nm).
    """
    return normalized_difference(green, swir1)


def ndwi(green, nir):
    """Normalized Difference Water Index, ``(B03 - B08) / (B03 + B08)``.

    McFeeters, S. K. (1996), *The use of the Normalized Difference Water Index (NDWI) in
    the delineation of open water features*, International Journal of Remote Sensing
    17(7), 1425-1432, doi:10.1080/01431169608948714 (Awesome Spectral Indices "NDWI").
    Not used by the score (MNDWI separates water from bright soil better), kept for users.
    """
    return normalized_difference(green, nir)


def ramp(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 at or below ``low``, 1 at or above ``high``, linear between; NaN stays NaN."""
    return np.clip((np.asarray(values, dtype=np.float32) - np.float32(low)) / np.float32(high - low), 0, 1)


@dataclass(frozen=True)
class ScoreParameters:
    """The settings of the disturbance score; every one is recorded in the output's provenance.

    Attributes
    ----------
    ndvi_drop:
        Vegetation loss (an NDVI difference) mapped to 0 and to 1 by a linear ramp.
    bsi_rise:
        Bare-soil gain (a BSI difference) mapped to 0 and to 1.
    vegetation_weight, bare_weight:
        The score is ``min(1, vegetation_weight * loss + bare_weight * gain)`` of the
        ramped differences. With 0.6 each, either signal at full strength alone scores
        0.6 (above the analysis's 0.5 threshold), and so do both at half strength.
    water_index:
        MNDWI or NDWI above which an observation is open water.
    bare_ndvi:
        A pixel whose greenest baseline observation stays below this NDVI was bare in the
        baseline (sand, rock); inside the river corridor that is a sandbar.
    corridor_m:
        How far (metres) the river corridor reaches beyond the baseline's water.
    cloud_buffer_m:
        How far (metres) cloud and cloud-shadow classes of the SCL are grown before masking.
    season_window_days:
        Largest distance in day of year between an observation and its baseline partner.
    filter_px:
        Radius (pixels) of the spatial median filter of the loss and gain (1: 3 x 3).
    grow_m:
        How far (metres) active pixels spread into connected bare ground
        (:func:`grow_into_workings`); 0 turns that off.
    seed_score, grown_score:
        The score from which a pixel spreads, and the score the ground it spreads to gets.
    pixel_m:
        Pixel size (metres) for :func:`disturbance_score` on whole arrays; the tiled
        build uses its grid's.
    """

    ndvi_drop: tuple[float, float] = (0.06, 0.18)
    bsi_rise: tuple[float, float] = (0.02, 0.10)
    vegetation_weight: float = 0.6
    bare_weight: float = 0.6
    water_index: float = 0.0
    bare_ndvi: float = 0.25
    corridor_m: float = 100.0
    cloud_buffer_m: float = 20.0
    season_window_days: int = 60
    filter_px: int = 1
    grow_m: float = 250.0
    seed_score: float = 0.5
    grown_score: float = 0.6
    pixel_m: float = 10.0

    def to_dict(self) -> dict:
        """The parameters as plain JSON-ready values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def pixels(self, metres: float, pixel_m: float) -> int:
        """A distance in metres as a whole number of pixels of size ``pixel_m`` (rounded up)."""
        return int(np.ceil(metres / pixel_m - 1e-9)) if metres > 0 else 0


@dataclass(frozen=True)
class Baseline:
    """The baseline period's reference state of each pixel (arrays of one shape, row x column).

    Attributes
    ----------
    ndvi_dry:
        Lowest NDVI of the clear observations: the dry-season (least green) state.
    ndvi_green:
        Highest NDVI of the clear observations: the wet-season (greenest) state.
    bsi_bare:
        Highest BSI of the clear observations: the most bare state.
    water_any:
        Open water (:func:`open_water`) on at least one clear date.
    seen:
        At least one clear observation.
    """

    ndvi_dry: np.ndarray
    ndvi_green: np.ndarray
    bsi_bare: np.ndarray
    water_any: np.ndarray
    seen: np.ndarray


@dataclass(frozen=True)
class PeriodState:
    """One period's state of each pixel (arrays of one shape, row x column).

    Attributes
    ----------
    ndvi, bsi:
        Median composites of the indices of all clear observations (NaN where none).
    water:
        Open water on most of the clear dates (:func:`open_water`).
    paired_ndvi, paired_bsi:
        Median composites of the observations that have a baseline partner in season
        (NaN where none has).
    partner_ndvi, partner_bsi:
        Median composites of those partners.
    ndvi_max:
        The greenest clear observation's NDVI: below ``bare_ndvi``, bare all period long.
    water_any:
        Open water on at least one clear date of the period.
    seen:
        At least one clear observation in the period.
    """

    ndvi: np.ndarray
    bsi: np.ndarray
    ndvi_max: np.ndarray
    water: np.ndarray
    paired_ndvi: np.ndarray
    paired_bsi: np.ndarray
    partner_ndvi: np.ndarray
    partner_bsi: np.ndarray
    water_any: np.ndarray
    seen: np.ndarray


def _band(bands: np.ndarray, index: int) -> np.ndarray:
    """One band of reflectances whose third axis from the end is the band (a composite or a stack)."""
    return np.take(bands, index, axis=-3)


def vegetation_and_soil(bands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NDVI and BSI of ``(band, row, column)`` or ``(date, band, row, column)`` reflectances (:data:`STACK_BANDS`)."""
    blue, red, nir, swir1 = (_band(bands, i) for i in (BLUE, RED, NIR, SWIR1))
    return ndvi(nir, red), bsi(blue, red, nir, swir1)


def open_water(green, nir, swir1, threshold: float = 0.0):
    """True where reflectances are open water: MNDWI or NDWI above ``threshold``.

    MNDWI (Xu 2006) separates water from bright soil; NDWI (McFeeters 1996) uses only
    10 m bands, so it also catches water narrower than the 20 m SWIR pixel (a river's
    edge, a small pond) whose B11 is mixed with the bank. NaN is not water.
    """
    with np.errstate(invalid="ignore"):
        return (mndwi(green, swir1) > threshold) | (ndwi(green, nir) > threshold)


def water_of(bands: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """:func:`open_water` of ``(band, row, column)`` or ``(date, band, row, column)`` reflectances."""
    return open_water(_band(bands, GREEN), _band(bands, NIR), _band(bands, SWIR1), threshold)


def baseline_reference(
    stack: np.ndarray, params: ScoreParameters = ScoreParameters(), observed: np.ndarray | None = None
) -> Baseline:
    """The baseline's dry-season, greenest, most bare and water states from its clear observations.

    Parameters
    ----------
    stack:
        Masked reflectances of the baseline's dates, ``(date, band, row, column)`` in the
        band order :data:`STACK_BANDS`, NaN where an observation is unusable.
    params:
        For the water threshold.
    observed:
        :func:`observation_indices` of ``stack``, if the caller has them already.
    """
    observed = observation_indices(stack) if observed is None else observed
    index_ndvi, index_bsi = observed[:, 0], observed[:, 1]
    return Baseline(
        ndvi_dry=nan_min(index_ndvi),
        ndvi_green=nan_max(index_ndvi),
        bsi_bare=nan_max(index_bsi),
        water_any=water_of(stack, params.water_index).any(axis=0),
        seen=np.isfinite(index_ndvi).any(axis=0),
    )


def observation_indices(stack: np.ndarray) -> np.ndarray:
    """NDVI and BSI of every observation: ``(date, 2, row, column)`` from ``(date, band, row, column)``.

    What :func:`geo.composite.season_matched` pairs: two index channels are cheaper to
    pair and to composite than five bands.
    """
    index_ndvi, index_bsi = vegetation_and_soil(stack)
    return np.stack([index_ndvi, index_bsi], axis=1).astype(np.float32)


def period_state(
    stack: np.ndarray,
    paired: np.ndarray | None = None,
    partners: np.ndarray | None = None,
    params: ScoreParameters = ScoreParameters(),
    observed: np.ndarray | None = None,
) -> PeriodState:
    """A period's median composites of NDVI and BSI, its season-paired composites, and its water masks.

    The composites are per-pixel medians of each clear observation's index (an NDVI and
    a BSI median composite); the pixel is water when most of its clear dates are.

    Parameters
    ----------
    stack:
        Masked reflectances of the period's dates, ``(date, band, row, column)`` in the
        band order :data:`STACK_BANDS`; it may hold no date at all.
    paired, partners:
        :func:`geo.composite.season_matched` of :func:`observation_indices` of ``stack``
        against those of the baseline; None when there is nothing to pair with (the
        cautious comparison is used).
    params:
        For the water threshold.
    observed:
        :func:`observation_indices` of ``stack``, if the caller has them already.
    """
    observed = observation_indices(stack) if observed is None else observed
    composite = nan_median(observed)
    water_dates = water_of(stack, params.water_index)
    clear_dates = np.isfinite(observed[:, 0]).sum(axis=0)
    if paired is None or partners is None:
        paired = partners = np.full(observed.shape, np.nan, dtype=np.float32)
    if np.array_equal(np.isfinite(paired[:, 0]), np.isfinite(observed[:, 0])):
        paired_composite = composite  # every observation found a partner: the same composite
    else:
        paired_composite = nan_median(paired)
    partner_composite = nan_median(partners)
    return PeriodState(
        ndvi=composite[0],
        bsi=composite[1],
        ndvi_max=nan_max(observed[:, 0]),
        water=water_dates.sum(axis=0) * 2 > clear_dates,
        paired_ndvi=paired_composite[0],
        paired_bsi=paired_composite[1],
        partner_ndvi=partner_composite[0],
        partner_bsi=partner_composite[1],
        water_any=water_dates.any(axis=0),
        seen=clear_dates > 0,
    )


def river_corridor(water_any: np.ndarray, radius_px: int) -> np.ndarray:
    """Water grown by ``radius_px`` pixels (a disc): where a river's sandbars and moves can be.

    The result is only right at least ``radius_px`` pixels inside the array's edges;
    callers pass a tile with a halo that wide.
    """
    water = np.asarray(water_any, dtype=bool)
    if radius_px <= 0 or not water.any():
        return water.copy()
    offsets = np.arange(-radius_px, radius_px + 1)
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius_px**2
    return ndimage.binary_dilation(water, structure=disc)


#: Pixel classes of :class:`Changes`; BARE is land bare on every clear date of the period.
LAND, POND, RIVER, UNSEEN, BARE = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Changes:
    """A period's per-pixel changes against the baseline, before the spatial filter.

    Attributes
    ----------
    loss:
        Vegetation loss, an NDVI difference (NaN on river and unseen pixels).
    gain:
        Bare-soil gain, a BSI difference (NaN on river and unseen pixels).
    kind:
        uint8 :data:`LAND`, :data:`BARE` (land bare on every clear date of the period),
        :data:`POND` (new water off the river), :data:`RIVER` (baseline water, sandbar,
        or water inside the corridor) or :data:`UNSEEN`.
    """

    loss: np.ndarray
    gain: np.ndarray
    kind: np.ndarray


def pixel_changes(
    state: PeriodState, baseline: Baseline, corridor: np.ndarray, params: ScoreParameters = ScoreParameters()
) -> Changes:
    """Vegetation loss, bare-soil gain and the river / pond / unseen classes of each pixel.

    Parameters
    ----------
    state:
        The period (:func:`period_state`).
    baseline:
        The baseline (:func:`baseline_reference`), on the same grid.
    corridor:
        The river corridor (:func:`river_corridor` of ``baseline.water_any``).
    params:
        Thresholds.
    """
    paired = np.isfinite(state.paired_ndvi) & np.isfinite(state.partner_ndvi)
    with np.errstate(invalid="ignore"):
        loss = np.where(paired, state.partner_ndvi - state.paired_ndvi, baseline.ndvi_dry - state.ndvi)
        gain = np.where(paired, state.paired_bsi - state.partner_bsi, state.bsi - baseline.bsi_bare)
        sandbar = corridor & (baseline.ndvi_green < params.bare_ndvi)
    river = baseline.water_any | sandbar | (corridor & state.water_any)
    pond = state.water & ~river
    unseen = ~(state.seen & baseline.seen)
    with np.errstate(invalid="ignore"):
        bare = state.ndvi_max < params.bare_ndvi
    kind = np.select([unseen, river, pond, bare], [UNSEEN, RIVER, POND, BARE], LAND).astype(np.uint8)
    hidden = (kind == UNSEEN) | (kind == RIVER)
    return Changes(
        np.where(hidden, np.nan, loss).astype(np.float32), np.where(hidden, np.nan, gain).astype(np.float32), kind
    )


def nan_median_filter(values: np.ndarray, radius_px: int = 1) -> np.ndarray:
    """Median of each pixel's ``(2r + 1)``-square neighbourhood, ignoring NaN; NaN pixels stay NaN.

    The filter works on the last two axes. Its result is right only ``radius_px`` pixels
    inside the array's edges (outside is taken as NaN): callers pass a tile with a halo.
    Pits are blobs of many pixels while sensor noise differs from pixel to pixel, so the
    median keeps a pit's edges and removes most of the noise (about half its standard
    deviation for a 3 x 3 square).
    """
    if radius_px <= 0:
        return np.asarray(values, dtype=np.float32).copy()
    size = 2 * radius_px + 1
    padded = np.pad(
        np.asarray(values, dtype=np.float32),
        [(0, 0)] * (values.ndim - 2) + [(radius_px, radius_px)] * 2,
        constant_values=np.nan,
    )
    rows, cols = values.shape[-2:]
    shifted = np.stack([padded[..., i : i + rows, j : j + cols] for i in range(size) for j in range(size)])
    return np.where(np.isnan(values), np.float32(np.nan), nan_median(shifted))


def score_of_changes(changes: Changes, params: ScoreParameters = ScoreParameters()) -> np.ndarray:
    """The score 0..1 from (filtered) changes: float32, 0 on river pixels, NaN on unseen ones.

    ``min(1, vegetation_weight * ramp(loss) + bare_weight * ramp(gain))`` on land; the
    vegetation loss alone on a pond (water is not bare soil, so BSI cannot see it).
    """
    with np.errstate(invalid="ignore"):
        vegetation_loss = ramp(changes.loss, *params.ndvi_drop)
        bare_gain = ramp(changes.gain, *params.bsi_rise)
        score = np.minimum(params.vegetation_weight * vegetation_loss + params.bare_weight * bare_gain, 1)
    score = np.where(changes.kind == POND, vegetation_loss, score)
    score = np.where(changes.kind == RIVER, 0, score)
    return np.where(changes.kind == UNSEEN, np.nan, score).astype(np.float32)


def filter_changes(changes: Changes, radius_px: int) -> Changes:
    """:func:`nan_median_filter` of the loss and gain of a :class:`Changes` (with a halo of ``radius_px``)."""
    return Changes(nan_median_filter(changes.loss, radius_px), nan_median_filter(changes.gain, radius_px), changes.kind)


def grow_into_workings(score: np.ndarray, kind: np.ndarray, radius_px: int, params: ScoreParameters) -> np.ndarray:
    """Extend active pixels into the bare ground and ponds connected to them, up to ``radius_px`` pixels.

    A pit that existed in the baseline was bare then and is bare now, so no change
    shows there; but when the working grows, its new edge is active and touches the old
    bare floor. Active pixels (score >= ``params.seed_score``) therefore spread, 8-connected,
    through pixels bare on every clear date of the period (:data:`BARE`) or new ponds,
    and those get ``params.grown_score``. Bare ground that touches no new activity (rock,
    old abandoned workings, sandbars, which are river pixels anyway) stays as it was.
    The result is right only ``radius_px`` pixels inside the array's edges.
    """
    if radius_px <= 0:
        return score
    with np.errstate(invalid="ignore"):
        seeds = score >= params.seed_score
    if not seeds.any():
        return score
    room = seeds | (kind == BARE) | (kind == POND)
    grown = ndimage.binary_dilation(seeds, structure=np.ones((3, 3), bool), iterations=radius_px, mask=room)
    with np.errstate(invalid="ignore"):
        return np.where(grown & ~(score >= params.grown_score), np.float32(params.grown_score), score).astype(
            np.float32
        )


def disturbance_score(
    state: PeriodState,
    baseline: Baseline,
    corridor: np.ndarray,
    params: ScoreParameters = ScoreParameters(),
) -> np.ndarray:
    """Mining-disturbance score 0..1 of each pixel of a period against the baseline (one array).

    See the module docstring for the method: :func:`pixel_changes`, then the spatial
    median filter (``params.filter_px``), :func:`score_of_changes` and
    :func:`grow_into_workings` (``params.grow_m`` at ``params.pixel_m``). Pixels that the
    period or the baseline never saw clear are NaN ("not seen"), never 0 ("no activity").
    Tiled callers filter with a halo from the neighbouring tiles instead.

    Returns
    -------
    numpy.ndarray
        float32 scores in 0..1, NaN where not seen.
    """
    changes = pixel_changes(state, baseline, corridor, params)
    score = score_of_changes(filter_changes(changes, params.filter_px), params)
    return grow_into_workings(score, changes.kind, params.pixels(params.grow_m, params.pixel_m), params)
