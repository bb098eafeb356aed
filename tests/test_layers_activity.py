"""layers.activity: rasters named by period, from a folder or a local STAC catalog.

Data: 10×10 to 20×20 GeoTIFFs written into ``tmp_path`` (WGS 84 / UTM 36S at 10 m, or
lon/lat), and a self-contained STAC catalog written with pystac.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.transform import from_origin

from geo.errors import CRSError, InputError
from layers.activity import ActivityRaster, Grid, find_activity_rasters
from tests import conftest

UTM = "EPSG:32736"
ORIGIN = (500_000.0, 7_900_000.0)  # top-left corner, metres
UTM_TRANSFORM = from_origin(*ORIGIN, 10, 10)
LONLAT_TRANSFORM = from_origin(32.0, -19.0, 0.0001, 0.0001)


def write_raster(path: Path, array: np.ndarray, crs=UTM, transform=UTM_TRANSFORM, nodata=None, **tags) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return conftest.write_raster(path, array, transform, crs, nodata=nodata, **tags)


def gradient(shape=(10, 10)) -> np.ndarray:
    """Scores that differ in every pixel: (row * width + col) / (rows * cols)."""
    rows, cols = shape
    return (np.arange(rows * cols, dtype=np.float32) / (rows * cols)).reshape(shape)


def read_all(raster: ActivityRaster, grid: Grid | None = None) -> np.ndarray:
    target = grid or raster.grid
    with raster.reader(grid) as read:
        return read(0, target.height)


def only(folder: Path) -> ActivityRaster:
    (raster,) = find_activity_rasters(folder)
    return raster


# ---------------------------------------------------------------------------------------
# a folder of rasters


def test_folder_of_rasters_named_by_period(tmp_path):
    write_raster(tmp_path / "2020-Q3.tif", gradient())
    write_raster(tmp_path / "2019.tif", np.zeros((10, 10), np.uint8))
    write_raster(tmp_path / "2021-03.TIF", gradient())
    (tmp_path / "README.txt").write_text("not a raster")
    (tmp_path / "2019.tif.aux.xml").write_text("<PAMDataset/>")
    rasters = find_activity_rasters(tmp_path)
    assert [r.period.label for r in rasters] == ["2019", "2020-Q3", "2021-03"]
    assert [r.path.name for r in rasters] == ["2019.tif", "2020-Q3.tif", "2021-03.TIF"]
    assert [r.integer_mask for r in rasters] == [True, False, False]
    assert rasters[1].period.start == dt.date(2020, 7, 1) and rasters[1].period.end == dt.date(2020, 9, 30)
    assert all(r.synthetic is False for r in rasters)


def test_badly_named_raster_refused_naming_it(tmp_path):
    write_raster(tmp_path / "2019.tif", gradient())
    bad = write_raster(tmp_path / "march_2020.tif", gradient())
    with pytest.raises(InputError, match="the file name must be a period") as info:
        find_activity_rasters(tmp_path)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("names", [("2021.tif", "2021.tiff"), ("2021-Q3.tif", "2021-q3.tif")])
def test_two_rasters_for_one_period_refused_naming_both(tmp_path, names):
    first, second = (write_raster(tmp_path / name, gradient()) for name in names)
    with pytest.raises(InputError, match="already given by") as info:
        find_activity_rasters(tmp_path)
    message = str(info.value)
    assert first.name in message and second.name in message


def test_empty_folder_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(InputError, match="holds no activity rasters"):
        find_activity_rasters(tmp_path)


def test_a_single_tif_is_not_a_folder_or_catalog(tmp_path):
    path = write_raster(tmp_path / "2021.tif", gradient())
    with pytest.raises(InputError, match="give a folder of GeoTIFFs named by period"):
        find_activity_rasters(path)


def test_raster_without_crs_refused_naming_it(tmp_path):
    path = write_raster(tmp_path / "2021.tif", gradient(), crs=None)
    with pytest.raises(CRSError, match="no coordinate reference system") as info:
        find_activity_rasters(tmp_path)
    assert str(path) in str(info.value)


def test_raster_without_georeferencing_refused(tmp_path):
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        write_raster(tmp_path / "2021.tif", gradient(), transform=Affine.identity())
    with pytest.raises(InputError, match="no georeferencing"):
        find_activity_rasters(tmp_path)


def test_unreadable_tif_refused(tmp_path):
    path = tmp_path / "2021.tif"
    path.write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="cannot be read as a raster") as info:
        find_activity_rasters(tmp_path)
    assert str(path) in str(info.value)


def test_synthetic_tag_detected(tmp_path):
    write_raster(tmp_path / "2020.tif", gradient(), MINEWATCH_SYNTHETIC="yes")
    write_raster(tmp_path / "2021.tif", gradient(), MINEWATCH_SYNTHETIC="no")
    assert [r.synthetic for r in find_activity_rasters(tmp_path)] == [True, False]


# ---------------------------------------------------------------------------------------
# values


@pytest.mark.parametrize("nodata", [-9999.0, float("nan")])
def test_float_scores_with_nodata_read_as_nan(tmp_path, nodata):
    scores = gradient()
    scores[0, 0] = nodata
    scores[9, 9] = nodata
    write_raster(tmp_path / "2021.tif", scores, nodata=nodata)
    read = read_all(only(tmp_path))
    assert read.dtype == np.float32
    assert np.isnan(read[0, 0]) and np.isnan(read[9, 9])
    assert np.isnan(read).sum() == 2
    expected = gradient()
    assert np.array_equal(read[1:9], expected[1:9])
    assert read[0, 1] == pytest.approx(0.01) and read[9, 8] == pytest.approx(0.98)


def test_nan_without_a_nodata_value_is_not_seen(tmp_path):
    scores = gradient()
    scores[4, 4] = np.nan
    write_raster(tmp_path / "2021.tif", scores)
    read = read_all(only(tmp_path))
    assert np.isnan(read[4, 4]) and np.isnan(read).sum() == 1


def test_float_above_one_without_nodata_refused_mentioning_nodata(tmp_path):
    scores = gradient()
    scores[3, 7] = -9999.0  # a nodata value the file forgot to declare
    path = write_raster(tmp_path / "2021.tif", scores)
    raster = only(tmp_path)  # found: values are checked as they are read
    with pytest.raises(InputError, match="nodata") as info:
        read_all(raster)
    message = str(info.value)
    assert str(path) in message
    assert "pixel (row 3, column 7) is -9999" in message
    assert "0..1" in message


def test_float_above_one_refused_in_a_later_strip(tmp_path):
    scores = gradient()
    scores[8, 2] = 1.5
    write_raster(tmp_path / "2021.tif", scores)
    with only(tmp_path).reader() as read:
        assert read(0, 5)[4, 9] == pytest.approx(0.49)
        with pytest.raises(InputError, match=r"pixel \(row 8, column 2\) is 1.5"):
            read(5, 10)


@pytest.mark.parametrize("on", [1, 255])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_integer_masks_read_as_zero_one_scores(tmp_path, on, dtype):
    mask = np.zeros((10, 10), dtype)
    mask[2:5, 3:7] = on
    write_raster(tmp_path / "2021.tif", mask)
    raster = only(tmp_path)
    assert raster.integer_mask is True
    read = read_all(raster)
    assert read.dtype == np.float32
    assert read.sum() == 12 and read[2:5, 3:7].min() == 1.0 and set(np.unique(read)) == {0.0, 1.0}


def test_integer_mask_nodata_read_as_nan(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[0, :] = 255  # nodata
    mask[5, 5] = 1
    write_raster(tmp_path / "2021.tif", mask, nodata=255)
    read = read_all(only(tmp_path))
    assert np.isnan(read[0]).all() and np.isnan(read).sum() == 10
    assert read[5, 5] == 1.0 and np.nansum(read) == 1.0


@pytest.mark.parametrize("value", [7, 2, 254])
def test_integer_raster_that_is_not_a_mask_refused(tmp_path, value):
    mask = np.zeros((10, 10), np.uint8)
    mask[6, 1] = value
    path = write_raster(tmp_path / "2021.tif", mask)
    with pytest.raises(
        InputError, match=f"pixel \\(row 6, column 1\\) is {value}; an integer raster must be a 0/1"
    ) as info:
        read_all(only(tmp_path))
    assert str(path) in str(info.value)


def test_rows_outside_the_grid_read_as_nan(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient())
    with only(tmp_path).reader() as read:
        strip = read(-2, 12)
        assert strip.shape == (14, 10)
        assert np.isnan(strip[:2]).all() and np.isnan(strip[12:]).all()
        assert np.array_equal(strip[2:12], gradient())
        assert np.isnan(read(10, 13)).all()


def test_strips_add_up_to_the_whole(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient((13, 10)))
    with only(tmp_path).reader() as read:
        strips = np.vstack([read(0, 4), read(4, 8), read(8, 12), read(12, 13)])
    assert np.array_equal(strips, gradient((13, 10)))


# ---------------------------------------------------------------------------------------
# grids and reprojection


def test_each_raster_described_with_its_own_grid(tmp_path):
    write_raster(tmp_path / "2020.tif", gradient((10, 12)), crs="EPSG:4326", transform=LONLAT_TRANSFORM)
    write_raster(tmp_path / "2021.tif", gradient((20, 15)), crs=UTM, transform=from_origin(*ORIGIN, 5, 5))
    lonlat, utm = find_activity_rasters(tmp_path)
    assert (lonlat.grid.crs.to_epsg(), lonlat.grid.width, lonlat.grid.height) == (4326, 12, 10)
    assert lonlat.grid.transform == LONLAT_TRANSFORM
    assert (utm.grid.crs.to_epsg(), utm.grid.width, utm.grid.height) == (32736, 15, 20)
    assert utm.grid.transform == from_origin(*ORIGIN, 5, 5)
    assert lonlat.grid.key() != utm.grid.key()
    assert isinstance(utm.grid.crs, CRS)


def test_reader_on_the_same_grid_gives_the_raster_unchanged(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient())
    raster = only(tmp_path)
    assert np.array_equal(read_all(raster, raster.grid), gradient())
    same = Grid(CRS.from_epsg(32736), UTM_TRANSFORM, 10, 10)
    assert same.crs == raster.grid.crs
    assert np.array_equal(read_all(raster, same), gradient())


def test_grid_key_is_the_same_for_the_same_crs_however_it_was_written(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient())
    same = Grid(CRS.from_epsg(32736), UTM_TRANSFORM, 10, 10)
    assert same.key() == only(tmp_path).grid.key()


def test_reader_onto_a_shifted_grid_places_pixels_and_leaves_the_rest_unseen(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient(), nodata=-9999.0)
    raster = only(tmp_path)
    # five pixels further west and north, twice as large
    target = Grid(CRS.from_epsg(32736), from_origin(ORIGIN[0] - 50, ORIGIN[1] + 50, 10, 10), 20, 20)
    read = read_all(raster, target)
    assert read.shape == (20, 20)
    assert np.array_equal(read[5:15, 5:15], gradient())
    outside = np.ones((20, 20), bool)
    outside[5:15, 5:15] = False
    assert np.isnan(read[outside]).all()


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_reader_onto_a_larger_grid_leaves_outside_unseen_without_nodata(tmp_path, dtype):
    write_raster(tmp_path / "2021.tif", np.ones((10, 10), dtype))
    target = Grid(CRS.from_epsg(32736), from_origin(ORIGIN[0] - 50, ORIGIN[1] + 50, 10, 10), 20, 20)
    read = read_all(only(tmp_path), target)
    assert (read[5:15, 5:15] == 1).all()
    assert np.isnan(read[:5]).all()


def test_reader_onto_a_lonlat_grid_gives_the_same_scores_at_matching_points(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient(), nodata=-9999.0)
    raster = only(tmp_path)
    to_lonlat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    west, north = to_lonlat.transform(ORIGIN[0] + 20, ORIGIN[1] - 20)
    east, south = to_lonlat.transform(ORIGIN[0] + 80, ORIGIN[1] - 80)
    step = 0.00002  # about 2 m
    width, height = int((east - west) / step), int((north - south) / step)
    target = Grid(CRS.from_epsg(4326), from_origin(west, north, step, step), width, height)
    read = read_all(raster, target)
    assert read.shape == (height, width)

    rows, cols = np.mgrid[0:height, 0:width]
    lon, lat = target.transform @ (cols + 0.5, rows + 0.5)
    x, y = Transformer.from_crs("EPSG:4326", UTM, always_xy=True).transform(lon, lat)
    src_col, src_row = ~UTM_TRANSFORM @ (x, y)
    # away from source pixel edges, nearest neighbour must pick the pixel the centre falls in
    clear = (np.abs(src_col % 1 - 0.5) < 0.3) & (np.abs(src_row % 1 - 0.5) < 0.3)
    assert clear.sum() > 300
    expected = gradient()[src_row[clear].astype(int), src_col[clear].astype(int)]
    assert np.array_equal(read[clear], expected)
    assert np.isfinite(read).all()  # the target lies inside the raster


def test_lonlat_raster_read_onto_a_utm_grid(tmp_path):
    write_raster(tmp_path / "2021.tif", gradient(), crs="EPSG:4326", transform=LONLAT_TRANSFORM, nodata=-9999.0)
    raster = only(tmp_path)
    to_utm = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    x0, y0 = to_utm.transform(32.0002, -19.0002)
    target = Grid(CRS.from_epsg(32736), from_origin(x0, y0, 2, 2), 25, 25)
    read = read_all(raster, target)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x0 + 1, y0 - 1)
    col, row = ~LONLAT_TRANSFORM @ (lon, lat)
    assert read[0, 0] == gradient()[int(row), int(col)]
    assert np.isfinite(read).all()
    assert len(np.unique(read)) > 10  # several source pixels, not one value smeared


# ---------------------------------------------------------------------------------------
# STAC


BBOX = [32.0, -19.0, 32.001, -18.999]
FOOTPRINT = {
    "type": "Polygon",
    "coordinates": [[[32.0, -19.0], [32.001, -19.0], [32.001, -18.999], [32.0, -18.999], [32.0, -19.0]]],
}


def stac_item(item_id: str, **properties) -> pystac.Item:
    when = None if "start_datetime" in properties else dt.datetime(2020, 8, 1, tzinfo=dt.UTC)
    return pystac.Item(item_id, FOOTPRINT, BBOX, when, properties)


def write_catalog(root: Path, items: dict[str, tuple[pystac.Item, np.ndarray | str]]) -> Path:
    """A self-contained catalog; each item's raster is written beside its JSON (relative href)."""
    catalog = pystac.Catalog(id="activity", description="activity rasters for tests")
    sub = pystac.Catalog(id="older", description="a sub-catalog")
    catalog.add_child(sub)
    for name, (item, _) in items.items():
        (sub if name.startswith("old") else catalog).add_item(item)
    catalog.normalize_hrefs(str(root))
    for item, data in items.values():
        href = data if isinstance(data, str) else str(write_raster(Path(item.self_href).parent / "activity.tif", data))
        item.add_asset("activity", pystac.Asset(href=href, media_type=pystac.MediaType.COG, roles=["data"]))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def test_stac_catalog_found(tmp_path):
    exact_year = stac_item("y2021", start_datetime="2021-01-01T00:00:00Z", end_datetime="2021-12-31T23:59:59Z")
    quarter = stac_item("old-q3", **{"minewatch:period": "2020-Q3"})
    catalog = write_catalog(
        tmp_path / "stac",
        {
            "y2021": (exact_year, np.full((10, 10), 0.9, np.float32)),
            "old-q3": (quarter, np.full((10, 10), 0.2, np.float32)),
        },
    )
    saved = (tmp_path / "stac" / "y2021" / "y2021.json").read_text()
    assert '"href": "./activity.tif"' in saved  # relative, as a self-contained catalog has it
    rasters = find_activity_rasters(catalog)
    assert [r.period.label for r in rasters] == ["2020-Q3", "2021"]
    assert rasters[0].path == tmp_path / "stac" / "older" / "old-q3" / "activity.tif"
    assert rasters[1].path == tmp_path / "stac" / "y2021" / "activity.tif"
    assert read_all(rasters[0])[0, 0] == pytest.approx(0.2)
    assert read_all(rasters[1])[9, 9] == pytest.approx(0.9)


def test_stac_quarter_from_start_and_end_datetime(tmp_path):
    item = stac_item("q3", start_datetime="2021-07-01T00:00:00Z", end_datetime="2021-09-30T23:59:59Z")
    catalog = write_catalog(tmp_path / "stac", {"q3": (item, gradient())})
    assert [r.period.label for r in find_activity_rasters(catalog)] == ["2021-Q3"]


def test_stac_item_without_a_period_refused_naming_it(tmp_path):
    half = stac_item("half", start_datetime="2021-01-01T00:00:00Z", end_datetime="2021-06-30T23:59:59Z")
    catalog = write_catalog(tmp_path / "stac", {"half": (half, gradient())})
    with pytest.raises(InputError, match="item half: no period; set the property minewatch:period") as info:
        find_activity_rasters(catalog)
    assert str(catalog) in str(info.value)


def test_stac_item_with_a_bad_period_refused(tmp_path):
    item = stac_item("bad", **{"minewatch:period": "2021Q3"})
    catalog = write_catalog(tmp_path / "stac", {"bad": (item, gradient())})
    with pytest.raises(InputError, match="item bad: '2021Q3' is not a period"):
        find_activity_rasters(catalog)


def test_stac_remote_asset_refused(tmp_path):
    item = stac_item("remote", **{"minewatch:period": "2021"})
    catalog = write_catalog(tmp_path / "stac", {"remote": (item, "https://example.org/activity.tif")})
    with pytest.raises(InputError, match="item remote: asset https://example.org/activity.tif is not a local file"):
        find_activity_rasters(catalog)


def test_stac_two_items_for_one_period_refused(tmp_path):
    a = stac_item("a", **{"minewatch:period": "2021"})
    b = stac_item("b", start_datetime="2021-01-01T00:00:00Z", end_datetime="2021-12-31T23:59:59Z")
    catalog = write_catalog(tmp_path / "stac", {"a": (a, gradient()), "b": (b, gradient())})
    with pytest.raises(InputError, match="period 2021 already given by"):
        find_activity_rasters(catalog)


def test_not_a_stac_catalog_refused(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text('{"hello": "world"}')
    with pytest.raises(InputError, match="is not a readable STAC catalog") as info:
        find_activity_rasters(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------------------------------
# paths


@pytest.mark.parametrize(
    "raw", ["/vsicurl/http://x/y.tif", "https://x/y.tif", "/vsis3/bucket/activity/", "s3://bucket/activity/"]
)
def test_urls_and_gdal_virtual_paths_refused(raw):
    with pytest.raises(InputError, match="GDAL virtual paths and URLs are not accepted") as info:
        find_activity_rasters(raw)
    assert raw in str(info.value)


def test_missing_folder_refused_naming_it(tmp_path):
    path = tmp_path / "no_such_folder"
    with pytest.raises(InputError, match="no such file or folder") as info:
        find_activity_rasters(path)
    assert str(path) in str(info.value)
