"""geo.spectral: index formulas against hand-computed pixels, and the disturbance score's rules.

Data: reflectances of a few pixels written out in the tests (typical library spectra,
bands B02 B03 B04 B08 B11); each expected index is computed by hand in a comment.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

from geo.composite import season_matched
from geo.spectral import (
    BARE,
    LAND,
    POND,
    RIVER,
    UNSEEN,
    ScoreParameters,
    baseline_reference,
    bsi,
    disturbance_score,
    grow_into_workings,
    mndwi,
    nan_median_filter,
    ndvi,
    ndwi,
    observation_indices,
    open_water,
    period_state,
    pixel_changes,
    river_corridor,
)

GREEN_VEG = (0.03, 0.06, 0.035, 0.38, 0.19)
DRY_VEG = (0.055, 0.08, 0.095, 0.24, 0.30)
PIT = (0.11, 0.14, 0.19, 0.24, 0.33)
SAND = (0.15, 0.19, 0.23, 0.28, 0.36)
WATER = (0.05, 0.065, 0.045, 0.03, 0.012)
POND_WATER = (0.08, 0.11, 0.11, 0.07, 0.03)


def test_ndvi_of_hand_computed_pixels():
    # (0.5 - 0.1) / (0.5 + 0.1) = 0.6667; (0.03 - 0.05) / 0.08 = -0.25
    np.testing.assert_allclose(ndvi(np.array([0.5, 0.03]), np.array([0.1, 0.05])), [0.4 / 0.6, -0.25], rtol=1e-6)


def test_bsi_of_hand_computed_pixels():
    # ((0.33 + 0.19) - (0.24 + 0.11)) / ((0.33 + 0.19) + (0.24 + 0.11)) = 0.17 / 0.87 = 0.19540
    assert float(bsi(0.11, 0.19, 0.24, 0.33)) == pytest.approx(0.17 / 0.87)
    # vegetation: ((0.19 + 0.035) - (0.38 + 0.03)) / (0.225 + 0.41) = -0.185 / 0.635
    assert float(bsi(0.03, 0.035, 0.38, 0.19)) == pytest.approx(-0.185 / 0.635)


def test_water_indices_of_hand_computed_pixels():
    # MNDWI water: (0.065 - 0.012) / 0.077 = 0.6883; soil: (0.11 - 0.29) / 0.40 = -0.45
    np.testing.assert_allclose(mndwi(np.array([0.065, 0.11]), np.array([0.012, 0.29])), [0.053 / 0.077, -0.45])
    # NDWI water: (0.065 - 0.03) / 0.095 = 0.3684
    assert float(ndwi(0.065, 0.03)) == pytest.approx(0.035 / 0.095)


def test_zero_denominator_gives_nan_not_infinity_or_warning():
    with np.errstate(all="raise"):
        result = ndvi(np.array([0.0, 0.2]), np.array([0.0, 0.2]))
    assert np.isnan(result[0]) and result[1] == 0.0


def test_indices_keep_xarray_coordinates():
    nir = xr.DataArray(np.array([[0.5, 0.0]]), dims=("y", "x"), coords={"x": [10.0, 20.0]})
    red = xr.DataArray(np.array([[0.1, 0.0]]), dims=("y", "x"), coords={"x": [10.0, 20.0]})
    result = ndvi(nir, red)
    assert isinstance(result, xr.DataArray)
    assert result.x.values.tolist() == [10.0, 20.0]
    assert float(result[0, 0]) == pytest.approx(2 / 3) and np.isnan(float(result[0, 1]))


def test_open_water_catches_narrow_water_that_mndwi_misses():
    # a river edge whose 20 m B11 is half bank: MNDWI (0.065-0.15)/(0.215) < 0, NDWI (0.065-0.03)/0.095 > 0
    assert not bool(mndwi(0.065, 0.15) > 0)
    assert bool(open_water(0.065, 0.03, 0.15))
    assert not bool(open_water(*np.array(DRY_VEG)[[1, 3, 4]]))


def pixels(*spectra) -> np.ndarray:
    """``(band, row, column)`` of one row of pixels from spectra (None: no data)."""
    columns = [np.full(5, np.nan) if s is None else np.asarray(s) for s in spectra]
    return np.array(columns, dtype=np.float32).T[:, None, :]


def score_of(baseline_dates: list, period_dates: list, corridor_px: int = 0):
    """Score one row of pixels: dates are lists of per-pixel spectra; baseline and period share days."""
    params = ScoreParameters()
    days = np.array([20, 70, 150, 230, 300][: len(baseline_dates)])
    base = np.stack([pixels(*d) for d in baseline_dates])
    stack = np.stack([pixels(*d) for d in period_dates])
    reference = baseline_reference(base, params)
    corridor = river_corridor(reference.water_any, corridor_px)
    window = params.season_window_days
    paired, partners = season_matched(
        observation_indices(stack), days[: len(period_dates)], observation_indices(base), days, window
    )
    state = period_state(stack, paired, partners, params)
    return disturbance_score(state, reference, corridor, ScoreParameters(filter_px=0)), state, reference, corridor


def test_vegetation_turned_to_a_pit_scores_high_and_unchanged_vegetation_zero():
    wet_and_dry = [[GREEN_VEG, GREEN_VEG], [DRY_VEG, DRY_VEG]]
    now = [[PIT, GREEN_VEG], [PIT, DRY_VEG]]
    score, *_ = score_of(wet_and_dry, now)
    assert score[0, 0] >= 0.9
    assert score[0, 1] == 0.0


def test_seasonal_greening_is_not_loss_even_when_clouds_hid_the_wet_season():
    # baseline saw wet and dry dates; this period's wet date is cloudy over pixel 0: only its dry state is left
    baseline = [[GREEN_VEG, GREEN_VEG], [DRY_VEG, DRY_VEG]]
    now = [[None, GREEN_VEG], [DRY_VEG, DRY_VEG]]
    score, state, *_ = score_of(baseline, now)
    assert score[0].tolist() == [0.0, 0.0]
    # a naive comparison of composites would have seen a loss of NDVI on pixel 0
    assert ndvi(0.38, 0.035) - state.ndvi[0, 0] > 0.3


def test_without_a_partner_in_season_the_cautious_comparison_still_ignores_greening():
    params = ScoreParameters(season_window_days=10)  # days 20 and 70: no pair within 10 days of 230 or 300
    days = np.array([20, 70])
    base = np.stack([pixels(GREEN_VEG, GREEN_VEG), pixels(DRY_VEG, DRY_VEG)])
    stack = np.stack([pixels(DRY_VEG, PIT), pixels(DRY_VEG, PIT)])
    reference = baseline_reference(base, params)
    paired, partners = season_matched(
        observation_indices(stack), np.array([230, 300]), observation_indices(base), days, params.season_window_days
    )
    assert np.isnan(partners).all()
    state = period_state(stack, paired, partners, params)
    score = disturbance_score(state, reference, np.zeros((1, 2), bool), ScoreParameters(filter_px=0))
    assert score[0, 0] == 0.0  # dry season against the baseline's driest state: no loss
    assert score[0, 1] >= 0.5  # a pit is below even the driest state


def test_river_sandbars_and_a_moved_river_score_zero():
    # pixels: 0 river, 1 sandbar next to it, 2 green bank next to it that the river moved onto,
    #         3 a bank pixel far away that became a pit (outside a 1-pixel corridor)
    baseline = [[WATER, SAND, GREEN_VEG, GREEN_VEG], [WATER, SAND, DRY_VEG, DRY_VEG]]
    now = [[WATER, SAND, WATER, PIT], [WATER, SAND, WATER, PIT]]
    score, state, reference, corridor = score_of(baseline, now, corridor_px=2)
    assert corridor[0].tolist() == [True, True, True, False]
    assert score[0].tolist()[:3] == [0.0, 0.0, 0.0]
    assert score[0, 3] >= 0.9
    changes = pixel_changes(state, reference, corridor)
    assert changes.kind[0].tolist() == [RIVER, RIVER, RIVER, BARE]  # the pit is bare on every date


def test_a_new_pond_away_from_the_river_is_scored_by_its_vegetation_loss():
    baseline = [[GREEN_VEG], [DRY_VEG]]
    now = [[POND_WATER], [POND_WATER]]
    score, state, reference, corridor = score_of(baseline, now)
    assert pixel_changes(state, reference, corridor).kind[0, 0] == POND
    assert score[0, 0] >= 0.9


def test_never_seen_in_the_baseline_is_nan():
    score, state, reference, corridor = score_of([[None, GREEN_VEG]], [[PIT, PIT]])
    assert np.isnan(score[0, 0]) and score[0, 1] >= 0.9
    assert pixel_changes(state, reference, corridor).kind[0, 0] == UNSEEN


def test_median_filter_removes_lone_noise_and_keeps_a_blob_and_its_edge():
    values = np.zeros((9, 9), dtype=np.float32)
    values[1, 1] = 1.0  # a lone noisy pixel
    values[4:9, 4:9] = 1.0  # a 5 x 5 blob in the corner
    values[0, 8] = np.nan  # not seen stays not seen
    filtered = nan_median_filter(values, 1)
    assert filtered[1, 1] == 0.0
    assert (filtered[5:8, 5:8] == 1.0).all()
    assert filtered[4, 5] == 1.0  # on the blob's straight edge: 6 of its 9 neighbours are inside
    assert np.isnan(filtered[0, 8])


def test_median_filter_ignores_nan_neighbours():
    values = np.array([[np.nan, np.nan, np.nan], [np.nan, 0.2, 0.4], [np.nan, 0.4, 0.4]], dtype=np.float32)
    assert nan_median_filter(values, 1)[1, 1] == pytest.approx(0.4)  # median of 0.2, 0.4, 0.4, 0.4


def test_river_corridor_is_a_disc_of_the_radius():
    water = np.zeros((11, 11), dtype=bool)
    water[5, 5] = True
    corridor = river_corridor(water, 3)
    assert corridor[5, 2] and corridor[5, 8] and corridor[2, 5]
    assert not corridor[5, 1] and not corridor[2, 2]  # (3, 3) away is 4.2 px: outside the disc
    assert corridor.sum() == 29  # lattice points within a radius-3 disc


def test_parameters_are_json_ready_and_metres_become_whole_pixels():
    params = ScoreParameters()
    assert json.loads(json.dumps(params.to_dict()))["ndvi_drop"] == list(params.ndvi_drop)
    assert params.pixels(100.0, 10.0) == 10
    assert params.pixels(25.0, 10.0) == 3
    assert params.pixels(0.0, 10.0) == 0


def test_activity_spreads_into_the_old_floor_of_a_growing_working_but_not_onto_lone_rock():
    kind = np.full((1, 12), LAND, dtype=np.uint8)
    kind[0, 2:6] = BARE  # a working already bare in the baseline: no change there
    kind[0, 9:11] = BARE  # rock, two pixels from the working's new edge
    score = np.zeros((1, 12), dtype=np.float32)
    score[0, 6] = 0.9  # the working's new edge, dug this period
    score[0, 0] = np.nan
    grown = grow_into_workings(score, kind, radius_px=10, params=ScoreParameters())
    assert grown[0, 2:6].tolist() == pytest.approx([0.6] * 4)
    assert grown[0, 6] == pytest.approx(0.9)
    assert grown[0, 9:11].tolist() == [0.0, 0.0]  # not connected through bare ground
    assert np.isnan(grown[0, 0])
    assert grow_into_workings(score, kind, radius_px=2, params=ScoreParameters())[0, 2] == 0.0  # out of reach


def shifted_median_filter(values: np.ndarray, radius: int) -> np.ndarray:
    """The 3 x 3 (or larger) NaN median as it was computed before the kernel: a stack of shifted copies."""
    from geo.composite import nan_median

    size = 2 * radius + 1
    padded = np.pad(values, [(0, 0)] * (values.ndim - 2) + [(radius, radius)] * 2, constant_values=np.nan)
    rows, cols = values.shape[-2:]
    shifted = np.stack([padded[..., i : i + rows, j : j + cols] for i in range(size) for j in range(size)])
    return np.where(np.isnan(values), np.float32(np.nan), nan_median(shifted))


@pytest.mark.parametrize("radius", [1, 2])
def test_median_filter_is_bit_identical_to_the_median_of_shifted_copies(radius):
    rng = np.random.default_rng(radius)
    values = rng.normal(0.0, 0.2, (2, 31, 29)).astype(np.float32)
    values[rng.random(values.shape) < 0.15] = np.nan
    values[0, 10:20, 10:20] = 0.5  # ties inside a blob
    np.testing.assert_array_equal(nan_median_filter(values, radius), shifted_median_filter(values, radius))


@pytest.mark.parametrize("radius", [1, 4, 10])
def test_river_corridor_equals_a_binary_dilation_by_the_disc(radius):
    from scipy import ndimage

    rng = np.random.default_rng(radius)
    water = rng.random((60, 50)) < 0.003
    water[30, :] = True  # a river across the tile
    offsets = np.arange(-radius, radius + 1)
    disc = offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2
    np.testing.assert_array_equal(river_corridor(water, radius), ndimage.binary_dilation(water, structure=disc))


def random_dates(rng, dates: int, shape=(23, 19)) -> tuple[np.ndarray, np.ndarray]:
    """Reflectances ``(date, band, row, column)`` with gaps, and clear masks: every case the kernels branch on."""
    bands = rng.uniform(-0.05, 0.6, (dates, 5, *shape)).astype(np.float32)
    bands[rng.random(bands.shape) < 0.03] = np.nan  # a band without data
    zero = rng.random((dates, *shape)) < 0.03
    bands[:, 2][zero], bands[:, 3][zero] = np.float32(0.1), np.float32(-0.1)  # NIR + red = 0: NDVI undefined
    bands[:, 3][rng.random((dates, *shape)) < 0.02] = np.float32(0.7)  # exactly float32(bare_ndvi) below
    clear = rng.random((dates, *shape)) < 0.7
    return bands, clear


def observed_dates(bands: np.ndarray, clear: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    from geo.spectral import observe

    results = [observe(list(b), c, threshold) for b, c in zip(bands, clear, strict=True)]
    shape = (0, *bands.shape[2:])
    indices = np.stack([r[0] for r in results]) if results else np.zeros((0, 2, *shape[1:]), np.float32)
    water = np.stack([r[1] for r in results]) if results else np.zeros(shape, bool)
    return indices, water


@pytest.mark.parametrize(("base_dates", "period_dates"), [(5, 5), (3, 6), (1, 2), (4, 0), (0, 3)])
def test_fused_tile_kernels_equal_the_numpy_steps(base_dates, period_dates):
    """observe, baseline_of and period_evidence + changes_of_evidence against observation_indices ... pixel_changes."""
    from geo.composite import mask_observations
    from geo.spectral import baseline_of, changes_of_evidence, period_evidence, water_of

    rng = np.random.default_rng(10 * base_dates + period_dates)
    params = ScoreParameters(water_index=0.1, bare_ndvi=0.7)  # thresholds that float32 cannot hold exactly
    base_bands, base_clear = random_dates(rng, base_dates)
    bands, clear = random_dates(rng, period_dates)
    base_days = np.array([20, 80, 150, 250, 330])[:base_dates]
    days = np.array([10, 95, 140, 200, 300, 360])[:period_dates]
    corridor = rng.random(base_clear.shape[1:] if base_dates else clear.shape[1:]) < 0.2

    base_stack, stack = mask_observations(base_bands, base_clear), mask_observations(bands, clear)
    base_indices, indices = observation_indices(base_stack), observation_indices(stack)
    reference = baseline_reference(base_stack, params, base_indices)
    paired, partners = season_matched(indices, days, base_indices, base_days, params.season_window_days)
    expected = pixel_changes(period_state(stack, paired, partners, params, indices), reference, corridor, params)

    base_observed, base_water = observed_dates(base_bands, base_clear, params.water_index)
    observed, water = observed_dates(bands, clear, params.water_index)
    np.testing.assert_array_equal(observed, indices)
    np.testing.assert_array_equal(water, water_of(stack, params.water_index))
    baseline = baseline_of(base_observed, base_water)
    for name in ("ndvi_dry", "ndvi_green", "bsi_bare", "water_any", "seen"):
        np.testing.assert_array_equal(getattr(baseline, name), getattr(reference, name), err_msg=name)
    evidence = period_evidence(observed, water, days, base_observed, base_days, baseline, params)
    got = changes_of_evidence(evidence, corridor)
    for name in ("loss", "gain", "kind", "loss_sd", "gain_sd", "count"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)


def test_score_of_changes_equals_its_numpy_formula():
    """min(1, w * ramp(loss) + w * ramp(gain)) on land, the loss alone on ponds, 0 on rivers, NaN unseen;
    each ramp shifted up to noise_z standard errors (noise_spread / sqrt(count)) where known and above its low end."""
    from geo.spectral import Changes, noise_spread, score_of_changes

    rng = np.random.default_rng(3)
    loss = rng.normal(0.1, 0.15, (40, 50)).astype(np.float32)
    gain = rng.normal(0.05, 0.08, (40, 50)).astype(np.float32)
    loss_sd = rng.uniform(0, 0.12, loss.shape).astype(np.float32)
    gain_sd = rng.uniform(0, 0.08, loss.shape).astype(np.float32)
    for values in (loss, gain):
        values[rng.random(values.shape) < 0.05] = np.nan
    for values in (loss_sd, gain_sd):  # no spread in blobs (few dates), some wider than the reach
        values[nan_blobs(rng, loss.shape)] = np.nan
    count = rng.integers(1, 6, loss.shape).astype(np.float32)
    kind = rng.choice(np.array([LAND, POND, RIVER, UNSEEN, BARE], dtype=np.uint8), size=loss.shape)
    params = ScoreParameters(
        ndvi_drop=(0.05, 0.2), bsi_rise=(0.03, 0.11), vegetation_weight=0.7, bare_weight=0.45, noise_z=1.7
    )
    reach_px = 3
    loss_se, gain_se = (noise_spread(sd, params.filter_px, reach_px) / np.sqrt(count) for sd in (loss_sd, gain_sd))
    assert np.isnan(loss_se).mean() > 0.01  # some pixels have no spread within reach
    z = np.float32(params.noise_z)
    with np.errstate(invalid="ignore"):
        loss_low = np.where(z * loss_se > np.float32(0.05), z * loss_se, np.float32(0.05))
        gain_low = np.where(z * gain_se > np.float32(0.03), z * gain_se, np.float32(0.03))
        assert (loss_low > np.float32(0.05)).mean() > 0.2  # the shift is exercised
        vegetation_loss = np.clip((loss - loss_low) / np.float32(0.2 - 0.05), 0, 1)
        bare_gain = np.clip((gain - gain_low) / np.float32(0.11 - 0.03), 0, 1)
        expected = np.minimum(params.vegetation_weight * vegetation_loss + params.bare_weight * bare_gain, 1)
    expected = np.where(kind == POND, vegetation_loss, expected)
    expected = np.where(kind == RIVER, 0, expected)
    expected = np.where(kind == UNSEEN, np.nan, expected).astype(np.float32)
    got = score_of_changes(Changes(loss, gain, kind, loss_sd, gain_sd, count), params, reach_px)
    np.testing.assert_array_equal(got, expected)


def nan_blobs(rng, shape: tuple[int, int]) -> np.ndarray:
    """Squares of 1 to 15 pixels (True) scattered over ``shape``."""
    mask = np.zeros(shape, bool)
    for _ in range(12):
        size = int(rng.integers(1, 16))
        r, c = int(rng.integers(0, shape[0])), int(rng.integers(0, shape[1]))
        mask[r : r + size, c : c + size] = True
    return mask


def test_spread_is_the_sample_deviation_from_three_values_and_the_count_of_values():
    from geo.spectral import MIN_VALUES_FOR_SPREAD, spread_of

    rng = np.random.default_rng(4)
    values = rng.normal(0, 0.05, (6, 30, 20)).astype(np.float32)
    values[rng.random(values.shape) < 0.4] = np.nan
    count = np.isfinite(values).sum(axis=0)
    assert {1, 2, 3, 6} <= set(np.unique(count))  # every case is exercised
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanstd(values.astype(np.float64), axis=0, ddof=1)
    expected[count < MIN_VALUES_FOR_SPREAD] = np.nan
    spread, counted = spread_of(values)
    np.testing.assert_allclose(spread, expected, rtol=1e-6)
    np.testing.assert_array_equal(counted, count)
    assert spread_of(np.zeros((0, 4, 5), np.float32))[0].shape == (4, 5)


def test_noise_spread_is_the_median_of_the_square_or_of_the_nearest_ring_with_values_within_reach():
    from geo.spectral import noise_spread

    def reference(values, radius, reach):  # the docstring, literally
        out = np.full(values.shape, np.nan, np.float32)
        padded = np.pad(values, radius + reach, constant_values=np.nan)
        for r, c in np.ndindex(values.shape):
            pr, pc = r + radius + reach, c + radius + reach
            for width in range(radius, radius + reach + 1):
                square = padded[pr - width : pr + width + 1, pc - width : pc + width + 1].copy()
                if width > radius:  # only the new ring: everything inside it was NaN
                    square[1:-1, 1:-1] = np.nan
                finite = square[np.isfinite(square)]
                if finite.size:
                    out[r, c] = np.float32(np.median(finite.astype(np.float32)))
                    break
        return out

    rng = np.random.default_rng(8)
    values = rng.uniform(0.01, 0.1, (30, 40)).astype(np.float32)
    values[nan_blobs(rng, values.shape)] = np.nan
    for radius, reach in ((1, 0), (1, 3), (0, 2), (2, 5)):
        np.testing.assert_allclose(noise_spread(values, radius, reach), reference(values, radius, reach), rtol=1e-6)
    lone = np.full((9, 9), np.nan, np.float32)
    lone[4, 8] = 5.0
    spread = noise_spread(lone, 1, 2)
    assert spread[4, 5] == 5.0 and spread[1, 6] == 5.0  # 3 px away: 3 x 3 and 2 rings beyond it
    assert np.isnan(spread[4, 4]) and np.isnan(spread[0, 6])  # 4 px away


def noisy_dates(rng, spectrum, dates: int, shape: tuple[int, int], noise_sd: float) -> np.ndarray:
    """``(date, band, row, column)`` reflectances of one spectrum everywhere, plus Gaussian sensor noise."""
    clean = np.broadcast_to(np.asarray(spectrum, np.float32)[None, :, None, None], (dates, 5, *shape))
    return (clean + rng.normal(0, noise_sd, clean.shape)).astype(np.float32)


def score_of_stacks(base: np.ndarray, stack: np.ndarray, params: ScoreParameters) -> np.ndarray:
    days = np.array([20, 90, 160, 230, 300])
    base_indices, indices = observation_indices(base), observation_indices(stack)
    paired, partners = season_matched(indices, days, base_indices, days, params.season_window_days)
    reference = baseline_reference(base, params, base_indices)
    corridor = river_corridor(reference.water_any, 0)
    return disturbance_score(period_state(stack, paired, partners, params, indices), reference, corridor, params)


def test_in_a_noisy_scene_noise_no_longer_adds_up_to_activity_but_a_pit_still_does():
    """Sensor noise SD 0.03 (ten times the demo's) on unchanged vegetation: with the fixed thresholds alone
    (noise_z 0) a share of it scores 0.5 or more; with the default noise_z almost none does, and a pit of the same
    noise still scores 0.5 or more on almost every pixel."""
    rng = np.random.default_rng(5)
    shape = (120, 120)
    base = noisy_dates(rng, GREEN_VEG, 5, shape, 0.03)
    unchanged = noisy_dates(rng, GREEN_VEG, 5, shape, 0.03)
    pit = noisy_dates(rng, PIT, 5, shape, 0.03)
    fixed, adaptive = ScoreParameters(noise_z=0), ScoreParameters()
    inside = (slice(2, -2), slice(2, -2))  # the filter's edge is left out
    assert np.mean(score_of_stacks(base, unchanged, fixed)[inside] >= 0.5) > 0.002
    assert np.mean(score_of_stacks(base, unchanged, adaptive)[inside] >= 0.5) < 0.0002
    assert np.mean(score_of_stacks(base, pit, adaptive)[inside] >= 0.5) > 0.98


def test_on_clean_scenes_the_noise_adaptation_changes_nothing():
    """At the demo's noise (SD 0.003) the standard errors stay below the fixed low ends: identical scores."""
    rng = np.random.default_rng(6)
    shape = (60, 60)
    base = noisy_dates(rng, GREEN_VEG, 5, shape, 0.003)
    half_pit = noisy_dates(rng, GREEN_VEG, 5, shape, 0.003)
    half_pit[..., 30:] = noisy_dates(rng, PIT, 5, (60, 30), 0.003)
    fixed = score_of_stacks(base, half_pit, ScoreParameters(noise_z=0))
    np.testing.assert_array_equal(score_of_stacks(base, half_pit, ScoreParameters()), fixed)
    assert (fixed[2:-2, 33:-2] >= 0.9).all() and (fixed[2:-2, 2:27] < 0.5).all()


def test_pixels_seen_on_two_dates_borrow_the_noise_spread_of_neighbours_within_reach():
    """A 20 x 20 px patch seen on two period dates only (under persistent cloud) has no spread of its own: with
    noise_reach_m 0 it is scored with the fixed thresholds (several % false activity at noise SD 0.03); with the
    default reach (10 px) it takes its neighbours' spread, and noise stops counting while a pit still does."""
    rng = np.random.default_rng(5)
    shape, patch = (120, 120), (slice(50, 70), slice(50, 70))
    base = noisy_dates(rng, GREEN_VEG, 5, shape, 0.03)
    unchanged, pit = noisy_dates(rng, GREEN_VEG, 5, shape, 0.03), noisy_dates(rng, PIT, 5, shape, 0.03)
    for stack in (unchanged, pit):
        stack[2:, :, patch[0], patch[1]] = np.nan
    without_reach = np.mean(score_of_stacks(base, unchanged, ScoreParameters(noise_reach_m=0))[patch] >= 0.5)
    assert without_reach > 0.02
    assert np.mean(score_of_stacks(base, unchanged, ScoreParameters())[patch] >= 0.5) < without_reach / 10
    assert np.mean(score_of_stacks(base, pit, ScoreParameters())[patch] >= 0.5) > 0.98
