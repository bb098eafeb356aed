"""Cloud masking with the Sentinel-2 scene classification, and per-period median composites.

Pure functions on numpy arrays already on one grid (no files): :mod:`layers.sentinel2`
reads the bands, this module decides which observations are usable and reduces a stack of
dates to one value per pixel. Arrays are ``(date, band, row, column)`` or
``(date, row, column)``; reflectances are floats, unusable observations are NaN.

The scene classification (SCL) is the Level-2A product's 20 m class layer (ESA,
*Sentinel-2 Level-2A Algorithm Theoretical Basis Document*, S2-PDGS-MPC-ATBD-L2A, and
the *Sentinel-2 Products Specification Document*, Table "Scene Classification Values").
Classes 0 (no data), 1 (saturated or defective), 3 (cloud shadow), 8 and 9 (cloud of
medium and high probability), 10 (thin cirrus) and 11 (snow or ice) are excluded;
2 (dark area / topographic shadow), 4 (vegetation), 5 (not vegetated), 6 (water) and
7 (unclassified) are kept. The classifier misses the soft edges of clouds and shadows,
so those classes can be grown by a buffer of a few pixels before masking.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SCL_CLASSES: dict[int, str] = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area / topographic shadow",
    3: "cloud shadow",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud, medium probability",
    9: "cloud, high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
EXCLUDED_SCL: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
CLOUDY_SCL: tuple[int, ...] = (3, 8, 9, 10)  # the classes whose edges a buffer grows


def clear_mask(scl: np.ndarray, *, excluded: tuple[int, ...] = EXCLUDED_SCL, buffer_px: int = 0) -> np.ndarray:
    """True where a scene classification pixel is usable (not cloud, shadow, snow, no data...).

    Parameters
    ----------
    scl:
        Scene classification classes, integers 0..11, ``(row, column)`` or
        ``(date, row, column)``, already on the output grid.
    excluded:
        The classes to mask (default :data:`EXCLUDED_SCL`).
    buffer_px:
        Grow the cloud and shadow classes (:data:`CLOUDY_SCL`) by this many pixels of the
        grid (a square of side ``2 * buffer_px + 1``) before masking: the classifier
        misses their hazy edges. No data and saturated pixels are not grown.

    Returns
    -------
    numpy.ndarray
        Boolean array of the shape of ``scl``.
    """
    classes = np.asarray(scl)
    clear = ~np.isin(classes, excluded)
    if buffer_px > 0:
        cloudy = np.isin(classes, [c for c in CLOUDY_SCL if c in excluded])
        size = [1] * (classes.ndim - 2) + [2 * buffer_px + 1] * 2
        clear &= ~ndimage.maximum_filter(cloudy, size=size, mode="constant", cval=False)
    return clear


def mask_observations(bands: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """Bands as float32 with NaN wherever the observation is unusable.

    An observation of a pixel is usable when its SCL class is clear and every band has a
    value there, so that all bands of a composite come from the same observations.

    Parameters
    ----------
    bands:
        Reflectances ``(date, band, row, column)`` (or ``(band, row, column)`` for one
        date), NaN where a band has no data.
    clear:
        :func:`clear_mask` of the same dates, ``(date, row, column)`` (or ``(row, column)``).
    """
    values = np.asarray(bands, dtype=np.float32)
    usable = np.asarray(clear, dtype=bool) & np.isfinite(values).all(axis=-3)
    return np.where(np.expand_dims(usable, -3), values, np.float32(np.nan))


def clear_count(stack: np.ndarray) -> np.ndarray:
    """Number of dates with a usable value per pixel (``(date, ..., row, column)`` -> int16)."""
    return np.isfinite(stack).sum(axis=0, dtype=np.int16)


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median over the first axis (dates), ignoring NaN; NaN where no date has a value.

    Equal to :func:`numpy.nanmedian` along axis 0 without its warnings, and much faster on
    the few dates of a period: one sort (NaN sort last), then the middle of the finite
    values. An empty stack (no dates) gives NaN of the remaining shape.
    """
    values = np.asarray(stack, dtype=np.float32)
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan, dtype=np.float32)
    ordered = np.sort(values, axis=0)
    count = np.isfinite(values).sum(axis=0)
    low = np.expand_dims(np.maximum(count - 1, 0) // 2, 0)
    high = np.expand_dims(count // 2, 0)  # < the number of dates whenever there is one
    median = (np.take_along_axis(ordered, low, 0)[0] + np.take_along_axis(ordered, high, 0)[0]) * np.float32(0.5)
    return np.where(count > 0, median, np.float32(np.nan))


def nan_min(stack: np.ndarray) -> np.ndarray:
    """Minimum over the first axis ignoring NaN; NaN where every date is NaN (no warning)."""
    values = np.asarray(stack, dtype=np.float32)
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan, dtype=np.float32)
    return np.fmin.reduce(values, axis=0)


def nan_max(stack: np.ndarray) -> np.ndarray:
    """Maximum over the first axis ignoring NaN; NaN where every date is NaN (no warning)."""
    values = np.asarray(stack, dtype=np.float32)
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan, dtype=np.float32)
    return np.fmax.reduce(values, axis=0)


def median_composite(stack: np.ndarray) -> np.ndarray:
    """Per-pixel, per-band median of the usable observations of a period.

    Parameters
    ----------
    stack:
        Masked reflectances ``(date, band, row, column)`` from :func:`mask_observations`.
        Missing dates are simply absent (the stack may have zero dates), and a date that
        does not cover a pixel is NaN there.

    Returns
    -------
    numpy.ndarray
        ``(band, row, column)`` float32; NaN where no date saw the pixel clear, never 0.
    """
    return nan_median(stack)


def day_of_year_distance(day: int, others: np.ndarray) -> np.ndarray:
    """Days between day-of-year ``day`` and each of ``others`` around the calendar (0..182)."""
    gap = np.abs(np.asarray(others, dtype=int) - int(day)) % 365
    return np.minimum(gap, 365 - gap)


def season_matched(
    stack: np.ndarray,
    days: np.ndarray,
    reference: np.ndarray,
    reference_days: np.ndarray,
    window_days: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair each observation with the reference period's nearest-in-season usable observation.

    For each date of ``stack`` and each pixel, the reference observation is the usable
    one of ``reference`` whose day of year is nearest (within ``window_days``; ties go to
    the earlier reference date). Comparing each observation with the same season of the
    reference year (anniversary-date change detection) keeps seasonal greening out of
    the differences, even when clouds hid one season in one of the years.

    Parameters
    ----------
    stack, reference:
        Masked observations ``(date, band, row, column)`` (NaN where unusable).
    days, reference_days:
        Day of year (1..366) of each date of ``stack`` and of ``reference``.
    window_days:
        Largest seasonal distance of a pair.

    Returns
    -------
    tuple of numpy.ndarray
        ``(paired, partner)``, both shaped like ``stack``: the observations that found a
        partner (NaN elsewhere), and their partners.
    """
    values = np.asarray(stack, dtype=np.float32)
    partner = np.full(values.shape, np.nan, dtype=np.float32)
    for i, day in enumerate(days):
        distance = day_of_year_distance(day, reference_days)
        for j in np.argsort(distance, kind="stable"):
            if distance[j] > window_days:
                break
            missing = ~np.isfinite(partner[i, 0])
            if not missing.any():
                break
            np.copyto(partner[i], reference[j], where=missing)
    paired_ok = np.isfinite(partner[:, :1]) & np.isfinite(values[:, :1])
    return np.where(paired_ok, values, np.float32(np.nan)), np.where(paired_ok, partner, np.float32(np.nan))
