"""Crash safety: ``analyze``, ``build-activity`` and ``plan-visits`` killed with SIGKILL.

Each command first writes an output folder; then it is run again (with different options,
so its new output would differ) and killed at several moments: at a stage its progress
names, or a little after. After every kill the output folder must be the previous one,
byte for byte, or (a kill after the atomic swap) the complete new one; nothing but the
hidden staging folder may be left beside it, and the next run removes that.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from layers.atomic import leftovers

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def run_and_kill(args: list[str], marker: str, delay_s: float) -> bool:
    """Start the command, SIGKILL it ``delay_s`` after ``marker`` appears on stderr.

    Returns True if it was killed while running (False: it ended first).
    """
    process = subprocess.Popen(
        [sys.executable, "app.py", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    seen = threading.Event()
    if not marker:  # no line to wait for: the delay counts from the start
        seen.set()
    text = bytearray()

    def watch() -> None:
        while chunk := process.stderr.read1(4096):
            text.extend(chunk)
            if marker.encode() in text:
                seen.set()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not seen.is_set() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert seen.is_set(), f"never printed {marker!r}: {text.decode(errors='replace')[-500:]}"
    time.sleep(delay_s)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    reader.join(timeout=5)
    process.stderr.close()
    return killed and process.returncode == -signal.SIGKILL


def check_after_kill(out: Path, before: dict[str, bytes], is_complete_new) -> str:
    """'previous' or 'new' (never anything half-written); nothing beside it but staging."""
    after = snapshot(out)
    if after != before:
        assert is_complete_new(out), "the output folder is neither the previous output nor a complete new one"
    # The lock file a killed run leaves is harmless (the next run locks and removes it).
    strays = [p for p in out.parent.iterdir() if p not in (out, out.with_name(f"{out.name}.lock"))]
    assert all(p in leftovers(out) for p in strays), strays
    return "previous" if after == before else "new"


def kill_many(args, out: Path, points, is_complete_new) -> list[str]:
    before = snapshot(out)
    outcomes = []
    for marker, delay_s in points:
        killed = run_and_kill(args, marker, delay_s)
        outcome = check_after_kill(out, before, is_complete_new)
        outcomes.append(f"{marker}+{delay_s}: {'killed' if killed else 'ended'}, {outcome}")
        if outcome == "new":
            before = snapshot(out)
    return outcomes


def analyze_args(out: Path, threshold: str) -> list[str]:
    return [
        "analyze", "--concessions", str(DEMO / "concessions.gpkg"), "--production", str(DEMO / "production.csv"),
        "--national", str(DEMO / "national.csv"), "--activity", str(DEMO / "activity"),
        "--context", str(DEMO / "context.geojson"), "--set", f"activity_threshold={threshold}", "--out", str(out),
    ]  # fmt: skip


def test_analyze_killed_at_any_moment_leaves_the_previous_output(tmp_path):
    out = tmp_path / "results"
    run(analyze_args(out, "0.5"))
    before = snapshot(out)

    def is_complete_new(folder: Path) -> bool:
        provenance = json.loads((folder / "provenance.json").read_text())
        return provenance["settings"]["activity_threshold"] == 0.6 and len(snapshot(folder)) == len(before)

    points = [("reading production", 0.0), ("scanning 2022", 0.0), ("writing", 0.0), ("writing", 0.1)]
    outcomes = kill_many(analyze_args(out, "0.6"), out, points, is_complete_new)
    killed_previous = [o for o in outcomes if "killed, previous" in o]
    assert len(killed_previous) >= 3, outcomes
    print("\n".join(outcomes))  # most kills landed mid-run and changed nothing
    assert any(o.startswith("writing") and "killed, previous" in o for o in outcomes), outcomes
    run(analyze_args(out, "0.6"))  # the next run completes and sweeps what the kills left
    assert not leftovers(out) and sorted(p.name for p in out.parent.iterdir()) == ["results"]
    assert json.loads((out / "provenance.json").read_text())["settings"]["activity_threshold"] == 0.6


def test_build_activity_killed_leaves_the_previous_rasters(tmp_path):
    out = tmp_path / "activity"
    scenes = str(ROOT / "data" / "demo_scenes")
    run(["build-activity", "--scenes", scenes, "--out", str(out)])
    args = ["build-activity", "--scenes", scenes, "--periods", "2022", "--out", str(out)]
    points = [("scenes; baseline", 0.0), ("scoring tiles", 0.0), ("writing 2022.tif", 0.0)]
    outcomes = kill_many(args, out, points, lambda folder: sorted(p.name for p in folder.glob("*.tif")) == ["2022.tif"])
    assert sum("killed, previous" in o for o in outcomes) >= 2, outcomes
    run(args)
    assert not leftovers(out)
    assert sorted(p.name for p in out.glob("*.tif")) == ["2022.tif"]


def test_plan_visits_killed_leaves_the_previous_plan(tmp_path):
    run(analyze_args(tmp_path / "results", "0.5"))
    out = tmp_path / "plans" / "plan"
    flags = str(tmp_path / "results" / "flags.geojson")
    run(["plan-visits", "--flags", flags, "--start", "Mutare", "--no-pdf", "--out", str(out)])
    args = ["plan-visits", "--flags", flags, "--start", "Mutare", "--max-sites", "3", "--out", str(out)]

    def is_complete_new(folder: Path) -> bool:
        return (folder / "briefing.pdf").is_file() and (folder / "itinerary.gpx").is_file()

    points = [("ordering", 0.0), ("writing", 0.0), ("printing briefing.pdf", 0.0), ("printing briefing.pdf", 0.3)]
    outcomes = kill_many(args, out, points, is_complete_new)
    assert sum("killed, previous" in o for o in outcomes) >= 3, outcomes
    assert any(o.startswith("printing") and "killed, previous" in o for o in outcomes), outcomes
    run(args)
    assert not leftovers(out) and is_complete_new(out)
