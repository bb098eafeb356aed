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

**A STAC catalog, collection, item or ItemCollection** as a local JSON file (``pystac``):
each item is a scene dated by its ``datetime`` (or ``start_datetime``); its assets are
matched by key, case-insensitively, with the aliases above (``B04`` or ``red``, ``SCL``
or ``scl``...), or by ``eo:bands`` names. Asset files must be local; the
``raster:bands`` ``scale``/``offset`` of an asset are honoured.

Each date needs B02, B03, B04, B08, B11 and SCL; B12 is accepted but not read (the score
does not use it). Reflectance is ``DN * scale + offset``, with ``scale``/``offset`` from,
in order: STAC ``raster:bands``; the GeoTIFF's own scale/offset metadata; the SAFE's
``MTD_MSIL2A.xml`` (``BOA_QUANTIFICATION_VALUE`` and ``BOA_ADD_OFFSET``, the -1000 offset
of processing baseline 04.00 onwards); else ``DN / 10000`` for integer files and the
values as they are for float files. Digital number 0 (or the file's nodata value) is
"no data". A file without CRS, with several bands, rotated, or unreadable is an
:class:`~geo.errors.InputError` naming it.

Reading (``read_reflectance``, ``read_scl``) returns one window of the output grid
(:func:`output_grid`: the finest band grid, 10 m for Level-2A) from one file, opened
for that call only: 20 m bands are repeated onto the 10 m grid (nearest neighbour,
exact when the grids are aligned, as Sentinel-2 tiles are), and files on another grid
or CRS are warped (nearest neighbour). Nothing is ever read whole: callers read tiles,
and :func:`open_band` gives a lazy, chunked dask-backed view for interactive use.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

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
from layers.activity import Grid
from layers.paths import local_path

LAYER = "sentinel2"
SUFFIXES = {".tif", ".tiff", ".jp2"}
REFLECTANCE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11")  # the order of geo.spectral.STACK_BANDS
REQUIRED_BANDS: tuple[str, ...] = (*REFLECTANCE_BANDS, "SCL")
ALIASES: dict[str, str] = {
    "b02": "B02",
    "blue": "B02",
    "b03": "B03",
    "green": "B03",
    "b04": "B04",
    "red": "B04",
    "b08": "B08",
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
    reflectance is ``DN * scale + offset``.
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

    @property
    def pixel_m(self) -> float:
        """Pixel width in CRS units (metres for the UTM grids of Sentinel-2)."""
        return abs(self.transform.a)

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


def find_scenes(raw_path: str | Path) -> list[Scene]:
    """The Sentinel-2 L2A scenes of a folder of band files or of a local STAC JSON file.

    Returns them sorted by date then id. Raises :class:`InputError` when nothing usable
    is found, a scene lacks a required band, or a file cannot be used (named in the
    message with what is wrong).
    """
    path = local_path(raw_path, layer=LAYER, want_dir=None)
    if path.is_dir():
        scenes = _folder_scenes(path)
    elif path.suffix.lower() == ".json":
        scenes = _stac_scenes(path)
    else:
        raise InputError(
            f"{LAYER}: {path}: give a folder of Sentinel-2 band files (GeoTIFF or JP2) or a STAC catalog.json"
        )
    if not scenes:
        raise InputError(
            f"{LAYER}: {path}: no Sentinel-2 band files found; name them like "
            "T36KVD_20210615_B04.tif or 2021-06-15/B04.tif (see --help)"
        )
    return sorted(scenes, key=lambda s: (s.date, s.scene_id))


def output_grid(scenes: list[Scene]) -> Grid:
    """The grid that covers every scene at the finest band resolution (10 m for L2A).

    The CRS is the one most scenes share (the first scene's on a tie); the pixel lattice
    is that of the first such scene's B04 file, so aligned Sentinel-2 tiles need no
    resampling; the extent is the union of the scenes' B04 footprints.
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
    x0, y0 = anchor.transform.c, anchor.transform.f
    left = x0 + math.floor((min(lefts) - x0) / pixel_m + 1e-6) * pixel_m
    top = y0 - math.floor((y0 - max(tops)) / pixel_m + 1e-6) * pixel_m
    width = math.ceil((max(rights) - left) / pixel_m - 1e-6)
    height = math.ceil((top - min(bottoms)) / pixel_m - 1e-6)
    return Grid(crs, Affine(pixel_m, 0.0, left, 0.0, -pixel_m, top), int(width), int(height))


def read_reflectance(band: BandFile, grid: Grid, window: Window) -> np.ndarray:
    """Surface reflectance of one band in ``window`` of ``grid``: float32, NaN where no data.

    Parameters
    ----------
    band:
        The band file (its scale and offset turn digital numbers into reflectance).
    grid:
        The output grid (CRS and pixel size in metres).
    window:
        Rows and columns of ``grid`` to return; parts outside the file are NaN.
    """
    values, valid = _read_on_grid(band, grid, window)
    reflectance = values.astype(np.float32)
    reflectance *= np.float32(band.scale)
    reflectance += np.float32(band.offset)
    reflectance[~valid] = np.nan
    return reflectance


def read_scl(band: BandFile, grid: Grid, window: Window) -> np.ndarray:
    """Scene classification classes in ``window`` of ``grid`` (uint8; 0 "no data" outside the file)."""
    values, valid = _read_on_grid(band, grid, window)
    return np.where(valid, values, 0).astype(np.uint8)


def open_band(band: BandFile, chunks: int | tuple | dict = 1024):
    """A lazy, chunked view of one band file in its own grid (``xarray.DataArray`` on dask).

    Nothing is read until a chunk is computed; the file's CRS and transform are attached
    (``.rio.crs``, ``.rio.transform()``). Digital numbers, not reflectance: multiply by
    ``band.scale`` and add ``band.offset``.
    """
    import rioxarray

    return rioxarray.open_rasterio(band.path, chunks=chunks, lock=False).squeeze("band", drop=True)


def _read_on_grid(band: BandFile, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Raw values of ``band`` on ``window`` of ``grid`` and where they are data."""
    rows, cols = int(window.height), int(window.width)
    try:
        with rasterio.open(band.path) as dataset:
            factor = _aligned_factor(band, grid)
            if factor is not None:
                return _read_aligned(dataset, band, grid, window, factor)
            with WarpedVRT(
                dataset,
                crs=grid.crs.to_wkt(),
                transform=grid.transform,
                width=grid.width,
                height=grid.height,
                resampling=Resampling.nearest,
                add_alpha=True,
            ) as vrt:
                values = vrt.read(1, window=window)
                valid = (vrt.read(vrt.count, window=window) > 0) & _has_data(values, band)
                return values.reshape(rows, cols), valid.reshape(rows, cols)
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"{LAYER}: {band.path}: cannot be read: {' '.join(str(exc).split())}") from None


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


def _read_aligned(dataset, band: BandFile, grid: Grid, window: Window, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Read the file pixels under ``window`` and repeat each ``factor`` times along both axes."""
    t, g = band.transform, grid.transform
    shift_col, shift_row = round((t.c - g.c) / g.a), round((g.f - t.f) / g.a)
    grid_rows = np.arange(int(window.row_off), int(window.row_off + window.height))
    grid_cols = np.arange(int(window.col_off), int(window.col_off + window.width))
    file_rows = np.floor_divide(grid_rows - shift_row, factor)
    file_cols = np.floor_divide(grid_cols - shift_col, factor)
    row_in = (file_rows >= 0) & (file_rows < band.height)
    col_in = (file_cols >= 0) & (file_cols < band.width)
    values = np.zeros((grid_rows.size, grid_cols.size), dtype=dataset.dtypes[0])
    valid = np.zeros(values.shape, dtype=bool)
    if not row_in.any() or not col_in.any():
        return values, valid
    r0, r1 = int(file_rows[row_in].min()), int(file_rows[row_in].max()) + 1
    c0, c1 = int(file_cols[col_in].min()), int(file_cols[col_in].max()) + 1
    data = dataset.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    if factor == 1 and row_in.all() and col_in.all():
        return data, _has_data(data, band)  # the window lies inside the file: no copy
    if factor > 1:
        data = data[np.ix_(file_rows[row_in] - r0, file_cols[col_in] - c0)]
    rows_at, cols_at = np.flatnonzero(row_in), np.flatnonzero(col_in)
    block = (slice(rows_at[0], rows_at[-1] + 1), slice(cols_at[0], cols_at[-1] + 1))
    values[block] = data
    valid[block] = _has_data(data, band)
    return values, valid


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


def _folder_scenes(root: Path) -> list[Scene]:
    groups: dict[str, dict[str, list[Path]]] = {}
    dates: dict[str, dt.date] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
        band, key_tokens = _band_token(path.stem)
        if band is None:
            continue
        date, from_stem = _date_of(path, root)
        if date is None:
            raise InputError(
                f"{LAYER}: {path}: no acquisition date in the file name or its folder; "
                "name it like T36KVD_20210615_B04.tif or put it in a folder named 2021-06-15"
            )
        key = "_".join(key_tokens) if from_stem else str(path.parent.relative_to(root))
        groups.setdefault(key, {}).setdefault(band, []).append(path)
        if dates.setdefault(key, date) != date:
            raise InputError(f"{LAYER}: {path}: dated {date}, but other files of scene {key} are dated {dates[key]}")
    return [_scene_from_files(root, key, dates[key], files) for key, files in groups.items()]


def _band_token(stem: str) -> tuple[str | None, list[str]]:
    """The band a file name names, and the name's other tokens (the scene key)."""
    tokens = [t for t in _TOKEN_SPLIT.split(stem) if t]
    for i, token in enumerate(tokens):
        band = ALIASES.get(token.lower())
        if band is not None:
            rest = tokens[:i] + tokens[i + 1 :]
            return band, [t for t in rest if not _RESOLUTION_TOKEN.match(t)]
    return None, tokens


def _date_of(path: Path, root: Path) -> tuple[dt.date | None, bool]:
    """The acquisition date in the file name, else in the nearest folder name (and which)."""
    names = [(path.stem, True)] + [(p.name, False) for p in path.parents if p != root and root in p.parents]
    for name, from_stem in names:
        match = _DATE.search(name)
        if match:
            try:
                return dt.date(*(int(g) for g in match.groups())), from_stem
            except ValueError:
                raise InputError(f"{LAYER}: {path}: {match.group(0)!r} in {name!r} is not a valid date") from None
    return None, False


def _scene_from_files(root: Path, key: str, date: dt.date, files: dict[str, list[Path]]) -> Scene:
    bands: dict[str, BandFile] = {}
    synthetic = False
    for band, paths in files.items():
        described = [_describe(path, band) for path in paths]
        finest = min(d[0].pixel_m for d in described)
        best = [d for d in described if math.isclose(d[0].pixel_m, finest)]
        if len(best) > 1:
            names = ", ".join(str(d[0].path) for d in best)
            raise InputError(f"{LAYER}: scene {key} ({date}): band {band} is given twice at {finest:g} m: {names}")
        bands[band] = best[0][0]
        synthetic = synthetic or any(d[1] for d in described)
    _require_bands(f"{root}: scene {key} ({date})", bands)
    scene_id = key if key != "." else date.isoformat()
    return Scene(scene_id, date, bands, synthetic)


def _require_bands(what: str, bands: dict[str, BandFile]) -> None:
    missing = [b for b in REQUIRED_BANDS if b not in bands]
    if missing:
        raise InputError(
            f"{LAYER}: {what}: lacks {', '.join(missing)} (has {', '.join(sorted(bands)) or 'nothing'}); "
            f"every date needs {', '.join(REQUIRED_BANDS)}"
        )


def _describe(path: Path, band: str, scale_offset: tuple[float, float] | None = None) -> tuple[BandFile, bool]:
    """Open ``path`` once: its grid, data type, nodata, scale/offset and synthetic tag."""
    what = f"{LAYER}: {path}"
    try:
        with rasterio.open(path) as dataset:
            crs = require_crs(dataset.crs.to_wkt() if dataset.crs else None, what=what)
            if dataset.count != 1:
                raise InputError(f"{what}: has {dataset.count} bands; give one band per file ({band})")
            transform = dataset.transform
            if transform.is_identity or transform.determinant == 0:
                raise InputError(f"{what}: has no georeferencing (identity transform)")
            if transform.b or transform.d:
                raise InputError(f"{what}: is rotated; warp it to a north-up grid first (gdalwarp)")
            integer = bool(np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer))
            if band == "SCL" and not integer:
                raise InputError(f"{what}: the scene classification must be integer classes 0..11")
            tags = {k.upper(): str(v).lower() for k, v in dataset.tags().items()}
            synthetic = tags.get("MINEWATCH_SYNTHETIC") in {"yes", "true", "1"}
            file_scale_offset = (float(dataset.scales[0]), float(dataset.offsets[0]))
            nodata, width, height = dataset.nodata, dataset.width, dataset.height
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"{what}: cannot be read as a raster: {' '.join(str(exc).split())}") from None
    scale, offset = 1.0, 0.0
    if band != "SCL":
        scale, offset = _scale_offset(path, band, integer, scale_offset, file_scale_offset)
    described = BandFile(
        str(path.absolute()),
        band,
        crs.to_wkt(),
        transform,
        width,
        height,
        integer,
        None if nodata is None else float(nodata),
        scale,
        offset,
    )
    return described, synthetic


def _scale_offset(
    path: Path, band: str, integer: bool, stac: tuple[float, float] | None, in_file: tuple[float, float]
) -> tuple[float, float]:
    if stac is not None:
        return stac
    if in_file != (1.0, 0.0):
        return in_file
    metadata = _safe_metadata(path)
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


# ----------------------------------------------------------------------------- STAC


def _stac_scenes(path: Path) -> list[Scene]:
    import pystac

    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("type")
        if kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_file(str(path)))
        else:
            stac = pystac.read_file(str(path))
            items = list(stac.get_items(recursive=True)) if hasattr(stac, "get_items") else [stac]
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{LAYER}: {path}: is not a readable STAC file: {' '.join(str(exc).split())}") from None
    return [_item_scene(path, item) for item in items]


def _item_scene(path: Path, item) -> Scene:
    what = f"{path}: item {item.id}"
    when = item.datetime or _parse_datetime(item.properties.get("start_datetime"))
    if when is None:
        raise InputError(f"{LAYER}: {what}: has no datetime or start_datetime")
    bands: dict[str, BandFile] = {}
    synthetic = str(item.properties.get("minewatch:synthetic", "")).lower() in {"true", "yes", "1"}
    for key, asset in item.assets.items():
        band = ALIASES.get(key.lower()) or _eo_band(asset)
        if band is None or band in bands:
            continue
        href = asset.get_absolute_href() or asset.href
        if "://" in href and not href.startswith("file://"):
            raise InputError(
                f"{LAYER}: {what}: asset {key} is {href}, not a local file; download the assets first "
                "(e.g. with stac-asset or pystac-client) and point the catalog at them"
            )
        file_path = local_path(href.removeprefix("file://"), layer=LAYER)
        described, tagged = _describe(file_path, band, _raster_scale_offset(asset))
        bands[band] = described
        synthetic = synthetic or tagged
    _require_bands(what, bands)
    return Scene(item.id, when.date(), bands, synthetic)


def _parse_datetime(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _eo_band(asset) -> str | None:
    for entry in asset.extra_fields.get("eo:bands", []) or asset.extra_fields.get("bands", []) or []:
        for name in (entry.get("name"), entry.get("common_name")):
            if name and ALIASES.get(str(name).lower()):
                return ALIASES[str(name).lower()]
    return None


def _raster_scale_offset(asset) -> tuple[float, float] | None:
    entries = asset.extra_fields.get("raster:bands") or []
    if entries and ("scale" in entries[0] or "offset" in entries[0]):
        return float(entries[0].get("scale", 1.0)), float(entries[0].get("offset", 0.0))
    return None
