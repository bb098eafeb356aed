"""Live servers and a headless Chromium for the browser tests.

``demo_url`` (session): the bundled demo analysed once into a temporary folder and served
by ``python app.py serve --results DIR`` on a free port. ``hostile_url`` (session): the small
test field of ``tests/conftest.py`` whose holders, names and one concession id are HTML and
script, analysed and served the same way.

The browser is Debian's Chromium (``/usr/bin/chromium``, or ``$MINEWATCH_CHROMIUM``) driven
through Playwright's ``executable_path``; Playwright's own browser download is never used.
Each test gets a fresh browser context (no shared cache or storage) and a :class:`Watch`
that records console errors, page errors, dialogs and every request the page makes.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo"
CHROMIUM = os.environ.get("MINEWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000  # any single wait; a healthy page needs well under 2 s

# Hostile text from a user's file: markup that would run if anything rendered it as HTML.
IMG_HOLDER = '<img src=x onerror="window.__xss=1">'
SCRIPT_NAME = "<script>window.__xss=2</script>"
SCRIPT_HOLDER = "<script>window.__xss=3</script>"
IMG_NAME = '<img src=x onerror="window.__xss=4">'
MARKUP_ID = "X<b>1</b>"
PLACE_NAME = '<img src=x onerror="window.__xss=5">Mutare'
NOTE = '<script>window.__xss=6</script><img src=x onerror="window.__xss=7"> pit </textarea><b>wet</b>'

# Uncaught exceptions already reported as bugs, each with a strict-xfail test of its own
# (test_dashboard.py::test_no_uncaught_errors_on_load_and_map_move); the other tests ignore
# exactly these so they still catch any new error. Remove an entry once its bug is fixed.
KNOWN_PAGE_ERRORS: list[tuple[str, str]] = []  # (message, where in the stack) of errors not ours to fix


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_analyze(inputs: dict[str, Path], out: Path) -> Path:
    """``python app.py analyze`` on ``inputs`` into ``out``; fails the test run on error."""
    args = [sys.executable, str(ROOT / "app.py"), "analyze", "--quiet", "--out", str(out)]
    for option in ("concessions", "production", "national", "activity", "context"):
        if option in inputs:
            args += [f"--{option}", str(inputs[option])]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.fail(f"analyze failed ({result.returncode}):\n{result.stdout}\n{result.stderr}", pytrace=False)
    return out


@dataclass
class Server:
    """``python app.py serve --results DIR`` as a subprocess on a free port."""

    results: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> str:
        args = [sys.executable, str(ROOT / "app.py"), "serve", "--results", str(self.results),
                "--port", str(self.port), "--quiet"]  # fmt: skip
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()}", pytrace=False)
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"server did not answer 200 on {self.url}/ within {timeout:.0f} s:\n{self.log()}", pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def serve(results: Path, log_path: Path) -> Iterator[str]:
    server = Server(results, log_path)
    try:
        yield server.start()
    finally:
        server.stop()


DEMO_INPUTS = {
    "concessions": DEMO / "concessions.gpkg",
    "production": DEMO / "production.csv",
    "national": DEMO / "national.csv",
    "activity": DEMO / "activity",
    "context": DEMO / "context.geojson",
}


@pytest.fixture(scope="session")
def demo_results(tmp_path_factory) -> Path:
    """The bundled demo analysed once, with a team account beside it."""
    results = run_analyze(DEMO_INPUTS, tmp_path_factory.mktemp("browser-demo") / "demo")  # the title names it
    add_team_member(results)
    return results


@pytest.fixture(scope="session")
def demo_url(demo_results) -> Iterator[str]:
    """Base URL (no trailing slash) of a server on the bundled demo's analysis."""
    yield from serve(demo_results, demo_results.parent / "serve.log")


TEAM_USER, TEAM_PASSWORD = "tester", "browser-tests-only"


def add_team_member(results: Path) -> None:
    """A team account for the tests, made with the real ``python app.py users add``."""
    subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "users", "--results", str(results), "add", TEAM_USER, "--role", "team",
         "--password-stdin"],
        input=TEAM_PASSWORD + "\n", text=True, check=True, capture_output=True, cwd=ROOT,
    )  # fmt: skip


def sign_in(page, base_url: str) -> None:
    """Sign in through the login form, as a person would."""
    page.goto(base_url + "/login")
    page.fill("#username", TEAM_USER)
    page.fill("#password", TEAM_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def write_hostile_field(folder: Path) -> dict[str, Path]:
    """The small test field with markup in holders, names and one concession id.

    B: holder ``<img onerror>``, name ``<script>`` (B digs without reporting: flags every year);
    C: holder ``<script>``, name ``<img onerror>``; D is renamed ``X<b>1</b>`` (expired, flagged);
    a context layer whose one place is named ``<img onerror>Mutare``.
    """
    import geopandas as gpd
    import shapely

    from tests.conftest import write_field

    paths = write_field(folder)
    concessions = gpd.read_file(paths["concessions"])
    concessions["name"] = None
    ids = concessions["concession_id"]
    concessions.loc[ids == "B", ["holder", "name"]] = [IMG_HOLDER, SCRIPT_NAME]
    concessions.loc[ids == "C", ["holder", "name"]] = [SCRIPT_HOLDER, IMG_NAME]
    concessions.loc[ids == "D", "concession_id"] = MARKUP_ID
    paths["concessions"].unlink()
    concessions.to_file(paths["concessions"], layer="concessions")
    west, south, _, _ = concessions.to_crs("EPSG:4326").total_bounds
    place = shapely.Point(west - 0.01, south - 0.01)  # beside the field, clear of the concessions' tooltips
    places = gpd.GeoDataFrame({"name": [PLACE_NAME]}, geometry=[place], crs="EPSG:4326")
    paths["context"] = folder / "context.geojson"
    places.to_file(paths["context"], driver="GeoJSON")
    return paths


@pytest.fixture(scope="session")
def hostile_url(tmp_path_factory) -> Iterator[str]:
    """Base URL of a server on the hostile field's analysis."""
    base = tmp_path_factory.mktemp("browser-hostile")
    results = run_analyze(write_hostile_field(base / "field"), base / "results")
    add_team_member(results)
    yield from serve(results, base / "serve.log")


# --------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (the system's, never Playwright's download)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@dataclass
class Watch:
    """What a page did: console errors, uncaught exceptions, dialogs and requests."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(f"{e.message}\n{e.stack or ''}"))
        page.on("request", lambda r: self.requests.append(r.url))

        def on_dialog(dialog):
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions, except the known bugs listed above."""
        return self.console_errors + [e for e in self.page_errors if not known_page_error(e)]

    @property
    def external_requests(self) -> list[str]:
        """Requests to anything but this server (data: and blob: URLs never leave the page)."""
        mine = urlsplit(self.origin)
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob", "about"):
                continue
            if parts.hostname != "127.0.0.1" or parts.port != mine.port:
                out.append(url)
        return out


def known_page_error(error: str) -> bool:
    message, _, stack = error.partition("\n")
    return any(message == text and where in stack for text, where in KNOWN_PAGE_ERRORS)


@pytest.fixture
def open_page(browser):
    """``open_page(base_url, viewport=DESKTOP, **context_options) -> (page, watch)``: a
    fresh context and page, watched; every context is closed after the test."""
    contexts = []

    def _open(base_url: str, viewport: dict | None = None, **options):
        # The tests' own probes (wait_for_function strings) are evaluated as script, which the
        # app's CSP rightly forbids; test_csp_* checks the app itself under its CSP.
        options.setdefault("bypass_csp", True)
        context = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        watch = Watch(base_url)
        watch.attach(page)
        return page, watch

    yield _open
    for context in contexts:
        context.close()
