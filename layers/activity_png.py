"""Activity rasters as semi-transparent PNG map overlays, in Web Mercator.

Leaflet stretches an image linearly between two corners in Web Mercator, so a raster in
UTM or lon/lat is first warped to EPSG:3857 (at a reduced size for the screen) and
coloured with :data:`SCORE_COLOURS`: transparent below 0.1 and where nodata.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds

from geo.errors import InputError

WEB_MERCATOR = "EPSG:3857"
MAX_SIDE_PX = 1400
# Score stops (0..1) and RGBA colours: pale yellow to deep red; low scores see-through.
SCORE_STOPS = np.array([0.1, 0.5, 0.75, 1.0])
SCORE_COLOURS = np.array([[255, 255, 178, 60], [254, 178, 76, 150], [240, 59, 32, 200], [189, 0, 38, 230]], float)


_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)


def _to_mercator_xy(coords: np.ndarray) -> np.ndarray:
    x, y = _TO_MERCATOR.transform(coords[:, 0], coords[:, 1])
    return np.column_stack([x, y])


def colourise(scores: np.ndarray) -> np.ndarray:
    """RGBA uint8 image of float scores (NaN = nodata, transparent)."""
    rgba = np.zeros((*scores.shape, 4), np.uint8)
    valid = np.isfinite(scores) & (scores >= SCORE_STOPS[0])
    for channel in range(4):
        rgba[..., channel][valid] = np.interp(scores[valid], SCORE_STOPS, SCORE_COLOURS[:, channel]).astype(np.uint8)
    return rgba


def _screen_grid(source) -> tuple:
    """The Web Mercator grid an overlay is drawn on: (transform, width, height, downscale factor)."""
    transform, width, height = calculate_default_transform(
        source.crs, WEB_MERCATOR, source.width, source.height, *source.bounds
    )
    scale = max(width, height) / MAX_SIDE_PX
    if scale > 1:
        transform = transform * transform.scale(scale, scale)
        width, height = max(int(width / scale), 1), max(int(height / scale), 1)
    return transform, width, height, scale


def _lat_lon_bounds(transform, width: int, height: int) -> list[list[float]]:
    west, north = transform @ (0, 0)
    east, south = transform @ (width, height)
    west, south, east, north = transform_bounds(WEB_MERCATOR, "EPSG:4326", west, south, east, north)
    return [[south, west], [north, east]]


def activity_png_bounds(path: str | Path) -> list[list[float]]:
    """The ``[[south, west], [north, east]]`` of :func:`render_activity_png`'s image, without drawing it."""
    try:
        with rasterio.open(path, driver="GTiff") as source:
            return _lat_lon_bounds(*_screen_grid(source)[:3])
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"activity overlay: {path}: cannot be read: {exc}") from None


def render_activity_png(path: str | Path, blank=()) -> tuple[bytes, list[list[float]]]:
    """PNG bytes of an activity raster warped to Web Mercator, and its lat/lon bounds.

    Returns ``(png, [[south, west], [north, east]])``. Integer masks show as score 1
    where non-zero. ``blank``: polygons (EPSG:4326) left transparent.
    """
    try:
        with rasterio.open(path, driver="GTiff") as source:
            transform, width, height, scale = _screen_grid(source)
            with WarpedVRT(source, crs=WEB_MERCATOR, transform=transform, width=width, height=height,
                           resampling=Resampling.max if scale > 1 else Resampling.nearest,
                           add_alpha=source.nodata is None) as vrt:  # fmt: skip
                data = vrt.read(1, masked=True).astype(np.float32).filled(np.nan)
                if source.nodata is None:
                    data[vrt.read(vrt.count) == 0] = np.nan
                if np.issubdtype(np.dtype(source.dtypes[0]), np.integer):
                    data = np.where(np.isfinite(data), (data != 0).astype(np.float32), np.nan)
                if blank:
                    shapes = shapely.transform(list(blank), _to_mercator_xy)
                    data[geometry_mask(shapes, out_shape=data.shape, transform=transform, invert=True)] = np.nan
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"activity overlay: {path}: cannot be read: {exc}") from None
    rgba = colourise(data)
    with MemoryFile() as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a PNG for the screen
        with memory.open(driver="PNG", width=width, height=height, count=4, dtype="uint8") as png:
            png.write(np.moveaxis(rgba, -1, 0))
        return memory.read(), _lat_lon_bounds(transform, width, height)
