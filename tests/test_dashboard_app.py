"""The dashboard app without a browser: routes through Flask's test client, callbacks called directly."""

from __future__ import annotations

import csv
import io
import json
from contextvars import copy_context

import pyogrio
import pytest
from dash._callback_context import context_value
from dash._utils import AttributeDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard import create_app, ids
from dashboard.callbacks.details import update_details
from dashboard.callbacks.map import (
    update_activity_overlay,
    update_footprints,
    update_map_styles,
    update_period_label,
    zoom_to_selection,
)
from dashboard.callbacks.play import next_play_state
from dashboard.callbacks.selection import pick_selection
from dashboard.callbacks.table import update_flag_table
from dashboard.callbacks.url import sync_url_and_controls, update_download_links
from dashboard.filters import REVIEW_STATUSES
from geo.analysis import run_analysis
from geo.flags import FLAG_TYPES
from geo.settings import Settings
from layers.activity import find_activity_rasters
from layers.concessions import read_concessions
from layers.tables import read_national, read_production
from tests.conftest import write_field

HOSTILE_HOLDER = '<script>alert("x")</script>'
FORMULA_NAME = '=HYPERLINK("http://evil.example","click")'
ALL_SEVERITIES = ["high", "medium", "low"]


@pytest.fixture(scope="module")
def field_analysis(tmp_path_factory):
    """The small field analysed, with a hostile holder (B) and a formula holder (E)."""
    paths = write_field(tmp_path_factory.mktemp("dash"))
    concessions = read_concessions(paths["concessions"]).table
    concessions.loc[concessions["concession_id"] == "B", "holder"] = HOSTILE_HOLDER
    concessions.loc[concessions["concession_id"] == "E", "holder"] = FORMULA_NAME
    concessions["name"] = [f"Block {cid}" for cid in concessions["concession_id"]]
    analysis = run_analysis(
        concessions,
        read_production(paths["production"]).table,
        read_national(paths["national"]).table,
        find_activity_rasters(paths["activity"]),
        Settings(),
    )
    analysis.provenance.update(
        synthetic=True,
        inputs=[
            {"layer": f"activity {r.period}", "path": str(r.path)} for r in find_activity_rasters(paths["activity"])
        ],
    )
    return analysis


@pytest.fixture(scope="module")
def client(field_analysis):
    return create_app(field_analysis).server.test_client()


def controls(period_index=3, every=(), types=FLAG_TYPES, severities=ALL_SEVERITIES, holders=(), min_score=0, search="",
             reviews=REVIEW_STATUSES):  # fmt: skip
    return [period_index, list(every), list(types), list(severities), list(holders), min_score, search, list(reviews)]


def in_callback(function, *args, triggered: str):
    def run():
        context_value.set(AttributeDict(triggered_inputs=[{"prop_id": triggered, "value": None}]))
        return function(*args)

    return copy_context().run(run)


def test_page_and_layout_are_served_from_this_server(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "https://" not in html.split("<footer>")[0].replace("https://plotly.com", "")  # no CDN scripts or styles
    layout = client.get("/_dash-layout").get_json()
    text = json.dumps(layout)
    assert "SYNTHETIC DATA" in text and ids.FLAG_TABLE in text


def test_api_flags_geojson_honours_filters(client):
    response = client.get("/api/flags.geojson?type=activity_without_production&period=2019")
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    document = json.loads(response.get_data(as_text=True))
    assert "crs" not in document
    assert {(f["properties"]["flag_type"], f["properties"]["period"]) for f in document["features"]} == {
        ("activity_without_production", "2019")
    }
    # The holder comes back as data, not markup, in a type no browser renders as HTML.
    assert document["features"][0]["properties"]["holder"] == HOSTILE_HOLDER


def test_api_flags_geojson_reads_back_in_gdal(client, tmp_path):
    path = tmp_path / "flags.geojson"
    path.write_bytes(client.get("/api/flags.geojson").get_data())
    frame = pyogrio.read_dataframe(path)
    assert len(frame) > 5 and frame.crs.to_epsg() == 4326


def test_api_csv_is_spreadsheet_safe(client):
    text = client.get("/api/concession_stats.csv?period=2019").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["period"] for r in rows} == {"2019"}
    assert {r["holder"] for r in rows if r["concession_id"] == "E"} == {"'" + FORMULA_NAME}
    flags = client.get("/api/flags.csv?type=production_without_activity").get_data(as_text=True)
    flag_rows = list(csv.DictReader(io.StringIO(flags)))
    assert len(flag_rows) == 4 and {r["holder"] for r in flag_rows} == {"'" + FORMULA_NAME}


def test_api_concessions_filter(client):
    document = client.get("/api/concessions.geojson?q=block%20a").get_json(force=True)
    assert [f["properties"]["concession_id"] for f in document["features"]] == ["A"]
    everything = client.get("/api/concessions.geojson").get_json(force=True)
    assert len(everything["features"]) == 7


def test_map_layers_are_cached_by_etag(client):
    first = client.get("/map/flags.geojson")
    assert first.status_code == 200 and first.headers["Cache-Control"].startswith("public")
    again = client.get("/map/flags.geojson", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/map/nothing.geojson").status_code == 404


def test_activity_overlay_png(client):
    png = client.get("/map/activity/2018.png")
    assert png.status_code == 200 and png.get_data()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/map/activity/1999.png").status_code == 404


def test_flag_table_follows_filters(client):
    rows, count = update_flag_table(*controls(types=["production_without_activity"]))
    assert {r["flag_type"] for r in rows} == {"production_without_activity"} and len(rows) == 1
    assert count.startswith("1 of")
    every, _ = update_flag_table(*controls(every=["all"], types=["production_without_activity"]))
    assert len(every) == 4


def test_map_styles_follow_filters_without_geometry(client):
    flags_hideout, concession_hideout = update_map_styles(*controls(severities=["high"]), "concession:B")
    footprint_hideout = update_footprints(3)
    assert footprint_hideout == {"period": "2021"}
    assert concession_hideout["selected"] == "B" and concession_hideout["shown"] is None
    _, searched = update_map_styles(*controls(search="block"), "")
    assert searched["shown"] == {cid: True for cid in "ABCDEFG"}
    payload = json.dumps([flags_hideout, concession_hideout, footprint_hideout])
    assert "coordinates" not in payload and len(payload) < 5_000


def test_overlay_and_zoom(client):
    url, bounds, note = update_activity_overlay(0)
    assert url == "/map/activity/2018.png" and note.endswith("2018") and bounds[0][0] < bounds[1][0]
    assert update_period_label(1) == "2019"
    viewport = zoom_to_selection("concession:B")
    (south, west), (north, east) = viewport["bounds"]
    assert -20 < south < north < -19 and 31 < west < east < 33


def test_details_show_hostile_text_as_text(client):
    children = update_details("concession:B", 1)
    text = json.dumps([c.to_plotly_json() for c in children], default=str)
    assert HOSTILE_HOLDER.replace('"', '\\"') in text  # a plain string child: React renders it as text
    assert "dangerouslySetInnerHTML" not in text


def test_url_sets_controls_and_controls_set_url(client):
    out = in_callback(sync_url_and_controls, "?period=2019&severity=high&review=confirmed&selected=flag:x",
                      *controls(), "", triggered="url.search")  # fmt: skip
    assert out[1:4] == (1, [], list(FLAG_TYPES)) and out[4] == ["high"] and out[8] == ["confirmed"]
    assert out[9] == "flag:x"
    out = in_callback(sync_url_and_controls, "", *controls(period_index=2, search="MW"), "concession:A",
                      triggered="search.value")  # fmt: skip
    assert out[0] == "?period=2020&q=MW&selected=concession%3AA"


def test_download_links_carry_filters(client):
    links = update_download_links(*controls(types=["licence_overlap"]))
    assert all("type=licence_overlap" in link and "period=2021" in link for link in links)


def test_play_steps_then_stops():
    assert next_play_state(ids.PLAY, True, 5, 6) == (False, "❚❚ Pause", 0)  # at the end: start over
    assert next_play_state(ids.PLAY_TIMER, False, 3, 6) == (False, "❚❚ Pause", 4)
    assert next_play_state(ids.PLAY_TIMER, False, 4, 6) == (True, "▶ Play", 5)
    assert next_play_state(ids.PLAY, False, 2, 6) == (True, "▶ Play", 2)


def test_selection_from_table_and_map():
    assert pick_selection(ids.FLAG_TABLE, [{"flag_id": "mw-1"}], None, None) == "flag:mw-1"
    assert pick_selection(ids.CONCESSIONS_LAYER, [], None, {"properties": {"concession_id": "A"}}) == "concession:A"
    assert pick_selection(ids.FLAG_TABLE, [], None, None) == ""


def test_visit_plan_api(client):
    import gpxpy

    flags = client.get("/api/flags.geojson?type=activity_without_production").get_json(force=True)["features"]
    ids_ = [f["properties"]["flag_id"] for f in flags[:2]]
    query = "&".join(f"flag={i}" for i in ids_) + "&start=32.67,-18.97&days=1"
    gpx = gpxpy.parse(client.get(f"/api/visit-plan.gpx?{query}").get_data(as_text=True))
    assert [w.name for w in gpx.waypoints][0] == "BASE" and len(gpx.waypoints) == 2  # B's flags share one stop
    page = client.get(f"/api/visit-plan.html?{query}").get_data(as_text=True)
    assert page.count("<section class='site'") == 1 and "&lt;script&gt;" in page  # B's hostile holder, escaped
    bad = client.get("/api/visit-plan.gpx?start=Mutare")
    assert bad.status_code == 400 and "at least one flag" in bad.get_data(as_text=True)
    assert client.get(f"/api/visit-plan.exe?{query}").status_code == 404


def test_visit_panel_adds_flags_and_links_follow(client):
    from dashboard.callbacks.visits import added_flags, update_visit_links

    best = added_flags(ids.VISIT_ADD_BEST, "", [], controls(types=["activity_without_production"]))
    assert len(best) == 1  # one such flag in 2021
    again = added_flags(ids.VISIT_ADD_SELECTED, f"flag:{best[0]}", best, controls())
    assert again == best  # no duplicates
    links, summary = update_visit_links(best, "32.67,-18.97", 2, 10, ["yes"])
    assert summary.startswith("1 stop over 1 day(s)") and len(links) == 5
    assert links[0].href.startswith("/api/visit-plan.gpx?flag=") and "days=2" in links[0].href
    assert update_visit_links([], "", 2, 10, [])[0] == []


SAMPLE_ARGUMENTS = {"extension": "csv", "layer": "flags", "period": "2018", "path": "x", "filename": "x.js",
                    "package_name": "dash", "path_in_package_dist": "x.js", "fingerprinted_path": "dash.v1.min.js"}  # fmt: skip


def every_route_url(client) -> list[tuple[str, str]]:
    """(method, URL) of every rule the server has, with sample values for its arguments."""
    urls = []
    for rule in client.application.url_map.iter_rules():
        missing = set(rule.arguments) - set(SAMPLE_ARGUMENTS)
        assert not missing, f"add a sample value for {missing} of {rule.rule}"
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<{name}>", SAMPLE_ARGUMENTS[name])
            for converter in ("path", "string", "int"):
                url = url.replace(f"<{converter}:{name}>", SAMPLE_ARGUMENTS[name])
        method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"OPTIONS"})[0]
        urls.append((method, url))
    return urls


def test_security_headers_on_every_route(client):
    urls = every_route_url(client) + [("GET", "/no-such-page")]
    assert len(urls) > 15
    for method, url in urls:
        response = client.open(url, method=method)
        assert response.status_code < 500, url
        headers = response.headers
        csp = headers.get("Content-Security-Policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-eval'" not in csp, url
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["Referrer-Policy"] == "same-origin", url


def test_errors_reach_users_without_a_stack_trace(client, monkeypatch, caplog):
    import dashboard.api

    def broken(*_args, **_kwargs):
        raise RuntimeError("secret detail /home/analyst/private.gpkg")

    monkeypatch.setattr(dashboard.api, "csv_text", broken)
    with caplog.at_level("ERROR", logger="minewatch.server"):
        response = client.get("/api/flags.csv")
    body = response.get_data(as_text=True)
    assert response.status_code == 500 and response.mimetype == "text/plain"
    assert "reference" in body
    for leak in ("Traceback", "RuntimeError", "secret detail", "private.gpkg", ".py"):
        assert leak not in body
    reference = body.split("reference ")[1].split(")")[0]
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info[0] is RuntimeError  # the trace is in the server's log
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_page_title_is_escaped(field_analysis):
    page = create_app(field_analysis, title="</title><script>window.__x=1</script>").server.test_client().get("/")
    text = page.get_data(as_text=True)
    assert "<script>window.__x" not in text and "&lt;/title&gt;&lt;script&gt;" in text
    create_app(field_analysis)  # the module's other tests expect the plain app's state


def test_oversized_request_refused(client):
    response = client.post("/_dash-update-component", data=b"x" * (3 * 1024 * 1024), content_type="application/json")
    assert response.status_code == 413


API_ROUTES = ["/api/flags.geojson", "/api/flags.csv", "/api/concessions.geojson", "/api/concession_stats.csv",
              "/api/visit-plan.gpx", "/api/visit-plan.html", "/map/flags.geojson"]  # fmt: skip
QUERY_KEYS = ["period", "type", "severity", "holder", "min_score", "q", "review", "flag", "start", "days", "hours",
              "every", "selected", "x"]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(API_ROUTES),
    pairs=st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.text(max_size=40)), max_size=6),
    raw=st.text(max_size=60),
)
def test_any_query_string_gets_an_answer_not_a_server_error(client, route, pairs, raw):
    from urllib.parse import urlencode

    for query in (urlencode(pairs), raw):
        response = client.get(f"{route}?{query}")
        assert response.status_code in (200, 400, 404), (route, query, response.get_data(as_text=True)[:200])
