"""The whole analysis: canonical inputs in, one :class:`Analysis` result out.

Data flow: concessions are projected once into an equal-area CRS centred on the field;
each period's raster is scanned once (:mod:`geo.scan`) for every concession's active,
observed and new active hectares and for footprints; production is summed into the
raster periods; then every flag type of :mod:`geo.flags` is computed from those tables.
Rasters are passed as objects with ``period``, ``grid`` and ``reader(grid)`` (see
``layers.activity.ActivityRaster``), so this module never opens a file.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import flags as flag_rules
from geo.crs import WEB_CRS, area_crs_for
from geo.errors import InputError
from geo.footprints import merge_footprints
from geo.inforce import in_force_table
from geo.overlay import area_ha, licence_overlaps, outside_parts, uncovered_by
from geo.periods import Period, containing_period, parse_period
from geo.scan import CHANNELS, scan_activity
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
    """
    concessions = concessions.reset_index(drop=True)
    area_crs = _area_crs(concessions)
    licences = concessions.to_crs(area_crs).geometry.to_numpy()
    licence_ha = area_ha(licences)
    periods = [r.period for r in rasters]
    in_force = in_force_table(concessions, periods)

    stats_parts, footprint_parts, regions = [], [], {}
    for index, raster in enumerate(rasters):
        label = raster.period.label
        force = in_force[label].to_numpy()
        uncovered = uncovered_by(np.where(force, None, licences), licences[force])
        polygons = np.concatenate([licences, uncovered])
        in_grid = gpd.GeoSeries(polygons, crs=area_crs).to_crs(raster.grid.crs).to_numpy()
        pieces = cut_rings(in_grid, raster.grid.transform, raster.grid.height, raster.grid.width)
        previous = rasters[index - 1] if index > 0 else None
        report = (lambda done, total, label=label: progress(f"scanning {label}", done, total)) if progress else None
        previous_reader = previous.reader(raster.grid) if previous is not None else nullcontext(None)
        with raster.reader() as read, previous_reader as read_previous:
            scan = scan_activity(
                read,
                transform=raster.grid.transform,
                crs=raster.grid.crs,
                height=raster.grid.height,
                width=raster.grid.width,
                pieces=pieces,
                area_crs=area_crs,
                threshold=settings.activity_threshold,
                min_patch_ha=settings.min_patch_ha,
                read_previous=read_previous,
                progress=report,
            )
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
        footprint_parts.append(_footprint_table(merged, raster.grid.crs, area_crs, licences, label))
        for i in np.flatnonzero(~force):
            regions[(concessions.at[i, "concession_id"], label)] = uncovered[i]

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
    inactive_regions = {key: active_parts.within(geom, key[1]) for key, geom in regions.items()}
    records = flag_rules.unlicensed_flags(_outside_table(footprints), settings)
    records += flag_rules.inactive_licence_flags(stats, inactive_regions, settings)
    for record in flag_rules.without_production_flags(stats, settings) + flag_rules.mismatch_flags(stats, settings):
        record["geometry"] = active_parts.within(licence_of[record["concession_id"]], record["period"])
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
    rows = []
    for i, j, shared in licence_overlaps(licences):
        together = [label for label in in_force.columns if in_force.at[i, label] and in_force.at[j, label]]
        if not together:
            continue
        first, second = sorted([i, j], key=lambda k: concessions.at[k, "concession_id"])
        rows.append(
            {
                "concession_id": concessions.at[first, "concession_id"],
                "other_concession_id": concessions.at[second, "concession_id"],
                "holder": concessions.at[first, "holder"],
                "shared_ha": float(area_ha(np.array([shared]))[0]),
                "first_period": together[0],
                "last_period": together[-1],
                "geometry": shared,
            }
        )
    columns = ["concession_id", "other_concession_id", "holder", "shared_ha", "first_period", "last_period", "geometry"]
    return pd.DataFrame(rows, columns=columns)
