"""The in-force rule: may a licence be mined in a period?

A licence is in force in a period when it is in force on at least one day of it
(minewatch's reading of "its dates cover the period": a licence granted or ended
mid-year was legal for part of that year, so activity then is not flagged):

- ``active``: from ``granted`` (or always, when missing) to ``expires`` (or open-ended);
- ``application``: never;
- ``suspended``, ``revoked``: from ``granted`` until the day before ``status_date``;
  never when no ``status_date`` is given;
- ``expired``: from ``granted`` up to ``expires`` (or ``status_date`` when ``expires``
  is missing; never when neither is given).
"""

from __future__ import annotations

import pandas as pd

from geo.periods import Period


def in_force_until(row: pd.Series) -> pd.Timestamp | None:
    """The last day the licence in ``row`` may be mined, ``pd.Timestamp.max`` if open.

    Returns None when it is never in force.
    """
    status = row["status"]
    expires = row.get("expires", pd.NaT)
    status_date = row.get("status_date", pd.NaT)
    open_end = pd.Timestamp.max.normalize()
    if status == "application":
        return None
    if status == "active":
        return expires if pd.notna(expires) else open_end
    if status in ("suspended", "revoked"):
        if pd.isna(status_date):
            return None
        end = status_date - pd.Timedelta(days=1)
        return min(end, expires) if pd.notna(expires) else end
    if status == "expired":
        if pd.notna(expires):
            return expires
        return status_date if pd.notna(status_date) else None
    raise ValueError(f"unknown status {status!r}")


def in_force(concessions: pd.DataFrame, period: Period) -> pd.Series:
    """Boolean Series, aligned on ``concessions``: in force on at least one day of ``period``."""
    first_day = pd.Timestamp(period.start)
    last_day = pd.Timestamp(period.end)
    result = []
    for _, row in concessions.iterrows():
        until = in_force_until(row)
        granted = row.get("granted", pd.NaT)
        starts = granted if pd.notna(granted) else pd.Timestamp.min
        result.append(until is not None and starts <= last_day and until >= first_day and starts <= until)
    return pd.Series(result, index=concessions.index, dtype=bool)


def in_force_table(concessions: pd.DataFrame, periods: list[Period]) -> pd.DataFrame:
    """Concessions x periods table of booleans (columns are period labels)."""
    return pd.DataFrame({p.label: in_force(concessions, p) for p in periods}, index=concessions.index)
