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
- each pixel also gets the *spread* of its loss and of its gain: the standard deviation
  of its paired differences (or, without pairs, of its observations), and their number.
  It measures the scene's own noise where the pixel is (sensor noise, haze, seasonal
  mismatch of the pairs), which no fixed threshold can know;
- the loss and gain of each pixel are replaced by the median of its 3 x 3
  neighbourhood (:func:`nan_median_filter`): a pit is a blob of many pixels while sensor
  noise changes from pixel to pixel, so this halves the noise and keeps the pit's edges.
  A pixel's noise is the median spread of the same square; a pixel seen on too few
  dates to have a spread (under persistent cloud) takes the nearest ones' within
  ``noise_reach_m`` (:func:`noise_spread`);
- each difference goes through a linear ramp to 0..1 and the score is
  ``min(1, 0.6 * vegetation loss + 0.6 * bare-soil gain)``: either signal at full
  strength alone, or both at half strength, reach 0.6. A ramp starts at its fixed low
  end or at ``noise_z`` standard errors (spread over the square root of the pixel's
  number of values), whichever is higher (:func:`score_of_changes`), so that in noisy
  scenes a change must stand out of the pixel's own noise: on clean scenes the fixed
  ends apply. Medians need the pixel to be disturbed on at least half of the period's
  clear dates (persistence), which also outvotes a single bad observation;
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

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numba
import numpy as np
from scipy import ndimage

from geo.composite import day_of_year_distance, nan_max, nan_median, nan_min, sorted_median

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
    noise_z:
        A ramp's low end is at least this many standard errors of the pixel's change
        (:func:`score_of_changes`); 0 turns the noise adaptation off.
    noise_reach_m:
        How far (metres) a pixel without a spread of its own (seen on fewer than
        :data:`MIN_VALUES_FOR_SPREAD` dates) looks for its neighbours'
        (:func:`noise_spread`).
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
    noise_z: float = 2.5
    noise_reach_m: float = 100.0
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
    loss_sd, gain_sd, count:
        The spread of the vegetation loss and bare-soil gain (:func:`spread_of` the
        paired differences, or of the observations where none has a partner) and the
        number of values behind the loss (the gain's are the same but where a BSI is
        undefined).
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
    loss_sd: np.ndarray
    gain_sd: np.ndarray
    count: np.ndarray
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
    with np.errstate(invalid="ignore"):
        differences = np.stack([partners[:, 0] - paired[:, 0], paired[:, 1] - partners[:, 1]], axis=1)
    unpaired = ~np.isfinite(paired[:, 0]).any(axis=0)  # the cautious comparison: the observations' own spread
    (alone_spread, alone_count), (paired_spread, paired_count) = spread_of(observed), spread_of(differences)
    spread, count = np.where(unpaired, alone_spread, paired_spread), np.where(unpaired, alone_count, paired_count)
    return PeriodState(
        ndvi=composite[0],
        bsi=composite[1],
        ndvi_max=nan_max(observed[:, 0]),
        water=water_dates.sum(axis=0) * 2 > clear_dates,
        paired_ndvi=paired_composite[0],
        paired_bsi=paired_composite[1],
        partner_ndvi=partner_composite[0],
        partner_bsi=partner_composite[1],
        loss_sd=spread[0],
        gain_sd=spread[1],
        count=count[0],
        water_any=water_dates.any(axis=0),
        seen=clear_dates > 0,
    )


#: The fewest values (paired differences or observations) a pixel's own spread is computed from.
MIN_VALUES_FOR_SPREAD = 3


def spread_of(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample standard deviation (``ddof=1``, float32) and number of the finite values over the first axis.

    The deviation is NaN where fewer than :data:`MIN_VALUES_FOR_SPREAD` values are
    finite: from two values it has one degree of freedom, and for a pit that replaced
    seasonal vegetation the two differences differ by the season's amplitude, not by
    noise. ``values`` is ``(date, ...)``; the same float32 results as
    :func:`period_evidence`'s kernel (:func:`_spread`).
    """
    array = np.asarray(values, dtype=np.float32)
    flat = np.ascontiguousarray(array.reshape(array.shape[0], int(np.prod(array.shape[1:]))))
    spread, count = np.empty(flat.shape[1], dtype=np.float32), np.empty(flat.shape[1], dtype=np.float32)
    _spread_columns(flat, spread, count)
    return spread.reshape(array.shape[1:]), count.reshape(array.shape[1:])


@numba.njit(cache=True, nogil=True)
def _spread_columns(values, spread, counts):  # pragma: no cover - compiled
    dates, pixels = values.shape
    buffer = np.empty(max(dates, 1), dtype=np.float32)
    for p in range(pixels):
        count = 0
        for d in range(dates):
            if np.isfinite(values[d, p]):
                buffer[count] = values[d, p]
                count += 1
        spread[p], counts[p] = _spread(buffer, count), count


@numba.njit(cache=True, nogil=True, inline="always")
def _spread(buffer, count):  # pragma: no cover - compiled
    """``std(buffer[:count], ddof=1)`` as float32 (sums in float64); NaN below :data:`MIN_VALUES_FOR_SPREAD`."""
    if count < MIN_VALUES_FOR_SPREAD:
        return np.float32(np.nan)
    total = 0.0
    for i in range(count):
        total += buffer[i]
    mean = total / count
    squares = 0.0
    for i in range(count):
        squares += (buffer[i] - mean) ** 2
    return np.float32(np.sqrt(squares / (count - 1)))


def noise_spread(spread: np.ndarray, radius_px: int, reach_px: int) -> np.ndarray:
    """Each pixel's noise spread: the median of the finite ``spread`` values in its ``(2r + 1)``-square.

    Where that square holds none (a pixel seen on too few dates, among others like it),
    the square widens one pixel at a time, up to ``reach_px`` more, until its new ring
    holds some: their median (the spreads of the nearest pixels that have one); NaN
    beyond. :func:`score_of_changes` computes this only where a change could count; this
    whole-array form is its reference. Right ``radius_px + reach_px`` pixels inside the
    array's edges (outside is taken as NaN).
    """
    values = np.ascontiguousarray(spread, dtype=np.float32)
    out = np.empty_like(values)
    buffer = np.empty(_spread_buffer_size(radius_px, reach_px), dtype=np.float32)
    _noise_spreads(values, int(radius_px), int(reach_px), buffer, out)
    return out


def _spread_buffer_size(radius_px: int, reach_px: int) -> int:
    """Room for the larger of the first square and the widest ring :func:`_noise_spread_at` collects."""
    return max((2 * radius_px + 1) ** 2, 8 * (radius_px + reach_px), 1)


@numba.njit(cache=True, nogil=True)
def _noise_spreads(values, radius, reach, buffer, out):  # pragma: no cover - compiled
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            out[r, c] = _noise_spread_at(values, r, c, radius, reach, buffer)


@numba.njit(cache=True, nogil=True, inline="always")
def _noise_spread_at(values, r, c, radius, reach, buffer):  # pragma: no cover - compiled
    rows, cols = values.shape
    # 3 x 3 inside, all nine finite: the network, as in _nan_median_filter. A helper shared by both (NaN when
    # not all nine are finite) made that filter about three times slower when tried, so the lines are repeated.
    if radius == 1 and 0 < r < rows - 1 and 0 < c < cols - 1:
        a0, a1, a2 = values[r - 1, c - 1], values[r - 1, c], values[r - 1, c + 1]
        a3, a4, a5 = values[r, c - 1], values[r, c], values[r, c + 1]
        a6, a7, a8 = values[r + 1, c - 1], values[r + 1, c], values[r + 1, c + 1]
        if np.isfinite(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8):
            middle = _median_of_9(a0, a1, a2, a3, a4, a5, a6, a7, a8)
            return (middle + middle) * np.float32(0.5)  # as sorted_median computes it
    count = 0
    for i in range(max(r - radius, 0), min(r + radius + 1, rows)):
        for j in range(max(c - radius, 0), min(c + radius + 1, cols)):
            if np.isfinite(values[i, j]):
                buffer[count] = values[i, j]
                count += 1
    width = radius
    while count == 0 and width < radius + reach:
        width += 1
        for i in range(r - width, r + width + 1):
            if not 0 <= i < rows:
                continue
            step = 1 if abs(i - r) == width else 2 * width  # the ring: whole top and bottom rows, else two ends
            for j in range(c - width, c + width + 1, step):
                if 0 <= j < cols and np.isfinite(values[i, j]):
                    buffer[count] = values[i, j]
                    count += 1
    return sorted_median(buffer, count)


def river_corridor(water_any: np.ndarray, radius_px: int) -> np.ndarray:
    """Water grown by ``radius_px`` pixels (a disc): where a river's sandbars and moves can be.

    The result is only right at least ``radius_px`` pixels inside the array's edges;
    callers pass a tile with a halo that wide.
    """
    water = np.ascontiguousarray(water_any, dtype=bool)
    if radius_px <= 0 or not water.any():
        return water.copy()
    offsets = np.arange(-radius_px, radius_px + 1)
    # the disc row by row: at row offset dy it spans |dx| <= half_width[dy] (dy^2 + dx^2 <= r^2)
    half_width = np.floor(np.sqrt(radius_px**2 - offsets**2)).astype(np.int64)
    half_width[half_width**2 > radius_px**2 - offsets**2] -= 1  # floor of an exact square root, whatever rounding
    out = np.empty_like(water)
    _dilate_disc(water, half_width, out)
    return out


@numba.njit(cache=True, nogil=True)
def _dilate_disc(water, half_width, out):  # pragma: no cover - compiled
    """``scipy.ndimage.binary_dilation`` of ``water`` by the disc whose rows span ``half_width`` (False outside).

    Each row's horizontal distance to its nearest water pixel is found once (two sweeps);
    a pixel is in the corridor when, for some row offset ``dy``, that distance in row
    ``r + dy`` is within the disc's half-width there. Rows without water are skipped.
    """
    rows, cols = water.shape
    radius = (half_width.size - 1) // 2
    far = cols + radius + 1
    distance = np.empty((rows, cols), dtype=np.int32)
    wet_row = np.zeros(rows, dtype=np.bool_)
    for r in range(rows):
        nearest = -far
        for c in range(cols):
            if water[r, c]:
                nearest = c
                wet_row[r] = True
            distance[r, c] = c - nearest
        nearest = 2 * far
        for c in range(cols - 1, -1, -1):
            if water[r, c]:
                nearest = c
            distance[r, c] = min(distance[r, c], nearest - c)
    for r in range(rows):
        for c in range(cols):
            out[r, c] = False
        for k in range(half_width.size):
            source = r + k - radius
            if 0 <= source < rows and wet_row[source]:
                width = half_width[k]
                for c in range(cols):
                    out[r, c] |= distance[source, c] <= width


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
    loss_sd, gain_sd:
        Their spreads (NaN on river and unseen pixels, and where fewer than
        :data:`MIN_VALUES_FOR_SPREAD` values were compared).
    count:
        The number of values behind the loss and gain (float32; 0 where unseen).
    kind:
        uint8 :data:`LAND`, :data:`BARE` (land bare on every clear date of the period),
        :data:`POND` (new water off the river), :data:`RIVER` (baseline water, sandbar,
        or water inside the corridor) or :data:`UNSEEN`.
    """

    loss: np.ndarray
    gain: np.ndarray
    kind: np.ndarray
    loss_sd: np.ndarray
    gain_sd: np.ndarray
    count: np.ndarray


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

    def shown(values):
        return np.where(hidden, np.nan, values).astype(np.float32)

    return Changes(shown(loss), shown(gain), kind, shown(state.loss_sd), shown(state.gain_sd), state.count)


def nan_median_filter(values: np.ndarray, radius_px: int = 1) -> np.ndarray:
    """Median of each pixel's ``(2r + 1)``-square neighbourhood, ignoring NaN; NaN pixels stay NaN.

    The filter works on the last two axes. Its result is right only ``radius_px`` pixels
    inside the array's edges (outside is taken as NaN): callers pass a tile with a halo.
    Pits are blobs of many pixels while sensor noise differs from pixel to pixel, so the
    median keeps a pit's edges and removes most of the noise (about half its standard
    deviation for a 3 x 3 square). A compiled kernel sorts each neighbourhood's finite
    values on its own (the same float32 values as :func:`geo.composite.nan_median` of
    the shifted copies).
    """
    array = np.ascontiguousarray(values, dtype=np.float32)
    if radius_px <= 0:
        return array.copy()
    flat = array.reshape(-1, *array.shape[-2:])
    out = np.empty_like(flat)
    _nan_median_filter(flat, int(radius_px), out)
    return out.reshape(array.shape)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nan_median_filter(values, radius, out):  # pragma: no cover - compiled
    layers, rows, cols = values.shape
    buffer = np.empty((2 * radius + 1) ** 2, dtype=np.float32)
    for k in range(layers):
        for r in range(rows):
            r0, r1 = max(r - radius, 0), min(r + radius + 1, rows)
            for c in range(cols):
                if radius == 1 and 0 < r < rows - 1 and 0 < c < cols - 1:
                    # inside, 3 x 3: when all nine are finite (their sum is), a branch-free network
                    a0, a1, a2 = values[k, r - 1, c - 1], values[k, r - 1, c], values[k, r - 1, c + 1]
                    a3, a4, a5 = values[k, r, c - 1], values[k, r, c], values[k, r, c + 1]
                    a6, a7, a8 = values[k, r + 1, c - 1], values[k, r + 1, c], values[k, r + 1, c + 1]
                    if np.isfinite(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8):
                        middle = _median_of_9(a0, a1, a2, a3, a4, a5, a6, a7, a8)
                        out[k, r, c] = (middle + middle) * np.float32(0.5)  # as sorted_median computes it
                        continue
                if np.isnan(values[k, r, c]):
                    out[k, r, c] = np.float32(np.nan)
                    continue
                count = 0
                for i in range(r0, r1):
                    for j in range(max(c - radius, 0), min(c + radius + 1, cols)):
                        value = values[k, i, j]
                        if np.isfinite(value):
                            buffer[count] = value
                            count += 1
                out[k, r, c] = sorted_median(buffer, count)


@numba.njit(cache=True, nogil=True, inline="always")
def _median_of_9(p0, p1, p2, p3, p4, p5, p6, p7, p8):  # pragma: no cover - compiled
    """The 5th smallest of nine finite values, in 19 compare-exchanges (Paeth's network, ``opt_med9``)."""
    p1, p2 = min(p1, p2), max(p1, p2)
    p4, p5 = min(p4, p5), max(p4, p5)
    p7, p8 = min(p7, p8), max(p7, p8)
    p0, p1 = min(p0, p1), max(p0, p1)
    p3, p4 = min(p3, p4), max(p3, p4)
    p6, p7 = min(p6, p7), max(p6, p7)
    p1, p2 = min(p1, p2), max(p1, p2)
    p4, p5 = min(p4, p5), max(p4, p5)
    p7, p8 = min(p7, p8), max(p7, p8)
    p3 = max(p0, p3)
    p5 = min(p5, p8)
    p4, p7 = min(p4, p7), max(p4, p7)
    p6 = max(p3, p6)
    p4 = max(p1, p4)
    p2 = min(p2, p5)
    p4 = min(p4, p7)
    p4, p2 = min(p4, p2), max(p4, p2)
    p4 = max(p6, p4)
    return min(p4, p2)


def score_of_changes(changes: Changes, params: ScoreParameters, reach_px: int) -> np.ndarray:
    """The score 0..1 from (filtered) changes of one array (row x column): float32, 0 on river pixels, NaN unseen.

    ``min(1, vegetation_weight * ramp(loss) + bare_weight * ramp(gain))`` on land; the
    vegetation loss alone on a pond (water is not bare soil, so BSI cannot see it).

    Each ramp keeps its width but starts at ``max(low, noise_z * standard error)``: the
    pixel's :func:`noise_spread` (over the filter's square, ``params.filter_px``,
    widened up to ``reach_px`` where needed) over the square root of its number of
    values; its fixed ``low`` where there is no spread. On clean scenes the standard
    errors are a few thousandths and the fixed ends apply; where the scene is noisy, a
    change must stand ``noise_z`` standard errors out of the pixel's own noise to count,
    so noise no longer adds up to 0.5 while a pit's change, many times larger, still
    reaches full strength. The spread is looked up only where a change passes its fixed
    low end (elsewhere its ramp is 0 whatever the spread). The result is right
    ``params.filter_px + reach_px`` pixels inside the array's edges.
    ``benchmarks/accuracy_activity.py --noise-z`` measures the effect on scenes of
    several noise levels.
    """
    loss, gain, loss_sd, gain_sd, count = (
        np.ascontiguousarray(a, dtype=np.float32)
        for a in (changes.loss, changes.gain, changes.loss_sd, changes.gain_sd, changes.count)
    )
    kind = np.ascontiguousarray(changes.kind, dtype=np.uint8)
    score = np.empty(kind.shape, dtype=np.float32)
    (loss_low, loss_high), (gain_low, gain_high) = params.ndvi_drop, params.bsi_rise
    _score(  # one pass; the same float32 operations as ramp(), np.minimum and np.where in turn
        loss,
        gain,
        loss_sd,
        gain_sd,
        count,
        kind,
        np.float32(loss_low),
        np.float32(loss_high - loss_low),
        np.float32(gain_low),
        np.float32(gain_high - gain_low),
        np.float32(params.noise_z),
        np.float32(params.vegetation_weight),
        np.float32(params.bare_weight),
        int(params.filter_px),
        int(reach_px),
        np.empty(_spread_buffer_size(params.filter_px, reach_px), dtype=np.float32),
        score,
    )
    return score


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _ramp(value, low, span):  # pragma: no cover - compiled
    """:func:`ramp` of one float32 value (NaN stays NaN)."""
    x = (value - low) / span
    if np.isnan(x):
        return x
    return np.float32(0.0) if x < 0 else (np.float32(1.0) if x > 1 else x)


@numba.njit(cache=True, nogil=True, inline="always")
def _low_end(low, value, noise_z, spread, count, r, c, radius, reach, buffer):  # pragma: no cover - compiled
    """A ramp's low end at pixel ``(r, c)``: ``low``, raised to ``noise_z`` standard errors where the value passes
    ``low`` and a spread is known (the comparisons with NaN are False)."""
    if not (noise_z > 0 and value > low):
        return low
    error = _noise_spread_at(spread, r, c, radius, reach, buffer) / np.float32(np.sqrt(count[r, c]))
    raised = noise_z * np.float32(error)  # float32 throughout, as numpy computes it
    return raised if raised > low else low


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _score(
    loss,
    gain,
    loss_sd,
    gain_sd,
    count,
    kind,
    loss_low,
    loss_span,
    gain_low,
    gain_span,
    noise_z,
    weight_loss,
    weight_gain,
    radius,
    reach,
    buffer,
    out,
):  # pragma: no cover - compiled
    rows, cols = kind.shape
    for r in range(rows):
        for c in range(cols):
            pixel_kind = kind[r, c]
            if pixel_kind == UNSEEN:
                out[r, c] = np.float32(np.nan)
                continue
            if pixel_kind == RIVER:
                out[r, c] = np.float32(0.0)
                continue
            value = loss[r, c]
            low = _low_end(loss_low, value, noise_z, loss_sd, count, r, c, radius, reach, buffer)
            vegetation = _ramp(value, low, loss_span)
            if pixel_kind == POND:
                out[r, c] = vegetation
                continue
            value = gain[r, c]
            low = _low_end(gain_low, value, noise_z, gain_sd, count, r, c, radius, reach, buffer)
            total = weight_loss * vegetation + weight_gain * _ramp(value, low, gain_span)
            out[r, c] = total if (np.isnan(total) or total < 1) else np.float32(1.0)


def filter_changes(changes: Changes, radius_px: int) -> Changes:
    """:func:`nan_median_filter` of the loss and gain (with a halo of ``radius_px``); spreads and counts as they are.

    :func:`score_of_changes` takes the spreads' median over the same square, where it
    needs them.
    """
    loss, gain = nan_median_filter(np.stack([changes.loss, changes.gain]), radius_px)
    return Changes(loss, gain, changes.kind, changes.loss_sd, changes.gain_sd, changes.count)


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
    reach_px = params.pixels(params.noise_reach_m, params.pixel_m)
    score = score_of_changes(filter_changes(changes, params.filter_px), params, reach_px)
    return grow_into_workings(score, changes.kind, params.pixels(params.grow_m, params.pixel_m), params)


# ----------------------------------------------------------------------------- fused tile kernels
#
# The functions above are the method, written as whole-array numpy steps (and tested as
# such). A tile of a build runs the same method through the compiled kernels below:
# each date's bands are turned into its NDVI, BSI and water flag in one pass
# (:func:`observe`), and each period's composites, season pairing and changes are one
# pass over the pixels (:func:`period_evidence`), with no stack of every date's bands and
# no temporary array per step. Their results equal the numpy steps' (tested), except
# that the season-paired composite is always the median of the paired observations:
# the numpy path reuses the all-dates composite when every observation of the *tile*
# found a partner, which differs only for a BSI whose date's NDVI is undefined
# (NIR + red exactly 0).


def observe(
    bands: Sequence[np.ndarray],
    clear: np.ndarray,
    threshold: float = 0.0,
    indices: np.ndarray | None = None,
    water: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One date's NDVI and BSI where the observation is usable, and where it is open water, in one pass.

    The same values as :func:`observation_indices` and :func:`water_of` of
    :func:`geo.composite.mask_observations` of the date: an observation is usable where
    ``clear`` and every band has a value.

    Parameters
    ----------
    bands:
        The date's reflectances in the order :data:`STACK_BANDS`, each ``(row, column)``,
        NaN where no data.
    clear:
        :func:`geo.composite.clear_mask` of the date, ``(row, column)``.
    threshold:
        ``params.water_index``.
    indices, water:
        Arrays to fill, ``(2, row, column)`` float32 and ``(row, column)`` bool
        (allocated when None).

    Returns
    -------
    tuple of numpy.ndarray
        ``indices`` (NDVI, BSI; NaN where unusable) and ``water``.
    """
    blue, green, red, nir, swir1 = (np.asarray(b, dtype=np.float32) for b in bands)
    clear = np.asarray(clear, dtype=bool)
    if indices is None:
        indices = np.empty((2, *clear.shape), dtype=np.float32)
    if water is None:
        water = np.empty(clear.shape, dtype=bool)
    _observe(blue, green, red, nir, swir1, clear, np.float32(threshold), indices, water)
    return indices, water


def add_open_water(water: np.ndarray, green, nir, swir1, clear: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """``water |= clear & open_water(green, nir, swir1, threshold)``, in place, in one pass; returns ``water``."""
    bands = [np.asarray(b, dtype=np.float32) for b in (green, nir, swir1)]
    _add_open_water(water, *bands, np.asarray(clear, dtype=bool), np.float32(threshold))
    return water


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _nd(a, b):  # pragma: no cover - compiled
    """:func:`normalized_difference` of two float32 values: NaN where ``a + b`` is 0."""
    denominator = a + b
    ratio = (a - b) / denominator  # numpy's error model: no check, no exception; selected away below
    return np.float32(np.nan) if denominator == 0 else ratio


# The kernels below compute every pixel's values and then select (no branch on the data),
# which lets the compiler vectorize them; NaN inputs propagate quietly (numpy's error model).


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _observe(blue, green, red, nir, swir1, clear, threshold, indices, water):  # pragma: no cover - compiled
    rows, cols = clear.shape
    nan = np.float32(np.nan)
    for r in range(rows):
        for c in range(cols):
            b, g, rd, n, s1 = blue[r, c], green[r, c], red[r, c], nir[r, c], swir1[r, c]
            usable = clear[r, c] & np.isfinite(b) & np.isfinite(g) & np.isfinite(rd) & np.isfinite(n) & np.isfinite(s1)
            ndvi_value, bsi_value = _nd(n, rd), _nd(s1 + rd, n + b)
            wet = (_nd(g, s1) > threshold) | (_nd(g, n) > threshold)
            indices[0, r, c] = ndvi_value if usable else nan
            indices[1, r, c] = bsi_value if usable else nan
            water[r, c] = wet & usable


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _add_open_water(water, green, nir, swir1, clear, threshold):  # pragma: no cover - compiled
    rows, cols = clear.shape
    for r in range(rows):
        for c in range(cols):
            g = green[r, c]
            wet = (_nd(g, swir1[r, c]) > threshold) | (_nd(g, nir[r, c]) > threshold)
            water[r, c] = water[r, c] | (clear[r, c] & wet)


def baseline_of(observed: np.ndarray, water: np.ndarray) -> Baseline:
    """:func:`baseline_reference` from the baseline's :func:`observe` results, in one pass.

    Parameters
    ----------
    observed:
        ``(date, 2, row, column)`` NDVI and BSI of the baseline's dates (NaN where unusable).
    water:
        ``(date, row, column)`` open water of those dates.
    """
    observed = np.ascontiguousarray(observed, dtype=np.float32)
    shape = observed.shape[2:]
    ndvi_dry, ndvi_green, bsi_bare = (np.empty(shape, dtype=np.float32) for _ in range(3))
    water_any, seen = np.empty(shape, dtype=bool), np.empty(shape, dtype=bool)
    _baseline(observed, np.ascontiguousarray(water, dtype=bool), ndvi_dry, ndvi_green, bsi_bare, water_any, seen)
    return Baseline(ndvi_dry, ndvi_green, bsi_bare, water_any, seen)


@numba.njit(cache=True, nogil=True)
def _baseline(observed, water, ndvi_dry, ndvi_green, bsi_bare, water_any, seen):  # pragma: no cover - compiled
    dates, _, rows, cols = observed.shape
    for r in range(rows):
        for c in range(cols):
            low = high = bare = np.float32(np.nan)
            wet = False
            for d in range(dates):
                ndvi_value, bsi_value = observed[d, 0, r, c], observed[d, 1, r, c]
                if not np.isnan(ndvi_value):
                    if np.isnan(low) or ndvi_value < low:
                        low = ndvi_value
                    if np.isnan(high) or ndvi_value > high:
                        high = ndvi_value
                if not np.isnan(bsi_value) and (np.isnan(bare) or bsi_value > bare):
                    bare = bsi_value
                wet = wet or water[d, r, c]
            ndvi_dry[r, c], ndvi_green[r, c], bsi_bare[r, c] = low, high, bare
            water_any[r, c], seen[r, c] = wet, not np.isnan(low)


def partner_order(days: np.ndarray, reference_days: np.ndarray, window_days: int) -> np.ndarray:
    """For each date, the reference dates within ``window_days`` in season, nearest first (ties: earlier).

    ``(date, reference date)`` int64, padded with -1: the order in which
    :func:`geo.composite.season_matched` tries partners.
    """
    days, reference_days = np.asarray(days, dtype=int), np.asarray(reference_days, dtype=int)
    order = np.full((len(days), max(len(reference_days), 1)), -1, dtype=np.int64)
    for i, day in enumerate(days):
        distance = day_of_year_distance(day, reference_days)
        nearest = np.argsort(distance, kind="stable")
        nearest = nearest[distance[nearest] <= window_days]
        order[i, : len(nearest)] = nearest
    return order


#: Bits of :class:`Evidence` ``flags``: what a pixel's class depends on, before the river corridor is known.
SEEN_BOTH = 1  # seen clear in the period and in the baseline
BASELINE_WATER = 2  # open water on a clear baseline date (all five bands usable)
BASELINE_BARE = 4  # the baseline's greenest NDVI below bare_ndvi: a sandbar if inside the corridor
WATER_SOME = 8  # open water on some clear date of the period
WATER_MOST = 16  # open water on most clear dates of the period: a pond unless river
BARE_ALWAYS = 32  # the period's greenest NDVI below bare_ndvi
CORRIDOR_WATER = 64  # water the corridor grows from (set by the caller: see river_corridor)


@dataclass(frozen=True)
class Evidence:
    """A period's per-pixel loss and gain against the baseline and the facts that decide its class.

    :func:`changes_of_evidence` turns it into :class:`Changes` once the river corridor is
    known; a tiled build computes it tile by tile and classifies with the corridor of the
    tile's neighbourhood later (:mod:`layers.activity_build`).

    Attributes
    ----------
    loss, gain:
        Vegetation loss and bare-soil gain (float32; NaN where not computable), not yet
        hidden on river or unseen pixels.
    loss_sd, gain_sd, count:
        Their spreads and number of values (:attr:`PeriodState.loss_sd`).
    flags:
        uint8 bits :data:`SEEN_BOTH`, :data:`BASELINE_WATER`, :data:`BASELINE_BARE`,
        :data:`WATER_SOME`, :data:`WATER_MOST`, :data:`BARE_ALWAYS` (and
        :data:`CORRIDOR_WATER`, which the caller adds).
    """

    loss: np.ndarray
    gain: np.ndarray
    flags: np.ndarray
    loss_sd: np.ndarray
    gain_sd: np.ndarray
    count: np.ndarray


def period_evidence(
    observed: np.ndarray,
    water: np.ndarray,
    days: np.ndarray,
    base_observed: np.ndarray,
    base_days: np.ndarray,
    baseline: Baseline,
    params: ScoreParameters = ScoreParameters(),
) -> Evidence:
    """A period's :class:`Evidence` in one pass over the pixels: composites, season pairing, loss, gain, flags.

    With :func:`changes_of_evidence` (in a later task, once the river corridor around the
    tile is known) it gives what :func:`pixel_changes` of :func:`period_state` of the
    season-matched (:func:`geo.composite.season_matched`) observations gives, without the
    intermediate arrays (see the note above :func:`observe` for the one difference).

    Parameters
    ----------
    observed, water:
        The period's dates: ``(date, 2, row, column)`` NDVI and BSI (NaN where unusable)
        and ``(date, row, column)`` open water.
    days:
        Day of year of each of those dates.
    base_observed, base_days:
        The same for the baseline's dates.
    baseline:
        :func:`baseline_of` the baseline's dates (or :func:`baseline_reference`).
    params:
        Season window and thresholds.
    """
    observed = np.ascontiguousarray(observed, dtype=np.float32)
    base_observed = np.ascontiguousarray(base_observed, dtype=np.float32)
    order = partner_order(days, base_days, params.season_window_days)
    shape = observed.shape[2:]
    loss, gain, loss_sd, gain_sd, count = (np.empty(shape, dtype=np.float32) for _ in range(5))
    flags = np.empty(shape, dtype=np.uint8)
    _period_evidence(
        observed,
        np.ascontiguousarray(water, dtype=bool),
        base_observed,
        order,
        np.ascontiguousarray(baseline.ndvi_dry, dtype=np.float32),
        np.ascontiguousarray(baseline.ndvi_green, dtype=np.float32),
        np.ascontiguousarray(baseline.bsi_bare, dtype=np.float32),
        np.ascontiguousarray(baseline.water_any, dtype=bool),
        np.ascontiguousarray(baseline.seen, dtype=bool),
        np.float32(params.bare_ndvi),
        loss,
        gain,
        flags,
        loss_sd,
        gain_sd,
        count,
    )
    return Evidence(loss, gain, flags, loss_sd, gain_sd, count)


def changes_of_evidence(evidence: Evidence, corridor: np.ndarray) -> Changes:
    """:class:`Changes` from :class:`Evidence` and the river corridor (:func:`pixel_changes`'s classes).

    Unseen in the period or the baseline: UNSEEN; baseline water, or inside the corridor a
    sandbar (bare in the baseline) or water now: RIVER; water on most dates: POND; bare on
    every clear date: BARE; else LAND. Loss, gain and their spreads are NaN on UNSEEN and
    RIVER pixels.
    """
    shape = np.shape(evidence.flags)
    layers = [
        np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
        for a in (evidence.loss, evidence.gain, evidence.loss_sd, evidence.gain_sd)
    ]
    shown, kind = [np.empty_like(a) for a in layers], np.empty(shape, np.uint8)
    _classify(
        *layers,
        np.ascontiguousarray(evidence.flags, dtype=np.uint8).reshape(-1),
        np.ascontiguousarray(corridor, dtype=bool).reshape(-1),
        *shown,
        kind.reshape(-1),
    )
    loss, gain, loss_sd, gain_sd = (a.reshape(shape) for a in shown)
    return Changes(loss, gain, kind, loss_sd, gain_sd, np.asarray(evidence.count, dtype=np.float32))


@numba.njit(cache=True, nogil=True)
def _classify(
    loss, gain, loss_sd, gain_sd, flags, corridor, out_loss, out_gain, out_loss_sd, out_gain_sd, out_kind
):  # pragma: no cover - compiled
    nan = np.float32(np.nan)
    for i in range(flags.size):
        bits, in_corridor = flags[i], corridor[i]
        river = (bits & BASELINE_WATER) != 0 or (in_corridor and (bits & (BASELINE_BARE | WATER_SOME)) != 0)
        if (bits & SEEN_BOTH) == 0:
            pixel_kind = UNSEEN
        elif river:
            pixel_kind = RIVER
        elif (bits & WATER_MOST) != 0:
            pixel_kind = POND
        elif (bits & BARE_ALWAYS) != 0:
            pixel_kind = BARE
        else:
            pixel_kind = LAND
        out_kind[i] = pixel_kind
        hidden = pixel_kind in (UNSEEN, RIVER)
        out_loss[i] = nan if hidden else loss[i]
        out_gain[i] = nan if hidden else gain[i]
        out_loss_sd[i] = nan if hidden else loss_sd[i]
        out_gain_sd[i] = nan if hidden else gain_sd[i]


@numba.njit(cache=True, nogil=True)
def _period_evidence(
    observed,
    water,
    base_observed,
    order,
    ndvi_dry,
    ndvi_green,
    bsi_bare,
    base_water,
    base_seen,
    bare_ndvi,
    loss,
    gain,
    flags,
    loss_sd,
    gain_sd,
    count,
):  # pragma: no cover - compiled
    dates, _, rows, cols = observed.shape
    size = max(dates, 1)
    all_ndvi, all_bsi = np.empty(size, np.float32), np.empty(size, np.float32)
    paired_ndvi, paired_bsi = np.empty(size, np.float32), np.empty(size, np.float32)
    partner_ndvi, partner_bsi = np.empty(size, np.float32), np.empty(size, np.float32)
    loss_differences, gain_differences = np.empty(size, np.float32), np.empty(size, np.float32)
    nan = np.float32(np.nan)
    for r in range(rows):
        for c in range(cols):
            n_all = n_bsi = n_paired = n_paired_bsi = n_partner_bsi = n_gain_differences = wet_dates = 0
            wet_any = False
            ndvi_max = nan
            for d in range(dates):
                ndvi_value, bsi_value = observed[d, 0, r, c], observed[d, 1, r, c]
                if water[d, r, c]:
                    wet_dates += 1
                    wet_any = True
                if np.isfinite(bsi_value):
                    all_bsi[n_bsi] = bsi_value
                    n_bsi += 1
                if not np.isfinite(ndvi_value):
                    continue
                all_ndvi[n_all] = ndvi_value
                n_all += 1
                if np.isnan(ndvi_max) or ndvi_value > ndvi_max:
                    ndvi_max = ndvi_value
                for k in range(order.shape[1]):  # the nearest baseline date in season seen clear here
                    j = order[d, k]
                    if j < 0:
                        break
                    partner = base_observed[j, 0, r, c]
                    if np.isfinite(partner):
                        paired_ndvi[n_paired] = ndvi_value
                        partner_ndvi[n_paired] = partner
                        loss_differences[n_paired] = partner - ndvi_value
                        n_paired += 1
                        if np.isfinite(bsi_value):
                            paired_bsi[n_paired_bsi] = bsi_value
                            n_paired_bsi += 1
                        partner_b = base_observed[j, 1, r, c]
                        if np.isfinite(partner_b):
                            partner_bsi[n_partner_bsi] = partner_b
                            n_partner_bsi += 1
                        if np.isfinite(bsi_value - partner_b):
                            gain_differences[n_gain_differences] = bsi_value - partner_b
                            n_gain_differences += 1
                        break
            if n_paired > 0:
                loss_sd[r, c] = _spread(loss_differences, n_paired)
                gain_sd[r, c] = _spread(gain_differences, n_gain_differences)
                count[r, c] = n_paired
                loss_value = sorted_median(partner_ndvi, n_paired) - sorted_median(paired_ndvi, n_paired)
                gain_value = sorted_median(paired_bsi, n_paired_bsi) - sorted_median(partner_bsi, n_partner_bsi)
            else:  # the spreads before the medians sort the buffers
                loss_sd[r, c] = _spread(all_ndvi, n_all)
                gain_sd[r, c] = _spread(all_bsi, n_bsi)
                count[r, c] = n_all
                loss_value = ndvi_dry[r, c] - sorted_median(all_ndvi, n_all)
                gain_value = sorted_median(all_bsi, n_bsi) - bsi_bare[r, c]
            bits = 0
            if n_all > 0 and base_seen[r, c]:
                bits |= SEEN_BOTH
            if base_water[r, c]:
                bits |= BASELINE_WATER
            if ndvi_green[r, c] < bare_ndvi:
                bits |= BASELINE_BARE
            if wet_any:
                bits |= WATER_SOME
            if wet_dates * 2 > n_all:
                bits |= WATER_MOST
            if ndvi_max < bare_ndvi:
                bits |= BARE_ALWAYS
            flags[r, c] = bits
            loss[r, c] = loss_value
            gain[r, c] = gain_value
