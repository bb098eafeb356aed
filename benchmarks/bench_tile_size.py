"""build-activity on band files in 1024-pixel blocks, as Sentinel-2's are: 512-pixel tiles against the default.

Sentinel-2's 10 m band files are JPEG 2000 in 1024-pixel tiles (``gdalinfo`` shows
``Block=1024x1024``; OpenJPEG's developers recompress a Sentinel-2 band with
``opj_compress -n 5 -t 1024,1024`` to match it), and a COG's blocks can be as wide. GDAL
decodes a file block by block. A build tile narrower than a block decodes that block
once for each tile that touches it, because a task's GDAL block cache (16 MiB) cannot
keep a whole date stack of blocks for the next tile. So ``build-activity`` makes its
tiles as wide as the files' tiles, up to 1024 pixels
(``layers.activity_build.tile_px_for``), unless ``--tile-px`` says otherwise.

This measures that choice. It copies one of ``bench_activity.py``'s SYNTHETIC scene
sets (generated into ``benchmarks/_data/`` on first use; DEFLATE GeoTIFFs in 256-pixel
blocks) once, as JPEG 2000 (``--format jp2``, the default: 1024-pixel tiles, 5
resolution levels, lossless) or as DEFLATE GeoTIFFs in 1024-pixel blocks (``--format
gtiff``), with the files' tags, scales and offsets (so that the copies still declare
themselves synthetic and read the same). Then, for 512-pixel tiles and for the default,
on a fresh one-worker ``dask.distributed.LocalCluster`` each (one thread,
``layers.dask_client.BATCH_SETTINGS``): a cold build and ``--builds`` warm ones, with
the worker's peak resident memory (sampled every 20 ms). The floor is
``bench_activity.py``'s plain read of the copies: every band the build reads, read
whole on one thread; the same read of the originals is printed beside it. It prints
each setting's fastest warm build, its ratio to the floor, and the speed-up of the
default over 512-pixel tiles.

Run: ``python benchmarks/bench_tile_size.py`` (1024 x 1024 pixels, one 10 m block a
file: the default is one tile; about 3 minutes); ``--size-px 2048`` for files of 2 x 2
blocks (about 12 minutes); ``--format gtiff`` for GeoTIFF copies.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_activity import (  # noqa: E402
    DATA,
    WARM_RUNS,
    PeakSampler,
    batch_cluster,
    plain_read_s,
    scenes_of_size,
)

FORMATS = {  # suffix, creation options: 1024-pixel blocks
    "jp2": (
        ".jp2",
        dict(
            driver="JP2OpenJPEG",
            QUALITY=100,
            REVERSIBLE="YES",
            BLOCKXSIZE=1024,
            BLOCKYSIZE=1024,
            RESOLUTIONS=5,
            WRITE_METADATA="YES",
        ),
    ),
    "gtiff": (".tif", dict(driver="GTiff", compress="deflate", tiled=True, blockxsize=1024, blockysize=1024)),
}


def copy_in_1024_blocks(source: Path, form: str) -> Path:
    """The synthetic scene set in ``source`` copied to ``form`` (a key of :data:`FORMATS`), made on first use."""
    import rasterio

    suffix, options = FORMATS[form]
    folder = DATA / f"{source.name}_{form}_1024px_blocks"
    if (folder / "done").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=DATA, prefix=f".{form}-"))
    print(f"copying {source.name} as {form} in 1024-pixel blocks into {folder} (once)...", flush=True)
    for path in sorted(source.glob("SYNTH_*.tif")):
        with rasterio.open(path) as band:
            profile = dict(
                width=band.width,
                height=band.height,
                count=1,
                dtype=band.dtypes[0],
                crs=band.crs,
                transform=band.transform,
                nodata=band.nodata,
                **options,
            )
            with rasterio.open(staging / f"{path.stem}{suffix}", "w", **profile) as copy:
                copy.write(band.read(1), 1)
                copy.update_tags(**{k: v for k, v in band.tags().items() if k != "AREA_OR_POINT"})
                copy.scales, copy.offsets = band.scales, band.offsets
    (staging / "done").touch()
    staging.rename(folder)
    return folder


def run_setting(scenes: Path, tile_px: int | None, builds: int) -> dict:
    """A cold build and ``builds`` warm ones with ``tile_px`` (None: the default) on a fresh one-worker cluster."""
    import rasterio

    from layers.activity_build import build_activity

    seconds = []
    with batch_cluster(1) as client, tempfile.TemporaryDirectory(dir=DATA) as out:
        (worker_pid,) = client.run(os.getpid).values()
        with PeakSampler({"worker": worker_pid}) as sampler:
            for build in range(1 + builds):
                started = time.perf_counter()
                build_activity(scenes, Path(out) / str(build), scheduler=client, tile_px=tile_px)
                seconds.append(time.perf_counter() - started)
        with rasterio.open(Path(out) / str(builds) / "2021.tif") as written:
            block_px = written.block_shapes[0][1]
    return {"cold_s": seconds[0], "warm_s": min(seconds[1:]), "tile_px": block_px, "peak": sampler.peak_mib["worker"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-px", type=int, default=1024, help="scene width and height in pixels (default 1024)")
    parser.add_argument("--builds", type=int, default=1, help="warm builds per setting, the fastest counts (default 1)")
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="jp2", help="copy to JPEG 2000 (default) or GeoTIFF (DEFLATE)"
    )
    args = parser.parse_args()
    if args.builds < 1:
        parser.error("--builds must be at least 1")

    DATA.mkdir(exist_ok=True)
    original = scenes_of_size(args.size_px)
    scenes = copy_in_1024_blocks(original, args.format)
    floors = {}
    for folder in (original, scenes):
        plain_read_s(folder)  # warms the page cache
        floors[folder] = min(plain_read_s(folder) for _ in range(WARM_RUNS))
    plain_s = floors[scenes]
    results = {name: run_setting(scenes, tile_px, args.builds) for name, tile_px in (("512", 512), ("default", None))}
    print(f"\n{scenes.name}: SYNTHETIC scenes as {args.format} in 1024-pixel blocks, 1 worker (one thread)")
    print(
        f"plain read (every band the build reads, whole, one thread): {plain_s:.2f} s; of the originals (DEFLATE "
        f"GeoTIFF, 256-pixel blocks): {floors[original]:.2f} s "
        f"(the copies take {plain_s / floors[original]:.1f}x as long)"
    )
    print(f"{'tiles':22s} {'cold s':>8s} {'warm s':>8s} {'warm/plain':>11s} {'worker peak':>12s}")
    for name, r in results.items():
        label = f"{r['tile_px']} px" + (" (the default)" if name == "default" else " (--tile-px 512)")
        print(f"{label:22s} {r['cold_s']:8.2f} {r['warm_s']:8.2f} {r['warm_s'] / plain_s:10.2f}x {r['peak']:8.0f} MiB")
    speedup = results["512"]["warm_s"] / results["default"]["warm_s"]
    print(f"the default tiles build {speedup:.2f}x faster than 512-pixel tiles (warm)")


if __name__ == "__main__":
    main()
