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

The per-pixel reductions (:func:`nan_median`, and the SCL lookup and square dilation
of :func:`clear_mask`, fused into one pass) are small numba kernels: each pixel's few
finite values sorted on their own are two to three times faster than
:func:`numpy.sort` along the date axis of a whole tile (and much more inside the fused
kernels of :mod:`geo.spectral`), with the same float32 values (the middle of the sorted
finite values, or ``(a + b) * 0.5`` of the two middle ones, as before: tested bit for
bit). The kernels release the GIL, so tiles run in parallel on threads too.
"""

from __future__ import annotations

import math

import numba
import numpy as np

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
    cloudy_classes = tuple(c for c in CLOUDY_SCL if c in excluded) if buffer_px > 0 else ()
    if classes.dtype == np.uint8:  # what the reader returns: one compiled pass with lookup tables
        flat = np.ascontiguousarray(classes).reshape(math.prod(classes.shape[:-2]), *classes.shape[-2:])
        out = np.empty(flat.shape, dtype=bool)
        if flat.size:
            _clear_of_classes(flat, _class_table(excluded), _class_table(cloudy_classes), int(buffer_px), out)
        return out.reshape(classes.shape)
    clear = ~np.isin(classes, excluded)
    if cloudy_classes:
        clear &= ~dilate_square(np.isin(classes, cloudy_classes), buffer_px)
    return clear


@numba.njit(cache=True, nogil=True)
def _clear_of_classes(classes, excluded, cloudy, radius, out):  # pragma: no cover - compiled
    """:func:`clear_mask` of uint8 classes ``(layer, row, column)``: the lookups, the square dilation of the
    cloudy classes (running counts along rows, then down the columns a whole row at a time) and the
    combination in one pass over each layer, without a temporary array per step."""
    layers, rows, cols = classes.shape
    across = np.empty((rows, cols), dtype=np.uint8)  # 1 where a cloudy class lies within radius columns
    below = np.empty(cols, dtype=np.int32)  # per column: rows of `across` within radius that are 1
    for k in range(layers):
        if radius <= 0:
            for r in range(rows):
                for c in range(cols):
                    out[k, r, c] = not excluded[classes[k, r, c]]
            continue
        for r in range(rows):
            count = 0
            for c in range(min(radius, cols)):
                count += cloudy[classes[k, r, c]]
            for c in range(cols):
                if c + radius < cols:
                    count += cloudy[classes[k, r, c + radius]]
                if c - radius - 1 >= 0:
                    count -= cloudy[classes[k, r, c - radius - 1]]
                across[r, c] = count > 0
        below[:] = 0
        for r in range(min(radius, rows)):
            for c in range(cols):
                below[c] += across[r, c]
        for r in range(rows):
            if r + radius < rows:
                for c in range(cols):
                    below[c] += across[r + radius, c]
            if r - radius - 1 >= 0:
                for c in range(cols):
                    below[c] -= across[r - radius - 1, c]
            for c in range(cols):
                out[k, r, c] = below[c] == 0 and not excluded[classes[k, r, c]]


def _class_table(chosen: tuple[int, ...]) -> np.ndarray:
    """256 booleans, True at the chosen uint8 classes."""
    table = np.zeros(256, dtype=bool)
    table[[c for c in chosen if 0 <= c < 256]] = True
    return table


def dilate_square(mask: np.ndarray, radius_px: int) -> np.ndarray:
    """True within ``radius_px`` pixels (a square of side ``2 * radius_px + 1``) of a True pixel.

    Works on the last two axes (leading axes, e.g. dates, are not mixed); beyond the edges
    counts as False. Equal to ``scipy.ndimage.maximum_filter(mask, size=(..., 1, 2r + 1,
    2r + 1), mode="constant", cval=False)``, in two running-count passes.
    """
    values = np.ascontiguousarray(mask, dtype=bool)
    if radius_px <= 0 or values.size == 0:
        return values.copy()
    flat = values.reshape(-1, *values.shape[-2:])
    out = np.empty_like(flat)
    _dilate_square(flat, int(radius_px), out)
    return out.reshape(values.shape)


@numba.njit(cache=True, nogil=True)
def _dilate_square(mask, radius, out):  # pragma: no cover - compiled
    layers, rows, cols = mask.shape
    across = np.empty((rows, cols), dtype=np.bool_)
    for k in range(layers):
        for r in range(rows):  # along each row: any True within radius columns
            count = 0
            for c in range(min(radius, cols)):
                count += mask[k, r, c]
            for c in range(cols):
                if c + radius < cols:
                    count += mask[k, r, c + radius]
                if c - radius - 1 >= 0:
                    count -= mask[k, r, c - radius - 1]
                across[r, c] = count > 0
        for c in range(cols):  # then along each column of that
            count = 0
            for r in range(min(radius, rows)):
                count += across[r, c]
            for r in range(rows):
                if r + radius < rows:
                    count += across[r + radius, c]
                if r - radius - 1 >= 0:
                    count -= across[r - radius - 1, c]
                out[k, r, c] = count > 0


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

    Equal to :func:`numpy.nanmedian` along axis 0 without its warnings (in float32: the
    middle finite value, or ``(a + b) * 0.5`` of the two middle ones), and much faster on
    the few dates of a period: each pixel's finite values are sorted on their own by a
    compiled kernel. An empty stack (no dates) gives NaN of the remaining shape.
    """
    values = np.asarray(stack, dtype=np.float32)
    if values.shape[0] == 0:
        return np.full(values.shape[1:], np.nan, dtype=np.float32)
    flat = np.ascontiguousarray(values.reshape(values.shape[0], -1))
    out = np.empty(flat.shape[1], dtype=np.float32)
    _nan_median_columns(flat, out)
    return out.reshape(values.shape[1:])


@numba.njit(cache=True, nogil=True, inline="always")
def sorted_median(buffer, count):  # pragma: no cover - compiled
    """Median of ``buffer[:count]`` (finite float32 values), sorting them in place; NaN when ``count`` is 0.

    Insertion sort: the inputs are a period's dates or a 3 x 3 neighbourhood, a few to a
    few dozen values. Even counts give ``(a + b) * 0.5`` in float32.
    """
    for i in range(1, count):
        value = buffer[i]
        j = i - 1
        while j >= 0 and buffer[j] > value:
            buffer[j + 1] = buffer[j]
            j -= 1
        buffer[j + 1] = value
    if count == 0:
        return np.float32(np.nan)
    return (buffer[(count - 1) // 2] + buffer[count // 2]) * np.float32(0.5)


@numba.njit(cache=True, nogil=True)
def _nan_median_columns(values, out):  # pragma: no cover - compiled
    dates, pixels = values.shape
    buffer = np.empty(dates, dtype=np.float32)
    for p in range(pixels):
        count = 0
        for d in range(dates):
            value = values[d, p]
            if np.isfinite(value):
                buffer[count] = value
                count += 1
        out[p] = sorted_median(buffer, count)


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
