"""The command line end to end: outputs, --help, and bad input that exits 2 writing nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyogrio
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def analyze_args(paths, out) -> list[str]:
    return [
        "analyze",
        "--concessions", str(paths["concessions"]),
        "--production", str(paths["production"]),
        "--national", str(paths["national"]),
        "--activity", str(paths["activity"]),
        "--out", str(out),
    ]  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    from tests.conftest import write_field

    base = tmp_path_factory.mktemp("cli")
    paths = write_field(base / "field")
    result = run_app(*analyze_args(paths, base / "out"))
    return paths, base / "out", result


def test_analyze_writes_every_output(analysed):
    _, out, result = analysed
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"flags.geojson", "flags.csv", "concession_stats.csv", "footprints.geojson", "provenance.json"} <= names
    flags = pyogrio.read_dataframe(out / "flags.geojson")
    assert len(flags) == len(pd.read_csv(out / "flags.csv"))
    assert "activity_without_production" in result.stdout
    assert "scanning 2021" in result.stderr  # progress


def test_provenance_hashes_every_input(analysed):
    paths, out, _ = analysed
    provenance = json.loads((out / "provenance.json").read_text())
    layers = {entry["layer"]: entry for entry in provenance["inputs"]}
    assert {"concessions", "production", "national", "activity 2018", "activity 2021"} <= set(layers)
    import hashlib

    assert layers["production"]["sha256"] == hashlib.sha256(paths["production"].read_bytes()).hexdigest()
    assert provenance["settings"]["activity_threshold"] == 0.5
    assert provenance["synthetic"] is True  # the production file's source says "synthetic"
    assert "rasterio" in provenance["software"] and "gdal" in provenance["software"]


def test_help_describes_every_option():
    result = run_app("analyze", "--help")
    assert result.returncode == 0
    for option in ("--concessions", "--production", "--activity", "--national", "--out", "--field", "--set"):
        assert option in result.stdout


def bad_production(paths, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("concession_id,period,carats\nA,2018,100\nA,2019,-5\n")
    return {**paths, "production": bad}, "row 3, column carats"


def no_crs(paths, tmp_path):
    frame = pyogrio.read_dataframe(paths["concessions"]).set_crs(None, allow_override=True)
    path = tmp_path / "nocrs.shp"
    pyogrio.write_dataframe(frame, path)  # no .prj
    return {**paths, "concessions": path}, "no coordinate reference system"


def metres_in_geojson(paths, tmp_path):
    frame = pyogrio.read_dataframe(paths["concessions"]).set_crs(None, allow_override=True)
    path = tmp_path / "metres.geojson"
    pyogrio.write_dataframe(frame, path)  # GDAL reads GeoJSON as lon/lat
    return {**paths, "concessions": path}, "are not degrees"


def unknown_column(paths, tmp_path):
    bad = tmp_path / "cols.csv"
    bad.write_text("licence,period,carats\nA,2018,100\n")
    return {**paths, "production": bad}, "missing column 'concession_id'"


def unreadable_raster(paths, tmp_path):
    folder = tmp_path / "act"
    folder.mkdir()
    (folder / "2018.tif").write_bytes(b"II*\x00 not really a tiff")
    return {**paths, "activity": folder}, "2018.tif"


def missing_path(paths, tmp_path):
    return {**paths, "national": tmp_path / "nowhere.csv"}, "no such file"


def virtual_path(paths, tmp_path):
    return {**paths, "concessions": "/vsicurl/http://127.0.0.1:9/c.gpkg"}, "virtual paths"


@pytest.mark.parametrize(
    "make_bad",
    [bad_production, no_crs, metres_in_geojson, unknown_column, unreadable_raster, missing_path, virtual_path],
)
@pytest.mark.filterwarnings("ignore:.crs. was not provided", "ignore:Normalized/laundered field name")
def test_bad_input_exits_2_and_leaves_previous_output(analysed, tmp_path, make_bad):
    paths, out, _ = analysed
    before = snapshot(out)
    bad_paths, expected = make_bad(paths, tmp_path)
    result = run_app(*analyze_args(bad_paths, out))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("minewatch: error")]
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert snapshot(out) == before
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_out_folder_with_other_files_is_refused(analysed, tmp_path):
    paths, _, _ = analysed
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.docx").write_text("years of work")
    result = run_app(*analyze_args(paths, precious))
    assert result.returncode == 2 and "not a minewatch output" in result.stderr
    assert (precious / "chapter1.docx").read_text() == "years of work"


def test_settings_from_toml_and_set(analysed, tmp_path):
    paths, _, _ = analysed
    config = tmp_path / "strict.toml"
    config.write_text("[analysis]\nno_production_min_active_ha = 100\n")
    out = tmp_path / "strict"
    result = run_app(*analyze_args(paths, out), "--config", str(config), "--set", "unlicensed_min_ha=50")
    assert result.returncode == 0, result.stderr
    flags = pyogrio.read_dataframe(out / "flags.geojson")
    assert not {"activity_without_production", "unlicensed_activity"} & set(flags["flag_type"])
    assert "activity_in_inactive_licence" in set(flags["flag_type"])
    bad = run_app(*analyze_args(paths, out), "--set", "no_such_setting=1")
    assert bad.returncode == 2 and "unknown setting" in bad.stderr


def test_field_mapping_on_the_command_line(analysed, tmp_path):
    paths, _, _ = analysed
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(paths["production"]).rename(columns={"carats": "CT_2"}).to_csv(renamed, index=False)
    out = tmp_path / "mapped"
    result = run_app(*analyze_args({**paths, "production": renamed}, out), "--field", "production:carats=CT_2")
    assert result.returncode == 0, result.stderr
    assert os.path.exists(out / "flags.geojson")


def test_second_analyze_into_a_busy_folder_is_refused(analysed, tmp_path):
    import fcntl

    paths, _, _ = analysed
    out = tmp_path / "busy"
    with open(tmp_path / "busy.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running analyze holds it
        result = run_app(*analyze_args(paths, out))
    assert result.returncode == 2 and "another minewatch run is writing this folder" in result.stderr
    assert not out.exists()
    assert run_app(*analyze_args(paths, out)).returncode == 0  # released: the next run proceeds


def test_an_unexpected_error_is_one_line_and_a_saved_traceback(monkeypatch, capsys, tmp_path):
    import app
    import layers.concessions

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("deep inside")

    monkeypatch.setattr(layers.concessions, "read_concessions", broken)
    monkeypatch.delenv("MINEWATCH_DEBUG", raising=False)
    status = app.main(["analyze", "--concessions", "c.gpkg", "--production", "p.csv", "--activity", "a",
                       "--out", str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err
    assert status == app.EXIT_BUG == 1
    assert "Traceback" not in err and "internal error: ZeroDivisionError: deep inside" in err
    report = Path(err.rsplit("the traceback is in ", 1)[1].strip())
    assert "Traceback" in report.read_text() and "deep inside" in report.read_text()
    report.unlink()
