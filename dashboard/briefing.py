"""The printable briefing of a visit plan: one HTML document, A4, offline.

A cover (itinerary map and table), then one page per stop: a map of the site and its
surroundings, its position in decimal degrees, DMS and UTM (WGS 84 and Arc 1950), the
reasons it was flagged, and the licence's active area and production over time. Maps
and charts are inline SVG drawn from the analysis itself, so the briefing needs no tile
server and prints the same anywhere. Every text from a user's file is escaped.
"""

from __future__ import annotations

import html
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from dashboard.map_layers import FLAG_COLOURS, STATUS_COLOURS
from geo.analysis import Analysis
from geo.flags import FLAG_LABELS
from geo.periods import parse_period
from geo.visits import Plan, Stop, coordinate_forms, day_path

SITE_RADIUS_M = 1500.0
MAX_REASONS = 4
DAY_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1d2733; font-size: 10pt; }
h1 { font-size: 18pt; margin: 0 0 4mm; } h2 { font-size: 14pt; margin: 0 0 3mm; } h3 { font-size: 11pt; margin: 4mm 0 2mm; }
.synthetic { border: 1px solid #e0b000; background: #fff3cd; padding: 2mm 3mm; font-weight: 600; margin-bottom: 3mm; }
table { border-collapse: collapse; width: 100%; font-size: 9.5pt; }
th, td { border-bottom: 1px solid #d8dee6; padding: 1mm 2mm; text-align: left; vertical-align: top; }
th { color: #5b6775; font-weight: 500; }
svg { display: block; margin: 2mm 0; }
.site { break-before: page; page-break-before: always; break-inside: avoid; }
.site h2 { margin-top: 0; } .site p { margin: 1mm 0; }
.coords td:first-child { width: 30%; color: #5b6775; }
.reasons li { margin: 1mm 0; }
.muted { color: #5b6775; font-size: 9pt; }
@media screen { body { max-width: 190mm; margin: 10mm auto; } .site { border-top: 2px solid #d8dee6; padding-top: 8mm; margin-top: 8mm; } }
"""


def briefing_html(plan: Plan, analysis: Analysis | None = None, title: str = "Site-visit briefing") -> str:
    """The whole briefing as an HTML document (A4 print styles included)."""
    synthetic = bool(analysis is not None and analysis.synthetic)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        '<section class="cover">',
        f"<h1>{_e(title)}</h1>",
    ]
    if synthetic:
        parts.append(
            '<p class="synthetic">SYNTHETIC DATA: the concessions, holders, production and activity behind this '
            "plan are made up. No site here is an allegation about any real company.</p>"
        )
    settings = plan.settings
    parts.append(
        f"<p>Base: <b>{_e(plan.base_name)}</b> ({plan.base_lat:.5f}, {plan.base_lon:.5f}). "
        f"{len(plan.stops)} stops over {len(plan.days)} day(s); road distance = great-circle x "
        f"{settings.detour_factor:g}, {settings.speed_kmh:g} km/h, {settings.visit_hours:g} h per stop"
        f"{', back to base each night' if settings.return_to_base else ''}.</p>"
    )
    parts.append(itinerary_svg(plan))
    parts.append(itinerary_table(plan))
    if plan.unplanned:
        names = ", ".join(_e(s.stop_id) for s in plan.unplanned)
        parts.append(f"<p class='muted'>Not planned (over the days or the daily budget): {names}</p>")
    parts.append("</section>")
    for day_number, day in enumerate(plan.days, start=1):
        for order, stop in enumerate(day, start=1):
            parts.append(site_page(stop, day_number, order, analysis))
    parts.append("</body></html>")
    return "\n".join(parts)


def itinerary_table(plan: Plan) -> str:
    rows = []
    for day_number, day in enumerate(plan.days, start=1):
        for order, stop in enumerate(day, start=1):
            kinds = "; ".join(sorted({FLAG_LABELS.get(t, t) for t in stop.flag_types}))
            rows.append(
                f"<tr><td>{day_number}</td><td>{order}</td><td>{_e(stop.stop_id)}</td>"
                f"<td>{_e(stop.concession_id or '-')}</td><td>{_e(stop.holder or '-')}</td>"
                f"<td>{_e(kinds)}</td><td>{stop.lat:.5f}, {stop.lon:.5f}</td></tr>"
            )
        rows.append(
            f"<tr><td colspan='7' class='muted'>Day {day_number}: {plan.day_km[day_number - 1]:.0f} km by road, "
            f"about {plan.day_hours[day_number - 1]:.1f} h with visits</td></tr>"
        )
    head = (
        "<tr><th>Day</th><th>#</th><th>Stop</th><th>Concession</th><th>Holder</th><th>Flags</th><th>Lat, lon</th></tr>"
    )
    return f"<table class='itinerary'><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def itinerary_svg(plan: Plan, width: int = 680, height: int = 380) -> str:
    """The base, the stops (numbered by day) and each day's route, in a local projection."""
    points = [(plan.base_lon, plan.base_lat), *[(s.lon, s.lat) for s in plan.stops]]
    project = _local_projection(np.mean([p[0] for p in points]), np.mean([p[1] for p in points]))
    xy = {
        name: project(lon, lat)
        for name, (lon, lat) in zip(["BASE", *[s.stop_id for s in plan.stops]], points, strict=True)
    }
    frame = _Frame(np.array(list(xy.values())), width, height, margin=30)
    svg = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="itinerary map">',
           f'<rect width="{width}" height="{height}" fill="#f6f8fa"/>']  # fmt: skip
    for day_number in range(1, len(plan.days) + 1):
        colour = DAY_COLOURS[(day_number - 1) % len(DAY_COLOURS)]
        path = " ".join(
            f"{frame.x(xy[name][0]):.1f},{frame.y(xy[name][1]):.1f}" for _, _, name in day_path(plan, day_number)
        )
        svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" stroke-dasharray="6 3"/>')
    bx, by = frame.x(xy["BASE"][0]), frame.y(xy["BASE"][1])
    svg.append(f'<rect x="{bx - 6:.1f}" y="{by - 6:.1f}" width="12" height="12" fill="#1d2733"/>')
    svg.append(f'<text x="{bx + 9:.1f}" y="{by + 4:.1f}" font-size="11">{_e(plan.base_name)}</text>')
    for day_number, day in enumerate(plan.days, start=1):
        colour = DAY_COLOURS[(day_number - 1) % len(DAY_COLOURS)]
        for order, stop in enumerate(day, start=1):
            x, y = frame.x(xy[stop.stop_id][0]), frame.y(xy[stop.stop_id][1])
            svg.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="8" fill="white" stroke="{colour}" stroke-width="2"/>')
            svg.append(f'<text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="9" text-anchor="middle">{order}</text>')
    svg.append(_scale_bar(frame, width, height))
    svg.append("</svg>")
    return "".join(svg)


def site_page(stop: Stop, day_number: int, order: int, analysis: Analysis | None) -> str:
    """One A4 page for a stop."""
    title = f"Day {day_number}, stop {order}: {stop.stop_id}"
    if stop.concession_id:
        title += f" · concession {stop.concession_id}"
    forms = coordinate_forms(stop.lon, stop.lat)
    labels = {"decimal": "Decimal degrees (lat, lon)", "dms": "Degrees, minutes, seconds",
              "utm_wgs84": "UTM, WGS 84", "utm_arc1950": "UTM, Arc 1950 (local cadastre)"}  # fmt: skip
    coords = "".join(f"<tr><td>{labels[k]}</td><td>{_e(v)}</td></tr>" for k, v in forms.items())
    statuses = stop.review_statuses or ["new"] * len(stop.flag_ids)
    listed = list(zip(stop.flag_types, stop.reasons, stop.flag_ids, statuses, strict=True))
    reasons = "".join(
        f"<li><b>{_e(FLAG_LABELS.get(t, t))}</b>: {_e(r)} <span class='muted'>({_e(f)}; review: {_e(s)})</span></li>"
        for t, r, f, s in listed[:MAX_REASONS]
    )
    if len(listed) > MAX_REASONS:  # keep one stop on one A4 page; the rest are named by id
        rest = ", ".join(_e(f) for _, _, f, _ in listed[MAX_REASONS:])
        reasons += f"<li class='muted'>and {len(listed) - MAX_REASONS} more flags here: {rest}</li>"
    parts = [f"<section class='site' id='{_e(stop.stop_id)}'>", f"<h2>{_e(title)}</h2>"]
    if stop.holder:
        parts.append(f"<p>Holder on record: {_e(stop.holder)}</p>")
    parts.append(site_svg(stop, analysis))
    parts.append(f"<h3>Position</h3><table class='coords'>{coords}</table>")
    parts.append(f"<h3>Why this site</h3><ul class='reasons'>{reasons}</ul>")
    if analysis is not None and stop.concession_id:
        parts.append(f"<h3>Active area and reported production, {_e(stop.concession_id)}</h3>")
        parts.append(history_svg(analysis.stats, stop.concession_id))
    parts.append("</section>")
    return "".join(parts)


def site_svg(stop: Stop, analysis: Analysis | None, width: int = 680, height: int = 330) -> str:
    """The site and about 1.5 km around it: licences, flagged areas, footprints, the stop."""
    frame = _Frame(
        np.array([[-SITE_RADIUS_M, -SITE_RADIUS_M * 0.6], [SITE_RADIUS_M, SITE_RADIUS_M * 0.6]]), width, height, 10
    )
    svg = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="site map">',
           f'<rect width="{width}" height="{height}" fill="#eef1f4"/>']  # fmt: skip
    if analysis is not None:
        area = shapely.Point(stop.lon, stop.lat).buffer(0.03)
        local = CRS.from_proj4(f"+proj=aeqd +lat_0={stop.lat} +lon_0={stop.lon} +datum=WGS84 +units=m")
        layers = [
            (analysis.concessions, lambda row: STATUS_COLOURS.get(row.get("status"), "#ccc"), "#6b7b8c", 0.5, 1.0),
            (_latest_footprints(analysis.footprints, stop, analysis), lambda row: "#7f2704", "#7f2704", 0.25, 0.8),
            (analysis.flags[analysis.flags["flag_id"].isin(stop.flag_ids)],
             lambda row: FLAG_COLOURS.get(row["flag_type"], "#000"), None, 0.35, 2.0),
        ]  # fmt: skip
        for frame_gdf, fill, stroke, opacity, stroke_width in layers:
            near = frame_gdf[frame_gdf.geometry.notna() & frame_gdf.intersects(area)]
            if near.empty:
                continue
            projected = near.to_crs(local)
            for (_, row), geom in zip(near.iterrows(), projected.geometry, strict=True):
                colour = fill(row)
                svg.append(_polygon_path(geom, frame, colour, stroke or colour, opacity, stroke_width))
    cx, cy = frame.x(0), frame.y(0)
    svg.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="white" stroke="#000" stroke-width="2.5"/>')
    svg.append(f'<text x="{cx + 10:.1f}" y="{cy - 8:.1f}" font-size="12" font-weight="600">{_e(stop.stop_id)}</text>')
    svg.append(f'<text x="{width - 24}" y="24" font-size="13" font-weight="700">N</text>')
    svg.append(f'<path d="M{width - 20},30 l-6,14 l6,-4 l6,4 z" fill="#1d2733"/>')
    svg.append(_scale_bar(frame, width, height))
    svg.append("</svg>")
    return "".join(svg)


def _latest_footprints(footprints: gpd.GeoDataFrame, stop: Stop, analysis: Analysis) -> gpd.GeoDataFrame:
    periods = analysis.flags.loc[analysis.flags["flag_id"].isin(stop.flag_ids), "period"].astype(str)
    if periods.empty or footprints.empty:
        return footprints.iloc[0:0]
    latest = max(periods, key=lambda p: parse_period(p).start)
    return footprints[footprints["period"].astype(str) == latest]


def history_svg(stats: pd.DataFrame, concession_id: str, width: int = 680, height: int = 160) -> str:
    """Bars of active hectares and reported carats per period (each on its own scale)."""
    rows = stats[stats["concession_id"] == concession_id].copy()
    if rows.empty:
        return "<p class='muted'>No statistics for this concession.</p>"
    rows = rows.sort_values("period", key=lambda s: s.map(lambda p: parse_period(str(p)).start))
    n = len(rows)
    slot = (width - 80) / n
    top_active = max(float(rows["active_ha"].max()), 1e-9)
    top_carats = max(float(rows["carats"].fillna(0).max()), 1e-9)
    svg = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="history chart">'
    ]
    base = height - 30
    for k, row in enumerate(rows.itertuples(index=False)):
        x = 60 + k * slot
        active_h = (base - 20) * float(row.active_ha) / top_active
        svg.append(
            f'<rect x="{x:.1f}" y="{base - active_h:.1f}" width="{slot * 0.38:.1f}" height="{active_h:.1f}" fill="#D55E00"/>'
        )
        if pd.notna(row.carats):
            carats_h = (base - 20) * float(row.carats) / top_carats
            svg.append(
                f'<rect x="{x + slot * 0.4:.1f}" y="{base - carats_h:.1f}" width="{slot * 0.38:.1f}" height="{carats_h:.1f}" fill="#0072B2"/>'
            )
        else:
            svg.append(f'<text x="{x + slot * 0.45:.1f}" y="{base - 3}" font-size="8" fill="#5b6775">none</text>')
        svg.append(
            f'<text x="{x + slot * 0.4:.1f}" y="{base + 14}" font-size="9" text-anchor="middle">{_e(str(row.period))}</text>'
        )
    svg.append(f'<line x1="55" y1="{base}" x2="{width - 10}" y2="{base}" stroke="#888"/>')
    svg.append(f'<text x="0" y="12" font-size="9" fill="#D55E00">active ha (max {top_active:,.1f})</text>')
    svg.append(
        f'<text x="200" y="12" font-size="9" fill="#0072B2">carats reported (max {top_carats:,.0f}; "none" = no report)</text>'
    )
    svg.append("</svg>")
    return "".join(svg)


class _Frame:
    """Maps local metres to SVG pixels, keeping the aspect ratio (north up)."""

    def __init__(self, xy: np.ndarray, width: int, height: int, margin: int):
        (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
        span_x, span_y = max(x1 - x0, 200.0), max(y1 - y0, 200.0)
        self.scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
        self.cx, self.cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.width, self.height = width, height

    def x(self, value: float) -> float:
        return self.width / 2 + (value - self.cx) * self.scale

    def y(self, value: float) -> float:
        return self.height / 2 - (value - self.cy) * self.scale


def _local_projection(lon: float, lat: float):
    from pyproj import Transformer

    transformer = Transformer.from_crs(
        4326, CRS.from_proj4(f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m"), always_xy=True
    )
    return lambda x, y: transformer.transform(x, y)


def _polygon_path(geom, frame: _Frame, fill: str, stroke: str, opacity: float, stroke_width: float) -> str:
    commands = []
    for polygon in shapely.get_parts(geom):
        if polygon.geom_type != "Polygon":
            continue
        for ring in [polygon.exterior, *polygon.interiors]:
            coords = np.asarray(ring.coords)
            commands.append("M" + " L".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in coords) + " Z")
    if not commands:
        return ""
    return (f'<path d="{" ".join(commands)}" fill="{fill}" fill-opacity="{opacity}" fill-rule="evenodd" '
            f'stroke="{stroke}" stroke-width="{stroke_width}"/>')  # fmt: skip


def _scale_bar(frame: _Frame, width: int, height: int) -> str:
    target_m = (width / 4) / frame.scale
    length_m = 10 ** math.floor(math.log10(target_m))
    for factor in (5, 2, 1):
        if factor * length_m <= target_m:
            length_m *= factor
            break
    pixels = length_m * frame.scale
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    y = height - 14
    return (f'<line x1="14" y1="{y}" x2="{14 + pixels:.1f}" y2="{y}" stroke="#1d2733" stroke-width="3"/>'
            f'<text x="14" y="{y - 6}" font-size="10">{label}</text>')  # fmt: skip


def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)
