"""The national panel: national totals against the sum of concession reports."""

from dash import Input, Output, callback

from dashboard import ids
from dashboard.figures import national_figure
from dashboard.state import state


@callback(Output(ids.NATIONAL_CHART, "figure"), Input(ids.URL, "pathname"))
def update_national_chart(_pathname: str):
    return national_figure(state().analysis.national)
