"""Serialisers: an analysis' tables as RFC 7946 GeoJSON and spreadsheet-safe CSV text.

Pure functions returning strings; ``layers.results`` writes them to disk atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import TextIO

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WEB_CRS

COORDINATE_DECIMALS = 7  # about 1 cm at the equator
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def geojson_text(frame: gpd.GeoDataFrame) -> str:
    """RFC 7946 FeatureCollection text of ``frame`` (see :func:`write_geojson`)."""
    out = io.StringIO()
    write_geojson(frame, out)
    return out.getvalue()


def write_geojson(frame: gpd.GeoDataFrame, handle: TextIO) -> None:
    """Write ``frame`` as an RFC 7946 FeatureCollection to a text handle, feature by feature.

    Lon/lat (EPSG:4326), exterior rings counter-clockwise and holes clockwise, no
    ``crs`` member, a ``bbox`` on each feature and on the collection, NaN written as
    null, and coordinates rounded to 7 decimals. Streaming keeps memory flat for
    analyses with hundreds of thousands of footprints.
    """
    frame = frame.to_crs(WEB_CRS) if frame.crs is not None and not frame.crs.equals(WEB_CRS) else frame
    geoms = frame.geometry.to_numpy()
    geoms = shapely.orient_polygons(shapely.set_precision(geoms, 10**-COORDINATE_DECIMALS, mode="pointwise"))
    present = [g for g in geoms if g is not None and not g.is_empty]
    handle.write('{"type":"FeatureCollection",')
    if present:
        handle.write(f'"bbox":{json.dumps(_rounded(shapely.total_bounds(np.array(present, dtype=object))))},')
    handle.write('"features":[')
    properties = frame.drop(columns=frame.geometry.name)
    for index, (record, geom) in enumerate(zip(properties.to_dict("records"), geoms, strict=True)):
        feature = {"type": "Feature", "properties": {k: _json_value(v) for k, v in record.items()}}
        if geom is None or geom.is_empty:
            feature["geometry"] = None
        else:
            feature["bbox"] = _rounded(shapely.bounds(geom))
            feature["geometry"] = json.loads(shapely.to_geojson(geom))
        handle.write(
            ("," if index else "") + json.dumps(feature, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        )
    handle.write("]}")


def csv_text(frame: pd.DataFrame) -> str:
    """CSV text that a spreadsheet opens without running anything.

    A text cell starting with ``= + - @``, tab or carriage return gets a leading
    apostrophe (OWASP's advice for CSV injection); numbers are written as numbers, so a
    negative difference stays a number. Geometry columns are left out.
    """
    frame = pd.DataFrame(frame).drop(columns=[c for c in frame.columns if c in ("geometry",)], errors="ignore")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([_safe_cell(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        writer.writerow([_csv_value(v) for v in row])
    return out.getvalue()


def _csv_value(value) -> str:
    value = _json_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return _safe_cell(str(value))


def _safe_cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _json_value(value):
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) or math.isinf(value) else round(float(value), 6)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return value


def _rounded(bounds) -> list[float]:
    return [round(float(b), COORDINATE_DECIMALS) for b in bounds]
