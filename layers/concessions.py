"""Licensed concessions: cadastre polygons into the canonical concessions table.

Accepted: GeoPackage, GeoJSON, Shapefile (and a zipped Shapefile given as ``.zip``),
GeoParquet and FlatGeobuf, in any CRS the file declares. Invalid geometries are
repaired and reported, never dropped; empty ones are kept and reported.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import require_crs
from geo.errors import InputError
from layers.fields import resolve_columns
from layers.limits import DEFAULT_LIMITS, InputLimits
from layers.paths import local_path
from layers.schema import (
    CONCESSION_DATES,
    CONCESSION_OPTIONAL,
    CONCESSION_REQUIRED,
    normalise_identifier,
    normalise_status,
    truthy,
)
from layers.vectors import read_vector

LAYER = "concessions"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass
class LoadedConcessions:
    """The canonical concessions table and what was done to get it.

    ``table`` is a GeoDataFrame in the file's own CRS with the canonical columns, one row
    a licence, in file order; ``notes`` lists every repair and oddity, one line each.
    """

    table: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)
    synthetic: bool = False


def read_concessions(
    raw_path: str | Path, mappings: dict | None = None, limits: InputLimits = DEFAULT_LIMITS
) -> LoadedConcessions:
    """Read and validate a concessions file (formats and limits: :mod:`layers.vectors`).

    Raises :class:`InputError` (a subclass for a missing CRS) naming the file and, where
    one is at fault, the feature (1-based, in file order).
    """
    path = local_path(raw_path, layer=LAYER)
    suffix = path.suffix.lower()
    frame = read_vector(path, LAYER, limits, prefer_layer=LAYER)
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
