"""Context layers: towns, district or country boundaries to orient a reader on the map.

A vector file of the formats concessions accept (:mod:`layers.vectors`), in the CRS it declares; each feature needs a name (a
``name`` field, any case, or the first text field). They are shown, never analysed.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.crs import WEB_CRS, require_crs
from geo.errors import InputError
from layers.limits import DEFAULT_LIMITS, InputLimits
from layers.paths import local_path
from layers.vectors import read_vector

LAYER = "context"


def read_context(raw_path: str | Path, limits: InputLimits = DEFAULT_LIMITS) -> gpd.GeoDataFrame:
    """A context layer as ``name``, ``kind`` (geometry type in words) and geometry, in EPSG:4326."""
    path = local_path(raw_path, layer=LAYER)
    frame = read_vector(path, LAYER, limits)
    crs = require_crs(frame.crs, what=f"{LAYER}: {path}")
    columns = {c.lower(): c for c in frame.columns if c != frame.geometry.name}
    text_columns = [c for c in frame.columns if c != frame.geometry.name and pd.api.types.is_string_dtype(frame[c])]
    name_column = columns.get("name") or (text_columns[0] if text_columns else None)
    if name_column is None:
        raise InputError(f"{LAYER}: {path}: needs a 'name' field (or any text field) to label its features")
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    names = frame[name_column].fillna("").astype(str).str.strip()
    kinds = frame.geometry.geom_type.map({"Point": "place", "MultiPoint": "place"}).fillna("boundary")
    context = gpd.GeoDataFrame(
        {"name": names.to_numpy(), "kind": kinds.to_numpy()}, geometry=frame.geometry.to_numpy(), crs=crs
    )
    return context.to_crs(WEB_CRS)


def combine_context(frames: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame | None:
    """All context layers in one table (None when there are none)."""
    if not frames:
        return None
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=WEB_CRS)
