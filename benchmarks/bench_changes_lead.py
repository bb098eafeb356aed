"""How far the changes run ahead of the scores: build-activity with 1 and 2 changes tasks queued per thread.

``run_tiles`` lets the changes tasks run :data:`layers.activity_build.CHANGES_QUEUED_PER_THREAD`
tiles per thread ahead of those the next score waits for. With one, a worker whose
changes task ended often had nothing to do until the next score could be submitted;
with two, it has its next changes task queued. This measures the two side by side: one
2-worker ``dask.distributed.LocalCluster`` (processes, one thread each,
``layers.dask_client.BATCH_SETTINGS``), one cold build, then builds alternating between
the settings (the setting is read by ``run_tiles``, which runs in this process), so
that a shared machine's drift in speed hits both alike. It prints each setting's median
and fastest build and the ratio of the medians.

The scenes are ``bench_activity.py``'s SYNTHETIC scene sets (generated into
``benchmarks/_data/`` on first use). Run: ``python benchmarks/bench_changes_lead.py``
(2048 x 2048 pixels, 8 builds each, about 2 minutes); ``--size-px`` and ``--builds``
choose others. At 1024 pixels (4 tiles) all changes are submitted at once either way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_activity import DATA, TILE_PX, batch_cluster, scenes_of_size  # noqa: E402 (benchmarks/ is not a package)

import layers.activity_build as activity_build  # noqa: E402

SETTINGS = (1, 2)  # changes tasks queued per thread: the old setting, then the current one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-px", type=int, default=2048, help="scene width and height in pixels (default 2048)")
    parser.add_argument("--builds", type=int, default=8, help="warm builds per setting (default 8)")
    args = parser.parse_args()

    scenes = scenes_of_size(args.size_px)
    seconds: dict[int, list[float]] = {setting: [] for setting in SETTINGS}
    print(f"{scenes.name}: 2 workers, 512-pixel tiles, {args.builds} warm builds per setting, alternating", flush=True)
    with batch_cluster(2) as client, tempfile.TemporaryDirectory(dir=DATA) as out:
        activity_build.build_activity(scenes, Path(out) / "cold", scheduler=client, tile_px=TILE_PX)
        for build in range(args.builds):
            for setting in SETTINGS:
                activity_build.CHANGES_QUEUED_PER_THREAD = setting
                started = time.perf_counter()
                activity_build.build_activity(
                    scenes, Path(out) / f"{build}-{setting}", scheduler=client, tile_px=TILE_PX
                )
                seconds[setting].append(time.perf_counter() - started)
    for setting in SETTINGS:
        times = seconds[setting]
        print(f"{setting} queued per thread: median {statistics.median(times):.3f} s, fastest {min(times):.3f} s")
    old, new = (statistics.median(seconds[setting]) for setting in SETTINGS)
    print(f"median build with 2 queued per thread: {new / old:.3f}x the time with 1")


if __name__ == "__main__":
    main()
