"""Reporting periods: parsing, first/last days, ordering, containment."""

from __future__ import annotations

import datetime as dt

import pytest

from geo.periods import Period, containing_period, parse_period


@pytest.mark.parametrize(
    ("text", "label", "start", "end", "kind"),
    [
        ("2021", "2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31), "year"),
        ("2021-Q1", "2021-Q1", dt.date(2021, 1, 1), dt.date(2021, 3, 31), "quarter"),
        ("2021-Q3", "2021-Q3", dt.date(2021, 7, 1), dt.date(2021, 9, 30), "quarter"),
        ("2021-q4", "2021-Q4", dt.date(2021, 10, 1), dt.date(2021, 12, 31), "quarter"),
        ("2021-03", "2021-03", dt.date(2021, 3, 1), dt.date(2021, 3, 31), "month"),
        ("2024-02", "2024-02", dt.date(2024, 2, 1), dt.date(2024, 2, 29), "month"),  # leap year
        ("2023-02", "2023-02", dt.date(2023, 2, 1), dt.date(2023, 2, 28), "month"),
        ("2021-12", "2021-12", dt.date(2021, 12, 1), dt.date(2021, 12, 31), "month"),
        (" 2021 ", "2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31), "year"),
        ("2021.0", "2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31), "year"),  # a spreadsheet number
        (2021, "2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31), "year"),
        (2021.0, "2021", dt.date(2021, 1, 1), dt.date(2021, 12, 31), "year"),
    ],
)
def test_accepted_forms(text, label, start, end, kind):
    period = parse_period(text)
    assert (period.label, period.start, period.end, period.kind) == (label, start, end, kind)
    assert str(period) == label


@pytest.mark.parametrize(
    "text",
    [
        "2021-13",
        "2021-00",
        "21",
        "2021Q3",
        "2021-Q0",
        "2021-Q5",
        "2021-3",
        "2021/03",
        "Q3-2021",
        "2021.5",
        "",
        None,
        "2021-03-01",
        "20210",
    ],
)
def test_refused_forms_name_the_accepted_ones(text):
    with pytest.raises(ValueError, match="YYYY, YYYY-Qn or YYYY-MM") as info:
        parse_period(text)
    assert repr(str(text).strip()) in str(info.value)


def test_ordered_by_first_day_then_by_length():
    periods = [parse_period(t) for t in ("2021", "2021-Q1", "2020-12", "2021-01", "2021-Q2")]
    assert [p.label for p in sorted(periods)] == ["2020-12", "2021-01", "2021-Q1", "2021", "2021-Q2"]


def test_equal_labels_are_equal_periods():
    assert parse_period("2021-q3") == parse_period("2021-Q3")
    assert len({parse_period("2021"), parse_period(2021), parse_period("2021.0")}) == 1


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("2021", "2021-Q3", True),
        ("2021", "2021-12", True),
        ("2021-Q3", "2021-09", True),
        ("2021-Q3", "2021-10", False),
        ("2021-Q3", "2021", False),
        ("2021", "2022-01", False),
        ("2021-03", "2021-03", True),
    ],
)
def test_contains(outer, inner, expected):
    assert parse_period(outer).contains(parse_period(inner)) is expected


def test_containing_period_prefers_the_shortest():
    candidates = [parse_period(t) for t in ("2021", "2021-Q3", "2022", "2021-Q4")]
    assert containing_period(parse_period("2021-08"), candidates).label == "2021-Q3"
    assert containing_period(parse_period("2021-Q2"), candidates).label == "2021"
    assert containing_period(parse_period("2023"), candidates) is None
    assert containing_period(parse_period("2021"), [parse_period("2021-Q1")]) is None


def test_period_is_frozen():
    period = parse_period("2021")
    assert isinstance(period, Period)
    with pytest.raises(AttributeError):
        period.label = "2022"  # type: ignore[misc]
