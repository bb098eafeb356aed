"""Whole-``analyze`` benchmark on a large generated field: time and peak memory.

Generates (once, in ``benchmarks/_data/large/``, never committed) 5 periods of
20,000 x 20,000 float32 activity rasters at 10 m (200 km x 200 km, written block by
block), 3,000 concessions and their production, then runs ``python app.py analyze`` on
them in a child process and prints its wall time and peak resident memory (goal: under
2 GB, since rasters are read in strips). Run: ``python benchmarks/bench_analyze.py``;
``--size 5000`` makes a quick small version, ``--periods 3`` analyses the first three years.

``--workers N`` runs ``analyze`` a second time with its raster scans on a fresh local
Dask cluster of N single-threaded worker processes (``--scheduler tcp://...`` on an
existing cluster instead), checks that the outputs are byte for byte the same as
in-process, and prints both times and the workers' peak memory. E.g.
``python benchmarks/bench_analyze.py --size 8000 --periods 3 --workers 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window

ROOT = Path(__file__).resolve().parents[1]
PIXEL_M = 10.0
ORIGIN = (250_000.0, 8_000_000.0)
CRS = "EPSG:32736"
YEARS = ("2020", "2021", "2022", "2023", "2024")
BLOCK_ROWS = 1024


def make_field(
    folder: Path, size: int, n_concessions: int = 3000, n_pits: int = 20_000, years: tuple[str, ...] = YEARS
) -> Path:
    """Write concessions, production and one raster per year of ``years`` into ``folder``; return the raster folder.

    The rasters of the first years are the same whatever ``years`` holds; a folder per
    number of years (``activity`` for all five, ``activity_3`` for three...) keeps them apart.
    """
    rng = np.random.default_rng(11)
    extent = size * PIXEL_M
    x = ORIGIN[0] + rng.uniform(0.02, 0.95, n_concessions) * extent
    y = ORIGIN[1] - rng.uniform(0.05, 0.98, n_concessions) * extent
    width, height = rng.uniform(300, 3000, n_concessions), rng.uniform(300, 3000, n_concessions)
    concessions = gpd.GeoDataFrame(
        {
            "concession_id": [f"L{i:05d}" for i in range(n_concessions)],
            "holder": [f"Holder {i % 400} (fictional)" for i in range(n_concessions)],
            "status": rng.choice(["active", "active", "active", "expired", "application"], n_concessions),
            "expires": [None if s else "2021-12-31" for s in rng.random(n_concessions) > 0.2],
        },
        geometry=shapely.box(x, y - height, x + width, y),
        crs=CRS,
    )
    activity = folder / ("activity" if years == YEARS else f"activity_{len(years)}")
    if (activity / f"{years[-1]}.tif").exists():
        return activity
    concessions.to_file(folder / "concessions.gpkg", layer="concessions")
    production = pd.DataFrame(
        [
            (cid, year, int(rng.integers(0, 50_000)))
            for cid in concessions["concession_id"][: n_concessions // 2]
            for year in YEARS
        ],
        columns=["concession_id", "period", "carats"],
    )
    production.to_csv(folder / "production.csv", index=False)
    pits_col = rng.uniform(0, size, n_pits)
    pits_row = rng.uniform(0, size, n_pits)
    pits_r0 = rng.uniform(2, 8, n_pits)  # radius in pixels, grows each year
    activity.mkdir(exist_ok=True)
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs=CRS,
        nodata=-9999.0,
        transform=from_origin(*ORIGIN, PIXEL_M, PIXEL_M),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        predictor=3,
        BIGTIFF="YES",
    )
    for k, year in enumerate(years):
        radius = pits_r0 * (1 + 0.25 * k)
        with rasterio.open(activity / f"{year}.tif", "w", **profile) as dataset:
            for start in range(0, size, BLOCK_ROWS):
                stop = min(start + BLOCK_ROWS, size)
                block = np.zeros((stop - start, size), np.float32)
                hits = np.flatnonzero((pits_row + radius > start) & (pits_row - radius < stop))
                for i in hits:
                    r0, r1 = int(max(pits_row[i] - radius[i], start)), int(min(pits_row[i] + radius[i] + 1, stop))
                    c0, c1 = int(max(pits_col[i] - radius[i], 0)), int(min(pits_col[i] + radius[i] + 1, size))
                    rr, cc = np.ogrid[r0:r1, c0:c1]
                    disc = (rr - pits_row[i]) ** 2 + (cc - pits_col[i]) ** 2 <= radius[i] ** 2
                    block[r0 - start : r1 - start, c0:c1][disc] = 0.9
                dataset.write(block, 1, window=Window(0, start, size, stop - start))
        print(f"  wrote {year}.tif", flush=True)
    return activity


def run_analyze(folder: Path, activity: Path, out: Path, scheduler: str | None = None) -> tuple[float, str]:
    """Run ``python app.py analyze`` in a child process; return its wall time and summary."""
    command = [
        sys.executable, str(ROOT / "app.py"), "analyze",
        "--concessions", str(folder / "concessions.gpkg"),
        "--production", str(folder / "production.csv"),
        "--activity", str(activity),
        "--out", str(out),
    ]  # fmt: skip
    command += ["--scheduler", scheduler] if scheduler else []
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"analyze failed:\n{result.stderr}")
    return elapsed, result.stdout.strip()


@contextlib.contextmanager
def dask_cluster(workers: int, scheduler: str | None):
    """The address of an existing cluster, or of a fresh local one of ``workers`` single-threaded processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield scheduler, client
        return
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield cluster.scheduler_address, client


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000, help="raster width and height in pixels")
    parser.add_argument("--periods", type=int, default=len(YEARS), help=f"years to analyse, 1..{len(YEARS)}")
    parser.add_argument("--workers", type=int, default=0, help="also run on a local Dask cluster of N workers")
    parser.add_argument("--scheduler", help="also run on this existing Dask cluster (tcp://host:8786)")
    args = parser.parse_args()
    years = YEARS[: max(1, min(args.periods, len(YEARS)))]
    folder = ROOT / "benchmarks" / "_data" / f"large_{args.size}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"a {args.size:,} x {args.size:,} field of {len(years)} years in {folder} (generated once)...", flush=True)
    activity = make_field(folder, args.size, years=years)
    pixels = args.size**2 * len(years)
    print(f"\n{len(years)} periods of {args.size:,} x {args.size:,} pixels ({pixels / 1e9:.2f} gigapixels)")

    elapsed, summary = run_analyze(folder, activity, folder / "out")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(summary)
    print(f"analyze wall time: {elapsed:,.1f} s ({pixels / elapsed / 1e6:,.1f} megapixels/s)")
    print(f"analyze peak resident memory: {peak_mib:,.0f} MiB (goal: under 2,048 MiB)")
    if not (args.workers or args.scheduler):
        return

    with dask_cluster(args.workers, args.scheduler) as (address, client):
        n_workers = len(client.nthreads())
        on_dask, _ = run_analyze(folder, activity, folder / "out_dask", address)
        worker_mib = client.run(_peak_mib)
    same = all(
        (folder / "out" / name).read_bytes() == (folder / "out_dask" / name).read_bytes()
        for name in ("flags.csv", "flags.geojson", "concession_stats.csv", "footprints.geojson")
    )
    print(f"\non {n_workers} Dask workers ({address}): {on_dask:,.1f} s ({pixels / on_dask / 1e6:,.1f} megapixels/s), "
          f"{elapsed / on_dask:.2f}x in-process; outputs {'identical' if same else 'DIFFERENT'}")  # fmt: skip
    print(f"workers' peak resident memory: {', '.join(f'{m:,.0f}' for m in worker_mib.values())} MiB")
    if not same:
        sys.exit("the outputs on the cluster differ from in-process")


if __name__ == "__main__":
    main()
