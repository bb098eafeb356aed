"""Build activity rasters from Sentinel-2 scenes: one Cloud-Optimized GeoTIFF per period, and a STAC catalog.

``build_activity(scenes, out_dir)`` reads Level-2A band files (:mod:`layers.sentinel2`:
a folder of single- or multi-band files, a local STAC file, or a STAC API URL searched
by ``--bbox``/``--datetime``/``--collection``/``--max-cloud``, whose assets are read
window by window over HTTP within :mod:`layers.network`'s one-URL allowance; ``--bbox``
also crops a local input, on a grid that starts on a corner of the files' blocks:
:attr:`BuildPlan.crop`),
masks clouds with the scene classification and takes each period's median composite
(:mod:`geo.composite`), and scores every pixel's disturbance 0..1 against a baseline
period (:mod:`geo.spectral`). The output folder holds ``<period>.tif`` (float32 scores,
nodata -9999, tagged ``MINEWATCH_SYNTHETIC=yes`` when any input scene says it is
synthetic) and ``catalog.json``, a self-contained STAC catalog whose items carry
``minewatch:period``, an ``activity`` asset and the provenance (input scene ids, method,
parameters, software versions). ``layers.activity.find_activity_rasters`` reads the
folder and the catalog alike, so ``app.py analyze --activity OUT`` takes either.

How it runs
-----------
The output grid is cut into square tiles (512 x 512 pixels by default). Each tile goes
through three tasks, and a task receives file paths and a window, never an open dataset:

1. *changes* (:func:`changes_task`): every band of the baseline and of each period read
   for exactly that tile (plus a few pixels of SCL around it for the cloud buffer),
   composited and compared, for all periods at once. Each date's five bands become its
   NDVI, BSI and water flag in one compiled pass, and each period's composites, season
   pairing, loss, gain and class evidence one more (:func:`geo.spectral.observe`,
   :func:`geo.spectral.period_evidence`); the tile's baseline water, from which the
   river corridor grows, rides along as a flag;
2. *edges* (:func:`edges_task`): the strips of those changes that the neighbours need;
3. *scores* (:func:`score_task`): with a halo of the neighbours' edges, the river
   corridor and so each pixel's class (river, pond, bare...), then the 3 x 3 median
   filter, the score and its growth into connected bare ground.

So every input pixel is read once, the result does not depend on the tiling (tested),
and memory per task depends on the tile size and the number of dates, not on the
scene's area. A worker keeps the build's files open from tile to tile (opening one costs
more than reading a tile of it), and on a cluster from build to build while they do not
change (:func:`layers.sentinel2.keep_files_open`). On a Dask cluster the workers also
describe the files the client found (:func:`describe_task`), so that no worker waits
while the client opens them; the scenes (paths and georeferencing) go to every worker
once per build (:meth:`_Runner.shared`), the intermediate results stay on the workers
(tasks are given the futures) and only the finished scores come back to the client,
already compressed as blocks of the output COGs (:func:`layers.cog_writer.encode_tile`);
the overview tiles are tasks too, one per period (:func:`overviews_task`, from the
compressed tiles below them). The changes (11 bytes a pixel and period, :data:`CHANGES_DTYPE`) of about
one row of tiles and the edge strips of two rows are held at a time (on the workers, or
in this process when run in process): that grows with the scene's width (about 18 MB
per 10 km of width for two periods), not with its area. The client spools the
compressed tiles as they arrive (:class:`layers.cog_writer.CogWriter`), then writes each
COG in one pass (each validated while the next is written), writes the catalog, and
swaps the folder in atomically: a failed run leaves the previous output as it was. The
catalog (validated) and the COG headers depend on the plan alone, so a background
thread makes them while the tiles run. So compressing the output spreads over the
workers too, and what is left for the client at the end is copying bytes.

By default the tasks run on a thread pool in this process. With ``scheduler`` (or the
environment variable ``MINEWATCH_SCHEDULER``), e.g. ``tcp://host:8786``, they run on
that Dask cluster (``dask.distributed``); its workers must have minewatch installed and
see the input files at the same paths. GDAL settings (``GDAL_CACHEMAX`` ...) are read
from the workers' environment.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import ctypes
import dataclasses
import datetime as dt
import functools
import itertools
import math
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
import rasterio.windows
import shapely
from pyproj import Transformer
from rasterio.windows import Window

from geo.composite import clear_mask
from geo.crs import WEB_CRS
from geo.errors import InputError, MinewatchError, raised_plainly
from geo.periods import Period, parse_period
from geo.spectral import (
    CORRIDOR_WATER,
    Evidence,
    ScoreParameters,
    add_open_water,
    baseline_of,
    changes_of_evidence,
    filter_changes,
    grow_into_workings,
    observe,
    period_evidence,
    river_corridor,
    score_of_changes,
)
from layers.activity import Grid
from layers.asset_signing import SIGNING_MODES, signing_for
from layers.atomic import atomic_folder
from layers.cog_writer import (
    MAX_TILE_PX,
    CogWriter,
    EncodedTile,
    OverviewJob,
    Pyramid,
    cog_errors,
    encode_tile,
    overview_tile,
)
from layers.dask_client import ENV_SCHEDULER, client_for, memory_per_thread_mib, worker_threads
from layers.network import is_remote_url, redact_url
from layers.progress import ConsoleProgress
from layers.sentinel2 import (
    DEFAULT_COLLECTION,
    DEFAULT_MAX_ITEMS,
    REFLECTANCE_BANDS,
    DescribeRequest,
    DescribeResult,
    Scene,
    SceneQuery,
    describe_files_here,
    find_scenes,
    keep_files_open,
    output_grid,
    parse_band_order,
    parse_bbox,
    read_reflectance,
    read_scl,
)
from layers.versions import software_versions

DEFAULT_TILE_PX = 512  # unless the band files' blocks are wider (tile_px_for)
SMALLEST_TILE_PX_FOR_MEMORY = 256  # tile_px_for halves the tiles down to this when a task would not fit
# A task's arrays at their largest, in MiB per megapixel (task_memory_mib): a changes task holds the baseline's
# dates and one period's at once, and every period's result, per megapixel of tile; a scores task every period's
# changes grown by the halo, and its scores, per megapixel of the grown tile. Fitted to tracemalloc peaks on the
# synthetic scenes, 128- to 1024-pixel tiles, 2-15 baseline dates, 1-15 a period, 1-10 periods (after a first
# task, whose one-off allocations are about 19 MiB): e.g. 292 and 304 MiB per megapixel for the changes of 15
# baseline dates and one or two periods of 15; 53-59, 74-82 and 168-197 per grown megapixel for the scores of 1, 2
# and 10 periods. Tested within 20 %.
CHANGES_MIB_PER_MPX = 36.0
CHANGES_MIB_PER_MPX_AND_DATE = 8.2
CHANGES_MIB_PER_MPX_AND_PERIOD = 12.0
SCORES_MIB_PER_MPX = 45.0
SCORES_MIB_PER_MPX_AND_PERIOD = 14.0
TASK_MEMORY_SHARE = 0.5  # of the memory a worker thread has, for a task's arrays: the rest for the worker itself
MIN_TILE_PX = 64
NODATA = -9999.0
MARKER = "catalog.json"
# GDAL's block cache while a task runs (see _task_env), unless the worker's environment sets one; GDAL has one cache
# per process, so a worker's threads share it.
TASK_GDAL_CACHE_MB = 16
# A pixel's changes in one period, as steps 1 and 2 hand them on: 11 bytes. Half precision (about 0.0005 at 1) for
# the loss, the gain and their spreads: the score's ramps are 0.1 wide. The evidence flags are bits; the number of
# values behind the spreads is exact (where overlapping tiles and orbits meet, a pixel can have over 255 a year).
CHANGE_VALUES = ("loss", "gain", "loss_sd", "gain_sd")  # the float16 fields, as geo.spectral.Evidence names them
CHANGES_DTYPE = np.dtype([*((name, "f2") for name in CHANGE_VALUES), ("flags", "u1"), ("count", "u2")])
# beyond the grid or outside the crop: no flag is set
UNSEEN = np.array((np.nan, np.nan, np.nan, np.nan, 0, 0), dtype=CHANGES_DTYPE)
TRIM_EVERY_TILES = 4
# How many changes tasks per thread run_tiles lets run ahead of the tiles the next score waits for: one running and
# one queued, so that a worker whose changes task ends has its next one (benchmarks/bench_changes_lead.py).
CHANGES_QUEUED_PER_THREAD = 2
MAX_FILTER_PX = 5  # the widest median --filter-px takes: 11 x 11 pixels
MAX_NOISE_Z = 10.0  # the largest --noise-z: beyond it no change of a realistic scene counts
METHOD = (
    "Sentinel-2 L2A; SCL classes 0,1,3,8,9,10,11 masked (cloud and shadow classes grown by cloud_buffer_m); "
    "each clear observation paired with the baseline's clear observation nearest in day of year (within "
    "season_window_days); median composites of the paired observations and of their partners; "
    "score = min(1, vegetation_weight * ramp(partner NDVI - paired NDVI, ndvi_drop) + bare_weight * "
    "ramp(paired BSI - partner BSI, bsi_rise)) (no pair: the baseline's min NDVI and max BSI against the "
    "period's composite); each ramp starts at noise_z standard errors of the pixel's change where that is "
    "higher (standard deviation of its paired differences, from 3 values, 3x3 median, taken from the nearest "
    "pixels within noise_reach_m where missing, over the square root of their number); open water = MNDWI "
    "or NDWI > water_index; baseline water, sandbars (bare in the baseline) and water inside the river "
    "corridor (baseline water grown by corridor_m) score 0; new water outside it scores its vegetation loss "
    "(pit ponds); never seen clear = nodata"
)
VERSIONED_PACKAGES = ("numpy", "scipy", "rasterio", "pyproj", "dask", "distributed", "rio-cogeo", "pystac")

Progress = Callable[[str, int, int], None]


# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TileJob:
    """One tile's work: a window of the output grid and the scenes that touch its part in the crop (file paths
    only)."""

    row: int  # tile index, not pixels
    col: int
    tile_px: int
    grid: Grid
    baseline: tuple[Scene, ...]
    periods: tuple[tuple[str, tuple[Scene, ...]], ...]
    params: ScoreParameters
    buffer_px: int
    corridor_px: int
    grow_px: int = 0
    reach_px: int = 0  # how far a pixel without a noise spread of its own borrows one (noise_reach_m)
    session: str = ""  # the build's id: a worker thread keeps this build's input files open between tiles
    crop: Window | None = None  # the grid's pixels inside --bbox (BuildPlan.crop); None: all of them

    @property
    def score_halo_px(self) -> int:
        """Pixels of classified changes around the tile that the scores need: the filter's, the spreads' reach,
        then the growth's."""
        return self.params.filter_px + self.reach_px + self.grow_px

    @property
    def halo_px(self) -> int:
        """Pixels of evidence around the tile that step 3 needs: the score's halo, classified with a corridor
        that reaches ``corridor_px`` further."""
        return self.score_halo_px + self.corridor_px

    @property
    def window(self) -> Window:
        """The tile as a window of the output grid (pixels)."""
        return tile_window(self.grid, self.tile_px, self.row, self.col)

    @property
    def read_window(self) -> Window | None:
        """The part of :attr:`window` inside :attr:`crop`, which the tile reads and scores (None: no part)."""
        return _in_crop(self.window, self.crop)


def _in_crop(window: Window, crop: Window | None) -> Window | None:
    """The part of ``window`` inside ``crop`` (all of it without a crop; None: no part)."""
    if crop is None:
        return window
    return rasterio.windows.intersection(window, crop) if rasterio.windows.intersect(window, crop) else None


def tile_rows_columns(grid: Grid, tile_px: int) -> tuple[int, int]:
    """How many rows and columns of ``tile_px`` squares cover ``grid`` (:func:`tile_window`)."""
    return math.ceil(grid.height / tile_px), math.ceil(grid.width / tile_px)


def tile_window(grid: Grid, tile_px: int, row: int, col: int) -> Window:
    """Tile ``(row, col)`` of ``grid`` cut into ``tile_px`` squares (smaller at the right and bottom)."""
    top, left = row * tile_px, col * tile_px
    return Window(left, top, min(tile_px, grid.width - left), min(tile_px, grid.height - top))


@raised_plainly
def changes_task(job: TileJob, scenes: tuple) -> np.ndarray:
    """Step 1: each period's vegetation loss, bare-soil gain and class evidence in the tile.

    ``scenes`` is the job's ``(baseline, periods)``, travelling apart from the job
    (:func:`_without_scenes`): a build sends them to the workers once
    (:meth:`_Runner.shared`), not in every task.

    Every band of the baseline and of each period is read for exactly the tile's part in
    the crop, :attr:`TileJob.read_window` (plus a few pixels of SCL around it for the cloud
    buffer; the rest of the tile is :data:`UNSEEN`): each date's bands become its NDVI,
    BSI and water flag in one compiled pass (:func:`geo.spectral.observe`), and each
    period's composites, season pairing and changes one more
    (:func:`geo.spectral.period_evidence`). The river corridor reaches beyond the tile,
    so the classes are decided in step 3; this tile's baseline water, from which the
    corridor grows, is the :data:`~geo.spectral.CORRIDOR_WATER` bit.

    Returns
    -------
    numpy.ndarray
        ``(period, row, column)`` of :data:`CHANGES_DTYPE`: the loss, the gain, the
        :class:`geo.spectral.Evidence` flags, the loss's and gain's spreads and their
        number of values. 11 bytes a pixel and period, where float32 would take 24: it is
        what the workers hold and send between tasks.
    """
    job = dataclasses.replace(job, baseline=scenes[0], periods=scenes[1])
    params = job.params
    tile, window = job.window, job.read_window
    full = np.full((len(job.periods), tile.height, tile.width), UNSEEN, dtype=CHANGES_DTYPE)
    if window is None:  # the tile lies outside the crop: nothing to read
        return full
    row, col = int(window.row_off - tile.row_off), int(window.col_off - tile.col_off)
    out = full[:, row : row + window.height, col : col + window.width]  # a view: the crop's part of the tile
    with _task_env(job):
        corridor_water = np.zeros((window.height, window.width), dtype=bool)
        base_observed, base_water, base_days = _observations(job.baseline, job, window, corridor_water)
        baseline = baseline_of(base_observed, base_water)
        del base_water
        for i, (_label, scenes) in enumerate(job.periods):
            observed, water_dates, days = _observations(scenes, job, window)
            evidence = period_evidence(observed, water_dates, days, base_observed, base_days, baseline, params)
            # Indices of near-zero or negative reflectances (noise on dark water) can exceed float16's 65504:
            # they become inf, as a float32 ramp takes them (a loss of inf is full loss, a spread of inf no signal).
            with np.errstate(over="ignore"):
                for name in CHANGE_VALUES:
                    out[name][i] = getattr(evidence, name)
            out["flags"][i] = evidence.flags | np.where(corridor_water, np.uint8(CORRIDOR_WATER), np.uint8(0))
            out["count"][i] = evidence.count
            del observed, water_dates, evidence  # before the next period's are read, not after
    return full


def edges_task(job: TileJob, changes: np.ndarray):
    """Step 2: what the neighbouring tiles need of a tile's changes: its edges, :attr:`TileJob.halo_px` wide.

    Returns an :class:`_Edges` of the edges that face a neighbour in the grid (or the whole
    array when the tile is too small to have four separate edges). On a Dask cluster it
    runs where the changes are, so only these strips travel to the workers that score the
    neighbours: half a tile's four strips on a grid of 2 x 2 tiles.
    """
    halo = job.halo_px
    if min(changes.shape[-2:]) <= 2 * halo:
        return changes
    rows, columns = tile_rows_columns(job.grid, job.tile_px)
    facing = (job.row > 0, job.row < rows - 1, job.col > 0, job.col < columns - 1)
    return _Edges(changes, halo, facing)


def score_task(job: TileJob, changes_around: list[list]) -> np.ndarray:
    """Step 3: the scores of every period in the tile, ``(period, row, column)`` float32, :data:`NODATA` where unseen.

    ``changes_around`` holds, row by row, the 3 x 3 tiles around this one: this tile's
    :func:`changes_task` output in the middle, its neighbours' :func:`edges_task`
    outputs around it (None beyond the grid). The tile's evidence is grown by
    :attr:`TileJob.halo_px` pixels of theirs (unseen beyond the grid); the river corridor
    grows from their baseline water, the pixels are classified
    (:func:`geo.spectral.changes_of_evidence`), and the median filter and the growth into
    workings run on the tile and :attr:`TileJob.score_halo_px` around it: the same as on
    one whole raster.
    """
    params = job.params
    halo, inner = job.halo_px, job.corridor_px
    grown = _assemble(changes_around, halo, fill=UNSEEN)
    if not len(grown):
        return np.zeros((0, job.window.height, job.window.width), np.float32)
    flags = grown["flags"]
    corridor = _crop(river_corridor((flags[0] & CORRIDOR_WATER) > 0, job.corridor_px), inner)
    scores = []
    for period in range(len(grown)):
        loss, gain, loss_sd, gain_sd, count = (
            _crop(grown[name][period], inner).astype(np.float32) for name in (*CHANGE_VALUES, "count")
        )
        evidence = Evidence(loss, gain, _crop(flags[period], inner), loss_sd, gain_sd, count)
        changes = changes_of_evidence(evidence, corridor)
        score = score_of_changes(filter_changes(changes, params.filter_px), params, job.reach_px)
        score = _crop(grow_into_workings(score, changes.kind, job.grow_px, params), job.score_halo_px)
        scores.append(np.where(np.isnan(score), np.float32(NODATA), score))
    return np.stack(scores)


def encoded_scores_task(job: TileJob, changes_around: list[list]) -> list[EncodedTile]:
    """Step 3 as it runs in a build: :func:`score_task`, each period's scores compressed as a block of its COG."""
    return [encode_tile(scores, job.tile_px, NODATA) for scores in score_task(job, changes_around)]


def overviews_task(children: list[list], shape: tuple[int, int], tile_px: int) -> list[EncodedTile]:
    """Step 4: an overview tile of one period's COG, ``shape`` pixels, from the 2 x 2 tiles below it.

    ``children`` holds, row by row, a ``[result, index]`` pair per tile below (None beyond the grid):
    what :func:`encoded_scores_task` (every period's tiles) or this task (one) returned for it, and
    which of those tiles is this period's. Returns a list of that one tile, as the scores do.

    One task per period, so that the periods' top overview tiles, made once everything below is done,
    are made at once on as many workers. ``children`` is a plain nested list so that Dask hands the task
    the results, not their futures.
    """
    return [overview_tile([[_period_tile(child) for child in row] for row in children], shape, tile_px, NODATA)]


def _period_tile(child: list | None) -> EncodedTile | None:
    """The tile a ``[result, index]`` pair of :func:`overviews_task` names (None beyond the grid)."""
    if child is None:
        return None
    tiles, index = child
    return tiles[index]


@contextmanager
def _task_env(job: TileJob) -> Iterator[None]:
    """GDAL settings for a task, unless the worker's environment sets them, and the build's files kept open.

    A small GDAL block cache, :data:`TASK_GDAL_CACHE_MB` (the process's, which its threads
    share), and one GDAL thread: the workers, not GDAL, use the cores, so that ``n``
    single-threaded workers on ``n`` cores do not oversubscribe them. A tile's blocks are
    read about once; only the blocks along its edges (the 20 m bands' resampling and the
    SCL's cloud buffer reach past it) are read again by a neighbour, often on another
    worker. A 64 MiB cache filled up on larger scenes, so a worker's peak grew with the
    area for nothing: ``benchmarks/bench_activity.py --sizes 1024 2048`` gave the largest
    worker 384 and 448 MiB (1.17x) with 64 MiB, 337 and 381 MiB (1.13x) with
    ``GDAL_CACHEMAX=16``, and 1 worker as fast with either (2.35x and 3.50x the plain
    read with 64, 2.42x and 3.31x with 16).

    Every :data:`TRIM_EVERY_TILES` tasks the process gives freed heap memory back to the
    system (:func:`_release_freed_memory`): tiles' arrays come from the heap
    (:func:`_tile_arrays_from_the_heap`), and without it a worker's resident memory crept
    up with the number of tiles (peak 525 MiB at 16.8 megapixels against 430 MiB at 4.2;
    with it 469 and 412 MiB, at no time measurable between runs).
    """
    _tile_arrays_from_the_heap()
    settings = {}
    if "GDAL_CACHEMAX" not in os.environ:
        settings["GDAL_CACHEMAX"] = TASK_GDAL_CACHE_MB << 20
    if "GDAL_NUM_THREADS" not in os.environ:
        settings["GDAL_NUM_THREADS"] = 1
    with rasterio.Env(**settings) if settings else nullcontext(), keep_files_open(job.session):
        yield
    if next(_TASKS_RUN) % TRIM_EVERY_TILES == 0:
        _release_freed_memory()


_HEAP_TUNED = []
_TASKS_RUN = itertools.count(1)  # tasks run in this process (a Dask worker's threads share it)
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
TILE_HEAP_BYTES = 32 << 20  # glibc's largest mmap threshold on 64-bit systems


def _tile_arrays_from_the_heap() -> None:
    """On a Dask worker, let glibc serve tile-sized arrays from its heap (once per process).

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also fixes
    glibc's mmap threshold at 128 kB: every array of a tile (a band is 1 MB) is then
    mapped fresh from the system and page-faulted in on first use, and unmapped when
    freed. That made the tasks about 25 % slower on workers than the same code in a
    plain process. With the threshold at 32 MB those arrays come from the heap and are
    reused; freed memory at the heap's top is still returned to the system at Dask's
    trim threshold. A worker started with ``MALLOC_MMAP_THRESHOLD_`` set is left alone.
    """
    if _HEAP_TUNED:
        return
    _HEAP_TUNED.append(True)
    if "MALLOC_TRIM_THRESHOLD_" in os.environ and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        with suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, TILE_HEAP_BYTES)


def _clear(scene: Scene, job: TileJob, window: Window) -> np.ndarray:
    """Usable pixels of one scene in ``window``: the SCL is read with a halo so the cloud buffer is exact (within
    the crop: a cloud beyond it does not reach in, as beyond the grid)."""
    pad = job.buffer_px
    area = job.crop or Window(0, 0, job.grid.width, job.grid.height)
    row, col, height, width = int(window.row_off), int(window.col_off), int(window.height), int(window.width)
    top, left = max(row - pad, int(area.row_off)), max(col - pad, int(area.col_off))
    bottom = min(row + height + pad, int(area.row_off + area.height))
    right = min(col + width + pad, int(area.col_off + area.width))
    scl = read_scl(scene.band("SCL"), job.grid, Window(left, top, right - left, bottom - top))
    padding = ((top - row + pad, row + height + pad - bottom), (left - col + pad, col + width + pad - right))
    clear = clear_mask(np.pad(scl, padding), buffer_px=pad)
    return clear[pad : pad + height, pad : pad + width]


def _observations(
    scenes: tuple[Scene, ...], job: TileJob, window: Window, corridor_water: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NDVI and BSI of each date's usable observations in ``window`` (the tile's part in the crop), its open
    water, and each date's day of year.

    ``(date, 2, row, column)`` float32 (NaN where unusable, :func:`geo.spectral.observe`),
    ``(date, row, column)`` bool, and ``(date,)`` int. Each date's bands are read and
    reduced to its two indices at once, so no stack of every date's five bands is held.
    Dates with no clear pixel in the tile (cloudy, or outside the scene) are left out.
    ``corridor_water``, if given, gains the pixels that are open water on a clear date
    (:func:`geo.spectral.add_open_water`: B03, B08 and B11 with a value suffice).
    """
    observed = np.empty((len(scenes), 2, window.height, window.width), dtype=np.float32)
    water = np.empty((len(scenes), window.height, window.width), dtype=bool)
    bands = np.empty((len(REFLECTANCE_BANDS), window.height, window.width), dtype=np.float32)  # reused
    days = []
    for scene in scenes:
        clear = _clear(scene, job, window)
        if not clear.any():
            continue  # nothing to read
        for band, buffer in zip(REFLECTANCE_BANDS, bands, strict=True):
            read_reflectance(scene.band(band), job.grid, window, out=buffer)
        n = len(days)
        observe(bands, clear, job.params.water_index, observed[n], water[n])
        if corridor_water is not None:
            add_open_water(corridor_water, bands[1], bands[3], bands[4], clear, job.params.water_index)
        days.append(scene.date.timetuple().tm_yday)
    return observed[: len(days)], water[: len(days)], np.array(days, dtype=int)


def _assemble(around: list[list[np.ndarray | None]], halo: int, fill) -> np.ndarray:
    """The tile's array grown by ``halo`` pixels from its neighbours' arrays (``fill`` beyond the grid).

    ``around`` holds the 3 x 3 arrays (tile shapes on the last two axes, the same
    leading axes) of the tile and its neighbours; the halo must not exceed a tile.
    """
    centre = around[1][1]
    height, width = centre.shape[-2:]
    out = np.full((*centre.shape[:-2], height + 2 * halo, width + 2 * halo), fill, dtype=centre.dtype)
    for i in range(3):
        for j in range(3):
            part = around[i][j]
            if part is None:
                continue
            rows = _span(i, part.shape[-2], height, halo)
            cols = _span(j, part.shape[-1], width, halo)
            out[..., rows[0] : rows[1], cols[0] : cols[1]] = _take(part, rows[2], rows[3], cols[2], cols[3])
    return out


class _Edges:
    """The strips ``halo`` pixels wide along the edges of a tile's array: all its neighbours need of it.

    Once a tile's own scores are submitted, the client keeps only these, so it holds full
    intermediate arrays for about one row of tiles instead of three. ``facing`` (top, bottom,
    left, right) says which edges have a neighbour to take them; the others are not kept. A
    diagonal neighbour takes its corner from the top or the bottom strip, which it faces too.
    """

    def __init__(self, values: np.ndarray, halo: int, facing: tuple[bool, bool, bool, bool] = (True,) * 4):
        self.shape = values.shape
        self.dtype = values.dtype
        self.halo = halo
        top, bottom, left, right = facing
        self.top = values[..., :halo, :].copy() if top else None
        self.bottom = values[..., -halo:, :].copy() if bottom else None
        self.left = values[..., :, :halo].copy() if left else None
        self.right = values[..., :, -halo:].copy() if right else None

    def __sizeof__(self) -> int:
        """Bytes held, strips included: what ``dask.sizeof`` (and so a worker's managed memory, which it spills
        and limits) counts for an object it does not know, where the default counts the bare object only."""
        strips = (self.top, self.bottom, self.left, self.right)
        return object.__sizeof__(self) + sum(strip.nbytes for strip in strips if strip is not None)

    def take(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """``values[..., r0:r1, c0:c1]`` of the original array, which must lie within one strip kept."""
        height, width = self.shape[-2:]
        halo = self.halo
        if r1 <= halo and self.top is not None:
            return self.top[..., r0:r1, c0:c1]
        if r0 >= height - halo and self.bottom is not None:
            return self.bottom[..., r0 - (height - halo) : r1 - (height - halo), c0:c1]
        if c1 <= halo and self.left is not None:
            return self.left[..., r0:r1, c0:c1]
        if c0 >= width - halo and self.right is not None:
            return self.right[..., r0:r1, c0 - (width - halo) : c1 - (width - halo)]
        raise ValueError(f"rows {r0}:{r1}, columns {c0}:{c1} are not within {halo} pixels of an edge kept")


def _take(part, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    return part.take(r0, r1, c0, c1) if isinstance(part, _Edges) else part[..., r0:r1, c0:c1]


def _span(position: int, size: int, centre_size: int, halo: int) -> tuple[int, int, int, int]:
    """Where a neighbour's strip goes in the grown array and which of its pixels: (to, to_end, from, from_end)."""
    if position == 0:
        take = min(halo, size)
        return halo - take, halo, size - take, size
    if position == 1:
        return halo, halo + centre_size, 0, centre_size
    take = min(halo, size)
    return halo + centre_size, halo + centre_size + take, 0, take


def _crop(values: np.ndarray, halo: int) -> np.ndarray:
    return values[..., halo : values.shape[-2] - halo, halo : values.shape[-1] - halo] if halo else values


# ----------------------------------------------------------------------------- running tasks


class _Runner:
    """Submit tasks to a thread pool in this process or to a Dask cluster, one interface for both.

    A task's arguments may hold the futures of tasks not yet done: it starts once they are, with their
    results in their place, and a failed one's error is its error too. On a cluster the scheduler
    chains them (their data stays on the workers, and a task that takes it runs there or fetches it
    from there, never through this process); in this process :meth:`_when_ready` does.
    """

    def __init__(self, client=None):
        self.client = client
        self.pool = None if client is not None else concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1)
        self.finished = None
        self._shared: dict = {}
        if client is not None:
            from distributed import as_completed

            self.finished = as_completed(with_results=False, loop=client.loop)

    @property
    def threads(self) -> int:
        """How many tasks run at once: this process's cores, or the cluster's worker threads (asks the scheduler)."""
        return (os.cpu_count() or 1) if self.client is None else worker_threads(self.client)

    def submit(self, function, arguments: list[tuple], priority: int = 0, watched: bool = True) -> list:
        """Start ``function(*args)`` for each tuple ``args`` of ``arguments``; returns their futures in order.

        On a cluster they go to the scheduler as one graph (``Client.map``): a submission costs
        the client and the scheduler about a millisecond of CPU each, in the process whose cores
        the workers share, and tasks submitted together start together on every worker. Queued
        tasks of higher ``priority`` run first. Only ``watched`` futures are ever returned by
        :meth:`wait_any`.
        """
        if self.client is None:
            return [self._when_ready(function, args) for args in arguments]
        if not arguments:
            return []
        futures = self.client.map(function, *zip(*arguments, strict=True), pure=False, priority=priority)
        if watched:
            for future in futures:
                self.finished.add(future)
        return futures

    def _when_ready(self, function, args: tuple) -> concurrent.futures.Future:
        """In this process: ``function(*args)`` on the pool once the futures among ``args`` are done (not before:
        a pool thread waiting for one would sit idle on a core)."""
        inputs = list({id(future): future for future in _futures_in(args)}.values())
        if not inputs:
            return self.pool.submit(function, *args)
        outcome = concurrent.futures.Future()
        waiting = len(inputs)
        lock = threading.Lock()

        def input_done(_) -> None:
            nonlocal waiting, args
            with lock:
                waiting -= 1
                if waiting:
                    return
            # Dropped here: a future keeps its done-callbacks, and this one holding the arguments, among them
            # that future, would keep every input's result alive until a garbage collection.
            ready, args = args, None
            if not outcome.set_running_or_notify_cancel():  # cancelled while it waited
                return
            try:
                task = self.pool.submit(function, *_with_results(ready))
            except BaseException as error:  # an input's error, or the pool closed after an error
                outcome.set_exception(error)
                return
            task.add_done_callback(functools.partial(_pass_outcome, outcome))

        for future in inputs:
            future.add_done_callback(input_done)
        return outcome

    def shared(self, value):
        """``value`` as an argument of many tasks: in this process itself; on a cluster, a future of it on every worker.

        On a cluster each distinct value is sent once, not in every task that takes it: a
        task's arguments travel through the scheduler, which unpickles them and keeps the
        last messages to each worker (``distributed.admin.low-level-log-length``, 1000).
        A changes task's scenes are 37 kB pickled, some 2,000 Python objects, so per-task
        scenes cost the scheduler's CPU and, kept in those logs, made the scheduler's
        memory grow with the number of tiles. ``value`` must be hashable.
        """
        if self.client is None:
            return value
        if value not in self._shared:
            self._shared[value] = self.client.scatter([value], broadcast=True, hash=False)[0]
        return self._shared[value]

    def wait_any(self, futures) -> list:
        """Block until at least one of ``futures`` (all watched) is done; return those done."""
        if self.client is None:
            return list(concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED).done)
        done = [next(self.finished)]
        done += self.finished.next_batch(block=False) if not self.finished.is_empty() else []
        return done

    def cancel(self, futures) -> None:
        """Stop what has not run yet (after an error)."""
        if self.client is None:
            for future in futures:
                future.cancel()
        elif futures:
            self.client.cancel(list(futures))

    def close(self) -> None:
        """Release the shared values and the thread pool (a cluster client is closed by whoever opened it)."""
        self._shared.clear()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> _Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _futures_in(value) -> Iterator[concurrent.futures.Future]:
    """The futures in ``value`` and in the lists and tuples it nests (task arguments)."""
    if isinstance(value, concurrent.futures.Future):
        yield value
    elif type(value) in (list, tuple):
        for item in value:
            yield from _futures_in(item)


def _with_results(value):
    """``value`` with each future in it (:func:`_futures_in`) replaced by its result; raises a failed one's error."""
    if isinstance(value, concurrent.futures.Future):
        return value.result()
    if type(value) in (list, tuple):
        return type(value)(_with_results(item) for item in value)
    return value


def _pass_outcome(outcome: concurrent.futures.Future, task: concurrent.futures.Future) -> None:
    """Give ``outcome`` (running) what the pool's ``task`` for it ended with."""
    if task.cancelled():
        outcome.set_exception(concurrent.futures.CancelledError())
    elif task.exception() is not None:
        outcome.set_exception(task.exception())
    else:
        outcome.set_result(task.result())


CHANGES, EDGES, SCORES, OVERVIEWS = range(4)
# Queued on a worker: the tiny edge and overview tasks first (they free score tasks and memory), then
# the long changes tasks, which make the critical path, then the short score tasks, which fill the gaps.
PRIORITY = {EDGES: 2, OVERVIEWS: 2, CHANGES: 1, SCORES: 0}


def run_tiles(
    jobs: dict[tuple[int, int], TileJob],
    runner: _Runner,
    on_tile: Callable[[int, int, int, int, EncodedTile], None],
    progress: Progress | None = None,
    started: Callable[[], None] | None = None,
) -> None:
    """Run the steps of every tile, keeping few tiles open; ``on_tile(period, level, row, col, tile)`` gets
    each finished tile of each period's COG (an :class:`~layers.cog_writer.EncodedTile`), overviews too.
    ``started()`` is called once, when the first tasks are back and what follows them is submitted: work
    of this process's own that starts then does not hold the GIL while the first tasks are sent to the
    workers (Python-heavy work in another thread, started with them, delayed the second worker's first
    task on small builds: ``benchmarks/HISTORY.md``, session 15).

    Steps: changes (:func:`changes_task`), edges (:func:`edges_task` of the changes),
    scores (:func:`encoded_scores_task`, needs the tile's changes and its neighbours' edges),
    and the overview tiles above them (:func:`overviews_task`, one per period, on the 2 x 2
    tiles below, :class:`layers.cog_writer.Pyramid`). Tiles go in row order.

    Each task is submitted as soon as the tasks it takes are, not once they are done: a tile's
    edges with its changes, its score once its neighbours' changes are submitted, an overview
    tile once the four below it are. The runner starts each when its inputs are done
    (:class:`_Runner`): on a cluster the scheduler chains them, with no round trip through
    this process between the steps, which cost a 2-worker build at 1 megapixel about 40 ms
    at the edges and 15 at the overviews (``benchmarks/HISTORY.md``, session 16). Only the
    first changes go out alone, and what follows them once the first are back: a scheduler
    that took in the rest with them sent the first tasks out later. What
    bounds the memory is how many tiles are open, their changes submitted and their score
    not yet done: the tiles the next score waits for (up to the tile below right of it),
    :data:`CHANGES_QUEUED_PER_THREAD` more per thread, so that a worker whose changes task ends
    need not wait for a score to finish before it gets another, and one score per thread.
    That is about a row of tiles' changes, and two rows of edges (the last score that takes a
    tile's edges is the tile below right's). This process receives only the compressed tiles.
    """
    order = sorted(jobs)
    first = jobs[order[0]]
    periods = len(first.periods)
    pyramids = [Pyramid(first.grid.width, first.grid.height, first.tile_px) for _ in range(periods)]
    total = len(order)
    # a score task per tile (it makes every period's tile), an overview task per period's overview tile
    to_write = total + sum(pyramid.tiles() - total for pyramid in pyramids)
    rows, columns = (max(key[axis] for key in order) + 1 for axis in (0, 1))
    threads = runner.threads  # asks the scheduler: once
    most_open = columns + 1 + (CHANGES_QUEUED_PER_THREAD + 1) * threads
    submitted: list[dict] = [{}, {}]  # changes and edges futures, until the last score that takes them is submitted
    cursor = {CHANGES: 0, SCORES: 0}  # the next tile of each to submit, as its index in order
    pending: dict = {}  # what this loop waits for: the first round's changes, then the scores and overviews
    scored = written = 0

    def last_taker(key: tuple[int, int]) -> tuple[int, int]:
        """The last tile in order whose score takes this tile's edges, and whose edges this tile's score takes
        last: the one below right of it."""
        return min(key[0] + 1, rows - 1), min(key[1] + 1, columns - 1)

    def neighbours_submitted(key: tuple[int, int]) -> bool:
        return cursor[CHANGES] == total or last_taker(key) < order[cursor[CHANGES]]

    def submit_what_follows() -> None:
        """The edges of the changes submitted, the scores whose neighbours' changes are, the overviews above."""
        keys = [key for key in submitted[CHANGES] if key not in submitted[EDGES]]
        arguments = [(_without_scenes(jobs[key]), submitted[CHANGES][key]) for key in keys]
        for key, future in zip(keys, runner.submit(edges_task, arguments, PRIORITY[EDGES], watched=False), strict=True):
            submitted[EDGES][key] = future
        keys = []
        while cursor[SCORES] < cursor[CHANGES] and neighbours_submitted(order[cursor[SCORES]]):
            keys.append(order[cursor[SCORES]])
            cursor[SCORES] += 1
        overviews = []  # what these scores complete, then what those overviews complete
        for future, key in zip(_submit_scores(runner, [jobs[key] for key in keys], submitted), keys, strict=True):
            pending[future] = (SCORES, key)
            del submitted[CHANGES][key]  # its score task holds them now
            for period in range(periods):  # every period's tile, in period order
                above = pyramids[period].arrived(0, *key, [future, period])
                overviews += [(period, above)] if above is not None else []
        while overviews:
            arguments = [_overview_arguments(above, first.tile_px) for _, above in overviews]
            futures = runner.submit(overviews_task, arguments, PRIORITY[OVERVIEWS])
            done, overviews = overviews, []
            for future, (period, above) in zip(futures, done, strict=True):
                pending[future] = (OVERVIEWS, (period, above.level, above.row, above.col))
                higher = pyramids[period].arrived(above.level, above.row, above.col, [future, 0])
                overviews += [(period, higher)] if higher is not None else []
        next_score = order[cursor[SCORES]] if cursor[SCORES] < total else (rows, 0)
        for old in [key for key in submitted[EDGES] if last_taker(key) < next_score]:
            del submitted[EDGES][old]

    back = False  # whether any task is back yet
    try:
        while written < to_write:
            keys = [order[i] for i in range(cursor[CHANGES], min(total, scored + most_open))]
            cursor[CHANGES] += len(keys)
            changes = _submit_changes(runner, [jobs[key] for key in keys], watched=not back)
            for key, future in zip(keys, changes, strict=True):
                submitted[CHANGES][key] = future
                if not back:  # the first round's: the first of them back is when what follows goes out
                    pending[future] = (CHANGES, key)
            if back:  # not in the first round: the scheduler sends out the first changes before it takes in more
                submit_what_follows()
                if started is not None:  # once, now that the first tasks are back and what follows is out
                    started()
                    started = None
            finished = runner.wait_any(list(pending))
            back = True
            for future in finished:
                stage, key = pending.pop(future)
                if stage == CHANGES:  # its data stays where it is; an error comes back with the score that takes it
                    continue
                tiles = future.result()  # raises a failed task's error
                written += 1
                if stage == SCORES:  # every period's tile, in period order
                    for period in range(periods):
                        on_tile(period, 0, *key, tiles[period])
                    scored += 1
                    if runner.client is not None and scored % TRIM_EVERY_TILES == 0:
                        _release_freed_memory()  # this process's; in-process, the tasks trim (_task_env)
                    if progress is not None:
                        progress("scoring tiles", scored, total)
                else:
                    on_tile(*key, tiles[0])
    finally:
        runner.cancel(list(pending))


def _release_freed_memory() -> None:
    """Give freed heap memory back to the system (glibc only; elsewhere nothing happens).

    Tiles' arrays are a few megabytes each; glibc raises its mmap threshold after the
    first frees and then keeps freed tiles in the heap, so without this the client's
    resident memory creeps up with the number of tiles although little is alive.
    """
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _submit_changes(runner: _Runner, jobs: list[TileJob], watched: bool) -> list:
    """Start the changes tasks of ``jobs``, together; their futures in order."""
    arguments = [(_without_scenes(job), runner.shared((job.baseline, job.periods))) for job in jobs]
    return runner.submit(changes_task, arguments, PRIORITY[CHANGES], watched=watched)


def _submit_scores(runner: _Runner, jobs: list[TileJob], submitted: list[dict]) -> list:
    """Start the score tasks of ``jobs``, together, on the submitted changes and edges of the tiles around
    each (None beyond the grid); their futures in order."""
    arguments = []
    for job in jobs:
        around = [[submitted[EDGES].get((job.row + di, job.col + dj)) for dj in (-1, 0, 1)] for di in (-1, 0, 1)]
        around[1][1] = submitted[CHANGES][(job.row, job.col)]
        arguments.append((_without_scenes(job), around))
    return runner.submit(encoded_scores_task, arguments, PRIORITY[SCORES])


def _overview_arguments(above: OverviewJob, tile_px: int) -> tuple:
    """The arguments of :func:`overviews_task` for one period's overview tile whose 2 x 2 tiles below are all done."""
    children = [list(pair) for pair in above.children]  # plain lists: Dask hands the task results, not futures
    return children, above.shape, tile_px


def _without_scenes(job: TileJob) -> TileJob:
    """The job without its scenes, for the steps that read no file: a job's scenes are most of its pickled size."""
    return dataclasses.replace(job, baseline=(), periods=tuple((label, ()) for label, _ in job.periods))


# ----------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class BuildPlan:
    """What a build will do: the grid, the baseline and the periods with their scenes.

    ``crop`` is the window of ``grid`` inside ``--bbox`` when the grid starts west or north of it, on a corner of
    the band files' blocks (:func:`layers.sentinel2.output_grid`): only the crop is read and scored, the pixels
    around it are nodata. None: the whole grid.
    """

    grid: Grid
    baseline: Period
    baseline_scenes: tuple[Scene, ...]
    periods: tuple[tuple[Period, tuple[Scene, ...]], ...]
    crop: Window | None = None

    @property
    def data_grid(self) -> Grid:
        """The grid of the pixels the build reads and scores: :attr:`crop` of :attr:`grid`, else all of it."""
        if self.crop is None:
            return self.grid
        transform = rasterio.windows.transform(self.crop, self.grid.transform)
        return Grid(self.grid.crs, transform, int(self.crop.width), int(self.crop.height))

    @property
    def synthetic(self) -> bool:
        """True when any scene used declares itself synthetic."""
        scenes = self.baseline_scenes + tuple(s for _, group in self.periods for s in group)
        return any(s.synthetic for s in scenes)


def plan_build(
    scenes: list[Scene],
    periods: list[str] | None = None,
    baseline: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    *,
    exact_bbox: bool = False,
) -> BuildPlan:
    """Choose the baseline and the periods, and give each its scenes.

    The baseline defaults to the year of the earliest scene; the periods default to
    every later year with scenes. ``bbox`` (west, south, east, north, WGS 84 degrees)
    crops the output grid, from a corner of the band files' blocks unless ``exact_bbox``
    (:func:`layers.sentinel2.output_grid`). Raises :class:`InputError` for a period that is not
    ``YYYY``, ``YYYY-Qn`` or ``YYYY-MM``, or that no scene falls in.
    """
    years = sorted({s.date.year for s in scenes})
    base = _parse(baseline, "--baseline") if baseline else parse_period(str(years[0]))
    if periods:
        chosen = [_parse(p, "--periods") for p in periods]
    else:
        chosen = [parse_period(str(y)) for y in years if parse_period(str(y)).start > base.end]
        if not chosen:
            raise InputError(
                f"{_LAYER}: the scenes cover only {', '.join(map(str, years))}: give scenes of a later year than "
                f"the baseline {base.label}, or choose --baseline and --periods"
            )
    available = ", ".join(sorted({s.date.isoformat()[:7] for s in scenes}))
    base_scenes = _scenes_in(scenes, base)
    if not base_scenes:
        raise InputError(f"{_LAYER}: no scene falls in the baseline {base.label} (scenes cover {available})")
    groups = []
    for period in sorted(set(chosen)):
        group = _scenes_in(scenes, period)
        if not group:
            raise InputError(f"{_LAYER}: no scene falls in period {period.label} (scenes cover {available})")
        groups.append((period, group))
    used = list(base_scenes) + [s for _, group in groups for s in group]
    grid = output_grid(used, bbox, exact_bbox=exact_bbox)
    exact = grid if bbox is None or exact_bbox else output_grid(used, bbox, exact_bbox=True)
    crop = None
    if exact != grid:
        col, row = (round(v) for v in ~grid.transform @ (exact.transform.c, exact.transform.f))
        crop = Window(col, row, exact.width, exact.height)
    return BuildPlan(grid, base, base_scenes, tuple(groups), crop)


_LAYER = "build-activity"


def _parse(text: str, option: str) -> Period:
    try:
        return parse_period(text)
    except ValueError as exc:
        raise InputError(f"{_LAYER}: {option} {text}: {exc}") from None


def _scenes_in(scenes: list[Scene], period: Period) -> tuple[Scene, ...]:
    return tuple(s for s in scenes if period.start <= s.date <= period.end)


def check_tile_px(tile_px: int) -> None:
    """An InputError unless ``tile_px`` can be a build's tiles and its COGs' blocks: a multiple of 16 (TIFF's rule)
    from :data:`MIN_TILE_PX` to :data:`layers.cog_writer.MAX_TILE_PX` (GDAL's COG validator's widest block)."""
    if tile_px % 16 or not MIN_TILE_PX <= tile_px <= MAX_TILE_PX:
        raise InputError(
            f"{_LAYER}: --tile-px {tile_px}: use a multiple of 16 from {MIN_TILE_PX} to {MAX_TILE_PX} "
            "(the tiles are the COG's blocks)"
        )


def tile_px_for(plan: BuildPlan, memory_mib: float | None = None, params: ScoreParameters | None = None) -> int:
    """The tile size of a build not told one: as wide as the blocks most of its band files at the grid's resolution
    are decoded in, when those are tiles, from :data:`DEFAULT_TILE_PX` to :data:`layers.cog_writer.MAX_TILE_PX`;
    halved, down to :data:`SMALLEST_TILE_PX_FOR_MEMORY`, while a task would need more than
    :data:`TASK_MEMORY_SHARE` of ``memory_mib``, the memory a worker thread has (:func:`task_memory_mib` with
    ``params``).

    GDAL decodes a file block by block, and a task's block cache is small
    (:data:`TASK_GDAL_CACHE_MB`): a tile narrower than the blocks decodes each block again
    for every tile that touches it. Sentinel-2's JPEG 2000 files (their 10 m bands) come in
    1024-pixel blocks, and a COG's can be as wide; ``benchmarks/bench_tile_size.py``
    measures what 512-pixel tiles cost on such files. A wider tile costs memory (a task's
    grows with the square of its tile), so tiles are not made wider than the blocks, nor
    narrower than :data:`DEFAULT_TILE_PX`, where each tile's halo and per-task costs weigh
    more. Blocks that are strips (less than a quarter as high as wide) do not count: every
    tile across decodes the same strips whatever its width. The width is rounded up to a
    multiple of 16 (a file narrower than 1024 pixels in one block reports the file's width),
    and the most common one wins, the wider of equals.

    A task's memory grows with the dates it holds too: with a year of Sentinel-2 dates
    (about 70 with both satellites) in the baseline and in each of two periods, a
    1024-pixel tile's task needs about 1.2 GiB and a 512-pixel one's 0.3 GiB. Narrower
    tiles decode shared blocks again, which is slower, but a worker out of memory is killed.
    """
    pixel_m = abs(plan.grid.transform.a)
    scenes = plan.baseline_scenes + tuple(s for _, group in plan.periods for s in group)
    widths = Counter(
        band.block_shape[1]
        for s in scenes
        for band in s.bands.values()
        if math.isclose(band.pixel_m, pixel_m) and band.tiled
    )
    width = DEFAULT_TILE_PX
    if widths:
        width = max(widths, key=lambda w: (widths[w], w))
        width = min(max(-(-width // 16) * 16, DEFAULT_TILE_PX), MAX_TILE_PX)
    while (
        memory_mib
        and width > SMALLEST_TILE_PX_FOR_MEMORY
        and task_memory_mib(plan, width, params) > TASK_MEMORY_SHARE * memory_mib
    ):
        width = max(_half_tile_px(width), SMALLEST_TILE_PX_FOR_MEMORY)
    return width


def _half_tile_px(tile_px: int) -> int:
    """Half ``tile_px``, rounded up to a multiple of 16 (:func:`check_tile_px`), at least :data:`MIN_TILE_PX`."""
    return max(-(-tile_px // 32) * 16, MIN_TILE_PX)


def _tile_message(
    plan: BuildPlan, tile_px: int, chosen: bool, memory_mib: float | None, params: ScoreParameters
) -> str:
    """The progress line on the tile size: what a task will hold, and a warning when that is more than
    :data:`TASK_MEMORY_SHARE` of what a worker thread has."""
    dates = dates_at_once(plan)
    need = task_memory_mib(plan, tile_px, params)
    message = f"tiles of {tile_px} pixels ({'--tile-px to choose' if chosen else '--tile-px'}): a task holds about "
    message += f"{need:,.0f} MiB ({dates} dates at once, {len(plan.periods)} periods)"
    if memory_mib is None:
        return message
    message += f" of the {memory_mib:,.0f} MiB a worker thread has"
    if need > TASK_MEMORY_SHARE * memory_mib:
        smaller = _half_tile_px(tile_px)
        message += (
            f"; WARNING: that is more than {TASK_MEMORY_SHARE:.0%} of it, a worker may run out of memory "
            f"(--tile-px {smaller}: about {task_memory_mib(plan, smaller, params):,.0f} MiB; or give it more memory)"
        )
    return message


def dates_at_once(plan: BuildPlan) -> int:
    """The most dates a changes task holds at once: the baseline's and the largest period's (a tile where
    several scenes of one date meet, e.g. neighbouring Sentinel-2 tiles, holds each)."""
    return len(plan.baseline_scenes) + max((len(group) for _, group in plan.periods), default=0)


def task_memory_mib(plan: BuildPlan, tile_px: int, params: ScoreParameters | None = None) -> float:
    """About the most memory (MiB) a task's arrays take in ``plan``'s largest tile of ``tile_px``: a changes task's
    grows with the tile, the dates it holds at once (:func:`dates_at_once`) and the periods, a scores task's with
    the tile grown by the halo (:func:`halo_px` of ``params``) and the periods (:data:`CHANGES_MIB_PER_MPX` ...).
    The worker's own memory (Python, GDAL's block cache, the changes held for the next tiles) comes on top."""
    grid, periods = plan.grid, len(plan.periods)
    rows, columns = min(tile_px, grid.height), min(tile_px, grid.width)
    grow = 2 * halo_px(params or ScoreParameters(), abs(grid.transform.a))
    changes = (
        CHANGES_MIB_PER_MPX
        + CHANGES_MIB_PER_MPX_AND_DATE * dates_at_once(plan)
        + CHANGES_MIB_PER_MPX_AND_PERIOD * periods
    ) * (rows * columns / 1e6)
    scores = (SCORES_MIB_PER_MPX + SCORES_MIB_PER_MPX_AND_PERIOD * periods) * ((rows + grow) * (columns + grow) / 1e6)
    return max(changes, scores)


def halo_px(params: ScoreParameters, pixel_m: float) -> int:
    """The pixels of its neighbours a tile's scores need around it (:attr:`TileJob.halo_px`)."""
    reaches_m = (params.corridor_m, params.grow_m, params.noise_reach_m)
    return params.filter_px + sum(params.pixels(m, pixel_m) for m in reaches_m)


def make_jobs(
    plan: BuildPlan, params: ScoreParameters, tile_px: int | None = None, session: str | None = None
) -> dict[tuple[int, int], TileJob]:
    """One job per tile of the plan's grid, each with only the scenes whose footprint touches it.

    ``tile_px``: default :func:`tile_px_for` the plan. ``session``: the build's id, for
    the files kept open (default a new one).
    """
    if tile_px is None:
        tile_px = tile_px_for(plan)
    session = session or uuid.uuid4().hex
    grid = plan.grid
    pixel_m = abs(grid.transform.a)
    corridor_px = params.pixels(params.corridor_m, pixel_m)
    grow_px = params.pixels(params.grow_m, pixel_m)
    reach_px = params.pixels(params.noise_reach_m, pixel_m)
    check_tile_px(tile_px)
    if halo_px(params, pixel_m) > tile_px:
        raise InputError(
            f"{_LAYER}: corridor_m, grow_m and noise_reach_m together are wider than a tile ({tile_px} pixels); "
            "use larger tiles"
        )
    footprints = {
        s.scene_id: _footprint(s, grid) for s in plan.baseline_scenes + tuple(x for _, g in plan.periods for x in g)
    }
    jobs = {}
    rows, columns = tile_rows_columns(grid, tile_px)
    for row in range(rows):
        for col in range(columns):
            window = _in_crop(tile_window(grid, tile_px, row, col), plan.crop)  # what the tile reads

            def touching(scenes: tuple[Scene, ...], window: Window | None = window) -> tuple[Scene, ...]:
                return tuple(s for s in scenes if window and _overlaps(footprints[s.scene_id], window))

            jobs[(row, col)] = TileJob(
                row=row,
                col=col,
                tile_px=tile_px,
                grid=grid,
                baseline=touching(plan.baseline_scenes),
                periods=tuple((p.label, touching(group)) for p, group in plan.periods),
                params=params,
                buffer_px=params.pixels(params.cloud_buffer_m, pixel_m),
                corridor_px=corridor_px,
                grow_px=grow_px,
                reach_px=reach_px,
                session=session,
                crop=plan.crop,
            )
    return jobs


def _footprint(scene: Scene, grid: Grid) -> tuple[float, float, float, float]:
    """The scene's B04 extent in grid pixels: ``(row_min, col_min, row_max, col_max)``."""
    band = scene.band("B04")
    bounds = band.bounds()
    if band.crs_wkt != grid.crs.to_wkt():
        bounds = rasterio.warp.transform_bounds(band.crs_wkt, grid.crs, *bounds, densify_pts=21)
    inverse = ~grid.transform
    cols, rows = zip(*(inverse @ (x, y) for x in (bounds[0], bounds[2]) for y in (bounds[1], bounds[3])), strict=True)
    return min(rows), min(cols), max(rows), max(cols)


def _overlaps(footprint: tuple[float, float, float, float], window: Window) -> bool:
    row_min, col_min, row_max, col_max = footprint
    return (
        row_min < window.row_off + window.height
        and row_max > window.row_off
        and col_min < window.col_off + window.width
        and col_max > window.col_off
    )


def build_activity(
    scenes_path: str | Path,
    out_dir: str | Path,
    periods: list[str] | None = None,
    baseline: str | None = None,
    scheduler=None,
    progress: Progress | None = None,
    *,
    params: ScoreParameters | None = None,
    tile_px: int | None = None,
    query: SceneQuery | None = None,
) -> list[Path]:
    """Build one activity COG per period and a STAC catalog of them into ``out_dir``.

    Parameters
    ----------
    scenes_path:
        A folder of Sentinel-2 L2A band files, a local STAC JSON file, or a STAC API
        URL (see :mod:`layers.sentinel2`).
    out_dir:
        The output folder: new, empty, or an earlier output (it holds ``catalog.json``);
        replaced all at once when the build succeeds.
    periods:
        Period labels (``"2021"``, ``"2021-Q3"``, ``"2021-06"``); default every year with
        scenes after the baseline.
    baseline:
        The period before mining that every period is compared with; default the year
        of the earliest scene.
    scheduler:
        A Dask scheduler address (``tcp://host:8786``) or a ``distributed.Client``;
        default the environment variable ``MINEWATCH_SCHEDULER``, else a thread pool in
        this process.
    progress:
        ``progress(step, done, total)``; if it also has a ``step(message)`` method, that
        gets one-line messages (the Dask dashboard link among them).
    params:
        Score settings (default :class:`geo.spectral.ScoreParameters`).
    tile_px:
        Tile size in pixels, also the COGs' block size (:func:`check_tile_px`): memory per
        task grows with its square times the dates. Default :func:`tile_px_for` the plan:
        512, or the band files' blocks up to 1024 pixels (Sentinel-2's JPEG 2000 files).
    query:
        The STAC API search (bounding box, dates, collection, cloud limit), a crop
        (``bbox``) and the band order of multi-band files
        (:class:`layers.sentinel2.SceneQuery`). With a STAC API URL and no
        ``query.datetime``, the dates searched run from the start of the earliest of
        ``baseline`` and ``periods`` to the end of the latest (both must be given).

    Returns
    -------
    list[pathlib.Path]
        The COGs written, ``out_dir/<period>.tif``, in period order.
    """
    if tile_px is not None:
        check_tile_px(tile_px)
    params = params or ScoreParameters()
    say = getattr(progress, "step", None) or (lambda message: None)
    query = query or SceneQuery()
    remote = is_remote_url(str(scenes_path))
    if remote and not query.datetime and baseline and periods:
        query = dataclasses.replace(query, datetime=search_interval([baseline, *periods]))
    if remote:
        say(f"searching the STAC API {redact_url(str(scenes_path))} ({query.describe()})")
        if signing_for(str(scenes_path), query.sign_assets or "auto"):
            say("asset URLs are signed with Planetary Computer tokens (one per collection, valid for a limited time)")
    session = uuid.uuid4().hex
    started = time.monotonic()
    with client_for(scheduler, say, command=_LAYER) as client:
        describe = None if client is None else functools.partial(_describe_on_workers, client, session)
        scenes = find_scenes(scenes_path, query, describe)
        plan = plan_build(scenes, periods, baseline, query.bbox, exact_bbox=query.exact_bbox)
        grid = plan.grid
        say(
            f"{len(scenes)} scenes; baseline {plan.baseline.label} ({len(plan.baseline_scenes)} dates); periods "
            + ", ".join(f"{p.label} ({len(g)} dates)" for p, g in plan.periods)
            + f"; grid {grid.width} x {grid.height} pixels of {abs(grid.transform.a):g} m"
            + (
                f" from a corner of the band files' blocks, of which it reads and scores the {plan.crop.width} x "
                f"{plan.crop.height} in --bbox (--exact-bbox: a grid of those alone)"
                if plan.crop
                else ""
            )
        )
        memory_mib = memory_per_thread_mib(client)
        chosen = tile_px is None
        if chosen:
            tile_px = tile_px_for(plan, memory_mib, params)
        say(_tile_message(plan, tile_px, chosen, memory_mib, params))
        jobs = make_jobs(plan, params, tile_px, session)
        source = _scene_source(scenes_path, query) if remote else None
        with (
            atomic_folder(out_dir, MARKER) as staging,
            _Runner(client) as runner,
            _CogWriters(staging, plan, tile_px) as writers,
        ):
            # What depends on the plan alone is made while the tiles run, not after them: the catalog
            # (validated, which loads the STAC schemas in a fresh process) and the COG headers' geo
            # tags. The COGs are validated there too, each while the next is written.
            background_work: list[concurrent.futures.Future] = []

            def in_background(function, *args) -> concurrent.futures.Future:
                background_work.append(_background_thread().submit(function, *args))
                return background_work[-1]

            def start_background() -> None:
                in_background(_catalog, staging, plan, params, tile_px, source, query.bbox)
                in_background(writers.prepare)

            try:
                run_tiles(jobs, runner, writers.add, progress, started=start_background)
                catalog, headers = background_work
                _release_freed_memory()
                headers.result()
                outputs = writers.finish(say, in_background)
                _save_catalog(catalog.result(), time.monotonic() - started)
            finally:  # after an error too: none of it outlives the staging folder it reads
                concurrent.futures.wait(background_work)
    out = Path(out_dir).expanduser().absolute()
    return [out / path.name for path in outputs]


@functools.cache
def _background_thread() -> concurrent.futures.ThreadPoolExecutor:
    """This process's one thread for a build's own work beside its tiles (the catalog, the COG headers and checks).

    One thread for the process's life, not one per build: GDAL and PROJ set up a context per thread
    (PROJ opens its database), which a fresh thread paid again in every build, on the cores the
    workers use. Builds running at once in one process share it.
    """
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="minewatch-build")


@raised_plainly
def describe_task(requests: list[DescribeRequest], session: str) -> list[DescribeResult]:
    """Describe band files on a worker (:func:`layers.sentinel2.describe_files_here`), kept open for the
    build's tiles (``session``), which then need not open them: on a cluster the workers describe the
    files, not the client, and an unchanged file kept open from an earlier build is not opened again."""
    with keep_files_open(session):
        return describe_files_here(requests)


def _describe_on_workers(client, session: str, requests: list[DescribeRequest]) -> list[DescribeResult]:
    """:func:`describe_task` over the cluster's threads, in as many runs of consecutive files; results in order,
    and the error of the first file in order that cannot be used, as in this process."""
    size = math.ceil(len(requests) / worker_threads(client)) or 1
    runs = [requests[i : i + size] for i in range(0, len(requests), size)]
    futures = client.map(describe_task, runs, [session] * len(runs), pure=False)  # one graph: they start together
    described = client.gather(futures, errors="skip")  # one round trip: waits for all, fetches those that worked
    if len(described) < len(futures):
        for future in futures:
            if future.status == "error":
                future.result()  # raises: the first error in file order, whichever task failed first
        raise RuntimeError("describing the band files on the Dask cluster failed (a worker was lost?)")
    return [result for results in described for result in results]


class _CogWriters:
    """One :class:`layers.cog_writer.CogWriter` per period, fed tile by tile as the scores arrive."""

    def __init__(self, folder: Path, plan: BuildPlan, tile_px: int):
        self.writers = [
            CogWriter(folder / f"{period.label}.tif", plan.grid, tile_px, NODATA, _cog_tags(plan, period))
            for period, _ in plan.periods
        ]

    def __enter__(self) -> _CogWriters:
        return self

    def add(self, period: int, level: int, row: int, col: int, tile: EncodedTile) -> None:
        """Take one tile of a period's COG (from :func:`encoded_scores_task` or :func:`overviews_task`)."""
        self.writers[period].add(level, row, col, tile.data)

    def prepare(self) -> None:
        """Make every COG's header tags ahead (:meth:`layers.cog_writer.CogWriter.prepare`)."""
        for writer in self.writers:
            writer.prepare()

    def finish(self, say: Callable[[str], None], in_background: Callable[..., concurrent.futures.Future]) -> list[Path]:
        """Write every COG, each validated ``in_background(function, *args)`` while the next is written; returns
        their paths in period order once all are valid."""
        checks = []
        for writer in self.writers:
            say(f"writing {writer.path.name} (Cloud-Optimized GeoTIFF)")
            checks.append(in_background(_validate_cog, writer.finish()))
        return [check.result() for check in checks]

    def __exit__(self, *exc) -> None:
        for writer in self.writers:
            writer.__exit__(*exc)


def _validate_cog(path: Path) -> Path:
    """``path`` if it validates as a COG (:func:`layers.cog_writer.cog_errors`); a RuntimeError otherwise."""
    errors = cog_errors(path)
    if errors:
        raise RuntimeError(f"{path}: the COG written is not valid: {'; '.join(errors)}")
    return path


def _cog_tags(plan: BuildPlan, period: Period) -> dict[str, str]:
    tags = {
        "PERIOD": period.label,
        "BASELINE": plan.baseline.label,
        "UNITS": "mining-disturbance score 0..1 (nodata -9999: never seen cloud-free)",
        "DESCRIPTION": f"minewatch activity score {period.label} against baseline {plan.baseline.label}, "
        "built from Sentinel-2 L2A scenes",
    }
    if plan.synthetic:
        tags["MINEWATCH_SYNTHETIC"] = "yes"
        tags["DESCRIPTION"] += " that are SYNTHETIC (not real imagery)"
    return tags


def search_interval(labels: list[str]) -> str:
    """The RFC 3339 interval from the start of the earliest period to the end of the latest, e.g.
    ``2020-01-01T00:00:00Z/2022-12-31T23:59:59Z``."""
    chosen = [_parse(label, "--periods") for label in labels]
    start, end = min(p.start for p in chosen), max(p.end for p in chosen)
    return f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59Z"


def _scene_source(url, query: SceneQuery) -> dict:
    """Where the scenes came from, for the catalog's provenance (the URL without tokens)."""
    return {
        "stac_api": redact_url(str(url)),
        "collection": query.collection or DEFAULT_COLLECTION,
        "bbox": list(query.bbox or ()),
        "datetime": query.datetime,
        "max_cloud": query.max_cloud,
    }


def _save_catalog(catalog, seconds: float) -> None:
    """Write a :func:`_catalog` with the build's duration in each item."""
    import pystac

    for item in catalog.get_items():
        item.properties["minewatch:build_seconds"] = round(seconds, 1)
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)


def _catalog(
    folder: Path,
    plan: BuildPlan,
    params: ScoreParameters,
    tile_px: int,
    source: dict | None = None,
    asked_bbox: tuple[float, float, float, float] | None = None,
):
    """The STAC catalog of the period COGs in ``folder`` with their provenance, validated, not yet written.

    With ``asked_bbox`` (``--bbox``) the items record it, and, where the grid starts west or north of it
    (:attr:`BuildPlan.crop`), the window of the COGs that was read and scored, ``[column, row, width, height]``.

    It depends on the plan only, not on the COGs' contents: the build prepares it while
    the COGs are written.
    """
    import pystac

    catalog = pystac.Catalog(
        id="minewatch-activity",
        title="minewatch activity layers" + (" (SYNTHETIC inputs)" if plan.synthetic else ""),
        description=f"Mining-disturbance scores 0..1 per period against the baseline {plan.baseline.label}, "
        "built by minewatch build-activity from Sentinel-2 L2A scenes.",
    )
    geometry, bbox = _footprint_lonlat(plan.data_grid)  # where the COGs have data
    software = software_versions(VERSIONED_PACKAGES)
    for period, scenes in plan.periods:
        item = pystac.Item(
            id=f"activity-{period.label}",
            geometry=geometry,
            bbox=bbox,
            datetime=None,
            start_datetime=dt.datetime.combine(period.start, dt.time.min, dt.UTC),
            end_datetime=dt.datetime.combine(period.end, dt.time.max, dt.UTC),
            properties={
                "minewatch:period": period.label,
                "minewatch:baseline": plan.baseline.label,
                "minewatch:synthetic": plan.synthetic,
                "minewatch:input_scenes": [s.scene_id for s in scenes],
                "minewatch:input_dates": [s.date.isoformat() for s in scenes],
                "minewatch:baseline_scenes": [s.scene_id for s in plan.baseline_scenes],
                "minewatch:method": METHOD,
                "minewatch:parameters": {**params.to_dict(), "tile_px": tile_px},
                "minewatch:software": software,
                "minewatch:build_seconds": 0.0,  # set by _save_catalog
                "proj:code": _crs_code(plan.grid),
                **({"minewatch:scene_search": source} if source else {}),
                **({"minewatch:bbox": list(asked_bbox)} if asked_bbox else {}),
                **({"minewatch:data_window": _window_list(plan.crop)} if plan.crop else {}),
            },
        )
        item.add_asset(
            "activity",
            pystac.Asset(
                href=str(folder / f"{period.label}.tif"),
                media_type=pystac.MediaType.COG,
                roles=["data"],
                title=f"disturbance score {period.label} (float32 0..1, nodata {NODATA:g})",
            ),
        )
        catalog.add_item(item)
    catalog.normalize_hrefs(folder.as_posix() + "/")  # the slash: ".out.tmp-x" would pass for a file name
    catalog.make_all_asset_hrefs_relative()
    _validate_stac(catalog)
    return catalog


def _window_list(window: Window) -> list[int]:
    return [int(window.col_off), int(window.row_off), int(window.width), int(window.height)]


def _validate_stac(catalog) -> None:
    try:
        import jsonschema  # noqa: F401  (pystac's validator needs it)
    except ImportError:
        return
    catalog.validate_all()


FOOTPRINT_POINTS_A_SIDE = 21
FOOTPRINT_TOLERANCE_PX = 0.1  # how far the footprint may stray from the grid's outline, in pixels
METRES_A_DEGREE = 111_320  # of longitude at the equator; of latitude, 110,574 to 111,694 m


def _footprint_lonlat(grid: Grid) -> tuple[dict, list[float]]:
    """The grid's outline in WGS 84 lon/lat, with the points it needs, and its bbox.

    Each side is projected at :data:`FOOTPRINT_POINTS_A_SIDE` points, and the ring keeps of them
    those needed to stay within :data:`FOOTPRINT_TOLERANCE_PX` of all (Douglas-Peucker, the pixel
    size taken in degrees: 1 m at 10 m pixels). A side of constant northing is a curve in lon/lat:
    its middle lies 0.7 m off the straight line between its ends on a 10 km UTM grid, 11 m at 41 km
    and 82 m across a whole Sentinel-2 tile. So a small grid's footprint is its 4 corners and a
    tile's keeps the points its sides need; the STAC items are smaller and validate faster than
    with every point. The bbox is that of every projected point.
    """
    transformer = Transformer.from_crs(grid.crs, WEB_CRS, always_xy=True)
    n = FOOTPRINT_POINTS_A_SIDE
    steps = np.linspace(0, 1, n)
    edge_x = np.concatenate([steps, np.ones(n), steps[::-1], np.zeros(n)]) * grid.width
    edge_y = np.concatenate([np.zeros(n), steps, np.ones(n), steps[::-1]]) * grid.height
    xs, ys = grid.transform @ (edge_x, edge_y)
    lons, lats = transformer.transform(xs, ys)
    tolerance_deg = FOOTPRINT_TOLERANCE_PX * abs(grid.transform.a) / METRES_A_DEGREE  # the grid's pixels are metres
    outline = shapely.Polygon(np.column_stack([lons, lats])).simplify(tolerance_deg)
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in outline.exterior.coords]
    ring = [point for i, point in enumerate(ring) if i == 0 or point != ring[i - 1]]
    ring.append(ring[0]) if ring[-1] != ring[0] else None
    if _signed_area(ring) < 0:
        ring.reverse()
    bbox = [round(float(value), 7) for value in (lons.min(), lats.min(), lons.max(), lats.max())]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def _signed_area(ring: list[list[float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False)) / 2


def _crs_code(grid: Grid) -> str | None:
    epsg = grid.crs.to_epsg(min_confidence=90)
    return f"EPSG:{epsg}" if epsg else None


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``build-activity`` (for ``app.py``'s sub-command parser)."""
    parser.add_argument(
        "--scenes",
        required=True,
        metavar="PATH|URL",
        help="a folder of Sentinel-2 L2A band files (GeoTIFF or JP2; B02 B03 B04 B08 B11 and SCL per date, "
        "named like T36KVD_20210615_B04_10m.jp2 or 2021-06-15/B04.tif, or multi-band files), a local STAC "
        "catalog/ItemCollection JSON, or a STAC API URL (https://.../v1; needs --bbox, and --datetime or "
        "--baseline with --periods; the only way minewatch goes online)",
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder for <period>.tif and catalog.json (atomic)"
    )
    parser.add_argument(
        "--periods",
        nargs="+",
        metavar="PERIOD",
        help="periods to build: YYYY, YYYY-Qn or YYYY-MM (default: every year with scenes after the baseline)",
    )
    parser.add_argument(
        "--baseline", metavar="PERIOD", help="the period before mining to compare with (default: the earliest year)"
    )
    parser.add_argument(
        "--bbox",
        metavar="W,S,E,N",
        help="area in WGS 84 degrees (west,south,east,north): the STAC API search area, and a crop of any input. "
        "Only the bbox is read and scored; the COGs' grid starts on a corner of the band files' blocks, up to one "
        "block (10.24 km for Sentinel-2's JPEG 2000 files) west and north of it, nodata there, so that the tiles "
        "line up with the blocks GDAL decodes",
    )
    parser.add_argument(
        "--exact-bbox",
        action="store_true",
        help="start the COGs' grid at --bbox: the same scores, but tiles may straddle the files' blocks and decode "
        "them again (slower on JPEG 2000)",
    )
    parser.add_argument(
        "--datetime",
        metavar="START/END",
        help="STAC API only: dates to search, e.g. 2020-01-01/2022-12-31 (default: from --baseline and --periods)",
    )
    parser.add_argument(
        "--collection",
        metavar="ID",
        help=f"STAC API only: the collection to search (default {DEFAULT_COLLECTION})",
    )
    parser.add_argument(
        "--max-cloud",
        type=float,
        metavar="PERCENT",
        help="STAC API only: leave out scenes whose eo:cloud_cover is above this (clouds are masked anyway)",
    )
    parser.add_argument(
        "--sign-assets",
        choices=SIGNING_MODES,
        help="STAC API only: sign asset URLs with a Microsoft Planetary Computer token (auto, the default: when the "
        "API is planetarycomputer.microsoft.com; planetary-computer: always, e.g. for a mirror of it; none: never)",
    )
    parser.add_argument(
        "--max-items",
        type=int,
        default=DEFAULT_MAX_ITEMS,
        metavar="N",
        help=f"STAC API only: refuse a search finding more than N scenes (default {DEFAULT_MAX_ITEMS})",
    )
    parser.add_argument(
        "--band-order",
        metavar="B02,B03,...",
        help="the bands of multi-band files without band descriptions, in file order, e.g. "
        "B02,B03,B04,B08,B11,B12,SCL ('-' skips a band)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDR",
        default=None,
        help=f"run on this Dask cluster, e.g. tcp://host:8786 (default: env {ENV_SCHEDULER}, else this machine)",
    )
    parser.add_argument(
        "--tile-px",
        type=int,
        default=None,
        metavar="N",
        help=f"tile size in pixels, also the COG block size: a multiple of 16 from {MIN_TILE_PX} to {MAX_TILE_PX} "
        f"(default {DEFAULT_TILE_PX}, or as wide as the 10 m band files' own tiles, up to {MAX_TILE_PX}: "
        f"{MAX_TILE_PX} for Sentinel-2's JPEG 2000 files, each of whose blocks narrower tiles would decode again)",
    )
    parser.add_argument(
        "--filter-px",
        type=int,
        default=ScoreParameters.filter_px,
        metavar="R",
        help=f"radius of the median filter of the changes, in pixels (default {ScoreParameters.filter_px}: 3 x 3; "
        f"2: 5 x 5, at the cost of pits narrower than about 5 pixels; 0: none)",
    )
    parser.add_argument(
        "--noise-z",
        type=float,
        default=ScoreParameters.noise_z,
        metavar="Z",
        help=f"a change counts only beyond Z standard errors of the pixel's own noise (default "
        f"{ScoreParameters.noise_z:g}; 0: fixed thresholds only, as on clean scenes)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors and the summary")


def build_parser() -> argparse.ArgumentParser:
    """The stand-alone parser of ``build-activity``."""
    parser = argparse.ArgumentParser(
        prog="python app.py build-activity",
        description="Build activity rasters (mining-disturbance scores 0..1, one Cloud-Optimized GeoTIFF per "
        "period, and a STAC catalog.json) from Sentinel-2 Level-2A scenes: clouds masked with the scene "
        "classification, a median composite per period, bare-soil gain and vegetation loss against a baseline "
        "period, rivers and sandbars excluded. 'analyze --activity DIR' reads the output.",
        epilog="Example (the bundled synthetic scenes):\n"
        "  python app.py build-activity --scenes data/demo_scenes --out results/demo_activity\n"
        "From a STAC API (the assets are read over HTTP, window by window):\n"
        "  python app.py build-activity --scenes https://earth-search.aws.element84.com/v1 \\\n"
        "    --bbox 32.20,-19.75,32.30,-19.65 --baseline 2020 --periods 2021 2022 --max-cloud 40 --out act\n"
        "On a Dask cluster (workers need minewatch installed and the files at the same paths):\n"
        "  python app.py build-activity --scenes /shared/s2 --out /shared/act --scheduler tcp://host:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``build-activity`` with parsed ``args``; print what was written. Errors propagate."""
    progress = ConsoleProgress(quiet=args.quiet, unit="tiles")
    if not 0 <= args.filter_px <= MAX_FILTER_PX:
        raise InputError(f"{_LAYER}: --filter-px {args.filter_px}: use 0 to {MAX_FILTER_PX} pixels")
    if not 0 <= args.noise_z <= MAX_NOISE_Z:
        raise InputError(f"{_LAYER}: --noise-z {args.noise_z:g}: use 0 to {MAX_NOISE_Z:g}")
    paths = build_activity(
        args.scenes,
        args.out,
        args.periods,
        args.baseline,
        args.scheduler,
        progress,
        tile_px=args.tile_px,
        query=query_from_args(args),
        params=ScoreParameters(filter_px=args.filter_px, noise_z=args.noise_z),
    )
    print(f"{len(paths)} activity rasters and catalog.json written to {Path(args.out).expanduser().absolute()}")
    for path in paths:
        print(f"  {path.name}")
    return 0


def query_from_args(args: argparse.Namespace) -> SceneQuery:
    """The :class:`~layers.sentinel2.SceneQuery` of the command line's options (checked)."""
    if getattr(args, "max_cloud", None) is not None and not 0 <= args.max_cloud <= 100:
        raise InputError(f"{_LAYER}: --max-cloud {args.max_cloud:g}: give a percentage 0..100")
    if getattr(args, "max_items", DEFAULT_MAX_ITEMS) < 1:
        raise InputError(f"{_LAYER}: --max-items {args.max_items}: give at least 1")
    if getattr(args, "exact_bbox", False) and not getattr(args, "bbox", None):
        raise InputError(f"{_LAYER}: --exact-bbox needs --bbox")
    return SceneQuery(
        bbox=parse_bbox(args.bbox) if getattr(args, "bbox", None) else None,
        exact_bbox=getattr(args, "exact_bbox", False),
        datetime=getattr(args, "datetime", None),
        collection=getattr(args, "collection", None),
        max_cloud=getattr(args, "max_cloud", None),
        max_items=getattr(args, "max_items", DEFAULT_MAX_ITEMS),
        band_order=parse_band_order(args.band_order) if getattr(args, "band_order", None) else None,
        sign_assets=getattr(args, "sign_assets", None),
    )


def run_cli(argv: list[str] | None = None) -> int:
    """``python app.py build-activity ...``: exit 0 on success, 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except MinewatchError as error:
        print(f"minewatch: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minewatch: interrupted; previous outputs are untouched", file=sys.stderr)
        return 130
