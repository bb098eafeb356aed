"""Sensitive flag types: public viewers get displaced points, never the place (checked on HTTP responses)."""

from __future__ import annotations

import json

import pytest
import shapely
from pyproj import Geod

from dashboard import create_app
from dashboard.sensitive import MAX_DISPLACEMENT_M, MIN_DISPLACEMENT_M, displaced_point, sensitive_types_from
from geo.errors import SettingsError
from layers.results import read_analysis, write_analysis
from layers.review_store import open_store
from tests.conftest import analyse_field, write_field
from tests.test_dashboard_reviews import ORIGIN, PASSWORD

GEOD = Geod(ellps="WGS84")
SENSITIVE = "unlicensed_activity"


@pytest.fixture
def served(tmp_path):
    paths = write_field(tmp_path / "field")
    fresh = analyse_field(paths)
    fresh.provenance["inputs"] = [
        {"layer": f"activity {p.stem}", "path": str(p)} for p in sorted(paths["activity"].glob("*.tif"))
    ]
    results = write_analysis(fresh, tmp_path / "results")
    with open_store(results) as store:
        store.add_user("alice", PASSWORD, "team")
    analysis = read_analysis(results)
    app = create_app(analysis, results_dir=results, sensitive_types=[SENSITIVE])
    team = app.server.test_client()
    team.post("/login", data={"username": "alice", "password": PASSWORD}, headers=ORIGIN)
    return analysis, app.server.test_client(), team


def metres(a, b) -> float:
    return GEOD.inv(a.x, a.y, b.x, b.y)[2]


def test_displacement_is_a_deterministic_donut():
    key = b"k" * 32
    points = [displaced_point(32.35, -19.59, f"mw-{i}", key) for i in range(200)]
    distances = [GEOD.inv(32.35, -19.59, x, y)[2] for x, y in points]
    assert min(distances) >= MIN_DISPLACEMENT_M - 1 and max(distances) <= MAX_DISPLACEMENT_M + 1
    assert displaced_point(32.35, -19.59, "mw-1", key) == points[1]
    assert displaced_point(32.35, -19.59, "mw-1", b"other key") != points[1]


def test_public_map_and_api_never_carry_the_place(served):
    analysis, public, team = served
    truth = analysis.flags[analysis.flags["flag_type"] == SENSITIVE]
    assert len(truth) == 4
    for route in ("/map/flags.geojson", f"/api/flags.geojson?type={SENSITIVE}"):
        body = public.get(route).get_data(as_text=True)
        features = {f["properties"]["flag_id"]: f for f in json.loads(body)["features"]}
        for flag_id, geom in zip(truth["flag_id"], truth.geometry, strict=True):
            shown = shapely.geometry.shape(features[flag_id]["geometry"])
            assert shown.geom_type == "Point"
            assert MIN_DISPLACEMENT_M - 1 <= metres(shown, shapely.point_on_surface(geom)) <= MAX_DISPLACEMENT_M + 1
            for x, y in shapely.get_coordinates(geom)[:20]:
                assert f"{x:.5f}" not in body or f"{y:.5f}" not in body
    team_features = json.loads(team.get("/map/flags.geojson").get_data(as_text=True))["features"]
    kinds = {f["properties"]["flag_id"]: f["geometry"]["type"] for f in team_features}
    assert {kinds[f] for f in truth["flag_id"]} == {"Polygon"}


def test_public_footprints_and_overlay_leave_the_place_out(served):
    analysis, public, team = served
    public_fp = json.loads(public.get("/map/footprints.geojson").get_data(as_text=True))["features"]
    team_fp = json.loads(team.get("/map/footprints.geojson").get_data(as_text=True))["features"]
    assert len(team_fp) - len(public_fp) == 4  # the outside pit, one footprint a year
    period = analysis.periods[0]
    assert public.get(f"/map/activity/{period}.png").get_data() != team.get(f"/map/activity/{period}.png").get_data()
    response = public.get("/map/flags.geojson")
    assert response.headers["Cache-Control"] == "private, no-cache" and "Cookie" in response.headers["Vary"]


def test_unknown_sensitive_type_is_refused():
    with pytest.raises(SettingsError, match="not one of"):
        sensitive_types_from("unlicenced_activity")
