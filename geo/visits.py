"""Site-visit planning: which flagged sites to visit, in what order, on which day.

Distances are great-circle (WGS 84 ellipsoid) times a detour factor for roads; driving
time is distance over an average speed, plus time spent at each site. The order is
exact (Held-Karp dynamic programming) for up to :data:`EXACT_MAX_SITES` sites and
nearest neighbour improved by 2-opt above that. Days are filled in that order until the
daily budget (kilometres or hours, including the drive back to base when the team
sleeps there) would be exceeded.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Geod, Transformer

EXACT_MAX_SITES = 10
MERGE_WITHIN_M = 250.0  # flags closer than this are one stop
GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class TripSettings:
    """How the team travels.

    Attributes
    ----------
    detour_factor:
        Road distance over great-circle distance (1.4 is typical of rural roads).
    speed_kmh:
        Average driving speed.
    visit_hours:
        Time spent at each stop.
    days:
        Days available (stops that do not fit are listed as not planned).
    km_per_day, hours_per_day:
        Daily budget; the first one set applies (hours by default).
    return_to_base:
        Drive back to the base every night (else sleep near the day's last stop).
    """

    detour_factor: float = 1.4
    speed_kmh: float = 40.0
    visit_hours: float = 1.0
    days: int = 2
    km_per_day: float | None = None
    hours_per_day: float | None = 10.0
    return_to_base: bool = True


@dataclass
class Stop:
    """One place to visit: one or more flags at (almost) the same place."""

    stop_id: str
    lon: float
    lat: float
    flag_ids: list[str]
    flag_types: list[str]
    reasons: list[str]
    concession_id: str | None
    holder: str | None
    score: float
    review_statuses: list[str] = field(default_factory=list)  # per flag, when the flags carry them


@dataclass
class Plan:
    """An itinerary: stops per day in visiting order, and what did not fit."""

    base_name: str
    base_lon: float
    base_lat: float
    days: list[list[Stop]]
    unplanned: list[Stop]
    settings: TripSettings
    day_km: list[float] = field(default_factory=list)
    day_hours: list[float] = field(default_factory=list)

    @property
    def stops(self) -> list[Stop]:
        """Every planned stop, in visiting order."""
        return [stop for day in self.days for stop in day]


def select_flags(
    flags: gpd.GeoDataFrame,
    *,
    flag_ids: list[str] | None = None,
    min_score: float = 0.0,
    flag_types: list[str] | None = None,
    period: str | None = None,
    max_sites: int | None = None,
) -> gpd.GeoDataFrame:
    """The flags to visit: by id, or the highest-scoring ones passing the filters.

    Flags without geometry (national totals) cannot be visited and are left out.
    """
    chosen = flags[~(flags.geometry.isna() | flags.geometry.is_empty)]
    if flag_ids:
        chosen = chosen[chosen["flag_id"].isin(flag_ids)]
    if flag_types:
        chosen = chosen[chosen["flag_type"].isin(flag_types)]
    if period:
        chosen = chosen[chosen["period"].astype(str) == str(period)]
    chosen = chosen[chosen["score"] >= min_score].sort_values(["score", "flag_id"], ascending=[False, True])
    return chosen.head(max_sites) if max_sites else chosen


def stops_from_flags(flags: gpd.GeoDataFrame) -> list[Stop]:
    """One stop per place: flags within :data:`MERGE_WITHIN_M` of a stronger one join it.

    The stop's position is a point on the flag's own geometry (inside the digging, not
    at a bounding-box centre that may fall outside it), in WGS 84 lon/lat. A
    ``review_status`` column, when present, travels with each flag into the plan.
    """
    if flags.empty:
        return []
    flags = flags.to_crs(4326).sort_values(["score", "flag_id"], ascending=[False, True])
    points = shapely.point_on_surface(flags.geometry.to_numpy())
    stops: list[Stop] = []
    for (_, flag), point in zip(flags.iterrows(), points, strict=True):
        near = next((s for s in stops if _metres(s.lon, s.lat, point.x, point.y) <= MERGE_WITHIN_M), None)
        status = str(flag["review_status"]) if "review_status" in flag.index else "new"
        if near is not None:
            near.flag_ids.append(flag["flag_id"])
            near.flag_types.append(flag["flag_type"])
            near.reasons.append(flag["reason"])
            near.review_statuses.append(status)
            continue
        stops.append(
            Stop(
                stop_id=f"S{len(stops) + 1:02d}",
                lon=float(point.x),
                lat=float(point.y),
                flag_ids=[flag["flag_id"]],
                flag_types=[flag["flag_type"]],
                reasons=[flag["reason"]],
                concession_id=flag.get("concession_id") if isinstance(flag.get("concession_id"), str) else None,
                holder=flag.get("holder") if isinstance(flag.get("holder"), str) else None,
                score=float(flag["score"]),
                review_statuses=[status],
            )
        )
    return stops


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def road_km_matrix(lons: np.ndarray, lats: np.ndarray, detour_factor: float) -> np.ndarray:
    """Square matrix of great-circle distances (km) times the detour factor."""
    n = len(lons)
    i, j = np.triu_indices(n, k=1)
    matrix = np.zeros((n, n))
    if len(i):
        _, _, metres = GEOD.inv(lons[i], lats[i], lons[j], lats[j])
        matrix[i, j] = matrix[j, i] = np.asarray(metres) / 1000.0 * detour_factor
    return matrix


def best_order(cost: np.ndarray) -> list[int]:
    """Visiting order of nodes 1..n-1 starting and ending at node 0 (the base).

    Exact (Held-Karp) up to :data:`EXACT_MAX_SITES` sites, else nearest neighbour
    improved by 2-opt. Returns the site indices (1-based into ``cost``) in order.
    """
    n_sites = len(cost) - 1
    if n_sites <= 0:
        return []
    if n_sites <= EXACT_MAX_SITES:
        return _held_karp(cost)
    return _two_opt(cost, _nearest_neighbour(cost))


def tour_length(cost: np.ndarray, order: list[int]) -> float:
    """Length of base -> order -> base."""
    path = [0, *order, 0]
    return float(sum(cost[a, b] for a, b in itertools.pairwise(path)))


def _held_karp(cost: np.ndarray) -> list[int]:
    n = len(cost) - 1
    full = (1 << n) - 1
    best = np.full((1 << n, n), np.inf)
    parent = np.full((1 << n, n), -1, dtype=int)
    for k in range(n):
        best[1 << k, k] = cost[0, k + 1]
    for subset in range(1, full + 1):
        for last in range(n):
            if not subset & (1 << last) or not np.isfinite(best[subset, last]):
                continue
            for nxt in range(n):
                if subset & (1 << nxt):
                    continue
                candidate = best[subset, last] + cost[last + 1, nxt + 1]
                grown = subset | (1 << nxt)
                if candidate < best[grown, nxt]:
                    best[grown, nxt] = candidate
                    parent[grown, nxt] = last
    last = int(np.argmin(best[full] + cost[1:, 0]))
    order, subset = [], full
    while last != -1:
        order.append(last + 1)
        previous = parent[subset, last]
        subset &= ~(1 << last)
        last = previous
    return order[::-1]


def _nearest_neighbour(cost: np.ndarray) -> list[int]:
    unvisited = set(range(1, len(cost)))
    order, here = [], 0
    while unvisited:
        here = min(unvisited, key=lambda k: (cost[here, k], k))
        order.append(here)
        unvisited.remove(here)
    return order


def _two_opt(cost: np.ndarray, order: list[int]) -> list[int]:
    path = [0, *order, 0]
    improved = True
    while improved:
        improved = False
        for i in range(1, len(path) - 2):
            for j in range(i + 1, len(path) - 1):
                a, b, c, d = path[i - 1], path[i], path[j], path[j + 1]
                if cost[a, c] + cost[b, d] < cost[a, b] + cost[c, d] - 1e-9:
                    path[i : j + 1] = path[i : j + 1][::-1]
                    improved = True
    return path[1:-1]


def plan_visits(stops: list[Stop], base_name: str, base_lon: float, base_lat: float, settings: TripSettings) -> Plan:
    """Order ``stops`` from the base and split them into days within the daily budget.

    A stop that alone exceeds a day's budget (there and back) is not planned; stops
    beyond the last day are listed as unplanned too.
    """
    lons = np.array([base_lon, *[s.lon for s in stops]])
    lats = np.array([base_lat, *[s.lat for s in stops]])
    km = road_km_matrix(lons, lats, settings.detour_factor)
    order = best_order(km)
    days: list[list[Stop]] = []
    day_km: list[float] = []
    day_hours: list[float] = []
    unplanned: list[Stop] = []
    start = 0  # where the day starts: the base, or last night's stop
    current: list[int] = []
    for node in order:
        trial = [*current, node]
        if _within_budget(km, start, trial, settings):
            current = trial
            continue
        if current:
            days.append([stops[k - 1] for k in current])
            day_km.append(_day_km(km, start, current, settings))
            day_hours.append(_day_hours(km, start, current, settings))
            start = 0 if settings.return_to_base else current[-1]
        current = [node] if _within_budget(km, start, [node], settings) else []
        if not current:
            unplanned.append(stops[node - 1])
    if current:
        days.append([stops[k - 1] for k in current])
        day_km.append(_day_km(km, start, current, settings))
        day_hours.append(_day_hours(km, start, current, settings))
    while len(days) > settings.days:
        unplanned = days.pop() + unplanned
        day_km.pop()
        day_hours.pop()
    return Plan(base_name, base_lon, base_lat, days, unplanned, settings, day_km, day_hours)


def _day_km(km: np.ndarray, start: int, nodes: list[int], settings: TripSettings) -> float:
    path = [start, *nodes, *([0] if settings.return_to_base else [])]
    return float(sum(km[a, b] for a, b in itertools.pairwise(path)))


def _day_hours(km: np.ndarray, start: int, nodes: list[int], settings: TripSettings) -> float:
    return _day_km(km, start, nodes, settings) / settings.speed_kmh + settings.visit_hours * len(nodes)


def _within_budget(km: np.ndarray, start: int, nodes: list[int], settings: TripSettings) -> bool:
    if settings.km_per_day is not None:
        return _day_km(km, start, nodes, settings) <= settings.km_per_day
    if settings.hours_per_day is not None:
        return _day_hours(km, start, nodes, settings) <= settings.hours_per_day
    return True


def day_path(plan: Plan, day_number: int) -> list[tuple[float, float, str]]:
    """The points driven through on a day (1-based): where it starts, the stops, where it ends."""
    day = plan.days[day_number - 1]
    if day_number == 1 or plan.settings.return_to_base:
        path = [(plan.base_lon, plan.base_lat, "BASE")]
    else:
        last = plan.days[day_number - 2][-1]
        path = [(last.lon, last.lat, last.stop_id)]
    path += [(s.lon, s.lat, s.stop_id) for s in day]
    if plan.settings.return_to_base:
        path.append((plan.base_lon, plan.base_lat, "BASE"))
    return path


def stop_table(plan: Plan) -> pd.DataFrame:
    """One row per planned stop: day, order, position and what to look at."""
    rows = []
    for day_number, day in enumerate(plan.days, start=1):
        for order, stop in enumerate(day, start=1):
            rows.append(
                {
                    "day": day_number,
                    "order": order,
                    "stop_id": stop.stop_id,
                    "lon": round(stop.lon, 6),
                    "lat": round(stop.lat, 6),
                    "concession_id": stop.concession_id,
                    "holder": stop.holder,
                    "score": round(stop.score, 4),
                    "flag_ids": " ".join(stop.flag_ids),
                    "flag_types": " ".join(sorted(set(stop.flag_types))),
                    "reasons": " | ".join(stop.reasons),
                    "review_statuses": " ".join(s.replace(" ", "_") for s in stop.review_statuses),
                }
            )
    return pd.DataFrame(rows)


# --- coordinates for the field --------------------------------------------------------


def dms(value: float, positive: str, negative: str) -> str:
    """Degrees, minutes and seconds with a hemisphere letter: 19°35'24.0"S."""
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    degrees = int(value)
    minutes_float = (value - degrees) * 60
    minutes = int(minutes_float)
    seconds = (minutes_float - minutes) * 60
    if round(seconds, 1) >= 60.0:
        seconds, minutes = 0.0, minutes + 1
    if minutes >= 60:
        minutes, degrees = 0, degrees + 1
    return f"{degrees}°{minutes:02d}'{seconds:04.1f}\"{hemisphere}"


def utm_zone(lon: float, lat: float) -> tuple[int, bool]:
    """UTM zone number and whether it is the southern hemisphere's."""
    return int((lon + 180) // 6) % 60 + 1, lat < 0


def coordinate_forms(lon: float, lat: float) -> dict[str, str]:
    """A position as decimal degrees, DMS, WGS 84 / UTM and (in zones 33-36 S) Arc 1950 / UTM.

    Arc 1950 is the datum of several southern African cadastres (Zimbabwe's: EPSG:20935,
    EPSG:20936); its coordinates differ from WGS 84's by about 300 m at Marange, so both
    are given for local surveyors.
    """
    zone, south = utm_zone(lon, lat)
    forms = {
        "decimal": f"{lat:.6f}, {lon:.6f}",
        "dms": f"{dms(lat, 'N', 'S')} {dms(lon, 'E', 'W')}",
    }
    wgs84 = CRS.from_epsg((32700 if south else 32600) + zone)
    x, y = Transformer.from_crs(4326, wgs84, always_xy=True).transform(lon, lat)
    forms["utm_wgs84"] = f"{zone}{'S' if south else 'N'} {x:.0f} E {y:.0f} N (WGS 84, EPSG:{wgs84.to_epsg()})"
    if south and 33 <= zone <= 36:
        arc = CRS.from_epsg(20900 + zone)
        ax, ay = Transformer.from_crs(4326, arc, always_xy=True).transform(lon, lat)
        forms["utm_arc1950"] = f"{zone}S {ax:.0f} E {ay:.0f} N (Arc 1950, EPSG:{arc.to_epsg()})"
    return forms


def parse_base(text: str, places: pd.DataFrame | None) -> tuple[str, float, float]:
    """A base from ``LON,LAT`` or the name of a place (case-insensitive prefix).

    Raises ``ValueError`` with the places known when neither matches.
    """
    parts = text.split(",")
    if len(parts) == 2:
        try:
            lon, lat = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                raise ValueError(f"{text!r}: longitude must be in -180..180 and latitude in -90..90")
            return f"{lat:.4f}, {lon:.4f}", lon, lat
    if places is not None and len(places):
        points = places[places.geometry.geom_type == "Point"]
        for name, geom in zip(points["name"], points.geometry, strict=True):
            if str(name).lower().startswith(text.strip().lower()):
                return str(name), float(geom.x), float(geom.y)
        known = ", ".join(str(n) for n in points["name"])
        raise ValueError(f"{text!r} is neither LON,LAT nor a known place ({known})")
    raise ValueError(f"{text!r} is not LON,LAT (e.g. 32.67,-18.97) and the analysis has no places to look it up in")
