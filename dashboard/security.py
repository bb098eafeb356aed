"""Security headers on every response of the dashboard's server.

A Content-Security-Policy the app really works under: scripts only from this server
plus Dash's one inline bootstrap script (allowed by its hash, from ``app.csp_hashes()``);
styles from this server and inline style attributes (React and Plotly set them); images
from this server, ``data:`` URLs and the optional basemap's host; no frames, no plugins,
forms only to this server. Also ``nosniff``, ``same-origin`` referrers, no framing, and
a request size limit. Errors reach users as one plain sentence with a reference; the
stack trace goes to the server's log under that reference, never to the browser.
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

import dash
import flask
from werkzeug.exceptions import HTTPException

MAX_REQUEST_BYTES = 2 * 1024 * 1024  # callbacks and forms are small; uploads do not exist


def content_security_policy(app: dash.Dash, basemap_url: str | None) -> str:
    """The policy for ``app`` (and the basemap's tile host, when one is configured)."""
    tiles = ""
    if basemap_url:
        parts = urlsplit(basemap_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in basemap_url else parts.netloc
        tiles = f" {parts.scheme}://{host}"
    scripts = " ".join(app.csp_hashes())
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' {scripts}",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: blob:{tiles}",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def install_headers(app: dash.Dash, basemap_url: str | None) -> None:
    """Add the headers to every response and cap request bodies."""
    server = app.server
    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    policy: dict[str, str] = {}

    @server.after_request
    def add_security_headers(response):
        if "csp" not in policy:  # Dash knows its inline script's hash once the index is built
            policy["csp"] = content_security_policy(app, basemap_url)
        response.headers.setdefault("Content-Security-Policy", policy["csp"])
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


def install_error_pages(server: flask.Flask) -> None:
    """Answer unexpected errors with a short text and a reference; log the traceback under it."""
    server.config["PROPAGATE_EXCEPTIONS"] = False
    log = logging.getLogger("minewatch.server")

    @server.errorhandler(Exception)
    def internal_error(error: Exception):
        if isinstance(error, HTTPException):  # 404, 413...: werkzeug's own short page, no trace
            return error
        if isinstance(error, dash.exceptions.DependencyException):  # a script path Dash does not serve
            return flask.Response("not found\n", status=404, mimetype="text/plain")
        reference = secrets.token_hex(4)
        log.error("error %s on %s %s", reference, flask.request.method, flask.request.path, exc_info=error)
        text = f"minewatch: something went wrong on the server (reference {reference}); the details are in its log.\n"
        return flask.Response(text, status=500, mimetype="text/plain")
