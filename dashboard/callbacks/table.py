"""The flag table follows the filters."""

from dash import Input, Output, callback

from dashboard import ids
from dashboard.auth import current_viewer
from dashboard.callbacks import FILTER_INPUTS
from dashboard.filters import from_controls
from dashboard.state import state
from dashboard.tables import flag_rows


@callback(
    Output(ids.FLAG_TABLE, "rowData"),
    Output(ids.FLAG_COUNT, "children"),
    *FILTER_INPUTS,
    Input(ids.REVIEW_TICK, "data"),
)
def update_flag_table(*controls_and_tick) -> tuple[list[dict], str]:
    controls = controls_and_tick[: len(FILTER_INPUTS)]  # then the review tick: a save refreshes the table
    st = state()
    filters, _ = from_controls(st.periods, *controls)
    rows = flag_rows(st.flags_for(current_viewer()), filters)
    where = "every period" if filters.period == "all" else filters.period
    return rows, f"{len(rows)} of {len(st.analysis.flags)} flags shown ({where})"
