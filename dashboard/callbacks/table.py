"""The flag table follows the filters."""

from dash import Output, callback

from dashboard import ids
from dashboard.callbacks import FILTER_INPUTS
from dashboard.filters import from_controls
from dashboard.state import state
from dashboard.tables import flag_rows


@callback(Output(ids.FLAG_TABLE, "rowData"), Output(ids.FLAG_COUNT, "children"), *FILTER_INPUTS)
def update_flag_table(*controls) -> tuple[list[dict], str]:
    st = state()
    filters, _ = from_controls(st.periods, *controls)
    rows = flag_rows(st.analysis.flags, filters)
    where = "every period" if filters.period == "all" else filters.period
    return rows, f"{len(rows)} of {len(st.analysis.flags)} flags shown ({where})"
