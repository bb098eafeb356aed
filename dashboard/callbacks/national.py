"""The national panel: national totals against the sum of concession reports."""

from dash import Input, Output, callback

from dashboard import ids
from dashboard.figures import national_table
from dashboard.state import state


@callback(Output(ids.NATIONAL_PANEL, "children"), Input(ids.URL, "pathname"))
def update_national_panel(_pathname: str):
    st = state()
    tolerance = 100 * float(st.analysis.provenance.get("settings", {}).get("national_tolerance", 0.10))
    return national_table(st.analysis.national, tolerance)
