"""Connecting to a Dask cluster: the one place that turns ``--scheduler`` into a client.

``build-activity`` and ``analyze`` run their tasks in this process by default. With
``--scheduler tcp://host:8786`` (or the environment variable ``MINEWATCH_SCHEDULER``)
they run on that existing ``dask.distributed`` cluster instead: :func:`client_for`
connects, checks that there are workers and that they can import minewatch, says where
the Dask dashboard is (the cluster's progress view), and closes the connection after.
Workers must see the input files at the same paths; GDAL settings (``GDAL_CACHEMAX``
...) come from the workers' environment.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from geo.errors import InputError

ENV_SCHEDULER = "MINEWATCH_SCHEDULER"
# Dask settings for the workers (and a LocalCluster's scheduler and nannies) of batch builds. Dask's
# defaults suit interactive work watched on its dashboard; each of these costs CPU on the cores that
# compute the tiles, which on a small machine also run the scheduler (README, "On a Dask cluster").
BATCH_SETTINGS = {
    # the statistical profiler: samples each running task's stack every 10 ms, for the dashboard's Profile page
    "distributed.worker.profile.enabled": False,
    # event-loop ticks, 50 a second by default: they only serve to warn when a loop is blocked (3 s by default)
    "distributed.admin.tick.interval": "1s",
    # memory checks against the worker's limits, 10 a second by default (a runaway worker is stopped later)
    "distributed.worker.memory.monitor-interval": "500ms",
    # the CPU, memory and network figures of the dashboard's system page, every 0.5 s by default
    "distributed.admin.system-monitor.interval": "2s",
}
IN_PROCESS = {"threads", "local"}
MINEWATCH_MODULES = ("geo.analysis", "geo.scan", "layers.activity", "layers.activity_build")
CONNECT_TIMEOUT = "20s"


@contextmanager
def client_for(scheduler, say: Callable[[str], None], *, command: str) -> Iterator[object | None]:
    """The Dask client to run on (None: this process), connected for the work and closed after.

    Parameters
    ----------
    scheduler:
        A scheduler address (``tcp://host:8786``), a ``distributed.Client`` (used as it
        is, left open), ``"threads"``/``"local"`` or None for this process; None falls
        back to the environment variable ``MINEWATCH_SCHEDULER``.
    say:
        Gets one-line messages: where the work runs and the Dask dashboard link.
    command:
        Names the command in error messages (``build-activity``, ``analyze``).
    """
    scheduler = scheduler if scheduler is not None else os.environ.get(ENV_SCHEDULER) or None
    if scheduler is None or scheduler in IN_PROCESS:
        yield None
        return
    from distributed import Client

    if isinstance(scheduler, Client):
        check_workers(scheduler, str(scheduler.scheduler.address), command=command)
        say(f"on the Dask cluster at {scheduler.scheduler.address}; dashboard: {scheduler.dashboard_link}")
        yield scheduler
        return
    try:
        client = Client(str(scheduler), timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"{command}: --scheduler {scheduler}: cannot connect to a Dask scheduler: {exc}") from None
    try:
        check_workers(client, str(scheduler), command=command)
        say(
            f"on the Dask cluster at {scheduler} ({len(client.nthreads())} workers); dashboard: {client.dashboard_link}"
        )
        yield client
    finally:
        client.close()


@contextmanager
def executor_for(
    scheduler, say: Callable[[str], None], *, command: str
) -> Iterator[concurrent.futures.Executor | None]:
    """Like :func:`client_for`, but yields the cluster as a :class:`concurrent.futures.Executor` (None: this process)."""
    with client_for(scheduler, say, command=command) as client:
        if client is None:
            yield None
            return
        executor = client.get_executor(pure=False)
        try:
            yield executor
        finally:
            executor.shutdown(wait=False)


def check_workers(client, address: str, *, command: str) -> None:
    """Refuse a cluster without workers or whose workers cannot import minewatch."""
    if not client.nthreads():
        raise InputError(f"{command}: --scheduler {address}: the cluster has no workers")
    missing = [w for w, ok in client.run(_can_import_minewatch).items() if not ok]
    if missing:
        raise InputError(
            f"{command}: --scheduler {address}: workers {', '.join(missing)} cannot import minewatch; "
            "install it on every worker (pip install minewatch, or the same environment image)"
        )


def worker_threads(client) -> int:
    """How many tasks the cluster runs at once: its workers' threads, at least 1 (asks the scheduler)."""
    return sum(client.nthreads().values()) or 1


def memory_per_thread_mib(client=None) -> float | None:
    """The memory one task may count on, in MiB: on a cluster the smallest of its workers' memory limits over
    their threads (None if no worker has a limit); in this process the machine's memory over its cores."""
    if client is None:
        import psutil

        return psutil.virtual_memory().total / (os.cpu_count() or 1) / 2**20
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    limits = [w["memory_limit"] / max(w["nthreads"], 1) / 2**20 for w in workers if w.get("memory_limit")]
    return min(limits) if limits else None


def _can_import_minewatch() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in MINEWATCH_MODULES)


def batch_settings_environment() -> dict[str, str]:
    """:data:`BATCH_SETTINGS` as the environment variables that give them to ``dask worker`` (``DASK_...``)."""
    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in BATCH_SETTINGS.items()
    }
