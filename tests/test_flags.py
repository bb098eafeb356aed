"""Each flag type on hand-made tables: raised past its threshold, silent before it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from geo import flags
from geo.settings import Settings

DEFAULTS = Settings()


def stats(**columns) -> pd.DataFrame:
    base = {
        "concession_id": "K1",
        "period": "2021",
        "holder": "Kappa Mining (fictional)",
        "status": "active",
        "mineral": "diamond",
        "in_force": True,
        "licence_ha": 500.0,
        "observed_ha": 500.0,
        "observed_fraction": 1.0,
        "active_ha": 0.0,
        "new_active_ha": 0.0,
        "uncovered_active_ha": 0.0,
        "carats": np.nan,
        "value_usd": np.nan,
        "granted": pd.Timestamp("2010-01-01"),
        "expires": pd.NaT,
        "status_date": pd.NaT,
    }
    n = max((len(v) for v in columns.values() if isinstance(v, list)), default=1)
    frame = pd.DataFrame({k: [v] * n for k, v in base.items()})
    for key, value in columns.items():
        frame[key] = value
    return frame


@pytest.mark.parametrize(
    ("active_ha", "carats", "raised"),
    [(5.0, np.nan, True), (42.1, 0.0, True), (4.9, np.nan, False), (42.1, 10.0, False)],
)
def test_activity_without_production(active_ha, carats, raised):
    result = flags.without_production_flags(stats(active_ha=active_ha, carats=carats), DEFAULTS)
    assert bool(result) is raised
    if raised:
        assert f"{active_ha:,.1f} ha" in result[0]["reason"]


def test_activity_without_production_needs_a_licence_in_force():
    assert flags.without_production_flags(stats(active_ha=50.0, in_force=False), DEFAULTS) == []


@pytest.mark.parametrize(
    ("active_ha", "observed_fraction", "raised"),
    [(0.0, 1.0, True), (0.49, 0.9, True), (0.5, 1.0, False), (0.0, 0.3, False)],
)
def test_production_without_activity(active_ha, observed_fraction, raised):
    table = stats(active_ha=active_ha, carats=40_000.0, observed_fraction=observed_fraction)
    assert bool(flags.without_activity_flags(table, DEFAULTS)) is raised


@pytest.mark.parametrize(("uncovered", "raised"), [(1.0, True), (0.99, False)])
def test_activity_in_inactive_licence(uncovered, raised):
    table = stats(in_force=False, status="application", active_ha=uncovered, uncovered_active_ha=uncovered)
    result = flags.inactive_licence_flags(table, {}, DEFAULTS)
    assert bool(result) is raised
    if raised:
        assert "application" in result[0]["reason"]


def test_activity_in_licence_in_force_is_not_inactive():
    assert flags.inactive_licence_flags(stats(in_force=True, uncovered_active_ha=30.0), {}, DEFAULTS) == []


def test_production_activity_mismatch_against_the_median():
    ratios = [1000, 1100, 900, 1050, 5000, 240]  # carats per ha; median 1025
    table = stats(concession_id=[f"K{i}" for i in range(6)], active_ha=[10.0] * 6, carats=[r * 10.0 for r in ratios])
    result = flags.mismatch_flags(table, DEFAULTS)
    assert sorted(r["concession_id"] for r in result) == ["K4", "K5"]  # 4.9x above, 4.3x below
    assert all(r["median_carats_per_active_ha"] == pytest.approx(1025) for r in result)


def test_mismatch_compares_within_a_mineral_only():
    table = stats(
        concession_id=["G1", "G2", "G3", "D1", "D2", "D3"],
        mineral=["gold"] * 3 + ["diamond"] * 3,
        active_ha=[10.0] * 6,
        carats=[10.0, 11.0, 12.0, 100_000.0, 110_000.0, 120_000.0],
    )
    assert flags.mismatch_flags(table, DEFAULTS) == []


def test_unlicensed_activity_threshold():
    outside = pd.DataFrame(
        {
            "period": ["2021", "2021"],
            "area_ha": [1.0, 0.99],
            "footprint_ha": [3.0, 3.0],
            "lon": [32.3, 32.4],
            "lat": [-19.6, -19.6],
            "geometry": [shapely.box(0, 0, 100, 100), shapely.box(0, 0, 99, 100)],
        }
    )
    result = flags.unlicensed_flags(outside, DEFAULTS)
    assert [r["area_ha"] for r in result] == [1.0]


def test_licence_overlap_threshold():
    overlaps = pd.DataFrame(
        {
            "concession_id": ["A", "C"],
            "other_concession_id": ["B", "D"],
            "holder": ["a", "c"],
            "other_holder": ["b", "d"],
            "shared_ha": [0.1, 0.09],
            "first_period": ["2019", "2019"],
            "last_period": ["2021", "2021"],
            "geometry": [None, None],
        }
    )
    result = flags.overlap_flags(overlaps, DEFAULTS)
    assert [(r["concession_id"], r["other_concession_id"]) for r in result] == [("A", "B")]
    assert "2019-2021" in result[0]["reason"]


@pytest.mark.parametrize(
    ("reported", "raised"), [(8_900.0, True), (9_100.0, False), (11_000.0, False), (11_100.0, True)]
)
def test_national_total_mismatch(reported, raised):
    comparison = pd.DataFrame(
        {
            "country": ["Zimbabwe"],
            "period": ["2019"],
            "national_carats": [10_000.0],
            "reported_carats": [reported],
            "reports": [3],
        }
    )
    assert bool(flags.national_flags(comparison, DEFAULTS)) is raised


def test_national_total_without_any_report_is_not_judged():
    comparison = pd.DataFrame(
        {
            "country": ["Zimbabwe"],
            "period": ["2015"],
            "national_carats": [10_000.0],
            "reported_carats": [0.0],
            "reports": [0],
        }
    )
    assert flags.national_flags(comparison, DEFAULTS) == []


def test_thresholds_follow_settings():
    strict = Settings(no_production_min_active_ha=50.0)
    assert flags.without_production_flags(stats(active_ha=42.1), strict) == []


def test_score_and_severity_grow_with_the_finding():
    small, large = flags.score_for(0.5, 10), flags.score_for(50, 10)
    assert 0.2 <= small < large < 1
    assert flags.severity_for(small) == "low" and flags.severity_for(large) == "high"


def test_flag_id_depends_on_type_period_and_subject_only():
    assert flags.flag_id("licence_overlap", "2019", "A|B") == flags.flag_id("licence_overlap", "2019", "A|B")
    assert flags.flag_id("licence_overlap", "2019", "A|B") != flags.flag_id("licence_overlap", "2020", "A|B")
