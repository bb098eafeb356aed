"""Who is asking: anonymous public viewers, team members and admins.

Sessions are Flask's signed cookies (HttpOnly, SameSite=Lax, Secure behind TLS). The
secret key comes from ``MINEWATCH_SECRET_KEY`` or a random key kept in a 0600 file
beside the results, so every worker of one deployment shares it. Logins are limited
to :data:`MAX_FAILURES` failures per :data:`WINDOW_S` seconds per address and per
username; state-changing requests must come from this site (``Origin`` checked).
"""

from __future__ import annotations

import html
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import flask
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

PUBLIC, TEAM, ADMIN = "public", "team", "admin"
MAX_FAILURES = 5
WINDOW_S = 300.0


@dataclass(frozen=True)
class Viewer:
    """The person behind a request."""

    username: str | None
    role: str

    @property
    def is_team(self) -> bool:
        """Team members and admins see review notes and may review and plan."""
        return self.role in (TEAM, ADMIN)


def current_viewer() -> Viewer:
    """The viewer of the current request (public outside a request or when logged out).

    The session names the user; the role is read from the accounts on every request, so
    removing, suspending or demoting someone takes effect at once.
    """
    if not flask.has_request_context():
        return Viewer(None, PUBLIC)
    username = flask.session.get("user")
    if not username:
        return Viewer(None, PUBLIC)
    from dashboard.state import state

    store = state().review_store
    user = store.get_user(username) if store is not None else None
    if user is None or not user.active:
        return Viewer(None, PUBLIC)
    return Viewer(user.username, user.role)


class LoginLimiter:
    """Counts failed logins per key in a sliding window (in memory, per process)."""

    def __init__(self, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S):
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                attempts = self._failures[key]
                while attempts and now - attempts[0] > self.window_s:
                    attempts.popleft()
                if len(attempts) >= self.max_failures:
                    return True
        return False

    def failed(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures[key].append(time.monotonic())

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def secret_key(results_dir: Path | None) -> str:
    """``MINEWATCH_SECRET_KEY``, else a key stored (0600) beside the results, else a fresh one.

    Beside, not inside: a new analysis replaces the results folder, and sessions (like
    the review database) should outlive it.
    """
    if os.environ.get("MINEWATCH_SECRET_KEY"):
        return os.environ["MINEWATCH_SECRET_KEY"]
    if results_dir is None:
        return secrets.token_hex(32)
    folder = Path(results_dir).expanduser().resolve()
    path = folder.with_name(f"{folder.name}.secret_key")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made earlier, or by another worker just now
        pass
    else:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    for _ in range(50):  # another worker may still be writing it
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path}: empty session key file; delete it and restart")


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, marked ``Secure`` whenever the request came over TLS."""

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (flask.has_request_context() and flask.request.is_secure)


def configure_sessions(server: flask.Flask, results_dir: Path | None) -> None:
    """Cookie and key settings for the dashboard's server.

    Behind a reverse proxy, set ``MINEWATCH_PROXIES`` to the number of proxies in front
    (usually 1): their ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are then believed, so
    the login limiter counts each client's address (not the proxy's, which would let one
    person lock everyone out) and cookies are ``Secure`` when the client used https.
    ``MINEWATCH_SECURE_COOKIES=1`` forces ``Secure`` whatever the request says.
    """
    server.secret_key = secret_key(results_dir)
    server.session_interface = _SessionCookies()
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=os.environ.get("MINEWATCH_SECURE_COOKIES", "") == "1",
        PERMANENT_SESSION_LIFETIME=8 * 3600,
    )
    proxies = int(os.environ.get("MINEWATCH_PROXIES", "0") or 0)
    if proxies > 0:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)


def same_origin(request: flask.Request) -> bool:
    """True when a state-changing request says it comes from this site."""
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return False
    return urlsplit(origin).netloc == request.host


def register_login_routes(server: flask.Flask, authenticate, limiter: LoginLimiter | None = None) -> None:
    """``GET/POST /login`` and ``POST /logout``. ``authenticate(username, password)`` returns
    an object with ``username`` and ``role``, or None."""
    limiter = limiter or LoginLimiter()

    def login():
        message = ""
        if flask.request.method == "POST":
            if not same_origin(flask.request):
                return flask.Response("cross-site login refused\n", status=403, mimetype="text/plain")
            username = flask.request.form.get("username", "").strip().lower()[:64]
            password = flask.request.form.get("password", "")[:1024]
            keys = (f"ip:{flask.request.remote_addr}", f"user:{username}")
            if limiter.blocked(*keys):
                return flask.Response(login_page("Too many failed logins; try again in a few minutes."), status=429)
            user = authenticate(username, password)
            if user is None:
                limiter.failed(*keys)
                message = "Wrong username or password."
            else:
                limiter.succeeded(*keys)
                flask.session.clear()
                flask.session.permanent = True
                flask.session["user"] = user.username
                flask.session["role"] = user.role
                return flask.redirect("/")
        return flask.Response(login_page(message), status=401 if message else 200, mimetype="text/html")

    def logout():
        if not same_origin(flask.request):
            return flask.Response("cross-site logout refused\n", status=403, mimetype="text/plain")
        flask.session.clear()
        return flask.redirect("/")

    server.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["POST"])


def login_page(message: str = "") -> str:
    """A small, dependency-free login form."""
    note = f'<p class="error">{html.escape(message)}</p>' if message else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>minewatch: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:360px;margin:12vh auto;padding:0 16px;color:#1d2733}}
label{{display:block;margin:12px 0 4px}}input{{width:100%;padding:8px;box-sizing:border-box}}
button{{margin-top:16px;padding:8px 16px}}.error{{color:#b2182b}}</style></head><body>
<h1>minewatch</h1><p>Team members sign in to review flags and read review notes. The map is public.</p>{note}
<form method="post" action="/login"><label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form><p><a href="/">Back to the map</a></p></body></html>"""
