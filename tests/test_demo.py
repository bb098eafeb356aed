"""The bundled demo: every planted discrepancy is flagged where it was planted, nothing else.

``data/demo/scenario.json`` is the demo builder's record of what it planted (written by
``data/build_demo.py`` from its own geometry, not from minewatch's output).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pyproj import Geod

import app
from geo.flags import FLAG_TYPES
from layers.results import read_analysis

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    assert app.main([*_demo_argv(), "--out", str(out), "--quiet"]) == 0
    return read_analysis(out), json.loads((DEMO / "scenario.json").read_text())


def _demo_argv() -> list[str]:
    return [
        "analyze",
        "--concessions", str(DEMO / "concessions.gpkg"),
        "--production", str(DEMO / "production.csv"),
        "--national", str(DEMO / "national.csv"),
        "--activity", str(DEMO / "activity"),
        "--context", str(DEMO / "context.geojson"),
    ]  # fmt: skip


def raised(analysis, flag_type) -> set[tuple[str, str]]:
    rows = analysis.flags[analysis.flags["flag_type"] == flag_type]
    return set(zip(rows["concession_id"].fillna("-"), rows["period"], strict=True))


@pytest.mark.parametrize(
    "flag_type",
    ["activity_in_inactive_licence", "activity_without_production", "production_without_activity",
     "production_activity_mismatch"],
)  # fmt: skip
def test_concession_flags_exactly_where_planted(demo, flag_type):
    analysis, scenario = demo
    planted = {(case["concession_ids"][0], p) for case in scenario["flags"][flag_type] for p in case["periods"]}
    assert raised(analysis, flag_type) == planted


def test_unlicensed_activity_at_the_planted_pits(demo):
    analysis, scenario = demo
    (case,) = scenario["flags"]["unlicensed_activity"]
    flags = analysis.flags[analysis.flags["flag_type"] == "unlicensed_activity"]
    assert sorted(flags["period"]) == case["periods"]
    centroids = flags.to_crs(32736).centroid.to_crs(4326)
    distances = [Geod(ellps="WGS84").inv(case["lon"], case["lat"], p.x, p.y)[2] for p in centroids]
    assert max(distances) < case["radius_m"]
    expected = {e["period"]: e["outside_ha"] for e in case["evidence"]}
    for period, area in zip(flags["period"], flags["area_ha"], strict=True):
        assert area == pytest.approx(expected[period], rel=0.05)


def test_licence_overlap_pair(demo):
    analysis, scenario = demo
    (case,) = scenario["flags"]["licence_overlap"]
    flags = analysis.flags[analysis.flags["flag_type"] == "licence_overlap"]
    assert [sorted([a, b]) for a, b in zip(flags["concession_id"], flags["other_concession_id"], strict=True)] == [
        sorted(case["concession_ids"])
    ]
    assert flags["period"].iloc[0] == case["periods"][0]


def test_national_mismatch_only_in_the_planted_year(demo):
    analysis, scenario = demo
    (case,) = scenario["flags"]["national_total_mismatch"]
    assert raised(analysis, "national_total_mismatch") == {("-", p) for p in case["periods"]}


def test_every_flag_type_present_and_clean_areas_silent(demo):
    analysis, scenario = demo
    assert set(analysis.flags["flag_type"]) == set(FLAG_TYPES)
    flagged = set(analysis.flags["concession_id"].dropna()) | set(analysis.flags["other_concession_id"].dropna())
    assert not flagged & set(scenario["clean_concessions"])
    assert len(scenario["clean_concessions"]) >= 4


def test_demo_is_labelled_synthetic_and_national_totals_are_sourced(demo):
    analysis, _ = demo
    assert analysis.provenance["synthetic"] is True
    assert analysis.concessions["holder"].str.contains("(fictional)", regex=False).all()
    national = pd.read_csv(DEMO / "national.csv", dtype={"period": str})
    assert national["source"].str.len().gt(5).all()
    assert "2015" not in set(national["period"])  # no sourced figure: a gap, not a guess
    assert national.set_index("period").loc["2023", "carats"] == 4_914_000  # KPCS via Natural Diamond Council


def test_demo_is_small():
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 15 * 1024 * 1024


def test_demo_context_places_reach_the_saved_analysis(demo):
    analysis, _ = demo
    assert analysis.context is not None
    assert any(name.startswith("Mutare") for name in analysis.context["name"])
