"""Dashboard benchmark in headless Chromium: first render, filter round trip, bytes.

For the bundled demo and for a generated field of 5,000 concessions and 20,000
footprints (written once to ``benchmarks/_data/dash_large/``, never committed), starts
``python app.py serve --results ...`` and drives Debian's Chromium (/usr/bin/chromium)
with Playwright, printing:

- time from navigation to the map's first complete render (all concessions drawn and
  the flag table filled);
- time from a filter change (untick one flag type) to the map and the table updated;
- bytes transferred (compressed, as on the wire) on first load and per filter change,
  and whether a filter change sent any geometry.

Goals (issue 3): demo first render < 2 s, round trip < 300 ms, first load < 2 MB;
5,000 concessions first render < 5 s, round trip < 500 ms, no geometry per filter change.
Run: ``python benchmarks/bench_dashboard.py`` (Chromium: ``apt-get install chromium``).
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]  # fmt: skip
ROUND_TRIPS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def large_results(n_concessions: int = 5000, n_footprints: int = 20_000) -> Path:
    """A saved analysis of a generated field (no rasters): concessions, footprints, flags."""
    from geo.analysis import Analysis
    from geo.flags import FLAG_COLUMNS, FLAG_TYPES, make_flag
    from layers.results import write_analysis

    folder = DATA / "dash_large"
    if (folder / "provenance.json").exists():
        return folder
    rng = np.random.default_rng(3)
    lon0, lat0 = 30.0, -20.0
    x = lon0 + rng.uniform(0, 2.0, n_concessions)
    y = lat0 + rng.uniform(0, 2.0, n_concessions)
    size = rng.uniform(0.003, 0.015, n_concessions)
    ids = [f"C{i:05d}" for i in range(n_concessions)]
    concessions = gpd.GeoDataFrame(
        {"concession_id": ids, "holder": [f"Holder {i % 300} (fictional)" for i in range(n_concessions)],
         "status": rng.choice(["active", "expired", "application"], n_concessions), "name": ids,
         "mineral": "diamond", "licence_ha": size**2 * 1.2e6},
        geometry=shapely.box(x, y, x + size, y + size * 0.8), crs=4326,
    )  # fmt: skip
    periods = ["2020", "2021", "2022", "2023", "2024"]
    fx = lon0 + rng.uniform(0, 2.0, n_footprints)
    fy = lat0 + rng.uniform(0, 2.0, n_footprints)
    blobs = [shapely.Point(a, b).buffer(rng.uniform(0.0003, 0.001), quad_segs=4) for a, b in zip(fx, fy, strict=True)]
    footprints = gpd.GeoDataFrame(
        {"period": rng.choice(periods, n_footprints), "footprint_id": [f"F{i}" for i in range(n_footprints)],
         "area_ha": rng.uniform(0.5, 10, n_footprints), "outside_ha": 0.0},
        geometry=blobs, crs=4326,
    )  # fmt: skip
    records = []
    for i in range(3000):
        concession = i % n_concessions
        record = make_flag(FLAG_TYPES[i % 5], periods[(i // 5) % 5], ids[concession], 0.2 + 0.8 * rng.random(),
                           f"generated flag {i}", concessions.geometry.iloc[concession],
                           concession_id=ids[concession], holder=concessions.holder.iloc[concession], area_ha=5.0)  # fmt: skip
        records.append(record)
    flags = gpd.GeoDataFrame(pd.DataFrame(records, columns=[*FLAG_COLUMNS, "geometry"]), geometry="geometry", crs=4326)
    stats = pd.DataFrame([(cid, p, 1.0, 0.0) for cid in ids[:200] for p in periods],
                         columns=["concession_id", "period", "active_ha", "carats"])  # fmt: skip
    stats["in_force"] = True
    stats["holder"] = "h"
    national = pd.DataFrame(
        columns=["country", "period", "national_carats", "reported_carats", "reports", "difference_pct"]
    )
    analysis = Analysis(concessions, stats, footprints, flags, national, {"synthetic": True, "inputs": []})
    return write_analysis(analysis, folder)


def demo_results() -> Path:
    folder = DATA / "dash_demo"
    if not (folder / "provenance.json").exists():
        demo = ROOT / "data" / "demo"
        subprocess.run([sys.executable, str(ROOT / "app.py"), "analyze", "--quiet",
                        "--concessions", str(demo / "concessions.gpkg"), "--production", str(demo / "production.csv"),
                        "--national", str(demo / "national.csv"), "--activity", str(demo / "activity"),
                        "--out", str(folder)], check=True)  # fmt: skip
    return folder


def serve(results: Path):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "serve", "--quiet", "--results", str(results),
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1)
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("the dashboard did not start")


def measure(url: str, n_concessions: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)  # for our probes
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        wire = {"bytes": 0}
        cdp.on(
            "Network.loadingFinished",
            lambda event: wire.__setitem__("bytes", wire["bytes"] + event["encodedDataLength"]),
        )
        callback_bodies: list[str] = []
        page.on("response", lambda r: callback_bodies.append(r.text()) if "_dash-update-component" in r.url else None)
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_function(
            f"window.minewatch && window.minewatch.drawn().concessions >= {n_concessions} "
            "&& document.querySelectorAll('#flag-table .ag-row').length > 0",
            timeout=120_000,
        )
        first_render = time.perf_counter() - start
        page.wait_for_load_state("networkidle")
        first_bytes = wire["bytes"]
        trips, trip_bytes, geometry_sent = [], [], False
        for i in range(ROUND_TRIPS):
            box = page.locator("#flag-types input").nth(i % 3)
            before_flags = page.evaluate("window.minewatch.drawn().flags")
            before_count = page.inner_text("#flag-count")
            wire["bytes"] = 0
            callback_bodies.clear()
            start = time.perf_counter()
            box.click()
            page.wait_for_function(
                "([f, c]) => window.minewatch.drawn().flags !== f && document.querySelector('#flag-count').innerText !== c",
                arg=[before_flags, before_count],
                timeout=30_000,
            )
            trips.append(time.perf_counter() - start)
            page.wait_for_load_state("networkidle")
            trip_bytes.append(wire["bytes"])
            geometry_sent |= any('"coordinates"' in body for body in callback_bodies)
        browser.close()
    return {
        "first_render_s": first_render,
        "first_load_bytes": first_bytes,
        "round_trip_s": statistics.median(trips),
        "round_trip_bytes": statistics.median(trip_bytes),
        "geometry_sent": geometry_sent,
    }


def main() -> None:
    fields = [("demo", demo_results(), 20), ("5,000 concessions / 20,000 footprints", large_results(), 5000)]
    for name, results, n_concessions in fields:
        process, url = serve(results)
        try:
            measure(url, n_concessions)  # warm the server's caches (layer GeoJSON, overlays)
            result = measure(url, n_concessions)
        finally:
            process.terminate()
            process.wait()
        print(f"\n--- {name} ---")
        print(f"first complete render      {result['first_render_s'] * 1000:8.0f} ms")
        print(f"first load transferred     {result['first_load_bytes'] / 1e6:8.2f} MB (compressed)")
        print(f"filter round trip (median) {result['round_trip_s'] * 1000:8.0f} ms over {ROUND_TRIPS} changes")
        print(
            f"bytes per filter change    {result['round_trip_bytes'] / 1e3:8.1f} kB; geometry sent: {result['geometry_sent']}"
        )


if __name__ == "__main__":
    main()
