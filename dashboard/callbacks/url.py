"""The address bar and the controls agree, both ways, so a link reproduces a view.

On page load (and on back/forward) the URL's query sets the period, the filters and the
selection; afterwards every change of those writes the query back. One callback does
both directions, which is how Dash allows the loop.
"""

from dash import Input, Output, callback, ctx, no_update

from dashboard import ids
from dashboard.callbacks import FILTER_INPUTS
from dashboard.filters import controls_from_query, from_controls, page_query
from dashboard.state import state

CONTROL_OUTPUTS = [
    Output(ids.PERIOD, "value"),
    Output(ids.PERIOD_ALL, "value"),
    Output(ids.FLAG_TYPES, "value"),
    Output(ids.SEVERITIES, "value"),
    Output(ids.HOLDERS, "value"),
    Output(ids.MIN_SCORE, "value"),
    Output(ids.SEARCH, "value"),
    Output(ids.REVIEW_FILTER, "value"),
    Output(ids.SELECTION, "data"),
]


@callback(Output(ids.URL, "search"), *CONTROL_OUTPUTS, Input(ids.URL, "search"), *FILTER_INPUTS,
          Input(ids.SELECTION, "data"))  # fmt: skip
def sync_url_and_controls(search: str, *controls_and_selection):
    periods = state().periods
    if ctx.triggered_id in (None, ids.URL):
        return no_update, *controls_from_query(periods, search or "")
    *controls, selection = controls_and_selection
    filters, map_period = from_controls(periods, *controls, selection)
    query = page_query(filters, map_period)
    return (f"?{query}" if query else ""), *([no_update] * len(CONTROL_OUTPUTS))


@callback(
    Output(ids.DOWNLOAD_GEOJSON, "href"),
    Output(ids.DOWNLOAD_CSV, "href"),
    Output(ids.DOWNLOAD_CONCESSIONS, "href"),
    Output(ids.DOWNLOAD_STATS, "href"),
    *FILTER_INPUTS,
)
def update_download_links(*controls) -> tuple[str, str, str, str]:
    filters, _ = from_controls(state().periods, *controls)
    query = filters.to_query(include_selection=False)
    suffix = f"?{query}" if query else ""
    return (f"/api/flags.geojson{suffix}", f"/api/flags.csv{suffix}", f"/api/concessions.geojson{suffix}",
            f"/api/concession_stats.csv{suffix}")  # fmt: skip
