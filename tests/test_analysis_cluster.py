"""The analysis with its raster scans on an executor (a Dask cluster, a thread pool) equals the in-process run.

Equal means to the last bit: every stat, flag and footprint, since the bands' strip sums
are added in the same order as one pass adds them (``geo.scan.combine_bands``).
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

import app
import geo.scan as scan_module
from geo.analysis import scan_jobs
from geo.errors import InputError
from geo.settings import Settings
from layers.activity import find_activity_rasters
from layers.concessions import read_concessions
from tests.conftest import analyse_field, damage_tiles, write_field, write_raster

distributed = pytest.importorskip("distributed")

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


class Recorder:
    """A progress object like the command line's: steps and (step, done, total) reports."""

    def __init__(self):
        self.messages, self.reports = [], []

    def step(self, message):
        self.messages.append(message)

    def __call__(self, step, done, total):
        self.reports.append((step, done, total))


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as local:
        yield local


def demo_args(*extra):
    argv = [
        "analyze",
        "--concessions", str(DEMO / "concessions.gpkg"),
        "--production", str(DEMO / "production.csv"),
        "--national", str(DEMO / "national.csv"),
        "--activity", str(DEMO / "activity"),
        "--out", "unused",
    ]  # fmt: skip
    return app.build_parser().parse_args([*argv, *extra])


def assert_same_analysis(got, expected):
    pd.testing.assert_frame_equal(got.stats, expected.stats, check_exact=True)
    pd.testing.assert_frame_equal(got.national, expected.national, check_exact=True)
    for name in ("flags", "footprints", "concessions"):
        a, b = getattr(got, name), getattr(expected, name)
        assert a.crs == b.crs
        pd.testing.assert_frame_equal(
            pd.DataFrame(a.drop(columns="geometry")), pd.DataFrame(b.drop(columns="geometry")), check_exact=True
        )
        assert list(shapely.to_wkb(a.geometry.to_numpy())) == list(shapely.to_wkb(b.geometry.to_numpy())), name


def test_the_demo_on_a_cluster_equals_the_in_process_run(cluster):
    here = app.analyze_inputs(demo_args(), Recorder())
    progress = Recorder()
    there = app.analyze_inputs(demo_args("--scheduler", cluster.scheduler_address), progress)
    assert_same_analysis(there, here)
    assert len(there.flags) > 10 and len(there.footprints) > 10  # the comparison compared something
    assert any(cluster.scheduler_address in m and "dashboard" in m for m in progress.messages)
    scans = [r for r in progress.reports if r[0] == "scanning rasters"]
    assert scans[-1] == ("scanning rasters", 11, 11)  # 11 periods, one band each


def test_many_small_bands_join_exactly(tmp_path, monkeypatch):
    # Strips of 16 rows and bands of 3 strips: polygons and footprints span many bands.
    paths = write_field(tmp_path)
    monkeypatch.setattr(scan_module, "strip_height", lambda width: 16)
    monkeypatch.setattr(scan_module, "TARGET_BAND_PIXELS", 48 * 100)
    here = analyse_field(paths)
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        there = analyse_field(paths, executor=executor)
    assert_same_analysis(there, here)
    assert there.footprints["area_ha"].max() > 5  # the 7 ha pit of B crosses bands and stays one footprint


def test_a_band_gets_only_the_polygons_that_reach_its_rows(tmp_path, monkeypatch):
    paths = write_field(tmp_path)
    monkeypatch.setattr(scan_module, "strip_height", lambda width: 16)
    monkeypatch.setattr(scan_module, "TARGET_BAND_PIXELS", 16 * 100)
    from geo.analysis import _area_crs, _prepare_periods
    from geo.inforce import in_force_table

    concessions = read_concessions(paths["concessions"]).table
    rasters = find_activity_rasters(paths["activity"])
    area_crs = _area_crs(concessions)
    licences = concessions.to_crs(area_crs).geometry.to_numpy()
    in_force = in_force_table(concessions, [r.period for r in rasters])
    period = next(_prepare_periods(rasters, in_force, licences, area_crs))
    jobs = scan_jobs(period, area_crs, Settings())
    grid = rasters[0].grid
    assert [job.rows for job in jobs] == [(s, min(s + 16, grid.height)) for s in range(0, grid.height, 16)]
    assert jobs[0].polygon_index.size == 0  # the top rows are the margin around the licences
    middle = jobs[len(jobs) // 2]
    assert 0 < middle.polygon_index.size < len(period.polygons)
    rows = slice(*middle.rows)
    band = shapely.box(*(grid.transform @ (0, rows.stop)), *(grid.transform @ (grid.width, rows.start)))
    reaching = np.flatnonzero(shapely.intersects(period.polygons, band))
    assert set(reaching) <= set(middle.polygon_index)


def field_args(paths: dict[str, Path], out: Path):
    """``analyze`` of a field :func:`write_field` wrote, parsed as the command line parses it."""
    layers = [str(x) for layer in ("concessions", "production", "activity") for x in (f"--{layer}", paths[layer])]
    return app.build_parser().parse_args(["analyze", *layers, "--out", str(out)])


def test_a_bad_raster_on_the_cluster_is_one_input_error_naming_it(cluster, tmp_path, monkeypatch):
    paths = write_field(tmp_path)
    scores = np.zeros((50, 50), np.float32)
    scores[10, 20] = 7.0
    raster = find_activity_rasters(paths["activity"])[-1]
    path = write_raster(raster.path, scores, raster.grid.transform, "EPSG:32736", nodata=-9999.0)
    monkeypatch.setenv("MINEWATCH_SCHEDULER", cluster.scheduler_address)
    args = field_args(paths, tmp_path / "out")
    with pytest.raises(InputError, match=rf"{path.name}: pixel \(row 10, column 20\) is 7"):
        app.analyze_inputs(args, Recorder())


def test_a_raster_whose_pixels_cannot_be_read_on_the_cluster_is_one_input_error_naming_it(
    cluster, tmp_path, monkeypatch
):
    # the pixels are read in a task on a worker; its error must reach the client as the one-line InputError
    paths = write_field(tmp_path)
    raster = find_activity_rasters(paths["activity"])[-1]
    with rasterio.open(raster.path) as source:
        profile, scores = source.profile, source.read(1)
    profile.update(compress="deflate", tiled=True, blockxsize=16, blockysize=16)
    with rasterio.open(raster.path, "w", **profile) as out:
        out.write(scores, 1)
    damage_tiles(raster.path)
    monkeypatch.setenv("MINEWATCH_SCHEDULER", cluster.scheduler_address)
    args = field_args(paths, tmp_path / "out")
    with pytest.raises(InputError, match=f"{raster.path.name}: cannot be read"):
        app.analyze_inputs(args, Recorder())


def test_no_scheduler_runs_here_and_a_dead_one_is_refused(monkeypatch):
    from layers.dask_client import executor_for

    monkeypatch.delenv("MINEWATCH_SCHEDULER", raising=False)
    with executor_for(None, print, command="analyze") as executor:
        assert executor is None
    monkeypatch.setattr("layers.dask_client.CONNECT_TIMEOUT", "1s")
    with (
        pytest.raises(InputError, match=r"analyze: --scheduler tcp://127.0.0.1:9: cannot connect"),
        executor_for("tcp://127.0.0.1:9", print, command="analyze"),
    ):
        pass
