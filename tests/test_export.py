"""Exports: RFC 7946 GeoJSON read back through GDAL, and CSV a spreadsheet cannot run."""

from __future__ import annotations

import csv
import io
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from geo.export import csv_text, geojson_text


def signed_area(ring) -> float:
    xy = np.asarray(ring)
    return 0.5 * float(np.sum(xy[:-1, 0] * xy[1:, 1] - xy[1:, 0] * xy[:-1, 1]))


@pytest.fixture
def frame():
    outer = shapely.box(400_000, 7_830_000, 401_000, 7_831_000)
    hole = shapely.box(400_200, 7_830_200, 400_400, 7_830_400)
    clockwise_with_hole = shapely.Polygon(list(outer.exterior.coords)[::-1], [list(hole.exterior.coords)])
    return gpd.GeoDataFrame(
        {"name": ['=HYPERLINK("http://x")', "ordinary"], "value": [-12.5, np.nan]},
        geometry=[clockwise_with_hole, None],
        crs="EPSG:20936",
    )


def test_geojson_is_rfc7946(frame, tmp_path):
    document = json.loads(geojson_text(frame))
    assert "crs" not in document
    feature = document["features"][0]
    exterior, interior = feature["geometry"]["coordinates"]
    assert signed_area(exterior) > 0 > signed_area(interior)  # CCW outside, CW holes
    lon, lat = exterior[0]
    assert 31 < lon < 33 and -20 < lat < -19  # lon/lat order, WGS 84
    assert feature["bbox"][0] <= lon <= feature["bbox"][2]
    assert document["bbox"] == feature["bbox"]
    assert document["features"][1]["geometry"] is None
    assert document["features"][1]["properties"]["value"] is None  # NaN becomes null


def test_geojson_round_trips_through_gdal(frame, tmp_path):
    path = tmp_path / "out.geojson"
    path.write_text(geojson_text(frame), encoding="utf-8")
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326" and info["features"] == 2
    back = pyogrio.read_dataframe(path)
    original_area = frame.to_crs(6933).area.iloc[0]
    assert back.to_crs(6933).area.iloc[0] == pytest.approx(original_area, rel=1e-4)  # 1 cm rounding
    assert back["name"].iloc[0] == frame["name"].iloc[0]


def test_csv_escapes_formulas_but_keeps_numbers():
    table = pd.DataFrame(
        {
            "holder": ["=cmd|' /C calc'!A0", "+1", "-x", "@SUM(1)", "\tTab", "Plain (Pvt) Ltd"],
            "difference_pct": [-12.5, 3.0, 0.0, 1.0, 2.0, 4.0],
        }
    )
    rows = list(csv.reader(io.StringIO(csv_text(table))))
    assert [r[0] for r in rows[1:]] == ["'=cmd|' /C calc'!A0", "'+1", "'-x", "'@SUM(1)", "'\tTab", "Plain (Pvt) Ltd"]
    assert rows[1][1] == "-12.5"
