"""The analysis a dashboard shows, loaded once per process and read-only afterwards.

Everything the browser fetches more than once (map layers, overlay images) is computed
here on first use and cached, so callbacks stay cheap.
"""

from __future__ import annotations

import functools
import gc
import json
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from dashboard import map_layers
from dashboard.sensitive import overlay_mask, public_flags, public_footprints, sensitive_areas
from geo.analysis import Analysis
from layers.activity_png import activity_png_bounds, render_activity_png

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
    sensitive_types: tuple[str, ...] = ()
    geomask_key: bytes = b""

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
        self._overlays: dict[tuple[str, bool], tuple[bytes, list[list[float]]] | None] = {}
        self._overlay_bounds: dict[str, list[list[float]] | None] = {}
        self._layer_data: dict[bool, dict[str, dict]] = {}
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
    def public_flags_geojson(self) -> str:
        return map_layers.layer_geojson(self.public_flags, FLAG_PROPERTIES)

    @functools.cached_property
    def public_flags(self) -> gpd.GeoDataFrame:
        """Flags as anonymous viewers get them (sensitive ones displaced)."""
        return public_flags(self.analysis.flags, self.sensitive_types, self.geomask_key)

    @functools.cached_property
    def public_footprints_geojson(self) -> str:
        areas = sensitive_areas(self.analysis.flags, self.sensitive_types)
        shown = public_footprints(self.analysis.footprints, areas)
        return map_layers.layer_geojson(shown, FOOTPRINT_PROPERTIES, simplify_degrees=0.00005)

    def flags_geojson_for(self, viewer) -> str:
        return self.flags_geojson if viewer.is_team or not self.sensitive_types else self.public_flags_geojson

    def footprints_geojson_for(self, viewer) -> str:
        return self.footprints_geojson if viewer.is_team or not self.sensitive_types else self.public_footprints_geojson

    def layer_data_for(self, viewer) -> dict[str, dict]:
        """The map layers as GeoJSON dicts for the page's layout, parsed once per kind of viewer.

        Every page load sends them; parsing the cached text again for each one cost a
        fifth of a ``/_dash-layout``. The dicts are shared between requests: only read.
        """
        full = viewer.is_team or not self.sensitive_types
        if full not in self._layer_data:
            self._layer_data[full] = {
                "concessions": json.loads(self.concessions_geojson),
                "footprints": json.loads(self.footprints_geojson_for(viewer)),
                "flags": json.loads(self.flags_geojson_for(viewer)),
            }
        return self._layer_data[full]

    @functools.cached_property
    def context_geojson(self) -> str | None:
        context = self.analysis.context
        return None if context is None else map_layers.layer_geojson(context, ["name", "kind"])

    @functools.cached_property
    def footprints_geojson(self) -> str:
        # Footprints are pixel staircases: half a 10 m pixel of simplification removes the
        # steps (a third of the bytes) and changes nothing visible at field scale.
        return map_layers.layer_geojson(self.analysis.footprints, FOOTPRINT_PROPERTIES, simplify_degrees=0.00005)

    def activity_overlay(self, period: str, public: bool = False) -> tuple[bytes, list[list[float]]] | None:
        """The period's activity raster as PNG and bounds (rendered once), or None when not available.

        ``public``: blanked around sensitive flags (see :mod:`dashboard.sensitive`).
        """
        masked = public and bool(self.sensitive_types)
        key = (period, masked)
        if key not in self._overlays:
            path = self.activity_paths.get(period)
            available = path is not None and Path(path).is_file()
            blank = overlay_mask(sensitive_areas(self.analysis.flags, self.sensitive_types)) if masked else ()
            self._overlays[key] = render_activity_png(path, blank) if available else None
        return self._overlays[key]

    def overlay_bounds(self, period: str) -> list[list[float]] | None:
        """Where the period's overlay goes on the map, without drawing it (the image route draws it)."""
        if period not in self._overlay_bounds:
            path = self.activity_paths.get(period)
            available = path is not None and Path(path).is_file()
            self._overlay_bounds[period] = activity_png_bounds(path) if available else None
        return self._overlay_bounds[period]

    def reviews(self) -> dict:
        """Current reviews by flag id (empty without a review store)."""
        return self.review_store.current() if self.review_store is not None else {}

    def flags_for(self, viewer) -> pd.DataFrame:
        """The flags ``viewer`` may see: review columns by role, sensitive places displaced for the public."""
        from dashboard.reviews import with_reviews

        flags = self.analysis.flags if viewer.is_team else self.public_flags
        return with_reviews(flags, self.reviews(), viewer)

    def flag_bounds_for(self, viewer, flag_id: str):
        """Where to zoom for a flag: its area, or around its displaced point for the public."""
        if viewer.is_team or not self.sensitive_types:
            return self.flag_bounds.get(flag_id)
        rows = self.public_flags[self.public_flags["flag_id"] == flag_id]
        if rows.empty or rows.geometry.iloc[0] is None:
            return None
        geom = rows.geometry.iloc[0]
        if geom.geom_type != "Point":
            return self.flag_bounds.get(flag_id)
        pad = 0.02  # about 2 km: the displaced point is no place to zoom into
        return [[geom.y - pad, geom.x - pad], [geom.y + pad, geom.x + pad]]

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
    freeze_heap()


def freeze_heap() -> None:
    """Take what is alive now (the analysis, the imported libraries) out of the cyclic garbage
    collector's rounds: it stays for the life of the process and is only read.

    Every full collection would otherwise walk those ~200,000 objects again; a page load
    parses a few MB of layer GeoJSON into new objects, which triggers many collections
    (measured on the demo: parsing a page's layers took 80 ms with the heap scanned, 20 ms
    frozen; a whole ``/_dash-layout`` 150 ms of CPU, 80 ms frozen).
    """
    gc.unfreeze()  # an earlier app's objects (tests build several) become collectable again
    gc.collect()
    gc.freeze()


def state() -> DashboardState:
    """The process's state; raises if no app was created."""
    if _STATE is None:
        raise RuntimeError("dashboard state not initialised: call dashboard.create_app first")
    return _STATE
