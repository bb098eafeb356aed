"""A visit plan written to a folder: GPX, GeoJSON, CSV, the HTML briefing and its PDF.

The PDF is printed by headless Chromium when it is installed (``/usr/bin/chromium`` or
``chromium`` on the PATH); without it the HTML briefing prints from any browser.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from geo.visit_export import gpx_text, plan_csv_text, plan_geojson_text
from geo.visits import Plan
from layers.atomic import atomic_folder, write_text

MARKER = "itinerary.gpx"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--no-pdf-header-footer"]  # fmt: skip


def chromium_path() -> str | None:
    """The system Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_plan(
    plan: Plan, briefing_html: str, out_dir: str | Path, pdf: bool = True, say: Callable[[str], None] | None = None
) -> list[Path]:
    """Write the plan's files into ``out_dir`` atomically; return the paths written.

    ``say`` hears each step (the PDF takes Chromium a few seconds).
    """
    say = say or (lambda message: None)
    with atomic_folder(out_dir, MARKER) as staging:
        say(f"writing {out_dir}: itinerary GPX, GeoJSON and CSV, briefing.html")
        write_text(staging / "itinerary.gpx", gpx_text(plan))
        write_text(staging / "itinerary.geojson", plan_geojson_text(plan))
        write_text(staging / "itinerary.csv", plan_csv_text(plan))
        write_text(staging / "briefing.html", briefing_html)
        if pdf and chromium_path():
            say("printing briefing.pdf with Chromium")
            print_pdf(staging / "briefing.html", staging / "briefing.pdf")
        names = sorted(p.name for p in staging.iterdir())
    out = Path(out_dir).expanduser().absolute()
    return [out / name for name in names]


def print_pdf(html_path: Path, pdf_path: Path, timeout_s: float = 120) -> None:
    """Print an HTML file to PDF (A4, as its CSS says) with headless Chromium."""
    profile = tempfile.mkdtemp(prefix="minewatch-chromium-")
    try:
        subprocess.run(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={pdf_path}",
             html_path.absolute().as_uri()],
            check=True, capture_output=True, timeout=timeout_s,
        )  # fmt: skip
    finally:
        shutil.rmtree(profile, ignore_errors=True)
