"""Build minewatch's bundled SYNTHETIC Sentinel-2-like scenes: ``python data/build_demo_scenes.py``.

Writes ``data/demo_scenes/`` (about 4 MB): Level-2A-like band files of a made-up 3 km x
3 km landscape near Marange, Zimbabwe (EPSG:32736, WGS 84 / UTM 36S), on five dates a
year over 2020-2022, for ``python app.py build-activity --scenes data/demo_scenes``. It
is **not real imagery**: every file is tagged ``MINEWATCH_SYNTHETIC=yes`` and says so in
its description, and the folder's ``README.md`` says it again.

Files: ``SYNTH_T36KVD_<YYYYMMDD>_<BAND>_<10m|20m>.tif``; B02 B03 B04 B08 at 10 m, B11
B12 and SCL at 20 m, uint16 digital numbers with the processing-baseline-04.00 encoding
(reflectance = DN / 10000 - 0.1, declared as the GeoTIFF's scale and offset; multiples of 10),
nodata 0.
``truth.json`` and ``truth.tif`` say what was planted (see :func:`write_truth`).

The landscape (deterministic: fixed seed, no network, a few seconds):

- savanna whose vegetation cover varies smoothly, green in the wet-season dates
  (January, March), dry from May to October; fields (cropland) bare in the dry season
  and green in the wet one; an outcrop of bare rock;
- a meandering river (wider in the wet season, moving 15 m south in the last year) with
  sandbars on its bends and green riparian banks;
- mining pits (bare gravel) that open in the second year and grow every year (one is
  already there in the baseline year, one opens only in the last), the largest with a
  turbid pond in the last year; one of them hidden under a cloud on every date of the
  second year (so it must come out as nodata, not "no activity");
- clouds (SCL 9 core, 8 rim, and a faint haze rim the classifier misses), thin cirrus
  (SCL 10) and cloud shadows (SCL 3, displaced by the sun's direction); the wet season
  is cloudier, and in the last year clouds hide one field on both wet-season dates
  (so a naive comparison would see its dry season as vegetation loss);
- one date with the west fifth outside the swath (no data, SCL 0), and a few
  saturated pixels (SCL 1).

``benchmarks/bench_activity.py`` calls :func:`build_scenes` with a larger size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage

OUT_DIR = Path(__file__).resolve().parent / "demo_scenes"
SEED = 20240611
CRS = "EPSG:32736"
ORIGIN = (426_600.0, 7_829_700.0)  # top-left corner (m), about 32.30 E, 19.63 S
PIXEL_M = 10.0
SIZE_PX = 300  # 3 km at 10 m
PIT_RADIUS_PX = (5.0, 8.0)  # first-year radius of a pit, drawn from this range
PIT_GROWTH_PX = (3.0, 4.5)  # its growth a year, scaled with the radius range
TILE_ID = "T36KVD"
YEARS = (2020, 2021, 2022)
DATES = ((1, 20), (3, 10), (5, 25), (8, 15), (10, 30))  # month, day: two wet-season dates, three dry
GREENNESS = {1: 1.0, 3: 0.8, 5: 0.35, 8: 0.0, 10: 0.1}  # 0 dry season .. 1 peak of the rains
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
BAND_RESOLUTION_M = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B11": 20, "B12": 20, "SCL": 20}
BOA_ADD_OFFSET = 1000  # digital numbers carry +1000 since processing baseline 04.00
QUANTIFICATION = 10_000
DN_STEP = 10  # digital numbers are multiples of 10 (reflectance to 0.001): the files compress 2x better

# Surface reflectance spectra, bands B02 B03 B04 B08 B11 B12 (typical library values, rounded).
SPECTRA = {
    "green_vegetation": (0.030, 0.060, 0.035, 0.380, 0.190, 0.090),
    "dry_vegetation": (0.055, 0.080, 0.095, 0.240, 0.300, 0.210),
    "soil": (0.080, 0.110, 0.150, 0.210, 0.290, 0.250),
    "pit": (0.110, 0.140, 0.190, 0.240, 0.330, 0.300),
    "sand": (0.150, 0.190, 0.230, 0.280, 0.360, 0.300),
    "rock": (0.120, 0.140, 0.160, 0.200, 0.260, 0.220),
    "water": (0.050, 0.065, 0.045, 0.030, 0.012, 0.008),
    "pond": (0.080, 0.110, 0.110, 0.070, 0.030, 0.020),
    "cloud": (0.550, 0.550, 0.560, 0.600, 0.450, 0.350),
}
TRUTH_BITS = {
    "pit": 1,
    "cloud": 2,
    "shadow": 4,
    "river": 8,
    "sandbar": 16,
    "greening": 32,
    "never_clear": 64,
    "rock": 128,
}


def spectrum(name: str) -> np.ndarray:
    """A spectrum as a ``(band, 1, 1)`` float32 array, to broadcast over an image."""
    return np.asarray(SPECTRA[name], dtype=np.float32)[:, None, None]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: int) -> np.ndarray:
    """Smooth random field of unit standard deviation with features about ``scale_px`` across."""
    coarse = rng.standard_normal((shape[0] // scale_px + 3, shape[1] // scale_px + 3)).astype(np.float32)
    field_ = ndimage.zoom(coarse, scale_px, order=3)[: shape[0], : shape[1]]
    return (field_ - field_.mean()) / (field_.std() + 1e-6)


def disc_blob(
    rng: np.random.Generator, shape: tuple[int, int], centre: tuple[float, float], radius: float
) -> np.ndarray:
    """Normalised distance to ``centre`` with a wobbly edge: < 1 inside an irregular disc of ``radius``.

    Computed only within ``2 * radius`` of the centre (infinity beyond), so that many
    small blobs on a large scene stay cheap.
    """
    harmonics = rng.normal(0, 0.07, 4)
    phases = rng.uniform(0, 2 * np.pi, 4)
    out = np.full(shape, np.inf, dtype=np.float32)
    reach = 2 * radius + 1
    top, left = max(int(centre[0] - reach), 0), max(int(centre[1] - reach), 0)
    bottom, right = min(int(centre[0] + reach) + 1, shape[0]), min(int(centre[1] + reach) + 1, shape[1])
    if top >= bottom or left >= right:
        return out
    rows, cols = np.ogrid[top:bottom, left:right]
    angle = np.arctan2(rows - centre[0], cols - centre[1])
    wobble = 1 + sum(a * np.cos((k + 2) * angle + p) for k, (a, p) in enumerate(zip(harmonics, phases, strict=True)))
    out[top:bottom, left:right] = np.hypot(rows - centre[0], cols - centre[1]) / (radius * wobble)
    return out


@dataclass
class Landscape:
    """What does not depend on the date: cover, fields, rock, river geometry, pits per year."""

    shape: tuple[int, int]
    cover: np.ndarray
    amplitude: np.ndarray
    fields: np.ndarray
    rock: np.ndarray
    river_distance: dict[int, np.ndarray]  # year -> distance (px) to the channel's centre line
    sandbar: np.ndarray
    riparian: np.ndarray
    pits: dict[int, np.ndarray] = field(default_factory=dict)  # year -> pit mask
    ponds: dict[int, np.ndarray] = field(default_factory=dict)
    pit_texture: np.ndarray | None = None
    pit_records: list[dict] = field(default_factory=list)
    clouded_pit: dict | None = None

    CHANNEL_HALF_WIDTH_PX = 1.6
    FLOOD_EXTRA_PX = 1.5

    def water(self, year: int, greenness: float) -> np.ndarray:
        """The river's open water on a date: the channel, wider as the rains peak."""
        half_width = self.CHANNEL_HALF_WIDTH_PX + self.FLOOD_EXTRA_PX * greenness
        return self.river_distance[year] <= half_width


def make_landscape(
    rng: np.random.Generator,
    size_px: int,
    years: tuple[int, ...],
    pit_radius_px: tuple[float, float] = PIT_RADIUS_PX,
) -> Landscape:
    """Draw the landscape of a square scene ``size_px`` pixels (10 m) across; pits open ``pit_radius_px`` (the
    range drawn from) across and grow by about 0.6 times that a year."""
    shape = (size_px, size_px)
    cover = np.clip(0.62 + 0.14 * smooth_noise(rng, shape, 40), 0.35, 0.9)
    amplitude = np.clip(0.75 + 0.15 * smooth_noise(rng, shape, 30), 0.4, 1.0)
    area_9km2 = (size_px / 300) ** 2
    fields = np.zeros(shape, dtype=bool)
    for _ in range(max(1, round(3 * area_9km2))):
        h, w = rng.integers(25, 45, 2)
        r, c = rng.integers(10, size_px - 60, 2)
        fields[r : r + h, c : c + w] = True
    rock = np.zeros(shape, dtype=bool)
    for _ in range(max(1, round(area_9km2))):
        centre = rng.uniform(0.15, 0.85, 2) * size_px
        rock |= disc_blob(rng, shape, tuple(centre), rng.uniform(6, 10)) < 1
    river_distance, sandbar, riparian = _river(rng, shape, years)
    fields &= ~riparian & ~rock
    land = Landscape(shape, cover, amplitude, fields, rock, river_distance, sandbar, riparian)
    land.pit_texture = (1 + 0.04 * smooth_noise(rng, shape, 3)).astype(np.float32)
    _plant_pits(rng, land, years, pit_radius_px)
    return land


def _river(rng: np.random.Generator, shape: tuple[int, int], years: tuple[int, ...]):
    """Distance to a meandering centre line per year (it moves 1.5 px south in the last year), sandbars, banks."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    wavelength = rng.uniform(0.45, 0.6) * shape[1]
    amplitude = rng.uniform(0.05, 0.07) * shape[0]
    phase = rng.uniform(0, 2 * np.pi)
    base_row = 0.72 * shape[0]
    centre = base_row + amplitude * np.sin(2 * np.pi * cols / wavelength + phase)
    slope = amplitude * 2 * np.pi / wavelength * np.cos(2 * np.pi * cols / wavelength + phase)
    stretch = np.sqrt(1 + slope**2)
    distances = {}
    for i, year in enumerate(years):
        shift = 1.5 if i == len(years) - 1 else 0.0
        distances[year] = np.abs(rows - centre - shift) / stretch
    signed = (rows - centre) / stretch
    # sandbars on the inner side of each bend: south of the channel where it bends north, and vice versa
    inner = np.sign(np.sin(2 * np.pi * cols / wavelength + phase)) * -1
    patchy = smooth_noise(rng, shape, 6) > -0.3
    sandbar = (signed * inner > 1.0) & (signed * inner < 5.5) & patchy
    riparian = (distances[years[0]] < 9.0) & ~sandbar
    return distances, sandbar, riparian


def _plant_pits(
    rng: np.random.Generator, land: Landscape, years: tuple[int, ...], radius_px: tuple[float, float] = PIT_RADIUS_PX
) -> None:
    """Pits open in the second year (one already in the baseline year, one only in the last) and grow every year.

    The largest get a pond in the last year.
    """
    size = land.shape[0]
    count = max(4, round(5 * (size / 300) ** 2))
    reach = land.fields | land.rock | (land.river_distance[years[0]] < 12)
    keep_out = ndimage.binary_dilation(reach, iterations=24)  # a grown pit stays clear of them
    centres: list[tuple[float, float]] = []
    attempts = 0
    while len(centres) < count and attempts < 10_000:
        attempts += 1
        centre = tuple(rng.uniform(22, size - 22, 2))
        if keep_out[int(centre[0]), int(centre[1])] or any(np.hypot(*np.subtract(centre, c)) < 36 for c in centres):
            continue
        centres.append(centre)
    for year in years:
        land.pits[year] = np.zeros(land.shape, dtype=bool)
        land.ponds[year] = np.zeros(land.shape, dtype=bool)
    for k, centre in enumerate(centres):
        start = years[-1] if k == len(centres) - 1 else years[0] if k == 1 else years[1]
        radius = rng.uniform(*radius_px)
        growth = rng.uniform(*(g * r / d for g, r, d in zip(PIT_GROWTH_PX, radius_px, PIT_RADIUS_PX, strict=True)))
        blob_rng = np.random.default_rng(rng.integers(2**32))
        record = {"id": f"pit-{k + 1}", "centre_px": [round(centre[0], 1), round(centre[1], 1)], "opens": str(start)}
        radii = {}
        for year in years:
            if year < start:
                continue
            r = radius + growth * (year - start)
            radii[str(year)] = round(r, 1)
            shape_rng = np.random.default_rng(blob_rng.integers(2**32))
            blob = disc_blob(shape_rng, land.shape, centre, r) < 1
            land.pits[year] |= blob | land.pits.get(year - 1, np.zeros(land.shape, dtype=bool))
            if year == years[-1] and r >= 9:
                land.ponds[year] |= disc_blob(shape_rng, land.shape, centre, 0.35 * r) < 1
        record["radius_px"] = radii
        land.pit_records.append(record)
    # the pit hidden under a cloud on every date of the second year
    first = next(r for r in land.pit_records if r["opens"] == str(years[1]))
    land.clouded_pit = {"id": first["id"], "year": str(years[1]), "centre_px": first["centre_px"]}
    first["hidden_by_cloud_in"] = str(years[1])


def ground(land: Landscape, year: int, greenness: float) -> np.ndarray:
    """Cloud-free surface reflectance on a date, ``(band, row, column)`` float32."""
    state = np.clip(greenness * land.amplitude, 0, 1)[None]
    vegetation = spectrum("dry_vegetation") + (spectrum("green_vegetation") - spectrum("dry_vegetation")) * state
    cover = np.where(land.riparian, 0.85, land.cover)[None]
    image = cover * vegetation + (1 - cover) * spectrum("soil")
    crop_cover = 0.05 + 0.85 * greenness
    crop = crop_cover * spectrum("green_vegetation") + (1 - crop_cover) * spectrum("soil")
    image = np.where(land.fields[None], crop, image)
    image = np.where(land.rock[None], spectrum("rock"), image)
    image = np.where(land.sandbar[None], spectrum("sand"), image)
    image = np.where(land.water(year, greenness)[None], spectrum("water"), image)
    image = np.where(land.pits[year][None], spectrum("pit") * land.pit_texture[None], image)
    image = np.where(land.ponds[year][None], spectrum("pond"), image)
    return image.astype(np.float32)


@dataclass
class Sky:
    """One date's clouds: reflectance blending weights at 10 m and the SCL classes at 20 m."""

    alpha: np.ndarray  # cloud opacity 0..1 (10 m)
    shade: np.ndarray  # multiplicative darkening of shadows (10 m)
    scl_sky: np.ndarray  # 20 m: 0 none, else the SCL class (3, 8, 9, 10)
    cloud: np.ndarray  # 10 m truth: any cloud, rim or haze
    shadow: np.ndarray  # 10 m truth: any shadow


SHADOW_OFFSET_20M = (9, 13)  # rows, columns: shadows fall south-east of their cloud


def make_sky(
    rng: np.random.Generator, shape: tuple[int, int], greenness: float, forced: list[tuple[float, float, float]]
) -> Sky:
    """Clouds of a date (more in the wet season), plus ``forced`` ones ``(row, col, radius)`` in 10 m pixels."""
    half = (shape[0] // 2, shape[1] // 2)
    area_9km2 = (shape[0] / 300) ** 2
    core = np.zeros(half, dtype=bool)
    rim = np.zeros(half, dtype=bool)
    cirrus = np.zeros(half, dtype=bool)
    clouds = [
        (*(rng.uniform(0, 1, 2) * half), rng.uniform(6, 14))
        for _ in range(rng.poisson((0.6 + 2.2 * greenness) * area_9km2))
    ]
    clouds += [(r / 2, c / 2, radius / 2) for r, c, radius in forced]
    for row, col, radius in clouds:
        distance = disc_blob(rng, half, (row, col), radius)
        core |= distance < 0.75
        rim |= distance < 1.0
    for _ in range(rng.poisson(0.5 * area_9km2)):
        cirrus |= disc_blob(rng, half, tuple(rng.uniform(0, 1, 2) * half), rng.uniform(8, 16)) < 1
    rim &= ~core
    cirrus &= ~(core | rim)
    cloudy = core | rim
    shadow = np.zeros(half, dtype=bool)
    dr, dc = SHADOW_OFFSET_20M
    shadow[dr:, dc:] = cloudy[:-dr, :-dc]
    shadow &= ~cloudy & ~cirrus
    scl = np.zeros(half, dtype=np.uint8)
    scl[shadow] = 3
    scl[cirrus] = 10
    scl[rim] = 8
    scl[core] = 9
    up = _upsample
    alpha = np.where(up(core), 0.95, np.where(up(rim), 0.6, np.where(up(cirrus), 0.3, 0.0))).astype(np.float32)
    haze = ndimage.binary_dilation(up(cloudy), iterations=1) & ~up(cloudy)  # missed by the classifier
    alpha = np.where(haze & (alpha == 0), 0.12, alpha).astype(np.float32)
    shade = np.where(up(shadow), 0.35, 1.0).astype(np.float32)
    shadow_haze = ndimage.binary_dilation(up(shadow), iterations=1) & ~up(shadow) & (alpha == 0)
    shade = np.where(shadow_haze, 0.85, shade).astype(np.float32)
    return Sky(alpha, shade, scl, up(cloudy | cirrus) | haze, up(shadow) | shadow_haze)


def _upsample(mask_20m: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(mask_20m, 2, axis=0), 2, axis=1)


def scene_classes(image: np.ndarray, land: Landscape, year: int, greenness: float, sky: Sky) -> np.ndarray:
    """The 20 m scene classification: sky classes where clouds are, else water, vegetation or not vegetated."""
    mean = image.reshape(image.shape[0], image.shape[1] // 2, 2, image.shape[2] // 2, 2).mean(axis=(2, 4))
    ndvi = (mean[3] - mean[2]) / (mean[3] + mean[2])
    water = land.water(year, greenness) | land.ponds[year]
    water_20m = water.reshape(water.shape[0] // 2, 2, water.shape[1] // 2, 2).mean(axis=(1, 3)) >= 0.5
    classes = np.where(water_20m, 6, np.where(ndvi > 0.35, 4, 5)).astype(np.uint8)
    return np.where(sky.scl_sky > 0, sky.scl_sky, classes)


@dataclass
class Acquisition:
    """One date's rendered bands (reflectance, 10 m), SCL (20 m) and truth masks."""

    date: dt.date
    image: np.ndarray
    scl: np.ndarray
    sky: Sky
    water: np.ndarray
    outside: np.ndarray  # 10 m: outside the swath


def acquire(
    rng: np.random.Generator, land: Landscape, date: dt.date, years: tuple[int, ...], noise_sd: float = 0.003
) -> Acquisition:
    """Render one date: ground, illumination noise, clouds and shadows, sensor noise, swath edge, saturation."""
    greenness = GREENNESS[date.month]
    forced = _forced_clouds(land, date, years, greenness)
    sky = make_sky(rng, land.shape, greenness, forced)
    image = ground(land, date.year, greenness)
    image *= (1 + 0.015 * smooth_noise(rng, land.shape, 50))[None]
    image = image * sky.shade[None]
    image = (1 - sky.alpha[None]) * image + sky.alpha[None] * spectrum("cloud")
    image += rng.normal(0, noise_sd, image.shape).astype(np.float32)
    scl = scene_classes(image, land, date.year, greenness, sky)
    outside = np.zeros(land.shape, dtype=bool)
    if date == dt.date(years[1], 8, 15):  # this pass saw only the east of the scene
        outside[:, : land.shape[1] // 5 // 2 * 2] = True
        scl[:, : land.shape[1] // 5 // 2] = 0
    if date == dt.date(years[0], 5, 25):
        rows, cols = rng.integers(0, land.shape[0] // 2, 30), rng.integers(0, land.shape[1] // 2, 30)
        scl[rows, cols] = 1
        image[:3, rows * 2, cols * 2] = 6.5  # saturated: the digital number's ceiling
    water = land.water(date.year, greenness) | land.ponds[date.year]
    return Acquisition(date, image, scl, sky, water, outside)


def _forced_clouds(land: Landscape, date: dt.date, years: tuple[int, ...], greenness: float) -> list:
    forced = []
    if land.clouded_pit and date.year == int(land.clouded_pit["year"]):
        row, col = land.clouded_pit["centre_px"]
        record = next(r for r in land.pit_records if r["id"] == land.clouded_pit["id"])
        radius = float(record["radius_px"][str(date.year)]) + 26
        forced.append((row, col, radius))
    if date.year == years[-1] and greenness >= 0.5:  # both wet-season dates of the last year hide a field
        rows, cols = np.nonzero(land.fields)
        if rows.size:
            label, _ = ndimage.label(land.fields)
            first = label == 1
            r, c = np.nonzero(first)
            forced.append((r.mean(), c.mean(), 0.5 * np.hypot(np.ptp(r), np.ptp(c)) + 24))
    return forced


def write_acquisition(folder: Path, acquisition: Acquisition, transform_10m, tags: dict) -> list[Path]:
    """Write one date's seven band files; returns their paths."""
    stamp = acquisition.date.strftime("%Y%m%d")
    paths = []
    for i, band in enumerate(BANDS):
        reflectance = acquisition.image[i]
        if BAND_RESOLUTION_M[band] == 20:
            reflectance = reflectance.reshape(reflectance.shape[0] // 2, 2, reflectance.shape[1] // 2, 2).mean(
                axis=(1, 3)
            )
            outside = acquisition.outside[::2, ::2]
        else:
            outside = acquisition.outside
        dn = np.round(reflectance * QUANTIFICATION / DN_STEP) * DN_STEP + BOA_ADD_OFFSET
        dn = np.clip(dn, 1, 65535).astype(np.uint16)
        dn[outside] = 0
        paths.append(_write_band(folder, stamp, band, dn, transform_10m, tags, reflectance=True))
    paths.append(_write_band(folder, stamp, "SCL", acquisition.scl, transform_10m, tags, reflectance=False))
    return paths


def _write_band(folder: Path, stamp: str, band: str, values: np.ndarray, transform_10m, tags: dict, reflectance: bool):
    resolution = BAND_RESOLUTION_M[band]
    path = folder / f"SYNTH_{TILE_ID}_{stamp}_{band}_{resolution}m.tif"
    block = 256 if values.shape[0] >= 256 else 128
    profile = dict(
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype=values.dtype.name,
        crs=CRS,
        transform=transform_10m @ transform_10m.scale(resolution / PIXEL_M),
        nodata=0,
        tiled=True,
        blockxsize=block,
        blockysize=block,
        compress="DEFLATE",
        predictor=2,
    )
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(values, 1)
        dataset.update_tags(**tags, BAND=band, ACQUISITION_DATE=f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}")
        if reflectance:
            dataset.scales = (1.0 / QUANTIFICATION,)
            dataset.offsets = (-BOA_ADD_OFFSET / QUANTIFICATION,)
            dataset.update_tags(BOA_ADD_OFFSET=str(-BOA_ADD_OFFSET), BOA_QUANTIFICATION_VALUE=str(QUANTIFICATION))
    return path


def greening_mask(land: Landscape, year: int) -> np.ndarray:
    """Pixels whose cloud-free NDVI rises by at least 0.2 from the driest to the greenest date."""
    wet, dry = ground(land, year, 1.0), ground(land, year, 0.0)
    ndvi_wet = (wet[3] - wet[2]) / (wet[3] + wet[2])
    ndvi_dry = (dry[3] - dry[2]) / (dry[3] + dry[2])
    return (ndvi_wet - ndvi_dry) >= 0.2


def truth_layers(land: Landscape, acquisitions: list[Acquisition], year: int) -> np.ndarray:
    """The truth bit flags (:data:`TRUTH_BITS`) of one year, uint8 at 10 m."""
    dated = [a for a in acquisitions if a.date.year == year]
    pit = land.pits[year]
    flags = np.where(pit, TRUTH_BITS["pit"], 0).astype(np.uint8)
    cloud = np.any([a.sky.cloud for a in dated], axis=0) & ~pit
    shadow = np.any([a.sky.shadow for a in dated], axis=0) & ~pit
    river = np.any([a.water for a in dated], axis=0) & ~pit
    excluded = [(np.isin(_upsample(a.scl), (0, 1, 3, 8, 9, 10, 11))) | a.outside for a in dated]
    never_clear = np.all(excluded, axis=0)
    greening = greening_mask(land, year) & ~pit & ~river & ~land.sandbar & ~land.rock
    for name, mask in (
        ("cloud", cloud),
        ("shadow", shadow),
        ("river", river),
        ("sandbar", land.sandbar & ~river & ~pit),
        ("greening", greening),
        ("never_clear", never_clear),
        ("rock", land.rock & ~pit),
    ):
        flags |= np.where(mask, TRUTH_BITS[name], 0).astype(np.uint8)
    return flags


def build_scenes(
    folder: Path,
    size_px: int = SIZE_PX,
    seed: int = SEED,
    years: tuple[int, ...] = YEARS,
    dates=DATES,
    noise_sd: float = 0.003,
    pit_radius_px: tuple[float, float] = PIT_RADIUS_PX,
) -> dict:
    """Write a synthetic scene set of ``size_px`` x ``size_px`` 10 m pixels into ``folder``; return the truth summary.

    ``noise_sd`` is the sensor noise (standard deviation of reflectance) of every band and date;
    ``pit_radius_px`` the range of the pits' first-year radii (they grow by about 0.6 times that a year).
    """
    if size_px % 2:
        raise ValueError("size_px must be even (20 m bands are half as many pixels)")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    land = make_landscape(rng, size_px, years, pit_radius_px)
    transform = from_origin(*ORIGIN, PIXEL_M, PIXEL_M)
    tags = {
        "MINEWATCH_SYNTHETIC": "yes",
        "DESCRIPTION": "SYNTHETIC Sentinel-2-like Level-2A band made by minewatch's data/build_demo_scenes.py; "
        "not real imagery, no real place is depicted",
        "PROCESSING_BASELINE": "04.00 (encoding only)",
    }
    acquisitions = []
    for year in years:
        for month, day in dates:
            acquisition = acquire(rng, land, dt.date(year, month, day), years, noise_sd)
            write_acquisition(folder, acquisition, transform, tags)
            acquisitions.append(acquisition)
    return write_truth(folder, land, acquisitions, years, transform, seed)


def write_truth(folder: Path, land: Landscape, acquisitions: list[Acquisition], years, transform, seed: int) -> dict:
    """Write ``truth.tif`` (one uint8 band of bit flags per year) and ``truth.json`` (what was planted).

    Bits (:data:`TRUTH_BITS`): 1 pit (active ground of a planted pit, its pond included),
    2 cloud (under a cloud, its rim, haze or cirrus on at least one date of the year),
    4 cloud shadow, 8 river (open water on at least one date), 16 sandbar, 32 seasonal
    greening (cloud-free NDVI rises by >= 0.2 into the rains; savanna and fields),
    64 never clear (SCL excluded or outside the swath on every date), 128 bare rock.
    Only "pit" and "never clear" may overlap a pit; the other classes exclude pit pixels.
    """
    layers = np.stack([truth_layers(land, acquisitions, year) for year in years])
    profile = dict(
        driver="GTiff",
        width=land.shape[1],
        height=land.shape[0],
        count=len(years),
        dtype="uint8",
        crs=CRS,
        transform=transform,
        compress="DEFLATE",
        tiled=True,
        blockxsize=256 if land.shape[1] >= 256 else 128,
        blockysize=256 if land.shape[0] >= 256 else 128,
    )
    with rasterio.open(folder / "truth.tif", "w", **profile) as dataset:
        dataset.write(layers)
        for i, year in enumerate(years):
            dataset.set_band_description(i + 1, str(year))
        dataset.update_tags(MINEWATCH_SYNTHETIC="yes", BITS=json.dumps(TRUTH_BITS))
    counts = {
        str(year): {name: int(((layers[i] & bit) > 0).sum()) for name, bit in TRUTH_BITS.items()}
        for i, year in enumerate(years)
    }
    summary = {
        "synthetic": True,
        "description": "What data/build_demo_scenes.py planted in these SYNTHETIC scenes; see its docstring.",
        "seed": seed,
        "crs": CRS,
        "pixel_m": PIXEL_M,
        "size_px": list(land.shape),
        "transform": list(transform)[:6],
        "baseline": str(years[0]),
        "periods": [str(y) for y in years[1:]],
        "dates": [a.date.isoformat() for a in acquisitions],
        "truth_raster": "truth.tif",
        "truth_bands": {str(y): i + 1 for i, y in enumerate(years)},
        "bits": TRUTH_BITS,
        "pits": land.pit_records,
        "clouded_pit": land.clouded_pit,
        "counts_px": counts,
    }
    (folder / "truth.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


README = """# Synthetic Sentinel-2-like scenes (minewatch demo)

**SYNTHETIC: not real imagery.** Everything here is made up by `data/build_demo_scenes.py`
(fixed seed, no network); no real place, mine or company is depicted. Every band file is
tagged `MINEWATCH_SYNTHETIC=yes`, so activity rasters built from them are tagged too and
the dashboard shows its synthetic-data banner.

- 3 km x 3 km near Marange, Zimbabwe (EPSG:32736, WGS 84 / UTM 36S; top-left corner
  x 426600, y 7829700), five dates a year (20 Jan, 10 Mar, 25 May, 15 Aug, 30 Oct) in
  2020, 2021 and 2022.
- `SYNTH_T36KVD_<YYYYMMDD>_<BAND>_<10m|20m>.tif`: B02 B03 B04 B08 (10 m), B11 B12 SCL
  (20 m); uint16 digital numbers with the processing-baseline-04.00 encoding
  (reflectance = DN / 10000 - 0.1, also stored as each file's scale and offset), nodata 0.
- `truth.json`, `truth.tif`: what was planted (pits per year, clouds, shadows, river,
  sandbars, greening, never-clear pixels), for the tests.

Build activity rasters from them, then analyse:

    python app.py build-activity --scenes data/demo_scenes --out results/demo_activity
"""


def main(argv: list[str] | None = None) -> int:
    """Rebuild ``data/demo_scenes/`` (or ``--out``) from scratch."""
    parser = argparse.ArgumentParser(description="Write minewatch's SYNTHETIC Sentinel-2-like demo scenes.")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"output folder (default {OUT_DIR})")
    parser.add_argument("--size-px", type=int, default=SIZE_PX, help="scene width and height in 10 m pixels")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.out.exists():
        shutil.rmtree(args.out)
    summary = build_scenes(args.out, args.size_px)
    (args.out / "README.md").write_text(README, encoding="utf-8")
    size_mb = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    pits = {year: counts["pit"] for year, counts in summary["counts_px"].items()}
    print(
        f"wrote {len(summary['dates'])} dates into {args.out} ({size_mb:.1f} MB) in {time.monotonic() - started:.1f} s; "
        f"pit pixels per year {pits}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
