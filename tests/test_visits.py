"""Visit planning: optimal order, day splitting, coordinates in three forms, bases."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from geo.visits import (
    EXACT_MAX_SITES,
    Stop,
    TripSettings,
    best_order,
    coordinate_forms,
    dms,
    parse_base,
    plan_visits,
    road_km_matrix,
    stops_from_flags,
    tour_length,
)

BASE = (32.67, -18.97)  # Mutare


def random_stops(n: int, seed: int) -> list[Stop]:
    rng = np.random.default_rng(seed)
    return [
        Stop(f"S{i:02d}", 32.2 + rng.random() * 0.4, -19.8 + rng.random() * 0.4, [f"f{i}"], ["unlicensed_activity"],
             [f"reason {i}"], None, None, 0.5)
        for i in range(n)
    ]  # fmt: skip


def cost_for(stops: list[Stop]) -> np.ndarray:
    lons = np.array([BASE[0], *[s.lon for s in stops]])
    lats = np.array([BASE[1], *[s.lat for s in stops]])
    return road_km_matrix(lons, lats, 1.4)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_order_is_optimal_against_brute_force(n, seed):
    cost = cost_for(random_stops(n, seed))
    brute = min(tour_length(cost, list(p)) for p in itertools.permutations(range(1, n + 1)))
    order = best_order(cost)
    assert sorted(order) == list(range(1, n + 1))
    assert tour_length(cost, order) == pytest.approx(brute, rel=1e-9)


def test_large_sets_use_two_opt_and_visit_everyone():
    cost = cost_for(random_stops(EXACT_MAX_SITES + 15, 1))
    order = best_order(cost)
    assert sorted(order) == list(range(1, len(cost)))
    # 2-opt leaves no improving swap of two edges.
    path = [0, *order, 0]
    for i in range(1, len(path) - 2):
        for j in range(i + 1, len(path) - 1):
            a, b, c, d = path[i - 1], path[i], path[j], path[j + 1]
            assert cost[a, c] + cost[b, d] >= cost[a, b] + cost[c, d] - 1e-6


def test_road_distance_is_great_circle_times_detour():
    cost = road_km_matrix(np.array([32.67, 32.35]), np.array([-18.97, -19.59]), 1.5)
    assert cost[0, 1] == pytest.approx(1.5 * 76.8, rel=0.01)  # Mutare to Marange centre, ~77 km as the crow flies


def test_days_respect_the_budget_and_keep_the_order():
    stops = random_stops(9, 3)
    trip = TripSettings(days=5, hours_per_day=6.0, speed_kmh=40, visit_hours=1)
    plan = plan_visits(stops, "Mutare", *BASE, trip)
    assert all(hours <= 6.0 + 1e-9 for hours in plan.day_hours)
    assert sum(len(day) for day in plan.days) + len(plan.unplanned) == 9
    cost = cost_for(stops)
    ordered = [int(s.stop_id[1:]) + 1 for s in plan.stops]
    assert ordered == [k for k in best_order(cost) if k in ordered]  # days follow the optimal order
    assert len(plan.days) >= 2  # 9 visits of an hour cannot fit one 6-hour day


def test_stops_beyond_the_last_day_are_unplanned_not_dropped():
    plan = plan_visits(random_stops(9, 3), "Mutare", *BASE, TripSettings(days=1, hours_per_day=6.0))
    assert len(plan.days) == 1 and plan.unplanned
    assert {s.stop_id for s in plan.stops} | {s.stop_id for s in plan.unplanned} == {f"S{i:02d}" for i in range(9)}


def test_km_budget_and_sleeping_near_the_last_stop():
    plan = plan_visits(random_stops(6, 4), "Mutare", *BASE, TripSettings(days=6, km_per_day=250.0, hours_per_day=None,
                                                                          return_to_base=False))  # fmt: skip
    assert all(km <= 250.0 + 1e-9 for km in plan.day_km)
    assert plan.stops


def test_a_stop_too_far_for_any_day_is_unplanned():
    far = Stop("FAR", 25.0, -17.0, ["f"], ["unlicensed_activity"], ["r"], None, None, 1.0)
    plan = plan_visits([far], "Mutare", *BASE, TripSettings(km_per_day=100.0, hours_per_day=None))
    assert plan.days == [] and [s.stop_id for s in plan.unplanned] == ["FAR"]


def test_nearby_flags_share_one_stop_inside_their_geometry():
    pit = shapely.Point(32.35, -19.59).buffer(0.001)
    flags = gpd.GeoDataFrame(
        {"flag_id": ["a", "b", "c"], "flag_type": ["unlicensed_activity"] * 3, "reason": ["r1", "r2", "r3"],
         "score": [0.9, 0.8, 0.7], "concession_id": [None] * 3, "holder": [None] * 3},
        geometry=[pit, pit.buffer(0.0001), shapely.Point(32.45, -19.59).buffer(0.001)], crs=4326,
    )  # fmt: skip
    stops = stops_from_flags(flags)
    assert [s.flag_ids for s in stops] == [["a", "b"], ["c"]]
    assert pit.contains(shapely.Point(stops[0].lon, stops[0].lat))


@pytest.mark.parametrize(("lon", "lat"), [(32.35, -19.59), (29.88, -22.21), (32.67, -18.97)])
def test_coordinate_forms_agree_with_pyproj(lon, lat):
    forms = coordinate_forms(lon, lat)
    assert forms["decimal"] == f"{lat:.6f}, {lon:.6f}"
    zone = int((lon + 180) // 6) + 1
    x, y = Transformer.from_crs(4326, 32700 + zone, always_xy=True).transform(lon, lat)
    assert forms["utm_wgs84"].startswith(f"{zone}S {x:.0f} E {y:.0f} N")
    ax, ay = Transformer.from_crs(4326, 20900 + zone, always_xy=True).transform(lon, lat)
    assert f"{ax:.0f} E {ay:.0f} N (Arc 1950" in forms["utm_arc1950"]
    assert 200 < abs(ay - y) < 400  # the Arc 1950 datum shift a surveyor must not miss
    degrees, rest = forms["dms"].split("°", 1)
    minutes, rest = rest.split("'", 1)
    seconds = float(rest.split('"', 1)[0])
    assert int(degrees) + int(minutes) / 60 + seconds / 3600 == pytest.approx(abs(lat), abs=1e-5)


def test_dms_rounding_never_shows_60_seconds():
    assert dms(-19.99999999, "N", "S") == "20°00'00.0\"S"
    assert dms(32.5, "E", "W") == "32°30'00.0\"E"


def test_base_from_coordinates_or_place():
    places = gpd.GeoDataFrame({"name": ["Mutare (town)"]}, geometry=[shapely.Point(32.67, -18.97)], crs=4326)
    assert parse_base("32.67,-18.97", None)[1:] == (32.67, -18.97)
    assert parse_base("mutare", places) == ("Mutare (town)", 32.67, -18.97)
    with pytest.raises(ValueError, match="known place"):
        parse_base("Harare", places)
    with pytest.raises(ValueError, match="latitude"):
        parse_base("32.6,-99", None)
