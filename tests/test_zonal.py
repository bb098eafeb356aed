"""Coverage-weighted zonal sums (geo.zonal) against known areas and exactextract."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from geo.zonal import cut_rings, integrate_strip

TRANSFORM = from_origin(1000.0, 2000.0, 10.0, 10.0)  # 10 m pixels, origin top-left
HEIGHT, WIDTH = 40, 50


def zonal(geoms, values, strip_rows=7, transform=TRANSFORM):
    values = np.asarray(values, dtype=float)
    pieces = cut_rings(np.array(geoms, dtype=object), transform, *values.shape)
    total = np.zeros(len(geoms))
    for start in range(0, values.shape[0], strip_rows):
        total += integrate_strip(pieces, start, values[None, start : start + strip_rows])[0]
    return total


def world_box(col0, row0, col1, row1):
    """A box given in (fractional) pixel coordinates of TRANSFORM."""
    x0, y0 = TRANSFORM @ (col0, row0)
    x1, y1 = TRANSFORM @ (col1, row1)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


ONES = np.ones((HEIGHT, WIDTH))


@pytest.mark.parametrize(
    ("box", "expected_pixels"),
    [
        ((10, 10, 20, 20), 100.0),  # pixel-aligned
        ((10.5, 10, 20.5, 20), 100.0),  # cut through a column of pixels
        ((10.25, 10.5, 12.75, 11.5), 2.5),  # smaller than three pixels, cut on every side
        ((-5, -5, 5, 5), 25.0),  # hangs over the top-left corner of the raster
        ((45, 35, 60, 60), 25.0),  # hangs over the bottom-right corner
        ((60, 10, 70, 20), 0.0),  # wholly outside
    ],
)
def test_known_area_boxes(box, expected_pixels):
    assert zonal([world_box(*box)], ONES)[0] == pytest.approx(expected_pixels, abs=1e-9)


def test_partial_pixel_weights_the_pixel_value():
    values = np.zeros((HEIGHT, WIDTH))
    values[10, 10] = 1.0  # one active pixel, the box covers a quarter of it
    assert zonal([world_box(9.5, 9.5, 10.5, 10.5)], values)[0] == pytest.approx(0.25)


def test_hole_and_multipart_and_orientation():
    outer = world_box(5, 5, 25, 25)
    hole = world_box(10, 10, 15, 15)
    with_hole = shapely.Polygon(outer.exterior.coords, [hole.exterior.coords])
    clockwise = shapely.Polygon(list(outer.exterior.coords)[::-1])
    multipart = shapely.MultiPolygon([world_box(0, 0, 2, 2), world_box(30, 30, 33, 31)])
    result = zonal([with_hole, clockwise, multipart, None, shapely.Polygon()], ONES)
    assert result == pytest.approx([400 - 25, 400, 4 + 3, 0, 0])


def test_overlapping_polygons_each_get_their_whole_area():
    a, b = world_box(5, 5, 15, 15), world_box(10, 10, 20, 20)
    assert zonal([a, b], ONES) == pytest.approx([100, 100])


def test_result_does_not_depend_on_strip_height():
    rng = np.random.default_rng(3)
    values = rng.random((HEIGHT, WIDTH))
    geoms = [
        shapely.Point(TRANSFORM @ (rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT))).buffer(rng.uniform(5, 120))
        for _ in range(30)
    ]
    one = zonal(geoms, values, strip_rows=1)
    assert zonal(geoms, values, strip_rows=HEIGHT) == pytest.approx(one, abs=1e-9)
    assert zonal(geoms, values, strip_rows=13) == pytest.approx(one, abs=1e-9)


def test_matches_exactextract_coverage_weighted_sums(tmp_path):
    exactextract = pytest.importorskip("exactextract")  # part of the test extra; never skipped in CI
    import geopandas as gpd

    from tests.conftest import write_raster

    rng = np.random.default_rng(7)
    values = (rng.random((HEIGHT, WIDTH)) > 0.7).astype(np.float32)
    path = write_raster(tmp_path / "mask.tif", values, TRANSFORM, "EPSG:32736")
    geoms = []
    for i in range(60):
        centre = shapely.Point(TRANSFORM @ (rng.uniform(-5, WIDTH + 5), rng.uniform(-5, HEIGHT + 5)))
        shape = centre.buffer(rng.uniform(8, 150), quad_segs=rng.integers(2, 9))
        if i % 4 == 0:
            shape = shape.difference(centre.buffer(5))
        geoms.append(shape)
    frame = gpd.GeoDataFrame(geometry=geoms, crs="EPSG:32736")
    theirs = exactextract.exact_extract(str(path), frame, ["sum"], output="pandas")["sum"].to_numpy()
    assert zonal(geoms, values) == pytest.approx(theirs, abs=1e-6)


def test_rotated_grid():
    rotated = TRANSFORM @ from_origin(0, 0, 1, 1).rotation(30)
    values = np.ones((HEIGHT, WIDTH))
    inside = shapely.Polygon([rotated @ (c, r) for c, r in [(5, 5), (15, 5), (15, 15), (5, 15)]])
    assert zonal([inside], values, transform=rotated)[0] == pytest.approx(100.0)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shapes=st.lists(st.tuples(st.floats(-10, 60), st.floats(-10, 50), st.floats(0.2, 30)), min_size=1, max_size=8),
)
def test_no_polygon_gets_more_active_area_than_the_raster_has(seed, shapes):
    values = (np.random.default_rng(seed).random((HEIGHT, WIDTH)) > 0.5).astype(float)
    geoms = [shapely.Point(TRANSFORM @ (c, r)).buffer(radius * 10) for c, r, radius in shapes]
    result = zonal(geoms, values)
    assert (result <= values.sum() + 1e-6).all()
    assert (result >= -1e-9).all()
