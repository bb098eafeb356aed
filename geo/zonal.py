"""Coverage-weighted zonal sums by Green's theorem, one raster row at a time.

The sum over a polygon of a pixel value ``f`` weighted by the fraction of each pixel
the polygon covers (what exactextract computes) equals a line integral around the
polygon's rings::

    sum_p  f_p * coverage_p  =  integral over the polygon of f dA  =  ring integral of F dy

where ``F(x, y)`` is the running sum of ``f`` along the raster row containing ``y``,
from the left edge to column ``x`` (linear inside a pixel). So each ring is cut where
it crosses a row boundary into *pieces*, and each piece needs only two cumulative sums
of its own row. The cost grows with the rings' length in pixels, not with their area,
overlapping polygons cost nothing extra, and the raster can be streamed in strips of
rows, each read exactly once. The inner loop is compiled with numba: per row it is one
pass over the pixels and one over the pieces, with no temporary arrays. The answer is exact (to floating point) for any polygon,
hole or overlap, not an approximation by pixel centres.

Coordinates here are pixel coordinates: ``x`` = column, ``y`` = row, of the raster
whose strips are integrated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import shapely
from affine import Affine


@dataclass(frozen=True)
class RingPieces:
    """The pieces of a set of polygons' rings, cut at raster row boundaries.

    Attributes are parallel arrays, one entry a piece, sorted by ``row``; ``weighted_dy``
    already carries the ring's role (exterior or hole) and orientation, so the polygon's
    integral is the plain sum of its pieces.
    """

    row: np.ndarray  # int64, raster row of the piece
    x_start: np.ndarray  # float64, column coordinate where the piece starts
    x_end: np.ndarray  # float64, column coordinate where it ends
    weighted_dy: np.ndarray  # float64, signed height of the piece times role and orientation
    owner: np.ndarray  # int64, index of the polygon the piece belongs to
    n_polygons: int
    width: int  # raster width in columns

    def rows_between(self, row_start: int, row_stop: int) -> slice:
        """The slice of pieces whose row is in ``[row_start, row_stop)``."""
        lo, hi = np.searchsorted(self.row, [row_start, row_stop], side="left")
        return slice(int(lo), int(hi))


def cut_rings(geometries: np.ndarray, transform: Affine, height: int, width: int) -> RingPieces:
    """Cut (multi)polygons, in the raster's CRS, into row pieces in pixel coordinates.

    Parameters
    ----------
    geometries:
        Shapely polygons or multipolygons in the raster's CRS; ``None`` and empty
        geometries are allowed and integrate to zero.
    transform:
        The raster's affine transform (pixel to CRS coordinates).
    height, width:
        The raster's size in rows and columns; pieces outside its rows are dropped,
        parts beyond its columns are handled by clamping when integrating.
    """
    geometries = np.asarray(geometries, dtype=object)
    n_polygons = len(geometries)
    inverse = ~transform
    present = ~(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    parts, part_owner = shapely.get_parts(geometries[present], return_index=True)
    part_owner = np.flatnonzero(present)[part_owner]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    if len(coords) == 0:
        return _empty_pieces(n_polygons, width)
    cols = inverse.a * coords[:, 0] + inverse.b * coords[:, 1] + inverse.c
    rows = inverse.d * coords[:, 0] + inverse.e * coords[:, 1] + inverse.f

    # A ring's role: its first ring in its part is the exterior (+1), later ones holes (-1).
    is_first_ring = np.ones(len(rings), dtype=bool)
    is_first_ring[1:] = ring_part[1:] != ring_part[:-1]
    role = np.where(is_first_ring, 1.0, -1.0)
    # Green's theorem counts +area for rings counter-clockwise in (col, row) space.
    same_ring = coord_ring[1:] == coord_ring[:-1]
    shoelace_terms = np.where(same_ring, cols[:-1] * rows[1:] - cols[1:] * rows[:-1], 0.0)
    signed_area = np.bincount(coord_ring[:-1], weights=shoelace_terms, minlength=len(rings))
    ring_factor = role * np.sign(signed_area)

    edge = np.flatnonzero(same_ring & (rows[:-1] != rows[1:]))
    x0, y0, x1, y1 = cols[edge], rows[edge], cols[edge + 1], rows[edge + 1]
    edge_factor = ring_factor[coord_ring[edge]]
    edge_owner = part_owner[ring_part[coord_ring[edge]]]

    # Integer rows strictly between the ends cut the edge into pieces.
    y_lo, y_hi = np.minimum(y0, y1), np.maximum(y0, y1)
    first_cut = np.floor(y_lo) + 1
    last_cut = np.ceil(y_hi) - 1
    n_cuts = np.maximum(last_cut - first_cut + 1, 0).astype(np.int64)
    n_pieces = n_cuts + 1
    piece_edge = np.repeat(np.arange(len(edge)), n_pieces)
    offsets = np.cumsum(n_pieces) - n_pieces
    j = np.arange(piece_edge.size) - offsets[piece_edge]
    going_down = (y1 > y0)[piece_edge]

    def breakpoint_y(k: np.ndarray) -> np.ndarray:
        # k = 0 is the edge's start, k = n_cuts + 1 its end, 1..n_cuts the integer rows between.
        e = piece_edge
        inner = np.where(going_down, first_cut[e] + k - 1, last_cut[e] - (k - 1))
        return np.where(k == 0, y0[e], np.where(k == n_pieces[e], y1[e], inner))

    ya = breakpoint_y(j)
    yb = breakpoint_y(j + 1)
    slope = ((x1 - x0) / (y1 - y0))[piece_edge]
    xa = x0[piece_edge] + (ya - y0[piece_edge]) * slope
    xb = x0[piece_edge] + (yb - y0[piece_edge]) * slope
    row = np.floor((ya + yb) / 2).astype(np.int64)
    weighted_dy = (yb - ya) * edge_factor[piece_edge]

    keep = (row >= 0) & (row < height) & (weighted_dy != 0)
    order = np.argsort(row[keep], kind="stable")
    return RingPieces(
        row=row[keep][order],
        x_start=xa[keep][order],
        x_end=xb[keep][order],
        weighted_dy=weighted_dy[keep][order],
        owner=edge_owner[piece_edge][keep][order],
        n_polygons=n_polygons,
        width=width,
    )


def _empty_pieces(n_polygons: int, width: int) -> RingPieces:
    empty_f, empty_i = np.zeros(0), np.zeros(0, dtype=np.int64)
    return RingPieces(empty_i, empty_f, empty_f, empty_f, empty_i, n_polygons, width)


def integrate_strip(
    pieces: RingPieces,
    row_start: int,
    values: np.ndarray,
    weights: np.ndarray | None = None,
    block_columns: int | None = None,
) -> np.ndarray:
    """Coverage-weighted sums of ``values`` over each polygon, for one strip of rows.

    Parameters
    ----------
    pieces:
        From :func:`cut_rings` for the same raster grid.
    row_start:
        The raster row of ``values``' first row.
    values:
        ``(channels, rows, width)`` array (bool, integer or float) of per-pixel
        quantities; pixels outside the raster count as 0.
    weights, block_columns:
        Optional ``(rows, ceil(width / block_columns))`` multipliers, one per row and
        block of columns (e.g. each pixel's true area in hectares, which varies slowly
        across a projected grid); without them every pixel weighs 1.

    Returns
    -------
    ``(channels, n_polygons)`` float64 array: each polygon's share of this strip. Sum the
    strips of a raster to get the polygon's total.
    """
    channels, n_rows, width = values.shape
    if weights is None:
        weights, block_columns = np.ones((n_rows, 1)), max(width, 1)
    sums = np.zeros((channels, pieces.n_polygons))
    take = pieces.rows_between(row_start, row_start + n_rows)
    if take.start < take.stop:
        _integrate_rows(
            np.ascontiguousarray(values),
            np.ascontiguousarray(weights, dtype=np.float64),
            int(block_columns),
            int(row_start),
            pieces.row[take],
            pieces.x_start[take],
            pieces.x_end[take],
            pieces.weighted_dy[take],
            pieces.owner[take],
            sums,
        )
    return sums


@numba.njit(cache=True, nogil=True)
def _integrate_rows(
    values, weights, block_columns, row_start, row, x_start, x_end, dy, owner, sums
):  # pragma: no cover
    """For each row that has pieces: the row's running sum and its integral, then each
    piece's mean running sum times its signed height (see the module docstring)."""
    channels, n_rows, width = values.shape
    running = np.zeros(width + 1)  # running[k] = sum of weighted values left of column k
    integral = np.zeros(width + 1)  # integral[k] = integral of the running sum from 0 to k
    n = row.shape[0]
    for c in range(channels):
        p = 0
        while p < n:
            r = row[p] - row_start
            for k in range(width):
                f = values[c, r, k] * weights[r, k // block_columns]
                running[k + 1] = running[k] + f
                integral[k + 1] = integral[k] + running[k] + 0.5 * f
            while p < n and row[p] - row_start == r:
                a, b = x_start[p], x_end[p]
                if a == b or _cell(a, width) == _cell(b, width):
                    mean = _running_at(running, 0.5 * (a + b), width)
                else:
                    mean = (_integral_at(running, integral, b, width) - _integral_at(running, integral, a, width)) / (
                        b - a
                    )
                sums[c, owner[p]] += mean * dy[p]
                p += 1


@numba.njit(cache=True, inline="always")
def _cell(x, width):  # pragma: no cover
    return min(max(np.floor(x), -1.0), float(width))


@numba.njit(cache=True, inline="always")
def _running_at(running, x, width):  # pragma: no cover
    clamped = min(max(x, 0.0), float(width))
    col = min(int(np.floor(clamped)), width - 1)
    t = clamped - col
    return running[col] + (running[col + 1] - running[col]) * t


@numba.njit(cache=True, inline="always")
def _integral_at(running, integral, x, width):  # pragma: no cover
    clamped = min(max(x, 0.0), float(width))
    col = min(int(np.floor(clamped)), width - 1)
    t = clamped - col
    f = running[col + 1] - running[col]
    beyond = max(x - width, 0.0)
    return integral[col] + running[col] * t + f * t * t / 2.0 + running[width] * beyond
