"""Dashboard building blocks without a browser: filters, layer builders, figures, tables."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from dashboard.figures import concession_history_figure, national_table
from dashboard.filters import (
    ALL_PERIODS,
    Filters,
    controls_from_query,
    filter_flags,
    from_controls,
    page_query,
    parse_filters,
)
from dashboard.map_layers import FLAG_COLOURS, concession_hideout, flag_hideout, layer_geojson
from dashboard.tables import flag_rows, selection_of
from geo.flags import FLAG_TYPES

PERIODS = ["2019", "2020", "2021"]


@pytest.fixture
def flags() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "flag_id": ["f1", "f2", "f3", "f4"],
            "flag_type": [
                "unlicensed_activity",
                "licence_overlap",
                "activity_without_production",
                "national_total_mismatch",
            ],
            "severity": ["high", "low", "medium", "high"],
            "score": [0.9, 0.3, 0.5, 0.8],
            "period": ["2021", "2020", "2021", "2019"],
            "concession_id": [None, "A", "B", None],
            "other_concession_id": [None, "B", None, None],
            "holder": [None, "Alpha Ltd", "Beta <b>Ltd</b>", None],
            "area_ha": [3.0, 0.5, 12.0, None],
            "reason": ["outside", "overlap A B", "no production at B", "national gap"],
        }
    )


def test_query_round_trip():
    filters = Filters(period="2021", flag_types=("licence_overlap",), severities=("high",), holders=("Alpha Ltd",),
                      min_score=0.4, query="MW-0", selected="flag:f1")  # fmt: skip
    assert parse_filters(filters.to_query()) == filters
    assert parse_filters("?type=nonsense&severity=high") == Filters(severities=("high",))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), ["f1", "f2", "f3", "f4"]),
        (Filters(period="2021"), ["f1", "f3"]),
        (Filters(flag_types=("licence_overlap",)), ["f2"]),
        (Filters(severities=("high",)), ["f1", "f4"]),
        (Filters(holders=("Alpha Ltd",)), ["f2"]),
        (Filters(min_score=0.5), ["f1", "f3", "f4"]),
        (Filters(query="b"), ["f2", "f3"]),  # matches concession B and "<b>"; plain text, not a regex
        (Filters(query="("), []),
        (Filters(flag_types=("none",)), []),
    ],
)
def test_filter_flags(flags, filters, expected):
    assert flags.loc[filter_flags(flags, filters), "flag_id"].tolist() == expected


def test_controls_to_filters_and_back():
    filters, map_period = from_controls(
        PERIODS, 1, [], ["licence_overlap"], ["high", "medium", "low"], ["Alpha Ltd"], 0.2, " MW ", ["confirmed"],
        "concession:A",
    )  # fmt: skip
    assert map_period == "2020" and filters.period == "2020"
    assert filters.flag_types == ("licence_overlap",) and filters.severities == ()  # all ticked: no restriction
    query = page_query(filters, map_period)
    assert controls_from_query(PERIODS, query) == (
        1,
        [],
        ["licence_overlap"],
        ["high", "medium", "low"],
        ["Alpha Ltd"],
        0.2,
        "MW",
        ["confirmed"],
        "concession:A",
    )


def test_every_period_and_nothing_ticked_survive_the_url():
    filters, map_period = from_controls(PERIODS, 0, [ALL_PERIODS], [], [], [], 0, "")
    assert filters.period == ALL_PERIODS and filters.flag_types == ("none",)
    values = controls_from_query(PERIODS, page_query(filters, map_period))
    assert values[:3] == (0, [ALL_PERIODS], [])


def test_default_controls_show_the_latest_period():
    assert controls_from_query(PERIODS, "")[:3] == (2, [], list(FLAG_TYPES))


def test_layer_geojson_keeps_only_named_properties_and_drops_missing_geometry():
    frame = gpd.GeoDataFrame(
        {"flag_id": ["a", "b"], "secret": ["x", "y"], "score": [0.123456, float("nan")]},
        geometry=[shapely.box(32.0, -19.6, 32.001, -19.599), None],
        crs=4326,
    )
    document = json.loads(layer_geojson(frame, ["flag_id", "score"]))
    (feature,) = document["features"]
    assert feature["properties"] == {"flag_id": "a", "score": 0.1235}
    lon, lat = feature["geometry"]["coordinates"][0][0]
    assert 32 <= lon <= 32.001 and len(str(lon).split(".")[1]) <= 6


def test_worst_flag_outlines_a_concession(flags):
    visible = pd.Series(True, index=flags.index)
    hideout = concession_hideout(flags, visible, ["A", "B"], "B")
    assert hideout["worst"] == {"B": "activity_without_production", "A": "licence_overlap"}
    assert hideout["selected"] == "B" and hideout["shown"] == {"A": True, "B": True}
    only_overlap = flags["flag_type"] == "licence_overlap"
    assert concession_hideout(flags, only_overlap, [], "")["worst"] == {"A": "licence_overlap", "B": "licence_overlap"}


def test_flag_hideout_lists_visible_ids(flags):
    hideout = flag_hideout(flags, flags["severity"] == "high", "f1")
    assert hideout["visible"] == {"f1": True, "f4": True} and hideout["colours"] == FLAG_COLOURS


def test_flag_rows_sorted_and_labelled(flags):
    rows = flag_rows(flags, Filters())
    assert [r["flag_id"] for r in rows] == ["f1", "f4", "f3", "f2"]
    assert rows[0]["label"] == "Activity outside every licence"
    assert rows[0]["concession_id"] is None  # JSON-safe, not NaN


def test_selection_parsing(flags):
    assert selection_of("flag:f2") == ("flag", "f2")
    assert selection_of("concession:MW-1:x") == ("concession", "MW-1:x")
    assert selection_of("nonsense") == ("", "")


def test_history_figure_distinguishes_no_report_from_zero():
    stats = pd.DataFrame(
        {"concession_id": ["A"] * 3, "period": ["2021", "2019", "2020"], "active_ha": [3.0, 1.0, 2.0],
         "carats": [float("nan"), 100.0, 0.0]}
    )  # fmt: skip
    figure = concession_history_figure(stats, "A")
    active, carats = figure.data
    assert list(active.x) == ["2019", "2020", "2021"] and list(active.y) == [1.0, 2.0, 3.0]
    assert list(carats.customdata) == ["100 ct", "0 ct", "no report"]
    assert figure.layout.yaxis2.overlaying == "y"


def test_national_table_marks_mismatches_and_missing_reports():
    national = pd.DataFrame(
        {"country": ["Zimbabwe"] * 3, "period": ["2019", "2018", "2020"], "national_carats": [2.1e6, 3.3e6, 2.7e6],
         "reported_carats": [1.47e6, 3.3e6, 0.0], "reports": [5, 12, 0], "difference_pct": [-30.0, 0.0, None]}
    )  # fmt: skip
    rows = national_table(national, tolerance_pct=10).children[1].children
    cells = [[c.children if isinstance(c.children, str) else None for c in r.children] for r in rows]
    assert [c[1] for c in cells] == ["2018", "2019", "2020"]
    assert [r.className for r in rows] == ["", "flagged", ""]
    assert cells[1][4] == "-30 % ⚑" and cells[2][3] == "no report"
    assert national_table(national.iloc[0:0]).children == "No national totals in this analysis."


def test_activity_overlay_png_lands_where_its_bounds_say(tmp_path):
    """The PNG is warped to Web Mercator; its corners (computed without drawing, for the map
    callback) are the image's own, and a pixel's colour lands at its place."""
    import warnings

    import numpy as np
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    from layers.activity_png import activity_png_bounds, render_activity_png
    from tests.conftest import write_raster

    scores = np.zeros((200, 300), np.float32)
    scores[:100, :150] = 0.9  # the north-west quarter is active
    path = write_raster(tmp_path / "2021.tif", scores, from_origin(400_000, 7_830_000, 10, 10), "EPSG:32736", -1.0)
    png, bounds = render_activity_png(path)
    assert bounds == activity_png_bounds(path)
    (south, west), (north, east) = bounds
    with rasterio.open(path) as source:
        lon_lat = rasterio.warp.transform_bounds(source.crs, "EPSG:4326", *source.bounds)
    assert west == pytest.approx(lon_lat[0], abs=1e-3) and north == pytest.approx(lon_lat[3], abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)  # a PNG for the screen
        with MemoryFile(png) as memory, memory.open() as image:
            alpha = image.read(4)
    height, width = alpha.shape
    assert alpha[height // 4, width // 4] > 0  # north-west: coloured
    assert alpha[3 * height // 4, 3 * width // 4] == 0  # south-east: transparent
