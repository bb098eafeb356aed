"""The load test (benchmarks/load_test.py), briefly: 3 clients against 2 gunicorn workers for
a few seconds end in no error, with every kind of request exercised. Its latencies are not
asserted here: speed is measured by the benchmark itself, not by the tests."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "load_test.py"

# What the page and the API must have answered at least once (the load test's own list is
# derived from the app's callback map; this one is written down so a shrinking map shows).
ESSENTIAL_KINDS = {
    "GET /",
    "GET /_dash-layout",
    "GET /_dash-dependencies",
    "GET /map/activity/{period}.png",
    "api /api/flags.geojson",
    "api /api/flags.csv",
    "api /api/concession_stats.csv",
    "api /api/concessions.geojson",
    "dash url.search",
    "dash flags-layer.hideout",
    "dash flag-table.rowData",
    "dash footprints-layer.hideout",
    "dash activity-overlay.url",
    "dash period-label.children",
    "dash selection.data",
    "dash details.children",
    "dash map.viewport",
    "dash download-geojson.href",
    "dash national-panel.children",
}


def load_test_module():
    if "minewatch_load_test" not in sys.modules:
        spec = importlib.util.spec_from_file_location("minewatch_load_test", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["minewatch_load_test"]


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory) -> Path:
    """The bundled demo's analysis in a temporary folder (its review database and key beside it):
    a copy of results/demo when that is current, else analysed afresh (``app.demo_results``)."""
    import app

    out = tmp_path_factory.mktemp("load") / "demo"
    if (ROOT / "results" / "demo" / "provenance.json").is_file():
        shutil.copytree(ROOT / "results" / "demo", out)
    return app.demo_results(app.ConsoleProgress(quiet=True), out=str(out))


def test_three_clients_two_workers_no_error_and_every_kind_exercised(demo_results, tmp_path):
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--clients", "3", "--workers", "2", "--duration", "4", "--ramp-up", "0",
         "--results", str(demo_results), "--json", str(report_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode == 0, f"load test failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    report = json.loads(report_path.read_text())
    assert report["errors"] == 0 and not report["error_samples"]
    assert report["workers"] == 2
    assert len(report["requests_per_worker"]) == 2 and min(report["requests_per_worker"]) > 0
    kinds = report["kinds"]
    assert not report["missing_kinds"], f"never exercised: {report['missing_kinds']}"
    assert not ESSENTIAL_KINDS - set(kinds), f"never exercised: {sorted(ESSENTIAL_KINDS - set(kinds))}"
    assert all(k["count"] > 0 and k["errors"] == 0 for k in kinds.values())
    assert report["requests"] == sum(k["count"] for k in kinds.values())
    assert "p95 ms" in result.stdout and "throughput:" in result.stdout


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.8:8050", "http://192.168.1.20:8050", "http://example.org:8050", "https://127.0.0.1:8050",
     "http://127.0.0.1:8050/dashboard", "http://[::ffff:10.0.0.8]:8050"],
)  # fmt: skip
def test_refuses_every_target_but_loopback(url):
    module = load_test_module()
    with pytest.raises(ValueError, match="127.0.0.1"):
        module.loopback_target(url)
    with pytest.raises(SystemExit) as exit_info:  # the command line stops before any request
        module.main(["--url", url, "--duration", "1"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:8050", "http://127.0.0.2:9000/", "http://[::1]:8050"])
def test_accepts_loopback_targets(url):
    host, port = load_test_module().loopback_target(url)
    assert port in (8050, 9000) and host in ("127.0.0.1", "127.0.0.2", "::1")
