"""The map follows the filters and the selection by restyling, never by re-sending geometry.

Only the layers' ``hideout`` dicts (visible ids, worst flags, the period), the overlay
image's URL and the viewport change here; polygons were fetched once from ``/map/*``.
"""

from dash import ClientsideFunction, Input, Output, callback, clientside_callback, no_update

from dashboard import ids
from dashboard.auth import current_viewer
from dashboard.callbacks import FILTER_INPUTS
from dashboard.filters import filter_concessions, filter_flags, from_controls
from dashboard.layout import TRANSPARENT_PNG
from dashboard.map_layers import concession_hideout, flag_hideout, footprint_hideout
from dashboard.reviews import review_hideout
from dashboard.state import state
from dashboard.tables import selection_of


@callback(
    Output(ids.FLAGS_LAYER, "hideout"),
    Output(ids.CONCESSIONS_LAYER, "hideout"),
    *FILTER_INPUTS,
    Input(ids.SELECTION, "data"),
    Input(ids.REVIEW_TICK, "data"),
)
def update_map_styles(*controls_selection_tick):
    *controls, selection = controls_selection_tick[: len(FILTER_INPUTS) + 1]  # then the review tick
    st = state()
    filters, _ = from_controls(st.periods, *controls, selection)
    flags, concessions = st.flags_for(current_viewer()), st.analysis.concessions
    visible = filter_flags(flags, filters)
    shown = None  # every concession, unless a holder filter or a search narrows them
    if filters.holders or filters.query:
        shown = concessions.loc[filter_concessions(concessions, filters), "concession_id"].tolist()
    _, selected = selection_of(selection)
    hideout = flag_hideout(flags, visible, selected) | {"review": review_hideout(flags)}
    return hideout, concession_hideout(flags, visible, shown, selected)


# Keeps the browser's copy of each layer's newest hideout (see assets/minewatch.js).
clientside_callback(
    ClientsideFunction(namespace="minewatch", function_name="rememberHideouts"),
    Output(ids.HIDEOUT_SINK, "data"),
    Input(ids.FLAGS_LAYER, "hideout"),
    Input(ids.CONCESSIONS_LAYER, "hideout"),
    Input(ids.FOOTPRINTS_LAYER, "hideout"),
)


@callback(Output(ids.FOOTPRINTS_LAYER, "hideout"), Input(ids.PERIOD, "value"))
def update_footprints(period_index: int) -> dict:
    # Its own callback: re-filtering thousands of footprints only when the period changes.
    periods = state().periods
    return footprint_hideout(periods[period_index] if periods and period_index is not None else "")


@callback(
    Output(ids.ACTIVITY_OVERLAY, "url"),
    Output(ids.ACTIVITY_OVERLAY, "bounds"),
    Output(ids.ACTIVITY_NOTE, "children"),
    Input(ids.PERIOD, "value"),
)
def update_activity_overlay(period_index: int):
    st = state()
    period = st.periods[period_index] if st.periods and period_index is not None else ""
    bounds = st.overlay_bounds(period) if period else None
    if bounds is None:
        return TRANSPARENT_PNG, st.field_bounds, f"Activity raster for {period} not available on this server."
    return f"/map/activity/{period}.png", bounds, f"Showing activity of {period}"


@callback(Output(ids.PERIOD_LABEL, "children"), Input(ids.PERIOD, "value"))
def update_period_label(period_index: int) -> str:
    # Separate from the overlay, whose first rendering of a period takes a few hundred ms.
    periods = state().periods
    return periods[period_index] if periods and period_index is not None else ""


@callback(Output(ids.MAP, "viewport"), Input(ids.SELECTION, "data"), prevent_initial_call=True)
def zoom_to_selection(selection: str):
    st = state()
    kind, identifier = selection_of(selection)
    if kind == "flag":
        bounds = st.flag_bounds_for(current_viewer(), identifier)
    else:
        bounds = st.concession_bounds.get(identifier)
    if bounds is None:
        return no_update
    return {"bounds": bounds, "transition": "flyToBounds", "options": {"padding": [40, 40], "maxZoom": 15}}
