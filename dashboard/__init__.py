"""The minewatch dashboard: a Dash app over one saved or fresh :class:`geo.analysis.Analysis`.

``create_app(analysis)`` returns the Dash app; its ``.server`` is the Flask (WSGI) app.
Map library: dash-leaflet, because it draws polygons without WebGL (headless Chromium
and old GPUs render it; Plotly's MapLibre maps stay blank without
``--enable-unsafe-swiftshader``), needs no tile server (offline by default), and
restyles a GeoJSON layer from a small ``hideout`` dict without re-sending geometry.
"""

from __future__ import annotations

import hashlib
import html
import os
from pathlib import Path

import dash
from flask_compress import Compress

from dashboard.sensitive import sensitive_types_from
from dashboard.state import DashboardState, set_state
from geo.analysis import Analysis

ASSETS = Path(__file__).resolve().parent / "assets"


def create_app(
    analysis: Analysis,
    basemap_url: str | None = None,
    title: str = "minewatch",
    results_dir: Path | None = None,
    database_url: str | None = None,
    sensitive_types=None,
) -> dash.Dash:
    """Build the dashboard for ``analysis``.

    Parameters
    ----------
    analysis:
        The result to show (``geo.analysis.run_analysis`` or ``layers.results.read_analysis``).
    basemap_url:
        Optional XYZ tile URL (``https://tile.openstreetmap.org/{z}/{x}/{y}.png``) for users
        who are online; without it the map needs nothing outside this server.
    results_dir, database_url:
        Where reviews and accounts are kept: ``database_url`` (or ``MINEWATCH_DATABASE_URL``),
        else ``reviews.sqlite`` in ``results_dir``. With neither, the dashboard is read-only
        and nobody can sign in.
    sensitive_types:
        Flag types whose places public viewers get only displaced (see
        :mod:`dashboard.sensitive`); default ``MINEWATCH_SENSITIVE_FLAG_TYPES``.
    """
    from dashboard import api, auth, callbacks, layout, security
    from layers.network import apply_offline_policy

    apply_offline_policy()  # GDAL makes no network request from the server (layers/network.py)
    store = None
    if results_dir is not None or database_url or os.environ.get("MINEWATCH_DATABASE_URL"):
        from layers.review_store import open_store

        store = open_store(results_dir, database_url)
    sensitive = sensitive_types_from(
        sensitive_types if sensitive_types is not None else os.environ.get("MINEWATCH_SENSITIVE_FLAG_TYPES", "")
    )
    key = auth.secret_key(results_dir).encode("utf-8")
    set_state(DashboardState(analysis, basemap_url=basemap_url, title=title, review_store=store,
                             sensitive_types=sensitive, geomask_key=hashlib.sha256(b"geomask:" + key).digest()))  # fmt: skip
    app = dash.Dash(
        __name__,
        title=html.escape(title),  # Dash puts the title into its HTML page unescaped
        update_title=None,
        assets_folder=str(ASSETS),
        serve_locally=True,
        suppress_callback_exceptions=True,  # the review form lives inside the details panel
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    auth.configure_sessions(app.server, results_dir)
    auth.register_login_routes(app.server, store.authenticate if store is not None else lambda _user, _password: None)
    app.layout = layout.serve_layout
    callbacks.register()
    api.register_routes(app.server)
    app.server.config["COMPRESS_MIMETYPES"] = [
        "text/html", "text/css", "text/csv", "text/javascript", "application/javascript", "application/json",
        "application/geo+json",
    ]  # fmt: skip
    security.install_headers(app, basemap_url)
    security.install_error_pages(app.server)
    Compress(app.server)
    return app
