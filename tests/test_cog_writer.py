"""layers.cog_writer: COGs assembled from tiles in any order, read back by GDAL pixel for pixel."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate

import layers.cog_writer as cog_writer
from layers.activity import Grid
from layers.cog_writer import (
    CogWriter,
    Pyramid,
    cog_errors,
    decode_tile,
    encode_tile,
    overview_tile,
    reduce_half,
)

NODATA = -9999.0
UTM_36S = CRS.from_epsg(32736)
# Africa Albers Equal Area Conic as PROJ parameters: no EPSG code, so GDAL must write every GeoKey itself
ALBERS = CRS.from_proj4("+proj=aea +lat_0=0 +lon_0=25 +lat_1=20 +lat_2=-23 +x_0=0 +y_0=0 +datum=WGS84 +units=m")


def _raster(height: int, width: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.random((height, width), dtype=np.float32)
    values[rng.random((height, width)) < 0.15] = NODATA
    values[: height // 3, : width // 4] = NODATA  # a whole block never seen: its overview pixels are nodata
    return values


def _write(path, values, tile_px, crs=UTM_36S, tags=None, seed=2, prepare_in_thread=False):
    """Give the tiles in a shuffled order, as a cluster finishes them, each overview tile as soon as it can be made.

    ``prepare_in_thread``: the header tags are made in another thread meanwhile, as the build does.
    """
    height, width = values.shape
    grid = Grid(crs, from_origin(426600, 7829700, 10, 10), width, height)
    keys = [(r, c) for r in range(math.ceil(height / tile_px)) for c in range(math.ceil(width / tile_px))]
    np.random.default_rng(seed).shuffle(keys)
    with CogWriter(path, grid, tile_px, NODATA, tags or {}) as writer:
        if prepare_in_thread:
            preparing = threading.Thread(target=writer.prepare)
            preparing.start()
        for r, c in keys:
            tile = encode_tile(
                values[r * tile_px : (r + 1) * tile_px, c * tile_px : (c + 1) * tile_px], tile_px, NODATA
            )
            writer.add(0, r, c, tile.data)
            job = writer.pyramid.arrived(0, r, c, tile)
            while job is not None:
                made = overview_tile(job.children, job.shape, tile_px, NODATA)
                writer.add(job.level, job.row, job.col, made.data)
                job = writer.pyramid.arrived(job.level, job.row, job.col, made)
        if prepare_in_thread:
            preparing.join()
            assert writer._geo_tags is not None  # made there, not by finish()
        writer.finish()
    return grid


@pytest.mark.parametrize("big", [False, True], ids=["classic", "bigtiff"])
def test_any_tile_order_gives_a_valid_cog_that_gdal_reads_back_exactly(tmp_path, monkeypatch, big):
    if big:
        monkeypatch.setattr(cog_writer, "CLASSIC_LIMIT_BYTES", 0)
    values = _raster(700, 1000)
    tags = {"PERIOD": "2021", "NOTE": 'quoted <b> & "c"'}
    grid = _write(tmp_path / "out.tif", values, 128, tags=tags)
    valid, errors, warnings = cog_validate(str(tmp_path / "out.tif"), quiet=True)
    assert valid and not errors and not warnings
    with rasterio.open(tmp_path / "out.tif") as dataset:
        assert dataset.crs == grid.crs and dataset.transform == grid.transform
        assert dataset.nodata == NODATA and dataset.dtypes == ("float32",)
        assert dataset.block_shapes == [(128, 128)] and dataset.compression.name == "deflate"
        assert {k: v for k, v in dataset.tags().items() if k != "AREA_OR_POINT"} == tags
        assert dataset.overviews(1) == [2, 4, 8]  # halved until one tile holds it: 1000 -> 500 -> 250 -> 125
        np.testing.assert_array_equal(dataset.read(1), values)
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]  # the spool files are gone


def test_header_tags_made_ahead_in_another_thread_give_the_same_file(tmp_path):
    values = _raster(300, 400)
    tags = {"PERIOD": "2021", "MINEWATCH_SYNTHETIC": "yes"}
    _write(tmp_path / "at_finish.tif", values, 128, crs=ALBERS, tags=tags)
    _write(tmp_path / "ahead.tif", values, 128, crs=ALBERS, tags=tags, prepare_in_thread=True)
    assert (tmp_path / "ahead.tif").read_bytes() == (tmp_path / "at_finish.tif").read_bytes()
    with rasterio.open(tmp_path / "ahead.tif") as dataset:
        assert dataset.tags()["PERIOD"] == "2021" and dataset.crs.to_epsg() is None


def test_overviews_are_the_mean_of_the_valid_pixels_below_as_gdal_averages_them(tmp_path):
    values = _raster(700, 1000)
    _write(tmp_path / "out.tif", values, 128)
    expected = values
    for level in range(3):
        expected = reduce_half(expected, NODATA)
        with rasterio.open(tmp_path / "out.tif", overview_level=level) as overview:
            np.testing.assert_array_equal(overview.read(1), expected)
    # GDAL's own average overview of the full resolution, for the first level
    with rasterio.open(tmp_path / "out.tif") as dataset:
        profile = dict(dataset.profile, driver="GTiff", tiled=False, compress=None)
    with rasterio.open(tmp_path / "gdal.tif", "w", **profile) as gdal:
        gdal.write(values, 1)
        gdal.build_overviews([2], rasterio.enums.Resampling.average)
    with (
        rasterio.open(tmp_path / "gdal.tif", overview_level=0) as gdal,
        rasterio.open(tmp_path / "out.tif", overview_level=0) as ours,
    ):
        np.testing.assert_allclose(ours.read(1), gdal.read(1), rtol=1e-6)


def test_a_crs_without_an_epsg_code_is_described_as_gdal_describes_it(tmp_path):
    grid = _write(tmp_path / "albers.tif", _raster(100, 150), 64, crs=ALBERS)
    with rasterio.open(tmp_path / "albers.tif") as dataset:
        assert dataset.crs.to_epsg() is None
        assert CRS.from_wkt(dataset.crs.to_wkt()) == grid.crs


def test_a_level_exactly_one_1024_pixel_tile_wide_is_a_valid_cog_as_gdal_rules(tmp_path):
    """A 2048-pixel grid in 1024-pixel tiles: its overview is one tile, as wide as its block.

    rio-cogeo calls that untiled (it says so of GDAL's own COG driver's output too); GDAL's
    validator calls a block as wide as its image untiled only when it is wider than 1024.
    """
    values = _raster(1040, 2048)
    _write(tmp_path / "wide.tif", values, 1024)
    valid, errors, _warnings = cog_validate(str(tmp_path / "wide.tif"), quiet=True)
    assert not valid and errors == ["Overview of index 0 is not tiled"]
    assert cog_errors(tmp_path / "wide.tif") == []
    with rasterio.open(tmp_path / "wide.tif") as dataset:
        assert dataset.block_shapes == [(1024, 1024)] and dataset.overviews(1) == [2]
        np.testing.assert_array_equal(dataset.read(1), values)


def test_the_default_512_pixel_tiles_on_a_grid_1024_wide_and_taller_are_a_valid_cog(tmp_path):
    """Its first overview is 512 x 550: one 512-pixel tile wide, and taller than 512. rio-cogeo
    calls that untiled; before cog_errors such a grid failed every build at the COG check."""
    values = _raster(1100, 1024)
    _write(tmp_path / "tall.tif", values, 512)
    assert cog_validate(str(tmp_path / "tall.tif"), quiet=True)[1] == ["Overview of index 0 is not tiled"]
    assert cog_errors(tmp_path / "tall.tif") == []
    with rasterio.open(tmp_path / "tall.tif", overview_level=0) as overview:
        assert (overview.width, overview.height) == (512, 550) and overview.block_shapes == [(512, 512)]


def test_cog_errors_still_finds_strips_as_wide_as_the_image_and_the_writer_refuses_wider_tiles(tmp_path):
    grid = Grid(UTM_36S, from_origin(426600, 7829700, 10, 10), 700, 600)
    profile = dict(driver="GTiff", width=700, height=600, count=1, dtype="float32", crs=grid.crs)
    with rasterio.open(tmp_path / "strips.tif", "w", **profile, transform=grid.transform) as dataset:
        dataset.write(_raster(600, 700), 1)
        assert dataset.block_shapes[0][1] == 700  # strips no wider than 1024, which GDAL's rule alone would pass
    assert "The file is greater than 512xH or 512xW, but is not tiled" in cog_errors(tmp_path / "strips.tif")
    with pytest.raises(ValueError, match="tiles of 2048 pixels: use a multiple of 16 up to 1024"):
        CogWriter(tmp_path / "too_wide.tif", grid, 2048, NODATA, {})


def test_one_tile_needs_no_overviews(tmp_path):
    values = _raster(40, 50)
    _write(tmp_path / "small.tif", values, 64)
    assert cog_validate(str(tmp_path / "small.tif"), quiet=True)[0]
    with rasterio.open(tmp_path / "small.tif") as dataset:
        assert dataset.overviews(1) == []
        np.testing.assert_array_equal(dataset.read(1), values)


def test_reduce_half_averages_valid_pixels_and_keeps_odd_edges():
    values = np.array([[1, 3, 5], [NODATA, 5, NODATA], [NODATA, NODATA, 7]], dtype=np.float32)
    np.testing.assert_array_equal(reduce_half(values, NODATA), np.array([[3, 5], [NODATA, 7]], dtype=np.float32))


@pytest.mark.parametrize("shape", [(64, 64), (37, 64), (64, 5), (1, 1)], ids=["full", "bottom", "right", "corner"])
def test_a_tile_decodes_to_the_same_bits_it_was_encoded_from(shape):
    # every bit pattern survives: NaN payloads, infinities, -0.0, subnormals, nodata; edge tiles lose their padding
    bits = np.random.default_rng(3).integers(0, 2**32, size=shape, dtype=np.uint32)
    values = bits.view(np.float32).copy()
    values.flat[: min(values.size, 4)] = np.array([NODATA, -0.0, np.inf, 1e-45], dtype=np.float32)[: values.size]
    tile = encode_tile(values, 64, NODATA)
    assert tile.shape == shape
    decoded = decode_tile(tile, 64)
    assert decoded.dtype == np.float32 and decoded.shape == shape
    np.testing.assert_array_equal(decoded.view(np.uint32), values.view(np.uint32))


def test_the_pyramid_hands_out_each_overview_tile_once_when_its_parts_are_in():
    pyramid = Pyramid(1000, 700, 128)  # 8 x 6 tiles, then 4 x 3, 2 x 2, 1 x 1 (125 x 88 pixels)
    assert pyramid.sizes == [(1000, 700), (500, 350), (250, 175), (125, 88)]
    assert [pyramid.grid_of(level) for level in range(4)] == [(6, 8), (3, 4), (2, 2), (1, 1)]
    assert pyramid.tiles() == 48 + 12 + 4 + 1
    jobs = [pyramid.arrived(0, r, c, (r, c)) for r in range(6) for c in range(8)]
    made = [job for job in jobs if job is not None]
    assert len(made) == 12 and len({(j.level, j.row, j.col) for j in made}) == 12
    corner = next(j for j in made if (j.row, j.col) == (2, 3))
    assert corner.children == (((4, 6), (4, 7)), ((5, 6), (5, 7))) and corner.shape == (350 - 256, 500 - 384)
    assert pyramid.arrived(3, 0, 0, "top") is None  # nothing above the smallest overview


def test_missing_repeated_and_badly_sized_tiles_are_refused(tmp_path):
    grid = Grid(UTM_36S, from_origin(0, 0, 10, 10), 100, 100)
    tile = encode_tile(np.zeros((64, 64), np.float32), 64, NODATA)
    with pytest.raises(ValueError, match="multiple of 16"):
        CogWriter(tmp_path / "x.tif", grid, 50, NODATA, {})
    with CogWriter(tmp_path / "x.tif", grid, 64, NODATA, {}) as writer:
        writer.add(0, 0, 0, tile.data)
        with pytest.raises(ValueError, match="given twice"):
            writer.add(0, 0, 0, tile.data)
        with pytest.raises(ValueError, match="3 tiles of level 0 were never given"):
            writer.finish()
