"""The view's filters, shared by the map, the table, the charts, the URL and the API.

One :class:`Filters` value is parsed from a query string (``?period=2021&type=...``),
applied to the flags table by :func:`filter_flags`, and written back into a query
string by :meth:`Filters.to_query`, so a deep link, a download and the screen always
show the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlencode

import pandas as pd

from geo.flags import FLAG_TYPES, SEVERITIES

ALL_PERIODS = "all"
REVIEW_STATUSES = ("new", "under review", "confirmed", "dismissed")


@dataclass(frozen=True)
class Filters:
    """What the user asked to see. Empty tuples mean "no restriction"."""

    period: str = ALL_PERIODS
    flag_types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    holders: tuple[str, ...] = ()
    min_score: float = 0.0
    query: str = ""
    review_statuses: tuple[str, ...] = ()
    selected: str = ""  # "flag:ID" or "concession:ID"

    def to_query(self, include_selection: bool = True) -> str:
        """The filters as a URL query string (without the leading ``?``)."""
        pairs: list[tuple[str, str]] = []
        if self.period != ALL_PERIODS:
            pairs.append(("period", self.period))
        pairs += [("type", t) for t in self.flag_types]
        pairs += [("severity", s) for s in self.severities]
        pairs += [("holder", h) for h in self.holders]
        if self.min_score > 0:
            pairs.append(("min_score", f"{self.min_score:g}"))
        if self.query:
            pairs.append(("q", self.query))
        pairs += [("review", r) for r in self.review_statuses]
        if include_selection and self.selected:
            pairs.append(("selected", self.selected))
        return urlencode(pairs)

    def with_period(self, period: str) -> Filters:
        """A copy showing ``period``."""
        return replace(self, period=period or ALL_PERIODS)


def parse_filters(query: str | dict) -> Filters:
    """Filters from a query string (``"a=1&b=2"``, leading ``?`` allowed) or a dict of lists.

    Unknown flag types and severities are ignored rather than refused, so an old link
    still opens; ``type=none`` means every type was unticked (nothing shown).
    """
    if isinstance(query, str):
        values = parse_qs(query.lstrip("?"), keep_blank_values=False)
    else:
        values = {k: v if isinstance(v, list) else [v] for k, v in query.items()}

    def many(name: str, allowed=None) -> tuple[str, ...]:
        items = []
        for value in values.get(name, []):
            items += [part for part in str(value).split(",") if part]
        return tuple(i for i in items if allowed is None or i in allowed)

    try:
        min_score = float(values.get("min_score", ["0"])[0])
    except ValueError:
        min_score = 0.0
    return Filters(
        period=values.get("period", [ALL_PERIODS])[0] or ALL_PERIODS,
        flag_types=many("type", (*FLAG_TYPES, "none")),
        severities=many("severity", (*SEVERITIES, "none")),
        holders=many("holder"),
        min_score=min(max(min_score, 0.0), 1.0),
        query=values.get("q", [""])[0].strip()[:200],
        review_statuses=many("review", (*REVIEW_STATUSES, "none")),
        selected=values.get("selected", [""])[0][:200],
    )


def filter_flags(flags: pd.DataFrame, filters: Filters, *, by_period: bool = True) -> pd.Series:
    """Boolean mask of the flags the filters let through.

    ``by_period=False`` ignores the period (the table lists every period's flags when
    the user wants a field's history). The text query matches concession ids, holders
    and reasons, case-insensitively, as plain text.
    """
    keep = pd.Series(True, index=flags.index)
    if by_period and filters.period != ALL_PERIODS:
        keep &= flags["period"].astype(str) == filters.period
    if filters.flag_types:
        keep &= flags["flag_type"].isin(filters.flag_types)
    if filters.severities:
        keep &= flags["severity"].isin(filters.severities)
    if filters.holders:
        keep &= flags["holder"].isin(filters.holders)
    if filters.min_score > 0:
        keep &= flags["score"] >= filters.min_score
    if filters.review_statuses and "review_status" in flags:
        keep &= flags["review_status"].isin(filters.review_statuses)
    if filters.query:
        needle = filters.query.lower()
        haystack = (
            flags["concession_id"].fillna("")
            + " "
            + flags["other_concession_id"].fillna("")
            + " "
            + flags["holder"].fillna("")
            + " "
            + flags["reason"].fillna("")
        ).str.lower()
        keep &= haystack.str.contains(needle, regex=False)
    return keep


def filter_concessions(concessions: pd.DataFrame, filters: Filters) -> pd.Series:
    """Boolean mask of concessions matching the holder filter and the text query."""
    keep = pd.Series(True, index=concessions.index)
    if filters.holders:
        keep &= concessions["holder"].isin(filters.holders)
    if filters.query:
        needle = filters.query.lower()
        names = concessions["name"].fillna("") if "name" in concessions else ""
        text = concessions["concession_id"].astype(str) + " " + names + " " + concessions["holder"].fillna("")
        keep &= text.str.lower().str.contains(needle, regex=False)
    return keep


def from_controls(
    periods: list[str],
    period_index: int | None,
    period_all: list[str] | None,
    flag_types: list[str] | None,
    severities: list[str] | None,
    holders: list[str] | None,
    min_score: float | None,
    search: str | None,
    review_statuses: list[str] | None = None,
    selected: str | None = "",
) -> tuple[Filters, str]:
    """Filters from the control values, and the period the map shows.

    Everything ticked means no restriction (so links stay short and future flag types
    are not hidden by an old link).
    """
    map_period = periods[int(period_index)] if periods and period_index is not None else ""
    types = tuple(flag_types or ())
    levels = tuple(severities or ())
    reviews = tuple(REVIEW_STATUSES if review_statuses is None else review_statuses)
    filters = Filters(
        period=ALL_PERIODS if period_all else (map_period or ALL_PERIODS),
        flag_types=() if set(types) >= set(FLAG_TYPES) else types or ("none",),
        severities=() if set(levels) >= set(SEVERITIES) else levels or ("none",),
        holders=tuple(holders or ()),
        min_score=float(min_score or 0.0),
        query=(search or "").strip()[:200],
        review_statuses=() if set(reviews) >= set(REVIEW_STATUSES) else reviews or ("none",),
        selected=selected or "",
    )
    return filters, map_period


EVERY_PERIOD = "every"


def page_query(filters: Filters, map_period: str) -> str:
    """The page's address-bar query: the map's period, ``every=1`` when the table lists
    every period's flags, then the filters and the selection."""
    head = [("period", map_period)] if map_period else []
    if filters.period == ALL_PERIODS:
        head.append((EVERY_PERIOD, "1"))
    rest = replace(filters, period=ALL_PERIODS).to_query()
    return "&".join(part for part in (urlencode(head), rest) if part)


def controls_from_query(periods: list[str], query: str) -> tuple:
    """Control values for a page query: (period index, every-period checklist, flag types,
    severities, holders, minimum score, search text, review statuses, selection). Unknown
    or missing values fall back to the defaults (latest period, everything ticked)."""
    filters = parse_filters(query)
    every = EVERY_PERIOD in parse_qs(query.lstrip("?"))
    index = periods.index(filters.period) if filters.period in periods else max(len(periods) - 1, 0)
    return (
        index,
        [ALL_PERIODS] if every else [],
        [] if filters.flag_types == ("none",) else list(filters.flag_types or FLAG_TYPES),
        [] if filters.severities == ("none",) else list(filters.severities or SEVERITIES),
        list(filters.holders),
        filters.min_score,
        filters.query,
        [] if filters.review_statuses == ("none",) else list(filters.review_statuses or REVIEW_STATUSES),
        filters.selected,
    )
