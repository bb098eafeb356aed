"""The details panel follows the selection."""

from dash import Input, Output, callback

from dashboard import ids
from dashboard.auth import current_viewer
from dashboard.details import details_panel
from dashboard.state import state
from dashboard.tables import selection_of


@callback(
    Output(ids.DETAILS, "children"),
    Input(ids.SELECTION, "data"),
    Input(ids.PERIOD, "value"),
    Input(ids.REVIEW_TICK, "data"),
)
def update_details(selection: str, period_index: int, _saved=None) -> list:
    st = state()
    kind, identifier = selection_of(selection)
    period = st.periods[period_index] if st.periods and period_index is not None else ""
    return details_panel(st.analysis, kind, identifier, period, review_view(st, kind, identifier))


def review_view(st, kind: str, identifier: str) -> dict | None:
    """What the viewer may see of a flag's review (notes and history for the team only)."""
    if kind != "flag":
        return None
    viewer = current_viewer()
    enabled = st.review_store is not None
    current = st.review_store.current([identifier]).get(identifier) if enabled else None
    history = st.review_store.history(identifier) if enabled and viewer.is_team else []
    return {"current": current, "history": history, "team": enabled and viewer.is_team, "enabled": enabled}
