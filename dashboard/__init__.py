"""The minewatch dashboard: a Dash app over one saved or fresh :class:`geo.analysis.Analysis`.

``create_app(analysis)`` returns the Dash app; its ``.server`` is the Flask (WSGI) app.
Map library: dash-leaflet, because it draws polygons without WebGL (headless Chromium
and old GPUs render it; Plotly's MapLibre maps stay blank without
``--enable-unsafe-swiftshader``), needs no tile server (offline by default), and
restyles a GeoJSON layer from a small ``hideout`` dict without re-sending geometry.
"""

from __future__ import annotations

from pathlib import Path

import dash
from flask_compress import Compress

from dashboard.state import DashboardState, set_state
from geo.analysis import Analysis

ASSETS = Path(__file__).resolve().parent / "assets"


def create_app(analysis: Analysis, basemap_url: str | None = None, title: str = "minewatch") -> dash.Dash:
    """Build the dashboard for ``analysis``.

    Parameters
    ----------
    analysis:
        The result to show (``geo.analysis.run_analysis`` or ``layers.results.read_analysis``).
    basemap_url:
        Optional XYZ tile URL (``https://tile.openstreetmap.org/{z}/{x}/{y}.png``) for users
        who are online; without it the map needs nothing outside this server.
    """
    from dashboard import api, callbacks, layout

    set_state(DashboardState(analysis, basemap_url=basemap_url, title=title))
    app = dash.Dash(
        __name__,
        title=title,
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = layout.serve_layout
    callbacks.register()
    api.register_routes(app.server)
    app.server.config["COMPRESS_MIMETYPES"] = [
        "text/html", "text/css", "text/csv", "text/javascript", "application/javascript", "application/json",
        "application/geo+json",
    ]  # fmt: skip
    Compress(app.server)
    return app
