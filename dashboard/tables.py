"""Pure builders: the flags table's rows, and what a selection points at."""

from __future__ import annotations

import pandas as pd

from dashboard.filters import Filters, filter_flags
from geo.flags import FLAG_LABELS

ROW_COLUMNS = ["flag_id", "score", "severity", "flag_type", "period", "concession_id", "holder", "area_ha", "reason"]
OPTIONAL_COLUMNS = ["review_status"]


def flag_rows(flags: pd.DataFrame, filters: Filters) -> list[dict]:
    """Table rows (plain dicts) of the flags the filters let through, worst first."""
    columns = ROW_COLUMNS + [c for c in OPTIONAL_COLUMNS if c in flags]
    shown = flags.loc[filter_flags(flags, filters), columns].copy()
    shown["label"] = shown["flag_type"].map(FLAG_LABELS)
    shown = shown.sort_values(["score", "flag_id"], ascending=[False, True])
    shown = shown.astype(object).where(shown.notna(), None)
    return shown.to_dict("records")


def selection_of(kind_and_id: str) -> tuple[str, str]:
    """Split ``"flag:mw-..."`` or ``"concession:MW-007"`` into (kind, id); ("", "") if neither."""
    kind, _, identifier = (kind_and_id or "").partition(":")
    return (kind, identifier) if kind in ("flag", "concession") and identifier else ("", "")
