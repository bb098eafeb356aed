"""The discrepancy flags: one vocabulary for code, files and the dashboard.

Each ``*_flags`` function takes plain tables and returns flag records (dicts); flags
about one concession-period get their geometry from :mod:`geo.analysis` (the active
ground inside the licence, so a field team is sent to the digging). Every record has a stable
``flag_id`` (a hash of the flag type, period and what it is about, so the same inputs
give the same id whatever their row order), a ``severity`` and ``score`` for ranking,
the numbers behind it, and a one-sentence ``reason`` quoting them.

Score: ``0.2 + 0.8 * (1 - exp(-excess / scale))`` where ``excess`` is how far past its
threshold the finding is, in the finding's own unit and scale (see each function),
so every flag scores at least 0.2 and big findings approach 1. Severity: high from
0.7, medium from 0.45, low below.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

from geo.settings import Settings

FLAG_TYPES = (
    "unlicensed_activity",
    "activity_in_inactive_licence",
    "activity_without_production",
    "production_without_activity",
    "production_activity_mismatch",
    "licence_overlap",
    "national_total_mismatch",
)
FLAG_LABELS = {
    "unlicensed_activity": "Activity outside every licence",
    "activity_in_inactive_licence": "Activity in a licence not in force",
    "activity_without_production": "Activity but no production reported",
    "production_without_activity": "Production reported without activity",
    "production_activity_mismatch": "Production out of line with activity",
    "licence_overlap": "Overlapping licences",
    "national_total_mismatch": "Concession reports differ from national total",
}
SEVERITIES = ("high", "medium", "low")
FLAG_COLUMNS = (
    "flag_id",
    "flag_type",
    "severity",
    "score",
    "period",
    "concession_id",
    "other_concession_id",
    "holder",
    "country",
    "area_ha",
    "active_ha",
    "carats",
    "carats_per_active_ha",
    "median_carats_per_active_ha",
    "national_carats",
    "reported_carats",
    "difference_pct",
    "reason",
)
SCORE_FLOOR = 0.2


def flag_id(flag_type: str, period: str, key: str) -> str:
    """Stable id: the same flag type, period and subject give the same id."""
    digest = hashlib.sha256(f"{flag_type}|{period}|{key}".encode()).hexdigest()
    return f"mw-{digest[:16]}"


def score_for(excess: float, scale: float) -> float:
    """Ranking score in [0.2, 1) for a finding ``excess`` past its threshold."""
    excess = max(float(excess), 0.0)
    return round(SCORE_FLOOR + (1 - SCORE_FLOOR) * (1 - math.exp(-excess / scale)), 4)


def severity_for(score: float) -> str:
    """``high`` from 0.7, ``medium`` from 0.45, else ``low``."""
    return "high" if score >= 0.7 else "medium" if score >= 0.45 else "low"


def make_flag(flag_type: str, period: str, key: str, score: float, reason: str, geometry=None, **numbers) -> dict:
    """One flag record with every column of :data:`FLAG_COLUMNS` (missing ones empty)."""
    record = {column: None for column in FLAG_COLUMNS}
    record.update(
        flag_id=flag_id(flag_type, period, key),
        flag_type=flag_type,
        severity=severity_for(score),
        score=score,
        period=period,
        reason=reason,
        geometry=geometry,
    )
    record.update(numbers)
    return record


def unlicensed_flags(outside: pd.DataFrame, settings: Settings) -> list[dict]:
    """``unlicensed_activity``: a footprint with enough area outside every licence.

    ``outside`` has columns ``period``, ``area_ha`` (of the outside part),
    ``footprint_ha``, ``lon``, ``lat`` (of the outside part's representative point, for
    the id) and ``geometry`` (the outside part). Scale: 10 ha.
    """
    flags = []
    for row in outside.itertuples(index=False):
        if row.area_ha < settings.unlicensed_min_ha:
            continue
        reason = (
            f"{row.area_ha:,.1f} ha of active ground in {row.period} lies outside every licensed "
            f"concession (part of a {row.footprint_ha:,.1f} ha activity footprint)."
        )
        flags.append(
            make_flag(
                "unlicensed_activity",
                row.period,
                f"{row.lon:.4f},{row.lat:.4f}",
                score_for(row.area_ha - settings.unlicensed_min_ha, 10.0),
                reason,
                row.geometry,
                area_ha=row.area_ha,
                active_ha=row.area_ha,
            )
        )
    return flags


def inactive_licence_flags(stats: pd.DataFrame, regions: dict, settings: Settings) -> list[dict]:
    """``activity_in_inactive_licence``: active ground where no licence is in force.

    ``stats`` rows with ``in_force`` False carry ``uncovered_active_ha``: the active
    area inside the licence but outside every in-force licence. ``regions`` maps
    ``(concession_id, period)`` to the geometry to draw. Scale: 10 ha.
    """
    flags = []
    candidates = stats[~stats["in_force"] & (stats["uncovered_active_ha"] >= settings.inactive_licence_min_ha)]
    for row in candidates.itertuples(index=False):
        why = _not_in_force_reason(row)
        reason = (
            f"{row.uncovered_active_ha:,.1f} ha active in {row.period} inside concession {row.concession_id}, "
            f"which was not in force then ({why})."
        )
        flags.append(
            make_flag(
                "activity_in_inactive_licence",
                row.period,
                row.concession_id,
                score_for(row.uncovered_active_ha - settings.inactive_licence_min_ha, 10.0),
                reason,
                regions.get((row.concession_id, row.period)),
                concession_id=row.concession_id,
                holder=row.holder,
                area_ha=row.uncovered_active_ha,
                active_ha=row.active_ha,
                carats=_or_none(row.carats),
            )
        )
    return flags


def _not_in_force_reason(row) -> str:
    status = row.status
    if status == "application":
        return "an application, never a licence to mine"
    if status in ("suspended", "revoked"):
        when = f" from {row.status_date:%Y-%m-%d}" if pd.notna(row.status_date) else ""
        return f"{status}{when}"
    if status == "expired":
        return f"expired {row.expires:%Y-%m-%d}" if pd.notna(row.expires) else "expired"
    granted = f"granted {row.granted:%Y-%m-%d}" if pd.notna(row.granted) else "not yet granted"
    expires = f", expires {row.expires:%Y-%m-%d}" if pd.notna(row.expires) else ""
    return f"{granted}{expires}"


def without_production_flags(stats: pd.DataFrame, settings: Settings) -> list[dict]:
    """``activity_without_production``: in force, active, and no carats reported.

    Scale: 20 ha past the threshold.
    """
    flags = []
    no_carats = stats["carats"].fillna(0) <= 0
    candidates = stats[stats["in_force"] & no_carats & (stats["active_ha"] >= settings.no_production_min_active_ha)]
    for row in candidates.itertuples(index=False):
        what = "no production record" if pd.isna(row.carats) else "0 carats reported"
        reason = (
            f"{row.active_ha:,.1f} ha of active ground in {row.period} and {what} for concession {row.concession_id}."
        )
        flags.append(
            make_flag(
                "activity_without_production",
                row.period,
                row.concession_id,
                score_for(row.active_ha - settings.no_production_min_active_ha, 20.0),
                reason,
                concession_id=row.concession_id,
                holder=row.holder,
                area_ha=row.active_ha,
                active_ha=row.active_ha,
                carats=_or_none(row.carats),
            )
        )
    return flags


def without_activity_flags(stats: pd.DataFrame, settings: Settings) -> list[dict]:
    """``production_without_activity``: carats reported, almost no active ground.

    Only for concession-periods seen on at least ``min_observed_fraction`` of their area
    (a cloud is not evidence of no digging). Scale: the median reported carats.
    """
    reported = stats[stats["carats"].fillna(0) > 0]
    median_carats = float(reported["carats"].median()) if len(reported) else 1.0
    candidates = reported[
        (reported["active_ha"] < settings.no_activity_max_active_ha)
        & (reported["observed_fraction"] >= settings.min_observed_fraction)
    ]
    flags = []
    for row in candidates.itertuples(index=False):
        reason = (
            f"{row.carats:,.0f} carats reported in {row.period} for concession {row.concession_id}, "
            f"but only {row.active_ha:,.2f} ha of active ground was seen there."
        )
        flags.append(
            make_flag(
                "production_without_activity",
                row.period,
                row.concession_id,
                score_for(row.carats, max(median_carats, 1.0)),
                reason,
                concession_id=row.concession_id,
                holder=row.holder,
                area_ha=row.licence_ha,
                active_ha=row.active_ha,
                carats=row.carats,
            )
        )
    return flags


def mismatch_flags(stats: pd.DataFrame, settings: Settings) -> list[dict]:
    """``production_activity_mismatch``: carats per active ha far from the mineral's median.

    Compared within a mineral, over concession-periods with carats > 0 and at least
    ``no_activity_max_active_ha`` active. Scale: one factor of ``mismatch_factor`` in
    log terms past the band.
    """
    both = stats[(stats["carats"].fillna(0) > 0) & (stats["active_ha"] >= settings.no_activity_max_active_ha)].copy()
    both["ratio"] = both["carats"] / both["active_ha"]
    band = math.log(settings.mismatch_factor)
    flags = []
    for _, group in both.groupby("mineral", sort=True):
        if len(group) < settings.mismatch_min_group_size:
            continue
        median = float(group["ratio"].median())
        for row in group.itertuples(index=False):
            deviation = abs(math.log(row.ratio / median))
            if deviation <= band:
                continue
            direction = "above" if row.ratio > median else "below"
            factor = row.ratio / median if row.ratio > median else median / row.ratio
            reason = (
                f"{row.carats:,.0f} carats from {row.active_ha:,.1f} active ha in {row.period} is "
                f"{row.ratio:,.0f} carats/ha, {factor:,.1f}x {direction} the {row.mineral} median of {median:,.0f}."
            )
            flags.append(
                make_flag(
                    "production_activity_mismatch",
                    row.period,
                    row.concession_id,
                    score_for(deviation - band, band),
                    reason,
                    concession_id=row.concession_id,
                    holder=row.holder,
                    area_ha=row.active_ha,
                    active_ha=row.active_ha,
                    carats=row.carats,
                    carats_per_active_ha=row.ratio,
                    median_carats_per_active_ha=median,
                )
            )
    return flags


def overlap_flags(overlaps: pd.DataFrame, settings: Settings) -> list[dict]:
    """``licence_overlap``: two licences in force together that share ground.

    ``overlaps`` has ``concession_id``, ``other_concession_id``, ``holder``,
    ``other_holder``, ``shared_ha``, ``first_period``, ``last_period`` and ``geometry``.
    Scale: 10 ha.
    """
    flags = []
    for row in overlaps[overlaps["shared_ha"] >= settings.overlap_min_ha].itertuples(index=False):
        span = row.first_period if row.first_period == row.last_period else f"{row.first_period}-{row.last_period}"
        reason = (
            f"Concessions {row.concession_id} and {row.other_concession_id} share {row.shared_ha:,.1f} ha "
            f"and were both in force in {span}."
        )
        flags.append(
            make_flag(
                "licence_overlap",
                row.first_period,
                f"{row.concession_id}|{row.other_concession_id}",
                score_for(row.shared_ha - settings.overlap_min_ha, 10.0),
                reason,
                row.geometry,
                concession_id=row.concession_id,
                other_concession_id=row.other_concession_id,
                holder=row.holder,
                area_ha=row.shared_ha,
            )
        )
    return flags


def national_flags(comparison: pd.DataFrame, settings: Settings) -> list[dict]:
    """``national_total_mismatch``: concession reports against a national total.

    ``comparison`` has ``country``, ``period``, ``national_carats``,
    ``reported_carats`` and ``reports`` (rows summed). Scale: 25 % past the tolerance.
    """
    flags = []
    for row in comparison.itertuples(index=False):
        if row.reports == 0 or row.national_carats <= 0:
            continue
        difference = (row.reported_carats - row.national_carats) / row.national_carats
        if abs(difference) <= settings.national_tolerance:
            continue
        reason = (
            f"Concession reports for {row.country} in {row.period} add up to {row.reported_carats:,.0f} carats, "
            f"{abs(difference):.0%} {'above' if difference > 0 else 'below'} the national total of "
            f"{row.national_carats:,.0f}."
        )
        flags.append(
            make_flag(
                "national_total_mismatch",
                row.period,
                row.country,
                score_for(abs(difference) - settings.national_tolerance, 0.25),
                reason,
                None,
                country=row.country,
                carats=row.reported_carats,
                national_carats=row.national_carats,
                reported_carats=row.reported_carats,
                difference_pct=round(100 * difference, 2),
            )
        )
    return flags


def _or_none(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value
