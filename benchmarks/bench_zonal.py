"""Zonal step benchmark: minewatch against exactextract, rasterstats and the read floor.

Generates (once, in ``benchmarks/_data/``, never committed) an 8000 x 8000 float32
disturbance raster at 10 m (DEFLATE, 512 x 512 tiles) in WGS 84 / UTM 36S and 10,000
random polygons of which most overlap another; then, in one process, times for the
first 1,000 and for all 10,000 polygons:

- the floor: reading the raster once (1 GDAL thread, and all cores);
- minewatch's zonal step (``geo.scan`` over strips, as ``analyze`` runs it: read,
  check, threshold, integrate every polygon), without speckle removal (so it measures
  the same quantity as the others) and without footprint polygonisation;
- exactextract (coverage-weighted sum of the active mask), called directly;
- rasterstats (pixel centres; ``--skip-rasterstats`` leaves it out, it takes ~90 s);

and prints times, ratios, and how far minewatch's per-polygon active areas are from
exactextract's. Run: ``python benchmarks/bench_zonal.py`` (needs ``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin
from scipy import ndimage

SIZE = 8000
PIXEL_M = 10.0
ORIGIN = (300_000.0, 7_900_000.0)
CRS = "EPSG:32736"
THRESHOLD = 0.5
DATA = Path(__file__).resolve().parent / "_data"


def make_raster(path: Path, mask_path: Path) -> None:
    """A score raster of blobby 'pits' (about 8 % active) and its 0/1 active mask."""
    rng = np.random.default_rng(42)
    coarse = rng.random((SIZE // 40, SIZE // 40)).astype(np.float32)
    coarse = ndimage.gaussian_filter(coarse, 1.2)
    field = ndimage.zoom(coarse, 40, order=1)[:SIZE, :SIZE]
    field = (field - field.min()) / (field.max() - field.min())
    noise = rng.random((SIZE, SIZE), dtype=np.float32) * 0.25
    score = np.clip((field - 0.55) * 3.0 + noise, 0, 1).astype(np.float32)
    transform = from_origin(*ORIGIN, PIXEL_M, PIXEL_M)
    profile = dict(
        driver="GTiff",
        width=SIZE,
        height=SIZE,
        count=1,
        crs=CRS,
        transform=transform,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    )
    with rasterio.open(path, "w", dtype="float32", **profile) as dataset:
        dataset.write(score, 1)
    with rasterio.open(mask_path, "w", dtype="uint8", **profile) as dataset:
        dataset.write((score >= THRESHOLD).astype(np.uint8), 1)


def make_polygons(n: int) -> np.ndarray:
    """Random licence-like polygons (rotated rectangles and irregular blobs), 1-400 ha."""
    rng = np.random.default_rng(7)
    extent = SIZE * PIXEL_M
    shapes = []
    for i in range(n):
        x = ORIGIN[0] + rng.uniform(0.02, 0.98) * extent
        y = ORIGIN[1] - rng.uniform(0.02, 0.98) * extent
        radius = rng.uniform(60, 1100)
        if i % 2:
            shape = shapely.box(x - radius, y - radius * 0.6, x + radius, y + radius * 0.6)
            shape = shapely.affinity.rotate(shape, rng.uniform(0, 180))
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
            radii = radius * rng.uniform(0.5, 1.0, 12)
            shape = shapely.Polygon(np.column_stack([x + radii * np.cos(angles), y + radii * np.sin(angles)]))
        shapes.append(shapely.make_valid(shape))
    return np.array(shapes, dtype=object)


def overlapping_share(polygons: np.ndarray) -> float:
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    return float(len(np.unique(left[left != right])) / len(polygons))


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def read_floor(path: Path, threads: str) -> float:
    with rasterio.Env(GDAL_NUM_THREADS=threads, GDAL_CACHEMAX=64), rasterio.open(path) as dataset:
        return float(dataset.read(1).sum())


def minewatch_zonal(path: Path, polygons: np.ndarray) -> np.ndarray:
    """The project's zonal step as ``analyze`` runs it (active hectares per polygon)."""
    from geo.crs import area_crs_for
    from geo.periods import parse_period
    from geo.scan import scan_activity
    from geo.zonal import cut_rings
    from layers.activity import describe_raster

    raster = describe_raster(path, parse_period("2021"))
    grid = raster.grid
    pieces = cut_rings(polygons, grid.transform, grid.height, grid.width)
    with raster.reader() as read:
        scan = scan_activity(
            read,
            grid=grid,
            pieces=pieces,
            area_crs=area_crs_for(32.0, -19.6),
            threshold=THRESHOLD,
            min_patch_ha=0.0,
            footprints=False,
        )
    return scan.sums[0]


def exactextract_zonal(mask_path: Path, polygons: np.ndarray) -> np.ndarray:
    import exactextract
    import geopandas as gpd

    frame = gpd.GeoDataFrame(geometry=polygons, crs=CRS)
    result = exactextract.exact_extract(str(mask_path), frame, ["sum"], output="pandas")
    return result["sum"].to_numpy() * PIXEL_M * PIXEL_M / 1e4


def rasterstats_zonal(mask_path: Path, polygons: np.ndarray) -> np.ndarray:
    from rasterstats import zonal_stats

    stats = zonal_stats(list(polygons), str(mask_path), stats=["sum"], nodata=255)
    return np.array([s["sum"] or 0.0 for s in stats]) * PIXEL_M * PIXEL_M / 1e4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-rasterstats", action="store_true", help="leave out rasterstats (about 90 s at 10k)")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    raster, mask = DATA / "zonal_score.tif", DATA / "zonal_mask.tif"
    if not raster.exists() or not mask.exists():
        print("generating the 8000 x 8000 raster (once)...", flush=True)
        make_raster(raster, mask)
    polygons_all = make_polygons(10_000)
    print(f"raster {SIZE} x {SIZE} float32 at {PIXEL_M:g} m; cores: {os.cpu_count()}")
    print(f"polygons overlapping another: {overlapping_share(polygons_all):.0%} of 10,000")
    read_floor(raster, "1")  # warm the page cache so every method reads from memory
    minewatch_zonal(raster, polygons_all[:10])  # compile the integrator once (numba caches it on disk)
    for n in (1_000, 10_000):
        polygons = polygons_all[:n]
        floor_1, _ = timed(read_floor, raster, "1")
        floor_all, _ = timed(read_floor, raster, "ALL_CPUS")
        ours_s, ours = timed(minewatch_zonal, raster, polygons)
        theirs_s, theirs = timed(exactextract_zonal, mask, polygons)
        rs_s = float("nan")
        if not args.skip_rasterstats:
            rs_s, _ = timed(rasterstats_zonal, mask, polygons)
        big = theirs > 0.05
        relative = np.abs(ours[big] - theirs[big]) / theirs[big]
        print(f"\n--- {n:,} polygons ---")
        print(f"read floor, 1 thread          {floor_1:7.2f} s")
        print(f"read floor, all cores         {floor_all:7.2f} s")
        print(
            f"minewatch zonal step          {ours_s:7.2f} s   = {ours_s / theirs_s:.2f} x exactextract, "
            f"{ours_s / floor_1:.2f} x floor (1 thread), {ours_s / floor_all:.2f} x floor (all cores)"
        )
        print(f"exactextract                  {theirs_s:7.2f} s")
        print(
            f"rasterstats                   {rs_s:7.2f} s"
            + ("" if args.skip_rasterstats else f"   = {rs_s / ours_s:.1f} x minewatch")
        )
        print(
            f"areas vs exactextract: max relative difference {relative.max():.4%}, "
            f"median {np.median(relative):.5%} (polygons with > 0.05 ha active: {big.sum():,})"
        )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process: {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
