"""Licensed concessions: cadastre polygons into the canonical concessions table.

Accepted: GeoPackage, GeoJSON, Shapefile (and a zipped Shapefile given as ``.zip``),
GeoParquet and FlatGeobuf, in any CRS the file declares. Invalid geometries are
repaired and reported, never dropped; empty ones are kept and reported.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from geo.crs import require_crs
from geo.errors import InputError
from layers.fields import resolve_columns
from layers.paths import local_path
from layers.schema import (
    CONCESSION_DATES,
    CONCESSION_OPTIONAL,
    CONCESSION_REQUIRED,
    normalise_identifier,
    normalise_status,
    truthy,
)

LAYER = "concessions"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".zip", ".parquet", ".geoparquet", ".fgb"}


@dataclass
class LoadedConcessions:
    """The canonical concessions table and what was done to get it.

    ``table`` is a GeoDataFrame in the file's own CRS with the canonical columns, one row
    a licence, in file order; ``notes`` lists every repair and oddity, one line each.
    """

    table: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False


def read_concessions(raw_path: str | Path, mappings: dict | None = None) -> LoadedConcessions:
    """Read and validate a concessions file.

    Raises :class:`InputError` (a subclass for a missing CRS) naming the file and, where
    one is at fault, the feature (1-based, in file order).
    """
    path = local_path(raw_path, layer=LAYER)
    suffix = path.suffix.lower()
    if suffix not in VECTOR_SUFFIXES:
        raise InputError(
            f"{LAYER}: {path}: unsupported file type {suffix or '(none)'}; "
            "use GeoPackage, GeoJSON, Shapefile (or .zip), GeoParquet or FlatGeobuf"
        )
    frame = _read_vector(path, suffix)
    crs = require_crs(frame.crs, what=f"{LAYER}: {path}")
    columns = resolve_columns(
        [c for c in frame.columns if c != frame.geometry.name],
        required=CONCESSION_REQUIRED,
        optional=CONCESSION_OPTIONAL,
        mappings=mappings or {},
        layer=LAYER,
        source=str(path),
    )
    notes: list[str] = []
    table = pd.DataFrame(index=range(len(frame)))
    for canonical, theirs in columns.items():
        table[canonical] = frame[theirs].to_numpy()
    table["concession_id"] = [
        _feature_value(path, i, "concession_id", normalise_identifier(v)) for i, v in enumerate(table["concession_id"])
    ]
    _refuse_duplicate_ids(path, table["concession_id"])
    table["holder"] = [("" if _blank(v) else str(v).strip()) for v in table["holder"]]
    table["status"] = [_feature_status(path, i, v) for i, v in enumerate(table["status"])]
    for name in ("name", "mineral", "licence_type", "country"):
        values = [None if _blank(v) else str(v).strip() for v in table[name]] if name in table else [None] * len(table)
        table[name] = pd.Series(values, index=table.index, dtype=object)
    table["mineral"] = [m.lower() if isinstance(m, str) and m else "unknown" for m in table["mineral"]]
    for name in CONCESSION_DATES:
        table[name] = _feature_dates(path, table[name]) if name in table else pd.NaT
    synthetic = bool(table.pop("synthetic").map(truthy).any()) if "synthetic" in table else False
    _refuse_impossible_coordinates(path, frame, crs)
    try:
        geometry, geometry_notes = repair_geometries(
            frame.geometry.to_numpy(), table["concession_id"].tolist(), report_winding=suffix not in (".shp", ".zip")
        )
    except InputError as error:
        raise InputError(f"{LAYER}: {path}: {error}") from None
    notes += [f"{LAYER}: {path}: {note}" for note in geometry_notes]
    result = gpd.GeoDataFrame(table, geometry=geometry, crs=crs)
    return LoadedConcessions(result, notes, synthetic)


def _read_vector(path: Path, suffix: str) -> gpd.GeoDataFrame:
    try:
        if suffix in (".parquet", ".geoparquet"):
            return gpd.read_parquet(path)
        source = str(path)
        if suffix == ".zip":
            source = _zipped_shapefile(path)
        layers = pyogrio.list_layers(source)
        names = [str(name) for name in layers[:, 0]]
        layer = LAYER if LAYER in names else names[0] if len(names) == 1 else None
        if layer is None:
            raise InputError(
                f"{LAYER}: {path}: has {len(names)} layers ({', '.join(names)}); "
                f"name the one to use {LAYER!r} or keep only one"
            )
        return pyogrio.read_dataframe(source, layer=layer)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{LAYER}: {path}: cannot be read as a vector file: {_one_line(exc)}") from None


MAX_ZIP_MEMBERS = 1000
MAX_ZIP_UNCOMPRESSED_BYTES = 2 * 1024**3
MAX_ZIP_RATIO = 200  # a DBF of repeated blanks compresses ~50x; far beyond that is a bomb


def _zipped_shapefile(path: Path) -> str:
    """The GDAL path of the single Shapefile inside a zip (GDAL honours its .cpg).

    The archive is checked before GDAL reads anything from it: no more than
    :data:`MAX_ZIP_MEMBERS` members, no names that climb out (``..``, absolute paths),
    no links, and sizes and compression ratios that are not a zip bomb.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise InputError(f"{LAYER}: {path}: is not a valid zip file") from None
    if len(infos) > MAX_ZIP_MEMBERS:
        raise InputError(f"{LAYER}: {path}: holds {len(infos)} files; a zipped Shapefile needs a handful")
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name).parts or ":" in name.split("/")[0]:
            raise InputError(f"{LAYER}: {path}: member {name!r} points outside the archive; refused")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise InputError(f"{LAYER}: {path}: member {name!r} is a symbolic link; refused")
        total += info.file_size
        if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
            raise InputError(f"{LAYER}: {path}: member {name!r} expands {info.file_size / info.compress_size:,.0f}x; "
                             "refused as a possible zip bomb")  # fmt: skip
    if total > MAX_ZIP_UNCOMPRESSED_BYTES:
        raise InputError(f"{LAYER}: {path}: expands to {total / 1024**3:,.1f} GiB; refused as a possible zip bomb")
    members = [i.filename for i in infos if i.filename.lower().endswith(".shp")]
    if len(members) != 1:
        raise InputError(f"{LAYER}: {path}: a zipped Shapefile must hold exactly one .shp, found {len(members)}")
    return f"/vsizip/{path.resolve()}/{members[0]}"


def repair_geometries(
    geometries: np.ndarray, ids: list[str], report_winding: bool = True
) -> tuple[np.ndarray, list[str]]:
    """Make concession geometries valid, 2-D, polygonal and counter-clockwise.

    Returns the repaired geometries (``None`` for empty ones) and one note for each
    feature that was changed or is empty. Nothing is dropped. ``report_winding=False``
    re-orients rings silently (Shapefiles store outer rings clockwise by definition).
    """
    repaired = []
    notes = []
    for number, (geom, concession_id) in enumerate(zip(geometries, ids, strict=True), start=1):
        where = f"feature {number} ({concession_id})"
        if geom is None or geom.is_empty:
            notes.append(f"{where}: empty geometry, kept without area")
            repaired.append(None)
            continue
        if geom.geom_type not in ("Polygon", "MultiPolygon"):
            raise InputError(f"{where} is a {geom.geom_type}; concessions must be polygons")
        fixes = []
        fixed = shapely.force_2d(geom)
        deduplicated = shapely.remove_repeated_points(fixed)
        if shapely.get_num_coordinates(deduplicated) < shapely.get_num_coordinates(fixed):
            fixes.append("duplicate vertices removed")
        fixed = deduplicated
        if not fixed.is_valid:
            fixes.append(f"invalid ({shapely.is_valid_reason(fixed)}) repaired")
            fixed = _polygonal_part(shapely.make_valid(fixed))
        oriented = shapely.orient_polygons(fixed)
        if report_winding and not shapely.equals_exact(oriented, fixed, tolerance=0):
            fixes.append("rings re-oriented")
        fixed = oriented
        if fixed is None or fixed.is_empty:
            notes.append(f"{where}: geometry collapsed to nothing when repaired, kept without area")
            repaired.append(None)
            continue
        if fixes:
            notes.append(f"{where}: {'; '.join(fixes)}")
        repaired.append(fixed)
    return np.array(repaired, dtype=object), notes


def _polygonal_part(geom):
    polygons = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        return None
    return shapely.union_all(polygons)


def _refuse_impossible_coordinates(path: Path, frame: gpd.GeoDataFrame, crs) -> None:
    """Projected metres in a file that says lon/lat (GeoJSON is lon/lat by definition)."""
    if not crs.is_geographic:
        return
    bounds = frame.geometry.bounds.to_numpy()
    bad = np.flatnonzero((np.abs(bounds[:, [0, 2]]) > 360).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1))
    if len(bad):
        x, y = bounds[bad[0], 0], bounds[bad[0], 1]
        raise InputError(
            f"{LAYER}: {path}: feature {bad[0] + 1} has coordinates ({x:.0f}, {y:.0f}) that are not degrees, but "
            f"the file says {crs.name} (GeoJSON is always lon/lat); write the file with its real CRS, e.g. a "
            "GeoPackage in EPSG:20936"
        )


def _refuse_duplicate_ids(path: Path, ids: pd.Series) -> None:
    seen: dict[str, int] = {}
    for number, concession_id in enumerate(ids, start=1):
        if concession_id in seen:
            raise InputError(
                f"{LAYER}: {path}: concession_id {concession_id!r} is used by features "
                f"{seen[concession_id]} and {number}; ids must be unique"
            )
        seen[concession_id] = number


def _feature_value(path: Path, index: int, column: str, value):
    if value is None:
        raise InputError(f"{LAYER}: {path}: feature {index + 1}: {column} is empty")
    return value


def _feature_status(path: Path, index: int, value) -> str:
    try:
        return normalise_status(value)
    except ValueError as exc:
        raise InputError(f"{LAYER}: {path}: feature {index + 1}: status {exc}") from None


def _feature_dates(path: Path, values: pd.Series) -> pd.Series:
    """ISO dates (text ``YYYY-MM-DD...`` or the file's own date fields) as day timestamps.

    Text in any other form (``03/04/2021`` is 3 April or 4 March) is refused.
    """
    dates = []
    for index, value in enumerate(values):
        if _blank(value):
            dates.append(pd.NaT)
            continue
        try:
            if isinstance(value, str):
                if not _ISO_DATE.match(value.strip()):
                    raise ValueError("not ISO")
                value = dt.date.fromisoformat(value.strip()[:10])
            stamp = pd.Timestamp(value)
            dates.append((stamp.tz_convert(None) if stamp.tzinfo else stamp).as_unit("s").normalize())
        except (ValueError, TypeError, OverflowError):
            raise InputError(
                f"{LAYER}: {path}: feature {index + 1}: {values.name} {value!r} is not a date; write YYYY-MM-DD"
            ) from None
    return pd.Series(dates, index=values.index, dtype="datetime64[s]")


def _blank(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and np.isnan(value))
        or value is pd.NaT
        or (isinstance(value, str) and not value.strip())
    )


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
