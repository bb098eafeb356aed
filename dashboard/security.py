"""Security headers on every response of the dashboard's server.

A Content-Security-Policy the app really works under: scripts only from this server
plus Dash's one inline bootstrap script (allowed by its hash, from ``app.csp_hashes()``);
styles from this server and inline style attributes (React and Plotly set them); images
from this server, ``data:`` URLs and the optional basemap's host; no frames, no plugins,
forms only to this server. Also ``nosniff``, ``same-origin`` referrers, no framing, and
a request size limit.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dash

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
