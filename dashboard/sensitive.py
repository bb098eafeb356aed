"""Sensitive flag types: what public viewers get instead of the exact place.

Some findings can endanger people if published precisely (a layer of informant-reported
digging sites, say). A deployment marks such flag types sensitive
(``--sensitive-type`` or ``MINEWATCH_SENSITIVE_FLAG_TYPES``); for anyone not signed in
as a team member, on the server and before anything is sent:

- the flag's geometry becomes a single point **displaced** from a point inside the
  flagged area by a distance between :data:`MIN_DISPLACEMENT_M` and
  :data:`MAX_DISPLACEMENT_M` in a random direction ("donut" geomasking). Distance and
  direction come from an HMAC of the flag id under the deployment's secret: the same
  flag always lands on the same false point (averaging many requests reveals nothing)
  and nobody without the secret can undo it;
- activity footprints that touch a sensitive flag's area are left out;
- the activity raster overlay is blanked within :data:`OVERLAY_MASK_M` of those areas.

Team members see everything as it is.
"""

from __future__ import annotations

import hashlib
import hmac

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Geod

from geo.errors import SettingsError
from geo.flags import FLAG_TYPES

MIN_DISPLACEMENT_M = 500.0
MAX_DISPLACEMENT_M = 2000.0
OVERLAY_MASK_M = 150.0
GEOD = Geod(ellps="WGS84")


def displaced_point(lon: float, lat: float, flag_id: str, key: bytes) -> tuple[float, float]:
    """The public position of a sensitive flag (see the module docstring)."""
    digest = hmac.new(key, flag_id.encode("utf-8"), hashlib.sha256).digest()
    fraction_distance = int.from_bytes(digest[:8], "big") / 2**64
    fraction_bearing = int.from_bytes(digest[8:16], "big") / 2**64
    # Uniform over the donut's area, not its radius, so points do not bunch near the inner edge.
    inner, outer = MIN_DISPLACEMENT_M**2, MAX_DISPLACEMENT_M**2
    distance = float(np.sqrt(inner + fraction_distance * (outer - inner)))
    east, north, _ = GEOD.fwd(lon, lat, 360.0 * fraction_bearing, distance)
    return float(east), float(north)


def public_flags(flags: gpd.GeoDataFrame, sensitive_types: tuple[str, ...], key: bytes) -> gpd.GeoDataFrame:
    """``flags`` (EPSG:4326) with sensitive flags' geometries replaced by displaced points."""
    if not sensitive_types:
        return flags
    out = flags.copy()
    hidden = out["flag_type"].isin(sensitive_types) & out.geometry.notna() & ~out.geometry.is_empty
    points = shapely.point_on_surface(out.loc[hidden].geometry.to_numpy())
    moved = [
        shapely.Point(displaced_point(p.x, p.y, flag_id, key))
        for p, flag_id in zip(points, out.loc[hidden, "flag_id"], strict=True)
    ]
    out.loc[hidden, out.geometry.name] = gpd.GeoSeries(moved, index=out.index[hidden], crs=out.crs)
    return out


def sensitive_areas(flags: gpd.GeoDataFrame, sensitive_types: tuple[str, ...]) -> gpd.GeoDataFrame:
    """The true areas of sensitive flags (``period`` and geometry), for masking other layers."""
    chosen = flags[flags["flag_type"].isin(sensitive_types) & flags.geometry.notna() & ~flags.geometry.is_empty]
    return chosen[["period", chosen.geometry.name]]


def public_footprints(footprints: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Footprints without those touching a sensitive area (any period)."""
    if areas.empty or footprints.empty:
        return footprints
    tree = shapely.STRtree(areas.geometry.to_numpy())
    touching = np.zeros(len(footprints), dtype=bool)
    hits, _ = tree.query(footprints.geometry.to_numpy(), predicate="intersects")
    touching[np.unique(hits)] = True
    return footprints[~touching]


def overlay_mask(areas: gpd.GeoDataFrame) -> list:
    """Polygons (EPSG:4326) to blank in the public activity overlay."""
    if areas.empty:
        return []
    buffered = areas.to_crs(areas.estimate_utm_crs()).buffer(OVERLAY_MASK_M).to_crs(4326)
    return list(buffered)


def sensitive_types_from(values) -> tuple[str, ...]:
    """Flag types from a list or a comma-separated setting; an unknown name is an error,
    since a typo would otherwise publish what was meant to be hidden."""
    items = values.split(",") if isinstance(values, str) else list(values or [])
    types = tuple(dict.fromkeys(t.strip() for t in items if t and t.strip()))
    unknown = [t for t in types if t not in FLAG_TYPES]
    if unknown:
        raise SettingsError(f"sensitive flag type {unknown[0]!r} is not one of {', '.join(FLAG_TYPES)}")
    return types
