"""Vector files from strangers: which formats are opened, and how big they may be.

Concessions and context layers are read here. The formats are an allow-list by suffix
(GeoPackage, GeoJSON, Shapefile or a zipped one, GeoParquet, FlatGeobuf); the file's
first bytes must be those of that format (:func:`layers.paths.require_signature`), and
GDAL must then have opened it with that format's driver. So no VRT, no KML with network
links, no format that names other files, whatever the file is called. Sizes are checked
against :class:`layers.limits.InputLimits`: the file, its feature count before reading
and each feature's vertex count after.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from geo.errors import InputError
from layers.archives import checked_members
from layers.limits import InputLimits

# Suffix -> the GDAL driver that must open it (None: read by pyarrow, not GDAL).
VECTOR_DRIVERS = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
    ".zip": "ESRI Shapefile",
    ".fgb": "FlatGeobuf",
    ".parquet": None,
    ".geoparquet": None,
}
FORMATS_IN_WORDS = "GeoPackage, GeoJSON, Shapefile (or .zip), GeoParquet or FlatGeobuf"


def read_vector(path: Path, layer: str, limits: InputLimits, prefer_layer: str | None = None) -> gpd.GeoDataFrame:
    """Read the vector file ``path`` (already checked by :func:`layers.paths.local_path`).

    A file with several layers must have one named ``prefer_layer`` or only one.
    Raises :class:`InputError` naming the file (and the feature, for a vertex limit).
    """
    suffix = path.suffix.lower()
    if suffix not in VECTOR_DRIVERS:
        raise InputError(f"{layer}: {path}: unsupported file type {suffix or '(none)'}; use {FORMATS_IN_WORDS}")
    if suffix == ".shp":
        _require_shapefile_parts(path, layer)
    size_mb = path.stat().st_size / 1024**2
    if size_mb > limits.max_vector_file_mb:
        raise InputError(f"{layer}: {path}: " + limits.exceeded("max_vector_file_mb", f"is {size_mb:,.0f} MB"))
    try:
        frame = (
            _read_parquet(path)
            if VECTOR_DRIVERS[suffix] is None
            else _read_ogr(path, suffix, layer, limits, prefer_layer)
        )
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"{layer}: {path}: holds text that is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except Exception as exc:
        raise InputError(f"{layer}: {path}: cannot be read as a vector file: {' '.join(str(exc).split())}") from None
    if len(frame) > limits.max_features:
        raise InputError(f"{layer}: {path}: " + limits.exceeded("max_features", f"has {len(frame):,} features"))
    vertices = shapely.get_num_coordinates(frame.geometry.to_numpy())
    if len(vertices) and vertices.max() > limits.max_feature_vertices:
        index = int(vertices.argmax())
        raise InputError(
            f"{layer}: {path}: feature {index + 1} "
            + limits.exceeded("max_feature_vertices", f"has {int(vertices[index]):,} vertices")
        )
    return frame


def _read_parquet(path: Path) -> gpd.GeoDataFrame:
    return gpd.read_parquet(path)


def _read_ogr(path: Path, suffix: str, layer: str, limits: InputLimits, prefer_layer: str | None) -> gpd.GeoDataFrame:
    source = _zipped_shapefile(path, layer, limits) if suffix == ".zip" else str(path)
    names = [str(name) for name in pyogrio.list_layers(source)[:, 0]]
    chosen = prefer_layer if prefer_layer in names else names[0] if len(names) == 1 else None
    if chosen is None:
        raise InputError(
            f"{layer}: {path}: has {len(names)} layers ({', '.join(names)}); "
            f"name the one to use {prefer_layer or layer!r} or keep only one"
        )
    info = pyogrio.read_info(source, layer=chosen)
    if info["driver"] != VECTOR_DRIVERS[suffix]:
        raise InputError(f"{layer}: {path}: was opened as {info['driver']}, not {VECTOR_DRIVERS[suffix]}; refused")
    if info["features"] > limits.max_features:
        raise InputError(f"{layer}: {path}: " + limits.exceeded("max_features", f"has {info['features']:,} features"))
    return pyogrio.read_dataframe(source, layer=chosen)


def _require_shapefile_parts(path: Path, layer: str) -> None:
    """A Shapefile is several files: refuse one whose .shx or .dbf is missing, naming them."""
    present = {p.name.lower() for p in path.parent.iterdir()}
    missing = [f"{path.stem}{ext}" for ext in (".shx", ".dbf") if f"{path.stem}{ext}".lower() not in present]
    if missing:
        raise InputError(
            f"{layer}: {path}: the Shapefile's {' and '.join(missing)} is missing beside it; "
            "copy all its files (.shp, .shx, .dbf, .prj, .cpg) or zip them together"
        )


def _zipped_shapefile(path: Path, layer: str, limits: InputLimits) -> str:
    """The GDAL path of the single Shapefile inside a checked zip (GDAL honours its .cpg)."""
    members = [i.filename for i in checked_members(path, layer, limits) if i.filename.lower().endswith(".shp")]
    if len(members) != 1:
        raise InputError(f"{layer}: {path}: a zipped Shapefile must hold exactly one .shp, found {len(members)}")
    return f"/vsizip/{path.resolve()}/{members[0]}"
