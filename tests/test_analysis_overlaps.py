"""The overlap table, worked on arrays of all pairs, equals the plain per-pair loop it replaced."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from geo.analysis import _overlap_table, _periods_together
from geo.overlay import area_ha, licence_overlaps

PERIODS = ["2019", "2020", "2021", "2022"]


def loop_overlap_table(concessions, licences, in_force):
    """The original implementation: one pair at a time."""
    rows = []
    for i, j, shared in licence_overlaps(licences):
        together = [label for label in in_force.columns if in_force.at[i, label] and in_force.at[j, label]]
        if not together:
            continue
        first, second = sorted([i, j], key=lambda k: concessions.at[k, "concession_id"])
        rows.append(
            {
                "concession_id": concessions.at[first, "concession_id"],
                "other_concession_id": concessions.at[second, "concession_id"],
                "holder": concessions.at[first, "holder"],
                "shared_ha": float(area_ha(np.array([shared]))[0]),
                "first_period": together[0],
                "last_period": together[-1],
                "geometry": shared,
            }
        )
    columns = ["concession_id", "other_concession_id", "holder", "shared_ha", "first_period", "last_period", "geometry"]
    return pd.DataFrame(rows, columns=columns)


def field():
    """Three licences overlapping each other, in force in different periods, plus strays.

    Ids are out of order (the pair's smaller id is sometimes the later licence), one
    holder is missing, one pair is never in force together and one licence overlaps nothing.
    """
    concessions = pd.DataFrame(
        {
            "concession_id": ["Z9", "A1", "M5", "Q7", "B2"],
            "holder": ["Zed", None, "Em", "Cue", "Bee"],
        }
    )
    licences = np.array(
        [
            shapely.box(0, 0, 1000, 1000),
            shapely.box(500, 500, 1500, 1500),
            shapely.box(800, 0, 1800, 700),
            shapely.box(5000, 5000, 6000, 6000),  # overlaps B2, never in force with it
            shapely.box(5500, 5500, 6500, 6500),
        ],
        dtype=object,
    )
    in_force = pd.DataFrame(
        [
            [True, True, False, False],  # Z9: 2019-2020
            [False, True, True, True],  # A1: 2020-2022
            [True, False, True, False],  # M5: 2019 and 2021
            [True, False, False, False],
            [False, False, True, True],
        ],
        columns=PERIODS,
    )
    return concessions, licences, in_force


def test_vectorised_overlap_table_equals_the_loop():
    concessions, licences, in_force = field()
    expected = loop_overlap_table(concessions, licences, in_force)
    got = _overlap_table(concessions, licences, in_force)
    pd.testing.assert_frame_equal(got.drop(columns="geometry"), expected.drop(columns="geometry"), check_exact=True)
    assert [g.wkb for g in got["geometry"]] == [g.wkb for g in expected["geometry"]]
    # Worked out by hand: Z9-A1 in 2020, Z9-M5 in 2019, A1-M5 in 2021; Q7-B2 never together.
    named = got[["concession_id", "other_concession_id", "holder", "first_period", "last_period"]].fillna("-")
    assert named.values.tolist() == [
        ["A1", "Z9", "-", "2020", "2020"],
        ["M5", "Z9", "Em", "2019", "2019"],
        ["A1", "M5", "-", "2021", "2021"],
    ]
    assert got["shared_ha"].tolist() == [25.0, 14.0, 14.0]


def test_overlap_table_spans_first_to_last_period_together():
    concessions, licences, in_force = field()
    in_force.loc[0] = [True, True, True, True]  # Z9 now always in force: with A1 2020-2022
    got = _overlap_table(concessions, licences, in_force).set_index(["concession_id", "other_concession_id"])
    assert tuple(got.loc[("A1", "Z9"), ["first_period", "last_period"]]) == ("2020", "2022")
    assert tuple(got.loc[("M5", "Z9"), ["first_period", "last_period"]]) == ("2019", "2021")
    pd.testing.assert_frame_equal(
        _overlap_table(concessions, licences, in_force).drop(columns="geometry"),
        loop_overlap_table(concessions, licences, in_force).drop(columns="geometry"),
    )


def test_overlap_table_empty_without_pairs_or_periods():
    concessions, licences, in_force = field()
    apart = np.array([shapely.box(10_000 * k, 0, 10_000 * k + 100, 100) for k in range(5)], dtype=object)
    for table in (_overlap_table(concessions, apart, in_force), _overlap_table(concessions, licences, in_force[[]])):
        assert table.empty and list(table.columns) == list(loop_overlap_table(concessions, apart, in_force).columns)


def test_periods_together_first_and_last_column():
    force = np.array([[True, False, True, True], [True, True, False, True], [False, False, False, False]])
    together, first, last = _periods_together(force, np.array([0, 0, 1]), np.array([1, 2, 2]))
    assert together.tolist() == [True, False, False]
    assert (first[0], last[0]) == (0, 3)
