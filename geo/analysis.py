"""The whole analysis: canonical inputs in, one :class:`Analysis` result out.

Data flow: concessions are projected once into an equal-area CRS centred on the field;
each period's raster is scanned once (:mod:`geo.scan`) for every concession's active,
observed and new active hectares and for footprints; production is summed into the
raster periods; then every flag type of :mod:`geo.flags` is computed from those tables.
Rasters are passed as objects with ``period``, ``grid`` and ``reader(grid)`` (see
``layers.activity.ActivityRaster``), so this module never opens a file.

Where the scans run
-------------------
By default each period's raster is scanned here, one after the other. With an
``executor`` (a :class:`concurrent.futures.Executor`; ``distributed.Client.get_executor()``
runs it on a Dask cluster) the scans are cut into tasks, one per band of about 32
million pixels of one period's raster (:func:`geo.scan.band_rows`), which run in
parallel. A task (:func:`scan_band_task`) receives plain data only: the raster's
description (its file path and grid, opened inside the task), the previous period's,
its rows, the polygons reaching those rows as WKB, and the thresholds; it returns the
strip sums and footprint parts of its band. Everything else stays here: preparing the
polygons, joining the bands (:func:`geo.scan.combine_bands`, exact to the last bit),
merging footprints, overlays, production and flags.

Limits. Bands split exactly because the scan is already strip by strip: the Green's
theorem sums of a strip do not depend on any other strip, and each strip is read with
its own halo for the patch-size rule. Footprints, though, are only polygonised per strip
on the workers; joining pieces that touch across strips and bands (and cutting their
parts outside the licences) happens here, per period, as do the overlays and flags, so
this process holds every period's footprints and its share of the time does not shrink
with more workers. A task's memory depends on the strip size (about four million
pixels), not on the raster's: measured 570 MB above an idle worker (GDAL's block
cache up to 256 MB of it). Workers must see the rasters at the same paths.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import flags as flag_rules
from geo.crs import WEB_CRS, area_crs_for
from geo.errors import InputError, raised_plainly
from geo.footprints import merge_footprints
from geo.inforce import in_force_table
from geo.overlay import area_ha, licence_overlaps, outside_parts, uncovered_by
from geo.periods import Period, containing_period, parse_period
from geo.scan import CHANNELS, BandScan, band_rows, combine_bands, scan_activity, scan_band
from geo.settings import Settings
from geo.zonal import cut_rings

Progress = Callable[[str, int, int], None]
STATS_COLUMNS = (
    "concession_id",
    "period",
    "holder",
    "status",
    "mineral",
    "in_force",
    "licence_ha",
    "observed_ha",
    "observed_fraction",
    "active_ha",
    "new_active_ha",
    "uncovered_active_ha",
    "carats",
    "value_usd",
)


@dataclass
class Analysis:
    """One analysis result: everything the exports and the dashboard need.

    Attributes
    ----------
    concessions:
        Canonical concessions in EPSG:4326 with ``licence_ha`` (equal-area).
    stats:
        One row per concession and period (:data:`STATS_COLUMNS`); areas in hectares,
        ``carats`` NaN where no report exists.
    footprints:
        Activity footprints in EPSG:4326: ``period``, ``footprint_id``, ``area_ha``,
        ``outside_ha`` (the part outside every licence).
    flags:
        Flags in EPSG:4326 with :data:`geo.flags.FLAG_COLUMNS`, sorted by score.
    national:
        National totals against the sum of concession reports per country and period.
    provenance:
        Inputs, settings, software versions and whether the data are synthetic.
    context:
        Optional places and boundaries (``name``, ``kind``, geometry; EPSG:4326) shown
        on the map for orientation, never analysed.
    """

    concessions: gpd.GeoDataFrame
    stats: pd.DataFrame
    footprints: gpd.GeoDataFrame
    flags: gpd.GeoDataFrame
    national: pd.DataFrame
    provenance: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    context: gpd.GeoDataFrame | None = None

    @property
    def periods(self) -> list[str]:
        """Period labels of the analysis, in order."""
        return sorted(self.stats["period"].unique(), key=parse_period) if len(self.stats) else []

    @property
    def synthetic(self) -> bool:
        """True when any input declared itself synthetic."""
        return bool(self.provenance.get("synthetic", False))


def run_analysis(
    concessions: gpd.GeoDataFrame,
    production: pd.DataFrame,
    national: pd.DataFrame | None,
    rasters: list,
    settings: Settings,
    progress: Progress | None = None,
    executor: concurrent.futures.Executor | None = None,
) -> Analysis:
    """Compute every statistic and flag of the design from canonical inputs.

    Parameters
    ----------
    concessions:
        Canonical concessions (``layers.concessions``) in their own CRS.
    production, national:
        Canonical tables (``layers.tables``); ``national`` may be None.
    rasters:
        Activity rasters sorted by period (``layers.activity``).
    settings:
        Thresholds (:class:`geo.settings.Settings`).
    progress:
        Called as ``progress(step, done, total)`` while rasters are scanned.
    executor:
        Run the raster scans as tasks on this executor (e.g. a Dask cluster's, see the
        module docstring); default: here, one period after the other. The result is the
        same to the last bit.
    """
    concessions = concessions.reset_index(drop=True)
    area_crs = _area_crs(concessions)
    licences = concessions.to_crs(area_crs).geometry.to_numpy()
    licence_ha = area_ha(licences)
    periods = [r.period for r in rasters]
    in_force = in_force_table(concessions, periods)

    prepared = _prepare_periods(rasters, in_force, licences, area_crs)
    if executor is None:
        scans = _scan_here(prepared, area_crs, settings, progress)
    else:
        scans = _scan_with(executor, prepared, area_crs, settings, progress)
    stats_parts, footprint_parts, regions = [], [], {}
    for period, scan in scans:
        label = period.raster.period.label
        force = period.force
        n = len(licences)
        sums = dict(zip(CHANNELS, scan.sums, strict=True))
        period_stats = pd.DataFrame(
            {
                "concession_id": concessions["concession_id"],
                "period": label,
                "in_force": force,
                "licence_ha": licence_ha,
                "observed_ha": sums["observed_ha"][:n],
                "active_ha": sums["active_ha"][:n],
                "new_active_ha": sums["new_active_ha"][:n],
                "uncovered_active_ha": np.where(force, 0.0, sums["active_ha"][n:]),
            }
        )
        stats_parts.append(period_stats)
        merged = merge_footprints(scan.footprint_parts)
        footprint_parts.append(_footprint_table(merged, period.raster.grid.crs, area_crs, licences, label))
        for i in np.flatnonzero(~force):
            regions[(concessions.at[i, "concession_id"], label)] = period.uncovered[i]

    stats = _with_production(pd.concat(stats_parts, ignore_index=True), concessions, production, periods)
    footprints = pd.concat(footprint_parts, ignore_index=True) if footprint_parts else _empty_footprints()
    footprints = gpd.GeoDataFrame(footprints, geometry="geometry", crs=area_crs)
    comparison = national_comparison(concessions, production, national)
    flags = _all_flags(stats, footprints, concessions, licences, regions, in_force, comparison, settings)

    concessions_out = concessions.to_crs(WEB_CRS)
    concessions_out["licence_ha"] = licence_ha
    return Analysis(
        concessions=concessions_out,
        stats=stats,
        footprints=footprints.drop(columns=["outside_geometry"]).to_crs(WEB_CRS),
        flags=flags.to_crs(WEB_CRS),
        national=comparison,
        provenance={"area_crs": area_crs.srs},
    )


@dataclass(frozen=True)
class _Period:
    """One period ready to scan: its raster, the previous one, and the polygons to integrate."""

    raster: Any
    previous: Any | None
    force: np.ndarray  # in force, per licence
    uncovered: np.ndarray  # per licence not in force: its part outside every licence in force
    polygons: np.ndarray  # the licences, then the uncovered parts, in the raster's CRS


def _prepare_periods(rasters: list, in_force: pd.DataFrame, licences: np.ndarray, area_crs) -> Iterator[_Period]:
    for index, raster in enumerate(rasters):
        force = in_force[raster.period.label].to_numpy()
        uncovered = uncovered_by(np.where(force, None, licences), licences[force])
        polygons = np.concatenate([licences, uncovered])
        in_grid = gpd.GeoSeries(polygons, crs=area_crs).to_crs(raster.grid.crs).to_numpy()
        yield _Period(raster, rasters[index - 1] if index > 0 else None, force, uncovered, in_grid)


def _scan_here(periods: Iterator[_Period], area_crs, settings: Settings, progress: Progress | None):
    """Scan each period in this process, in one pass over its raster: yields ``(period, PeriodScan)``."""
    for period in periods:
        raster, grid = period.raster, period.raster.grid
        pieces = cut_rings(period.polygons, grid.transform, grid.height, grid.width)
        label = raster.period.label
        report = (lambda done, total, label=label: progress(f"scanning {label}", done, total)) if progress else None
        previous_reader = period.previous.reader(grid) if period.previous is not None else nullcontext(None)
        with raster.reader() as read, previous_reader as read_previous:
            scan = scan_activity(
                read,
                grid=grid,
                pieces=pieces,
                area_crs=area_crs,
                threshold=settings.activity_threshold,
                min_patch_ha=settings.min_patch_ha,
                read_previous=read_previous,
                progress=report,
            )
        yield period, scan


@dataclass(frozen=True)
class ScanJob:
    """One scan task: a band of rows of one period's raster, described by plain data.

    ``raster`` and ``previous`` describe rasters by file path and grid (e.g.
    ``layers.activity.ActivityRaster``) and are opened inside the task, never before;
    ``polygon_wkb`` holds, in the raster's CRS, the polygons whose rings reach ``rows``
    and ``polygon_index`` their positions among all ``n_polygons``.
    """

    raster: Any
    previous: Any | None
    rows: tuple[int, int]
    polygon_index: np.ndarray
    polygon_wkb: np.ndarray
    n_polygons: int
    area_crs: Any
    threshold: float
    min_patch_ha: float


@raised_plainly
def scan_band_task(job: ScanJob) -> BandScan:
    """Run one :class:`ScanJob` (on a worker): open the rasters, scan the band, return its sums and footprint parts."""
    grid = job.raster.grid
    polygons = np.full(job.n_polygons, None, dtype=object)
    polygons[job.polygon_index] = shapely.from_wkb(job.polygon_wkb)
    pieces = cut_rings(polygons, grid.transform, grid.height, grid.width)
    previous_reader = job.previous.reader(grid) if job.previous is not None else nullcontext(None)
    with job.raster.reader() as read, previous_reader as read_previous:
        return scan_band(
            read,
            grid=grid,
            pieces=pieces,
            area_crs=job.area_crs,
            threshold=job.threshold,
            min_patch_ha=job.min_patch_ha,
            rows=job.rows,
            read_previous=read_previous,
        )


def scan_jobs(period: _Period, area_crs, settings: Settings) -> list[ScanJob]:
    """The tasks of one period: one per band of :func:`geo.scan.band_rows`, each with only the polygons it needs."""
    grid = period.raster.grid
    row_lo, row_hi = _pixel_rows(period.polygons, grid.transform)
    jobs = []
    for start, stop in band_rows(grid.height, grid.width):
        # A ring's pieces lie in rows floor(lowest y) .. floor(highest y); one row of slack each side.
        reach = np.flatnonzero((row_lo - 1 < stop) & (row_hi + 1 >= start))
        jobs.append(
            ScanJob(
                raster=period.raster,
                previous=period.previous,
                rows=(start, stop),
                polygon_index=reach,
                polygon_wkb=shapely.to_wkb(period.polygons[reach]),
                n_polygons=len(period.polygons),
                area_crs=area_crs,
                threshold=settings.activity_threshold,
                min_patch_ha=settings.min_patch_ha,
            )
        )
    return jobs


def _pixel_rows(polygons: np.ndarray, transform) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon's lowest and highest pixel row (NaN for a missing or empty one)."""
    present = ~(shapely.is_missing(polygons) | shapely.is_empty(polygons))
    bounds = np.full((len(polygons), 4), np.nan)
    bounds[present] = shapely.bounds(polygons[present])
    inverse = ~transform
    corners = [(bounds[:, i], bounds[:, j]) for i in (0, 2) for j in (1, 3)]
    rows = np.stack([inverse.d * x + inverse.e * y + inverse.f for x, y in corners])
    return np.floor(rows.min(axis=0)), np.floor(rows.max(axis=0))


def _scan_with(executor, periods: Iterator[_Period], area_crs, settings: Settings, progress: Progress | None):
    """Scan every period's bands as tasks on ``executor``: yields ``(period, PeriodScan)`` in period order.

    Each period's tasks are submitted as soon as it is prepared, so the workers start
    while later periods are prepared; a period is yielded as soon as its bands and those
    of every earlier period are done, so merging its footprints here overlaps with the
    scans still running.
    """
    submitted: list[tuple[_Period, list[concurrent.futures.Future]]] = []
    try:
        for period in periods:
            jobs = scan_jobs(period, area_crs, settings)
            submitted.append((period, [executor.submit(scan_band_task, job) for job in jobs]))
        everything = [future for _, futures in submitted for future in futures]
        ready = 0
        for done, _ in enumerate(concurrent.futures.as_completed(everything), start=1):
            if progress is not None:
                progress("scanning rasters", done, len(everything))
            while ready < len(submitted) and all(f.done() for f in submitted[ready][1]):
                period, futures = submitted[ready]
                bands = [future.result() for future in futures]
                yield period, combine_bands(bands, len(period.polygons), period.previous is not None)
                ready += 1
    finally:
        for _, futures in submitted:
            for future in futures:
                future.cancel()


def _area_crs(concessions: gpd.GeoDataFrame):
    present = concessions[~(concessions.geometry.is_empty | concessions.geometry.isna())]
    if present.empty:
        raise InputError("concessions: no concession has a geometry")
    west, south, east, north = present.to_crs(WEB_CRS).total_bounds
    return area_crs_for((west + east) / 2, (south + north) / 2)


def _footprint_table(merged: np.ndarray, grid_crs, area_crs, licences: np.ndarray, label: str) -> pd.DataFrame:
    geoms = gpd.GeoSeries(merged, crs=grid_crs).to_crs(area_crs).to_numpy()
    outside = outside_parts(geoms, licences) if len(geoms) else geoms
    return pd.DataFrame(
        {
            "period": label,
            "footprint_id": [f"{label}-{i + 1:05d}" for i in range(len(geoms))],
            "area_ha": area_ha(geoms),
            "outside_ha": area_ha(outside),
            "outside_geometry": outside,
            "geometry": geoms,
        }
    )


def _empty_footprints() -> pd.DataFrame:
    return pd.DataFrame(columns=["period", "footprint_id", "area_ha", "outside_ha", "outside_geometry", "geometry"])


def _with_production(
    stats: pd.DataFrame, concessions: gpd.GeoDataFrame, production: pd.DataFrame, periods: list[Period]
) -> pd.DataFrame:
    """Join carats (summed into the raster periods that contain them) onto ``stats``."""
    attributes = concessions[["concession_id", "holder", "status", "mineral", "granted", "expires", "status_date"]]
    stats = stats.merge(attributes, on="concession_id", how="left")
    stats["observed_fraction"] = np.where(stats["licence_ha"] > 0, stats["observed_ha"] / stats["licence_ha"], 0.0)
    if len(production) and periods:
        report_periods = {label: parse_period(label) for label in production["period"].unique()}
        for label, report_period in report_periods.items():
            if any(report_period.contains(p) and report_period != p for p in periods):
                raise InputError(
                    f"production: period {label} is longer than the activity periods "
                    f"({', '.join(p.label for p in periods[:3])}...); report production per activity period or finer"
                )
        target = {label: containing_period(p, periods) for label, p in report_periods.items()}
        joined = production.assign(period=production["period"].map(lambda x: target[x].label if target[x] else None))
        joined = joined.dropna(subset=["period"])
        summed = joined.groupby(["concession_id", "period"], as_index=False).agg(
            carats=("carats", "sum"), value_usd=("value_usd", lambda v: v.sum(min_count=1))
        )
        stats = stats.merge(summed, on=["concession_id", "period"], how="left")
    else:
        stats["carats"] = np.nan
        stats["value_usd"] = np.nan
    order = {p.label: i for i, p in enumerate(periods)}
    stats = stats.sort_values(["concession_id", "period"], key=lambda s: s.map(order) if s.name == "period" else s)
    return stats.reset_index(drop=True)


def national_comparison(
    concessions: pd.DataFrame, production: pd.DataFrame, national: pd.DataFrame | None
) -> pd.DataFrame:
    """National totals against the sum of concession reports, per country and period.

    Concession reports are summed into each national period that contains them. When
    concessions carry a ``country`` field only that country's concessions count;
    otherwise every concession counts toward every country listed (right for the usual
    one-country study). ``reports`` counts the summed rows; a period with none is left
    unjudged, since absent data are not a zero report.
    """
    columns = ["country", "period", "national_carats", "reported_carats", "reports", "difference_pct"]
    if national is None or national.empty:
        return pd.DataFrame(columns=columns)
    has_country = "country" in concessions and concessions["country"].notna().any()
    countries = concessions.set_index("concession_id")["country"] if has_country else None
    rows = []
    for entry in national.itertuples(index=False):
        period = parse_period(entry.period)
        inside = production["period"].map(lambda label, period=period: period.contains(parse_period(label)))
        reports = production[inside]
        if countries is not None:
            in_country = reports["concession_id"].map(countries).fillna("").str.lower() == entry.country.lower()
            reports = reports[in_country]
        reported = float(reports["carats"].sum())
        difference = 100 * (reported - entry.carats) / entry.carats if entry.carats > 0 and len(reports) else np.nan
        rows.append((entry.country, period.label, float(entry.carats), reported, len(reports), difference))
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(
        ["country", "period"], key=lambda s: s.map(lambda x: parse_period(x).start) if s.name == "period" else s
    ).reset_index(drop=True)


def _all_flags(stats, footprints, concessions, licences, regions, in_force, comparison, settings) -> gpd.GeoDataFrame:
    active_parts = _ActiveParts({p: g for p, g in footprints.groupby("period")})
    licence_of = dict(zip(concessions["concession_id"], licences, strict=True))
    clipped = active_parts.within_each([(geom, key[1]) for key, geom in regions.items()])
    inactive_regions = dict(zip(regions, clipped, strict=True))
    records = flag_rules.unlicensed_flags(_outside_table(footprints), settings)
    records += flag_rules.inactive_licence_flags(stats, inactive_regions, settings)
    active = flag_rules.without_production_flags(stats, settings) + flag_rules.mismatch_flags(stats, settings)
    clipped = active_parts.within_each([(licence_of[r["concession_id"]], r["period"]) for r in active])
    for record, geometry in zip(active, clipped, strict=True):
        record["geometry"] = geometry
        records.append(record)
    for record in flag_rules.without_activity_flags(stats, settings):
        record["geometry"] = licence_of[record["concession_id"]]  # nothing active to point at
        records.append(record)
    records += flag_rules.overlap_flags(_overlap_table(concessions, licences, in_force), settings)
    records += flag_rules.national_flags(comparison, settings)
    frame = pd.DataFrame(records, columns=[*flag_rules.FLAG_COLUMNS, "geometry"])
    frame = frame.sort_values(["score", "flag_id"], ascending=[False, True]).reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=footprints.crs)


class _ActiveParts:
    """Where activity is inside a region in a period: the footprints clipped to it."""

    def __init__(self, footprints_by_period: dict):
        self._by_period = {
            p: (g.geometry.to_numpy(), shapely.STRtree(g.geometry.to_numpy())) for p, g in footprints_by_period.items()
        }

    def within_each(self, pairs: list[tuple[Any, str]]) -> list:
        """:meth:`within` of each ``(region, period)``, in order, on a thread per core.

        Shapely releases the GIL in the union and the intersection, which are most of the
        time, and the trees are built when made, so querying them from threads is safe.
        (``benchmarks/bench_analyze.py`` times the whole analysis.)
        """
        if len(pairs) < 2:
            return [self.within(region, period) for region, period in pairs]
        with concurrent.futures.ThreadPoolExecutor(min(len(pairs), os.cpu_count() or 1)) as pool:
            return list(pool.map(lambda pair: self.within(*pair), pairs))

    def within(self, region, period):
        """Footprints of ``period`` inside ``region``; ``region`` itself when none."""
        if region is None or period not in self._by_period:
            return region
        geoms, tree = self._by_period[period]
        hits = tree.query(region, predicate="intersects")
        if not len(hits):
            return region
        clipped = shapely.intersection(shapely.union_all(geoms[hits]), region)
        return clipped if not clipped.is_empty else region


def _outside_table(footprints: gpd.GeoDataFrame) -> pd.DataFrame:
    outside = footprints[footprints["outside_ha"] > 0]
    if outside.empty:
        return pd.DataFrame(columns=["period", "area_ha", "footprint_ha", "lon", "lat", "geometry"])
    points = gpd.GeoSeries(shapely.point_on_surface(outside["outside_geometry"].to_numpy()), crs=footprints.crs)
    lonlat = points.to_crs(WEB_CRS)
    return pd.DataFrame(
        {
            "period": outside["period"].to_numpy(),
            "area_ha": outside["outside_ha"].to_numpy(),
            "footprint_ha": outside["area_ha"].to_numpy(),
            "lon": lonlat.x.to_numpy(),
            "lat": lonlat.y.to_numpy(),
            "geometry": outside["outside_geometry"].to_numpy(),
        }
    )


def _overlap_table(concessions, licences, in_force: pd.DataFrame) -> pd.DataFrame:
    """Licences that share ground and were in force together: one row per pair.

    The concession with the smaller id comes first (and gives ``holder``);
    ``first_period`` and ``last_period`` are the first and last columns of ``in_force``
    in which both were in force; pairs never in force together are left out. Rows of
    ``concessions`` and ``in_force`` are taken by position, as ``licences``. Worked on
    arrays of all pairs at once: a dense field has thousands of pairs, and per-pair
    ``.at`` lookups and ``area_ha`` calls cost more than finding the pairs.
    """
    columns = ["concession_id", "other_concession_id", "holder", "shared_ha", "first_period", "last_period", "geometry"]
    pairs = licence_overlaps(licences)
    if not pairs or in_force.shape[1] == 0:
        return pd.DataFrame(columns=columns)
    left = np.array([i for i, _, _ in pairs])
    right = np.array([j for _, j, _ in pairs])
    shared = np.array([geom for _, _, geom in pairs], dtype=object)
    together, first_period, last_period = _periods_together(in_force.to_numpy(dtype=bool), left, right)
    ids = concessions["concession_id"].to_numpy(dtype=object)
    swap = ids[right] < ids[left]  # as sorted() by id would order the pair: ties keep i first
    first = np.where(swap, right, left)[together]
    second = np.where(swap, left, right)[together]
    labels = in_force.columns.to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "concession_id": ids[first],
            "other_concession_id": ids[second],
            "holder": concessions["holder"].to_numpy(dtype=object)[first],
            "shared_ha": area_ha(shared[together]),
            "first_period": labels[first_period[together]],
            "last_period": labels[last_period[together]],
            "geometry": shared[together],
        },
        columns=columns,
    )


def _periods_together(force: np.ndarray, left: np.ndarray, right: np.ndarray):
    """Whether both licences of each pair were in force in some period, and the first and last such period.

    ``force`` is the licences x periods table of booleans; pair ``k`` is rows
    ``left[k]`` and ``right[k]``. Returns three arrays over the pairs: the flag, and the
    first and last column positions (meaningless where the flag is False).
    """
    both = force[left] & force[right]
    first = both.argmax(axis=1)
    last = both.shape[1] - 1 - both[:, ::-1].argmax(axis=1)
    return both.any(axis=1), first, last
