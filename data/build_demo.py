"""Build minewatch's bundled demo: a synthetic Marange-area (Zimbabwe) scenario.

Run ``python data/build_demo.py`` from anywhere; it (re)writes ``data/demo/``:

``concessions.gpkg``
    Layer ``concessions``, EPSG:20936 (Arc 1950 / UTM 36S, Zimbabwe's cadastre CRS):
    20 SYNTHETIC diamond concessions with FICTIONAL holders around the Marange /
    Chiadzwa field centre (about -19.59, 32.35), spread over roughly 24 km x 18 km.
``production.csv``
    SYNTHETIC carats and value per concession and year, 2014-2024.
``national.csv``
    REAL Kimberley Process figures for Zimbabwe as reported by the sources named in
    each row (no row for 2015, which has no sourced figure).
``activity/YYYY.tif``
    SYNTHETIC disturbance scores (float32, 0..1, nodata -9999), one per year, in
    EPSG:32736 (WGS 84 / UTM 36S: deliberately another datum than the concessions),
    10 m pixels, tagged ``MINEWATCH_SYNTHETIC=yes``.
``scenario.json``
    What was planted: for each flag type the concessions (or place) and years that must
    raise it, the concessions that must raise nothing, and the numbers behind them.

How the scenario is made
------------------------
Each concession is a star-shaped random polygon inside one or two cells of a 6 x 4
grid of 4 km x 4.5 km cells (three cells stay empty; one of them gets the unlicensed
pit group). Alluvial pits are dug along a meandering "gully" line through a
concession: pit sites open one after another along the line and grow as noisy discs;
every year the oldest workings fade (score 0.2-0.4, below the 0.5 activity threshold)
so that the area active in a year follows a target. For producing concessions the
target is proportional to the year's production, so that carats per active hectare
stay close to one value (``CARATS_PER_HA``). Reported carats are then allocated from
the active pixels counted here (the analysis's rules), times a noise factor in
[0.8, 1.25], and scaled so that every year sums to the national figure: except the
planted shortfall year, and 2015, which has no national figure (a synthetic total).

Everything is drawn from generators seeded with ``SEED``: the output is the same on
every run. No network access is needed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry import LineString, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

SEED = 20240917
OUT_DIR = Path(__file__).resolve().parent / "demo"
YEARS: tuple[int, ...] = tuple(range(2014, 2025))

CADASTRE_CRS = "EPSG:20936"  # Arc 1950 / UTM zone 36S
RASTER_CRS = "EPSG:32736"  # WGS 84 / UTM zone 36S
EQUAL_AREA_CRS = "ESRI:102022"  # Africa Albers Equal Area, for reported areas
CENTRE_LONLAT = (32.35, -19.59)  # Marange / Chiadzwa field centre (FACTS.md, conf. L)

# Layout: a grid of cells, one concession per cell (some cells stay empty).
N_COLS, N_ROWS = 6, 4
CELL_W_M, CELL_H_M = 4000.0, 4500.0
CELL_MARGIN_M = 100.0  # polygons keep this far from their cell's edge: gaps >= 200 m
OVERLAP_TARGET_HA = 35.0  # the planted licence_overlap

# Rasters.
PIXEL_M = 10.0
PIXEL_HA = PIXEL_M * PIXEL_M / 10_000.0
RASTER_MARGIN_M = 1000.0
NODATA = -9999.0
TILE = 256

# Rules of the analysis (defaults) that the scenario is built around.
ACTIVE_SCORE = 0.5
MIN_PATCH_PX = 10  # 0.1 ha of 10 m pixels; smaller 8-connected patches are speckle

# Pits and production.
PIT_SETBACK_M = 100.0  # pits keep this far inside their concession (>= 60 m asked)
PIT_SPACING_M = 280.0  # distance between pit sites along a gully line
PIT_GROWTH_M = 60.0  # radius a pit gains per unit of "dig time"
SITE_OPENING_STEP = 0.6  # dig time between the openings of successive pit sites
GULLY_HALF_WIDTH_M = 180.0  # digging this far from the gully line costs one unit of time
PIT_EDGE_NOISE = 0.25  # relative noise on distances: irregular pit edges
NEW_GROUND_SHARE = 0.25  # each year at least this share of the active area is new ground
CARATS_PER_HA = 8000.0  # synthetic yield shared by all concessions
YIELD_NOISE = (0.8, 1.25)
MISMATCH_FACTOR = 25.0  # the planted production_activity_mismatch, x typical yield
PRODUCTION_WITHOUT_ACTIVITY_CT = 40_000
NATIONAL_SHORTFALL_YEAR = 2019
NATIONAL_SHORTFALL_SHARE = 0.70
SYNTHETIC_2015_TOTAL_CT = 3_000_000  # no sourced KP figure for 2015; demo value only
SPECKLE_SHARE = 0.0003  # of all pixels, per year (< 0.3 % asked)
SYNTHETIC_SOURCE = "synthetic (minewatch demo)"

# Real Kimberley Process figures for Zimbabwe, as given in /work/shared/FACTS.md:
# year -> (carats, value_usd or None, source, confidence).
KP_NATIONAL: dict[int, tuple[int, int | None, str, str]] = {
    2014: (4_800_000, 238_600_000, "Zimbabwe Independent, Aug 2015, citing KPCS", "M"),
    2016: (961_000, 40_000_000, "Government figure via gems2jewellery.com (value approx.)", "L-M"),
    2017: (1_800_000, None, "Government figure via gems2jewellery.com", "L-M"),
    2018: (3_300_000, None, "Natural Diamond Council table (Source: KPCS)", "M-H"),
    2019: (2_100_000, 141_100_000, "rough-polished.com (KP data)", "M-H"),
    2020: (2_700_000, None, "Natural Diamond Council table", "M"),
    2021: (4_200_000, None, "Natural Diamond Council table", "M-H"),
    2022: (4_461_000, 424_000_000, "Natural Diamond Council table (KPCS)", "M-H"),
    2023: (4_914_000, 303_000_000, "Natural Diamond Council table (KPCS)", "M-H"),
    2024: (5_300_000, 164_000_000, "Rapaport via miningzimbabwe.com (KP data; carats approx.)", "M"),
}
# Synthetic price per carat for the value_usd of production.csv: the KP average where
# FACTS.md gives carats and value, otherwise a round made-up number.
PRICE_USD_PER_CT = {
    2014: 49.7,
    2015: 45.0,
    2016: 41.6,
    2017: 50.0,
    2018: 55.0,
    2019: 67.2,
    2020: 60.0,
    2021: 75.0,
    2022: 95.0,
    2023: 61.7,
    2024: 30.9,
}


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class ConcessionSpec:
    """One synthetic concession: its attributes, where it goes and which case it plants.

    ``weight`` is its share of a year's production among the producing concessions in
    ``producing_years``; ``fixed_ha`` sets its active hectares by hand for some years.
    """

    cid: str
    name: str
    holder: str
    cells: tuple[tuple[int, int], ...]
    size_ha: float
    status: str
    licence_type: str
    granted: str | None
    expires: str | None
    status_date: str | None
    role: str
    weight: float = 0.0
    producing_years: tuple[int, ...] = ()
    fixed_ha: dict[int, float] = field(default_factory=dict)
    shape: str = "plain"  # plain | hole | multi | lobe


RUVHU = "Ruvhu Alluvials (Pvt) Ltd (fictional)"
EXAMPLE = "Example Gravels Consolidated (fictional)"
KESTREL = "Kestrelkop Demo Mining (Pvt) Ltd (fictional)"
SAMPLE = "Sample Terrace Diamonds (fictional)"
PLACEHOLDER = "Placeholder Gem Ventures (Pvt) Ltd (fictional)"
IMAGINARY = "Imaginary Riverbed Minerals (fictional)"
NOTIONAL = "Notional Carbon Co. (fictional)"
TESTBED = "Testbed Alluvial Syndicate (fictional)"
APPLICANT = "Demo Applicant Minerals (Pvt) Ltd (fictional)"
SPECIAL, LEASE = "special grant", "mining lease"

# Roles: "clean" (produces, activity matches) and "quiet" (no activity, no production) must
# raise no flag; the other roles plant the case they name. Cells are (column, row) from
# the south-west corner of the 6 x 4 grid; empty cells: (0, 0), (0, 3), (4, 1).
# fmt: off
CONCESSION_TABLE: tuple[tuple, ...] = (
    # id      name                                holder       cells             ha    status         type     granted       expires       status_date   role
    ("MW-001", "Demo Block 01 (North Terrace)",   RUVHU,       ((1, 3),),        1550, "active",      SPECIAL, "2010-03-15", "2030-03-14", None,         "clean"),
    ("MW-002", "Demo Block 02 (Upper Gully)",     RUVHU,       ((2, 3),),        1150, "active",      SPECIAL, "2010-03-15", "2030-03-14", None,         "clean"),
    ("MW-003", "Demo Block 03 (Ridge Flats)",     EXAMPLE,     ((4, 3),),        1400, "active",      LEASE,   "2011-06-01", None,         None,         "clean"),
    ("MW-004", "Demo Block 04 (West Pan)",        KESTREL,     ((0, 2),),        950,  "active",      SPECIAL, "2012-01-20", "2032-01-19", None,         "clean"),
    ("MW-005", "Demo Block 05 (Twin Blocks)",     PLACEHOLDER, ((3, 2),),        1250, "active",      SPECIAL, "2010-09-01", "2030-08-31", None,         "clean"),
    ("MW-006", "Demo Block 06 (South-West Bend)", IMAGINARY,   ((0, 1),),        1050, "active",      LEASE,   "2009-11-10", "2034-11-09", None,         "clean"),
    ("MW-007", "Demo Block 07 (Middle Reach)",    SAMPLE,      ((2, 1),),        1100, "active",      SPECIAL, "2010-03-15", "2030-03-14", None,         "no_production_rows"),
    ("MW-008", "Demo Block 08 (Lower Reach)",     NOTIONAL,    ((2, 0),),        900,  "active",      SPECIAL, "2012-05-02", "2032-05-01", None,         "zero_production"),
    ("MW-009", "Demo Block 09 (Quiet Hill)",      TESTBED,     ((1, 1),),        650,  "active",      LEASE,   "2013-02-01", "2033-01-31", None,         "production_without_activity"),
    ("MW-010", "Demo Block 10 (Small Claim)",     TESTBED,     ((3, 1),),        150,  "active",      SPECIAL, "2013-08-12", "2033-08-11", None,         "mismatch"),
    ("MW-011", "Demo Block 11 (Old Channel)",     IMAGINARY,   ((1, 2),),        1300, "active",      SPECIAL, "2010-03-15", "2030-03-14", None,         "overlap"),
    ("MW-012", "Demo Block 12 (New Lease)",       KESTREL,     ((2, 2),),        900,  "active",      LEASE,   "2019-02-01", "2039-01-31", None,         "overlap"),
    ("MW-013", "Demo Block 13 (Applied For)",     APPLICANT,   ((3, 3),),        750,  "application", SPECIAL, None,         None,         "2016-05-10", "inactive"),
    ("MW-014", "Demo Block 14 (Revoked Ground)",  NOTIONAL,    ((4, 2),),        950,  "revoked",     SPECIAL, "2011-04-01", "2031-03-31", "2019-06-30", "inactive"),
    ("MW-015", "Demo Block 15 (Lapsed Lease)",    SAMPLE,      ((5, 1),),        700,  "expired",     LEASE,   "2007-01-15", "2017-12-31", "2017-12-31", "inactive"),
    ("MW-016", "Demo Block 16 (East Reserve)",    EXAMPLE,     ((5, 2), (5, 3)), 2600, "active",      SPECIAL, "2014-02-01", "2034-01-31", None,         "quiet"),
    ("MW-017", "Demo Block 17 (Paused Works)",    PLACEHOLDER, ((1, 0),),        800,  "suspended",   SPECIAL, "2010-03-15", "2030-03-14", "2021-03-15", "clean"),
    ("MW-018", "Demo Block 18 (Fresh Grant)",     KESTREL,     ((5, 0),),        300,  "active",      LEASE,   "2022-07-01", "2042-06-30", None,         "quiet"),
    ("MW-019", "Demo Block 19 (South Terrace)",   KESTREL,     ((3, 0),),        700,  "active",      LEASE,   "2012-10-01", "2032-09-30", None,         "clean"),
    ("MW-020", "Demo Block 20 (Split Claim)",     RUVHU,       ((4, 0),),        1150, "active",      SPECIAL, "2011-01-10", "2031-01-09", None,         "clean"),
)
# Share of each year's production; producing concessions report every year unless listed.
PRODUCTION_WEIGHT = {"MW-001": 1.3, "MW-002": 1.0, "MW-003": 1.2, "MW-004": 0.9, "MW-005": 1.1, "MW-006": 1.0,
                     "MW-007": 1.0, "MW-008": 1.0, "MW-010": 0.0, "MW-011": 1.0, "MW-014": 1.0, "MW-017": 0.9,
                     "MW-019": 0.8, "MW-020": 1.0}
REPORTING_YEARS = {
    "MW-007": tuple(y for y in YEARS if y not in (2021, 2022, 2023)),  # rows missing 2021-2023
    "MW-008": tuple(y for y in YEARS if y < 2023),  # 2023-2024 reported as 0 (ZERO_CARAT_YEARS)
    "MW-014": tuple(y for y in YEARS if y <= 2019),  # revoked 2019-06-30, digs on without reporting
    "MW-017": tuple(y for y in YEARS if y <= 2020),  # suspended 2021-03-15, stops digging
}
# Active hectares set by hand for the planted cases (instead of a share of production).
FIXED_ACTIVE_HA = {
    "MW-007": {2021: 35.0, 2022: 35.0, 2023: 35.0},
    "MW-008": {2023: 35.0, 2024: 35.0},
    "MW-010": {2014: 4.0, 2015: 4.0, 2016: 3.5, 2017: 4.0, 2018: 4.5, 2019: 4.0, 2020: 4.5, 2021: 5.0,
               2022: 3.0, 2023: 5.0, 2024: 5.5},
    "MW-013": {2017: 5.0, 2018: 7.0, 2019: 10.0, 2020: 13.0, 2021: 17.0, 2022: 21.0, 2023: 26.0, 2024: 30.0},
    "MW-014": {2020: 14.0, 2021: 18.0, 2022: 22.0, 2023: 26.0, 2024: 30.0},
    "MW-015": {2020: 6.0, 2021: 10.0, 2022: 14.0, 2023: 18.0, 2024: 22.0},
}
SHAPES = {"MW-003": "hole", "MW-005": "multi", "MW-020": "multi", "MW-012": "lobe"}
UNLICENSED_HA = {2018: 5.0, 2019: 7.0, 2020: 9.0, 2021: 11.0, 2022: 13.0, 2023: 16.0, 2024: 18.0}
# fmt: on
OVERLAP_PAIR = ("MW-011", "MW-012")
MISMATCH_CASE = ("MW-010", 2022)
ZERO_CARAT_YEARS = {"MW-008": (2023, 2024)}
UNLICENSED_CELL = (4, 1)


def concession_specs() -> tuple[ConcessionSpec, ...]:
    """The table above as :class:`ConcessionSpec` objects."""
    specs = []
    for row in CONCESSION_TABLE:
        cid = row[0]
        weight = PRODUCTION_WEIGHT.get(cid)
        producing = REPORTING_YEARS.get(cid, YEARS) if weight is not None else ()
        specs.append(
            ConcessionSpec(
                *row,
                weight=weight or 0.0,
                producing_years=producing,
                fixed_ha=FIXED_ACTIVE_HA.get(cid, {}),
                shape=SHAPES.get(cid, "plain"),
            )
        )
    return tuple(specs)


SPECS = concession_specs()


# --------------------------------------------------------------------------- geometry


def rng_for(*keys: int | str) -> np.random.Generator:
    """A generator of its own for each purpose, so that edits elsewhere keep it stable."""
    words = [SEED] + [sum(ord(ch) * 31**i for i, ch in enumerate(str(k))) % 2**32 for k in keys]
    return np.random.default_rng(words)


def scenario_origin() -> tuple[float, float]:
    """South-west corner of the cell grid in EPSG:20936 metres, centred on Marange."""
    to_cadastre = Transformer.from_crs("EPSG:4326", CADASTRE_CRS, always_xy=True)
    x, y = to_cadastre.transform(*CENTRE_LONLAT)
    return round(x - N_COLS * CELL_W_M / 2, -2), round(y - N_ROWS * CELL_H_M / 2, -2)


def cell_box(cells: Iterable[tuple[int, int]], origin: tuple[float, float]) -> Polygon:
    """The box (EPSG:20936) covering ``cells`` (column, row from the south-west), less the margin."""
    cells = list(cells)
    x0, y0 = origin
    cols = [c for c, _ in cells]
    rows = [r for _, r in cells]
    return box(
        x0 + min(cols) * CELL_W_M + CELL_MARGIN_M,
        y0 + min(rows) * CELL_H_M + CELL_MARGIN_M,
        x0 + (max(cols) + 1) * CELL_W_M - CELL_MARGIN_M,
        y0 + (max(rows) + 1) * CELL_H_M - CELL_MARGIN_M,
    )


def star_polygon(frame: Polygon, area_ha: float, rng: np.random.Generator) -> Polygon:
    """An irregular star-shaped polygon of ``area_ha`` hectares clipped to ``frame``."""
    minx, miny, maxx, maxy = frame.bounds
    half_w, half_h = (maxx - minx) / 2, (maxy - miny) / 2
    cx = (minx + maxx) / 2 + rng.uniform(-0.08, 0.08) * half_w
    cy = (miny + maxy) / 2 + rng.uniform(-0.08, 0.08) * half_h
    n = int(rng.integers(9, 14))
    angles = np.sort((np.arange(n) + rng.uniform(-0.3, 0.3, n)) * 2 * np.pi / n)
    phases = rng.uniform(0, 2 * np.pi, 2)
    wobble = 1 + 0.12 * np.sin(2 * angles + phases[0]) + 0.08 * np.sin(3 * angles + phases[1])
    wobble *= rng.uniform(0.9, 1.1, n)

    def shape(scale: float) -> BaseGeometry:
        xs = cx + scale * half_w * wobble * np.cos(angles)
        ys = cy + scale * half_h * wobble * np.sin(angles)
        return Polygon(np.column_stack([xs, ys])).intersection(frame)

    lo, hi = 0.05, 3.0
    for _ in range(50):  # bisection: the area grows with the scale
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if shape(mid).area < area_ha * 10_000 else (lo, mid)
    return round_coords(shape(hi))


def round_coords(geom: BaseGeometry) -> BaseGeometry:
    """Coordinates rounded to 0.1 m, as a cadastre would list them."""
    return shapely.make_valid(shapely.set_precision(geom, 0.1))


def with_hole(outer: Polygon, rng: np.random.Generator, hole_ha: float = 40.0) -> Polygon:
    """``outer`` with an excluded area (say, a village) of about ``hole_ha`` cut out."""
    core = outer.buffer(-450)
    centre = core.representative_point()
    frame = box(centre.x - 450, centre.y - 450, centre.x + 450, centre.y + 450)
    hole = star_polygon(frame, hole_ha, rng)
    assert outer.buffer(-200).contains(hole), "hole must lie well inside its concession"
    return round_coords(Polygon(outer.exterior.coords, [hole.exterior.coords]))


def two_part(frame: Polygon, area_ha: float, rng: np.random.Generator) -> MultiPolygon:
    """A main block and a detached satellite block (a MultiPolygon) inside ``frame``."""
    minx, miny, maxx, maxy = frame.bounds
    split = minx + 0.66 * (maxx - minx)
    main = star_polygon(box(minx, miny, split - 150, maxy), 0.8 * area_ha, rng)
    satellite = star_polygon(
        box(split + 150, miny + 0.25 * (maxy - miny), maxx, maxy - 0.25 * (maxy - miny)), 0.2 * area_ha, rng
    )
    return MultiPolygon([main, satellite])


def add_overlap_lobe(target: Polygon, neighbour: Polygon, overlap_ha: float) -> Polygon:
    """``target`` plus a 500 m wide lobe reaching west into ``neighbour`` by ``overlap_ha``."""
    cy = target.centroid.y
    east = target.centroid.x

    def lobe(depth: float) -> Polygon:
        west = neighbour.bounds[2] - depth
        return box(west, cy - 250, east, cy + 250)

    lo, hi = 0.0, neighbour.bounds[2] - neighbour.bounds[0]
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if lobe(mid).intersection(neighbour).area < overlap_ha * 10_000 else (lo, mid)
    merged = round_coords(target.union(lobe(hi)))
    assert merged.geom_type == "Polygon"
    return merged


def make_concessions(origin: tuple[float, float]) -> gpd.GeoDataFrame:
    """All concessions as a GeoDataFrame in EPSG:20936, attributes as the loaders expect."""
    shapes: dict[str, BaseGeometry] = {}
    for spec in SPECS:
        rng = rng_for("shape", spec.cid)
        frame = cell_box(spec.cells, origin)
        if spec.shape == "multi":
            shapes[spec.cid] = two_part(frame, spec.size_ha, rng)
        elif spec.shape == "hole":
            shapes[spec.cid] = with_hole(star_polygon(frame, spec.size_ha + 40, rng), rng)
        else:
            shapes[spec.cid] = star_polygon(frame, spec.size_ha, rng)
    a, b = OVERLAP_PAIR
    shapes[b] = add_overlap_lobe(shapes[b], shapes[a], OVERLAP_TARGET_HA)
    rows = [
        {
            "concession_id": s.cid,
            "name": s.name,
            "holder": s.holder,
            "status": s.status,
            "mineral": "diamond",
            "licence_type": s.licence_type,
            "granted": s.granted,
            "expires": s.expires,
            "status_date": s.status_date,
            "synthetic": 1,
        }
        for s in SPECS
    ]
    frame = gpd.GeoDataFrame(rows, geometry=[shapes[s.cid] for s in SPECS], crs=CADASTRE_CRS)
    frame["synthetic"] = frame["synthetic"].astype("int32")
    return frame


# --------------------------------------------------------------------------- raster grid


@dataclass(frozen=True)
class RasterGrid:
    """The activity rasters' grid in EPSG:32736: top-left corner, size, 10 m pixels."""

    left: float
    top: float
    width: int
    height: int

    @property
    def transform(self) -> Affine:
        return Affine(PIXEL_M, 0.0, self.left, 0.0, -PIXEL_M, self.top)

    def window_of(self, geom: BaseGeometry, pad_px: int = 2) -> tuple[slice, slice]:
        """Row and column slices of the pixels around ``geom`` (clipped to the grid)."""
        minx, miny, maxx, maxy = geom.bounds
        c0 = max(int(np.floor((minx - self.left) / PIXEL_M)) - pad_px, 0)
        c1 = min(int(np.ceil((maxx - self.left) / PIXEL_M)) + pad_px, self.width)
        r0 = max(int(np.floor((self.top - maxy) / PIXEL_M)) - pad_px, 0)
        r1 = min(int(np.ceil((self.top - miny) / PIXEL_M)) + pad_px, self.height)
        return slice(r0, r1), slice(c0, c1)

    def centres(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (metres, EPSG:32736) of the given pixels."""
        return self.left + (cols + 0.5) * PIXEL_M, self.top - (rows + 0.5) * PIXEL_M

    def mask(self, geom: BaseGeometry) -> np.ndarray:
        """Full-grid boolean mask of pixels whose centre lies in ``geom``."""
        out = np.zeros((self.height, self.width), dtype=bool)
        rs, cs = self.window_of(geom)
        transform = self.transform @ Affine.translation(cs.start, rs.start)
        shape = (rs.stop - rs.start, cs.stop - cs.start)
        out[rs, cs] = rasterize([(geom, 1)], out_shape=shape, transform=transform, fill=0, dtype="uint8") == 1
        return out


def make_grid(geoms_utm: gpd.GeoSeries) -> RasterGrid:
    """A grid covering ``geoms_utm`` plus ``RASTER_MARGIN_M``, snapped to whole 100 m."""
    minx, miny, maxx, maxy = geoms_utm.total_bounds
    left = np.floor((minx - RASTER_MARGIN_M) / 100) * 100
    right = np.ceil((maxx + RASTER_MARGIN_M) / 100) * 100
    bottom = np.floor((miny - RASTER_MARGIN_M) / 100) * 100
    top = np.ceil((maxy + RASTER_MARGIN_M) / 100) * 100
    return RasterGrid(float(left), float(top), int((right - left) / PIXEL_M), int((top - bottom) / PIXEL_M))


def smooth_noise(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation."""
    field_ = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px)
    return field_ / field_.std()


# --------------------------------------------------------------------------- pits


@dataclass
class DigZone:
    """Where one concession (or the unlicensed group) digs, and in which order.

    ``rows``/``cols`` are the zone's pixels sorted in digging order; ``fade_order`` sorts
    the same pixels in the order in which worked ground fades (oldest pit first).
    ``target_px`` is the active area wanted per year, in pixels. Worked ground fades
    only when ``fades``; with ``one_patch`` only the largest connected patch is active
    (the rest is painted as faded), so the zone makes exactly one activity footprint.
    """

    key: str
    rows: np.ndarray
    cols: np.ndarray
    fade_order: np.ndarray
    target_px: dict[int, int]
    fades: bool = True
    one_patch: bool = False


def gully_line(zone: BaseGeometry, rng: np.random.Generator) -> LineString:
    """A meandering line along the long axis of ``zone``, clipped to it (longest piece)."""
    rect = zone.minimum_rotated_rectangle
    corners = np.asarray(rect.exterior.coords)[:4]
    first, second = corners[1] - corners[0], corners[2] - corners[1]
    along, across = (first, second) if np.hypot(*first) >= np.hypot(*second) else (second, first)
    start = corners.mean(axis=0) - along / 2
    t = np.linspace(-0.1, 1.1, 80)
    width = np.hypot(*across)
    unit_across = across / width
    amp = 0.18 * width
    cycles = rng.uniform(0.8, 1.8)
    phase = rng.uniform(0, 2 * np.pi)
    lateral = amp * np.sin(2 * np.pi * cycles * t + phase)
    pts = start + np.outer(t, along) + np.outer(lateral, unit_across)
    clipped = LineString(pts).intersection(zone)
    parts = [g for g in getattr(clipped, "geoms", [clipped]) if g.geom_type == "LineString" and not g.is_empty]
    return max(parts, key=lambda g: g.length)


def active_targets(
    years: Iterable[int],
    weight_share: dict[int, float],
    spec_fixed: dict[int, float],
    budget_ha: dict[int, float],
    weight: float,
) -> dict[int, float]:
    """Active hectares wanted per year: a share of the year's budget, or a fixed value."""
    out = {}
    for y in YEARS:
        if y in spec_fixed:
            out[y] = spec_fixed[y]
        elif y in years and weight > 0:
            out[y] = budget_ha[y] * weight / weight_share[y]
        else:
            out[y] = 0.0
    return out


def production_budget_ha() -> tuple[dict[int, float], dict[int, float]]:
    """Per year: the active hectares that producing concessions share, and the total weight."""
    mismatch_cid, mismatch_year = MISMATCH_CASE
    mismatch_spec = next(s for s in SPECS if s.cid == mismatch_cid)
    budget, weights = {}, {}
    for y in YEARS:
        carats = concession_total_ct(y) - PRODUCTION_WITHOUT_ACTIVITY_CT
        fixed_ha = mismatch_spec.fixed_ha[y]
        factor = MISMATCH_FACTOR if y == mismatch_year else 1.0
        budget[y] = (carats - factor * CARATS_PER_HA * fixed_ha) / CARATS_PER_HA
        weights[y] = sum(s.weight for s in SPECS if y in s.producing_years and y not in s.fixed_ha)
    return budget, weights


def concession_total_ct(year: int) -> int:
    """What the concessions report in total for ``year`` (the planted shortfall included)."""
    if year not in KP_NATIONAL:
        return SYNTHETIC_2015_TOTAL_CT
    national = KP_NATIONAL[year][0]
    return round(national * NATIONAL_SHORTFALL_SHARE) if year == NATIONAL_SHORTFALL_YEAR else national


def distance_to_line_m(line: LineString, grid: RasterGrid) -> np.ndarray:
    """Distance (metres) from every pixel centre to ``line``, within the line's window."""
    rs, cs = grid.window_of(line.buffer(3000))
    transform = grid.transform @ Affine.translation(cs.start, rs.start)
    shape = (rs.stop - rs.start, cs.stop - cs.start)
    on_line = rasterize([(line, 1)], out_shape=shape, transform=transform, all_touched=True, dtype="uint8")
    out = np.full((grid.height, grid.width), np.inf, dtype=np.float32)
    out[rs, cs] = ndimage.distance_transform_edt(on_line == 0) * PIXEL_M
    return out


def make_dig_zone(
    key: str,
    zone: BaseGeometry,
    targets_ha: dict[int, float],
    grid: RasterGrid,
    distortion: np.ndarray,
    fades: bool = True,
    one_patch: bool = False,
    spacing_m: float = PIT_SPACING_M,
) -> DigZone:
    """Order the pixels of ``zone`` (EPSG:32736) for digging: pits along a gully line.

    Pit sites sit every ``spacing_m`` along the line and open one after another; a
    pixel's dig time is the earliest time any pit's noisy disc reaches it, plus a cost
    for leaving the line.
    """
    rng = rng_for("zone", key)
    line = gully_line(zone, rng)
    n_sites = max(2, int(line.length // spacing_m) + 1)
    where = np.linspace(0.04, 0.96, n_sites) + rng.uniform(-0.02, 0.02, n_sites)
    sites = np.array([line.interpolate(f, normalized=True).coords[0] for f in np.clip(where, 0, 1)])
    sites += rng.normal(0, 25, sites.shape)
    opens = SITE_OPENING_STEP * (np.arange(n_sites) + rng.uniform(-0.25, 0.25, n_sites))

    mask = grid.mask(zone)
    rows, cols = np.nonzero(mask)
    xs, ys = grid.centres(rows, cols)
    from_line = distance_to_line_m(line, grid)[rows, cols]
    stretch = np.clip(1 + PIT_EDGE_NOISE * distortion[rows, cols], 0.5, 1.5)
    times = np.full(rows.size, np.inf)
    owner = np.zeros(rows.size, dtype=np.int32)
    for k, ((sx, sy), t0) in enumerate(zip(sites, opens, strict=True)):
        tk = t0 + np.hypot(xs - sx, ys - sy) * stretch / PIT_GROWTH_M
        better = tk < times
        times[better] = tk[better]
        owner[better] = k
    times += (from_line * stretch / GULLY_HALF_WIDTH_M) ** 2  # digging hugs the gully
    order = np.argsort(times, kind="stable")
    rows, cols, owner, times = rows[order], cols[order], owner[order], times[order]
    fade_order = np.lexsort((np.arange(rows.size), owner))
    target_px = {y: int(round(ha / PIXEL_HA)) for y, ha in targets_ha.items()}
    return DigZone(key, rows, cols, fade_order, target_px, fades, one_patch)


def dig_schedule(zone: DigZone) -> dict[int, tuple[int, int]]:
    """Per year (dug, faded): the first ``dug`` pixels are worked, ``faded`` of them fade.

    Worked ground only grows; each year at least ``NEW_GROUND_SHARE`` of the active area
    is new, and the oldest workings fade so that ``dug - faded`` is the year's target.
    A zone that does not fade simply grows to its target.
    """
    dug, faded, out = 0, 0, {}
    for y in YEARS:
        n = zone.target_px[y]
        dug = max(dug + int(np.ceil(NEW_GROUND_SHARE * n)), faded + n) if zone.fades else max(dug, n)
        faded = dug - n
        out[y] = (dug, faded)
    assert dug <= zone.rows.size, f"{zone.key}: needs {dug} pixels, its zone has {zone.rows.size}"
    return out


def paint_zone(scores: np.ndarray, zone: DigZone, dug: int, faded: int, texture: np.ndarray) -> None:
    """Write one zone's worked ground into ``scores``: active 0.6-1.0, faded 0.2-0.4."""
    if dug == 0:
        return
    worked = np.zeros(zone.rows.size, dtype=bool)
    worked[:dug] = True
    fade_rank = zone.fade_order[worked[zone.fade_order]][:faded]
    is_faded = np.zeros(zone.rows.size, dtype=bool)
    is_faded[fade_rank] = True
    active = worked & ~is_faded
    if zone.one_patch:
        active &= largest_patch(zone.rows, zone.cols, active)
        is_faded = worked & ~active
    r, c = zone.rows[active], zone.cols[active]
    scores[r, c] = np.clip(0.8 + 0.12 * texture[r, c], 0.6, 1.0)
    r, c = zone.rows[is_faded], zone.cols[is_faded]
    scores[r, c] = np.clip(0.3 + 0.05 * texture[r, c], 0.2, 0.4)


def largest_patch(rows: np.ndarray, cols: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Which of the pixels (``rows``, ``cols``) belong to the largest 8-connected patch of ``member``."""
    r0, c0 = rows[member].min(), cols[member].min()
    local = np.zeros((rows[member].max() - r0 + 1, cols[member].max() - c0 + 1), dtype=bool)
    local[rows[member] - r0, cols[member] - c0] = True
    labels, _ = ndimage.label(local, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    inside = (rows >= r0) & (rows < r0 + local.shape[0]) & (cols >= c0) & (cols < c0 + local.shape[1])
    out = np.zeros(rows.size, dtype=bool)
    out[inside] = labels[rows[inside] - r0, cols[inside] - c0] == int(np.argmax(sizes))
    return out & member


# --------------------------------------------------------------------------- noise and nodata


def add_nodata_holes(scores: np.ndarray, protected: np.ndarray, rng: np.random.Generator) -> int:
    """Cut 3-5 cloud-like nodata holes of 200-600 pixels where ``protected`` is False."""
    placed = 0
    n_holes = int(rng.integers(3, 6))
    height, width = scores.shape
    while placed < n_holes:
        patch = smooth_noise((48, 48), 4.0, rng)
        patch *= np.outer(np.hanning(48), np.hanning(48))  # fade to nothing at the edges
        blob = patch > np.quantile(patch, 1 - rng.uniform(200, 600) / patch.size)
        labels, _ = ndimage.label(blob)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        blob = labels == int(np.argmax(sizes))
        if not 200 <= blob.sum() <= 600:
            continue
        r0 = int(rng.integers(10, height - 58))
        c0 = int(rng.integers(10, width - 58))
        window = (slice(r0, r0 + 48), slice(c0, c0 + 48))
        if (protected[window] & blob).any():
            continue
        scores[window][blob] = NODATA
        placed += 1
    return placed


def add_speckle(scores: np.ndarray, rng: np.random.Generator) -> int:
    """Scatter isolated single pixels scoring 0.5-0.95 (speckle the analysis must ignore).

    Each sits at the centre of its own 3 x 3 block, away from any other scored or nodata
    pixel, so no two speckle pixels (nor a speckle pixel and a pit) are 8-connected.
    """
    height, width = scores.shape
    busy = ndimage.binary_dilation(scores != 0, structure=np.ones((3, 3), bool), iterations=2)
    n_blocks_r, n_blocks_c = height // 3, width // 3
    wanted = int(SPECKLE_SHARE * height * width)
    picks = rng.choice(n_blocks_r * n_blocks_c, size=wanted, replace=False)
    rows = (picks // n_blocks_c) * 3 + 1
    cols = (picks % n_blocks_c) * 3 + 1
    free = ~busy[rows, cols]
    rows, cols = rows[free], cols[free]
    scores[rows, cols] = np.round(rng.uniform(0.5, 0.95, rows.size), 2)
    return int(rows.size)


def quantize(scores: np.ndarray) -> np.ndarray:
    """Scores rounded to multiples of 0.01 (nodata kept), as float32."""
    out = np.where(scores == NODATA, NODATA, np.round(scores, 2))
    return out.astype(np.float32)


def active_pixels(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The analysis's active mask: score >= 0.5 in 8-connected patches of >= 10 pixels.

    Returns the mask, the patch labels and the patch sizes (pixels, index = label).
    """
    candidate = (scores >= ACTIVE_SCORE) & (scores != NODATA)
    labels, _ = ndimage.label(candidate, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    keep = sizes >= MIN_PATCH_PX
    return keep[labels], labels, sizes


# --------------------------------------------------------------------------- writing


def write_raster(path: Path, scores: np.ndarray, grid: RasterGrid, year: int) -> None:
    """Write one year's scores as a tiled, DEFLATE-compressed float32 GeoTIFF."""
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "count": 1,
        "width": grid.width,
        "height": grid.height,
        "crs": RASTER_CRS,
        "transform": grid.transform,
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "compress": "deflate",
        "predictor": 3,
        "zlevel": 9,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(scores, 1)
        dst.update_tags(
            MINEWATCH_SYNTHETIC="yes",
            DESCRIPTION=(
                f"SYNTHETIC mining-disturbance score 0..1 for {year} (minewatch demo); "
                "not derived from any imagery; nodata -9999"
            ),
            PERIOD=str(year),
        )
        dst.set_band_description(1, "disturbance score 0..1 (synthetic)")


def write_concessions(path: Path, concessions: gpd.GeoDataFrame) -> None:
    """Write the GeoPackage with fixed timestamps, so that reruns give the same file."""
    os.environ.setdefault("OGR_CURRENT_DATE", "2025-01-01T00:00:00.000Z")
    # Keep Polygons and MultiPolygons as they are: loaders must take both. Outer rings
    # counter-clockwise, so the loader has no winding to repair in the demo.
    concessions = concessions.set_geometry(shapely.orient_polygons(concessions.geometry.to_numpy()))
    concessions.to_file(
        path, layer="concessions", driver="GPKG", engine="pyogrio", geometry_type="Unknown", promote_to_multi=False
    )


# Real places for orientation on the map (shared/FACTS.md, with its confidence levels).
CONTEXT_PLACES = [
    ("Mutare (town; base for Marange visits)", 32.67, -18.97, "FACTS.md: Mutare -18.97, 32.67, confidence H"),
    ("Marange / Chiadzwa diamond fields (approximate centre)", 32.35, -19.59,
     "FACTS.md: about -19.59, 32.35, confidence L (to verify)"),
]  # fmt: skip


def write_context(path: Path) -> None:
    """Write the real context places as GeoJSON (lon/lat): shown on the map, never analysed."""
    features = [
        {"type": "Feature", "properties": {"name": name, "source": source},
         "geometry": {"type": "Point", "coordinates": [lon, lat]}}
        for name, lon, lat, source in CONTEXT_PLACES
    ]  # fmt: skip
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, indent=1) + "\n", encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write ``rows`` under ``header`` (None is written as an empty cell)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])


# --------------------------------------------------------------------------- production


def allocate_production(active_ha: dict[str, dict[int, float]]) -> list[list]:
    """Rows of production.csv: carats follow each concession-year's counted active area.

    Per year the producing concessions share the year's concession total in proportion to
    active hectares x a noise factor in ``YIELD_NOISE``; the planted cases (fixed 40,000 ct
    with no activity, the 25x mismatch, explicit zeros) are taken out of the total first.
    """
    rng = rng_for("production")
    rows = []
    mismatch_cid, mismatch_year = MISMATCH_CASE
    pwa = next(s.cid for s in SPECS if s.role == "production_without_activity")
    for y in YEARS:
        carats: dict[str, float] = {pwa: PRODUCTION_WITHOUT_ACTIVITY_CT}
        if mismatch_year == y:
            carats[mismatch_cid] = MISMATCH_FACTOR * CARATS_PER_HA * active_ha[mismatch_cid][y]
        producers = [s.cid for s in SPECS if y in s.producing_years and s.cid not in carats]
        noise = {cid: rng.uniform(*YIELD_NOISE) for cid in producers}
        weights = {cid: active_ha[cid][y] * noise[cid] for cid in producers}
        remaining = concession_total_ct(y) - sum(carats.values())
        per_weight = remaining / sum(weights.values())
        for cid in producers:
            carats[cid] = weights[cid] * per_weight
        rounded = {cid: int(round(v)) for cid, v in carats.items()}
        largest = max(producers, key=lambda c: rounded[c])
        rounded[largest] += concession_total_ct(y) - sum(rounded.values())
        for cid, years in ZERO_CARAT_YEARS.items():
            if y in years:
                rounded[cid] = 0
        for spec in SPECS:
            if spec.cid in rounded:
                ct = rounded[spec.cid]
                rows.append([spec.cid, str(y), ct, int(round(ct * PRICE_USD_PER_CT[y])), SYNTHETIC_SOURCE])
    return rows


def national_rows() -> list[list]:
    """Rows of national.csv: the sourced KP figures for Zimbabwe (2015 has none)."""
    return [["Zimbabwe", str(y), ct, usd, src] for y, (ct, usd, src, _conf) in sorted(KP_NATIONAL.items())]


# --------------------------------------------------------------------------- scenario


def in_force(spec: ConcessionSpec, year: int) -> bool:
    """The analysis's rule: in force on at least one day of ``year``."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    granted = date.fromisoformat(spec.granted) if spec.granted else date.min
    if spec.status == "application":
        return False
    if spec.status in ("active", "expired"):
        until = date.fromisoformat(spec.expires) if spec.expires else date.max
    elif spec.status_date:  # suspended, revoked: up to the day before status_date
        until = date.fromordinal(date.fromisoformat(spec.status_date).toordinal() - 1)
    else:
        return False
    return granted <= last and until >= first


def build_manifest(
    active_ha: dict[str, dict[int, float]],
    unlicensed: dict[int, float],
    unlicensed_lonlat: tuple[float, float],
    production: list[list],
    overlap_ha: float,
    stats: dict,
) -> dict:
    """scenario.json: which flags the demo must raise (where, when, why), and what must stay clean.

    Every case under ``flags`` has ``concession_ids`` (empty where no concession applies),
    ``periods`` and ``evidence`` (the numbers behind it, from this generator's own count).
    """
    carats = {(r[0], int(r[1])): r[2] for r in production}
    by_id = {s.cid: s for s in SPECS}

    def evidence(cid: str, years: Iterable[int]) -> list[dict]:
        return [
            {"period": str(y), "active_ha": round(active_ha[cid][y], 2), "carats": carats.get((cid, y))} for y in years
        ]

    def case(cids: list[str], years: Iterable[int], **extra) -> dict:
        years = sorted(years)
        out = {"concession_ids": cids, "periods": [str(y) for y in years]}
        if len(cids) == 1:
            out["evidence"] = evidence(cids[0], years)
        return out | extra

    inactive = [
        case([s.cid], [y for y in YEARS if not in_force(s, y) and active_ha[s.cid][y] > 0], status=s.status)
        for s in SPECS
        if s.role == "inactive"
    ]
    ratios = [carats[k] / active_ha[k[0]][k[1]] for k in carats if carats[k] > 0 and active_ha[k[0]][k[1]] >= 0.5]
    median = float(np.median(ratios))
    m_cid, m_year = MISMATCH_CASE
    m_ratio = carats[(m_cid, m_year)] / active_ha[m_cid][m_year]
    sums = {y: sum(v for (_, yy), v in carats.items() if yy == y) for y in YEARS}
    a, b = OVERLAP_PAIR
    missing = next(s for s in SPECS if s.role == "no_production_rows")
    zero = next(s for s in SPECS if s.role == "zero_production")
    pwa = next(s for s in SPECS if s.role == "production_without_activity")
    shortfall = NATIONAL_SHORTFALL_YEAR
    return {
        "synthetic": True,
        "description": (
            "minewatch demo: SYNTHETIC concessions (fictional holders), production and activity around "
            "Marange, Zimbabwe; only national.csv holds real figures (Kimberley Process statistics as "
            "reported by the sources named). No finding in this scenario is an allegation about any real company."
        ),
        "seed": SEED,
        "crs": {"concessions": CADASTRE_CRS, "activity": RASTER_CRS},
        "counting": (
            "active_ha: pixels scoring >= 0.5 in 8-connected patches of >= 10 pixels, whose centre lies in the "
            "concession (after to_crs EPSG:32736), x 0.01 ha; pits stay >= 100 m inside concessions, so "
            "coverage-weighted and equal-area counts agree to < 0.1 %"
        ),
        "flags": {
            "unlicensed_activity": [
                {
                    "concession_ids": [],
                    "lon": round(unlicensed_lonlat[0], 5),
                    "lat": round(unlicensed_lonlat[1], 5),
                    "radius_m": 500,
                    "note": "one pit group outside every concession (one footprint a year); lon/lat is the centre "
                    "of its last footprint, and every year's footprint lies within radius_m of it",
                    "periods": [str(y) for y in sorted(unlicensed)],
                    "evidence": [{"period": str(y), "outside_ha": ha} for y, ha in sorted(unlicensed.items())],
                }
            ],
            "activity_in_inactive_licence": inactive,
            "activity_without_production": [
                case([missing.cid], missing.fixed_ha, why="no production rows"),
                case([zero.cid], ZERO_CARAT_YEARS[zero.cid], why="carats reported as 0"),
            ],
            "production_without_activity": [case([pwa.cid], YEARS)],
            "production_activity_mismatch": [
                case(
                    [m_cid],
                    [m_year],
                    carats_per_active_ha=round(m_ratio, 1),
                    median_carats_per_active_ha=round(median, 1),
                    times_median=round(m_ratio / median, 2),
                )
            ],
            "licence_overlap": [
                case(
                    [a, b],
                    [y for y in YEARS if in_force(by_id[a], y) and in_force(by_id[b], y)],
                    overlap_ha=round(overlap_ha, 2),
                    note="one flag for the pair is expected; periods: the years both licences are in force (its period is one of them)",
                )
            ],
            "national_total_mismatch": [
                case(
                    [],
                    [shortfall],
                    country="Zimbabwe",
                    concession_carats=sums[shortfall],
                    national_carats=KP_NATIONAL[shortfall][0],
                    share=round(sums[shortfall] / KP_NATIONAL[shortfall][0], 3),
                )
            ],
        },
        "clean_concessions": [s.cid for s in SPECS if s.role in ("clean", "quiet")],
        "notes": [
            "2015 has no national figure, so no national_total_mismatch can be raised for it; in every other "
            "year but the planted one the concession carats equal the national figure",
            "carats per active ha of every concession-year with both (except the planted mismatch) lie within "
            "[median / 2, median x 2]",
        ],
        "in_force": {s.cid: [str(y) for y in YEARS if in_force(s, y)] for s in SPECS},
        "concession_carats_by_period": {str(y): sums[y] for y in YEARS},
        "active_ha": {cid: {str(y): round(v, 2) for y, v in per.items()} for cid, per in active_ha.items()},
        "raster_stats": stats,
    }


# --------------------------------------------------------------------------- main


def plan_dig_zones(shapes_utm: dict[str, BaseGeometry], group: BaseGeometry, grid: RasterGrid) -> list[DigZone]:
    """Every place that digs (concessions with activity, the unlicensed group), in order."""
    budget, weight_total = production_budget_ha()
    distortion = smooth_noise((grid.height, grid.width), 4.0, rng_for("distortion"))
    zones = []
    for spec in SPECS:
        targets = active_targets(spec.producing_years, weight_total, spec.fixed_ha, budget, spec.weight)
        if not any(targets.values()):
            continue
        zone = shapes_utm[spec.cid].buffer(-PIT_SETBACK_M)
        if spec.cid == OVERLAP_PAIR[0]:  # keep its pits out of the shared ground
            zone = zone.difference(shapes_utm[OVERLAP_PAIR[1]].buffer(PIT_SETBACK_M + 50))
        growing_only = spec.role == "inactive" and not spec.producing_years  # never fades
        zones.append(make_dig_zone(spec.cid, zone, targets, grid, distortion, fades=not growing_only))
    unlicensed_targets = {y: UNLICENSED_HA.get(y, 0.0) for y in YEARS}
    zones.append(
        make_dig_zone(
            "unlicensed", group, unlicensed_targets, grid, distortion, fades=False, one_patch=True, spacing_m=120.0
        )
    )
    return zones


def unlicensed_zone(origin: tuple[float, float], shapes_utm: dict[str, BaseGeometry]) -> BaseGeometry:
    """Where the unlicensed group digs (EPSG:32736): an ellipse in an empty cell, far from every concession."""
    cell = cell_box([UNLICENSED_CELL], origin).centroid
    ellipse = shapely.affinity.scale(cell.buffer(1), 700, 450)
    group = gpd.GeoSeries([ellipse], crs=CADASTRE_CRS).to_crs(RASTER_CRS).iloc[0]
    assert min(group.distance(g) for g in shapes_utm.values()) > 500
    return group


@dataclass
class YearCounts:
    """What the rasters hold, counted with the analysis's rules (see :func:`active_pixels`)."""

    active_ha: dict[str, dict[int, float]]  # concession -> year -> active hectares
    unlicensed_ha: dict[int, float]  # year -> active hectares outside every concession
    last_outside: np.ndarray  # the last year's active pixels outside every concession
    stats: dict[str, dict]


def write_activity_rasters(
    out_dir: Path, zones: list[DigZone], shapes_utm: dict[str, BaseGeometry], protected: np.ndarray, grid: RasterGrid
) -> YearCounts:
    """Paint, write and count one raster a year: pits, nodata holes, speckle.

    ``protected`` marks where no nodata hole may fall (around the planted cases).
    """
    texture = smooth_noise((grid.height, grid.width), 2.0, rng_for("texture"))
    masks = {cid: grid.mask(g) for cid, g in shapes_utm.items()}
    outside_all = ~np.logical_or.reduce(list(masks.values()))
    schedules = {z.key: dig_schedule(z) for z in zones}
    counts = YearCounts({cid: {} for cid in masks}, {}, np.zeros_like(outside_all), {})
    for y in YEARS:
        scores = np.zeros((grid.height, grid.width), dtype=np.float32)
        for zone in zones:
            paint_zone(scores, zone, *schedules[zone.key][y], texture)
        busy = ndimage.binary_dilation(scores >= ACTIVE_SCORE, iterations=3) | protected
        holes = add_nodata_holes(scores, busy, rng_for("holes", y))
        speckle = add_speckle(scores, rng_for("speckle", y))
        scores = quantize(scores)
        write_raster(out_dir / "activity" / f"{y}.tif", scores, grid, y)

        active, labels, _ = active_pixels(scores)
        for cid, m in masks.items():
            counts.active_ha[cid][y] = float((active & m).sum()) * PIXEL_HA
        outside = active & outside_all
        if outside.any():
            n_footprints = len(np.unique(labels[outside]))
            assert n_footprints == 1, f"{y}: {n_footprints} footprints outside the concessions, expected 1"
            counts.unlicensed_ha[y] = round(float(outside.sum()) * PIXEL_HA, 2)
            counts.last_outside = outside
        counts.stats[str(y)] = {
            "speckle_px": speckle,
            "speckle_share": round(speckle / scores.size, 5),
            "nodata_holes": holes,
            "nodata_px": int((scores == NODATA).sum()),
            "active_px": int(active.sum()),
        }
    return counts


def build(out_dir: Path = OUT_DIR) -> dict:
    """Write the whole demo into ``out_dir`` and return the scenario manifest."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "activity").mkdir(parents=True)

    origin = scenario_origin()
    concessions = make_concessions(origin)
    utm = concessions.to_crs(RASTER_CRS)  # the same datum shift the analysis applies
    shapes_utm = dict(zip(utm["concession_id"], utm.geometry, strict=True))
    grid = make_grid(utm.geometry)
    group = unlicensed_zone(origin, shapes_utm)
    zones = plan_dig_zones(shapes_utm, group, grid)

    protected = grid.mask(group.buffer(200))
    for spec in SPECS:
        if spec.role not in ("clean", "quiet"):
            protected |= grid.mask(shapes_utm[spec.cid].buffer(50))
    counts = write_activity_rasters(out_dir, zones, shapes_utm, protected, grid)

    xs, ys = grid.centres(*np.nonzero(counts.last_outside))
    to_lonlat = Transformer.from_crs(RASTER_CRS, "EPSG:4326", always_xy=True)
    group_lonlat = to_lonlat.transform(float(xs.mean()), float(ys.mean()))
    equal_area = concessions.set_index("concession_id").geometry.to_crs(EQUAL_AREA_CRS)
    overlap_ha = equal_area[OVERLAP_PAIR[0]].intersection(equal_area[OVERLAP_PAIR[1]]).area / 10_000
    production = allocate_production(counts.active_ha)

    write_concessions(out_dir / "concessions.gpkg", concessions)
    write_csv(out_dir / "production.csv", ["concession_id", "period", "carats", "value_usd", "source"], production)
    write_csv(out_dir / "national.csv", ["country", "period", "carats", "value_usd", "source"], national_rows())
    write_context(out_dir / "context.geojson")
    manifest = build_manifest(
        counts.active_ha, counts.unlicensed_ha, group_lonlat, production, overlap_ha, counts.stats
    )
    (out_dir / "scenario.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def main() -> None:
    """Build the demo and print a one-line summary per flag type."""
    manifest = build()
    for flag_type, cases in manifest["flags"].items():
        where = [c["concession_ids"] or c.get("country") or f"lon/lat {c['lon']}, {c['lat']}" for c in cases]
        print(f"{flag_type}: {where}")
    print(f"clean: {manifest['clean_concessions']}")
    print(f"wrote {OUT_DIR}")


if __name__ == "__main__":
    main()
