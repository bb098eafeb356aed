"""Serialisers of a visit plan: GPX 1.1, GeoJSON and CSV text (pure; files are written by layers)."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

from geo.export import csv_text
from geo.flags import FLAG_LABELS
from geo.visits import Plan, day_path, stop_table

GPX_NS = "http://www.topografix.com/GPX/1/1"


def gpx_text(plan: Plan, created: dt.datetime | None = None) -> str:
    """GPX 1.1: the base and every stop as waypoints (reasons in ``desc``), one route a day.

    Text goes through the XML writer, so a name with ``<`` or ``&`` stays text.
    """
    ET.register_namespace("", GPX_NS)
    root = ET.Element(f"{{{GPX_NS}}}gpx", {"version": "1.1", "creator": "minewatch"})
    metadata = ET.SubElement(root, f"{{{GPX_NS}}}metadata")
    ET.SubElement(metadata, f"{{{GPX_NS}}}name").text = f"minewatch visit plan from {plan.base_name}"
    stamp = (created or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ET.SubElement(metadata, f"{{{GPX_NS}}}time").text = stamp
    _waypoint(root, plan.base_lon, plan.base_lat, "BASE", f"Base: {plan.base_name}", "Lodging")
    for day_number, day in enumerate(plan.days, start=1):
        for order, stop in enumerate(day, start=1):
            _waypoint(
                root, stop.lon, stop.lat, f"D{day_number}-{order:02d} {stop.stop_id}", _describe(stop), "Flag, Red"
            )
    for day_number in range(1, len(plan.days) + 1):
        route = ET.SubElement(root, f"{{{GPX_NS}}}rte")
        ET.SubElement(route, f"{{{GPX_NS}}}name").text = f"Day {day_number}"
        for lon, lat, name in day_path(plan, day_number):
            point = ET.SubElement(route, f"{{{GPX_NS}}}rtept", {"lat": f"{lat:.7f}", "lon": f"{lon:.7f}"})
            ET.SubElement(point, f"{{{GPX_NS}}}name").text = name
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _waypoint(root: ET.Element, lon: float, lat: float, name: str, description: str, symbol: str) -> None:
    # GPX 1.1 schema order inside wpt: name, desc, sym.
    point = ET.SubElement(root, f"{{{GPX_NS}}}wpt", {"lat": f"{lat:.7f}", "lon": f"{lon:.7f}"})
    ET.SubElement(point, f"{{{GPX_NS}}}name").text = name
    ET.SubElement(point, f"{{{GPX_NS}}}desc").text = description
    ET.SubElement(point, f"{{{GPX_NS}}}sym").text = symbol


def _describe(stop) -> str:
    where = f"Concession {stop.concession_id}. " if stop.concession_id else ""
    kinds = "; ".join(sorted({FLAG_LABELS.get(t, t) for t in stop.flag_types}))
    reviewed = sorted({s for s in stop.review_statuses if s != "new"})
    review = f" Review: {', '.join(reviewed)}." if reviewed else ""
    return f"{where}{kinds}. " + " ".join(stop.reasons) + review


def plan_geojson_text(plan: Plan) -> str:
    """GeoJSON (RFC 7946): the base, the stops (with day and order) and one line a day."""
    features = [_point(plan.base_lon, plan.base_lat, {"kind": "base", "name": plan.base_name})]
    for row in stop_table(plan).to_dict("records"):
        features.append(_point(row["lon"], row["lat"], {"kind": "stop", **row}))
    for day_number in range(1, len(plan.days) + 1):
        coordinates = [(lon, lat) for lon, lat, _ in day_path(plan, day_number)]
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": "route", "day": day_number, "road_km": round(plan.day_km[day_number - 1], 1)},
                "geometry": {"type": "LineString", "coordinates": [[round(x, 7), round(y, 7)] for x, y in coordinates]},
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def _point(lon: float, lat: float, properties: dict) -> dict:
    return {
        "type": "Feature",
        "properties": properties,
        "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
    }


def plan_csv_text(plan: Plan) -> str:
    """The stops as spreadsheet-safe CSV, one row each, in visiting order."""
    return csv_text(stop_table(plan))
