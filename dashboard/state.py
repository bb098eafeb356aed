"""The analysis a dashboard shows, loaded once per process and read-only afterwards.

Everything the browser fetches more than once (map layers, overlay images) is computed
here on first use and cached, so callbacks stay cheap.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard import map_layers
from geo.analysis import Analysis
from layers.activity_png import render_activity_png

CONCESSION_PROPERTIES = ["concession_id", "name", "holder", "status", "licence_ha"]
FLAG_PROPERTIES = ["flag_id", "flag_type", "severity", "score", "period", "concession_id", "holder", "area_ha",
                   "active_ha", "carats"]  # fmt: skip
FOOTPRINT_PROPERTIES = ["period", "footprint_id", "area_ha", "outside_ha"]


@dataclass
class DashboardState:
    """The loaded analysis and what is derived from it for the dashboard."""

    analysis: Analysis
    basemap_url: str | None = None
    title: str = "minewatch"
    review_store: object | None = None  # layers.review_store.ReviewStore, when reviews are enabled

    def __post_init__(self):
        flags = self.analysis.flags
        bounds = flags.geometry.bounds
        self.flag_bounds = {
            fid: [[b.miny, b.minx], [b.maxy, b.maxx]]
            for fid, b in zip(flags["flag_id"], bounds.itertuples(), strict=True)
            if np.isfinite(b.minx)
        }
        concessions = self.analysis.concessions
        self.concession_bounds = {
            cid: [[b.miny, b.minx], [b.maxy, b.maxx]]
            for cid, b in zip(concessions["concession_id"], concessions.geometry.bounds.itertuples(), strict=True)
            if np.isfinite(b.minx)
        }
        west, south, east, north = concessions.total_bounds
        self.field_bounds = [[south, west], [north, east]]
        self.periods = self.analysis.periods
        self.holders = sorted(h for h in concessions["holder"].dropna().unique() if h)
        self._overlays: dict[str, tuple[bytes, list[list[float]]] | None] = {}
        self.activity_paths = {
            entry["layer"].removeprefix("activity "): entry["path"]
            for entry in self.analysis.provenance.get("inputs", [])
            if entry["layer"].startswith("activity ") and entry["layer"] != "activity catalog"
        }

    @functools.cached_property
    def concessions_geojson(self) -> str:
        return map_layers.layer_geojson(
            self.analysis.concessions, self._present(self.analysis.concessions, CONCESSION_PROPERTIES)
        )

    @functools.cached_property
    def flags_geojson(self) -> str:
        return map_layers.layer_geojson(self.analysis.flags, FLAG_PROPERTIES)

    @functools.cached_property
    def context_geojson(self) -> str | None:
        context = self.analysis.context
        return None if context is None else map_layers.layer_geojson(context, ["name", "kind"])

    @functools.cached_property
    def footprints_geojson(self) -> str:
        # Footprints are pixel staircases: half a 10 m pixel of simplification removes the
        # steps (a third of the bytes) and changes nothing visible at field scale.
        return map_layers.layer_geojson(self.analysis.footprints, FOOTPRINT_PROPERTIES, simplify_degrees=0.00005)

    def activity_overlay(self, period: str) -> tuple[bytes, list[list[float]]] | None:
        """The period's activity raster as PNG and bounds (rendered once), or None when not available."""
        if period not in self._overlays:
            path = self.activity_paths.get(period)
            available = path is not None and Path(path).is_file()
            self._overlays[period] = render_activity_png(path) if available else None
        return self._overlays[period]

    def overlay_bounds(self, period: str) -> list[list[float]] | None:
        overlay = self.activity_overlay(period)
        return overlay[1] if overlay else None

    def reviews(self) -> dict:
        """Current reviews by flag id (empty without a review store)."""
        return self.review_store.current() if self.review_store is not None else {}

    def flags_for(self, viewer) -> pd.DataFrame:
        """The flags with the review columns ``viewer`` may see."""
        from dashboard.reviews import with_reviews

        return with_reviews(self.analysis.flags, self.reviews(), viewer)

    def latest_period(self) -> str:
        return self.periods[-1] if self.periods else ""

    @staticmethod
    def _present(frame: pd.DataFrame, columns: list[str]) -> list[str]:
        return [c for c in columns if c in frame.columns]


_STATE: DashboardState | None = None


def set_state(state: DashboardState) -> None:
    """Install the process's state (create_app does this once)."""
    global _STATE
    _STATE = state


def state() -> DashboardState:
    """The process's state; raises if no app was created."""
    if _STATE is None:
        raise RuntimeError("dashboard state not initialised: call dashboard.create_app first")
    return _STATE
