"""Canonical column names and value rules of minewatch's input tables (see DESIGN.md)."""

from __future__ import annotations

import math

CONCESSION_REQUIRED = ("concession_id", "holder", "status")
CONCESSION_DATES = ("granted", "expires", "status_date")
CONCESSION_OPTIONAL = ("name", "mineral", "licence_type", *CONCESSION_DATES, "country", "synthetic")
PRODUCTION_REQUIRED = ("concession_id", "period", "carats")
PRODUCTION_OPTIONAL = ("value_usd", "source")
NATIONAL_REQUIRED = ("country", "period", "carats")
NATIONAL_OPTIONAL = ("value_usd", "source")

STATUSES = ("active", "suspended", "expired", "revoked", "application")
# Words cadastres use for the same states, matched case-insensitively.
STATUS_SYNONYMS = {
    "granted": "active",
    "valid": "active",
    "in force": "active",
    "pending": "application",
    "applied": "application",
    "cancelled": "revoked",
    "canceled": "revoked",
    "lapsed": "expired",
}


def normalise_status(value: object) -> str:
    """Return the canonical status for ``value`` (any case, surrounding spaces ignored).

    Raises ``ValueError`` listing the accepted values.
    """
    text = "" if value is None else " ".join(str(value).split()).lower()
    if text in STATUSES:
        return text
    if text in STATUS_SYNONYMS:
        return STATUS_SYNONYMS[text]
    raise ValueError(f"{value!r} is not one of {', '.join(STATUSES)}")


def normalise_identifier(value: object) -> str | None:
    """A concession id as text: ``12.0`` read from a spreadsheet becomes ``"12"``."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def truthy(value: object) -> bool:
    """True for 1, true, yes, y (any case); False for blanks and anything else."""
    return str(value).strip().lower() in {"1", "1.0", "true", "yes", "y"}
