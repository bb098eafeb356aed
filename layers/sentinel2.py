"""Sentinel-2 Level-2A scenes: find the band files of each acquisition, and read them on one grid.

Two kinds of input (``find_scenes``):

**A folder** of band files, GeoTIFF (``.tif``, ``.tiff``) or JPEG 2000 (``.jp2``),
searched recursively. A file's band is the first token of its name (tokens are split
on ``_``, ``-``, ``.`` and spaces; case does not matter) that names one:
``B02``/``blue``, ``B03``/``green``, ``B04``/``red``, ``B08``/``nir``,
``B11``/``swir16``, ``B12``/``swir22``, ``SCL``/``scl``. Files naming no such band
(``TCI``, ``AOT``, ``B8A``, ``MSK_CLDPRB``...) are skipped. Its acquisition date is the
first ``YYYYMMDD`` (optionally followed by ``Thhmmss``) or ``YYYY-MM-DD`` in the file
name, or else in the name of the nearest enclosing folder. So all of these work::

    scenes/T36KVD_20210615T073621_B04_10m.jp2     (the names inside a .SAFE product)
    scenes/S2A_MSIL2A_20210615T073621_..._T36KVD_....SAFE/GRANULE/.../IMG_DATA/R20m/..._SCL_20m.jp2
    scenes/anything_20210615_B04.tif
    scenes/2021-06-15/B04.tif    and    scenes/2021-06-15/scl.tif

Files of one scene share a name once the band and resolution tokens are removed
(``T36KVD_20210615T073621``), or, when the date comes from the folder, that folder.
When a scene has a band at several resolutions (``R10m``/``R20m``/``R60m``), the finest
is used.

**A multi-band GeoTIFF** (or JP2) whose name names no band holds several bands of one
scene, e.g. ``T36KVD_20210615.tif`` or ``2021-06-15/stack.tif``. Its bands are named by
their descriptions (``B02``, ``blue``, ``B2`` as Google Earth Engine writes them, ``SCL``...;
``gdal_translate``/``rio edit-info --band-descriptions`` set them), or, for files without
descriptions, by ``band_order`` (``--band-order B02,B03,B04,B08,B11,B12,SCL``, one
name per band in file order, ``-`` for a band to skip; it applies to the files with
exactly that many bands). A multi-band file whose bands name nothing is skipped like
any other file (``TCI`` true-colour images). Single-band files of the same scene join
it (``T36KVD_20210615_SCL_20m.tif`` beside ``T36KVD_20210615.tif``); a stack may hold
the SCL as floating-point classes.

**A STAC catalog, collection, item or ItemCollection** as a local JSON file (``pystac``):
each item is a scene dated by its ``datetime`` (or ``start_datetime``); its assets are
matched by key, case-insensitively, with the aliases above (``B04`` or ``red``, ``SCL``
or ``scl``...), or by ``eo:bands`` names (several for a multi-band asset). Asset files
must be local, and so must every link the catalog follows; the ``raster:bands``
``scale``/``offset`` of an asset are honoured.

**A STAC API URL** (``https://.../v1``, searched with pystac-client; ``SceneQuery``
gives the bounding box, dates, collection and cloud limit) whose items are read like a
local ItemCollection, their ``http(s)`` assets over HTTP. The assets are read through
GDAL's ``/vsicurl/`` by the same windowed reader as local files, each read inside
:func:`layers.network.remote_reads`, which allows that one URL, with timeouts, while
GDAL's network access stays off for everything else. Why this and not odc-stac or
stackstac: the build's tiles read only their window of each band (range requests on
COGs), so a search's tiles are never downloaded whole; tasks still get plain strings
(they run on Dask workers alike); the rasters are identical to those from the same
files on disk (tested), because the resampling, nodata and scale rules are the same
code; and no second, xarray-based reading path needs its own tests.

Each date needs B02, B03, B04, B08, B11 and SCL; B12 is accepted but not read (the score
does not use it). Reflectance is ``DN * scale + offset``, with ``scale``/``offset`` from,
in order: STAC ``raster:bands``; the GeoTIFF's own scale/offset metadata; the SAFE's
``MTD_MSIL2A.xml`` (``BOA_QUANTIFICATION_VALUE`` and ``BOA_ADD_OFFSET``, the -1000 offset
of processing baseline 04.00 onwards); else ``DN / 10000`` for integer files and the
values as they are for float files. Digital number 0 (or the file's nodata value) is
"no data". A file without CRS, rotated, unreadable, or not a GeoTIFF/JPEG 2000 (GDAL may
use no other driver here: a VRT in disguise is refused) is an
:class:`~geo.errors.InputError` naming it.

Reading (``read_reflectance``, ``read_scl``) returns one window of the output grid
(:func:`output_grid`: the finest band grid, 10 m for Level-2A) from one file, opened
for that call only: 20 m bands are repeated onto the 10 m grid (nearest neighbour,
exact when the grids are aligned, as Sentinel-2 tiles are), and files on another grid
or CRS are warped (nearest neighbour). Nothing is ever read whole: callers read tiles,
and :func:`open_band` gives a lazy, chunked dask-backed view for interactive use.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import json
import math
import os
import re
import sys
import threading
import urllib.parse
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import rasterio
import rasterio.warp
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geo.crs import require_crs
from geo.errors import InputError
from layers.activity import Grid, gdal_message
from layers.asset_signing import sign_items
from layers.limits import DEFAULT_LIMITS
from layers.network import (
    STAC_API_TIMEOUT_S,
    is_remote_url,
    local_only_stac_io,
    redact_url,
    remote_reads,
    require_asset_host,
    stac_api_access,
    stac_api_retry,
    vsicurl_path,
)
from layers.paths import check_content, local_path, require_inside

LAYER = "sentinel2"
SUFFIXES = {".tif", ".tiff", ".jp2"}
BAND_DRIVERS: dict[str, str] = {".jp2": "JP2OpenJPEG", ".j2k": "JP2OpenJPEG"}  # by suffix; any other: GTiff
DEFAULT_COLLECTION = "sentinel-2-l2a"
DEFAULT_MAX_ITEMS = 500
REMOTE_DESCRIBE_THREADS = 8  # remote files described at once (each is a few small requests)
KEPT_OPEN_FILES = 256  # local band files a thread keeps open, from read session to session (keep_files_open)
REFLECTANCE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11")  # the order of geo.spectral.STACK_BANDS
REQUIRED_BANDS: tuple[str, ...] = (*REFLECTANCE_BANDS, "SCL")
ALIASES: dict[str, str] = {
    "b02": "B02",
    "b2": "B02",
    "blue": "B02",
    "b03": "B03",
    "b3": "B03",
    "green": "B03",
    "b04": "B04",
    "b4": "B04",
    "red": "B04",
    "b08": "B08",
    "b8": "B08",
    "nir": "B08",
    "b11": "B11",
    "swir16": "B11",
    "b12": "B12",
    "swir22": "B12",
    "scl": "SCL",
}
DEFAULT_QUANTIFICATION = 10_000.0
_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?:T\d{6})?(?!\d)")
_TOKEN_SPLIT = re.compile(r"[_\-.\s]+")
_RESOLUTION_TOKEN = re.compile(r"^\d{1,3}m$", re.IGNORECASE)
_MTD_BAND_ID = {"B02": 1, "B03": 2, "B04": 3, "B08": 7, "B11": 11, "B12": 12}  # band_id of MTD_MSIL2A.xml


@dataclass(frozen=True)
class BandFile:
    """One band of one scene: a file path and what is needed to read it on another grid.

    Holds only plain values (a path, never an open dataset), so it pickles to any worker.
    ``crs_wkt``/``transform``/``width``/``height`` describe the file's own grid;
    reflectance is ``DN * scale + offset``. ``index`` is the band's number in the file
    (1 for single-band files); ``remote`` marks a ``/vsicurl/`` path found by a STAC API
    search, the only kind GDAL is allowed to fetch (:func:`layers.network.remote_reads`).
    ``block_shape`` is the ``(rows, columns)`` of the blocks GDAL decodes the band in (a
    TIFF's tiles or strips; a JPEG 2000 file's tiles, joined in rows up to 1024 pixels
    wide; ``(0, 0)``: not known).
    """

    path: str
    band: str
    crs_wkt: str
    transform: Affine
    width: int
    height: int
    integer: bool
    nodata: float | None
    scale: float = 1.0
    offset: float = 0.0
    index: int = 1
    remote: bool = False
    block_shape: tuple[int, int] = (0, 0)

    @property
    def pixel_m(self) -> float:
        """Pixel width in CRS units (metres for the UTM grids of Sentinel-2)."""
        return abs(self.transform.a)

    @property
    def tiled(self) -> bool:
        """Whether the blocks are known and are tiles: at least a quarter as high as wide. Strips are not: every
        window across a file decodes the same strips wherever it starts and however wide it is."""
        rows, columns = self.block_shape
        return columns > 0 and 4 * rows >= columns

    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in the file's CRS."""
        left, top = self.transform.c, self.transform.f
        return left, top + self.transform.e * self.height, left + self.transform.a * self.width, top


@dataclass(frozen=True)
class Scene:
    """One acquisition (one date, one tile): its band files, keyed by band name."""

    scene_id: str
    date: dt.date
    bands: dict[str, BandFile] = field(hash=False)
    synthetic: bool = False

    def band(self, name: str) -> BandFile:
        """The file of band ``name`` (``"B04"``, ``"SCL"``...)."""
        return self.bands[name]


@dataclass(frozen=True)
class SceneQuery:
    """Which scenes to use beyond "all of them": the search of a STAC API, a crop, multi-band files.

    Attributes
    ----------
    bbox:
        ``(west, south, east, north)`` in WGS 84 degrees: the search area of a STAC API
        (required there) and, for any input, the crop of the output grid; scenes that
        miss it are left out.
    exact_bbox:
        Cut the output grid to ``bbox`` exactly; by default a crop starts on a corner of
        the band files' blocks, up to one block west and north of it (:func:`output_grid`).
    datetime:
        The dates searched in a STAC API, an RFC 3339 interval such as
        ``"2020-01-01/2022-12-31"`` (required there).
    collection:
        The STAC API collection searched (default ``sentinel-2-l2a``).
    max_cloud:
        Leave out STAC API items whose ``eo:cloud_cover`` is above this many percent.
    max_items:
        A STAC API search finding more items than this is refused (narrow it), never cut.
    band_order:
        Bands of multi-band files without band descriptions, in file order (``"-"``
        skips a band).
    sign_assets:
        How a STAC API's assets are signed (:mod:`layers.asset_signing`): None or
        ``"auto"`` (the Planetary Computer's API is), ``"planetary-computer"``, ``"none"``.
    """

    bbox: tuple[float, float, float, float] | None = None
    exact_bbox: bool = False
    datetime: str | None = None
    collection: str | None = None
    max_cloud: float | None = None
    max_items: int = DEFAULT_MAX_ITEMS
    band_order: tuple[str, ...] | None = None
    sign_assets: str | None = None

    def search_only(self) -> list[str]:
        """The options given that only a STAC API search uses."""
        given = {
            "--datetime": self.datetime,
            "--collection": self.collection,
            "--max-cloud": self.max_cloud,
            "--sign-assets": self.sign_assets,
        }
        return [option for option, value in given.items() if value is not None]

    def describe(self) -> str:
        """The search in words, for messages."""
        bbox = ",".join(f"{v:g}" for v in self.bbox or ())
        words = f"collection {self.collection or DEFAULT_COLLECTION}, bbox {bbox}, datetime {self.datetime}"
        return words + (f", at most {self.max_cloud:g} % cloud" if self.max_cloud is not None else "")


def find_scenes(
    raw_path: str | Path, query: SceneQuery | None = None, describe_files: DescribeFiles | None = None
) -> list[Scene]:
    """The Sentinel-2 L2A scenes of a folder of band files, a local STAC JSON file, or a STAC API URL.

    Returns them sorted by date then id. Raises :class:`InputError` when nothing usable
    is found, a scene lacks a required band, a file cannot be used, or a STAC API cannot
    be searched (named in the message with what is wrong). ``describe_files``: how a
    folder's files, once found and checked here, are opened and described
    (:func:`describe_files_here`, the default, in this process; ``build-activity`` on a
    Dask cluster has the workers do it, which keep the files open for the build's tiles).
    """
    query = query or SceneQuery()
    if is_remote_url(str(raw_path)):
        scenes = _api_scenes(str(raw_path), query)
        origin = redact_url(str(raw_path))
    else:
        path = local_path(raw_path, layer=LAYER, want_dir=None)
        if query.search_only():
            raise InputError(
                f"{LAYER}: {path}: {', '.join(query.search_only())} apply to a STAC API URL only; "
                "for local scenes choose the dates with --periods and --baseline"
            )
        if path.is_dir():
            scenes = _folder_scenes(path, query.band_order, describe_files or describe_files_here)
        elif path.suffix.lower() == ".json":
            scenes = _stac_scenes(path)
        else:
            raise InputError(
                f"{LAYER}: {path}: give a folder of Sentinel-2 band files (GeoTIFF or JP2), a STAC catalog.json "
                "or a STAC API URL"
            )
        if not scenes:
            raise InputError(
                f"{LAYER}: {path}: no Sentinel-2 band files found; name them like T36KVD_20210615_B04.tif or "
                "2021-06-15/B04.tif, or give multi-band files band descriptions or --band-order (see --help)"
            )
        origin = str(path)
    if query.bbox is not None:
        inside = [s for s in scenes if _touches_bbox(s, query.bbox)]
        if not inside:
            raise InputError(f"{LAYER}: {origin}: no scene covers --bbox {','.join(f'{v:g}' for v in query.bbox)}")
        scenes = inside
    return sorted(scenes, key=lambda s: (s.date, s.scene_id))


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``"WEST,SOUTH,EAST,NORTH"`` in degrees as four floats; :class:`InputError` when it is not one."""
    try:
        values = tuple(float(v) for v in str(text).replace(" ", "").split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InputError(f"{LAYER}: --bbox {text}: give WEST,SOUTH,EAST,NORTH in degrees, e.g. 32.1,-19.8,32.3,-19.6")
    west, south, east, north = values
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError(
            f"{LAYER}: --bbox {text}: needs -180 <= west < east <= 180 and -90 <= south < north <= 90 (degrees)"
        )
    return west, south, east, north


def check_datetime(text: str, what: str = LAYER) -> str:
    """``text`` if it is a STAC search interval (``2021``, ``2021-06``, ``2021-06-15``, RFC 3339
    date-times, ``START/END`` of those, ``..`` for an open end); else :class:`InputError` (``what``: its start)."""
    parts = str(text).split("/")
    ok = 1 <= len(parts) <= 2 and not all(p in ("", "..") for p in parts)
    for part in parts:
        if part in ("", "..") and len(parts) == 2:
            continue
        month = re.fullmatch(r"\d{4}(?:-(\d{2}))?", part)
        if month:
            ok = ok and (month.group(1) is None or 1 <= int(month.group(1)) <= 12)
            continue
        try:
            dt.datetime.fromisoformat(part.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            ok = False
    if not ok:
        raise InputError(
            f"{what}: --datetime {text}: give a date or an interval, e.g. 2021, 2021-06-15 or 2020-01-01/2022-12-31"
        )
    return str(text)


def parse_band_order(text: str) -> tuple[str, ...]:
    """``"B02,B03,...,SCL"`` as canonical band names (``"-"`` kept for a skipped band)."""
    names = [t for t in str(text).replace(" ", "").split(",")]
    order = tuple("-" if n == "-" else ALIASES.get(n.lower(), "") for n in names)
    unknown = [n for n, b in zip(names, order, strict=True) if not b]
    if unknown or len(names) < 2:
        raise InputError(
            f"{LAYER}: --band-order {text}: name each band of the file in order, e.g. B02,B03,B04,B08,B11,B12,SCL "
            f"('-' skips one){'; unknown: ' + ', '.join(unknown) if unknown else ''}"
        )
    named = [b for b in order if b != "-"]
    if len(set(named)) != len(named):
        raise InputError(f"{LAYER}: --band-order {text}: names a band twice")
    return order


def output_grid(
    scenes: list[Scene], bbox: tuple[float, float, float, float] | None = None, *, exact_bbox: bool = False
) -> Grid:
    """The grid that covers every scene at the finest band resolution (10 m for L2A).

    The CRS is the one most scenes share (the first scene's on a tie); the pixel lattice
    is that of the first such scene's B04 file, so aligned Sentinel-2 tiles need no
    resampling; the extent is the union of the scenes' B04 footprints, cut to ``bbox``
    (west, south, east, north in WGS 84 degrees) when one is given.

    A crop starts on a corner of that file's blocks (:func:`block_corner`), up to one
    block west and north of ``bbox`` (beyond the files if the block corner is: those
    pixels are nodata, never read), unless ``exact_bbox``: GDAL decodes a file block by
    block, and a build's tiles start at the grid's corner, so a crop that starts inside a
    block has every tile straddle 2 x 2 blocks, each decoded by up to 4 tiles.
    Sentinel-2's JPEG 2000 tiles are 1024 pixels (10.24 km) wide and slow to decode
    (``benchmarks/bench_bbox_blocks.py`` measures the difference). The east and south
    edges stay at ``bbox``: the last tiles there are narrower, and decode each block once.
    A build reads and scores only the bbox's part of such a grid
    (:attr:`layers.activity_build.BuildPlan.crop`).
    """
    if not scenes:
        raise InputError(f"{LAYER}: no scenes to build a grid from")
    keys = [_crs_key(s.band("B04").crs_wkt) for s in scenes]
    chosen = Counter(keys).most_common(1)[0][0]
    anchor = next(s.band("B04") for s, key in zip(scenes, keys, strict=True) if key == chosen)
    crs = CRS.from_wkt(anchor.crs_wkt)
    pixel_m = min(
        s.band(b).pixel_m for s, key in zip(scenes, keys, strict=True) if key == chosen for b in REFLECTANCE_BANDS
    )
    lefts, bottoms, rights, tops = [], [], [], []
    for scene in scenes:
        band = scene.band("B04")
        bounds = band.bounds()
        if _crs_key(band.crs_wkt) != chosen:
            bounds = rasterio.warp.transform_bounds(CRS.from_wkt(band.crs_wkt), crs, *bounds, densify_pts=21)
        lefts.append(bounds[0])
        bottoms.append(bounds[1])
        rights.append(bounds[2])
        tops.append(bounds[3])
    if bbox is not None:
        west, south, east, north = rasterio.warp.transform_bounds("EPSG:4326", crs, *bbox, densify_pts=21)
        lefts, bottoms = [max(min(lefts), west)], [max(min(bottoms), south)]
        rights, tops = [min(max(rights), east)], [min(max(tops), north)]
        if lefts[0] >= rights[0] or bottoms[0] >= tops[0]:
            raise InputError(f"{LAYER}: the scenes do not cover --bbox {','.join(f'{v:g}' for v in bbox)}")
    x0, y0 = anchor.transform.c, anchor.transform.f
    left = x0 + math.floor((min(lefts) - x0) / pixel_m + 1e-6) * pixel_m
    top = y0 - math.floor((y0 - max(tops)) / pixel_m + 1e-6) * pixel_m
    if bbox is not None and not exact_bbox:
        left, top = block_corner(anchor, left, top)  # beyond the files, if it must: nodata, never read
    width = math.ceil((max(rights) - left) / pixel_m - 1e-6)
    height = math.ceil((top - min(bottoms)) / pixel_m - 1e-6)
    return Grid(crs, Affine(pixel_m, 0.0, left, 0.0, -pixel_m, top), int(width), int(height))


def block_corner(band: BandFile, x: float, y: float) -> tuple[float, float]:
    """The top-left corner of the block of ``band`` that holds the point ``(x, y)`` (in its CRS), where the
    band's blocks are tiles (:attr:`BandFile.tiled`); else ``(x, y)``."""
    if not band.tiled:
        return x, y
    rows, columns = band.block_shape
    step_x, step_y = columns * abs(band.transform.a), rows * abs(band.transform.e)
    x0, y0 = band.transform.c, band.transform.f
    return x0 + math.floor((x - x0) / step_x + 1e-9) * step_x, y0 - math.floor((y0 - y) / step_y + 1e-9) * step_y


def read_reflectance(band: BandFile, grid: Grid, window: Window, out: np.ndarray | None = None) -> np.ndarray:
    """Surface reflectance of one band in ``window`` of ``grid``: float32, NaN where no data.

    Parameters
    ----------
    band:
        The band file (its scale and offset turn digital numbers into reflectance).
    grid:
        The output grid (CRS and pixel size in metres).
    window:
        Rows and columns of ``grid`` to return; parts outside the file are NaN.
    out:
        A float32 array of the window's shape to fill and return (a tile's buffers are
        reused from date to date), else a new one.
    """
    data, rows, cols, valid = _read_on_grid(band, grid, window)
    if out is None:
        out = np.empty((rows.size, cols.size), dtype=np.float32)
    if valid is None:  # aligned grids: one compiled pass checks and scales the file's pixels, then repeats them
        identity = data.shape == (rows.size, cols.size) and rows.size > 0 and cols.size > 0
        identity = identity and rows[0] == cols[0] == 0 and rows[-1] == rows.size - 1 and cols[-1] == cols.size - 1
        native = out if identity else _scratch("native", data.shape, np.float32)
        _reflectance(data, *_nodata_rule(band, data.dtype), band.scale, band.offset, native)
        if not identity:
            _repeat(native, rows, cols, np.float32(np.nan), out)
        return out
    reflectance = data.astype(np.float32)
    reflectance *= np.float32(band.scale)
    reflectance += np.float32(band.offset)
    reflectance[~(valid & _has_data(data, band))] = np.nan
    out[...] = reflectance
    return out


def read_scl(band: BandFile, grid: Grid, window: Window, out: np.ndarray | None = None) -> np.ndarray:
    """Scene classification classes in ``window`` of ``grid`` (uint8; 0 "no data" outside the file).

    ``out``: a uint8 array of the window's shape to fill and return, else a new one.
    """
    data, rows, cols, valid = _read_on_grid(band, grid, window)
    if out is None:
        out = np.empty((rows.size, cols.size), dtype=np.uint8)
    if valid is None:
        _classes(data, rows, cols, *_nodata_rule(band, data.dtype), out)
        return out
    out[...] = np.where(valid & _has_data(data, band), data, 0).astype(np.uint8)
    return out


def open_band(band: BandFile, chunks: int | tuple | dict = 1024):
    """A lazy, chunked view of one band file in its own grid (``xarray.DataArray`` on dask).

    Nothing is read until a chunk is computed; the file's CRS and transform are attached
    (``.rio.crs``, ``.rio.transform()``). Digital numbers, not reflectance: multiply by
    ``band.scale`` and add ``band.offset``.
    """
    import rioxarray

    if band.remote:
        raise InputError(f"{LAYER}: {_shown(band.path)}: open_band reads local files only; use read_reflectance")
    data = rioxarray.open_rasterio(band.path, chunks=chunks, lock=False, driver=band_driver(band.path))
    return data.sel(band=band.index, drop=True)


@contextmanager
def open_band_file(path: str, remote: bool = False) -> Iterator[rasterio.io.DatasetReader]:
    """Open a band file with the one GDAL driver its suffix calls for; a remote one inside its network allowance.

    ``.jp2`` files open with JPEG 2000, all others with GeoTIFF only: a VRT (or any
    format that references other files) in disguise is refused, not read.
    """
    with remote_reads(path) if remote else nullcontext(), rasterio.open(path, driver=band_driver(path)) as dataset:
        yield dataset


_KEPT = threading.local()


@contextmanager
def keep_files_open(session: str) -> Iterator[None]:
    """Within this block, this thread's reads of local band files reuse the files it keeps open.

    A tiled build reads the same files for tile after tile; opening one costs more than
    reading a 512-pixel window of it (rasterio parses the CRS on every open, about
    0.5 ms), and a file kept open also keeps its decoded blocks in GDAL's block cache
    for the neighbouring tile's halo. Handles never leave the thread that opened them
    (GDAL handles are not thread-safe), and at most :data:`KEPT_OPEN_FILES` stay open per
    thread (least recently used closed first).

    A ``session`` is one build, during which its inputs must not change. Handles outlive
    it: on a long-running Dask cluster a worker's thread opens a build's files once, not
    once per build. Between sessions files may change: the first read of a kept
    file in a session compares the file on disk, its folder and the sidecar files GDAL read
    with it with what they were when it was opened (:func:`_file_identity`, a few
    ``os.stat``), and opens it afresh if anything differs. Remote files are always opened
    afresh, inside their network allowance. Outside such a block, or with an empty
    ``session``, every read opens and closes its file.
    """
    state = _KEPT.__dict__
    if not session:
        yield
        return
    if state.get("session") != session:
        state["session"], state["checked"] = session, set()
        state.setdefault("datasets", OrderedDict())  # path -> (dataset, its sidecar files, their identity)
    state["active"] = True
    try:
        yield
    finally:
        state["active"] = False


def close_kept_files() -> None:
    """Close the band files this thread keeps open (:func:`keep_files_open`)."""
    state = _KEPT.__dict__
    for dataset, _sidecars, _identity in state.pop("datasets", {}).values():
        dataset.close()
    state.pop("session", None)
    state.pop("checked", None)
    state.pop("scratch", None)


def _file_identity(path: str, sidecars: tuple[str, ...] = ()) -> tuple | None:
    """What tells the file at ``path`` from another one or from itself changed; None if it is gone.

    Device, inode, size, modification and change times of the file, of its folder (whose
    times change when a name in it is added, removed or renamed: a new ``.aux.xml`` or
    world file) and of the ``sidecars`` GDAL read with it (an edited ``.aux.xml`` can
    change the nodata value or the georeferencing that a warped read uses).
    """
    return _identities((path, os.path.dirname(path) or ".", *sidecars))


def _identities(names) -> tuple | None:
    """Device, inode, size, modification and change times of each file named, in order; None if one is gone."""
    try:
        stats = [os.stat(name) for name in names]
    except OSError:
        return None
    return tuple((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for st in stats)


def _scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reusable array of ``shape`` for intermediate values within :func:`keep_files_open`, else a new one.

    Each thread keeps one buffer per name, grown as needed: a tile's reads then allocate
    nothing. That matters on Dask workers, which run with ``MALLOC_TRIM_THRESHOLD_``
    set, so that glibc hands every array of more than 128 kB back to the system when it
    is freed and page-faults it in afresh on the next allocation. Never returned to a caller.
    """
    state = _KEPT.__dict__
    size = math.prod(shape) * np.dtype(dtype).itemsize
    if not state.get("active"):
        return np.empty(shape, dtype=dtype)
    pool = state.setdefault("scratch", {})
    buffer = pool.get(name)
    if buffer is None or buffer.size < size:
        buffer = pool[name] = np.empty(max(size, 1), dtype=np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


@contextmanager
def _open_for_reading(path: str, remote: bool = False) -> Iterator[rasterio.io.DatasetReader]:
    """The file at ``path``, open: this thread's kept handle within :func:`keep_files_open`, else opened for now."""
    state = _KEPT.__dict__
    if remote or not state.get("active"):
        with open_band_file(path, remote) as dataset:
            yield dataset
        return
    datasets, checked = state["datasets"], state["checked"]
    kept = datasets.get(path)  # (dataset, its sidecar files, identity)
    if kept is not None and path not in checked:
        now = _file_identity(path, kept[1])
        if now is None or now != kept[2]:  # changed or replaced since an earlier session opened it
            del datasets[path]
            kept[0].close()
            kept = None
    if kept is None:
        before = _file_identity(path)  # the file and its folder before opening: a file replaced meanwhile
        dataset = rasterio.open(path, driver=band_driver(path))  # is found changed next time
        sidecars = tuple(name for name in dataset.files if name != path)
        of_sidecars = _identities(sidecars)
        identity = before + of_sidecars if before is not None and of_sidecars is not None else None
        kept = datasets[path] = (dataset, sidecars, identity)
        while len(datasets) > KEPT_OPEN_FILES:
            datasets.popitem(last=False)[1][0].close()
    else:
        datasets.move_to_end(path)
    checked.add(path)
    yield kept[0]


def band_driver(path: str) -> str:
    """The only GDAL driver allowed for a band file: JPEG 2000 for ``.jp2``, else GeoTIFF (COGs are GeoTIFFs)."""
    suffix = Path(path.split("?", 1)[0]).suffix.lower()
    return BAND_DRIVERS.get(suffix, "GTiff")


def _shown(path: str) -> str:
    """A band path for messages: a remote one without its query string (signed URLs carry tokens)."""
    return redact_url(path.removeprefix("/vsicurl/")) if path.startswith("/vsicurl/") else path


def _gdal_reason(exc: Exception, path: str) -> str:
    """GDAL's words for a failed open or read of ``path`` (:func:`layers.activity.gdal_message`), without its
    query string: GDAL names the file in some messages query and all (``B04.tif?st=...&sig=...: TIFFReadDirectory
    ...``), and a signed URL's query is its token."""
    reason = gdal_message(exc)
    query = urllib.parse.urlsplit(path).query if path.startswith("/vsicurl/") else ""
    return reason.replace(f"?{query}", "").replace(query, "") if query else reason


def _read_on_grid(
    band: BandFile, grid: Grid, window: Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The file's pixels under ``window`` of ``grid``: ``(data, rows, cols, valid)``.

    On a grid aligned with the file's (:func:`_aligned_factor`), ``data`` is the block
    of file pixels the window covers, and ``rows``/``cols`` give for each row and column
    of the window its row and column in ``data`` (-1 outside the file); ``valid`` is
    None. Otherwise the file is warped onto the grid: ``data`` is the window's values,
    ``rows``/``cols`` count them, and ``valid`` says where the warp found pixels. The
    nodata rules (:func:`_has_data`) are left to the caller.
    """
    rows, cols = int(window.height), int(window.width)
    try:
        with _open_for_reading(band.path, band.remote) as dataset:
            factor = _aligned_factor(band, grid)
            if factor is not None:
                return (*_read_aligned(dataset, band, grid, window, factor), None)
            with WarpedVRT(
                dataset,
                crs=grid.crs.to_wkt(),
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=Resampling.nearest,
                add_alpha=True,
            ) as vrt:
                values = vrt.read(band.index, window=window)
                valid = vrt.read(vrt.count, window=window) > 0
                return values.reshape(rows, cols), np.arange(rows), np.arange(cols), valid.reshape(rows, cols)
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"{LAYER}: {_shown(band.path)}: cannot be read: {_gdal_reason(exc, band.path)}") from None


def _aligned_factor(band: BandFile, grid: Grid) -> int | None:
    """``k`` when the band's pixels are exactly ``k x k`` grid pixels on the same lattice, else None."""
    if _crs_key(band.crs_wkt) != _crs_key(grid.crs.to_wkt()):
        return None
    t, g = band.transform, grid.transform
    if t.b or t.d or g.b or g.d or t.a <= 0 or t.e >= 0 or not math.isclose(t.a, -t.e) or not math.isclose(g.a, -g.e):
        return None
    factor = t.a / g.a
    shift_x, shift_y = (t.c - g.c) / g.a, (g.f - t.f) / g.a
    if not all(abs(v - round(v)) < 1e-6 for v in (factor, shift_x, shift_y)) or round(factor) < 1:
        return None
    return int(round(factor))


def _read_aligned(
    dataset, band: BandFile, grid: Grid, window: Window, factor: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The file pixels under ``window`` and, per window row and column, where each is in them (-1: outside).

    A file pixel covers ``factor x factor`` grid pixels (20 m bands on the 10 m grid), so
    it is repeated that many times along both axes: nearest neighbour, exact on aligned
    grids.
    """
    t, g = band.transform, grid.transform
    shift_col, shift_row = round((t.c - g.c) / g.a), round((g.f - t.f) / g.a)
    file_rows = np.floor_divide(np.arange(int(window.row_off), int(window.row_off + window.height)) - shift_row, factor)
    file_cols = np.floor_divide(np.arange(int(window.col_off), int(window.col_off + window.width)) - shift_col, factor)
    row_in = (file_rows >= 0) & (file_rows < band.height)
    col_in = (file_cols >= 0) & (file_cols < band.width)
    if not row_in.any() or not col_in.any():
        empty = np.zeros((1, 1), dtype=dataset.dtypes[band.index - 1])
        return empty, np.full(file_rows.size, -1, dtype=np.int64), np.full(file_cols.size, -1, dtype=np.int64)
    r0, r1 = int(file_rows[row_in].min()), int(file_rows[row_in].max()) + 1
    c0, c1 = int(file_cols[col_in].min()), int(file_cols[col_in].max()) + 1
    dtype = dataset.dtypes[band.index - 1]
    data = dataset.read(
        band.index, window=Window(c0, r0, c1 - c0, r1 - r0), out=_scratch("raw", (r1 - r0, c1 - c0), dtype)
    )
    rows = np.where(row_in, file_rows - r0, -1).astype(np.int64)
    cols = np.where(col_in, file_cols - c0, -1).astype(np.int64)
    return data, rows, cols


def _nodata_rule(band: BandFile, dtype: np.dtype) -> tuple[object, bool, bool, bool]:
    """:func:`_has_data`'s rule as kernel arguments: ``(nodata, check_nodata, zero_is_nodata, check_finite)``.

    A float file's nodata value is compared in the file's precision, an integer file's
    as a float64, as numpy compares an array with a Python float.
    """
    has_nodata = band.nodata is not None and not math.isnan(band.nodata)
    value = band.nodata if has_nodata else 0.0
    nodata = np.dtype(dtype).type(value) if np.issubdtype(dtype, np.floating) else np.float64(value)
    return nodata, has_nodata, band.integer and not has_nodata, not band.integer


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _reflectance(data, nodata, check_nodata, zero_is_nodata, check_finite, scale, offset, out):  # pragma: no cover
    """``out`` = ``float32(data) * scale + offset`` in float32, NaN where no data (branch-free: vectorized)."""
    scale32, offset32, nan = np.float32(scale), np.float32(offset), np.float32(np.nan)
    height, width = data.shape
    for r in range(height):
        for c in range(width):
            value = data[r, c]
            missing = (check_finite & ~np.isfinite(value)) | (check_nodata & (value == nodata))
            missing = missing | (zero_is_nodata & (value == 0))
            converted = np.float32(value) * scale32 + offset32
            out[r, c] = nan if missing else converted


@numba.njit(cache=True, nogil=True)
def _repeat(values, rows, cols, fill, out):  # pragma: no cover - compiled
    """``out[i, j]`` = ``values[rows[i], cols[j]]``, ``fill`` where either is -1 (outside the file)."""
    for i in range(rows.size):
        r = rows[i]
        for j in range(cols.size):
            c = cols[j]
            out[i, j] = values[r, c] if r >= 0 and c >= 0 else fill


@numba.njit(cache=True, nogil=True)
def _classes(data, rows, cols, nodata, check_nodata, zero_is_nodata, check_finite, out):  # pragma: no cover
    """``out[i, j]`` = ``uint8(data[rows[i], cols[j]])``; 0 outside the file or where no data."""
    for i in range(rows.size):
        r = rows[i]
        for j in range(cols.size):
            c = cols[j]
            if r < 0 or c < 0:
                out[i, j] = 0
                continue
            value = data[r, c]
            if (
                (check_finite and not np.isfinite(value))
                or (check_nodata and value == nodata)
                or (zero_is_nodata and value == 0)
            ):
                out[i, j] = 0
            else:
                out[i, j] = np.uint8(value)


def _has_data(values: np.ndarray, band: BandFile) -> np.ndarray:
    """Where ``values`` are data: not the nodata value, not NaN, and for integer files without
    a nodata value not 0 (Level-2A's "no data" digital number)."""
    valid = np.isfinite(values) if not band.integer else np.ones(values.shape, dtype=bool)
    if band.nodata is not None and not math.isnan(band.nodata):
        return valid & (values != band.nodata)
    return valid & (values != 0) if band.integer else valid


@functools.lru_cache(maxsize=64)
def _crs_key(wkt: str):
    crs = CRS.from_wkt(wkt)
    return crs.to_epsg(min_confidence=90) or crs.to_wkt()


# ----------------------------------------------------------------------------- folders


DescribeRequest = tuple[str, str, int, bool]  # absolute path, band, band index in the file, stacked (multi-band)
DescribeResult = tuple[BandFile, bool]  # the band, and whether its file is tagged synthetic
DescribeFiles = Callable[[list[DescribeRequest]], list[DescribeResult]]


def describe_files_here(requests: list[DescribeRequest]) -> list[DescribeResult]:
    """Open and describe each file (:func:`_describe`) in this process, in order; the first that cannot be used
    raises its error. Within :func:`keep_files_open`, the files stay open for reads."""
    with _gdal_env():
        return [_describe(path, band, index=index, stacked=stacked) for path, band, index, stacked in requests]


def _folder_scenes(root: Path, band_order: tuple[str, ...] | None, describe_files: DescribeFiles) -> list[Scene]:
    with _gdal_env():
        return _folder_scenes_in_env(root, band_order, describe_files)


def _gdal_env():
    """One rasterio environment for all the files of a folder, where ``rasterio.open`` would make one per file.

    ``rasterio.open`` outside any environment enters one with rasterio's defaults for that
    call alone, which costs about 40 us per file (GDAL_DATA and PROJ lookups). Entering the
    same default environment once gives the opens the same GDAL configuration. Within an
    environment the caller entered, nothing changes. ``GDAL_DISABLE_READDIR_ON_OPEN`` stays
    unset, although each open lists the file's folder (~0.06 ms an open among 100 files,
    0.5 ms among 2,000): ``EMPTY_DIR`` would hide a band's ``.aux.xml`` (scale, offset,
    nodata, band descriptions), and ``TRUE`` a world file whose name differs in case from
    the band file's (``a.tfw`` beside ``A.tif``), which GDAL finds by the listing. Either
    would describe a file otherwise than the reads, which open it with the listing, see it.
    """
    return nullcontext() if rasterio.env.hasenv() else rasterio.Env.from_defaults()


def _folder_scenes_in_env(root: Path, band_order: tuple[str, ...] | None, describe_files: DescribeFiles) -> list[Scene]:
    groups: dict[str, dict[str, list[tuple[str, int, bool]]]] = {}  # key -> band -> (absolute path, index, stacked)
    dates: dict[str, dt.date] = {}
    cwd = os.getcwd()  # once, not once per file as Path.absolute() asks for it
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        require_inside(path, root, LAYER)  # no link out of a stranger's folder
        check_content(path, LAYER)  # a .tif holds TIFF, a .jp2 JPEG 2000: nothing else is opened
        band, key_tokens = _band_token(path.stem)
        stacked = band is None  # a name naming no band: a multi-band file, or not ours
        bands = [(band, 1)] if not stacked else _stack_bands(path, band_order)
        if not bands:
            continue
        date, from_stem = _date_of(path, root)
        if date is None:
            raise InputError(
                f"{LAYER}: {path}: no acquisition date in the file name or its folder; "
                "name it like T36KVD_20210615_B04.tif or put it in a folder named 2021-06-15"
            )
        key = "_".join(key_tokens) if from_stem else str(path.parent.relative_to(root))
        for name, index in bands:
            groups.setdefault(key, {}).setdefault(name, []).append((_absolute(path, cwd), index, stacked))
        if dates.setdefault(key, date) != date:
            raise InputError(f"{LAYER}: {path}: dated {date}, but other files of scene {key} are dated {dates[key]}")
    requests = [
        (path, band, index, stacked)
        for files in groups.values()
        for band, entries in files.items()
        for path, index, stacked in entries
    ]
    described = dict(zip(requests, describe_files(requests), strict=True))
    return [_scene_from_files(root, key, dates[key], files, described) for key, files in groups.items()]


def _band_token(stem: str) -> tuple[str | None, list[str]]:
    """The band a file name names, and the name's other tokens (the scene key)."""
    tokens = [t for t in _TOKEN_SPLIT.split(stem) if t]
    for i, token in enumerate(tokens):
        band = ALIASES.get(token.lower())
        if band is not None:
            rest = tokens[:i] + tokens[i + 1 :]
            return band, [t for t in rest if not _RESOLUTION_TOKEN.match(t)]
    return None, [t for t in tokens if not _RESOLUTION_TOKEN.match(t)]


def _stack_bands(path: Path, band_order: tuple[str, ...] | None) -> list[tuple[str, int]]:
    """The Sentinel-2 bands of a multi-band file and their numbers in it; empty when it names none.

    Named by the band descriptions, else by ``band_order`` when the file has that many
    bands. A file GDAL cannot open as a GeoTIFF or JPEG 2000 is not ours: empty too.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with open_band_file(str(path)) as dataset:
                count, descriptions = dataset.count, dataset.descriptions
    except rasterio.errors.RasterioError:
        return []
    if count < 2:
        return []
    names = [_band_token(text or "")[0] or "-" for text in descriptions]
    if all(name == "-" for name in names):
        if band_order is None or len(band_order) != count:
            return []
        names = list(band_order)
    found = [(name, i + 1) for i, name in enumerate(names) if name != "-"]
    twice = sorted({name for name, _ in found if [n for n, _ in found].count(name) > 1})
    if twice:
        raise InputError(f"{LAYER}: {path}: its band descriptions name {', '.join(twice)} more than once")
    return found


def _date_of(path: Path, root: Path) -> tuple[dt.date | None, bool]:
    """The acquisition date in the file name, else in the nearest folder name (and which)."""
    for name, from_stem in _dated_names(path, root):
        match = _DATE.search(name)
        if match:
            try:
                return dt.date(*(int(g) for g in match.groups())), from_stem
            except ValueError:
                raise InputError(f"{LAYER}: {path}: {match.group(0)!r} in {name!r} is not a valid date") from None
    return None, False


def _dated_names(path: Path, root: Path) -> Iterator[tuple[str, bool]]:
    """The file's stem, then the names of its folders below ``root``, nearest first (and whether it is the stem).

    Lazily, as most file names hold their date. ``path`` is one of ``root.rglob()``'s, so
    its folders below ``root`` are the parts of its path relative to ``root``.
    """
    yield path.stem, True
    for name in reversed(path.relative_to(root).parts[:-1]):
        yield name, False


def _scene_from_files(
    root: Path,
    key: str,
    date: dt.date,
    files: dict[str, list[tuple[str, int, bool]]],
    described_files: dict[DescribeRequest, DescribeResult],
) -> Scene:
    """The scene of the files found for ``key`` (band -> absolute path, band index, stacked), as
    ``described_files`` describe them."""
    bands: dict[str, BandFile] = {}
    synthetic = False
    for band, entries in files.items():
        described = [described_files[(path, band, index, stacked)] for path, index, stacked in entries]
        finest = min(d[0].pixel_m for d in described)
        best = [d for d in described if math.isclose(d[0].pixel_m, finest)]
        if len(best) > 1:
            names = ", ".join(f"{d[0].path}" + (f" (band {d[0].index})" if d[0].index > 1 else "") for d in best)
            raise InputError(f"{LAYER}: scene {key} ({date}): band {band} is given twice at {finest:g} m: {names}")
        bands[band] = best[0][0]
        synthetic = synthetic or any(d[1] for d in described)
    _require_bands(f"{root}: scene {key} ({date})", bands)
    scene_id = key if key != "." else date.isoformat()
    return Scene(scene_id, date, bands, synthetic)


def _absolute(path: Path, cwd: str) -> str:
    """``str(path.absolute())`` with the working directory ``cwd`` given (``os.getcwd()``, asked once per folder)."""
    return os.path.join(cwd, str(path))  # an absolute path is returned as it is, as absolute() does


def _require_bands(what: str, bands: dict[str, BandFile]) -> None:
    missing = [b for b in REQUIRED_BANDS if b not in bands]
    if missing:
        raise InputError(
            f"{LAYER}: {what}: lacks {', '.join(missing)} (has {', '.join(sorted(bands)) or 'nothing'}); "
            f"every date needs {', '.join(REQUIRED_BANDS)}"
        )


def _describe(
    source: str,
    band: str,
    scale_offset: tuple[float, float] | None = None,
    *,
    index: int = 1,
    stacked: bool = False,
    remote: bool = False,
) -> tuple[BandFile, bool]:
    """Open ``source`` once: the grid, data type, nodata, scale/offset of band ``index``, and the synthetic tag.

    ``stacked``: the file is a multi-band file (several bands expected, and the SCL
    may be stored as floating-point classes); otherwise it must hold exactly one band.
    """
    what = f"{LAYER}: {_shown(source)}"
    try:
        with _open_for_reading(source, remote) as dataset:
            source_wkt = dataset.crs.to_wkt() if dataset.crs else None
            require_crs(source_wkt, what=what)  # a missing or unusable CRS is refused, naming this file
            if not stacked and dataset.count != 1:
                raise InputError(f"{what}: has {dataset.count} bands; give one band per file ({band})")
            if index > dataset.count:
                raise InputError(f"{what}: has {dataset.count} bands, so no band {index} ({band})")
            transform = dataset.transform
            if transform.is_identity or transform.determinant == 0:
                raise InputError(f"{what}: has no georeferencing (identity transform)")
            if transform.b or transform.d:
                raise InputError(f"{what}: is rotated; warp it to a north-up grid first (gdalwarp)")
            megapixels = dataset.width * dataset.height / 1e6
            if megapixels > DEFAULT_LIMITS.max_raster_megapixels:
                raise InputError(
                    f"{what}: "
                    + DEFAULT_LIMITS.exceeded("max_raster_megapixels", f"has {megapixels:,.0f} million pixels")
                )
            integer = bool(np.issubdtype(np.dtype(dataset.dtypes[index - 1]), np.integer))
            if band == "SCL" and not integer and not stacked:
                raise InputError(f"{what}: the scene classification must be integer classes 0..11")
            tags = {k.upper(): str(v).lower() for k, v in dataset.tags().items()}
            synthetic = tags.get("MINEWATCH_SYNTHETIC") in {"yes", "true", "1"}
            file_scale_offset = (float(dataset.scales[index - 1]), float(dataset.offsets[index - 1]))
            nodata = dataset.nodatavals[index - 1]
            width, height = dataset.width, dataset.height
            block_shape = tuple(dataset.block_shapes[index - 1])
    except rasterio.errors.RasterioError as exc:
        reason = _gdal_reason(exc, source)
        if remote and re.search(r"response code: 40[13]\b", reason):
            reason += (
                " (the storage wants signed URLs: for a Planetary Computer mirror, --sign-assets planetary-computer)"
            )
        raise InputError(f"{what}: cannot be read as a raster: {reason}") from None
    scale, offset = 1.0, 0.0
    if band != "SCL":
        scale, offset = _scale_offset(source, band, integer, scale_offset, file_scale_offset, remote)
    described = BandFile(
        source,
        band,
        _kept_wkt(source_wkt),
        transform,
        width,
        height,
        integer,
        None if nodata is None else float(nodata),
        scale,
        offset,
        index,
        remote,
        block_shape,
    )
    return described, synthetic


@functools.lru_cache(maxsize=64)
def _kept_wkt(source_wkt: str) -> str:
    """The WKT a :class:`BandFile` keeps for a file whose CRS GDAL gives as ``source_wkt``: pyproj's, interned.

    Interned: one string object for all bands in one CRS, pickled once per task. Made once
    per distinct WKT, as a folder's files share one or two (pyproj's ``to_wkt`` costs
    ~10 us a file). Called only after :func:`require_crs` accepted ``source_wkt`` for the
    file, so the parse cannot fail.
    """
    return sys.intern(CRS.from_user_input(source_wkt).to_wkt())


def _scale_offset(
    source: str,
    band: str,
    integer: bool,
    stac: tuple[float, float] | None,
    in_file: tuple[float, float],
    remote: bool = False,
) -> tuple[float, float]:
    if stac is not None:
        return stac
    if in_file != (1.0, 0.0):
        return in_file
    metadata = None if remote else _safe_metadata(Path(source))
    if metadata is not None:
        quantification, offsets = metadata
        return 1.0 / quantification, offsets.get(_MTD_BAND_ID.get(band, -1), 0.0) / quantification
    return (1.0 / DEFAULT_QUANTIFICATION, 0.0) if integer else (1.0, 0.0)


def _safe_metadata(path: Path) -> tuple[float, dict[int, float]] | None:
    """``BOA_QUANTIFICATION_VALUE`` and ``BOA_ADD_OFFSET`` per band id from a SAFE's MTD_MSIL2A.xml."""
    for folder in list(path.parents)[:6]:
        xml = folder / "MTD_MSIL2A.xml"
        if xml.is_file():
            text = xml.read_text(encoding="utf-8", errors="replace")
            found = re.search(r"<BOA_QUANTIFICATION_VALUE[^>]*>\s*([\d.]+)", text)
            offsets = {int(b): float(v) for b, v in re.findall(r'<BOA_ADD_OFFSET band_id="(\d+)">\s*(-?[\d.]+)', text)}
            return (float(found.group(1)) if found else DEFAULT_QUANTIFICATION), offsets
    return None


def _touches_bbox(scene: Scene, bbox: tuple[float, float, float, float]) -> bool:
    """Whether the scene's B04 footprint meets ``bbox`` (WGS 84 degrees)."""
    band = scene.band("B04")
    west, south, east, north = rasterio.warp.transform_bounds(
        CRS.from_wkt(band.crs_wkt), "EPSG:4326", *band.bounds(), densify_pts=21
    )
    return west < bbox[2] and east > bbox[0] and south < bbox[3] and north > bbox[1]


# ----------------------------------------------------------------------------- STAC


def _stac_scenes(path: Path) -> list[Scene]:
    import pystac

    stac_io = local_only_stac_io()  # a local catalog whose links name URLs is refused, not fetched
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("type")
        if kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_file(str(path), stac_io=stac_io))
        else:
            stac = pystac.read_file(str(path), stac_io=stac_io)
            items = list(stac.get_items(recursive=True)) if hasattr(stac, "get_items") else [stac]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{LAYER}: {path}: is not a readable STAC file: {' '.join(str(exc).split())}") from None
    return [_item_scene(str(path), item) for item in items]


def _item_scene(origin: str, item, remote: bool = False) -> Scene:
    """One STAC item as a scene; ``remote``: found by a STAC API search, its assets read over http(s)."""
    what = f"{origin}: item {item.id}"
    when = _item_datetime(item)
    if when is None:
        raise InputError(f"{LAYER}: {what}: has no datetime or start_datetime")
    bands: dict[str, BandFile] = {}
    synthetic = str(item.properties.get("minewatch:synthetic", "")).lower() in {"true", "yes", "1"}
    for key, asset, found in _asset_bands(item):
        href = asset.get_absolute_href() or asset.href
        if remote:
            if not is_remote_url(href):
                raise InputError(
                    f"{LAYER}: {what}: asset {key} is {redact_url(href)}, not an http(s) URL; "
                    "minewatch reads the assets of a STAC API over http(s) only"
                )
            require_asset_host(href, origin, f"{LAYER}: {what}: asset {key}")
            source = vsicurl_path(href)
        else:
            if "://" in href and not href.startswith("file://"):
                raise InputError(
                    f"{LAYER}: {what}: asset {key} is {redact_url(href)}, not a local file; download the assets first "
                    "(e.g. with stac-asset or pystac-client) and point the catalog at them, or give the STAC API URL"
                )
            source = str(local_path(href.removeprefix("file://"), layer=LAYER).absolute())
        stacked = len(asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []) > 1
        for band, index in found:
            described, tagged = _describe(
                source, band, _raster_scale_offset(asset, index), index=index, stacked=stacked, remote=remote
            )
            bands[band] = described
            synthetic = synthetic or tagged
    _require_bands(what, bands)
    return Scene(item.id, when.date(), bands, synthetic)


def _asset_bands(item) -> list[tuple[str, object, list[tuple[str, int]]]]:
    """``(key, asset, [(band, number in the file), ...])`` of the assets to read, each band once.

    Asset keys naming a band come first (``red``, ``B04``), then ``eo:bands`` names for
    the bands still missing; previews (roles ``visual``, ``overview``, ``thumbnail``)
    are never used, and B12, which the score does not read, is left out.
    """
    wanted = set(REQUIRED_BANDS)
    chosen: list[tuple[str, object, list[tuple[str, int]]]] = []
    for by_key in (True, False):
        for key, asset in item.assets.items():
            if {"visual", "overview", "thumbnail"} & set(asset.roles or []):
                continue
            if by_key:
                band = ALIASES.get(key.lower())
                found = [(band, 1)] if band else []
            else:
                found = _eo_bands(asset) if not ALIASES.get(key.lower()) else []
            found = [(band, index) for band, index in found if band in wanted]
            if found:
                chosen.append((key, asset, found))
                wanted -= {band for band, _ in found}
    return chosen


def _parse_datetime(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _eo_bands(asset) -> list[tuple[str, int]]:
    """The bands an asset's ``eo:bands`` (or STAC 1.1 ``bands``) name, with their numbers in the file."""
    entries = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    found = []
    for number, entry in enumerate(entries, start=1):
        for name in (entry.get("name"), entry.get("common_name")):
            if name and ALIASES.get(str(name).lower()):
                found.append((ALIASES[str(name).lower()], number))
                break
    return found


def _raster_scale_offset(asset, index: int = 1) -> tuple[float, float] | None:
    entries = asset.extra_fields.get("raster:bands") or asset.extra_fields.get("bands") or []
    entry = entries[index - 1] if len(entries) >= index else {}
    if "raster:scale" in entry or "raster:offset" in entry:  # STAC 1.1 band objects
        return float(entry.get("raster:scale", 1.0)), float(entry.get("raster:offset", 0.0))
    if "scale" in entry or "offset" in entry:
        return float(entry.get("scale", 1.0)), float(entry.get("offset", 0.0))
    return None


# ----------------------------------------------------------------------------- STAC API


def _api_scenes(url: str, query: SceneQuery) -> list[Scene]:
    """The scenes a STAC API search finds, their assets described over http(s) a few at a time."""
    shown = redact_url(url)
    where = f"{LAYER}: STAC API {shown}"
    if query.bbox is None:
        raise InputError(f"{where}: give --bbox WEST,SOUTH,EAST,NORTH (degrees) for the search")
    if not query.datetime:
        raise InputError(
            f"{where}: give --datetime START/END for the search (e.g. 2020-01-01/2022-12-31), or both --baseline "
            "and --periods"
        )
    check_datetime(query.datetime, where)
    items = _search(url, query, where)
    if not items:
        raise InputError(f"{where}: the search ({query.describe()}) found no items")
    if len(items) > query.max_items:
        raise InputError(
            f"{where}: the search ({query.describe()}) finds more than {query.max_items} items; "
            "narrow --bbox or --datetime, lower --max-cloud, or raise --max-items"
        )
    items = latest_processing(items)
    sign_items(items, url, query.sign_assets or "auto", where)
    with concurrent.futures.ThreadPoolExecutor(min(REMOTE_DESCRIBE_THREADS, len(items))) as pool:
        return list(pool.map(lambda item: _item_scene(shown, item, remote=True), items))


def latest_processing(items: list) -> list:
    """The items less those another item replaces: the same acquisition (time to the second) of the same tile,
    processed again. The one kept has the highest ``s2:processing_baseline``, then the latest ``updated`` (or
    ``created``), then the greatest id; the order of the search is kept.

    A STAC API lists a reprocessed acquisition beside the first processing (Earth Search
    has both for many 2021-2022 dates); used twice, one date would count twice in the
    median. The tile is ``s2:mgrs_tile`` (Planetary Computer), Earth Search's
    ``mgrs:utm_zone``/``mgrs:latitude_band``/``mgrs:grid_square``, or else the item's
    bounding box to about 10 m.
    """
    best: dict[tuple, object] = {}
    for item in items:
        key = (_acquired(item), _tile_of(item))
        if key not in best or _processing_rank(item) > _processing_rank(best[key]):
            best[key] = item
    kept = {id(item) for item in best.values()}
    return [item for item in items if id(item) in kept]


def _acquired(item) -> str:
    when = _item_datetime(item)
    return when.strftime("%Y-%m-%dT%H:%M:%S") if when else item.id


def _item_datetime(item):
    """The item's acquisition time: ``datetime``, else ``start_datetime`` (None if it has neither)."""
    return item.datetime or _parse_datetime(item.properties.get("start_datetime"))


def _tile_of(item) -> tuple:
    properties = item.properties
    if properties.get("s2:mgrs_tile"):
        return (str(properties["s2:mgrs_tile"]),)
    grid = tuple(str(properties.get(k, "")) for k in ("mgrs:utm_zone", "mgrs:latitude_band", "mgrs:grid_square"))
    if any(grid):
        return grid
    return tuple(round(value, 4) for value in (item.bbox or []))


def _processing_rank(item) -> tuple:
    properties = item.properties
    try:
        baseline = float(properties.get("s2:processing_baseline") or 0)
    except (TypeError, ValueError):
        baseline = 0.0
    return baseline, str(properties.get("updated") or properties.get("created") or ""), item.id


def _search(url: str, query: SceneQuery, where: str) -> list:
    """The items of the search (one more than ``max_items`` at most), with the errors said in one line."""
    import pystac
    from pystac_client import Client
    from pystac_client.conformance import ConformanceClasses
    from pystac_client.exceptions import APIError
    from pystac_client.stac_api_io import StacApiIO

    with stac_api_access(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pystac-client's notes on fallbacks: what matters is raised below, on one line
        try:
            client = Client.open(url, stac_io=StacApiIO(timeout=STAC_API_TIMEOUT_S, max_retries=stac_api_retry()))
        except APIError as exc:
            if getattr(exc, "status_code", None):
                raise InputError(f"{where}: is not a STAC API landing page (HTTP {exc.status_code})") from None
            raise InputError(f"{where}: cannot be reached: {_api_reason(exc)}") from None
        except (pystac.STACError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{where}: is not a STAC API landing page ({_one_line(exc)})") from None
        if not client.conforms_to(ConformanceClasses.ITEM_SEARCH):
            raise InputError(f"{where}: offers no item search (its conformsTo lists no .../item-search)")
        posts = any(link.extra_fields.get("method") == "POST" for link in client.get_links("search"))
        params = {
            "collections": [query.collection or DEFAULT_COLLECTION],
            "bbox": list(query.bbox),
            "datetime": query.datetime,
            "max_items": query.max_items + 1,
            "limit": min(100, query.max_items + 1),
            "method": "POST" if posts else "GET",
        }
        if query.max_cloud is not None and client.conforms_to(ConformanceClasses.QUERY):
            params["query"] = {"eo:cloud_cover": {"lte": query.max_cloud}}
        elif query.max_cloud is not None and client.conforms_to(ConformanceClasses.FILTER):
            params["filter"] = {"op": "<=", "args": [{"property": "eo:cloud_cover"}, query.max_cloud]}
            params["filter_lang"] = "cql2-json"
        try:
            items = list(client.search(**params).items())
        except APIError as exc:
            raise InputError(f"{where}: the search ({query.describe()}) failed: {_api_reason(exc)}") from None
        except (pystac.STACError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{where}: the search ({query.describe()}) failed: {_one_line(exc)}") from None
    if query.max_cloud is not None:  # also where the API could not filter
        items = [i for i in items if float(i.properties.get("eo:cloud_cover", 0.0) or 0.0) <= query.max_cloud]
    return items


def _api_reason(exc) -> str:
    """Why a STAC API call failed, in a few words: the HTTP status, the socket error, or a timeout."""
    status = getattr(exc, "status_code", None)
    text = _one_line(exc)
    if status:
        return f"it answered HTTP {status}"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return f"no answer within {STAC_API_TIMEOUT_S[0]:g} s (connect) / {STAC_API_TIMEOUT_S[1]:g} s (read)"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        return errno.group(1).strip().rstrip(".").lower()
    return text[:200]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__
