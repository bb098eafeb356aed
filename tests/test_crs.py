"""CRS handling: the Arc 1950 datum shift is applied, never guessed; areas are equal-area."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod, Transformer

from geo.crs import area_crs_for, require_crs
from geo.errors import CRSError
from layers.concessions import read_concessions

# A point of the Marange field in Arc 1950 / UTM zone 36S (EPSG:20936).
ARC1950_E, ARC1950_N = 400_000.0, 7_830_000.0


def test_arc1950_point_lands_on_its_wgs84_position_not_the_naive_one(tmp_path):
    square = shapely.box(ARC1950_E, ARC1950_N, ARC1950_E + 100, ARC1950_N + 100)
    path = tmp_path / "one.geojson"
    gpd.GeoDataFrame(
        {"concession_id": ["X"], "holder": ["h"], "status": ["active"]}, geometry=[square], crs="EPSG:20936"
    ).to_file(path)
    loaded = read_concessions(path).table.to_crs(4326)
    corner = np.array(loaded.geometry.iloc[0].exterior.coords)
    lon, lat = corner[np.argmin(corner[:, 0] + corner[:, 1])]  # south-west corner

    expected = Transformer.from_crs("EPSG:20936", "EPSG:4326", always_xy=True).transform(ARC1950_E, ARC1950_N)
    naive = Transformer.from_crs("EPSG:32736", "EPSG:4326", always_xy=True).transform(ARC1950_E, ARC1950_N)
    geod = Geod(ellps="WGS84")
    assert geod.inv(lon, lat, *expected)[2] < 1.0
    assert 250 < geod.inv(lon, lat, *naive)[2] < 350  # what reading Arc 1950 as WGS 84 would do


def test_missing_crs_refused_with_the_fix():
    with pytest.raises(CRSError, match="never guesses"):
        require_crs(None, what="concessions: x.shp")


@settings(max_examples=40, deadline=None)
@given(
    lon=st.floats(-179, 179),
    lat=st.floats(-80, 80),
    size_deg=st.floats(0.001, 0.5),
)
def test_equal_area_matches_geodesic_area(lon, lat, size_deg):
    box = shapely.box(lon, lat, lon + size_deg, min(lat + size_deg, 84))
    dense = shapely.segmentize(box, size_deg / 50)
    geodesic, _ = Geod(ellps="WGS84").geometry_area_perimeter(dense)
    crs = area_crs_for(lon + size_deg / 2, lat + size_deg / 2)
    projected = gpd.GeoSeries([dense], crs=4326).to_crs(crs).area.iloc[0]
    assert projected == pytest.approx(abs(geodesic), rel=1e-3)
