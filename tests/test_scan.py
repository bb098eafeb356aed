"""One raster pass (geo.scan): speckle removal and footprints are the same however the raster is cut."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS
from rasterio.transform import from_origin

from geo.crs import area_crs_for, pixel_area_ha
from geo.footprints import merge_footprints, polygonise_strip
from geo.scan import active_mask, scan_activity
from geo.zonal import cut_rings
from layers.activity import Grid

UTM36S = CRS.from_epsg(32736)
TRANSFORM = from_origin(300_000, 7_800_000, 10, 10)
AREA = area_crs_for(31.1, -19.9)


def speckled(seed=0, shape=(120, 90)):
    rng = np.random.default_rng(seed)
    scores = np.where(rng.random(shape) > 0.93, 0.8, 0.0).astype(np.float32)
    scores[20:60, 10:14] = 0.9  # a tall thin patch crossing strips
    scores[80:83, 40:70] = 0.7
    scores[5, 5] = np.nan
    return scores


def run(scores, strip_rows, min_patch_ha=0.05, previous=None, geoms=()):
    import geo.scan as scan_module

    original = scan_module.strip_height
    scan_module.strip_height = lambda width: strip_rows
    try:
        height, width = scores.shape

        def reader(array):
            def read(start, stop):
                out = np.full((stop - start, width), np.nan, np.float32)
                lo, hi = max(start, 0), min(stop, height)
                out[lo - start : hi - start] = array[lo:hi]
                return out

            return read

        pieces = cut_rings(np.array(list(geoms), dtype=object), TRANSFORM, height, width)
        return scan_activity(
            reader(scores),
            grid=Grid(UTM36S, TRANSFORM, width, height),
            pieces=pieces,
            area_crs=AREA,
            threshold=0.5,
            min_patch_ha=min_patch_ha,
            read_previous=reader(previous) if previous is not None else None,
        )
    finally:
        scan_module.strip_height = original


def test_speckle_removed_exactly_whatever_the_strips():
    scores = speckled()
    whole = active_mask(scores, 0.5, 5)
    box = shapely.box(*(TRANSFORM @ (0, 120)), *(TRANSFORM @ (90, 0)))
    for strip_rows in (1, 7, 16, 120):
        result = run(scores, strip_rows, min_patch_ha=0.05, geoms=[box])
        assert result.sums[0, 0] == pytest.approx(whole.sum() * 0.01, rel=1e-3)
    assert whole[20:60, 10:14].all() and whole.sum() < (scores >= 0.5).sum()


def test_footprints_join_across_strips_and_diagonals():
    scores = np.zeros((30, 30), np.float32)
    scores[2:20, 3:6] = 0.9
    scores[20, 6] = 0.9  # touches the block only at a corner
    merged = merge_footprints(run(scores, 4, min_patch_ha=0).footprint_parts)
    assert len(merged) == 1
    assert shapely.area(merged[0]) == pytest.approx((18 * 3 + 1) * 100)


def test_new_active_needs_the_previous_period_seen_and_inactive():
    before = np.zeros((20, 20), np.float32)
    before[0:5, 0:5] = 0.9  # already active
    before[10:15, 10:15] = np.nan  # not seen before
    now = np.zeros((20, 20), np.float32)
    now[0:5, 0:10] = 0.9  # 25 old + 25 new pixels
    now[10:15, 10:15] = 0.9  # active now, unknown before: not counted as new
    box = shapely.box(*(TRANSFORM @ (0, 20)), *(TRANSFORM @ (20, 0)))
    result = run(now, 6, min_patch_ha=0, previous=before, geoms=[box])
    active, observed, new = result.sums[:, 0]
    assert active == pytest.approx(75 * 0.01, rel=1e-3)
    assert new == pytest.approx(25 * 0.01, rel=1e-3)
    assert observed == pytest.approx(400 * 0.01, rel=1e-3)


def test_polygonise_empty_strip():
    assert polygonise_strip(np.zeros((4, 4), bool), TRANSFORM) == []


def test_pixel_area_of_a_lonlat_grid_shrinks_with_latitude():
    degrees = from_origin(30.0, -10.0, 0.001, 0.001)
    areas = pixel_area_ha(degrees, CRS.from_epsg(4326), area_crs_for(30, -20), np.array([0, 10_000]), np.array([0]))
    # ~111 m x ~110 m at 10 S, cos(20)/cos(10) smaller at 20 S.
    assert areas[0, 0] == pytest.approx(1.2158, rel=0.01)
    assert areas[1, 0] / areas[0, 0] == pytest.approx(np.cos(np.radians(20)) / np.cos(np.radians(10)), rel=0.002)
