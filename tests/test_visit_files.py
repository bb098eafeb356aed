"""A visit plan's files: GPX read back by gpxpy and by GDAL, GeoJSON, CSV, the briefing."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import gpxpy
import pyogrio
import pytest

from dashboard.briefing import briefing_html
from geo.visit_export import gpx_text, plan_csv_text, plan_geojson_text
from geo.visits import Stop, TripSettings, plan_visits

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = '<b>Bold & "quoted"</b>'


@pytest.fixture
def plan():
    stops = [
        Stop("S01", 32.35, -19.59, ["f1", "f2"], ["unlicensed_activity", "licence_overlap"],
             [f"12.0 ha outside every licence near {HOSTILE}", "overlap"], "MW-1", HOSTILE, 0.9),
        Stop("S02", 32.40, -19.62, ["f3"], ["activity_without_production"], ["35 ha and no carats"], "MW-2", "h", 0.8),
        Stop("S03", 32.30, -19.50, ["f4"], ["production_without_activity"], ["40,000 ct, 0 ha"], "MW-3", "h", 0.7),
    ]  # fmt: skip
    return plan_visits(stops, "Mutare", 32.67, -18.97, TripSettings(days=2, hours_per_day=6.5))


def test_gpx_reads_back_in_gpxpy(plan):
    gpx = gpxpy.parse(gpx_text(plan))
    names = [w.name for w in gpx.waypoints]
    assert names[0] == "BASE" and len(names) == 1 + len(plan.stops)
    first = gpx.waypoints[1]
    assert (first.longitude, first.latitude) == (pytest.approx(plan.days[0][0].lon), pytest.approx(plan.days[0][0].lat))
    assert any(HOSTILE in (w.description or "") for w in gpx.waypoints)  # text, escaped by the XML writer
    assert [r.name for r in gpx.routes] == [f"Day {d}" for d in range(1, len(plan.days) + 1)]
    assert all(r.points[0].name == "BASE" and r.points[-1].name == "BASE" for r in gpx.routes)


def test_gpx_reads_back_in_gdal(plan, tmp_path):
    path = tmp_path / "plan.gpx"
    path.write_text(gpx_text(plan), encoding="utf-8")
    layers = [name for name, _ in pyogrio.list_layers(path)]
    assert {"waypoints", "routes", "route_points"} <= set(layers)
    waypoints = pyogrio.read_dataframe(path, layer="waypoints")
    assert len(waypoints) == 1 + len(plan.stops)
    assert waypoints.crs.to_epsg() == 4326
    assert waypoints.geometry.x.between(32, 33).all()
    assert len(pyogrio.read_dataframe(path, layer="routes")) == len(plan.days)


def test_geojson_and_csv(plan):
    document = json.loads(plan_geojson_text(plan))
    kinds = [f["properties"]["kind"] for f in document["features"]]
    assert kinds.count("stop") == len(plan.stops) and kinds.count("route") == len(plan.days) and kinds[0] == "base"
    rows = list(csv.DictReader(io.StringIO(plan_csv_text(plan))))
    assert [(int(r["day"]), int(r["order"])) for r in rows][0] == (1, 1)
    assert [r["stop_id"] for r in rows] == [s.stop_id for s in plan.stops]


def test_briefing_has_a_cover_and_one_page_per_stop(plan):
    page = briefing_html(plan, None)
    assert page.count("<section class='site'") == len(plan.stops)
    assert "@page { size: A4" in page and "break-before: page" in page
    assert HOSTILE not in page and "&lt;b&gt;Bold &amp; &quot;quoted&quot;&lt;/b&gt;" in page
    for stop in plan.stops:
        section = page.split(f"id='{stop.stop_id}'")[1].split("</section>")[0]
        assert "UTM, WGS 84" in section and "UTM, Arc 1950" in section and "Degrees, minutes, seconds" in section
    assert len(re.findall(r"<svg", page)) == 1 + len(plan.stops)  # itinerary map, then a site map each


@pytest.mark.browser
def test_plan_visits_cli_on_the_demo_writes_every_file(tmp_path):
    demo = ROOT / "data" / "demo"
    results = tmp_path / "results"
    analyze = [sys.executable, str(ROOT / "app.py"), "analyze", "--quiet",
               "--concessions", str(demo / "concessions.gpkg"), "--production", str(demo / "production.csv"),
               "--national", str(demo / "national.csv"), "--activity", str(demo / "activity"),
               "--context", str(demo / "context.geojson"), "--out", str(results)]  # fmt: skip
    subprocess.run(analyze, check=True, capture_output=True)
    out = tmp_path / "plan"
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "plan-visits", "--flags", str(results / "flags.geojson"),
         "--start", "Mutare", "--max-sites", "5", "--days", "2", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "5 stops over 2 day(s) from Mutare" in result.stdout
    assert {p.name for p in out.iterdir()} == {"itinerary.gpx", "itinerary.geojson", "itinerary.csv", "briefing.html",
                                               "briefing.pdf"}  # fmt: skip
    assert (out / "briefing.pdf").read_bytes()[:5] == b"%PDF-"
    pages = len(re.findall(rb"/Type\s*/Page[^s]", (out / "briefing.pdf").read_bytes()))
    assert pages == 1 + 5  # a cover, then one A4 page per site
    bad = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "plan-visits", "--flags", str(results / "flags.geojson"),
         "--start", "Atlantis", "--out", str(out)], capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "--start: 'Atlantis' is neither LON,LAT nor a known place" in bad.stderr
