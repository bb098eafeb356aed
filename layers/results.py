"""An analysis written to an output folder, atomically, and read back.

The folder holds the design's outputs (``flags.geojson``, ``flags.csv``,
``concession_stats.csv``, ``footprints.geojson``, ``provenance.json``) plus what the
dashboard needs to reopen it without recomputing (``concessions.geojson``,
``national.csv``). Everything is written into a temporary sibling folder first and
swapped in by renames, so a failed or killed run leaves the previous output as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import geopandas as gpd
import pandas as pd
import pyogrio

from geo.analysis import Analysis
from geo.errors import InputError
from geo.export import FORMULA_PREFIXES, csv_text, write_geojson
from layers.atomic import atomic_folder
from layers.paths import check_content

OUTPUT_FILES = (
    "flags.geojson",
    "flags.csv",
    "concession_stats.csv",
    "footprints.geojson",
    "provenance.json",
    "concessions.geojson",
    "national.csv",
)
MARKER = "provenance.json"
CONTEXT_FILE = "context.geojson"  # optional: places and boundaries for the map


def analysis_writers(analysis: Analysis) -> dict[str, Callable[[TextIO], None]]:
    """For each output file name, a function that writes its text to a handle."""

    def text(value: str) -> Callable[[TextIO], None]:
        return lambda handle: handle.write(value)

    writers = {
        "flags.geojson": lambda handle: write_geojson(analysis.flags, handle),
        "flags.csv": text(csv_text(analysis.flags)),
        "concession_stats.csv": text(csv_text(analysis.stats)),
        "footprints.geojson": lambda handle: write_geojson(analysis.footprints, handle),
        "provenance.json": text(json.dumps(analysis.provenance, indent=2, ensure_ascii=False, default=str) + "\n"),
        "concessions.geojson": lambda handle: write_geojson(analysis.concessions, handle),
        "national.csv": text(csv_text(analysis.national)),
    }
    if analysis.context is not None:
        writers[CONTEXT_FILE] = lambda handle: write_geojson(analysis.context, handle)
    return writers


def write_analysis(analysis: Analysis, out_dir: str | Path) -> Path:
    """Write ``analysis`` into ``out_dir``, all files or none (see :mod:`layers.atomic`)."""
    with atomic_folder(out_dir, MARKER) as staging:
        for name, write in analysis_writers(analysis).items():
            with open(staging / name, "w", encoding="utf-8", newline="") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
    return Path(out_dir).expanduser().absolute()


def read_analysis(results_dir: str | Path) -> Analysis:
    """Read an output folder written by :func:`write_analysis` back into an Analysis."""
    folder = Path(results_dir).expanduser()
    missing = [name for name in OUTPUT_FILES if not (folder / name).is_file()]
    if missing:
        raise InputError(f"results: {folder}: not a complete minewatch output (missing {', '.join(missing)})")
    provenance = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
    concessions = _read_geojson(folder / "concessions.geojson")
    for column in ("granted", "expires", "status_date"):
        if column in concessions:
            concessions[column] = pd.to_datetime(concessions[column])
    stats = _read_csv(folder / "concession_stats.csv", text_columns=("concession_id", "period", "holder"))
    stats["in_force"] = stats["in_force"].astype(str).str.lower().eq("true")
    footprints = _read_geojson(folder / "footprints.geojson")
    flags = _read_geojson(folder / "flags.geojson")
    national = _read_csv(folder / "national.csv", text_columns=("country", "period"))
    context = _read_geojson(folder / CONTEXT_FILE) if (folder / CONTEXT_FILE).is_file() else None
    return Analysis(concessions, stats, footprints, flags, national, provenance, context=context)


def _read_geojson(path: Path) -> gpd.GeoDataFrame:
    # A results folder may come from someone else: the same content checks as any input.
    check_content(path, "results")
    frame = pyogrio.read_dataframe(path)
    for column in ("period", "concession_id", "other_concession_id", "footprint_id"):
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _read_csv(path: Path, text_columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={c: str for c in text_columns}, keep_default_na=True)
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = frame[column].map(_unescape)
    return frame


def _unescape(value):
    if isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value
