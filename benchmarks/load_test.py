"""Load test of the dashboard under gunicorn: the HTTP API and the main Dash callbacks.

Starts ``gunicorn app:server`` (``--workers`` sync workers, bound to 127.0.0.1 on a free
port, ``MINEWATCH_RESULTS`` = the demo's analysis, which ``app.demo_results`` makes in
results/demo when missing or stale, or ``--results DIR``; other ``MINEWATCH_*`` settings
are not passed on), waits until every worker has loaded the analysis (each does as it
starts, by ``gunicorn.conf.py``; that start-up is not measured), then drives it with
``--clients`` concurrent clients for ``--duration`` seconds and prints, per kind of
request, the count, errors and p50/p95/p99/max latency, the throughput, the server's
worker count and requests per worker, the time requests spent inside a worker (from
gunicorn's access log), the machine's CPU count and who used the CPUs meanwhile (server,
load generator, other processes). Exit status 1 when any request failed.
``--url http://127.0.0.1:PORT`` drives a server that is already running instead; anything
but a loopback address is refused, always.

Client model: a closed loop without think time (``--think-ms`` adds one). Each client is
one simulated browser tab that sends one request at a time and the next as soon as the
previous answer has arrived, so the server always has ``--clients`` requests in flight:
far harsher than as many people, who pause for seconds between clicks. A browser sends
the several callbacks of one change in parallel; a client here sends them one after the
other. The clients start evenly over ``--ramp-up`` seconds (default 2; 0 starts them
together, 20 page loads at once). Latency is measured from opening the connection to the
last byte of the answer: waiting for a free worker included, decompression excluded.
Failed requests count as errors, not in the latencies. The load generator runs on the
same machine, in one process with a thread per client (its cyclic garbage collector off
during the run, so its pauses do not pass for server latency); its CPU use is printed.

What a client does, chosen at random with fixed weights (``ACTION_WEIGHTS``; each client
first does every action once, starting at a different place, so a short run covers them):

- open the page: ``GET /``, ``/_dash-layout`` (the map's geometry travels in it),
  ``/_dash-dependencies``, the callbacks the page fires on load, the activity overlay
  image and the context layer (those two only when not fetched before: the browser
  caches them for an hour). Dash's JavaScript bundles and CSS are not requested: they
  are static, fingerprinted and cached by browsers;
- move the period slider (the first time a worker shows a period it renders that
  overlay, about 0.35 s: this is measured), untick or tick a flag type or a severity;
- choose a row of the flag table, click a concession or a flag on the map;
- ``/api/flags.geojson`` and ``/api/flags.csv`` with random filters,
  ``/api/concession_stats.csv`` and ``/api/concessions.geojson`` (and
  ``/api/visit-plan.csv`` if the server lets the public plan visits; with reviews
  enabled, as on the demo, that is team-only and left out).

The callbacks' payloads are built from the app's own callback map
(``/_dash-dependencies``) and the page's component properties (``/_dash-layout``), and a
change fires the callbacks Dash's renderer would fire, in its order (including the
chains: a table row sets the selection, which moves the details panel, the map's styles,
its viewport and the address bar), with a browser's headers (``Origin``, ``Referer``,
``Accept-Encoding``). Checked once against headless Chromium: for page load, period,
flag type, table row and severity changes its 31 callback requests and these were the
same, body for body, and so was the ``clickData`` of a map click. Every answer is
checked: status 200, and for a callback the outputs Dash declared (and plausible values:
table rows matching their count, a hideout, a viewport, a selection equal to what was
clicked); for the API a FeatureCollection or CSV whose rows honour the filters.

Bounds: at most ``--max-requests`` requests (default 200,000) and ``--duration`` seconds
(at most 900), a 30 s socket timeout, at most 200 clients and 32 workers. Goal (issue 6):
with 20 clients on 2 cores for 60 s, p95 under 1 s for the API and the main callbacks,
and no error.

Run: ``pip install -e ".[bench]"`` then ``python benchmarks/load_test.py`` (defaults: 20
clients, 60 s, 2 workers). ``--json FILE`` also writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import http.client
import io
import ipaddress
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the project's modules (app, dashboard.ids)
    sys.path.insert(0, str(ROOT))

from dashboard import ids  # noqa: E402  (after the path fix above)

MAX_DURATION_S = 900.0
MAX_CLIENTS = 200
MAX_WORKERS = 32
MAX_REQUESTS = 1_000_000
REQUEST_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 120.0
GOAL_P95_S = 1.0
MAX_CHAIN = 40  # callbacks per user action; the renderer's chains here are 1-9 long
USER_AGENT = "minewatch-load-test"
ACCESS_LOG_FORMAT = '%(p)s %(s)s %(M)s "%(r)s"'

NO_UPDATE = object()  # in an expectation: this output may be left as it is

# The changes a person makes; weights are per action, not per request.
ACTION_WEIGHTS = {
    "open page": 1,
    "period slider": 4,
    "flag type filter": 2,
    "severity filter": 2,
    "table row": 3,
    "map click concession": 1,
    "map click flag": 1,
    "api flags.geojson": 2,
    "api flags.csv": 2,
    "api concession_stats.csv": 2,
    "api concessions.geojson": 2,
    "api visit-plan.csv": 1,  # only when the server lets anonymous viewers plan visits
}
API_ACTIONS = [a for a in ACTION_WEIGHTS if a.startswith("api ")]
# The page's own requests (the goal is about the API's and the callbacks' kinds).
PAGE_KINDS = ("GET /", "GET /_dash-layout", "GET /_dash-dependencies")


class StopRun(Exception):  # noqa: N818 - a signal, not an error
    """The run's request or time budget is spent."""


class ActionFailed(Exception):  # noqa: N818 - already recorded as an error
    """A request of the current action failed (already recorded); the client reloads the page."""


# --------------------------------------------------------------------------- target


def loopback_target(url: str) -> tuple[str, int]:
    """(host, port) of ``url`` when it is plain HTTP on a loopback address; ``ValueError`` otherwise.

    Only IP literals in 127.0.0.0/8 or ::1, and ``localhost`` (which must resolve only to
    loopback addresses), are accepted: this tool never sends load anywhere else.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{url!r}: give http://127.0.0.1:PORT (plain HTTP, no path)")
    host, port = parts.hostname, parts.port or 80
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        if host != "localhost":
            raise ValueError(f"{url!r}: only loopback targets (127.0.0.1, ::1, localhost) are allowed") from None
        addresses = {
            ipaddress.ip_address(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        }
    if not addresses or not all(a.is_loopback for a in addresses):
        raise ValueError(f"{url!r}: only loopback targets (127.0.0.1, ::1, localhost) are allowed")
    return host, port


# --------------------------------------------------------------------------- HTTP


def _decoders() -> dict:
    decoders = {"gzip": lambda b: zlib.decompress(b, 16 + zlib.MAX_WBITS), "deflate": zlib.decompress}
    try:
        import brotli

        decoders["br"] = brotli.decompress
    except ImportError:
        pass
    try:
        from compression import zstd  # Python 3.14
    except ImportError:
        try:
            from backports import zstd  # what flask-compress uses before 3.14
        except ImportError:
            zstd = None
    if zstd is not None:
        decoders["zstd"] = zstd.decompress
    return decoders


DECODERS = _decoders()
# Chromium's list, less what this Python cannot decode (the server then picks another).
ACCEPT_ENCODING = ", ".join(e for e in ("gzip", "deflate", "br", "zstd") if e in DECODERS)


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float


def fetch(host: str, port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
          timeout: float = REQUEST_TIMEOUT_S) -> Answer:  # fmt: skip
    """One request on a fresh connection (gunicorn's sync workers close each one anyway)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
        encoding = (response.getheader("Content-Encoding") or "").strip().lower()
    finally:
        connection.close()
    seconds = time.perf_counter() - start
    if encoding and encoding != "identity":
        if encoding not in DECODERS:
            raise http.client.HTTPException(f"unexpected Content-Encoding {encoding!r}")
        raw = DECODERS[encoding](raw)
    return Answer(response.status, raw, seconds)


# --------------------------------------------------------------------------- results


class Recorder:
    """Latencies and errors per kind of request, and the run's request and time budget."""

    def __init__(self, max_requests: int, duration_s: float):
        self.max_requests = max_requests
        self.duration_s = duration_s
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.error_samples: list[str] = []
        self.admitted = 0
        self.started = self.deadline = self.last_done = 0.0
        self.stopped_by = "time"

    def start(self) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + self.duration_s

    def admit(self) -> None:
        """Count one more request, or raise :class:`StopRun` when the budget is spent."""
        with self.lock:
            if time.monotonic() >= self.deadline:
                raise StopRun
            if self.admitted >= self.max_requests:
                self.stopped_by = "requests"
                raise StopRun
            self.admitted += 1

    def record(self, kind: str, seconds: float, problem: str | None) -> None:
        with self.lock:
            self.last_done = time.monotonic()
            if problem is None:
                self.latencies[kind].append(seconds)
                return
            self.errors[kind] += 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{kind}: {problem}")

    @property
    def kinds(self) -> list[str]:
        return sorted(set(self.latencies) | set(self.errors))


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 (linear interpolation between order statistics) and max, in seconds."""
    if not values:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan"), "max": float("nan")}
    if len(values) == 1:
        return dict.fromkeys(("p50", "p95", "p99", "max"), values[0])
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


# --------------------------------------------------------------------------- the Dash app as the browser sees it


def prop_key(component_id: str, prop: str) -> str:
    return f"{component_id}.{prop.split('@')[0]}"  # "period.value@hash" (allow_duplicate) sets period.value


def split_output(output: str) -> list[tuple[str, str]]:
    """``"..a.x...b.y.."`` (several outputs) or ``"a.x"`` into [(id, property), ...]."""
    parts = output[2:-2].split("...") if output.startswith("..") and output.endswith("..") else [output]
    return [tuple(part.rsplit(".", 1)) for part in parts]


@dataclass
class Callback:
    """One server-side callback of the app's callback map."""

    output: str
    outputs: list[tuple[str, str]]
    inputs: list[tuple[str, str]]
    state: list[tuple[str, str]]
    initial: bool
    multi: bool

    @property
    def kind(self) -> str:
        component_id, prop = self.outputs[0]
        return f"dash {component_id}.{prop.split('@')[0]}"

    @property
    def input_keys(self) -> set[str]:
        return {prop_key(*i) for i in self.inputs}

    @property
    def output_keys(self) -> set[str]:
        return {prop_key(*o) for o in self.outputs}


class DashMap:
    """The callback map from ``/_dash-dependencies`` as the renderer applies it to one layout.

    Only callbacks whose outputs are all on the page can fire; on load, those not marked
    ``prevent_initial_call`` fire unless every input is missing from the page (or only set
    by callbacks that cannot fire), as Dash's ``getLayoutCallbacks`` decides.
    """

    def __init__(self, dependencies: list[dict], present: set[str]):
        self.callbacks: list[Callback] = []
        for dep in dependencies:
            if dep.get("clientside_function"):
                continue  # runs in the browser: no request
            items = [*dep["inputs"], *dep["state"]]
            if not all(isinstance(i["id"], str) for i in items) or dep["output"].startswith(".{"):
                raise SystemExit(f"load test: pattern-matching callback {dep['output']!r} is not emulated")
            outputs = split_output(dep["output"])
            if not all(component_id in present for component_id, _ in outputs):
                continue  # e.g. the review form, which only the team's page has
            self.callbacks.append(Callback(
                output=dep["output"], outputs=outputs,
                inputs=[(i["id"], i["property"]) for i in dep["inputs"]],
                state=[(s["id"], s["property"]) for s in dep["state"]],
                initial=not dep.get("prevent_initial_call"), multi=dep["output"].startswith(".."),
            ))  # fmt: skip
        excluded: set[str] = set()
        while True:  # inputs that are missing, or set only by callbacks left out
            dropped = [cb for cb in self.callbacks if cb.initial
                       and all(i not in present or prop_key(i, p) in excluded for i, p in cb.inputs)]  # fmt: skip
            if not dropped:
                break
            for cb in dropped:
                cb.initial = False
                excluded |= cb.output_keys
        self.by_input: dict[str, list[int]] = defaultdict(list)
        for index, cb in enumerate(self.callbacks):
            for key in cb.input_keys:
                self.by_input[key].append(index)
        self.subsequent = [self._subsequent_outputs(i) for i in range(len(self.callbacks))]

    def _subsequent_outputs(self, index: int) -> set[str]:
        """Every output that ``index`` may set, directly or through the callbacks it triggers."""
        touched: set[str] = set()
        frontier = [index]
        while frontier:
            new = {key for i in frontier for key in self.callbacks[i].output_keys} - touched
            touched |= new
            frontier = sorted({j for key in new for j in self.by_input.get(key, [])})
        return touched

    def triggered_by(self, keys: list[str], exclude: int | None = None) -> dict[int, list[str]]:
        """Callbacks with an input among ``keys`` and which of them, in order (a callback's own
        outputs never fire it again: ``exclude``)."""
        out: dict[int, list[str]] = defaultdict(list)
        for key in keys:
            for index in self.by_input.get(key, []):
                if index != exclude:
                    out[index].append(key)
        return out

    def initial(self, changed: set[str]) -> dict[int, list[str]]:
        """The callbacks the page fires on load, each with the inputs in ``changed`` it has."""
        return {i: [k for k in (prop_key(*p) for p in cb.inputs) if k in changed]
                for i, cb in enumerate(self.callbacks) if cb.initial}  # fmt: skip

    def ready(self, pending: dict[int, list[str]]) -> list[int]:
        """The renderer's ``getReadyCallbacks``: pending callbacks none of whose inputs (other than
        their own outputs) may still be changed by a pending callback."""
        outstanding = set().union(*(self.subsequent[i] for i in pending))
        ready = [
            i for i in pending if not ((self.callbacks[i].input_keys - self.callbacks[i].output_keys) & outstanding)
        ]
        return ready or sorted(pending)

    def reachable(self, start_keys: list[str]) -> set[int]:
        """Callbacks that loading the page or changing ``start_keys`` can fire."""
        seen: set[int] = set()
        frontier = set(self.triggered_by(start_keys)) | {i for i, cb in enumerate(self.callbacks) if cb.initial}
        while frontier:
            seen |= frontier
            keys = sorted(set().union(*(self.callbacks[i].output_keys for i in frontier)))
            frontier = set(self.triggered_by(keys)) - seen
        return seen


def walk_layout(node, props: dict[str, object], types: dict[str, str]) -> None:
    """Collect every property of every component with an id from a ``/_dash-layout`` tree."""
    if isinstance(node, list):
        for child in node:
            walk_layout(child, props, types)
    elif isinstance(node, dict):
        if "props" in node and "type" in node and "namespace" in node:
            component_id = node["props"].get("id")
            if isinstance(component_id, str):
                types[component_id] = node["type"]
                for prop, value in node["props"].items():
                    props[f"{component_id}.{prop}"] = value
            for value in node["props"].values():
                walk_layout(value, props, types)
        else:
            for value in node.values():
                walk_layout(value, props, types)


def feature_bounds(geometry: dict) -> list[list[float]]:
    """[[south, west], [north, east]] of a GeoJSON geometry (as dash-leaflet puts in clickData)."""
    xs, ys = [], []

    def walk(node):
        if node and isinstance(node[0], (int, float)):
            xs.append(node[0])
            ys.append(node[1])
        else:
            for child in node:
                walk(child)

    for part in geometry.get("geometries", [geometry]):
        walk(part["coordinates"])
    return [[min(ys), min(xs)], [max(ys), max(xs)]]


def click_data(features: list[dict], index: int) -> dict:
    """What dash-leaflet's GeoJSON puts in ``clickData`` for a click on ``features[index]``."""
    feature = features[index]
    return {"type": "Feature", "properties": {**feature["properties"], "cluster": False, "id": index},
            "geometry": feature["geometry"], "bounds": feature_bounds(feature["geometry"])}  # fmt: skip


# --------------------------------------------------------------------------- a client: one browser tab


@dataclass
class Site:
    """What every client shares: the target, the callback map and facts learnt at start."""

    host: str
    port: int
    dash: DashMap
    recorder: Recorder
    visit_plan_public: bool
    think_s: float = 0.0
    expected_kinds: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class Tab:
    """The page's state in one simulated browser tab."""

    props: dict[str, object] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)


class Client:
    """One simulated browser tab in a closed loop: action, answer, (think), next action."""

    def __init__(self, site: Site, seed: int, start_s: float = 0.0, tour_start: float = 0.0):
        self.site = site
        self.start_s = start_s
        self.rng = random.Random(seed)
        self.tab: Tab | None = None
        self.cache: set[str] = set()  # /map/* URLs the browser keeps (max-age=3600)
        self.actions = {
            "open page": self.open_page,
            "period slider": self.move_period,
            "flag type filter": lambda: self.toggle(ids.FLAG_TYPES),
            "severity filter": lambda: self.toggle(ids.SEVERITIES),
            "table row": self.choose_row,
            "map click concession": lambda: self.click_map(ids.CONCESSIONS_LAYER),
            "map click flag": lambda: self.click_map(ids.FLAGS_LAYER),
            "api flags.geojson": self.api_flags_geojson,
            "api flags.csv": self.api_flags_csv,
            "api concession_stats.csv": self.api_stats,
            "api concessions.geojson": self.api_concessions,
        }
        if site.visit_plan_public:
            self.actions["api visit-plan.csv"] = self.api_visit_plan
        self.names = list(self.actions)
        self.weights = [ACTION_WEIGHTS[a] for a in self.names]
        # Every action once (after the first page load), then at random; clients start the
        # tour at different places, so together they cover every action early in a short run.
        tour = [a for a in self.names if a != "open page"]
        random.Random(0).shuffle(tour)
        offset = int(tour_start * len(tour)) % len(tour) if tour else 0
        self.tour = (tour[offset:] + tour[:offset])[::-1]  # popped from the end

    # ----------------------------------------------------------------- loop

    def run(self) -> None:
        time.sleep(self.start_s)
        try:
            while True:
                try:
                    if self.tab is None:
                        self.open_page()
                        self.think()
                    action = self.tour.pop() if self.tour else self.rng.choices(self.names, self.weights)[0]
                    self.actions[action]()
                except ActionFailed:
                    self.tab = None  # reload, as a person would
                self.think()
        except StopRun:
            return

    def think(self) -> None:
        if self.site.think_s > 0:
            time.sleep(self.site.think_s * self.rng.uniform(0.5, 1.5))

    # ----------------------------------------------------------------- requests

    def request(self, kind: str, method: str, path: str, body: dict | None = None, check=None) -> bytes:
        """Send, time, check and record one request; its body (decoded) when it passed."""
        self.site.recorder.admit()
        search = (self.tab.props.get(f"{ids.URL}.search") or "") if self.tab else ""
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, "Accept-Language": "en-US,en;q=0.9",
                   "Referer": f"{self.site.origin}/{search}"}  # fmt: skip
        data = None
        if body is not None:
            data = json.dumps(as_javascript(body), separators=(",", ":")).encode("utf-8")
            headers |= {"Content-Type": "application/json", "Accept": "application/json", "Origin": self.site.origin}
        start = time.perf_counter()
        try:
            answer = fetch(self.site.host, self.site.port, method, path, data, headers)
        except (OSError, http.client.HTTPException, zlib.error) as error:
            self.site.recorder.record(kind, time.perf_counter() - start, f"{type(error).__name__}: {error}")
            raise ActionFailed from None
        problem = None if answer.status == 200 else f"HTTP {answer.status} for {method} {path}: {answer.body[:200]!r}"
        if problem is None and check is not None:
            try:
                problem = check(answer.body)
            except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
                problem = f"unexpected answer to {method} {path}: {type(error).__name__}: {error}"
        self.site.recorder.record(kind, answer.seconds, problem)
        if problem:
            raise ActionFailed
        return answer.body

    def get_json(self, kind: str, path: str, check=None):
        holder = {}

        def parse(body: bytes):
            holder["value"] = json.loads(body)
            return check(holder["value"]) if check else None

        self.request(kind, "GET", path, check=parse)
        return holder["value"]

    # ----------------------------------------------------------------- the page and its callbacks

    def open_page(self) -> None:
        """Load the page as a browser does: HTML, layout, callback map, the load's callbacks, images."""
        tab = Tab()
        self.request(
            "GET /", "GET", "/", check=lambda b: None if b"dash-renderer" in b else "no Dash renderer in the page"
        )
        layout = self.get_json("GET /_dash-layout", "/_dash-layout", lambda v: None if "props" in v else "no layout")
        self.get_json(
            "GET /_dash-dependencies", "/_dash-dependencies", lambda v: None if isinstance(v, list) else "no list"
        )
        walk_layout(layout, tab.props, tab.types)
        located = set()
        for component_id, kind in tab.types.items():  # dcc.Location reports the address on mount
            if kind == "Location":
                address = {"pathname": "/", "search": "", "hash": "", "href": f"{self.site.origin}/"}
                tab.props |= {f"{component_id}.{prop}": value for prop, value in address.items()}
                located |= {f"{component_id}.{prop}" for prop in address}
        self.tab = tab
        self.fetch_images()  # the overlay in the layout starts loading before the callbacks
        # Without a selection there is nowhere to zoom: the viewport callback answers no_update.
        idle = {} if tab.props.get(f"{ids.SELECTION}.data") else {f"{ids.MAP}.viewport": NO_UPDATE}
        self.run_callbacks(self.site.dash.initial(located), idle)

    def change(self, key: str, value, expect: dict | None = None) -> None:
        """Set one property as a component would, and run what the renderer fires."""
        self.tab.props[key] = value
        self.run_callbacks(self.site.dash.triggered_by([key]), expect or {})

    def run_callbacks(self, pending: dict[int, list[str]], expect: dict | None = None) -> None:
        """Fire ``pending`` ({callback: changed inputs}) and whatever their outputs trigger, in the
        renderer's order: a callback waits while a pending one may still change its inputs."""
        dash = self.site.dash
        pending = dict(pending)
        for _ in range(MAX_CHAIN):
            if not pending:
                break
            for index in dash.ready(pending):
                changed = pending.pop(index)
                updated = self.call(index, changed, expect or {})
                for j, keys in dash.triggered_by(updated, exclude=index).items():
                    pending[j] = list(dict.fromkeys([*pending.get(j, []), *keys]))
        else:
            raise SystemExit(f"load test: more than {MAX_CHAIN} rounds of callbacks for one change; a loop?")
        self.fetch_images()

    def call(self, index: int, changed: list[str], expect: dict) -> list[str]:
        """POST one callback exactly as the browser does; apply its outputs; the keys it set."""
        cb = self.site.dash.callbacks[index]
        props = self.tab.props

        def item(component_id: str, prop: str) -> dict:
            key = f"{component_id}.{prop}"
            return {"id": component_id, "property": prop, "value": props[key]} if key in props else \
                {"id": component_id, "property": prop}  # fmt: skip

        outputs = [{"id": i, "property": p} for i, p in cb.outputs]
        body = {"output": cb.output, "outputs": outputs if cb.multi else outputs[0],
                "inputs": [item(*i) for i in cb.inputs], "changedPropIds": changed, "parsedChangedPropsIds": changed}  # fmt: skip
        if cb.state:
            body["state"] = [item(*s) for s in cb.state]
        result = {}

        def check(raw: bytes):
            answer = json.loads(raw)["response"]
            updates = {prop_key(component_id, prop): value for component_id, values in answer.items()
                       for prop, value in values.items()}  # fmt: skip
            if not set(updates) <= cb.output_keys:
                return f"{cb.output}: outputs {sorted(updates)}, declared {sorted(cb.output_keys)}"
            optional = cb.input_keys | {k for k, v in expect.items() if v is NO_UPDATE}  # circular outputs too
            missing = (cb.output_keys - optional) - set(updates)
            if missing or not (updates or cb.output_keys <= optional):
                return f"{cb.output}: missing outputs {sorted(missing or cb.output_keys)}"
            for key, value in updates.items():
                problem = check_value(key, value, updates, expect)
                if problem:
                    return f"{cb.output}: {problem}"
            result.update(updates)
            return None

        self.request(cb.kind, "POST", "/_dash-update-component", body=body, check=check)
        props.update(result)
        return list(result)

    def fetch_images(self) -> None:
        """Images and layers the page loads by URL (once: the browser caches them)."""
        for key, value in list(self.tab.props.items()):
            if not (key.endswith(".url") and isinstance(value, str) and value.startswith("/map/")):
                continue
            if value in self.cache:
                continue
            if value.endswith(".png"):
                self.request(
                    image_kind(value), "GET", value, check=lambda b: None if b.startswith(b"\x89PNG") else "not a PNG"
                )
            else:
                self.get_json(image_kind(value), value, check_collection)
            self.cache.add(value)

    # ----------------------------------------------------------------- actions

    def move_period(self) -> None:
        key = f"{ids.PERIOD}.value"
        last = int(self.tab.props.get(f"{ids.PERIOD}.max") or 0)
        current = self.tab.props.get(key)
        choices = [i for i in range(last + 1) if i != current] or [0]
        self.change(key, self.rng.choice(choices))

    def toggle(self, checklist: str) -> None:
        """Untick one option of a checklist, or tick one again when few are left."""
        options = [o["value"] if isinstance(o, dict) else o for o in self.tab.props[f"{checklist}.options"]]
        ticked = list(self.tab.props.get(f"{checklist}.value") or [])
        unticked = [o for o in options if o not in ticked]
        if unticked and (len(ticked) <= len(options) // 2 or self.rng.random() < 0.5):
            ticked.append(self.rng.choice(unticked))
            ticked = [o for o in options if o in ticked]  # the checklist keeps its options' order
        else:
            ticked.remove(self.rng.choice(ticked))
        self.change(f"{checklist}.value", ticked)

    def drawn(self, layer: str) -> list[dict]:
        return (self.tab.props.get(f"{layer}.data") or {}).get("features", [])

    def choose_row(self) -> None:
        """Click a row of the flag table whose flag is on the map (another than the selected one)."""
        rows = self.tab.props.get(f"{ids.FLAG_TABLE}.rowData") or []
        on_map = {f["properties"]["flag_id"] for f in self.drawn(ids.FLAGS_LAYER)}
        selected = self.tab.props.get(f"{ids.SELECTION}.data") or ""
        rows = [r for r in rows if r["flag_id"] in on_map and f"flag:{r['flag_id']}" != selected]
        if not rows:  # every row filtered out: a person would widen the filters first
            return self.move_period()
        row = self.rng.choice(rows[:25])  # what a person sees without scrolling far
        self.change(f"{ids.FLAG_TABLE}.selectedRows", [row], {f"{ids.SELECTION}.data": f"flag:{row['flag_id']}"})

    def click_map(self, layer: str) -> None:
        """Click a concession, or a flag the map shows, other than the selected one."""
        features = self.drawn(layer)
        selected = self.tab.props.get(f"{ids.SELECTION}.data") or ""
        if layer == ids.FLAGS_LAYER:
            visible = (self.tab.props.get(f"{ids.FLAGS_LAYER}.hideout") or {}).get("visible") or {}
            kind, name = "flag", "flag_id"
            candidates = [i for i, f in enumerate(features) if visible.get(f["properties"]["flag_id"])]
        else:
            kind, name = "concession", "concession_id"
            candidates = list(range(len(features)))
        candidates = [i for i in candidates if f"{kind}:{features[i]['properties'][name]}" != selected]
        if not candidates:
            return self.move_period()
        index = self.rng.choice(candidates)
        expected = f"{kind}:{features[index]['properties'][name]}"
        self.change(f"{layer}.clickData", click_data(features, index), {f"{ids.SELECTION}.data": expected})

    # ----------------------------------------------------------------- API

    def periods(self) -> list[str]:
        features = self.drawn(ids.FLAGS_LAYER)
        return sorted({str(f["properties"]["period"]) for f in features}) or ["all"]

    def random_filters(self) -> dict:
        """Filters as a person or a script would combine them (half the time none)."""
        query: dict[str, object] = {}
        if self.rng.random() < 0.5:
            return query
        if self.rng.random() < 0.7:
            query["period"] = self.rng.choice(self.periods())
        types = [o["value"] for o in self.tab.props[f"{ids.FLAG_TYPES}.options"]]
        if self.rng.random() < 0.5:
            query["type"] = self.rng.sample(types, self.rng.randint(1, 3))
        if self.rng.random() < 0.5:
            query["severity"] = self.rng.choice(["high", "medium", "low"])
        if self.rng.random() < 0.3:
            query["min_score"] = self.rng.choice([0.25, 0.5, 0.75])
        return query

    def api_flags_geojson(self) -> None:
        query = self.random_filters()
        self.get_json("api /api/flags.geojson", api_path("/api/flags.geojson", query),
                      lambda v: check_features(v, query))  # fmt: skip

    def api_flags_csv(self) -> None:
        query = self.random_filters()
        self.request("api /api/flags.csv", "GET", api_path("/api/flags.csv", query),
                     check=lambda b: check_csv(b, ["flag_id", "flag_type", "period", "reason"], query))  # fmt: skip

    def api_stats(self) -> None:
        query = {"period": self.rng.choice(self.periods())} if self.rng.random() < 0.5 else {}
        self.request("api /api/concession_stats.csv", "GET", api_path("/api/concession_stats.csv", query),
                     check=lambda b: check_csv(b, ["concession_id", "period"], query))  # fmt: skip

    def api_concessions(self) -> None:
        holders = self.tab.props.get(f"{ids.HOLDERS}.options") or []
        query = {"holder": self.rng.choice(holders)} if holders and self.rng.random() < 0.5 else {}
        self.get_json("api /api/concessions.geojson", api_path("/api/concessions.geojson", query),
                      lambda v: check_features(v, {}))  # fmt: skip

    def api_visit_plan(self) -> None:
        flags = [f["properties"]["flag_id"] for f in self.drawn(ids.FLAGS_LAYER)]
        query = {"flag": self.rng.sample(flags, min(len(flags), self.rng.randint(2, 6))), "days": 2}
        self.request("api /api/visit-plan.csv", "GET", api_path("/api/visit-plan.csv", query),
                     check=lambda b: None if b.strip() else "empty plan")  # fmt: skip


def as_javascript(value):
    """``value`` with whole floats as integers, as ``JSON.stringify`` writes them (0.0 is "0")."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: as_javascript(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_javascript(v) for v in value]
    return value


def image_kind(path: str) -> str:
    """``GET /map/activity/{period}.png`` for any period's overlay, else the path."""
    return "GET /map/activity/{period}.png" if path.startswith("/map/activity/") else f"GET {path}"


def check_collection(value: dict) -> str | None:
    return None if value.get("type") == "FeatureCollection" else "not a FeatureCollection"


def api_path(route: str, query: dict) -> str:
    pairs = [(k, v) for k, values in query.items() for v in (values if isinstance(values, list) else [values])]
    return f"{route}?{urlencode(pairs)}" if pairs else route


def check_features(collection: dict, query: dict) -> str | None:
    """A FeatureCollection whose features honour the period, type and severity filters."""
    if collection.get("type") != "FeatureCollection":
        return "not a FeatureCollection"
    for feature in collection["features"]:
        problem = check_row(feature["properties"], query)
        if problem:
            return problem
    return None


def check_csv(body: bytes, columns: list[str], query: dict) -> str | None:
    rows = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    if not set(columns) <= set(rows.fieldnames or []):
        return f"CSV columns {rows.fieldnames}, expected {columns}"
    for row in rows:
        problem = check_row(row, query)
        if problem:
            return problem
    return None


def check_row(row: dict, query: dict) -> str | None:
    if "period" in query and str(row.get("period")) != query["period"]:
        return f"period {row.get('period')} in an answer for period={query['period']}"
    if "type" in query and row.get("flag_type") not in query["type"]:
        return f"flag type {row.get('flag_type')} in an answer for type={query['type']}"
    if "severity" in query and row.get("severity") != query["severity"]:
        return f"severity {row.get('severity')} in an answer for severity={query['severity']}"
    if "min_score" in query and float(row.get("score")) < query["min_score"]:
        return f"score {row.get('score')} in an answer for min_score={query['min_score']}"
    return None


def check_value(key: str, value, updates: dict, expect: dict) -> str | None:
    """Plausible values for the outputs a person looks at."""
    if key in expect and expect[key] is not NO_UPDATE and value != expect[key]:
        return f"{key} = {value!r}, expected {expect[key]!r}"
    if key == f"{ids.FLAG_TABLE}.rowData":
        if not isinstance(value, list) or not all("flag_id" in row for row in value):
            return "table rows without flag ids"
        count = updates.get(f"{ids.FLAG_COUNT}.children", "")
        if not str(count).startswith(f"{len(value)} of "):
            return f"{len(value)} rows but the count says {count!r}"
    elif key == f"{ids.FLAGS_LAYER}.hideout" and not isinstance(value.get("visible"), dict):
        return "flag layer hideout without visible ids"
    elif key == f"{ids.CONCESSIONS_LAYER}.hideout" and not isinstance(value.get("worst"), dict):
        return "concession layer hideout without worst flags"
    elif key == f"{ids.MAP}.viewport" and len(value.get("bounds") or []) != 2:
        return f"viewport without bounds: {value!r}"
    elif key == f"{ids.DETAILS}.children" and not value:
        return "empty details panel"
    return None


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn app:server`` on 127.0.0.1, its access log in a private temporary folder."""

    def __init__(self, results: Path, workers: int):
        self.results = results
        self.workers = workers
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="minewatch-load-"))
        self.access_log = self.folder / "access.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        # Only the results folder from MINEWATCH_*: a benchmark of the demo as shipped.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINEWATCH_")}
        env["MINEWATCH_RESULTS"] = str(self.results)
        args = [sys.executable, "-m", "gunicorn", "app:server", "--chdir", str(ROOT), "--workers", str(self.workers),
                "--worker-class", "sync", "--bind", f"127.0.0.1:{self.port}", "--timeout", "60",
                "--access-logfile", str(self.access_log), "--access-logformat", ACCESS_LOG_FORMAT,
                "--error-logfile", str(self.folder / "error.log"), "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def worker_pids(self) -> list[int]:
        import psutil

        return sorted(child.pid for child in psutil.Process(self.process.pid).children())

    def access(self) -> list[tuple[int, str, int]]:
        """(worker pid, "METHOD /path", milliseconds in the worker) of every request answered so far."""
        entries = []
        if self.access_log.exists():
            for line in self.access_log.read_text(errors="replace").splitlines():
                match = re.match(r'<(\d+)> \d+ (\d+) "(\S+) (\S+)', line)
                if match:
                    path = match.group(4).split("?")[0]
                    path = "/map/activity/{period}.png" if path.startswith("/map/activity/") else path
                    entries.append((int(match.group(1)), f"{match.group(3)} {path}", int(match.group(2))))
        return entries

    def served_by(self) -> dict[int, int]:
        """Requests answered per worker pid."""
        counts: dict[int, int] = defaultdict(int)
        for pid, _, _ in self.access():
            counts[pid] += 1
        return dict(counts)

    def wait_ready(self, host: str) -> None:
        """Until every worker has answered once: each loads the analysis as it starts
        (``gunicorn.conf.py``), which is not what the load test measures."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"load test: gunicorn exited with {self.process.returncode}:\n{self.log()}")
            pids = self.worker_pids()
            if len(pids) == self.workers and set(pids) <= set(self.served_by()):
                return
            # As many requests at once as workers: a worker busy loading takes no other.
            threads = [threading.Thread(target=self._poke, args=(host,)) for _ in range(self.workers)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(0.1)
        raise SystemExit(f"load test: the workers were not ready within {READY_TIMEOUT_S:.0f} s:\n{self.log()}")

    def _poke(self, host: str) -> None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            fetch(host, self.port, "GET", "/_dash-layout", headers={"Accept-Encoding": ACCEPT_ENCODING}, timeout=60)

    def cpu_seconds(self) -> float:
        import psutil

        total = 0.0
        for process in [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children()]:
            times = process.cpu_times()
            total += times.user + times.system
        return total

    def log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # gunicorn's graceful shutdown
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for path in self.folder.iterdir():
            path.unlink()
        self.folder.rmdir()


def gunicorn_version() -> str:
    try:
        import importlib.metadata

        return importlib.metadata.version("gunicorn")
    except Exception:
        return "?"


# --------------------------------------------------------------------------- the run


def demo_folder() -> Path:
    """The demo's analysis in results/demo, (re)computed by ``app.demo_results`` when needed."""
    import app

    return app.demo_results(app.ConsoleProgress(quiet=True), out=str(ROOT / "results" / "demo")).resolve()


def system_busy_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def probe_visit_plan(host: str, port: int, flags: list[dict]) -> bool:
    """Whether anonymous viewers may plan visits on this server (not on the demo: reviews make it team-only)."""
    flag_ids = [f["properties"]["flag_id"] for f in flags[:2]]
    if not flag_ids:
        return False
    answer = fetch(host, port, "GET", api_path("/api/visit-plan.csv", {"flag": flag_ids}))
    return answer.status == 200


ACTION_PROPS = [f"{ids.PERIOD}.value", f"{ids.FLAG_TYPES}.value", f"{ids.SEVERITIES}.value",
                f"{ids.FLAG_TABLE}.selectedRows", f"{ids.CONCESSIONS_LAYER}.clickData", f"{ids.FLAGS_LAYER}.clickData"]  # fmt: skip


def run(clients: int, duration_s: float, workers: int, results: Path | None = None, url: str | None = None,
        max_requests: int = 200_000, think_ms: float = 0.0, seed: int = 1, ramp_up_s: float = 2.0) -> dict:  # fmt: skip
    """Start the server (unless ``url``), drive it, stop it; the numbers as a dict."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"--clients must be 1..{MAX_CLIENTS}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise ValueError(f"--duration must be in (0, {MAX_DURATION_S:.0f}] seconds")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"--workers must be 1..{MAX_WORKERS}")
    if not 1 <= max_requests <= MAX_REQUESTS:
        raise ValueError(f"--max-requests must be 1..{MAX_REQUESTS}")
    if not 0 <= think_ms <= 60_000:
        raise ValueError("--think-ms must be 0..60000")
    if not 0 <= ramp_up_s < duration_s:
        raise ValueError("--ramp-up must be 0 or more and shorter than --duration")
    server = None
    if url is None:
        server = Gunicorn(Path(results).resolve() if results else demo_folder(), workers)
        host, port = "127.0.0.1", server.port
    else:
        host, port = loopback_target(url)
    try:
        if server is not None:
            server.start()
            server.wait_ready(host)
        site = setup(host, port, max_requests, duration_s, think_ms)
        before = usage(server)
        starts = [ramp_up_s * i / clients for i in range(clients)]
        threads = [threading.Thread(target=Client(site, seed * 1000 + i, starts[i], i / clients).run, daemon=True)
                   for i in range(clients)]  # fmt: skip
        # The tabs' parsed layouts are millions of objects without cycles: a full collection
        # over them would pause every client thread and show up as server latency.
        collecting = gc.isenabled()
        gc.disable()
        try:
            site.recorder.start()
            for thread in threads:
                thread.start()
            give_up = time.monotonic() + duration_s + REQUEST_TIMEOUT_S + 10
            for thread in threads:
                thread.join(timeout=max(give_up - time.monotonic(), 0.1))
        finally:
            if collecting:
                gc.enable()
        stuck = sum(thread.is_alive() for thread in threads)
        after = usage(server)
        pids = server.worker_pids() if server else []
    finally:
        if server is not None:
            server.stop()
    return summary(site, server, pids, before, after, stuck, clients, duration_s, think_ms, ramp_up_s, url)


def setup(host: str, port: int, max_requests: int, duration_s: float, think_ms: float) -> Site:
    """What every client shares, learnt from the server: its callback map and the page's components."""
    dependencies = json.loads(fetch(host, port, "GET", "/_dash-dependencies").body)
    layout = json.loads(fetch(host, port, "GET", "/_dash-layout", headers={"Accept-Encoding": ACCEPT_ENCODING}).body)
    props: dict[str, object] = {}
    types: dict[str, str] = {}
    walk_layout(layout, props, types)
    dash = DashMap(dependencies, set(types))
    unknown = [key for key in ACTION_PROPS if key not in dash.by_input]
    if unknown:
        raise SystemExit(f"load test: no callback listens to {unknown}; update the load test's actions")
    flags = (props.get(f"{ids.FLAGS_LAYER}.data") or {}).get("features", [])
    site = Site(host, port, dash, Recorder(max_requests, duration_s), probe_visit_plan(host, port, flags),
                think_ms / 1000)  # fmt: skip
    kinds = {*PAGE_KINDS, *(f"api /api/{a.removeprefix('api ')}" for a in API_ACTIONS)}
    if not site.visit_plan_public:
        kinds.discard("api /api/visit-plan.csv")
    kinds |= {dash.callbacks[i].kind for i in dash.reachable(ACTION_PROPS)}
    for key, value in props.items():
        if key.endswith(".url") and isinstance(value, str) and value.startswith("/map/"):
            kinds.add(image_kind(value))
    site.expected_kinds = sorted(kinds)
    return site


def usage(server: Gunicorn | None) -> dict:
    """CPU seconds so far (server, this process, the whole machine), load average, requests per worker."""
    return {"server": server.cpu_seconds() if server else 0.0, "client": time.process_time(),
            "busy": system_busy_seconds(), "load": list(os.getloadavg()),
            "access": server.access() if server else []}  # fmt: skip


def summary(site: Site, server: Gunicorn | None, pids: list[int], before: dict, after: dict, stuck: int,
            clients: int, duration_s: float, think_ms: float, ramp_up_s: float, url: str | None) -> dict:  # fmt: skip
    """The run's numbers: per kind, in all, and who used the CPUs."""
    recorder = site.recorder
    elapsed = max(recorder.last_done - recorder.started, 1e-9)
    during = after["access"][len(before["access"]) :]  # the log only grows
    served: dict[int, int] = defaultdict(int)
    in_worker: dict[str, list[float]] = defaultdict(list)
    for pid, request, ms in during:
        served[pid] += 1
        in_worker[request].append(ms / 1000)
    server_cpu = after["server"] - before["server"] if server else None
    client_cpu = after["client"] - before["client"]
    other_cpu = max(after["busy"] - before["busy"] - client_cpu - (server_cpu or 0.0), 0.0)
    kinds = {}
    for kind in recorder.kinds:
        values = recorder.latencies.get(kind, [])
        kinds[kind] = {"count": len(values) + recorder.errors.get(kind, 0), "errors": recorder.errors.get(kind, 0),
                       **percentiles(values)}  # fmt: skip
    errors = sum(recorder.errors.values()) + stuck
    judged = {k: v["p95"] for k, v in kinds.items() if k.startswith(("api ", "dash "))}
    worst = max(judged, key=judged.get) if judged else None
    requests = sum(k["count"] for k in kinds.values())
    everything = [v for values in recorder.latencies.values() for v in values]
    return {
        "server": f"gunicorn app:server ({gunicorn_version()}, sync workers)" if server else url,
        "results": str(server.results) if server else None,
        "clients": clients,
        "think_ms": think_ms,
        "ramp_up_s": ramp_up_s,
        "duration_s": duration_s,
        "elapsed_s": elapsed,
        "stopped_by": recorder.stopped_by,
        "requests": requests,
        "errors": errors,
        "stuck_clients": stuck,
        "throughput_per_s": requests / elapsed,
        "all": {"count": requests, "errors": errors, **percentiles(everything)},
        "kinds": kinds,
        "expected_kinds": site.expected_kinds,
        "missing_kinds": sorted(set(site.expected_kinds) - set(kinds)),
        "error_samples": recorder.error_samples,
        "workers": len(pids) if server else None,
        "requests_per_worker": sorted((served.get(pid, 0) for pid in pids), reverse=True),
        "time_in_worker": {request: {"count": len(v), **percentiles(v)} for request, v in sorted(in_worker.items())},
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_before": before["load"],
        "load_average_after": after["load"],
        "cores_busy_server": None if server_cpu is None else server_cpu / elapsed,
        "cores_busy_client": client_cpu / elapsed,
        "cores_busy_other": other_cpu / elapsed,
        "visit_plan_public": site.visit_plan_public,
        "goal_p95_s": GOAL_P95_S,
        "worst_p95_kind": worst,
        "worst_p95_s": judged.get(worst, float("nan")),
        "goal_met": errors == 0 and bool(judged) and max(judged.values()) < GOAL_P95_S,
    }


def format_report(r: dict) -> str:
    ms = lambda s: f"{s * 1000:8.0f}"  # noqa: E731
    think = f"think time {r['think_ms']:g} ms" if r["think_ms"] else "no think time"
    lines = [
        f"minewatch load test: {r['clients']} clients (started over {r['ramp_up_s']:g} s), closed loop, {think}, "
        f"{r['duration_s']:g} s, against {r['server']}",
        f"machine: {r['cpu_count']} CPUs ({r['cpus_usable']} usable); load average before "
        + " ".join(f"{x:.2f}" for x in r["load_average_before"]),
        "",
        f"{'kind':42s} {'count':>7s} {'errors':>6s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} {'max ms':>8s}",
    ]
    for kind, k in sorted(r["kinds"].items()):
        lines.append(
            f"{kind:42s} {k['count']:7d} {k['errors']:6d} {ms(k['p50'])} {ms(k['p95'])} {ms(k['p99'])} {ms(k['max'])}"
        )
    a = r["all"]
    lines.append(
        f"{'all':42s} {a['count']:7d} {a['errors']:6d} {ms(a['p50'])} {ms(a['p95'])} {ms(a['p99'])} {ms(a['max'])}"
    )
    workers = "unknown (external server)" if r["workers"] is None else f"{r['workers']}"
    server_cpu = "?" if r["cores_busy_server"] is None else f"{r['cores_busy_server']:.2f}"
    lines += [
        "",
        f"throughput: {r['throughput_per_s']:.1f} requests/s ({r['requests']} requests in {r['elapsed_s']:.1f} s; "
        f"stopped by {r['stopped_by']})",
        f"server: {workers} workers; requests per worker {r['requests_per_worker']}; "
        f"CPU busy: server {server_cpu} cores, load generator {r['cores_busy_client']:.2f}, "
        f"other processes {r['cores_busy_other']:.2f}",
        "load average after " + " ".join(f"{x:.2f}" for x in r["load_average_after"]),
    ]
    if r["time_in_worker"]:
        lines += ["", "time inside a worker (gunicorn's access log; the rest of the latency is waiting for a worker):"]
        lines += [f"  {request:40s} {t['count']:7d}        {ms(t['p50'])} {ms(t['p95'])} {ms(t['p99'])} {ms(t['max'])}"
                  for request, t in r["time_in_worker"].items()]  # fmt: skip
    lines += [
        "",
        f"visit-plan API: {'in the mix (public)' if r['visit_plan_public'] else 'not in the mix (team only here)'}",
    ]
    if r["missing_kinds"]:
        lines.append(f"not exercised (run longer): {', '.join(r['missing_kinds'])}")
    verdict = "met" if r["goal_met"] else "NOT met"
    lines.append(f"goal: p95 < {r['goal_p95_s'] * 1000:.0f} ms for the API and the Dash callbacks, no error: {verdict} "
                 f"(worst p95: {r['worst_p95_kind']} {r['worst_p95_s'] * 1000:.0f} ms)")  # fmt: skip
    if r["stuck_clients"]:
        lines.append(f"{r['stuck_clients']} clients did not finish")
    if r["error_samples"]:
        lines += [
            "",
            f"errors ({r['errors']}), first {len(r['error_samples'])}:",
            *[f"  {e}" for e in r["error_samples"]],
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60, at most 900)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--results", metavar="DIR", help="a folder written by 'analyze' (default: the demo's)")
    parser.add_argument("--url", help="drive a running server at http://127.0.0.1:PORT instead (loopback only)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause between a client's actions (default 0)")
    parser.add_argument("--ramp-up", type=float, default=2.0, metavar="SECONDS",
                        help="start the clients evenly over this time (default 2; 0: all at once)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="random seed of the clients' choices")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.url:
        try:
            loopback_target(args.url)
        except ValueError as error:
            parser.error(str(error))
    try:
        report = run(args.clients, args.duration, args.workers, args.results, args.url, args.max_requests,
                     args.think_ms, args.seed, args.ramp_up)  # fmt: skip
    except ValueError as error:
        parser.error(str(error))
    print(format_report(report), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str) + "\n")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
