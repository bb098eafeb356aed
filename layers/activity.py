"""Activity rasters: one disturbance raster per period, from a folder or a STAC catalog.

A folder holds GeoTIFF/COG files named by period (``2021.tif``, ``2021-Q3.tif``,
``2021-03.tif``); a local static STAC catalog holds items whose ``minewatch:period``
property (or ``start_datetime``/``end_datetime`` spanning exactly one period) names the
period. Each raster may have its own CRS and resolution.

Values: a float disturbance score in 0..1, or an integer mask where any non-zero value
(1 or 255) is active. Nodata (the nodata value, an internal mask, or NaN) is "not
seen", never "no activity". Rasters are read in strips of rows, never whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from geo.crs import require_crs
from geo.errors import InputError
from geo.periods import Period, parse_period
from layers.limits import DEFAULT_LIMITS, InputLimits
from layers.paths import check_content, local_path, require_inside

LAYER = "activity"
RASTER_SUFFIXES = {".tif", ".tiff"}
RASTER_DRIVER = "GTiff"  # the only driver GDAL may use for an activity raster (COGs are GTiff)
SCORE_TOLERANCE = 1e-6
GDAL_CACHE_MB = 256


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, pixel-to-CRS transform and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    def key(self) -> tuple:
        """A hashable identity: rasters with equal keys share one grid."""
        crs = self.crs.to_epsg(min_confidence=90) or self.crs.to_wkt()
        return (crs, tuple(round(v, 9) for v in tuple(self.transform)[:6]), self.width, self.height)


@dataclass(frozen=True)
class ActivityRaster:
    """One period's activity raster, described without keeping the file open."""

    path: Path
    period: Period
    grid: Grid
    integer_mask: bool
    synthetic: bool

    @contextmanager
    def reader(self, grid: Grid | None = None) -> Iterator[Callable[[int, int], np.ndarray]]:
        """Open the raster and yield ``read(row_start, row_stop) -> float32 scores``.

        Rows outside the grid and nodata come back as NaN. With ``grid``, the raster is
        resampled (nearest neighbour) onto that grid on the fly, strip by strip.
        """
        # Decompress tiles on every core (reading is the floor of the whole scan), and keep
        # GDAL's block cache small: strips are read once, in order, so a big cache (GDAL's
        # default is 5 % of RAM) only holds memory.
        env = rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=GDAL_CACHE_MB * 1024 * 1024)
        with env, self._opened(grid) as (source, target, alpha):
            yield lambda start, stop: self._read_rows(source, target, start, stop, alpha)

    @contextmanager
    def _opened(self, grid: Grid | None):
        """The dataset (warped onto ``grid`` if it differs), the target grid and whether an alpha band masks it.

        Errors from opening are reported here; errors from reading strips are reported by
        :meth:`_read_rows`, so a failure always names the raster at fault (two rasters are
        open at once while a period is compared with the previous one).
        """
        vrt = None
        try:
            dataset = rasterio.open(self.path, driver=RASTER_DRIVER)
            if grid is not None and grid.key() != self.grid.key():
                vrt = WarpedVRT(
                    dataset,
                    crs=grid.crs.to_wkt(),
                    transform=grid.transform,
                    width=grid.width,
                    height=grid.height,
                    resampling=Resampling.nearest,
                    add_alpha=dataset.nodata is None,  # outside the raster is "not seen", not 0
                )
        except rasterio.errors.RasterioError as exc:
            raise InputError(f"{LAYER}: {self.path}: cannot be read: {gdal_message(exc)}") from None
        try:
            yield (vrt or dataset), (grid or self.grid), (vrt is not None and dataset.nodata is None)
        finally:
            if vrt is not None:
                vrt.close()
            dataset.close()

    def _read_rows(self, source, grid: Grid, start: int, stop: int, alpha: bool = False) -> np.ndarray:
        out = np.full((stop - start, grid.width), np.nan, dtype=np.float32)
        lo, hi = max(start, 0), min(stop, grid.height)
        if lo >= hi:
            return out
        window = rasterio.windows.Window(0, lo, grid.width, hi - lo)
        try:
            data = source.read(1, window=window, masked=True)
            if alpha:  # the warp's own alpha band: 0 where the raster does not reach
                data = np.ma.masked_where(source.read(source.count, window=window) == 0, data)
        except rasterio.errors.RasterioError as exc:
            raise InputError(
                f"{LAYER}: {self.path}: rows {lo}-{hi - 1} cannot be read (a damaged file?): {gdal_message(exc)}"
            ) from None
        if self.integer_mask:
            values = np.ma.getdata(data)
            unexpected = ~np.ma.getmaskarray(data) & (values != 0) & (values != 1) & (values != 255)
            if unexpected.any():
                row, col = np.argwhere(unexpected)[0]
                raise InputError(
                    f"{LAYER}: {self.path}: pixel (row {lo + row}, column {col}) is {values[row, col]}; "
                    "an integer raster must be a 0/1 or 0/255 mask (or use float scores 0..1)"
                )
            scores = (values != 0).astype(np.float32)
            scores[np.ma.getmaskarray(data)] = np.nan
        else:
            scores = data.astype(np.float32).filled(np.nan)
            lowest, highest = np.fmin.reduce(scores, axis=None), np.fmax.reduce(scores, axis=None)  # NaN-skipping
            if lowest < -SCORE_TOLERANCE or highest > 1 + SCORE_TOLERANCE:
                row, col = np.argwhere((scores < -SCORE_TOLERANCE) | (scores > 1 + SCORE_TOLERANCE))[0]
                raise InputError(
                    f"{LAYER}: {self.path}: pixel (row {lo + row}, column {col}) is {scores[row, col]:g}; "
                    "scores must be in 0..1 (is the nodata value set in the file?)"
                )
        out[lo - start : hi - start] = scores
        return out


def find_activity_rasters(raw_path: str | Path, limits: InputLimits = DEFAULT_LIMITS) -> list[ActivityRaster]:
    """The activity rasters of a folder or of a local STAC catalog (its JSON file).

    Returns them sorted by period. Raises :class:`InputError` for a file not named by
    period, two rasters for one period, a raster without CRS, an unreadable file, a raster
    over ``limits.max_raster_megapixels``, or a file (or catalog asset) that lies outside
    the folder given (a symbolic link or a ``../`` path out of a stranger's folder).
    """
    path = local_path(raw_path, layer=LAYER, want_dir=None)
    if path.is_dir():
        pairs = _folder_rasters(path)
    elif path.suffix.lower() == ".json":
        pairs = _stac_rasters(path)
    else:
        raise InputError(f"{LAYER}: {path}: give a folder of GeoTIFFs named by period, or a STAC catalog.json")
    seen: dict[str, Path] = {}
    for period, raster_path in pairs:
        if period.label in seen:
            raise InputError(f"{LAYER}: {raster_path}: period {period.label} already given by {seen[period.label]}")
        seen[period.label] = raster_path
    if not pairs:
        raise InputError(f"{LAYER}: {path}: holds no activity rasters (*.tif named by period, e.g. 2021.tif)")
    rasters = [describe_raster(raster_path, period, limits) for period, raster_path in pairs]
    return sorted(rasters, key=lambda r: r.period)


def describe_raster(path: Path, period: Period, limits: InputLimits = DEFAULT_LIMITS) -> ActivityRaster:
    """Open ``path`` once to read its grid, data type and synthetic tag."""
    check_content(path, LAYER)
    try:
        with rasterio.open(path, driver=RASTER_DRIVER) as dataset:
            megapixels = dataset.width * dataset.height / 1e6
            if megapixels > limits.max_raster_megapixels:
                raise InputError(
                    f"{LAYER}: {path}: "
                    + limits.exceeded("max_raster_megapixels", f"has {megapixels:,.0f} million pixels")
                )
            crs = require_crs(dataset.crs.to_wkt() if dataset.crs else None, what=f"{LAYER}: {path}")
            grid = Grid(crs, dataset.transform, dataset.width, dataset.height)
            if dataset.transform.is_identity or dataset.transform.determinant == 0:
                raise InputError(f"{LAYER}: {path}: has no georeferencing (identity transform)")
            integer = np.issubdtype(np.dtype(dataset.dtypes[0]), np.integer)
            tags = {k.upper(): str(v).lower() for k, v in dataset.tags().items()}
            synthetic = tags.get("MINEWATCH_SYNTHETIC") in {"yes", "true", "1"}
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"{LAYER}: {path}: cannot be read as a raster: {gdal_message(exc)}") from None
    return ActivityRaster(path, period, grid, bool(integer), synthetic)


def _folder_rasters(folder: Path) -> list[tuple[Period, Path]]:
    pairs = []
    for child in sorted(folder.iterdir()):
        if child.suffix.lower() not in RASTER_SUFFIXES or not child.is_file():
            continue
        require_inside(child, folder, LAYER)
        try:
            period = parse_period(child.stem)
        except ValueError as exc:
            raise InputError(f"{LAYER}: {child}: the file name must be a period: {exc}") from None
        pairs.append((period, child))
    return pairs


def _stac_rasters(catalog_path: Path) -> list[tuple[Period, Path]]:
    import pystac

    from layers.network import local_only_stac_io

    try:
        # Links to URLs, or to files outside the catalog's folder, are refused, not followed.
        catalog = pystac.read_file(str(catalog_path), stac_io=local_only_stac_io(catalog_path.parent))
        items = list(catalog.get_items(recursive=True)) if hasattr(catalog, "get_items") else [catalog]
    except Exception as exc:
        reason = exc.__cause__ or exc  # pystac wraps the refusal of a link in "does not resolve"
        raise InputError(
            f"{LAYER}: {catalog_path}: is not a readable STAC catalog: {' '.join(str(reason).split())}"
        ) from None
    pairs = []
    for item in items:
        period = _item_period(catalog_path, item)
        asset = _item_raster_asset(catalog_path, item)
        href = asset.get_absolute_href() or asset.href
        if "://" in href and not href.startswith("file://"):
            raise InputError(f"{LAYER}: {catalog_path}: item {item.id}: asset {href} is not a local file")
        asset_path = local_path(href.removeprefix("file://"), layer=LAYER)
        require_inside(asset_path, catalog_path.parent, f"{LAYER}: {catalog_path}: item {item.id}")
        pairs.append((period, asset_path))
    return pairs


def _item_period(catalog_path: Path, item) -> Period:
    props = item.properties
    try:
        if "minewatch:period" in props:
            return parse_period(props["minewatch:period"])
        start, end = props.get("start_datetime"), props.get("end_datetime")
        if start and end:
            for label in (start[:4], f"{start[:4]}-Q{(int(start[5:7]) - 1) // 3 + 1}", start[:7]):
                period = parse_period(label)
                if period.start.isoformat() == start[:10] and period.end.isoformat() == end[:10]:
                    return period
    except ValueError as exc:
        raise InputError(f"{LAYER}: {catalog_path}: item {item.id}: {exc}") from None
    raise InputError(
        f"{LAYER}: {catalog_path}: item {item.id}: no period; set the property minewatch:period "
        '(e.g. "2021") or start_datetime/end_datetime spanning exactly one year, quarter or month'
    )


def _item_raster_asset(catalog_path: Path, item):
    assets = item.assets
    for key in ("activity", "data"):
        if key in assets:
            return assets[key]
    for asset in assets.values():
        if "data" in (asset.roles or []) or (asset.media_type or "").startswith("image/tiff"):
            return asset
    raise InputError(f"{LAYER}: {catalog_path}: item {item.id}: no GeoTIFF asset (key 'activity' or role 'data')")


def gdal_message(exc: Exception) -> str:
    """GDAL's own words for a rasterio error, on one line (rasterio often says only "see previous")."""
    parts = [str(exc).replace("See previous exception for details.", "")]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) not in parts[0]:
        parts.append(str(cause))
    return " ".join(" ".join(parts).split())
