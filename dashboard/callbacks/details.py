"""The details panel follows the selection."""

from dash import Input, Output, callback

from dashboard import ids
from dashboard.details import details_panel
from dashboard.state import state
from dashboard.tables import selection_of


@callback(Output(ids.DETAILS, "children"), Input(ids.SELECTION, "data"), Input(ids.PERIOD, "value"))
def update_details(selection: str, period_index: int) -> list:
    st = state()
    kind, identifier = selection_of(selection)
    period = st.periods[period_index] if st.periods and period_index is not None else ""
    return details_panel(st.analysis, kind, identifier, period)
