"""Visit plans for the dashboard and its API: from query parameters to files' text.

``/api/visit-plan.gpx?flag=ID&flag=ID&start=Mutare&days=2&hours=10&return=1`` (and
``.geojson``, ``.csv``, ``.html``, ``.pdf``) plan the given flags exactly as
``python app.py plan-visits`` does.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.analysis import Analysis
from geo.visits import Plan, TripSettings, parse_base, plan_visits, select_flags, stops_from_flags

MAX_FLAGS = 40  # one team, a few days: larger selections are refused rather than planned slowly


@dataclass(frozen=True)
class PlanRequest:
    """What the user asked for, read from query parameters."""

    flag_ids: tuple[str, ...]
    start: str
    days: int = 2
    hours_per_day: float = 10.0
    return_to_base: bool = True


def request_from_args(args) -> PlanRequest:
    """A :class:`PlanRequest` from a Flask ``request.args``-like mapping; ``ValueError`` if invalid."""
    flag_ids = tuple(dict.fromkeys(v for value in args.getlist("flag") for v in value.split(",") if v))
    if not flag_ids:
        raise ValueError("choose at least one flag (flag=ID)")
    if len(flag_ids) > MAX_FLAGS:
        raise ValueError(f"at most {MAX_FLAGS} flags per plan")
    days = int(args.get("days", 2))
    hours = float(args.get("hours", 10))
    if not (1 <= days <= 30 and 1 <= hours <= 24):
        raise ValueError("days must be 1..30 and hours 1..24")
    return PlanRequest(flag_ids, args.get("start", "").strip(), days, hours, args.get("return", "1") != "0")


def make_plan(analysis: Analysis, request: PlanRequest, flags=None) -> Plan:
    """The itinerary for ``request``; ``ValueError`` for an unknown base or no locatable flag.

    ``flags`` (default the analysis') may carry ``review_status``, which the plan's files show.
    """
    chosen = select_flags(analysis.flags if flags is None else flags, flag_ids=list(request.flag_ids))
    if chosen.empty:
        raise ValueError("none of those flags has a location to visit")
    name, lon, lat = parse_base(request.start or default_base(analysis), analysis.context)
    settings = TripSettings(
        days=request.days, hours_per_day=request.hours_per_day, return_to_base=request.return_to_base
    )
    return plan_visits(stops_from_flags(chosen), name, lon, lat, settings)


def default_base(analysis: Analysis) -> str:
    """The first place of the analysis' context, else the field's centre as LON,LAT."""
    context = analysis.context
    if context is not None:
        points = context[context.geometry.geom_type == "Point"]
        if len(points):
            return str(points["name"].iloc[0])
    west, south, east, north = analysis.concessions.total_bounds
    return f"{(west + east) / 2:.5f},{(south + north) / 2:.5f}"
