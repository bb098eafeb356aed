"""Read-only HTTP API and map data routes on the dashboard's Flask server.

``/api/*`` is for QGIS, curl and scripts and honours the same filters as the page
(``?period=2021&type=unlicensed_activity&severity=high&holder=...&min_score=0.5&q=...``):
GeoJSON is RFC 7946, CSV is spreadsheet-safe. ``/map/*`` serves the layers the page
draws (for other clients: the page gets them in its layout) and the activity overlay images.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import flask

from dashboard.auth import current_viewer
from dashboard.filters import ALL_PERIODS, filter_concessions, filter_flags, parse_filters
from dashboard.state import state
from geo.export import csv_text, geojson_text

GEOJSON = "application/geo+json"
CSV = "text/csv; charset=utf-8"


def register_routes(server: flask.Flask) -> None:
    """Add the API and map routes to ``server``."""
    server.add_url_rule("/api/flags.geojson", "api_flags_geojson", api_flags_geojson)
    server.add_url_rule("/api/flags.csv", "api_flags_csv", api_flags_csv)
    server.add_url_rule("/api/concessions.geojson", "api_concessions", api_concessions)
    server.add_url_rule("/api/concession_stats.csv", "api_concession_stats", api_concession_stats)
    server.add_url_rule("/api/visit-plan.<extension>", "api_visit_plan", api_visit_plan)
    server.add_url_rule("/map/<layer>.geojson", "map_layer", map_layer)
    server.add_url_rule("/map/activity/<period>.png", "map_activity", map_activity)


def _filtered_flags():
    flags = state().flags_for(current_viewer())  # review notes only for the team
    return flags[filter_flags(flags, parse_filters(flask.request.query_string.decode("utf-8", "replace")))]


def api_flags_geojson():
    return _download(geojson_text(_filtered_flags()), GEOJSON, "flags.geojson")


def api_flags_csv():
    return _download(csv_text(_filtered_flags()), CSV, "flags.csv")


def api_concessions():
    concessions = state().analysis.concessions
    filters = parse_filters(flask.request.query_string.decode("utf-8", "replace"))
    return _download(
        geojson_text(concessions[filter_concessions(concessions, filters)]), GEOJSON, "concessions.geojson"
    )


def api_concession_stats():
    analysis = state().analysis
    filters = parse_filters(flask.request.query_string.decode("utf-8", "replace"))
    stats = analysis.stats
    shown = set(analysis.concessions.loc[filter_concessions(analysis.concessions, filters), "concession_id"])
    keep = stats["concession_id"].isin(shown)
    if filters.period != ALL_PERIODS:
        keep &= stats["period"].astype(str) == filters.period
    return _download(csv_text(stats[keep]), CSV, "concession_stats.csv")


def api_visit_plan(extension: str):
    """The visit plan of the query's flags as GPX, GeoJSON, CSV, HTML briefing or PDF."""
    from dashboard.briefing import briefing_html
    from dashboard.visit_plans import make_plan, request_from_args
    from geo.visit_export import gpx_text, plan_csv_text, plan_geojson_text
    from layers.plan_files import chromium_path, print_pdf

    if extension not in ("gpx", "geojson", "csv", "html", "pdf"):
        flask.abort(404)
    if state().review_store is not None and not current_viewer().is_team:
        return flask.Response("planning visits needs a team sign-in\n", status=403, mimetype="text/plain")
    try:
        plan = make_plan(state().analysis, request_from_args(flask.request.args), state().flags_for(current_viewer()))
    except ValueError as error:
        return flask.Response(f"cannot plan this visit: {error}\n", status=400, mimetype="text/plain")
    if extension == "gpx":
        return _download(gpx_text(plan), "application/gpx+xml", "itinerary.gpx")
    if extension == "geojson":
        return _download(plan_geojson_text(plan), GEOJSON, "itinerary.geojson")
    if extension == "csv":
        return _download(plan_csv_text(plan), CSV, "itinerary.csv")
    page = briefing_html(plan, state().analysis)
    if extension == "html":
        return flask.Response(page, mimetype="text/html")
    if chromium_path() is None:
        return flask.Response("PDF needs Chromium on the server; print the HTML briefing instead\n", status=501,
                              mimetype="text/plain")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="minewatch-briefing-") as folder:
        html_path, pdf_path = Path(folder) / "briefing.html", Path(folder) / "briefing.pdf"
        html_path.write_text(page, encoding="utf-8")
        print_pdf(html_path, pdf_path)
        response = flask.Response(pdf_path.read_bytes(), mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'attachment; filename="briefing.pdf"'
    return response


def map_layer(layer: str):
    st = state()
    viewer = current_viewer()
    texts = {
        "concessions": lambda: st.concessions_geojson,
        "flags": lambda: st.flags_geojson_for(viewer),
        "footprints": lambda: st.footprints_geojson_for(viewer),
        "context": lambda: st.context_geojson,
    }
    text = texts[layer]() if layer in texts else None
    if text is None:
        flask.abort(404)
    return _cached(text.encode("utf-8"), GEOJSON, private=bool(st.sensitive_types))


def map_activity(period: str):
    st = state()
    if period not in st.periods:
        flask.abort(404)
    overlay = st.activity_overlay(period, public=not current_viewer().is_team)
    if overlay is None:
        flask.abort(404)
    return _cached(overlay[0], "image/png", private=bool(st.sensitive_types))


def _download(text: str, mimetype: str, filename: str) -> flask.Response:
    response = flask.Response(text, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _cached(body: bytes, mimetype: str, private: bool = False) -> flask.Response:
    """A response the browser may keep for an hour and revalidate by ETag.

    ``private``: the body depends on who asks (sensitive layers), so shared caches must
    not keep it and the browser must revalidate after a sign-in.
    """
    etag = hashlib.sha256(body).hexdigest()[:32]
    if flask.request.if_none_match.contains(etag):
        return flask.Response(status=304)
    response = flask.Response(body, mimetype=mimetype)
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, no-cache" if private else "public, max-age=3600"
    if private:
        response.headers["Vary"] = "Cookie"
    return response
