"""Context layers: read in any CRS, labelled, carried through a saved analysis, served to the map."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geo.errors import InputError
from layers.context import read_context


def test_context_reprojected_and_labelled(tmp_path):
    places = gpd.GeoDataFrame(
        {"NAME": ["Town"], "pop": [10]}, geometry=[shapely.Point(400_000, 7_830_000)], crs="EPSG:20936"
    )
    boundary = gpd.GeoDataFrame({"district": ["Ward 1"]}, geometry=[shapely.box(0, 0, 1, 1)], crs=4326)
    places.to_file(tmp_path / "places.gpkg")
    boundary.to_file(tmp_path / "wards.geojson")
    town = read_context(tmp_path / "places.gpkg")
    assert town.crs.to_epsg() == 4326 and town["name"].tolist() == ["Town"] and town["kind"].tolist() == ["place"]
    assert 31.9 < town.geometry.iloc[0].x < 32.1  # Arc 1950 / UTM 36S moved onto lon/lat
    ward = read_context(tmp_path / "wards.geojson")
    assert ward["name"].tolist() == ["Ward 1"] and ward["kind"].tolist() == ["boundary"]


def test_context_needs_a_label(tmp_path):
    gpd.GeoDataFrame({"n": [1]}, geometry=[shapely.Point(0, 0)], crs=4326).to_file(tmp_path / "x.geojson")
    with pytest.raises(InputError, match="needs a 'name' field"):
        read_context(tmp_path / "x.geojson")
