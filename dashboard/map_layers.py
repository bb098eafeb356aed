"""Pure builders: analysis tables to map layers (EPSG:4326 GeoJSON) and their styles.

Geometry goes to the browser once, from :func:`layer_geojson` inside the page's layout
(and through the ``/map/*.geojson`` routes for other clients); what changes with the
filters is only the small *hideout* dict built here (which flags are visible, each concession's worst flag, the period),
which the style and filter functions in ``assets/minewatch.js`` read. So a filter
change never re-sends a polygon.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.flags import FLAG_LABELS, FLAG_TYPES

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
FLAG_COLOURS = {
    "unlicensed_activity": "#D55E00",
    "activity_in_inactive_licence": "#CC79A7",
    "activity_without_production": "#E69F00",
    "production_without_activity": "#0072B2",
    "production_activity_mismatch": "#56B4E9",
    "licence_overlap": "#009E73",
    "national_total_mismatch": "#000000",
}
STATUS_COLOURS = {
    "active": "#9ecae1",
    "suspended": "#fdd0a2",
    "expired": "#d9d9d9",
    "revoked": "#fcbba1",
    "application": "#dadaeb",
}
SEVERITY_RANK = {"high": 3, "medium": 2, "low": 1}
SIMPLIFY_DEGREES = 0.00002  # about 2 m: invisible at field scale
COORDINATE_DECIMALS = 6  # about 10 cm


def layer_geojson(frame: gpd.GeoDataFrame, properties: list[str], *, simplify_degrees: float = SIMPLIFY_DEGREES) -> str:
    """Compact GeoJSON text of ``frame`` (EPSG:4326) with only ``properties``.

    Geometries are simplified by ``simplify_degrees`` (about 2 m by default) and rounded
    to 6 decimals; features without geometry are left out (national flags have none).
    """
    frame = frame.to_crs(4326) if frame.crs is not None and frame.crs.to_epsg() != 4326 else frame
    present = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    geoms = present.geometry.to_numpy()
    if simplify_degrees > 0:
        geoms = shapely.simplify(geoms, simplify_degrees, preserve_topology=True)
    geoms = shapely.set_precision(geoms, 10**-COORDINATE_DECIMALS, mode="pointwise")
    features = []
    records = present[properties].astype(object).where(present[properties].notna(), None).to_dict("records")
    for record, geom in zip(records, geoms, strict=True):
        features.append(
            {"type": "Feature", "properties": _plain(record), "geometry": json.loads(shapely.to_geojson(geom))}
        )
    return json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":"))


def _plain(record: dict) -> dict:
    out = {}
    for key, value in record.items():
        if isinstance(value, (np.floating, float)):
            value = None if np.isnan(value) else round(float(value), 4)
        elif isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, pd.Timestamp):
            value = value.strftime("%Y-%m-%d")
        out[key] = value
    return out


def flag_hideout(flags: pd.DataFrame, visible: pd.Series, selected: str) -> dict:
    """What the flag layer shows: the visible flag ids and the selected flag."""
    return {
        "visible": {flag_id: True for flag_id in flags.loc[visible, "flag_id"]},
        "selected": selected or "",
        "colours": FLAG_COLOURS,
    }


def concession_hideout(
    flags: pd.DataFrame, visible: pd.Series, shown_concessions: list[str] | None, selected: str
) -> dict:
    """Concession styling: each one's worst visible flag (outline) and the selection.

    "Worst" is the highest severity, then the highest score. Concessions the holder
    filter or search leave out are drawn faint; ``shown_concessions=None`` shows all.
    """
    worst: dict[str, str] = {}
    candidates = flags[visible & flags["concession_id"].notna()].copy()
    if len(candidates):
        candidates["rank"] = candidates["severity"].map(SEVERITY_RANK)
        candidates = candidates.sort_values(["rank", "score"], ascending=False)
        for column in ("concession_id", "other_concession_id"):
            for concession_id, flag_type in zip(candidates[column], candidates["flag_type"], strict=True):
                if isinstance(concession_id, str) and concession_id not in worst:
                    worst[concession_id] = flag_type
    return {
        "worst": worst,
        "shown": None if shown_concessions is None else {cid: True for cid in shown_concessions},
        "selected": selected or "",
        "status_colours": STATUS_COLOURS,
        "flag_colours": FLAG_COLOURS,
    }


def footprint_hideout(period: str) -> dict:
    """Footprints are drawn for one period at a time (the latest when all are shown)."""
    return {"period": period}


def legend_entries() -> list[tuple[str, str, str]]:
    """(flag_type, words, colour) for the legend, in the vocabulary's order."""
    return [(t, FLAG_LABELS[t], FLAG_COLOURS[t]) for t in FLAG_TYPES]
