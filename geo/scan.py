"""One pass over a period's activity raster: zonal areas and footprints together.

The raster arrives as a ``read(row_start, row_stop)`` function returning float32 scores
with NaN for nodata (``layers.activity`` provides it), so this module never touches a
file. Strips of rows are read once each; every strip is thresholded, cleaned of
speckle, integrated over all polygons (:mod:`geo.zonal`) and polygonised into
footprints (:mod:`geo.footprints`).

Strips are independent given the reader (each is read with its own halo), so a raster
can also be scanned in *bands* of whole strips (:func:`band_rows`), one task each
(:func:`scan_band`), and the bands joined (:func:`combine_bands`) into exactly, bit for
bit, what :func:`scan_activity` computes in one pass: the bands keep every strip's sums
apart (only the polygons a strip touches), and :func:`combine_bands` adds them in row
order, as the single pass does. Footprint parts are per strip either way;
:func:`geo.footprints.merge_footprints` joins them across strips and bands afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from affine import Affine
from pyproj import CRS
from scipy import ndimage

from geo.crs import pixel_area_ha
from geo.footprints import polygonise_strip
from geo.zonal import RingPieces, integrate_strip

ReadRows = Callable[[int, int], np.ndarray]
CHANNELS = ("active_ha", "observed_ha", "new_active_ha")
TARGET_STRIP_PIXELS = 4_000_000
TARGET_BAND_PIXELS = 32_000_000
AREA_BLOCK_COLUMNS = 256
AREA_SAMPLE_ROWS = 16
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass
class PeriodScan:
    """What one raster pass yields.

    ``sums[i]`` holds, for polygon ``i`` of the pieces, its coverage-weighted
    ``active_ha``, ``observed_ha`` (not nodata) and ``new_active_ha`` (active now,
    seen and not active in the previous period; NaN without a previous period).
    ``footprint_parts`` are polygons in the raster's CRS, one per 4-connected piece
    of a strip; :func:`geo.footprints.merge_footprints` joins them.
    """

    sums: np.ndarray
    footprint_parts: list


@dataclass
class BandScan:
    """What a scan of one band of rows yields: a part of a :class:`PeriodScan`.

    ``strip_sums`` holds, for each strip of the band in row order, the indices of the
    polygons whose rings reach the strip's rows and their ``(channels, k)`` sums;
    ``footprint_parts`` the strips' footprint parts, in row order.
    """

    rows: tuple[int, int]
    strip_sums: list[tuple[np.ndarray, np.ndarray]]
    footprint_parts: list


def strip_height(width: int) -> int:
    """Rows per strip: about four million pixels, between 16 and 1024 rows."""
    return int(min(max(TARGET_STRIP_PIXELS // max(width, 1), 16), 1024))


def band_rows(height: int, width: int, target_pixels: int | None = None) -> list[tuple[int, int]]:
    """Row ranges ``(start, stop)`` of whole strips, about ``target_pixels`` each, covering the raster.

    A band starts on a strip boundary of :func:`scan_activity`, so scanning it reads
    and computes exactly the strips the single pass would. ``target_pixels`` defaults
    to :data:`TARGET_BAND_PIXELS` (32 million: a few seconds of work, tens of MB).
    """
    target_pixels = TARGET_BAND_PIXELS if target_pixels is None else target_pixels
    rows = strip_height(width)
    step = rows * max(round(target_pixels / (rows * max(width, 1))), 1)
    return [(start, min(start + step, height)) for start in range(0, height, step)]


def min_patch_pixels(min_patch_ha: float, typical_pixel_ha: float) -> int:
    """Smallest active patch kept, in whole pixels (0 keeps everything).

    Rounded to the nearest pixel count, so 0.1 ha at 10 m is 10 pixels even where the
    projection makes a pixel 0.0099 ha.
    """
    if min_patch_ha <= 0:
        return 0
    return max(round(min_patch_ha / typical_pixel_ha), 1)


def active_mask(scores: np.ndarray, threshold: float, min_pixels: int) -> np.ndarray:
    """Pixels with ``score >= threshold`` in 8-connected patches of ``min_pixels`` or more."""
    active = scores >= threshold  # NaN compares False: nodata is never active
    if min_pixels <= 1 or not active.any():
        return active
    labels, count = ndimage.label(active, structure=EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    return keep[labels]


def strip_pixel_areas(transform, crs, area_crs, start: int, stop: int, block_centres: np.ndarray) -> np.ndarray:
    """Pixel areas (ha) for rows ``start..stop`` and each block of columns.

    Measured every :data:`AREA_SAMPLE_ROWS` rows and held between samples: over 16 rows
    of a lon/lat grid at 10 m the true area changes by about one part in 100,000.
    """
    sampled = pixel_area_ha(transform, crs, area_crs, np.arange(start, stop, AREA_SAMPLE_ROWS), block_centres)
    return np.repeat(sampled, AREA_SAMPLE_ROWS, axis=0)[: stop - start]


class RasterGrid(Protocol):
    """A raster's grid as the scans need it (``layers.activity.Grid`` is one)."""

    transform: Affine
    crs: CRS
    height: int
    width: int


def scan_activity(
    read: ReadRows,
    *,
    grid: RasterGrid,
    pieces: RingPieces,
    area_crs: CRS,
    threshold: float,
    min_patch_ha: float,
    read_previous: ReadRows | None = None,
    footprints: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> PeriodScan:
    """Integrate one period's raster over the polygons of ``pieces`` and find footprints.

    Parameters
    ----------
    read, read_previous:
        Row readers for this period and (on the same grid) the previous one.
    grid:
        The grid of ``read`` (:class:`RasterGrid`, e.g. ``layers.activity.Grid``).
    pieces:
        :func:`geo.zonal.cut_rings` of the polygons, on the same grid.
    area_crs:
        Equal-area CRS in which pixel areas (hectares) are measured.
    threshold, min_patch_ha:
        A pixel is active at ``score >= threshold`` in a patch of at least
        ``min_patch_ha`` hectares. Patch sizes are exact: each strip is read with a
        halo as tall as the smallest kept patch, so any smaller patch lies wholly in it.
    footprints:
        Polygonise the active pixels too (False: only the zonal sums).
    progress:
        Called with (rows done, rows in all) after each strip.
    """
    sums = np.zeros((len(CHANNELS), pieces.n_polygons))
    parts: list = []

    def add(start: int, stop: int, strip_sums: np.ndarray, strip_parts: list) -> None:
        nonlocal sums
        sums += strip_sums
        parts.extend(strip_parts)
        if progress is not None:
            progress(stop, grid.height)

    _scan_rows(read, read_previous, grid, pieces, area_crs, threshold, min_patch_ha, (0, grid.height), footprints, add)
    if read_previous is None:
        sums[CHANNELS.index("new_active_ha")] = np.nan
    return PeriodScan(sums, parts)


def scan_band(
    read: ReadRows,
    *,
    grid: RasterGrid,
    pieces: RingPieces,
    area_crs: CRS,
    threshold: float,
    min_patch_ha: float,
    rows: tuple[int, int],
    read_previous: ReadRows | None = None,
) -> BandScan:
    """Scan only the rows ``rows`` (a band of :func:`band_rows`) of a period's raster.

    Parameters are those of :func:`scan_activity` (the grid is the whole raster's);
    ``pieces`` need only hold the polygons that reach these rows, with their indices
    among all polygons. :func:`combine_bands` joins the bands of a raster.
    """
    strips: list[tuple[np.ndarray, np.ndarray]] = []
    parts: list = []

    def add(start: int, stop: int, strip_sums: np.ndarray, strip_parts: list) -> None:
        touched = np.unique(pieces.owner[pieces.rows_between(start, stop)])
        strips.append((touched, strip_sums[:, touched]))
        parts.extend(strip_parts)

    _scan_rows(read, read_previous, grid, pieces, area_crs, threshold, min_patch_ha, rows, True, add)
    return BandScan(rows, strips, parts)


def combine_bands(bands: list[BandScan], n_polygons: int, has_previous: bool) -> PeriodScan:
    """Join the bands of one raster into the :class:`PeriodScan` of a single pass.

    Strip sums are added in row order into one total, as :func:`scan_activity` does, so
    the result is the same to the last bit (a strip adds exactly 0 to the polygons it
    does not touch). ``has_previous``: whether the bands were scanned with a previous
    period (otherwise ``new_active_ha`` is NaN).
    """
    sums = np.zeros((len(CHANNELS), n_polygons))
    parts: list = []
    for band in sorted(bands, key=lambda b: b.rows):
        for touched, strip_sums in band.strip_sums:
            sums[:, touched] += strip_sums
        parts += band.footprint_parts
    if not has_previous:
        sums[CHANNELS.index("new_active_ha")] = np.nan
    return PeriodScan(sums, parts)


def _scan_rows(read, read_previous, grid, pieces, area_crs, threshold, min_patch_ha, rows, footprints, add) -> None:
    """The strips of ``rows``, in order: ``add(start, stop, sums, footprint_parts)`` for each."""
    transform, crs, height, width = grid.transform, grid.crs, grid.height, grid.width
    centre = pixel_area_ha(transform, crs, area_crs, np.array([height // 2]), np.array([width // 2]))[0, 0]
    min_pixels = min_patch_pixels(min_patch_ha, centre)
    halo = min_pixels if min_pixels > 1 else 0
    rows_per_strip = strip_height(width)
    block_centres = np.arange(0, width, AREA_BLOCK_COLUMNS) + min(AREA_BLOCK_COLUMNS, width) // 2
    block_centres = np.minimum(block_centres, width - 1)
    first, last = rows
    if first % rows_per_strip:
        raise ValueError(f"rows {rows}: a band must start on a strip boundary (a multiple of {rows_per_strip})")
    last = min(last, height)

    def fetch(start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        before = read_previous(start - halo, stop + halo) if read_previous is not None else None
        return read(start - halo, stop + halo), before

    starts = list(range(first, last, rows_per_strip))
    if not starts:
        return
    # One reader thread fetches the next strip while this one is computed (GDAL and the
    # compiled integrator release the GIL); the datasets are only ever used by that thread.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="minewatch-read") as reader:
        pending = reader.submit(fetch, first, min(first + rows_per_strip, last))
        for start in starts:
            stop = min(start + rows_per_strip, last)
            scores, before = pending.result()
            if stop < last:
                pending = reader.submit(fetch, stop, min(stop + rows_per_strip, last))
            core = slice(halo, halo + stop - start)
            active = active_mask(scores, threshold, min_pixels)[core]
            observed = ~np.isnan(scores[core])
            if before is not None:
                was_active = active_mask(before, threshold, min_pixels)[core]
                new_active = active & ~np.isnan(before[core]) & ~was_active
            else:
                new_active = np.zeros_like(active)
            pixel_ha = strip_pixel_areas(transform, crs, area_crs, start, stop, block_centres)
            masks = np.stack([active, observed, new_active]).view(np.uint8)
            strip_sums = integrate_strip(pieces, start, masks, pixel_ha, AREA_BLOCK_COLUMNS)
            strip_parts = polygonise_strip(active, transform @ Affine.translation(0, start)) if footprints else []
            add(start, stop, strip_sums, strip_parts)
