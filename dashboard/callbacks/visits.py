"""The visit panel: choose flags, a base and days; links to the plan's files follow."""

from urllib.parse import urlencode

from dash import Input, Output, State, callback, ctx, html, no_update

from dashboard import ids
from dashboard.auth import current_viewer
from dashboard.callbacks import FILTER_INPUTS
from dashboard.filters import filter_flags, from_controls
from dashboard.state import state
from dashboard.tables import selection_of
from dashboard.visit_plans import PlanRequest, make_plan

BEST_COUNT = 5
FILE_LABELS = [
    ("gpx", "GPX"),
    ("geojson", "GeoJSON"),
    ("csv", "CSV"),
    ("html", "Briefing (HTML)"),
    ("pdf", "Briefing (PDF)"),
]


@callback(
    Output(ids.VISIT_FLAGS, "value"),
    Input(ids.VISIT_ADD_SELECTED, "n_clicks"),
    Input(ids.VISIT_ADD_BEST, "n_clicks"),
    State(ids.SELECTION, "data"),
    State(ids.VISIT_FLAGS, "value"),
    *[State(i.component_id, i.component_property) for i in FILTER_INPUTS],
    prevent_initial_call=True,
)
def add_visit_flags(_selected_clicks, _best_clicks, selection, chosen, *controls):
    return added_flags(ctx.triggered_id, selection, chosen or [], controls) or no_update


def added_flags(trigger: str, selection: str, chosen: list[str], controls) -> list[str]:
    """The visit's flags after "add the selected flag" or "add the best shown"."""
    st = state()
    flags = st.flags_for(current_viewer())
    locatable = flags[~(flags.geometry.isna() | flags.geometry.is_empty)]
    if trigger == ids.VISIT_ADD_SELECTED:
        kind, identifier = selection_of(selection)
        new = [identifier] if kind == "flag" and identifier in set(locatable["flag_id"]) else []
    else:
        filters, _ = from_controls(st.periods, *controls)
        shown = locatable[filter_flags(locatable, filters)].sort_values("score", ascending=False)
        new = shown["flag_id"].head(BEST_COUNT).tolist()
    return list(dict.fromkeys([*chosen, *new]))


@callback(
    Output(ids.VISIT_LINKS, "children"),
    Output(ids.VISIT_SUMMARY, "children"),
    Input(ids.VISIT_FLAGS, "value"),
    Input(ids.VISIT_START, "value"),
    Input(ids.VISIT_DAYS, "value"),
    Input(ids.VISIT_HOURS, "value"),
    Input(ids.VISIT_RETURN, "value"),
)
def update_visit_links(flag_ids, start, days, hours, back):
    if not flag_ids:
        return [], "Add flags to plan a visit."
    request = PlanRequest(tuple(flag_ids), (start or "").strip(), int(days or 2), float(hours or 10), bool(back))
    try:
        plan = make_plan(state().analysis, request, state().flags_for(current_viewer()))
    except ValueError as error:
        return [], f"Cannot plan: {error}"
    return visit_links(request), plan_summary(plan)


def visit_links(request: PlanRequest) -> list:
    query = urlencode([*[("flag", f) for f in request.flag_ids], ("start", request.start), ("days", request.days),
                       ("hours", f"{request.hours_per_day:g}"), ("return", "1" if request.return_to_base else "0")])  # fmt: skip
    return [
        html.A(label, href=f"/api/visit-plan.{extension}?{query}", download=f"itinerary.{extension}"
               if extension not in ("html", "pdf") else f"briefing.{extension}", target="_blank")
        for extension, label in FILE_LABELS
    ]  # fmt: skip


def plan_summary(plan) -> str:
    n = len(plan.stops)
    text = f"{n} stop{'s' if n != 1 else ''} over {len(plan.days)} day(s) from {plan.base_name}, {sum(plan.day_km):,.0f} km by road"
    if plan.unplanned:
        text += f"; {len(plan.unplanned)} do not fit ({', '.join(s.stop_id for s in plan.unplanned)})"
    return text + "."
