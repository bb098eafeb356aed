"""Thin callbacks, one module per panel; importing this package registers them all.

Each callback unpacks its inputs, calls one pure builder, and returns. Filters are read
from the controls by :func:`controls`, so every panel sees the same :class:`Filters`.
"""

from dash import Input

from dashboard import ids

FILTER_INPUTS = [
    Input(ids.PERIOD, "value"),
    Input(ids.PERIOD_ALL, "value"),
    Input(ids.FLAG_TYPES, "value"),
    Input(ids.SEVERITIES, "value"),
    Input(ids.HOLDERS, "value"),
    Input(ids.MIN_SCORE, "value"),
    Input(ids.SEARCH, "value"),
    Input(ids.REVIEW_FILTER, "value"),
]


def register() -> None:
    """Import every panel's module (their @callback decorators register them)."""
    from dashboard.callbacks import details, map, national, play, review, selection, table, url, visits  # noqa: F401
