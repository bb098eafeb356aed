"""The page: map in the middle, filters beside it, the evidence below.

:func:`serve_layout` runs on every page load and reads the URL's query string, so a deep
link opens with its period, filters and selection already set (the URL callback then
keeps the address bar in step one way only: controls to URL).
"""

from __future__ import annotations

import dash_ag_grid as dag
import dash_leaflet as dl
from dash import dcc, html

from dashboard import ids
from dashboard.filters import ALL_PERIODS, REVIEW_STATUSES, Filters
from dashboard.map_layers import STATUS_COLOURS, legend_entries
from dashboard.state import state
from geo.flags import FLAG_LABELS, FLAG_TYPES, SEVERITIES
from layers.activity_png import SCORE_COLOURS, SCORE_STOPS

TRANSPARENT_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)
FLAG_COLUMNS = [
    {"field": "score", "headerName": "Score", "width": 90, "sort": "desc", "valueFormatter": {"function": "d3.format('.2f')(params.value)"}},
    {"field": "severity", "headerName": "Severity", "width": 100},
    {"field": "label", "headerName": "Flag", "flex": 2, "minWidth": 200},
    {"field": "period", "headerName": "Period", "width": 95},
    {"field": "concession_id", "headerName": "Concession", "width": 120},
    {"field": "holder", "headerName": "Holder", "flex": 2, "minWidth": 160},
    {"field": "area_ha", "headerName": "Area (ha)", "width": 105, "type": "numericColumn",
     "valueFormatter": {"function": "params.value == null ? '' : d3.format(',.1f')(params.value)"}},
    {"field": "review_status", "headerName": "Review", "width": 120},
    {"field": "reason", "headerName": "Why", "flex": 4, "minWidth": 320, "wrapText": True, "autoHeight": True},
]  # fmt: skip


def serve_layout() -> html.Div:
    """The whole page with default controls (the URL callback then applies a deep link)."""
    return build_layout(Filters())


def build_layout(filters: Filters, map_period: str = "", every_period: bool = False) -> html.Div:
    """The page with controls set to ``filters``, the map on ``map_period`` (default the
    latest), and "list flags of every period" ticked when ``every_period``."""
    st = state()
    period = map_period if map_period in st.periods else st.latest_period()
    return html.Div(
        className="page",
        children=[
            dcc.Location(id=ids.URL, refresh=False),
            dcc.Store(id=ids.SELECTION, data=filters.selected),
            dcc.Store(id=ids.HIDEOUT_SINK),
            dcc.Store(id=ids.REVIEW_TICK, data=0),
            dcc.Interval(id=ids.PLAY_TIMER, interval=1500, disabled=True),
            header(st),
            html.Main(
                className="body",
                children=[
                    html.Aside(className="controls", children=[period_controls(st, period, every_period), filter_controls(st, filters), legend()]),
                    html.Section(className="map-panel", children=[map_panel(st, period)]),
                    html.Aside(className="details", id=ids.DETAILS, children=html.P("Click a concession or a flag, or choose a row in the table, to see the evidence.", className="hint")),
                ],
            ),
            html.Section(className="table-panel", children=[table_panel()]),
            html.Section(className="visit-panel", children=[visit_panel(st) if may_plan(st) else html.Div()]),
            html.Section(className="national-panel", children=[html.H2("National totals against concession reports"), html.Div(id=ids.NATIONAL_PANEL)]),
            html.Footer(className="footer", children=provenance_line(st)),
        ],
    )  # fmt: skip


def header(st) -> html.Header:
    children = [
        html.H1(st.title),
        html.Span("licences, reported production and satellite-seen activity", className="tagline"),
    ]
    banner = None
    if st.analysis.synthetic:
        banner = html.Div(
            className="synthetic-banner",
            role="alert",
            children="SYNTHETIC DATA: concessions, holders, production and activity in this analysis are made up "
            "(national totals may be real public figures). No flag here is an allegation about any real company.",
        )
    downloads = html.Div(
        className="downloads",
        children=[
            html.A("Flags GeoJSON", id=ids.DOWNLOAD_GEOJSON, href="/api/flags.geojson", download="flags.geojson"),
            html.A("Flags CSV", id=ids.DOWNLOAD_CSV, href="/api/flags.csv", download="flags.csv"),
            html.A("Concessions GeoJSON", id=ids.DOWNLOAD_CONCESSIONS, href="/api/concessions.geojson", download="concessions.geojson"),
            html.A("Concession stats CSV", id=ids.DOWNLOAD_STATS, href="/api/concession_stats.csv", download="concession_stats.csv"),
        ],
    )  # fmt: skip
    return html.Header(className="header", children=[html.Div(className="title", children=children), downloads,
                                                     account(st), banner])  # fmt: skip


def account(st) -> html.Div:
    """Who is signed in, and the way in or out (only where reviews are enabled)."""
    from dashboard.auth import current_viewer

    if st.review_store is None:
        return html.Div()
    viewer = current_viewer()
    if not viewer.username:
        return html.Div(className="account", children=html.A("Team sign in", href="/login"))
    return html.Div(
        className="account",
        children=[
            html.Span(f"{viewer.username} ({viewer.role})"),
            html.Form(action="/logout", method="post", children=html.Button("Sign out", type="submit")),
        ],
    )


def period_controls(st, period: str, every_period: bool) -> html.Div:
    last = len(st.periods) - 1
    shown = {0, last // 2, last}  # three labels fit the sidebar; the chosen period is named above the slider
    marks = {i: p for i, p in enumerate(st.periods) if i in shown}
    return html.Div(
        className="control-group",
        children=[
            html.Label(["Period ", html.Strong(period, id=ids.PERIOD_LABEL)], htmlFor=ids.PERIOD),
            html.Div(
                className="period-row",
                children=[
                    html.Button("▶ Play", id=ids.PLAY, n_clicks=0, className="play", title="Step through the periods"),
                    html.Div(
                        dcc.Slider(
                            id=ids.PERIOD,
                            min=0,
                            max=max(len(st.periods) - 1, 0),
                            step=1,
                            value=st.periods.index(period) if period in st.periods else 0,
                            marks=marks,
                            included=False,
                            allow_direct_input=False,
                        ),
                        className="slider",
                    ),  # fmt: skip
                ],
            ),
            dcc.Checklist(
                id=ids.PERIOD_ALL,
                options=[{"label": " list flags of every period", "value": ALL_PERIODS}],
                value=[ALL_PERIODS] if every_period else [],
            ),
        ],
    )


def filter_controls(st, filters: Filters) -> html.Div:
    return html.Div(
        className="control-group",
        children=[
            html.Label("Flag types", htmlFor=ids.FLAG_TYPES),
            dcc.Checklist(
                id=ids.FLAG_TYPES,
                options=[{"label": f" {FLAG_LABELS[t]}", "value": t} for t in FLAG_TYPES],
                value=list(filters.flag_types) or list(FLAG_TYPES),
                className="checklist",
            ),
            html.Label("Severity", htmlFor=ids.SEVERITIES),
            dcc.Checklist(
                id=ids.SEVERITIES,
                options=[{"label": f" {s}", "value": s} for s in SEVERITIES],
                value=list(filters.severities) or list(SEVERITIES),
                inline=True,
            ),
            html.Label("Holder", htmlFor=ids.HOLDERS),
            dcc.Dropdown(id=ids.HOLDERS, options=st.holders, value=list(filters.holders), multi=True, placeholder="any holder"),
            html.Label("Minimum score", htmlFor=ids.MIN_SCORE),
            dcc.Slider(id=ids.MIN_SCORE, min=0, max=1, step=0.05, value=filters.min_score,
                       marks={0: "0", 0.5: "0.5", 1: "1"}, tooltip={"placement": "bottom"}, allow_direct_input=False),
            html.Label("Review status", htmlFor=ids.REVIEW_FILTER),
            dcc.Checklist(id=ids.REVIEW_FILTER, options=[{"label": f" {s}", "value": s} for s in REVIEW_STATUSES],
                          value=list(filters.review_statuses) or list(REVIEW_STATUSES), className="checklist"),
            html.Label("Search concession id, name or holder", htmlFor=ids.SEARCH),
            dcc.Input(id=ids.SEARCH, type="search", value=filters.query, debounce=True, placeholder="e.g. MW-007",
                      className="search"),
        ],
    )  # fmt: skip


def legend() -> html.Div:
    flag_items = [
        html.Li([html.Span(className="swatch flag", style={"borderColor": colour}), words], title=flag_type)
        for flag_type, words, colour in legend_entries()
    ]
    status_items = [
        html.Li([html.Span(className="swatch", style={"background": colour}), status])
        for status, colour in STATUS_COLOURS.items()
    ]
    stops = ", ".join(
        f"rgba({r:.0f},{g:.0f},{b:.0f},{a / 255:.2f}) {s * 100:.0f}%"
        for s, (r, g, b, a) in zip(SCORE_STOPS, SCORE_COLOURS, strict=True)
    )
    return html.Div(
        className="legend control-group",
        children=[
            html.H2("Legend"),
            html.P("Flags (outline colour; a concession is outlined by its worst flag)"),
            html.Ul(flag_items),
            html.P("Concession status (fill)"),
            html.Ul(status_items),
            html.P("Activity score of the selected period"),
            html.Div(className="ramp", style={"background": f"linear-gradient(to right, transparent 0%, {stops})"}),
            html.Div(className="ramp-labels", children=[html.Span("0"), html.Span("0.5 (active)"), html.Span("1")]),
            html.P([html.Span(className="swatch footprint"), "activity footprint (active ≥ threshold)"]),
        ],
    )  # fmt: skip


def map_panel(st, period: str) -> dl.MapContainer:
    from dashboard.auth import current_viewer

    viewer = current_viewer()
    # The layers' geometry travels in the page's layout, once per visit. Loaded from a URL
    # instead, dash-leaflet sometimes added it with the props of its creation, after the
    # first filter had arrived, and drew no flag.
    layer_data = st.layer_data_for(viewer)
    bounds = st.overlay_bounds(period) if st.activity_paths else None
    layers = []
    if st.basemap_url:
        layers.append(dl.TileLayer(url=st.basemap_url, attribution="basemap: see settings", maxZoom=19))
    overlays = [
        dl.Overlay(
            dl.ImageOverlay(id=ids.ACTIVITY_OVERLAY, url=f"/map/activity/{period}.png" if bounds else TRANSPARENT_PNG,
                            bounds=bounds or st.field_bounds, opacity=0.85),
            name="Activity raster (selected period)", checked=True),
        dl.Overlay(
            dl.GeoJSON(id=ids.CONCESSIONS_LAYER, data=layer_data["concessions"], hideout={},
                       style={"variable": "minewatch.concessionStyle"},
                       onEachFeature={"variable": "minewatch.concessionTooltip"}),
            name="Concessions", checked=True),
        dl.Overlay(
            dl.GeoJSON(id=ids.FOOTPRINTS_LAYER, data=layer_data["footprints"], hideout={"period": period},
                       style={"variable": "minewatch.footprintStyle"}, filter={"variable": "minewatch.footprintFilter"},
                       interactive=False),
            name="Activity footprints", checked=True),
        dl.Overlay(
            dl.GeoJSON(id=ids.FLAGS_LAYER, data=layer_data["flags"], hideout={},
                       style={"variable": "minewatch.flagStyle"}, filter={"variable": "minewatch.flagFilter"},
                       onEachFeature={"variable": "minewatch.flagTooltip"}),
            name="Flags", checked=True),
    ]  # fmt: skip
    if st.analysis.context is not None:
        overlays.insert(1, dl.Overlay(
            dl.GeoJSON(id=ids.CONTEXT_LAYER, url="/map/context.geojson", style={"variable": "minewatch.contextStyle"},
                       pointToLayer={"variable": "minewatch.placeMarker"},
                       onEachFeature={"variable": "minewatch.contextTooltip"}),
            name="Places and boundaries", checked=True))  # fmt: skip
    layers.append(dl.LayersControl(overlays, position="topright", collapsed=True))
    layers.append(dl.ScaleControl(position="bottomleft", imperial=False))
    return html.Div(
        className="map-wrap",
        children=[
            dl.MapContainer(id=ids.MAP, bounds=st.field_bounds, preferCanvas=True, children=layers,
                            className="map", attributionControl=False, trackViewport=False),
            html.Div(id=ids.ACTIVITY_NOTE, className="map-note"),
        ],
    )  # fmt: skip


def table_panel() -> html.Div:
    return html.Div(
        children=[
            html.Div(className="table-head", children=[html.H2("Flags"), html.Span(id=ids.FLAG_COUNT, className="count")]),
            dag.AgGrid(
                id=ids.FLAG_TABLE,
                columnDefs=FLAG_COLUMNS,
                rowData=[],
                defaultColDef={"sortable": True, "filter": True, "resizable": True},
                dashGridOptions={"pagination": True, "paginationPageSize": 10, "rowSelection": {"mode": "singleRow", "checkboxes": False, "enableClickSelection": True},
                                 "paginationPageSizeSelector": [10, 25, 100],
                                 "animateRows": False, "domLayout": "autoHeight"},
                getRowId="params.data.flag_id",
                className="ag-theme-alpine",
                style={"width": "100%"},
            ),
        ]
    )  # fmt: skip


def may_plan(st) -> bool:
    """Team members plan visits; without accounts (no review store) everyone may."""
    from dashboard.auth import current_viewer

    return st.review_store is None or current_viewer().is_team


def visit_panel(st) -> html.Div:
    """Choose flags (from the table's selection or the best shown), a base and days."""
    from dashboard.visit_plans import default_base
    from geo.flags import FLAG_LABELS as LABELS

    flags = st.analysis.flags
    locatable = flags[~(flags.geometry.isna() | flags.geometry.is_empty)].sort_values("score", ascending=False)
    options = [
        {"label": f"{row.score:.2f} · {LABELS.get(row.flag_type, row.flag_type)} · {row.period} · "
                  f"{row.concession_id if isinstance(row.concession_id, str) else 'outside licences'}",
         "value": row.flag_id}
        for row in locatable.itertuples()
    ]  # fmt: skip
    return html.Div(
        children=[
            html.H2("Plan a site visit"),
            html.P(
                "Choose flags, then a base (a place or LON,LAT) and the days; download the itinerary for a GPS "
                "unit and the printable briefing.",
                className="hint",
            ),  # fmt: skip
            html.Div(
                className="visit-row",
                children=[
                    html.Button("Add the selected flag", id=ids.VISIT_ADD_SELECTED, n_clicks=0),
                    html.Button("Add the 5 best flags shown", id=ids.VISIT_ADD_BEST, n_clicks=0),
                ],
            ),  # fmt: skip
            dcc.Dropdown(id=ids.VISIT_FLAGS, options=options, value=[], multi=True, placeholder="flags to visit"),
            html.Div(
                className="visit-row",
                children=[
                    html.Label(
                        [
                            "Base ",
                            dcc.Input(
                                id=ids.VISIT_START,
                                type="text",
                                value=default_base(st.analysis),
                                debounce=True,
                                className="visit-start",
                            ),
                        ]
                    ),
                    html.Label(
                        [
                            "Days ",
                            dcc.Input(id=ids.VISIT_DAYS, type="number", min=1, max=30, value=2, className="visit-num"),
                        ]
                    ),
                    html.Label(
                        [
                            "Hours a day ",
                            dcc.Input(
                                id=ids.VISIT_HOURS, type="number", min=1, max=24, value=10, className="visit-num"
                            ),
                        ]
                    ),
                    dcc.Checklist(
                        id=ids.VISIT_RETURN,
                        options=[{"label": " back to base each night", "value": "yes"}],
                        value=["yes"],
                    ),
                ],
            ),  # fmt: skip
            html.P(id=ids.VISIT_SUMMARY, className="visit-summary"),
            html.Div(id=ids.VISIT_LINKS, className="downloads"),
        ]
    )


def provenance_line(st) -> list:
    provenance = st.analysis.provenance
    created = provenance.get("created", "unknown time")
    inputs = len(provenance.get("inputs", []))
    return [
        html.Span(f"Analysis of {created}, {inputs} input files (SHA-256 in provenance.json). "),
        html.Span("Flags are discrepancies to check on the ground, not findings of wrongdoing."),
    ]
