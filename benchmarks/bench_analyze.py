"""Whole-``analyze`` benchmark on a large generated field: time and peak memory.

Generates (once, in ``benchmarks/_data/large/``, never committed) 5 periods of
20,000 x 20,000 float32 activity rasters at 10 m (200 km x 200 km, written block by
block), 3,000 concessions and their production, then runs ``python app.py analyze`` on
them in a child process and prints its wall time and peak resident memory (goal: under
2 GB, since rasters are read in strips). Run: ``python benchmarks/bench_analyze.py``;
``--size 5000`` makes a quick small version.
"""

from __future__ import annotations

import argparse
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


def make_field(folder: Path, size: int, n_concessions: int = 3000, n_pits: int = 20_000) -> None:
    """Write concessions, production and one raster per year into ``folder``."""
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
    activity = folder / "activity"
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
    for k, year in enumerate(YEARS):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20_000, help="raster width and height in pixels")
    args = parser.parse_args()
    folder = ROOT / "benchmarks" / "_data" / f"large_{args.size}"
    if not (folder / "activity" / f"{YEARS[-1]}.tif").exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating a {args.size:,} x {args.size:,} field in {folder} (once)...", flush=True)
        make_field(folder, args.size)
    command = [
        sys.executable, str(ROOT / "app.py"), "analyze",
        "--concessions", str(folder / "concessions.gpkg"),
        "--production", str(folder / "production.csv"),
        "--activity", str(folder / "activity"),
        "--out", str(folder / "out"),
    ]  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"analyze failed:\n{result.stderr}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    pixels = args.size**2 * len(YEARS)
    print(result.stdout.strip())
    print(f"\n{len(YEARS)} periods of {args.size:,} x {args.size:,} pixels ({pixels / 1e9:.1f} gigapixels)")
    print(f"analyze wall time: {elapsed:,.1f} s ({pixels / elapsed / 1e6:,.1f} megapixels/s)")
    print(f"analyze peak resident memory: {peak_mib:,.0f} MiB (goal: under 2,048 MiB)")


if __name__ == "__main__":
    main()
