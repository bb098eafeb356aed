"""build-activity benchmark: the whole build against the time to just read its bands, on 1 and 2 Dask workers.

Generates (once, into ``benchmarks/_data/``, never committed) SYNTHETIC scene sets with
``data/build_demo_scenes.py``: by default 1024 x 1024 pixels at 10 m (10 km across),
2048 x 2048 and 4096 x 4096 (41 km across, a seventh of a Sentinel-2 tile), each 4x
the area of the one before, with 15 dates (2020-2022) of B02 B03 B04 B08 (10 m), B11
B12 SCL (20 m) as DEFLATE GeoTIFFs in 256-pixel blocks (the largest takes about 7
minutes to generate and 760 MB). Then, for 1 and 2 workers at each size, in a fresh
Python process with a fresh ``dask.distributed.LocalCluster`` (processes, one thread
each, with minewatch's Dask settings for batch work, ``layers.dask_client.BATCH_SETTINGS``:
no statistical profiler, slower ticks and monitors; ``--dask-defaults`` for Dask's own),
so that no run's memory is counted in another's, and all of it twice
(``--rounds``), 1 and 2 workers alternating, so that a drift of a shared machine's
speed over the minutes of a run hits both (the fastest warm build of each configuration
counts, each round's speed-up is printed too, memory is the highest of the rounds):

- **the plain read**, the floor the ratios are taken against: the files the build
  reads (B02 B03 B04 B08 B11 SCL of all dates) read whole with rasterio, one after the
  other, on one thread (``GDAL_NUM_THREADS=1``), in this process: what decoding the
  input once costs one core. A first run warms the page cache (which every build then
  finds warm too), and the fastest of the next three counts (first round only; both
  configurations of a size measure it, and the faster of the two is the floor of both);
- the whole build (``build_activity``: tiles, COGs, STAC catalog) on that cluster:
  "cold" on fresh workers (each imports minewatch and loads its compiled kernels
  during the first tasks), then "warm", the fastest of three builds right after (what
  every later build on a running cluster costs; the fastest, because what slows a run
  down on a shared machine, other processes and the kernel's writeback, only ever adds
  time); with the peak resident memory of the workers and of this process (which also
  hosts the scheduler and assembles the COGs) sampled every 20 ms with psutil over all
  the builds, and this process's CPU time in the fastest warm build;
- the chunked read: the same band files read once in 512-pixel chunks through
  ``layers.sentinel2.open_band`` (rioxarray + dask) and summed, on the same cluster
  (after one warm-up pass). It spreads over the workers, but its per-chunk overhead
  makes it slower than the plain read on one worker: a more lenient floor, printed too
  (first round only);
- one more warm build with Dask's task stream recorded (first round only, after the
  timed builds, so that recording costs them nothing): the seconds the workers spent
  running tasks. It splits the speed-up of 2 workers exactly into its two causes: how much
  of the build the workers spent running tasks (the rest is the serial start and end, and
  waits), and how much longer the same tasks took on 2 workers (the 2 cores are shared
  with the client, the scheduler and each other). It also gives the serial start (until
  the first tile's task began) and end (after the last score task: the last overview
  tiles, writing the files).

It prints megapixels (of the 10 m output grid) per second, the warm build's ratio to
both floors, the cold and warm speed-ups of 2 workers over 1 at each size, and the peak
memories of each size against the one 4x smaller, with the same 512-pixel tiles. The
speed-up grows with the size: a build has fixed costs that more workers do not share
(listing the scenes, each worker opening every input file once, writing the files),
and 1 megapixel is only 4 tiles. Run: ``python benchmarks/bench_activity.py``
(``--sizes 1024 2048`` for fewer sizes, ``--small`` for a quick run). The machine should be otherwise idle: it prints the load
average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path(__file__).resolve().parent / "_data"
TILE_PX = 512
WARM_RUNS = 3
ROUNDS = 2
READ_BANDS = ("B02", "B03", "B04", "B08", "B11", "SCL")
TRACED = ("traced_s", "traced_task_s", "first_tile_s", "after_scores_s")  # what traced_build measures


def generator():
    """``data/build_demo_scenes.py`` as a module."""
    spec = importlib.util.spec_from_file_location("build_demo_scenes", ROOT / "data" / "build_demo_scenes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def scenes_of_size(size_px: int) -> Path:
    """The synthetic scene folder of ``size_px`` x ``size_px`` pixels, generated on first use."""
    folder = DATA / f"activity_scenes_{size_px}"
    if not (folder / "truth.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {size_px} x {size_px} synthetic scenes into {folder} (once)...", flush=True)
        started = time.perf_counter()
        generator().build_scenes(folder, size_px)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)
    return folder


class PeakSampler:
    """Samples the resident memory of some processes in a thread; ``peak_mib`` holds each one's largest."""

    def __init__(self, pids: dict[str, int], every_s: float = 0.02):
        import psutil

        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.every_s = every_s
        self.peak_mib = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, process in self.processes.items():
                self.peak_mib[name] = max(self.peak_mib[name], process.memory_info().rss / 2**20)
            time.sleep(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def batch_cluster(workers: int, dask_defaults: bool = False):
    """A client of a fresh ``LocalCluster`` of ``workers`` one-thread processes, its scheduler in this process, all
    of it with minewatch's Dask settings for batch work (``layers.dask_client.BATCH_SETTINGS``) unless
    ``dask_defaults``. The benchmarks of build-activity run on it."""
    import dask
    from distributed import Client, LocalCluster

    from layers.dask_client import BATCH_SETTINGS

    with (
        dask.config.set({} if dask_defaults else BATCH_SETTINGS),
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client


def read_floor_s(client, scenes: Path) -> float:
    """Seconds to read every band the build reads once, in 512-pixel chunks (rioxarray + dask), on the cluster."""
    import dask

    from layers.sentinel2 import find_scenes, open_band

    lazy = [open_band(scene.band(b), chunks=TILE_PX).sum() for scene in find_scenes(scenes) for b in READ_BANDS]
    started = time.perf_counter()
    dask.compute(*lazy, scheduler=client.get)
    return time.perf_counter() - started


def plain_read_s(scenes: Path) -> float:
    """Seconds to read the same bands whole with rasterio, one file after the other, one thread (no dask)."""
    import rasterio

    from layers.sentinel2 import find_scenes

    started = time.perf_counter()
    with rasterio.Env(GDAL_NUM_THREADS=1):
        for scene in find_scenes(scenes):
            for band in READ_BANDS:
                with rasterio.open(scene.band(band).path) as dataset:
                    dataset.read(1)
    return time.perf_counter() - started


def run_config(scenes: Path, workers: int, floors: bool = True, dask_defaults: bool = False) -> dict:
    """Plain read, then the builds and the chunked read on a fresh LocalCluster of ``workers`` one-thread processes.

    Without ``floors`` only the builds run (the later rounds: the floors do not change).
    The cluster (its scheduler, nannies and workers) runs with ``BATCH_SETTINGS`` unless
    ``dask_defaults``.
    """
    from layers.activity_build import build_activity
    from layers.sentinel2 import find_scenes, output_grid

    grid = output_grid(find_scenes(scenes))
    plain_s = floor_s = math.nan
    if floors:
        plain_read_s(scenes)  # warms the page cache (for the later rounds too)
        plain_s = min(plain_read_s(scenes) for _ in range(WARM_RUNS))
    builds = []
    with batch_cluster(workers, dask_defaults) as client:
        pids = {f"worker {i}": pid for i, pid in enumerate(client.run(os.getpid).values())}
        with tempfile.TemporaryDirectory(dir=DATA) as out, PeakSampler({**pids, "client": os.getpid()}) as sampler:
            for run in range(1 + WARM_RUNS):  # the first is cold
                cpu_before = time.process_time()
                started = time.perf_counter()
                build_activity(scenes, Path(out) / f"build{run}", scheduler=client, tile_px=TILE_PX)
                builds.append((time.perf_counter() - started, time.process_time() - cpu_before))
            cog_mib = sum(path.stat().st_size for path in (Path(out) / f"build{WARM_RUNS}").glob("*.tif")) / 2**20
        traced = dict.fromkeys(TRACED, math.nan)
        if floors:
            with tempfile.TemporaryDirectory(dir=DATA) as out:
                traced = traced_build(client, scenes, Path(out) / "traced")
            read_floor_s(client, scenes)  # warm the workers' rioxarray imports
            floor_s = read_floor_s(client, scenes)
    return {
        "megapixels": grid.width * grid.height / 1e6,
        "floor_s": floor_s,
        "plain_s": plain_s,
        "cold_s": builds[0][0],
        "build_s": min(builds[1:])[0],
        "client_cpu_s": min(builds[1:])[1],
        "worker_peak_mib": max(v for k, v in sampler.peak_mib.items() if k != "client"),
        "client_peak_mib": sampler.peak_mib["client"],
        "cog_mib": cog_mib,
        **traced,
    }


def traced_build(client, scenes: Path, out: Path) -> dict:
    """One build with Dask's task stream recorded: its seconds, the seconds the workers spent running its tasks,
    when its first changes task began and how long the build went on after its last score task."""
    from distributed import get_task_stream

    from layers.activity_build import build_activity

    with get_task_stream(client) as stream:
        started = time.time()  # the task stream's clock (the workers are on this machine)
        build_activity(scenes, out, scheduler=client, tile_px=TILE_PX)
        ended = time.time()
    spans = [(str(task["key"]), span) for task in stream.data for span in task["startstops"]]
    spans = [(key, span) for key, span in spans if span["action"] == "compute"]
    return {
        "traced_s": ended - started,
        "traced_task_s": sum(span["stop"] - span["start"] for _, span in spans),
        "first_tile_s": min(span["start"] for key, span in spans if "changes_task" in key) - started,
        "after_scores_s": ended - max(span["stop"] for key, span in spans if "scores_task" in key),
    }


def run_in_subprocess(scenes: Path, workers: int, floors: bool, dask_defaults: bool) -> dict:
    """:func:`run_config` in a fresh Python process, so that no run's memory is counted in another's."""
    command = [sys.executable, __file__, "--one", str(scenes), str(workers), "floors" if floors else "builds"]
    command += ["--dask-defaults"] if dask_defaults else []
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fastest(rounds: list[dict]) -> dict:
    """One configuration's rounds as one: the fastest warm and cold builds (and that build's client CPU), the floors
    of the round that measured them, and the highest peak memories."""
    best = min(rounds, key=lambda r: r["build_s"])
    return {
        **best,
        "cold_s": min(r["cold_s"] for r in rounds),
        "plain_s": rounds[0]["plain_s"],
        "floor_s": rounds[0]["floor_s"],
        **{key: rounds[0][key] for key in TRACED},
        "worker_peak_mib": max(r["worker_peak_mib"] for r in rounds),
        "client_peak_mib": max(r["client_peak_mib"] for r in rounds),
    }


DEFAULT_SIZES_PX = (1024, 2048, 4096)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=DEFAULT_SIZES_PX,
        metavar="PX",
        help="scene widths in pixels, each twice the one before (default 1024 2048 4096: 1, 4.2 and 16.8 megapixels)",
    )
    parser.add_argument("--small", action="store_true", help="512 and 1024 pixels: a quick run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=ROUNDS,
        help=f"times each configuration runs, alternating 1 and 2 workers (default {ROUNDS})",
    )
    parser.add_argument(
        "--dask-defaults",
        action="store_true",
        help="run the clusters with Dask's default settings, not layers.dask_client.BATCH_SETTINGS",
    )
    parser.add_argument("--one", nargs=3, metavar=("SCENES", "WORKERS", "WHAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        floors = args.one[2] == "floors"
        print(json.dumps(run_config(Path(args.one[0]), int(args.one[1]), floors, args.dask_defaults)))
        return
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sizes = (512, 1024) if args.small else tuple(args.sizes)
    if any(b != 2 * a for a, b in zip(sizes, sizes[1:], strict=False)):
        parser.error("each size must be twice the one before (4x the area)")
    DATA.mkdir(exist_ok=True)
    folders = {size: scenes_of_size(size) for size in sizes}
    load_before = os.getloadavg()
    rounds: dict[tuple[int, int], list[dict]] = {(size, workers): [] for size in sizes for workers in (1, 2)}
    for round_index in range(args.rounds):  # 1 and 2 workers alternate, so a drift of the machine's speed hits both
        for (size, workers), done in rounds.items():
            done.append(run_in_subprocess(folders[size], workers, round_index == 0, args.dask_defaults))
    results = {key: fastest(done) for key, done in rounds.items()}
    for size in sizes:  # the plain read does not involve the cluster: its faster measurement is the floor of both
        plain_s = min(results[(size, workers)]["plain_s"] for workers in (1, 2))
        for workers in (1, 2):
            results[(size, workers)]["plain_s"] = plain_s
    load_after = os.getloadavg()
    print(f"\nsynthetic scenes: 15 dates (5 a year, 2020-2022), {TILE_PX}-pixel tiles, build = 2 periods")
    print(f"Dask settings: {dask_settings(args.dask_defaults)}")
    print(
        "MP = megapixels of the 10 m output grid; plain = the bands the build reads, read whole on one thread "
        "(rasterio, the floor); chunked = the same in 512-pixel chunks on the cluster (rioxarray + dask); "
        f"cold = first build on fresh workers, warm = the fastest of the next {WARM_RUNS}; each configuration ran "
        f"{args.rounds} time(s) in a fresh process, 1 and 2 workers alternating: the fastest counts, memory is the "
        "highest"
    )
    header = ("configuration", "grid MP", "plain s", "chunked s", "cold s", "warm s", "MP/s", "warm/plain")
    print("{:22s} {:>7s} {:>8s} {:>9s} {:>7s} {:>7s} {:>6s} {:>10s}".format(*header), end="")
    print(" {:>13s} {:>10s} {:>10s} {:>10s}".format("warm/chunked", "workers", "client", "client CPU"))
    for (size, workers), r in results.items():
        name = f"{size} px, {workers} worker{'s' * (workers > 1)}"
        print(
            f"{name:22s} {r['megapixels']:7.2f} {r['plain_s']:8.2f} {r['floor_s']:9.2f} {r['cold_s']:7.2f} "
            f"{r['build_s']:7.2f} {r['megapixels'] / r['build_s']:6.2f} {r['build_s'] / r['plain_s']:9.2f}x "
            f"{r['build_s'] / r['floor_s']:12.2f}x {r['worker_peak_mib']:6.0f} MiB {r['client_peak_mib']:6.0f} MiB "
            f"{r['client_cpu_s']:8.2f} s"
        )
    print()
    for size in sizes:
        one, two = results[(size, 1)], results[(size, 2)]
        print(
            f"{size} px ({one['megapixels']:.1f} MP): 1 worker (warm) {one['build_s'] / one['plain_s']:.2f}x the plain "
            f"one-thread read (goal: within 4x), {one['build_s'] / one['floor_s']:.2f}x the chunked read; "
            f"2 workers {one['build_s'] / two['build_s']:.2f}x faster than 1 (cold {one['cold_s'] / two['cold_s']:.2f}x) "
            f"(goal: >= 1.7x; round by round {per_round(rounds[(size, 1)], rounds[(size, 2)])})"
        )
    print(
        "why 2 workers are not 2x faster, from one more warm build each with Dask's task stream recorded: "
        "speed-up = 2 x (share of the build the workers spent running tasks, on 2 / on 1) "
        "x (time the tasks took in all, on 1 / on 2)"
    )
    for size in sizes:
        print(f"  {size} px: {speed_up_parts(results[(size, 1)], results[(size, 2)])}")
    print(
        "what the client receives of a build: the COGs' compressed blocks, about the COG files' size: "
        + ", ".join(f"{results[(size, 2)]['cog_mib']:.2f} MiB at {size} px" for size in sizes)
    )
    for small, large in zip(sizes, sizes[1:], strict=False):
        a, b = results[(small, 2)], results[(large, 2)]
        print(
            f"peak memory at {large} px vs {small} px (4x area, same tiles, 2 workers): largest worker "
            f"{b['worker_peak_mib'] / a['worker_peak_mib']:.2f}x, this process "
            f"{b['client_peak_mib'] / a['client_peak_mib']:.2f}x (goal: within 1.2x)"
        )
    print(f"load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}; {os.cpu_count()} CPUs")


def dask_settings(dask_defaults: bool) -> str:
    """Which Dask settings the clusters ran with, for the report."""
    from layers.dask_client import BATCH_SETTINGS

    if dask_defaults:
        return "Dask's defaults (--dask-defaults)"
    return "layers.dask_client.BATCH_SETTINGS: " + ", ".join(f"{k}={v}" for k, v in BATCH_SETTINGS.items())


def speed_up_parts(one: dict, two: dict) -> str:
    """The traced builds' speed-up of 2 workers over 1 as the product of its two causes, in words."""
    busy_one = one["traced_task_s"] / one["traced_s"]
    busy_two = two["traced_task_s"] / (2 * two["traced_s"])
    tasks_ratio = one["traced_task_s"] / two["traced_task_s"]
    return (
        f"{one['traced_s'] / two['traced_s']:.2f}x = 2 x {busy_two / busy_one:.2f} (workers running tasks "
        f"{busy_two:.0%} of the build on 2, {busy_one:.0%} on 1) x {tasks_ratio:.2f} (the tasks took "
        f"{two['traced_task_s']:.2f} s in all on 2 workers, {one['traced_task_s']:.2f} s on 1); the first tile's task began "
        f"{1000 * two['first_tile_s']:.0f} ms ({1000 * one['first_tile_s']:.0f} ms on 1) after the build started, which "
        f"ended {1000 * two['after_scores_s']:.0f} ms ({1000 * one['after_scores_s']:.0f} ms) after the last score task "
        "(overview tiles, writing the files)"
    )


def per_round(one: list[dict], two: list[dict]) -> str:
    """Each round's speed-up of 2 workers over 1 (warm builds), to show the spread behind the fastest."""
    return ", ".join(f"{a['build_s'] / b['build_s']:.2f}x" for a, b in zip(one, two, strict=True))


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
