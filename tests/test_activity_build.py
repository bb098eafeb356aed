"""layers.activity_build: synthetic scenes to activity COGs and a STAC catalog, in-process and on Dask.

Data: the bundled synthetic scene generator (``data/build_demo_scenes.py``, fixed seed,
300 x 300 pixels at 10 m, 2020-2022, five dates a year) writes into a temporary folder
once per session; its ``truth.tif`` says which pixels are planted pits, clouds, shadows,
river, sandbars and seasonal greening. Builds use 128-pixel tiles so that every
tile-to-tile halo (river corridor, median filter, cloud buffer) is exercised.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import importlib.util
import json
import math
import re
import shutil
import sys
import threading
import time
import tracemalloc
import weakref
from pathlib import Path

import distributed
import numpy as np
import pystac
import pytest
import rasterio
import rasterio.warp
import shapely
from affine import Affine
from pyproj import CRS, Transformer

from geo.errors import InputError
from geo.spectral import ScoreParameters
from layers.activity import Grid, find_activity_rasters
from layers.activity_build import (
    CHANGES_DTYPE,
    CHANGES_QUEUED_PER_THREAD,
    UNSEEN,
    BuildPlan,
    _assemble,
    _Edges,
    _footprint_lonlat,
    _Runner,
    _task_env,
    _without_scenes,
    build_activity,
    changes_task,
    dates_at_once,
    edges_task,
    make_jobs,
    plan_build,
    run_cli,
    run_tiles,
    score_task,
    task_memory_mib,
    tile_px_for,
)
from layers.sentinel2 import SceneQuery, find_scenes
from tests.conftest import damage_tiles

ROOT = Path(__file__).resolve().parents[1]
TILE_PX = 128
FALSE_POSITIVE_CLASSES = ("cloud", "shadow", "river", "sandbar", "greening")


def load_generator():
    """``data/build_demo_scenes.py`` as a module (``data/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("build_demo_scenes", ROOT / "data" / "build_demo_scenes.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scenes")
    load_generator().build_scenes(folder)
    return folder


@pytest.fixture(scope="session")
def built(scenes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "activity"
    build_activity(scenes, out, tile_px=TILE_PX)
    return out


@pytest.fixture(scope="session")
def truth(scenes) -> tuple[dict, dict[str, np.ndarray]]:
    summary = json.loads((scenes / "truth.json").read_text())
    with rasterio.open(scenes / summary["truth_raster"]) as dataset:
        layers = {period: dataset.read(band) for period, band in summary["truth_bands"].items()}
    return summary, layers


def read_scores(path: Path) -> np.ndarray:
    with rasterio.open(path) as dataset:
        return dataset.read(1, masked=True).astype(np.float32).filled(np.nan)


def read_levels(path: Path) -> list[np.ndarray]:
    """The full resolution and every overview of a COG, as stored (nodata included)."""
    with rasterio.open(path) as dataset:
        levels = [dataset.read(1)]
        overviews = len(dataset.overviews(1))
    for level in range(overviews):
        with rasterio.open(path, OVERVIEW_LEVEL=level) as overview:
            levels.append(overview.read(1))
    return levels


def class_mask(summary: dict, layer: np.ndarray, name: str) -> np.ndarray:
    return (layer & summary["bits"][name]) > 0


@pytest.mark.parametrize("period", ["2021", "2022"])
def test_planted_pits_are_found_with_pixel_f1_of_at_least_0_9(built, truth, period):
    summary, layers = truth
    scores = read_scores(built / f"{period}.tif")
    pit = class_mask(summary, layers[period], "pit")
    seen = np.isfinite(scores)
    active = scores >= 0.5
    true_positive = (active & pit).sum()
    false_positive = (active & ~pit).sum()
    false_negative = (~active & pit & seen).sum()
    f1 = 2 * true_positive / (2 * true_positive + false_positive + false_negative)
    assert pit.sum() > 300  # the scene really has pits this year
    assert f1 >= 0.9, f"F1 {f1:.3f}: {true_positive} found, {false_positive} false, {false_negative} missed"


@pytest.mark.parametrize("period", ["2021", "2022"])
@pytest.mark.parametrize("name", FALSE_POSITIVE_CLASSES)
def test_clouds_shadows_river_sandbars_and_greening_are_not_flagged(built, truth, period, name):
    summary, layers = truth
    scores = read_scores(built / f"{period}.tif")
    pixels = class_mask(summary, layers[period], name) & ~class_mask(summary, layers[period], "pit")
    assert pixels.sum() > 200  # the class is planted in this period
    flagged = np.mean(scores[pixels] >= 0.5)
    assert flagged <= 0.01, f"{flagged:.2%} of {pixels.sum()} {name} pixels scored >= 0.5"


def test_a_pit_hidden_by_clouds_all_period_is_nodata_not_zero(built, truth):
    summary, layers = truth
    year = summary["clouded_pit"]["year"]
    scores = read_scores(built / f"{year}.tif")
    hidden = class_mask(summary, layers[year], "pit") & class_mask(summary, layers[year], "never_clear")
    assert hidden.sum() > 50
    assert np.isnan(scores[hidden]).all()
    # the same pit, seen the next year, is active
    after = str(int(year) + 1)
    row, col = (int(v) for v in summary["clouded_pit"]["centre_px"])
    assert read_scores(built / f"{after}.tif")[row, col] >= 0.5


def test_outputs_are_valid_cogs_with_nodata_and_the_synthetic_tag(built):
    from rio_cogeo.cogeo import cog_validate

    for period in ("2021", "2022"):
        path = built / f"{period}.tif"
        valid, errors, warnings = cog_validate(str(path), quiet=True)
        assert valid and not warnings, errors + warnings
        with rasterio.open(path) as dataset:
            assert dataset.dtypes[0] == "float32" and dataset.nodata == -9999
            assert dataset.block_shapes == [(TILE_PX, TILE_PX)]
            assert dataset.overviews(1) == [
                2**k for k in range(1, 1 + math.ceil(math.log2(max(dataset.shape) / TILE_PX)))
            ]
            assert dataset.tags()["MINEWATCH_SYNTHETIC"] == "yes"
            assert dataset.tags()["PERIOD"] == period and dataset.tags()["BASELINE"] == "2020"
            values = dataset.read(1, masked=True)
            assert values.min() >= 0 and values.max() <= 1


def test_each_periods_overviews_are_its_own_scores_halved(built):
    """Each overview task makes one period's tile: a tile given to the wrong period's COG would fail here."""
    from layers.cog_writer import reduce_half

    full = {period: read_scores(built / f"{period}.tif") for period in ("2021", "2022")}
    assert not np.array_equal(full["2021"], full["2022"], equal_nan=True)  # so a swap shows
    for period in full:
        levels = read_levels(built / f"{period}.tif")
        assert len(levels) > 1
        for below, level in zip(levels, levels[1:], strict=False):
            np.testing.assert_array_equal(level, reduce_half(below, -9999.0))


def test_stac_catalog_validates_and_carries_periods_and_provenance(built, scenes):
    catalog = pystac.Catalog.from_file(str(built / "catalog.json"))
    assert catalog.validate_all() == 2  # two items, checked against the STAC JSON schemas
    items = {item.properties["minewatch:period"]: item for item in catalog.get_items(recursive=True)}
    assert sorted(items) == ["2021", "2022"]
    item = items["2021"]
    assert item.assets["activity"].get_absolute_href() == str(built / "2021.tif")
    ids_2021 = sorted(s.scene_id for s in find_scenes(scenes) if s.date.year == 2021)
    assert sorted(item.properties["minewatch:input_scenes"]) == ids_2021
    assert len(item.properties["minewatch:baseline_scenes"]) == 5
    assert item.properties["minewatch:parameters"]["ndvi_drop"] == [0.06, 0.18]
    assert item.properties["minewatch:software"]["gdal"] == rasterio.__gdal_version__
    assert "median composite" in item.properties["minewatch:method"]
    assert item.properties["minewatch:synthetic"] is True
    assert str(item.common_metadata.start_datetime.date()) == "2021-01-01"


@pytest.mark.parametrize("size_px, points", [(1024, 5), (10980, None)])
def test_the_footprint_keeps_the_points_its_curved_sides_need(size_px, points):
    """A 10 km UTM grid's footprint is its corners; a whole Sentinel-2 tile's sides curve in lon/lat by
    82 m, so it keeps more, and every point of its sides lies within a tenth of a pixel of it."""
    pixel_m = 10.0
    grid = Grid(CRS.from_epsg(32736), Affine(pixel_m, 0, 300_000, 0, -pixel_m, 7_900_000), size_px, size_px)
    geometry, bbox = _footprint_lonlat(grid)
    ring = geometry["coordinates"][0]
    assert ring[0] == ring[-1] and shapely.Polygon(ring).exterior.is_ccw
    if points is not None:
        assert len(ring) == points
    else:
        assert len(ring) > 5
    steps = np.linspace(0, 1, 401)
    cols = np.concatenate([steps, np.ones_like(steps), steps, np.zeros_like(steps)]) * size_px
    rows = np.concatenate([np.zeros_like(steps), steps, np.ones_like(steps), steps]) * size_px
    xs, ys = grid.transform @ (cols, rows)
    lons, lats = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    off_deg = shapely.LinearRing(ring).distance(shapely.points(lons, lats))
    assert off_deg.max() * 111_320 <= 0.1 * pixel_m + 0.02  # metres; the ring's coordinates are rounded to 1 cm
    west, south, east, north = bbox
    assert west <= lons.min() + 1e-7 and east >= lons.max() - 1e-7
    assert south <= lats.min() + 1e-7 and north >= lats.max() - 1e-7


def test_the_analysis_reads_the_folder_and_the_catalog(built):
    from_folder = find_activity_rasters(built)
    from_catalog = find_activity_rasters(built / "catalog.json")
    assert [r.period.label for r in from_folder] == ["2021", "2022"]
    assert [(r.period, r.path.resolve()) for r in from_folder] == [(r.period, r.path.resolve()) for r in from_catalog]
    assert all(r.synthetic and not r.integer_mask for r in from_folder)
    with from_folder[0].reader() as read:
        strip = read(0, 10)
    np.testing.assert_array_equal(strip, read_scores(built / "2021.tif")[:10])


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as local:
        yield local


def test_the_generator_plants_pits_of_the_radii_asked_for(scenes, tmp_path):
    generator = load_generator()
    small = generator.build_scenes(tmp_path / "small", size_px=200, pit_radius_px=(2.0, 3.0))
    first_radii = [next(iter(pit["radius_px"].values())) for pit in small["pits"]]
    assert first_radii and all(2.0 <= r <= 3.0 for r in first_radii), first_radii
    default = json.loads((scenes / "truth.json").read_text())  # the session's scenes, made with the default
    low, high = generator.PIT_RADIUS_PX
    assert all(low <= next(iter(pit["radius_px"].values())) <= high for pit in default["pits"])


def test_a_dask_cluster_gives_the_same_rasters_as_in_process(built, scenes, cluster, tmp_path, monkeypatch):
    messages = []

    class Progress:
        def __call__(self, step, done, total):
            messages.append((step, done, total))

        def step(self, message):
            messages.append(message)

    monkeypatch.setenv("MINEWATCH_SCHEDULER", cluster.scheduler_address)
    with distributed.Client(cluster) as watcher, distributed.get_task_stream(watcher) as stream:
        paths = build_activity(scenes, tmp_path / "on_dask", tile_px=TILE_PX, progress=Progress())
    ran = [str(task["key"]).split("-")[0] for task in stream.data]
    assert ran.count("describe_task") == 2 and ran.count("changes_task") == 9  # the workers described the files
    assert [p.name for p in paths] == ["2021.tif", "2022.tif"]
    assert any(isinstance(m, str) and cluster.scheduler_address in m for m in messages)
    assert ("scoring tiles", 9, 9) in messages
    for path in paths:
        for on_dask, in_process in zip(read_levels(path), read_levels(built / path.name), strict=True):
            np.testing.assert_array_equal(on_dask, in_process)  # the overviews too


def test_a_crop_on_a_dask_cluster_gives_the_rasters_of_the_crop_in_process(scenes, cluster, tmp_path):
    """A bbox about 100 pixels east and 60 south of the files' corner: the grid starts on their block corner and
    the workers read and score the bbox only, as in process; the exact crop's scores are the same."""
    with rasterio.open(next(scenes.glob("*_B04_10m.tif"))) as band:
        left, bottom, right, top = band.bounds
        box = rasterio.warp.transform_bounds(band.crs, "EPSG:4326", left + 1000, bottom + 500, right - 500, top - 600)
    runs = {
        "process": dict(query=SceneQuery(bbox=box)),
        "cluster": dict(query=SceneQuery(bbox=box), scheduler=cluster.scheduler_address),
        "exact": dict(query=SceneQuery(bbox=box, exact_bbox=True)),
    }
    built = {name: build_activity(scenes, tmp_path / name, tile_px=TILE_PX, **run)[0] for name, run in runs.items()}
    in_process, on_cluster, exact = (read_scores(built[name]) for name in runs)
    np.testing.assert_array_equal(on_cluster, in_process)
    rows, cols = exact.shape
    assert in_process.shape[0] > rows and in_process.shape[1] > cols  # the grid starts west and north of the bbox
    np.testing.assert_array_equal(in_process[-rows:, -cols:], exact)
    assert np.isnan(in_process[:-rows]).all() and np.isnan(in_process[:, :-cols]).all()
    assert (exact >= 0.5).any()


def test_a_rebuild_on_the_same_cluster_reads_the_files_changed_since(scenes, cluster, tmp_path):
    # the workers keep the first build's files open (layers.sentinel2.keep_files_open) ...
    changing = tmp_path / "scenes"
    shutil.copytree(scenes, changing)
    first = build_activity(changing, tmp_path / "first", tile_px=TILE_PX, scheduler=cluster.scheduler_address)
    # ... then every 2021 NIR band is overwritten in place (same inode) with that date's red band
    nir_bands = sorted(changing.glob("*_2021????_B08_10m.tif"))
    assert len(nir_bands) >= 3
    for nir in nir_bands:
        shutil.copyfile(nir.with_name(nir.name.replace("_B08_", "_B04_")), nir)
    again = build_activity(changing, tmp_path / "again", tile_px=TILE_PX, scheduler=cluster.scheduler_address)
    in_process = build_activity(changing, tmp_path / "in_process", tile_px=TILE_PX)
    np.testing.assert_array_equal(read_scores(again[0]), read_scores(in_process[0]))
    assert not np.array_equal(read_scores(again[0]), read_scores(first[0]), equal_nan=True)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_file_the_workers_cannot_use_is_refused_as_in_process(scenes, cluster, tmp_path):
    from geo.errors import CRSError

    broken_scenes = tmp_path / "scenes"
    shutil.copytree(scenes, broken_scenes)
    band = next(broken_scenes.glob("*_20210310_B03_10m.tif"))
    _strip_georeferencing(band)
    errors = []
    for scheduler in (cluster.scheduler_address, None):  # on the cluster the workers describe the files
        with pytest.raises(CRSError, match=re.escape(band.name)) as raised:
            build_activity(broken_scenes, tmp_path / "out", scheduler=scheduler, tile_px=TILE_PX)
        errors.append(str(raised.value))
    assert errors[0] == errors[1] and "no coordinate reference system" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_of_two_files_the_workers_cannot_use_the_first_in_order_is_named(scenes, cluster, tmp_path):
    """The workers describe the files in two runs at once; whichever fails first, the error is the first file's."""
    from geo.errors import CRSError

    broken_scenes = tmp_path / "scenes"
    shutil.copytree(scenes, broken_scenes)
    # 15 dates of 7 files, described in two runs of 53 (by date): the 8th date's B03 ends the first run and the
    # 9th date's begins the second, which so fails first
    first, second = sorted(broken_scenes.glob("*_B03_10m.tif"))[7:9]
    for band in (first, second):
        _strip_georeferencing(band)
    with pytest.raises(CRSError, match=re.escape(first.name)):
        build_activity(broken_scenes, tmp_path / "out", scheduler=cluster.scheduler_address, tile_px=TILE_PX)


def _strip_georeferencing(band: Path) -> None:
    """Rewrite ``band`` as a plain TIFF of the same pixels, without CRS or georeferencing."""
    with rasterio.open(band) as dataset:
        values = dataset.read()
    band.unlink()
    with rasterio.open(
        band, "w", driver="GTiff", width=values.shape[2], height=values.shape[1], count=1, dtype=values.dtype
    ) as plain:
        plain.write(values)


def test_a_band_that_cannot_be_read_on_the_cluster_is_one_line_and_exit_2(scenes, cluster, tmp_path, capsys):
    broken_scenes = tmp_path / "scenes"
    shutil.copytree(scenes, broken_scenes)
    broken = next(broken_scenes.glob("*_20210310_B04_10m.tif"))
    damage_tiles(broken)  # found as a scene (its header is whole), its pixels cannot be read
    # read on a worker while GDAL's error is handled (geo.errors.raised_plainly): an InputError, not Dask's bare
    # Exception("InputError(...)"), which the command line would report as a bug (exit 1, a traceback file)
    out = tmp_path / "out"
    argv = ["--scenes", str(broken_scenes), "--out", str(out), "--tile-px", str(TILE_PX), "--quiet"]
    assert run_cli([*argv, "--scheduler", cluster.scheduler_address]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0, error
    assert re.search(f"{broken.name}: cannot be read: .*TIFFReadEncodedTile", error), error  # GDAL's words
    assert not out.exists()


def test_an_existing_folder_that_is_not_ours_is_refused_and_left_alone(scenes, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a minewatch output folder"):
        build_activity(scenes, out, periods=["2021"])
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_failed_rebuild_leaves_the_previous_output(scenes, tmp_path):
    out = tmp_path / "act"
    build_activity(scenes, out, periods=["2021"], tile_px=256)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(InputError, match="no scene falls in period 2019"):
        build_activity(scenes, out, periods=["2019"])
    assert sorted(p.name for p in out.iterdir()) == before == ["2021.tif", "activity-2021", "catalog.json"]


def test_a_cog_that_fails_validation_fails_the_build_and_leaves_the_previous_output(scenes, tmp_path, monkeypatch):
    import layers.cog_writer as cog_writer

    out = tmp_path / "act"
    build_activity(scenes, out, periods=["2021"], tile_px=256)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def striped_tiff(writer):  # a real GeoTIFF, but in strips without overviews: not cloud-optimized
        profile = dict(driver="GTiff", width=600, height=600, count=1, dtype="float32", crs=writer.grid.crs)
        with rasterio.open(writer.path, "w", **profile, transform=writer.grid.transform) as dataset:
            dataset.write(np.zeros((1, 600, 600), dtype=np.float32))
        return writer.path

    monkeypatch.setattr(cog_writer.CogWriter, "finish", striped_tiff)
    with pytest.raises(RuntimeError, match=r"2021\.tif: the COG written is not valid"):
        build_activity(scenes, out, periods=["2021"], tile_px=256)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_the_default_tile_is_512_pixels_or_the_band_files_wider_tiles_up_to_1024(scenes):
    plan = plan_build(find_scenes(scenes))
    assert tile_px_for(plan) == 512  # the demo's files are in 256-pixel tiles

    def with_blocks(*shapes_10m: tuple[int, int]) -> BuildPlan:
        """The plan with its 10 m files' blocks in ``shapes_10m`` (in turn, file by file) and 4096-px 20 m blocks."""
        shapes = iter(shapes_10m * 100)

        def reblocked(scene):
            bands = {
                name: dataclasses.replace(band, block_shape=next(shapes) if band.pixel_m == 10 else (4096, 4096))
                for name, band in scene.bands.items()
            }
            return dataclasses.replace(scene, bands=bands)

        return dataclasses.replace(
            plan,
            baseline_scenes=tuple(map(reblocked, plan.baseline_scenes)),
            periods=tuple((period, tuple(map(reblocked, group))) for period, group in plan.periods),
        )

    # Sentinel-2's JPEG 2000 blocks; the 20 m bands' blocks do not count
    assert tile_px_for(with_blocks((1024, 1024))) == 1024
    assert tile_px_for(with_blocks((256, 1024))) == 1024  # GDAL's row of four 256-pixel JPEG 2000 tiles
    assert tile_px_for(with_blocks((256, 256))) == 512  # narrower blocks: the default
    assert tile_px_for(with_blocks((4096, 4096))) == 1024  # the widest COG block GDAL's validator accepts
    assert tile_px_for(with_blocks((600, 600))) == 608  # one block as wide as the file: a tile that holds it
    assert tile_px_for(with_blocks((3, 10980))) == 512  # strips: every tile across decodes them anyway
    # as common as each other (an even number of 10 m files), whichever comes first: the wider
    assert tile_px_for(with_blocks((1024, 1024), (720, 720))) == 1024
    assert tile_px_for(with_blocks((720, 720), (1024, 1024))) == 1024
    assert tile_px_for(with_blocks((720, 720), (720, 720), (1024, 1024))) == 720  # the most common


MONTHS = [f"{year}-{month:02d}" for year in (2021, 2022) for month in (1, 3, 5, 8, 10)]  # one date each


@pytest.mark.parametrize(
    ("periods", "dates"),
    [(None, 10), (["2021-Q1"], 7), (MONTHS, 6)],
    ids=["2 periods of 5 dates", "1 period of 2", "10 periods of 1"],
)
def test_a_tasks_memory_is_about_what_task_memory_mib_says(scenes, periods, dates):
    """The estimate behind the tile size and the memory warning, against the larger of a changes task's and a
    scores task's arrays traced at their largest (over a baseline of 5 dates)."""
    plan = plan_build(find_scenes(scenes), periods, "2020")
    assert dates_at_once(plan) == dates
    for tile_px in (128, 256):
        full_job = make_jobs(plan, ScoreParameters(), tile_px)[(0, 0)]
        job, scenes_of_job = _without_scenes(full_job), (full_job.baseline, full_job.periods)
        changes = changes_task(job, scenes_of_job)  # the first tasks allocate some things once (compiled code)
        around = [[None] * 3, [None, changes, None], [None] * 3]
        score_task(job, around)
        peaks = []
        for task, args in ((changes_task, scenes_of_job), (score_task, around)):
            tracemalloc.start()
            try:
                task(job, args)
                peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            finally:
                tracemalloc.stop()
        assert task_memory_mib(plan, tile_px) == pytest.approx(max(peaks), rel=0.2), (tile_px, peaks)


def test_the_tiles_are_halved_while_a_task_would_take_over_half_a_worker_threads_memory(scenes):
    plan = plan_build(find_scenes(scenes))

    def jp2(scene):  # Sentinel-2's 1024-pixel JPEG 2000 blocks
        bands = {name: dataclasses.replace(band, block_shape=(1024, 1024)) for name, band in scene.bands.items()}
        return dataclasses.replace(scene, bands=bands)

    big = dataclasses.replace(
        plan,
        grid=dataclasses.replace(plan.grid, width=10980, height=10980),
        baseline_scenes=tuple(map(jp2, plan.baseline_scenes)),
        periods=tuple((period, tuple(map(jp2, group))) for period, group in plan.periods),
    )
    need = {px: task_memory_mib(big, px) for px in (1024, 512, 256)}
    assert need[1024] > 3 * need[512] > 9 * need[256]  # the area, and the halo of the scores
    assert tile_px_for(big) == 1024 and tile_px_for(big, memory_mib=2 * need[1024]) == 1024
    assert tile_px_for(big, memory_mib=2 * need[1024] * 0.99) == 512
    assert tile_px_for(big, memory_mib=2 * need[512] * 0.99) == 256
    assert tile_px_for(big, memory_mib=1.0) == 256  # no smaller than SMALLEST_TILE_PX_FOR_MEMORY
    assert task_memory_mib(plan, 512) == task_memory_mib(plan, 300)  # the grid is 300 pixels


def test_a_build_not_told_a_tile_size_uses_tile_px_for_its_plan_in_the_cogs_and_the_catalog(
    scenes, tmp_path, monkeypatch
):
    import layers.activity_build as activity_build

    seen = []

    def tile_px_for_plan(plan, memory_mib, params):
        seen.append(plan.grid)
        assert memory_mib > 0 and params.filter_px == 2  # this machine's memory per core; the build's parameters
        return 96

    monkeypatch.setattr(activity_build, "tile_px_for", tile_px_for_plan)
    (path,) = build_activity(scenes, tmp_path / "act", periods=["2021"], params=ScoreParameters(filter_px=2))
    assert len(seen) == 1
    with rasterio.open(path) as dataset:
        assert dataset.block_shapes == [(96, 96)] and (dataset.width, dataset.height) == (seen[0].width, seen[0].height)
    item = json.loads(next((tmp_path / "act").rglob("activity-2021*.json")).read_text())
    assert item["properties"]["minewatch:parameters"]["tile_px"] == 96


def test_a_worker_thread_short_of_memory_gets_smaller_tiles_or_a_warning(scenes, tmp_path, monkeypatch):
    import layers.activity_build as activity_build

    plan = plan_build(find_scenes(scenes))
    short_mib = 2 * task_memory_mib(plan, 512) * 0.9  # a 512-pixel tile's task would take over half of it
    monkeypatch.setattr(activity_build, "memory_per_thread_mib", lambda client: short_mib)

    class Progress:
        def __init__(self):
            self.messages = []

        def __call__(self, step, done, total):
            pass

        def step(self, message):
            self.messages.append(message)

    for tile_px, block_px in ((None, 256), (512, 512)):
        progress = Progress()
        path = build_activity(scenes, tmp_path / str(tile_px), progress=progress, tile_px=tile_px)[0]
        with rasterio.open(path) as dataset:
            assert dataset.block_shapes == [(block_px, block_px)]
        (line,) = [m for m in progress.messages if m.startswith("tiles of")]
        assert f"tiles of {block_px} pixels" in line and f"of the {short_mib:,.0f} MiB a worker thread has" in line
        assert ("WARNING" in line) == (tile_px == 512), line
        if tile_px:
            assert f"--tile-px 256: about {task_memory_mib(plan, 256):,.0f} MiB" in line


def test_default_baseline_and_periods(scenes):
    found = find_scenes(scenes)
    plan = plan_build(found)
    assert plan.baseline.label == "2020" and [p.label for p, _ in plan.periods] == ["2021", "2022"]
    assert [len(group) for _, group in plan.periods] == [5, 5]
    quarters = plan_build(found, periods=["2022-Q1"], baseline="2020-Q1")
    assert [s.date.month for s in quarters.baseline_scenes] == [1, 3]
    with pytest.raises(InputError, match="--periods 2021-13"):
        plan_build(found, periods=["2021-13"])


def test_cli_help_and_one_line_errors(scenes, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["--help"])
    assert exit_info.value.code == 0
    assert "--scenes" in capsys.readouterr().out
    assert run_cli(["--scenes", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "nowhere: no such file or folder" in error
    assert not (tmp_path / "o").exists()
    assert run_cli(["--scenes", str(scenes), "--out", str(tmp_path / "o"), "--tile-px", "100", "--quiet"]) == 2
    assert "--tile-px 100: use a multiple of 16" in capsys.readouterr().err and not (tmp_path / "o").exists()
    # wider blocks than GDAL's COG validator accepts are refused before any work, not after it
    assert run_cli(["--scenes", str(scenes), "--out", str(tmp_path / "o"), "--tile-px", "2048", "--quiet"]) == 2
    assert "--tile-px 2048: use a multiple of 16 from 64 to 1024" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    code = run_cli(["--scenes", str(scenes), "--out", str(tmp_path / "o"), "--periods", "2022", "--quiet"])
    assert code == 0 and "2022.tif" in capsys.readouterr().out


def test_a_wider_median_filter_is_recorded_still_finds_the_pits_and_does_not_depend_on_the_tile_size(
    scenes, truth, tmp_path, capsys
):
    assert run_cli(["--scenes", str(scenes), "--out", str(tmp_path / "x"), "--filter-px", "9", "--quiet"]) == 2
    assert "--filter-px 9: use 0 to 5 pixels" in capsys.readouterr().err and not (tmp_path / "x").exists()
    wide = tmp_path / "wide"
    assert run_cli(["--scenes", str(scenes), "--out", str(wide), "--filter-px", "2", "--quiet"]) == 0
    summary, layers = truth
    for period in ("2021", "2022"):
        scores = read_scores(wide / f"{period}.tif")
        pit, active = class_mask(summary, layers[period], "pit"), scores >= 0.5
        true_positive, missed = (active & pit).sum(), (~active & pit & np.isfinite(scores)).sum()
        assert 2 * true_positive / (2 * true_positive + (active & ~pit).sum() + missed) >= 0.9
    item = json.loads(next(wide.glob("activity-2021/*.json")).read_text())
    assert item["properties"]["minewatch:parameters"]["filter_px"] == 2
    tiled = build_activity(scenes, tmp_path / "tiled", tile_px=96, params=ScoreParameters(filter_px=2))
    for path in tiled:
        np.testing.assert_array_equal(read_scores(path), read_scores(wide / path.name))


def test_on_noisy_scenes_the_noise_adaptation_acts_is_recorded_and_does_not_depend_on_the_tile_size(tmp_path, capsys):
    """Scenes with sensor noise SD 0.02 (the demo's is 0.003) and a 700 m cloud seen through on two dates of
    2021 only (no spreads of their own inside it): the default --noise-z scores fewer pixels active
    than --noise-z 0 (so the spreads, their 3 x 3 median and their reach are exercised), at 96-px tiles exactly as at
    512, with the parameters in the provenance; an out-of-range --noise-z is refused in one line."""
    noisy = tmp_path / "noisy"
    load_generator().build_scenes(noisy, size_px=150, seed=3, noise_sd=0.02)
    for scl in sorted(noisy.glob("*_2021*_SCL_20m.tif"))[2:]:  # a cloud on 3 of 2021's 5 dates, across tiles
        with rasterio.open(scl, "r+") as dataset:
            dataset.write(np.full((1, 35, 35), 9, np.uint8), window=rasterio.windows.Window(25, 25, 35, 35))
    assert run_cli(["--scenes", str(noisy), "--out", str(tmp_path / "x"), "--noise-z", "11", "--quiet"]) == 2
    assert "--noise-z 11: use 0 to 10" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert run_cli(["--scenes", str(noisy), "--out", str(tmp_path / "fixed"), "--noise-z", "0", "--quiet"]) == 0
    far = ScoreParameters(noise_reach_m=300)  # spreads taken from up to 30 px away: wider than the growth's halo
    adaptive = build_activity(noisy, tmp_path / "adaptive", params=far)
    small_tiles = build_activity(noisy, tmp_path / "small_tiles", tile_px=96, params=far)
    for path, tiled in zip(adaptive, small_tiles, strict=True):
        scores, fixed = read_scores(path), read_scores(tmp_path / "fixed" / path.name)
        assert (scores >= 0.5).sum() < (fixed >= 0.5).sum()
        np.testing.assert_array_equal(read_scores(tiled), scores)
    parameters = json.loads(next((tmp_path / "fixed").glob("activity-2021/*.json")).read_text())["properties"]
    assert parameters["minewatch:parameters"]["noise_z"] == 0
    assert parameters["minewatch:parameters"]["noise_reach_m"] == ScoreParameters.noise_reach_m


def test_the_rasters_do_not_depend_on_the_tile_size(built, scenes, tmp_path):
    """Halos (cloud buffer, river corridor, median filter, growth into workings) make tiles seamless."""
    paths = build_activity(scenes, tmp_path / "small_tiles", tile_px=96)  # the last tiles: 12 px, < the halo
    for path in paths:
        np.testing.assert_array_equal(read_scores(path), read_scores(built / path.name))


def test_multi_band_files_build_the_same_rasters_as_band_files(built, scenes, tmp_path):
    """Each date's bands in one GeoTIFF named by band descriptions (20 m bands repeated onto 10 m)."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    order = ("B02", "B03", "B04", "B08", "B11", "B12", "SCL")
    for scene in find_scenes(scenes):
        layers = []
        for name in order:
            band = scene.band(name)
            with rasterio.open(band.path) as dataset:
                values = dataset.read(1)
                profile = dataset.profile
            factor = round(band.pixel_m / 10)
            layers.append(np.repeat(np.repeat(values, factor, 0), factor, 1).astype(np.uint16))
            if name == "B04":
                reference = profile
        profile = {**reference, "count": len(order), "dtype": "uint16", "nodata": 0}
        with rasterio.open(stacks / f"{scene.scene_id}.tif", "w", **profile) as dataset:
            dataset.write(np.stack(layers))
            dataset.descriptions = order
            dataset.scales = tuple(scene.band(n).scale for n in order)
            dataset.offsets = tuple(scene.band(n).offset for n in order)
            dataset.update_tags(MINEWATCH_SYNTHETIC="yes")
    paths = build_activity(stacks, tmp_path / "from_stacks", tile_px=TILE_PX)
    assert [p.name for p in paths] == ["2021.tif", "2022.tif"]
    for path in paths:
        np.testing.assert_array_equal(read_scores(path), read_scores(built / path.name))


def test_the_background_work_starts_once_the_first_tasks_have_run(scenes):
    """The catalog and COG headers (``started``) wait until the first tiles' changes are back and the edge
    tasks they free are submitted."""
    jobs = make_jobs(plan_build(find_scenes(scenes)), ScoreParameters(), TILE_PX)
    events = []

    class Recording(_Runner):
        def submit(self, function, arguments, priority=0, watched=True):
            events.extend([function.__name__] * len(arguments))
            return super().submit(function, arguments, priority=priority, watched=watched)

    with Recording() as runner:
        run_tiles(jobs, runner, lambda *tile: events.append("tile"), started=lambda: events.append("started"))
    assert events.count("started") == 1
    before = events[: events.index("started")]
    assert "changes_task" in before and "edges_task" in before and "tile" not in before
    assert events.count("tile") > len(jobs)  # the tiles and their overviews came back after it


def test_a_failed_build_waits_for_its_background_work(scenes, tmp_path, monkeypatch):
    """The catalog, made in a thread the process keeps, is done before a failed build gives up its folder."""
    import layers.activity_build as activity_build

    finished = []
    real_catalog = activity_build._catalog

    def slow_catalog(*args):
        time.sleep(0.5)
        finished.append("catalog")
        return real_catalog(*args)

    def failing_scores(job, changes_around):
        raise RuntimeError("a score task failed")

    monkeypatch.setattr(activity_build, "_catalog", slow_catalog)
    monkeypatch.setattr(activity_build, "encoded_scores_task", failing_scores)
    with pytest.raises(RuntimeError, match="a score task failed"):
        build_activity(scenes, tmp_path / "out", tile_px=TILE_PX)
    assert finished == ["catalog"]
    assert not (tmp_path / "out").exists()


def test_a_task_reads_with_a_16_mib_block_cache_and_one_gdal_thread_unless_the_environment_sets_them(
    scenes, monkeypatch
):
    """The cache stays small (64 MiB filled up on larger scenes only, so a worker's peak grew with the area)."""
    job = next(iter(make_jobs(plan_build(find_scenes(scenes)), ScoreParameters(), TILE_PX).values()))
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    monkeypatch.delenv("GDAL_NUM_THREADS", raising=False)
    with _task_env(job):
        cache_bytes = int(rasterio.env.get_gdal_config("GDAL_CACHEMAX"))  # what GDAL applies
        threads = rasterio.env.getenv()["GDAL_NUM_THREADS"]
    assert cache_bytes == 16 << 20 and threads == 1
    monkeypatch.setenv("GDAL_CACHEMAX", "200")  # a worker's own setting wins: GDAL took it when the worker started,
    with rasterio.Env(GDAL_CACHEMAX=200 << 20), _task_env(job):  # which rasterio.Env stands in for here
        cache_bytes = int(rasterio.env.get_gdal_config("GDAL_CACHEMAX"))
        threads = rasterio.env.getenv()["GDAL_NUM_THREADS"]
    assert cache_bytes == 200 << 20 and threads == 1


def test_a_grown_tile_takes_its_neighbours_strips_and_is_unseen_beyond_the_grid():
    """The changes' fields survive the edges and the assembly; beyond the grid the flags and counts are 0
    (unseen) and the values NaN."""
    centre = np.zeros((1, 8, 8), CHANGES_DTYPE)
    right = np.zeros((1, 8, 8), CHANGES_DTYPE)
    right["loss"], right["flags"], right["count"] = np.arange(64).reshape(8, 8), 5, 300
    around = [[None] * 3 for _ in range(3)]
    around[1][1], around[1][2] = centre, _Edges(right, halo=2)
    grown = _assemble(around, 2, fill=UNSEEN)
    assert grown.shape == (1, 12, 12) and grown.dtype == CHANGES_DTYPE
    assert grown["loss"][0, 2:10, 10:12].tolist() == right["loss"][0, :, :2].tolist()
    assert (grown["flags"][0, 2:10, 10:12] == 5).all() and (grown["count"][0, 2:10, 10:12] == 300).all()
    assert (
        np.isnan(grown["loss"][0, 0]).all() and (grown["flags"][0, 0] == 0).all() and (grown["count"][0, 0] == 0).all()
    )


def test_a_tile_keeps_only_the_edges_a_neighbour_takes(scenes):
    """On a grid of 3 x 3 tiles the middle tile keeps all four strips, a corner tile the two facing the grid,
    and the scores still assemble: what a neighbour would take of a missing strip is refused, not invented."""
    plan = plan_build(find_scenes(scenes))
    grid = dataclasses.replace(plan.grid, width=3 * 128, height=3 * 128)
    jobs = make_jobs(BuildPlan(grid, plan.baseline, (), ()), ScoreParameters(), 128)
    job = jobs[(0, 0)]
    changes = np.zeros((1, 128, 128), CHANGES_DTYPE)

    def kept(key):
        edges = edges_task(dataclasses.replace(job, row=key[0], col=key[1]), changes)
        return tuple(strip is not None for strip in (edges.top, edges.bottom, edges.left, edges.right))

    assert kept((1, 1)) == (True, True, True, True)
    assert kept((0, 0)) == (False, True, False, True)
    assert kept((2, 1)) == (True, False, True, True)
    corner = edges_task(job, changes)
    halo = job.halo_px
    assert corner.take(128 - halo, 128, 128 - halo, 128).shape == (1, halo, halo)  # the tile below right's corner
    with pytest.raises(ValueError, match="edge kept"):
        corner.take(0, halo, 0, 128)  # the top strip: no tile above takes it


def test_dask_counts_the_edge_strips_in_the_size_of_edges():
    """Dask's managed memory (what a worker spills and limits) includes the strips neighbours fetch."""
    from dask.sizeof import sizeof

    edges = _Edges(np.zeros((2, 100, 120), CHANGES_DTYPE), halo=10)
    strips = (2 * (2 * 10 * 120) + 2 * (2 * 100 * 10)) * CHANGES_DTYPE.itemsize
    assert strips <= sizeof(edges) < strips + 1024


def test_in_process_a_task_starts_once_the_futures_it_takes_are_done_and_gets_their_results():
    """The runner chains tasks as a Dask scheduler does: the dependent waits without holding a pool thread,
    takes the results in the futures' place (in nested lists too), and fails with its input's error."""
    gate = threading.Event()
    order = []

    def slow(value):
        gate.wait(60)
        order.append("slow")
        return value

    def fails():
        raise ValueError("an input failed")

    def combine(a, nested):
        order.append("combine")
        return a + sum(x for row in nested for x in row)

    with _Runner() as runner:
        runner.pool.shutdown()
        runner.pool = concurrent.futures.ThreadPoolExecutor(2)  # one for slow, one left if combine takes none
        first = runner.submit(slow, [(1,)])[0]
        later = runner.submit(combine, [(first, [[first, 2], [3, first]])])[0]
        quick = runner.submit(lambda: "ran", [()])[0]
        assert quick.result(timeout=5) == "ran" and not later.done()
        gate.set()
        assert later.result(timeout=10) == 1 + (1 + 2 + 3 + 1) and order == ["slow", "combine"]
        broken = runner.submit(fails, [()])[0]
        after_broken = runner.submit(combine, [(broken, [])])[0]
        with pytest.raises(ValueError, match="an input failed"):
            after_broken.result(timeout=10)
        assert order == ["slow", "combine"]  # it never ran


def test_in_process_a_chained_task_keeps_no_input_alive_once_done():
    """Nothing the runner keeps (an input's done-callbacks) holds the inputs' results: they go with the last
    reference, not at the next garbage collection, which a build's large arrays need not trigger."""
    gc.disable()
    try:
        gate = threading.Event()

        def token_when_let_through():
            gate.wait(60)
            return _Token()

        with _Runner() as runner:
            first = runner.submit(token_when_let_through, [()])[0]
            later = runner.submit(lambda token: None, [(first,)])[0]  # while first runs: a callback of it
            gate.set()
            later.result(timeout=10)
            token = weakref.ref(first.result())
            del first, later
            deadline = time.monotonic() + 5
            while token() is not None and time.monotonic() < deadline:  # the pool thread lets go of its task
                time.sleep(0.01)
            assert token() is None
    finally:
        gc.enable()


def test_in_process_a_task_cancelled_while_it_waits_never_runs():
    gate = threading.Event()
    ran = []
    with _Runner() as runner:
        first = runner.submit(gate.wait, [(10,)])[0]
        waiting = runner.submit(ran.append, [(first,)])[0]
        assert waiting.cancel()
        gate.set()
        first.result(timeout=10)
    assert waiting.cancelled() and ran == []


class _Token:
    """A stand-in for a task's result, that a weak reference can follow."""


class _RunAtOnce(_Runner):
    """Runs a stand-in of each task as it is submitted, on one thread: what stays alive is what run_tiles holds."""

    threads = 1

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, int]] = []  # (event, how many edges results are alive then)
        self.edges = weakref.WeakSet()

    def submit(self, function, arguments, priority=0, watched=True):
        futures = []
        for _ in arguments:
            name = function.__name__
            result = [] if name in ("encoded_scores_task", "overviews_task") else _Token()
            if name == "edges_task":
                self.edges.add(result)
            self.log.append((name, len(self.edges)))
            futures.append(concurrent.futures.Future())
            futures[-1].set_result(result)
        return futures

    def scored(self, step, done, total):
        """The progress callback: a score is done."""
        self.log.append(("scored", len(self.edges)))


def test_few_tiles_are_open_at_once_and_edges_go_once_taken(scenes):
    """On a 10 x 10 tile grid: no more tiles are open (changes submitted, score not done) than a row and a tile
    (up to the tile below right of the next score, which that score waits for) and three per thread (two
    queued changes and a score), and no more edges are alive than about two rows of tiles."""
    plan = plan_build(find_scenes(scenes))
    wide = dataclasses.replace(plan.grid, width=960, height=960)
    jobs = make_jobs(BuildPlan(wide, plan.baseline, (), ()), ScoreParameters(), 96)
    columns = 10
    with _RunAtOnce() as runner:
        run_tiles(jobs, runner, lambda *tile: None, progress=runner.scored)
    names = [name for name, _ in runner.log]
    assert names.count("changes_task") == names.count("encoded_scores_task") == names.count("scored") == 100
    scored = changes = scores = most_open = lead = 0
    for name in names:
        scored += name == "scored"
        changes += name == "changes_task"
        scores += name == "encoded_scores_task"
        most_open = max(most_open, changes - scored)
        lead = max(lead, changes - scores)
    assert most_open == columns + 1 + (CHANGES_QUEUED_PER_THREAD + 1) * runner.threads  # no more, and that many
    assert lead == most_open  # the first round's changes go out alone, before any score
    most_edges = max(alive for _, alive in runner.log)
    assert columns + 1 < most_edges <= 2 * columns + 3 + (CHANGES_QUEUED_PER_THREAD + 1) * runner.threads


class _Holding(_Runner):
    """Records what is submitted and leaves every future pending until the test ends it."""

    threads = 1

    def __init__(self):
        super().__init__()
        self.made: list[tuple[str, concurrent.futures.Future]] = []

    def submit(self, function, arguments, priority=0, watched=True):
        futures = [concurrent.futures.Future() for _ in arguments]
        self.made += [(function.__name__, future) for future in futures]
        return futures

    def of(self, name: str) -> list[concurrent.futures.Future]:
        return [future for made, future in list(self.made) if made == name]


def test_a_score_is_submitted_while_the_changes_it_takes_still_run(scenes):
    """Once the first changes are back, the edges and scores of the 2 x 2 tiles go out, though the other three
    tiles' changes, which every score takes, are not done: the runner (the scheduler) starts them later."""
    plan = plan_build(find_scenes(scenes))
    grid = dataclasses.replace(plan.grid, width=2 * 96, height=2 * 96)
    jobs = make_jobs(BuildPlan(grid, plan.baseline, (), ()), ScoreParameters(), 96)
    runner = _Holding()
    running = threading.Thread(target=run_tiles, args=(jobs, runner, lambda *tile: None), daemon=True)
    running.start()

    def soon(condition) -> bool:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return condition()

    assert soon(lambda: len(runner.of("changes_task")) == 4)
    assert runner.of("encoded_scores_task") == []  # the first round: the changes alone
    first, *others = runner.of("changes_task")
    first.set_result(_Token())
    assert soon(lambda: len(runner.of("encoded_scores_task")) == 4)
    assert len(runner.of("edges_task")) == 4 and not any(future.done() for future in others)
    for future in others + runner.of("edges_task"):
        future.set_result(_Token())
    for future in runner.of("encoded_scores_task"):
        future.set_result([])  # no periods: no tiles
    running.join(10)
    assert not running.is_alive()
