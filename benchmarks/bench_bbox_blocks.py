"""build-activity with --bbox on band files in 1024-pixel blocks: a crop from a block corner (the default) against
the exact crop (``--exact-bbox``).

Sentinel-2's band files are JPEG 2000 in 1024-pixel tiles, and GDAL decodes a file block
by block (a 64-pixel window of such a file costs as much as its whole 1024-pixel block).
A build's tiles start at its grid's corner. A crop whose corner lies inside a block has
every tile straddle up to 2 x 2 blocks, so neighbouring tiles decode the same blocks
again. By default ``build-activity`` starts a crop on a corner of the files' blocks, up to
one block west and north of ``--bbox`` (``layers.sentinel2.output_grid``), and reads and
scores only the bbox (the pixels around it are nodata): each block is decoded once.

This measures both. It copies one of ``bench_activity.py``'s SYNTHETIC scene sets (2048
x 2048 pixels by default, 2 x 2 blocks a 10 m file) as ``bench_tile_size.py`` does:
JPEG 2000 (lossless, 1024-pixel tiles, the default) or DEFLATE GeoTIFF in 1024-pixel
blocks (``--format gtiff``). The bbox starts ``--offset-px`` pixels (default 512, half a
block) east and south of the files' corner and runs to their far corner; its round trip
through degrees widens it by a few pixels (a 1542-pixel crop for 1536 asked). On one
``dask.distributed.LocalCluster`` of one one-thread worker
(``layers.dask_client.BATCH_SETTINGS``) it builds the crop both ways, alternating, a cold
round then ``--builds`` warm ones each, and prints each way's grid, its fastest warm
build, the bbox's megapixels scored per second, and the speed-up of the default.

Run: ``python benchmarks/bench_bbox_blocks.py`` (about 5 minutes the first time, most of
it copying the scenes to JPEG 2000); ``--format gtiff`` where decoding is cheap.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_activity import DATA, batch_cluster, scenes_of_size  # noqa: E402
from bench_tile_size import FORMATS, copy_in_1024_blocks  # noqa: E402

WAYS = {"block corner (default)": False, "exact (--exact-bbox)": True}


def crop_bbox(scenes: Path, offset_px: int) -> tuple[float, float, float, float]:
    """WGS 84 degrees from ``offset_px`` east and south of the scenes' corner to their far corner."""
    import rasterio
    import rasterio.warp

    band = next(path for path in sorted(scenes.glob("*_B04_10m.*")) if path.suffix in (".tif", ".jp2"))
    with rasterio.open(band) as dataset:
        left, bottom, right, top = dataset.bounds
        pixel_m = dataset.res[0]
    west, south, east, north = rasterio.warp.transform_bounds(
        dataset.crs, "EPSG:4326", left + offset_px * pixel_m, bottom, right, top - offset_px * pixel_m
    )
    return west, south, east, north


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-px", type=int, default=2048, help="scene width and height in pixels (default 2048)")
    parser.add_argument(
        "--offset-px", type=int, default=512, help="the bbox's corner, pixels east and south of the files' (512)"
    )
    parser.add_argument("--builds", type=int, default=2, help="warm builds each way, the fastest counts (default 2)")
    parser.add_argument(
        "--format", choices=sorted(FORMATS), default="jp2", help="copy to JPEG 2000 (default) or GeoTIFF (DEFLATE)"
    )
    args = parser.parse_args()
    if args.builds < 1 or not 0 < args.offset_px < args.size_px:
        parser.error("--builds must be at least 1 and --offset-px within the scene")

    import rasterio

    from layers.activity_build import build_activity
    from layers.sentinel2 import SceneQuery

    DATA.mkdir(exist_ok=True)
    scenes = copy_in_1024_blocks(scenes_of_size(args.size_px), args.format)
    bbox = crop_bbox(scenes, args.offset_px)
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    grids = {}
    with batch_cluster(1) as client, tempfile.TemporaryDirectory(dir=DATA) as out:
        for build in range(1 + args.builds):
            for way, exact in WAYS.items():
                folder = Path(out) / f"{build}-{exact}"
                started = time.perf_counter()
                build_activity(scenes, folder, scheduler=client, query=SceneQuery(bbox=bbox, exact_bbox=exact))
                seconds[way].append(time.perf_counter() - started)
                with rasterio.open(folder / "2021.tif") as written:
                    grids[way] = (written.width, written.height, written.block_shapes[0][1])
    print(
        f"\n{scenes.name}: SYNTHETIC scenes as {args.format} in 1024-pixel blocks; --bbox from {args.offset_px} px "
        f"east and south of the files' corner; 1 worker (one thread)"
    )
    width, height, _ = grids["exact (--exact-bbox)"]
    print(f"the bbox: {width} x {height} pixels")
    print(f"{'crop':24s} {'grid px':>12s} {'tiles':>6s} {'cold s':>7s} {'warm s':>7s} {'bbox Mpx/s':>11s}")
    for way, (grid_width, grid_height, tile_px) in grids.items():
        warm = min(seconds[way][1:])
        print(
            f"{way:24s} {f'{grid_width} x {grid_height}':>12s} {tile_px:6d} {seconds[way][0]:7.2f} {warm:7.2f} "
            f"{width * height / 1e6 / warm:11.3f}"
        )
    default, exact = (min(seconds[way][1:]) for way in WAYS)
    print(f"the crop from a block corner builds {exact / default:.2f}x as fast as the exact crop (warm)")


if __name__ == "__main__":
    main()
