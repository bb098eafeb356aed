"""Settings: the design's defaults, TOML files and name=value overrides."""

from __future__ import annotations

import pytest

from geo.errors import SettingsError
from geo.settings import Settings, load_settings


def test_defaults_are_the_designs():
    s = Settings()
    assert (s.activity_threshold, s.unlicensed_min_ha, s.inactive_licence_min_ha) == (0.5, 1.0, 1.0)
    assert (s.no_production_min_active_ha, s.no_activity_max_active_ha) == (5.0, 0.5)
    assert (s.mismatch_factor, s.overlap_min_ha, s.national_tolerance) == (4.0, 0.1, 0.10)


def test_toml_then_overrides():
    s = load_settings("activity_threshold = 0.7\n[analysis]\nunlicensed_min_ha = 2\n", ["unlicensed_min_ha=3"])
    assert s.unlicensed_min_ha == 3.0
    assert s.activity_threshold == 0.5  # a top-level key is ignored once an [analysis] table exists


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("threshold = 0.5", [], "unknown setting 'threshold'"),
        (None, ["activity_threshold=high"], "must be a number"),
        (None, ["activity_threshold=1.5"], "activity_threshold must be in"),
        (None, ["unlicensed_min_ha=-1"], "must not be negative"),
        (None, ["unlicensed_min_ha"], "name=value"),
        ("[analysis\n", [], "not valid TOML"),
    ],
)
def test_bad_settings_are_refused(text, overrides, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(text, overrides)


def test_limits_share_the_settings_rules_and_must_be_positive():
    from layers.limits import InputLimits, load_limits

    assert load_limits("[limits]\nmax_features = 5\n", ["max_table_line_kb=2"]) == InputLimits(
        max_features=5, max_table_line_kb=2.0
    )
    assert isinstance(load_limits(None, ["max_features=7"]).max_features, int)
    with pytest.raises(SettingsError, match="unknown limit 'max_things'; known limits: max_feature_vertices"):
        load_limits(None, ["max_things=1"])
    with pytest.raises(SettingsError, match="--limit expects name=value"):
        load_limits(None, ["max_features"])
    with pytest.raises(SettingsError, match="limit max_features must be positive"):
        load_limits(None, ["max_features=0"])
    with pytest.raises(SettingsError, match="limit max_features must be a number"):
        load_limits("[limits]\nmax_features = 'many'\n")
