"""The whole analysis on the small field (see conftest): every flag where planted, none elsewhere."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from layers.concessions import read_concessions
from layers.results import read_analysis, write_analysis
from layers.tables import read_production
from tests.conftest import analyse_field


@pytest.fixture(scope="module")
def field_analysis(tmp_path_factory):
    from tests.conftest import write_field

    paths = write_field(tmp_path_factory.mktemp("field"))
    return paths, analyse_field(paths)


def flagged(analysis, flag_type):
    rows = analysis.flags[analysis.flags["flag_type"] == flag_type]
    return sorted(zip(rows["concession_id"].fillna("-"), rows["period"], strict=True))


def test_activity_without_production_only_for_b(field_analysis):
    _, analysis = field_analysis
    assert flagged(analysis, "activity_without_production") == [("B", y) for y in ("2018", "2019", "2020", "2021")]


def test_inactive_licence_application_every_year_expired_only_after_expiry(field_analysis):
    _, analysis = field_analysis
    expected = [("C", y) for y in ("2018", "2019", "2020", "2021")] + [("D", y) for y in ("2019", "2020", "2021")]
    assert flagged(analysis, "activity_in_inactive_licence") == sorted(expected)


def test_production_without_activity_for_e(field_analysis):
    _, analysis = field_analysis
    assert flagged(analysis, "production_without_activity") == [("E", y) for y in ("2018", "2019", "2020", "2021")]


def test_overlap_flagged_once_for_the_pair(field_analysis):
    _, analysis = field_analysis
    overlaps = analysis.flags[analysis.flags["flag_type"] == "licence_overlap"]
    assert overlaps[["concession_id", "other_concession_id"]].values.tolist() == [["F", "G"]]
    assert overlaps["area_ha"].iloc[0] == pytest.approx(18.0, rel=0.01)


def test_unlicensed_pit_found_where_it_is(field_analysis):
    _, analysis = field_analysis
    outside = analysis.flags[analysis.flags["flag_type"] == "unlicensed_activity"]
    assert sorted(outside["period"]) == ["2018", "2019", "2020", "2021"]
    # A 90 m radius pit: 2.54 ha, all outside.
    assert outside["area_ha"].to_numpy() == pytest.approx(np.pi * 90**2 / 1e4, rel=0.03)


def test_national_mismatch_only_in_2021(field_analysis):
    _, analysis = field_analysis
    assert flagged(analysis, "national_total_mismatch") == [("-", "2021")]
    row = analysis.national.set_index("period").loc["2021"]
    assert row["reported_carats"] == 30_000 and row["national_carats"] == 90_000


def test_clean_licence_raises_nothing(field_analysis):
    _, analysis = field_analysis
    assert "A" not in set(analysis.flags["concession_id"].dropna())
    assert "production_activity_mismatch" not in set(analysis.flags["flag_type"])


def test_active_area_is_the_pit_area(field_analysis):
    _, analysis = field_analysis
    stats = analysis.stats.set_index(["concession_id", "period"])
    # Pits are discs of radius 200, 220, 240, 260 m; pixelised at 10 m within 2 %.
    for year, radius in zip(("2018", "2019", "2020", "2021"), (200, 220, 240, 260), strict=True):
        assert stats.loc[("A", year), "active_ha"] == pytest.approx(np.pi * radius**2 / 1e4, rel=0.02)
    assert np.isnan(stats.loc[("A", "2018"), "new_active_ha"])
    grown = stats.loc[("A", "2019"), "active_ha"] - stats.loc[("A", "2018"), "active_ha"]
    assert stats.loc[("A", "2019"), "new_active_ha"] == pytest.approx(grown, rel=0.01)


def test_per_concession_active_area_never_exceeds_all_footprints(field_analysis):
    _, analysis = field_analysis
    for period, rows in analysis.stats.groupby("period"):
        total = analysis.footprints.loc[analysis.footprints["period"] == period, "area_ha"].sum()
        assert rows["active_ha"].sum() <= total + 1e-6


def test_flags_carry_reasons_with_their_numbers(field_analysis):
    _, analysis = field_analysis
    b = analysis.flags[analysis.flags["flag_type"] == "activity_without_production"].iloc[0]
    assert f"{b['active_ha']:,.1f} ha" in b["reason"]
    assert set(analysis.flags["severity"]) <= {"high", "medium", "low"}
    assert analysis.flags["score"].between(0.2, 1).all()
    assert analysis.flags["flag_id"].is_unique


def test_written_analysis_reads_back_the_same(field_analysis, tmp_path):
    _, analysis = field_analysis
    out = write_analysis(analysis, tmp_path / "out")
    again = read_analysis(out)
    assert sorted(again.flags["flag_id"]) == sorted(analysis.flags["flag_id"])
    pd.testing.assert_series_equal(
        again.stats["active_ha"].round(4), analysis.stats["active_ha"].round(4), check_names=False
    )
    assert again.periods == ["2018", "2019", "2020", "2021"]
    assert list(again.stats["concession_id"].unique()) == list(analysis.stats["concession_id"].unique())


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_flag_ids_stable_under_row_reordering(field_analysis, seed):
    paths, analysis = field_analysis
    rng = np.random.default_rng(seed)
    concessions = read_concessions(paths["concessions"]).table
    production = read_production(paths["production"]).table
    shuffled = analyse_field(
        paths,
        concessions=concessions.iloc[rng.permutation(len(concessions))],
        production=production.iloc[rng.permutation(len(production))],
    )
    assert sorted(shuffled.flags["flag_id"]) == sorted(analysis.flags["flag_id"])
