"""Coordinate reference systems: where areas are measured and what the web sees.

Areas are measured in a Lambert azimuthal equal-area projection centred on the data
(:func:`area_crs_for`), so the answer is right anywhere on Earth without a per-country
table; at Marange it agrees with Africa Albers (ESRI:102022) and with geodesic areas.
Files for the web and GeoJSON are in :data:`WEB_CRS` (EPSG:4326, lon/lat).
"""

from __future__ import annotations

import functools

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer

from geo.errors import CRSError

WEB_CRS = CRS.from_epsg(4326)
M2_PER_HA = 10_000.0


def area_crs_for(lon: float, lat: float) -> CRS:
    """Return an equal-area CRS (metres) centred near ``lon``, ``lat`` in degrees.

    The centre is rounded to 0.1 degree so that the same field always gets the same
    CRS, which keeps outputs byte-stable across runs.
    """
    lon0 = round(float(lon), 1)
    lat0 = round(float(lat), 1)
    return CRS.from_proj4(f"+proj=laea +lat_0={lat0} +lon_0={lon0} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs")


def require_crs(crs, *, what: str) -> CRS:
    """Return ``crs`` as a pyproj CRS, or raise :class:`CRSError` naming ``what``.

    A dataset without a CRS is refused, never guessed: an Arc 1950 / UTM 36S cadastre
    read as WGS 84 moves every licence by about 300 m.
    """
    if crs is None:
        raise CRSError(
            f"{what} has no coordinate reference system; minewatch never guesses one. "
            "Add it to the file (e.g. a .prj beside a Shapefile, or "
            "`ogr2ogr -a_srs EPSG:20936 fixed.gpkg input.shp`)."
        )
    try:
        return _crs_from_text(crs) if type(crs) is str else CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises its own CRSError subclasses
        raise CRSError(f"{what} has a CRS that PROJ cannot use: {exc}") from exc


@functools.lru_cache(maxsize=64)
def _crs_from_text(text: str) -> CRS:
    """``text`` (a WKT, ``EPSG:...``, PROJ string) parsed by pyproj, once per distinct text.

    Parsing a WKT costs about 0.1 ms, and a folder of band files repeats one WKT for
    every file. Only the parse is cached: ``lru_cache`` stores no exception, so a text
    PROJ refuses is parsed (and refused) again at each call, and the message naming the
    file is made by :func:`require_crs` for that file. Sharing one CRS object is safe:
    pyproj CRS objects are immutable and thread-safe (pyproj >= 3.1).
    """
    return CRS.from_user_input(text)


def transformer(src: CRS, dst: CRS) -> Transformer:
    """Return a lon/lat-ordered (``always_xy``) transformer from ``src`` to ``dst``."""
    return _cached_transformer(CRS.from_user_input(src), CRS.from_user_input(dst))


@functools.lru_cache(maxsize=64)
def _cached_transformer(src: CRS, dst: CRS) -> Transformer:
    # Building a transformer costs milliseconds; rasters ask for the same one per strip.
    return Transformer.from_crs(src, dst, always_xy=True)


def pixel_area_ha(transform: Affine, crs: CRS, area_crs: CRS, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True (equal-area) area in hectares of the pixels at ``rows`` x ``cols``.

    Returns an array of shape ``(len(rows), len(cols))``: the area of each pixel's four
    corners projected into ``area_crs``, so a raster in UTM, Web Mercator or lon/lat
    degrees is measured the same way.
    """
    rr, cc = np.meshgrid(np.asarray(rows, float), np.asarray(cols, float), indexing="ij")
    corner_offsets = ((0, 0), (1, 0), (1, 1), (0, 1))
    to_area = transformer(crs, area_crs)
    xs, ys = [], []
    for dc, dr in corner_offsets:
        x, y = transform @ (cc + dc, rr + dr)
        ax, ay = to_area.transform(x, y)
        xs.append(ax)
        ys.append(ay)
    shoelace = sum(xs[i] * ys[(i + 1) % 4] - xs[(i + 1) % 4] * ys[i] for i in range(4))
    return np.abs(shoelace) / 2.0 / M2_PER_HA
