"""geo.composite: SCL cloud masking, NaN-aware medians, composites with missing dates, season pairing.

Data: hand-made arrays of a few pixels; every expected value is worked out in the test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from geo.composite import (
    EXCLUDED_SCL,
    clear_count,
    clear_mask,
    day_of_year_distance,
    mask_observations,
    median_composite,
    nan_max,
    nan_median,
    nan_min,
    season_matched,
)
from geo.spectral import (
    ScoreParameters,
    baseline_reference,
    disturbance_score,
    observation_indices,
    period_state,
    river_corridor,
)

NAN = np.nan


def test_scl_masking_excludes_exactly_the_cloud_shadow_snow_and_nodata_classes():
    scl = np.arange(12, dtype=np.uint8).reshape(1, 12)
    clear = clear_mask(scl)
    assert clear[0].tolist() == [c not in EXCLUDED_SCL for c in range(12)]
    assert [c for c in range(12) if clear[0, c]] == [2, 4, 5, 6, 7]


def test_cloud_buffer_grows_clouds_and_shadows_but_not_nodata():
    scl = np.full((7, 7), 4, dtype=np.uint8)
    scl[3, 3] = 9  # one cloud pixel
    scl[0, 6] = 0  # one no-data pixel
    clear = clear_mask(scl, buffer_px=1)
    assert not clear[2:5, 2:5].any()  # the cloud and its 8 neighbours
    assert clear[1, 3] and clear[3, 1]  # two pixels away: clear
    assert not clear[0, 6] and clear[0, 5] and clear[1, 6]  # no data is masked but not grown


def test_buffer_works_on_a_stack_of_dates_without_mixing_dates():
    scl = np.full((2, 5, 5), 4, dtype=np.uint8)
    scl[0, 2, 2] = 3  # a shadow pixel on the first date only
    clear = clear_mask(scl, buffer_px=1)
    assert clear[0].sum() == 25 - 9
    assert clear[1].all()


def test_masked_observations_are_nan_in_every_band_when_one_band_has_no_data():
    bands = np.array([[[0.1, 0.2]], [[0.3, NAN]]], dtype=np.float32)  # (band, row, column)
    clear = np.array([[True, True]])
    masked = mask_observations(bands, clear)
    assert masked[:, 0, 0].tolist() == pytest.approx([0.1, 0.3])
    assert np.isnan(masked[:, 0, 1]).all()  # band 2 missing -> the whole observation goes


def test_nan_median_matches_hand_computed_values_and_warns_about_nothing():
    stack = np.array(
        [
            [1.0, 5.0, NAN, 2.0],
            [3.0, NAN, NAN, 8.0],
            [2.0, 7.0, NAN, 4.0],
            [NAN, NAN, NAN, 6.0],
        ],
        dtype=np.float32,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        median = nan_median(stack)
    assert median[0] == 2.0  # of 1, 3, 2
    assert median[1] == 6.0  # of 5, 7
    assert np.isnan(median[2])  # never seen
    assert median[3] == 5.0  # of 2, 8, 4, 6
    np.testing.assert_array_equal(median[[0, 1, 3]], np.nanmedian(stack[:, [0, 1, 3]], axis=0))


def test_nan_min_max_and_count_skip_nan():
    stack = np.array([[1.0, NAN], [-2.0, NAN], [5.0, NAN]], dtype=np.float32)
    assert nan_min(stack)[0] == -2.0 and np.isnan(nan_min(stack)[1])
    assert nan_max(stack)[0] == 5.0 and np.isnan(nan_max(stack)[1])
    assert clear_count(stack).tolist() == [3, 0]


def test_composite_of_a_period_with_missing_dates():
    # three dates, 1 band, 1 x 3 pixels: date 2 is absent on the left (outside the swath), date 3 entirely
    dates = np.array(
        [
            [[[0.10, 0.20, 0.30]]],
            [[[NAN, 0.40, 0.50]]],
            [[[NAN, NAN, NAN]]],
        ],
        dtype=np.float32,
    )
    composite = median_composite(dates)
    assert composite.shape == (1, 1, 3)
    assert composite[0, 0].tolist() == pytest.approx([0.10, 0.30, 0.40])
    # the absent date changes nothing: same as compositing the two dates alone
    np.testing.assert_array_equal(composite, median_composite(dates[:2]))


def test_composite_of_no_date_at_all_is_nan_not_zero():
    composite = median_composite(np.zeros((0, 5, 2, 3), dtype=np.float32))
    assert composite.shape == (5, 2, 3)
    assert np.isnan(composite).all()


def test_day_of_year_distance_wraps_around_new_year():
    assert day_of_year_distance(5, np.array([360, 20, 185])).tolist() == [10, 15, 180]


def test_season_pairs_use_the_nearest_clear_date_within_the_window():
    # one pixel, one band; baseline dates on days 20 (cloudy), 70 and 230; the period on days 25 and 228
    reference = np.array([[[[NAN]]], [[[0.5]]], [[[0.2]]]], dtype=np.float32)
    stack = np.array([[[[0.9]]], [[[0.1]]]], dtype=np.float32)
    paired, partners = season_matched(stack, np.array([25, 228]), reference, np.array([20, 70, 230]), 60)
    assert partners[:, 0, 0, 0].tolist() == pytest.approx([0.5, 0.2])  # day 20 cloudy -> day 70 (45 days)
    assert paired[:, 0, 0, 0].tolist() == pytest.approx([0.9, 0.1])
    paired, partners = season_matched(stack, np.array([25, 228]), reference, np.array([20, 70, 230]), 30)
    assert np.isnan(partners[0, 0, 0, 0]) and np.isnan(paired[0, 0, 0, 0])  # 45 days is out of a 30-day window
    assert partners[1, 0, 0, 0] == pytest.approx(0.2)


def _stack_of(*spectra: tuple[float, ...]) -> np.ndarray:
    """A ``(date, band, 1, 1)`` stack of one pixel from spectra of the bands B02 B03 B04 B08 B11 (None: cloud)."""
    rows = [np.full(5, np.nan) if s is None else np.array(s) for s in spectra]
    return np.array(rows, dtype=np.float32)[:, :, None, None]


VEGETATION = (0.03, 0.06, 0.04, 0.40, 0.20)
PIT = (0.11, 0.14, 0.19, 0.24, 0.33)


def test_a_cloud_over_a_pit_is_nodata_not_no_activity():
    """The period's only dates are cloudy over the pixel: NaN ("not seen"), never 0."""
    params = ScoreParameters(filter_px=0)
    base = _stack_of(VEGETATION, VEGETATION)
    days = np.array([30, 200])
    reference = baseline_reference(base)
    corridor = river_corridor(reference.water_any, 0)

    def score(stack: np.ndarray) -> float:
        pairs = season_matched(observation_indices(stack), days, observation_indices(base), days, 60)
        return float(disturbance_score(period_state(stack, *pairs), reference, corridor, params)[0, 0])

    assert np.isnan(score(_stack_of(None, None)))  # masked by the SCL on both dates
    assert score(_stack_of(PIT, PIT)) >= 0.5  # the same pit, seen, is active
    assert score(_stack_of(None, PIT)) >= 0.5  # seen once is enough


def sorted_nan_median(stack: np.ndarray) -> np.ndarray:
    """The median as it was computed before the compiled kernel: one sort along the dates, NaN last."""
    values = np.asarray(stack, dtype=np.float32)
    ordered = np.sort(values, axis=0)
    count = np.isfinite(values).sum(axis=0)
    low = np.expand_dims(np.maximum(count - 1, 0) // 2, 0)
    high = np.expand_dims(count // 2, 0)
    median = (np.take_along_axis(ordered, low, 0)[0] + np.take_along_axis(ordered, high, 0)[0]) * np.float32(0.5)
    return np.where(count > 0, median, np.float32(np.nan))


@pytest.mark.parametrize("dates", [1, 2, 5, 8, 15])
def test_nan_median_is_bit_identical_to_the_sorted_median(dates):
    rng = np.random.default_rng(dates)
    stack = rng.normal(0.2, 0.3, (dates, 2, 37, 41)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.3] = NAN
    stack[:, :, :3] = NAN  # never seen
    stack[:, :, 5] = np.float32(0.25)  # ties
    np.testing.assert_array_equal(nan_median(stack), sorted_nan_median(stack))


@pytest.mark.parametrize("buffer_px", [0, 1, 2, 4, 45])  # 45: wider than the array
def test_clear_mask_of_uint8_classes_equals_isin_and_a_maximum_filter(buffer_px):
    from scipy import ndimage

    from geo.composite import CLOUDY_SCL

    rng = np.random.default_rng(buffer_px)
    scl = rng.choice(np.arange(12, dtype=np.uint8), size=(3, 40, 33), p=[0.02] * 6 + [0.78] + [0.02] * 5)
    expected = ~np.isin(scl, EXCLUDED_SCL)
    if buffer_px:
        cloudy = np.isin(scl, CLOUDY_SCL)
        expected &= ~ndimage.maximum_filter(cloudy, size=(1, 2 * buffer_px + 1, 2 * buffer_px + 1), mode="constant")
    np.testing.assert_array_equal(clear_mask(scl, buffer_px=buffer_px), expected)
    np.testing.assert_array_equal(clear_mask(scl.astype(np.int64), buffer_px=buffer_px), expected)  # isin path
    np.testing.assert_array_equal(clear_mask(scl[1], buffer_px=buffer_px), expected[1])
    np.testing.assert_array_equal(clear_mask(scl[:, 5:5], buffer_px=buffer_px), expected[:, 5:5])  # no rows


def test_dilate_square_equals_a_maximum_filter_and_keeps_dates_apart():
    from scipy import ndimage

    from geo.composite import dilate_square

    rng = np.random.default_rng(7)
    mask = rng.random((2, 25, 30)) < 0.02
    for radius in (1, 3, 12, 40):  # 40: wider than the array
        size = (1, 2 * radius + 1, 2 * radius + 1)
        expected = ndimage.maximum_filter(mask, size=size, mode="constant", cval=False)
        np.testing.assert_array_equal(dilate_square(mask, radius), expected)
