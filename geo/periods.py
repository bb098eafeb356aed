"""Reporting periods: ``YYYY``, ``YYYY-Qn`` and ``YYYY-MM``.

A :class:`Period` knows its first and last day, so licences (dated) and rasters and
reports (by period) can be compared, and finer periods can be summed into coarser ones.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

_PATTERNS = (
    (re.compile(r"^(\d{4})$"), "year"),
    (re.compile(r"^(\d{4})-[Qq]([1-4])$"), "quarter"),
    (re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$"), "month"),
)
KIND_RANK = {"month": 0, "quarter": 1, "year": 2}


@dataclass(frozen=True, order=True)
class Period:
    """One reporting period, ordered by its first day then by length."""

    start: dt.date
    end: dt.date  # last day, inclusive
    label: str

    @property
    def kind(self) -> str:
        """``"year"``, ``"quarter"`` or ``"month"``."""
        if len(self.label) == 4:
            return "year"
        return "quarter" if "Q" in self.label else "month"

    def contains(self, other: Period) -> bool:
        """True when ``other`` lies entirely within this period."""
        return self.start <= other.start and other.end <= self.end

    def __str__(self) -> str:
        return self.label


def parse_period(text: object) -> Period:
    """Parse ``2021``, ``2021-Q3`` or ``2021-03`` into a :class:`Period`.

    Raises ``ValueError`` with the accepted forms when ``text`` is none of them. A year
    read from a spreadsheet as the number ``2021.0`` is accepted.
    """
    raw = str(text).strip()
    if re.fullmatch(r"\d{4}\.0+", raw):
        raw = raw.split(".")[0]
    for pattern, kind in _PATTERNS:
        match = pattern.match(raw)
        if not match:
            continue
        year = int(match.group(1))
        if kind == "year":
            return Period(dt.date(year, 1, 1), dt.date(year, 12, 31), f"{year}")
        if kind == "quarter":
            q = int(match.group(2))
            first_month = 3 * (q - 1) + 1
            last_day = calendar.monthrange(year, first_month + 2)[1]
            return Period(dt.date(year, first_month, 1), dt.date(year, first_month + 2, last_day), f"{year}-Q{q}")
        month = int(match.group(2))
        last_day = calendar.monthrange(year, month)[1]
        return Period(dt.date(year, month, 1), dt.date(year, month, last_day), f"{year}-{month:02d}")
    raise ValueError(f"{raw!r} is not a period; write YYYY, YYYY-Qn or YYYY-MM (e.g. 2021, 2021-Q3, 2021-03)")


def containing_period(period: Period, candidates: list[Period]) -> Period | None:
    """The candidate that contains ``period`` (the shortest if several), or None."""
    holders = [c for c in candidates if c.contains(period)]
    return min(holders, key=lambda c: c.end - c.start) if holders else None
