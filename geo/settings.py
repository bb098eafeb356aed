"""Analysis settings: the design's defaults, a TOML file, and ``--set name=value``.

Every threshold of the flag vocabulary lives here under a name with its unit, so a
reviewer can read in one place what "too much" means and change it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields

from geo.errors import SettingsError


@dataclass(frozen=True)
class Settings:
    """Thresholds of the analysis (defaults from DESIGN.md unless noted).

    Attributes
    ----------
    activity_threshold:
        A pixel is active when its disturbance score is at least this (0..1).
    min_patch_ha:
        Active patches (8-connected) smaller than this are speckle and ignored
        (minewatch's default, not the design's: 0.1 ha is ten 10 m pixels).
    min_observed_fraction:
        A concession-period whose concession is seen (not nodata) on less than this
        share of its area is "not observed": no flag that relies on the absence of
        activity is raised for it.
    unlicensed_min_ha, inactive_licence_min_ha, no_production_min_active_ha,
    no_activity_max_active_ha, overlap_min_ha:
        Area thresholds of the flag types, in hectares.
    mismatch_factor:
        Carats per active hectare outside [median / f, median * f] of the same mineral
        is a ``production_activity_mismatch``.
    mismatch_min_group_size:
        The median needs at least this many concession-periods of a mineral.
    national_tolerance:
        Relative difference between concession reports and a national total above
        which ``national_total_mismatch`` is raised (0.10 = 10 %).
    """

    activity_threshold: float = 0.5
    min_patch_ha: float = 0.1
    min_observed_fraction: float = 0.5
    unlicensed_min_ha: float = 1.0
    inactive_licence_min_ha: float = 1.0
    no_production_min_active_ha: float = 5.0
    no_activity_max_active_ha: float = 0.5
    mismatch_factor: float = 4.0
    mismatch_min_group_size: int = 3
    overlap_min_ha: float = 0.1
    national_tolerance: float = 0.10

    def validate(self) -> Settings:
        """Return self, or raise :class:`SettingsError` for an out-of-range value."""
        if not 0.0 < self.activity_threshold <= 1.0:
            raise SettingsError("activity_threshold must be in (0, 1]")
        if not 0.0 <= self.min_observed_fraction <= 1.0:
            raise SettingsError("min_observed_fraction must be in [0, 1]")
        if self.mismatch_factor <= 1.0:
            raise SettingsError("mismatch_factor must be greater than 1")
        for field in fields(self):
            if getattr(self, field.name) < 0:
                raise SettingsError(f"{field.name} must not be negative")
        return self

    def to_dict(self) -> dict:
        """The settings as a plain dict (for provenance.json)."""
        return dataclasses.asdict(self)


def numbers_from(
    kind, table: dict, overrides: list[str], *, noun: str = "setting", option: str = "--set"
) -> dict[str, float | int]:
    """Numeric fields of the dataclass ``kind``: a TOML table's, then ``name=value`` overrides'.

    Unknown names and non-numbers raise :class:`SettingsError` naming the ``noun`` and,
    for a malformed override, the ``option``. Shared by the analysis settings and
    :mod:`layers.limits`.
    """
    types = {f.name: f.type for f in fields(kind)}

    def coerce(name: str, value: object) -> float | int:
        if name not in types:
            raise SettingsError(f"unknown {noun} {name!r}; known {noun}s: {', '.join(sorted(types))}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{noun} {name} must be a number, not {value!r}") from None
        return int(number) if types[name] in ("int", int) else number

    values = {name: coerce(name, value) for name, value in table.items()}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(f"{option} expects name=value, got {item!r}")
        values[name.strip()] = coerce(name.strip(), value.strip())
    return values


def parse_toml(toml_text: str | None) -> dict:
    """The settings file as a dict (empty without one)."""
    try:
        return tomllib.loads(toml_text) if toml_text else {}
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file is not valid TOML: {exc}") from None


def load_settings(toml_text: str | None = None, overrides: list[str] | None = None) -> Settings:
    """Settings from the defaults, then a TOML document, then ``name=value`` overrides.

    The TOML may hold the names at top level or under an ``[analysis]`` table.
    """
    document = parse_toml(toml_text)
    # Names at top level or under [analysis]; [limits] is read by layers.limits.
    table = document.get("analysis", {k: v for k, v in document.items() if k != "limits"})
    return Settings(**numbers_from(Settings, table, overrides or [])).validate()
