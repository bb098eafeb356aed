"""layers.network: GDAL makes no request unless one remote file is allowed, for one read.

Data: a tiny HTTP server on 127.0.0.1 in a thread (:class:`RecordingServer`), which
records every request it receives and serves byte ranges of in-memory files, and a
4 x 4 GeoTIFF made in the test. The server counts what really reached it: a refusal
that still sent a request would show.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from rasterio.transform import from_origin

from layers.network import (
    OFFLINE_GDAL_CONFIG,
    apply_offline_policy,
    offline_policy_applied,
    redact_url,
    remote_gdal_config,
    remote_reads,
    stac_api_access,
    user_proxy,
    vsicurl_path,
)

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class RecordingServer:
    """An HTTP server on 127.0.0.1 that records requests and serves files with byte ranges.

    It runs in a forked process, not a thread: rasterio holds Python's GIL while GDAL
    opens a dataset, so a server thread in the test's process could not answer GDAL.
    ``routes`` maps a path (``/scenes/B04.tif``) to bytes, or to a callable
    ``(method, path, query, body) -> (status, content_type, payload)`` run in the
    server process; anything else is 404. :attr:`requests` lists what arrived.
    ``tokens`` maps a path prefix to a query string that its requests must carry (else
    403, as a storage service refusing an unsigned URL); ``refuse_ranges_from`` maps a
    path prefix to a byte offset from which range requests get 403 (storage whose token
    ran out in the middle of reading a file). Set them before entering.
    """

    def __init__(self, routes: dict[str, bytes | Callable] | None = None, log_dir: Path | None = None):
        self.routes = dict(routes or {})
        self.tokens: dict[str, str] = {}
        self.refuse_ranges_from: dict[str, int] = {}
        self.log = Path(tempfile.mkdtemp(dir=log_dir)) / "requests.jsonl"
        self.log.touch()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client hanging up is not news
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.process = multiprocessing.get_context("fork").Process(target=self._serve, daemon=True)

    def __enter__(self) -> RecordingServer:
        self.process.start()
        self.httpd.server_close()  # the child has its own copy of the listening socket
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(5)

    @property
    def requests(self) -> list[tuple[str, str, str | None]]:
        """``(method, path with query, Range header)`` of every request received so far."""
        lines = self.log.read_text().splitlines()
        return [tuple(entry[:3]) for entry in map(json.loads, lines)]

    @property
    def bytes_sent(self) -> int:
        """Body bytes sent so far."""
        return sum(json.loads(line)[3] for line in self.log.read_text().splitlines())

    def _serve(self) -> None:
        self.httpd.serve_forever()

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server._answer(self)

            do_HEAD = do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        return Handler

    def _answer(self, handler) -> None:
        path, _, query = handler.path.partition("?")
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        wanted = handler.headers.get("Range")
        route = self.routes.get(path)
        headers = {}
        refused = any(path.startswith(prefix) and token not in query for prefix, token in self.tokens.items())
        first_byte = int(wanted.removeprefix("bytes=").partition("-")[0] or 0) if wanted else 0
        refused = refused or any(
            path.startswith(prefix) and wanted and first_byte >= offset
            for prefix, offset in self.refuse_ranges_from.items()
        )
        if refused:
            status, content_type, payload = 403, "text/plain", b"AuthenticationFailed: no valid token"
        elif callable(route):
            status, content_type, payload = route(handler.command, path, query, body)
        elif route is None:
            status, content_type, payload = 404, "text/plain", b"not found"
        elif wanted and wanted.startswith("bytes=") and "," not in wanted:
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start, end = int(first), min(int(last) if last else len(route) - 1, len(route) - 1)
            status, content_type, payload = 206, "application/octet-stream", route[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(route)}"
        else:
            status, content_type, payload = 200, "application/octet-stream", route
            headers["Accept-Ranges"] = "bytes"
        sent = len(payload) if handler.command != "HEAD" else 0
        with open(self.log, "a") as log:  # before answering: the client may look as soon as it has the answer
            log.write(json.dumps([handler.command, handler.path, wanted, sent]) + "\n")
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if sent:
            handler.wfile.write(payload)


@contextmanager
def preserved_environment() -> Iterator[None]:
    """Put ``os.environ`` back as it was (through putenv/unsetenv, which GDAL sees)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@pytest.fixture
def offline():
    """The offline policy in force for one test, with no proxy of the machine's in the way."""
    with preserved_environment():
        for key in PROXY_VARIABLES + tuple(OFFLINE_GDAL_CONFIG):
            os.environ.pop(key, None)
        for key in [k for k in os.environ if k.startswith("MINEWATCH_USER_")]:  # an earlier main() in this process
            del os.environ[key]
        os.environ["NO_PROXY"] = "127.0.0.1,localhost"  # a user's exemption: the policy must override it
        apply_offline_policy()
        yield


def tiny_geotiff(path: Path) -> bytes:
    with rasterio.open(
        path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16", crs="EPSG:32736",
        transform=from_origin(500_000, 7_900_000, 10, 10),
    ) as dataset:  # fmt: skip
        dataset.write(np.arange(16, dtype=np.uint16).reshape(1, 4, 4))
    return path.read_bytes()


def open_raster(name: str) -> None:
    with rasterio.open(name) as dataset:
        dataset.read(1)


def refused_attempts(url: str) -> dict[str, Callable[[], object]]:
    """Every way we know to make GDAL fetch ``url``'s server, through both bundled GDALs."""
    return {
        "/vsicurl/": lambda: open_raster(f"/vsicurl/{url}/x.tif"),
        "plain http URL": lambda: open_raster(f"{url}/y.tif"),
        "/vsicurl_streaming/": lambda: open_raster(f"/vsicurl_streaming/{url}/s.tif"),
        "/vsis3/ (endpoint on the server)": lambda: open_raster("/vsis3/bucket/z.tif"),
        "WMS driver (CPLHTTPFetch)": lambda: open_raster(f"WMS:{url}/wms?SERVICE=WMS"),
        "pyogrio GeoJSON over http": lambda: pyogrio.read_info(f"{url}/a.geojson"),
        "pyogrio GeoJSON: driver prefix": lambda: pyogrio.read_info(f"GeoJSON:{url}/b.geojson"),
        "pyogrio OGC API Features": lambda: pyogrio.read_info(f"OAPIF:{url}/oapif"),
    }


@contextmanager
def attempt_server(tmp_path: Path) -> Iterator[RecordingServer]:
    """A server holding a real GeoTIFF at every path the attempts name, /vsis3/ pointed at it."""
    content = tiny_geotiff(tmp_path / "t.tif")
    routes = {path: content for path in ("/x.tif", "/y.tif", "/s.tif", "/bucket/z.tif")}
    with RecordingServer(routes, log_dir=tmp_path) as server:
        os.environ.update(
            AWS_S3_ENDPOINT=server.url.removeprefix("http://"), AWS_HTTPS="NO", AWS_NO_SIGN_REQUEST="YES",
            AWS_VIRTUAL_HOSTING="FALSE",
        )  # fmt: skip
        yield server


def test_offline_policy_refuses_every_gdal_request_before_it_leaves(offline, tmp_path):
    with attempt_server(tmp_path) as server:
        for name, attempt in refused_attempts(server.url).items():
            started = time.monotonic()
            with pytest.raises(Exception):  # noqa: B017 (rasterio and pyogrio raise their own kinds)
                attempt()
            assert time.monotonic() - started < 5, f"{name}: a refusal must be quick"
            assert server.requests == [], f"{name} reached the server: {server.requests}"


def test_without_the_policy_every_attempt_does_reach_the_server(tmp_path):
    """The control: each attempt above is a real request when nothing stops it."""
    with preserved_environment():
        for key in PROXY_VARIABLES + tuple(OFFLINE_GDAL_CONFIG):
            os.environ.pop(key, None)
        with attempt_server(tmp_path) as server:
            for name, attempt in refused_attempts(server.url).items():
                before = len(server.requests)
                with suppress(Exception):  # the 404s of the non-raster routes: only the requests count
                    attempt()
                assert len(server.requests) > before, f"{name} sent nothing even without the policy"


def test_remote_reads_allow_one_url_for_one_block_in_one_thread(offline, tmp_path):
    content = tiny_geotiff(tmp_path / "t.tif")
    with RecordingServer({"/a.tif": content, "/b.tif": content}) as server:
        allowed, other = vsicurl_path(f"{server.url}/a.tif"), vsicurl_path(f"{server.url}/b.tif")
        with remote_reads(allowed), rasterio.open(allowed) as dataset:
            assert dataset.read(1)[3, 3] == 15
            assert dataset.files == [allowed]  # no sidecar (.aux.xml, .ovr) was looked for
        assert {path for _, path, _ in server.requests} == {"/a.tif"}
        with remote_reads(allowed), pytest.raises(rasterio.errors.RasterioIOError):
            open_raster(other)  # another URL inside the block
        with pytest.raises(rasterio.errors.RasterioIOError):
            open_raster(allowed + "?again")  # the same server after the block
        results = {}

        def tile_task():  # what a build task does in a pool thread: allow its file itself
            with remote_reads(allowed), rasterio.open(allowed) as dataset:
                results["value"] = int(dataset.read(1)[0, 1])
            try:
                open_raster(other)
            except rasterio.errors.RasterioIOError:
                results["other"] = "refused"

        thread = threading.Thread(target=tile_task)
        thread.start()
        thread.join()
        assert results == {"value": 1, "other": "refused"}
        assert {path for _, path, _ in server.requests} == {"/a.tif"}


def test_remote_reads_give_up_on_a_dead_server_within_the_timeouts(offline):
    with RecordingServer() as server:
        dead = vsicurl_path(f"{server.url}/gone.tif")
    started = time.monotonic()
    with remote_reads(dead), pytest.raises(rasterio.errors.RasterioIOError):
        open_raster(dead)
    assert time.monotonic() - started < 30


def test_policy_is_idempotent_and_keeps_the_users_proxy_for_remote_reads():
    environ = {"GDAL_HTTP_PROXY": "http://proxy.example:3128", "no_proxy": "stac.internal,.corp"}
    apply_offline_policy(environ)
    apply_offline_policy(environ)
    assert offline_policy_applied(environ)
    assert environ["MINEWATCH_USER_GDAL_HTTP_PROXY"] == "http://proxy.example:3128"
    assert environ["MINEWATCH_USER_no_proxy"] == "stac.internal,.corp"
    outside = remote_gdal_config("/vsicurl/https://data.example/B04.tif", environ)
    assert outside["GDAL_HTTPS_PROXY"] == outside["GDAL_HTTP_PROXY"] == "http://proxy.example:3128"
    assert outside["CPL_VSIL_CURL_ALLOWED_FILENAME"] == "/vsicurl/https://data.example/B04.tif"
    assert outside["GDAL_HTTP_TIMEOUT"] == "120" and outside["GDAL_HTTP_MAX_RETRY"] == "3"
    assert user_proxy("https://stac.internal/v1/search", environ) == ""  # the user's exemption, honoured
    assert user_proxy("http://x.corp/a.tif", environ) == ""
    assert user_proxy("http://data.example/a.tif", {"http_proxy": "http://p:8080"}) == "http://p:8080"
    assert user_proxy("http://data.example/a.tif", {}) == ""
    with pytest.raises(ValueError):
        remote_gdal_config("/vsis3/bucket/key.tif", environ)
    with pytest.raises(ValueError):
        vsicurl_path("file:///etc/passwd")


def test_proj_downloads_no_grids_even_when_the_user_enabled_it():
    import pyproj.network

    with preserved_environment():
        os.environ["PROJ_NETWORK"] = "ON"
        pyproj.network.set_network_enabled(active=True)
        apply_offline_policy()
        assert not pyproj.network.is_network_enabled() and os.environ["PROJ_NETWORK"] == "OFF"
    pyproj.network.set_network_enabled()  # back to what the environment says


def test_stac_api_access_gives_requests_the_users_no_proxy_back(offline):
    assert os.environ["NO_PROXY"] == OFFLINE_GDAL_CONFIG["NO_PROXY"]
    with stac_api_access():
        assert os.environ["NO_PROXY"] == "127.0.0.1,localhost" and "no_proxy" not in os.environ
    assert offline_policy_applied()


def test_redact_url_drops_tokens_and_credentials():
    assert redact_url("https://u:p@host/a/B04.tif?sig=SECRET&st=1") == "https://host/a/B04.tif"


def test_the_command_line_applies_the_policy_first(tmp_path, capsys):
    import app

    with preserved_environment():
        for key in OFFLINE_GDAL_CONFIG:
            os.environ.pop(key, None)
        code = app.main(["build-activity", "--scenes", str(tmp_path / "none"), "--out", str(tmp_path / "o")])
        assert code == 2 and "no such file or folder" in capsys.readouterr().err
        assert offline_policy_applied()


@pytest.mark.parametrize(
    ("asset", "api", "refused"),
    [
        ("http://10.0.0.5/b04.tif", "https://8.8.8.8/v1", "a private or reserved address"),
        ("http://127.0.0.1:8080/b04.tif", "https://8.8.8.8/v1", "this machine (loopback)"),
        ("http://169.254.169.254/latest/b04.tif", "http://127.0.0.1:9000/v1", "a link-local address"),
        ("http://[::ffff:169.254.169.254]/b04.tif", "http://10.1.1.1/v1", "a link-local address"),
        ("http://[fe80::1]/b04.tif", "http://[::1]/v1", "a link-local address"),
        ("http://100.64.1.1/b04.tif", "https://8.8.8.8/v1", "a private or reserved address"),
        ("http://93.184.216.34/b04.tif", "https://8.8.8.8/v1", None),
        ("http://127.0.0.1:8080/b04.tif", "http://localhost:9000/v1", None),  # a local mirror and its files
        ("http://192.168.1.20/b04.tif", "http://127.0.0.1:9000/v1", None),
    ],
)
def test_stac_assets_may_not_be_on_more_private_addresses_than_the_api(asset, api, refused):
    from geo.errors import InputError
    from layers.network import require_asset_host

    if refused is None:
        require_asset_host(asset, api, "item x: asset red")
        return
    with pytest.raises(InputError, match=re.escape(refused)) as error:
        require_asset_host(asset, api, "item x: asset red")
    assert str(error.value).startswith("item x: asset red is on ") and "refused, not read" in str(error.value)
