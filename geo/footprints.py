"""Activity footprints: connected active pixels as polygons.

Strips are polygonised separately (4-connected, exact pixel edges), then pieces that
touch, across a strip boundary or only at a corner, are joined, so one footprint is
one 8-connected patch of active pixels, however the raster was cut.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from rasterio import features
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def polygonise_strip(active: np.ndarray, transform: Affine) -> list:
    """Polygons (in the CRS of ``transform``) of the 4-connected active areas of a strip."""
    if not active.any():
        return []
    coords, ring_of_coord, polygon_of_ring = [], [], []
    n_rings = 0
    shapes = features.shapes(active.view(np.uint8), mask=active, connectivity=4, transform=transform)
    for n_polygons, (geom, _) in enumerate(shapes):
        for ring in geom["coordinates"]:
            coords.append(np.asarray(ring, dtype=float))
            ring_of_coord.append(np.full(len(ring), n_rings))
            polygon_of_ring.append(n_polygons)
            n_rings += 1
    rings = shapely.linearrings(np.concatenate(coords), indices=np.concatenate(ring_of_coord))
    # The first ring of each polygon is its shell, the rest its holes.
    return list(shapely.polygons(rings, indices=np.asarray(polygon_of_ring)))


def merge_footprints(parts: list) -> np.ndarray:
    """Join polygons that touch or overlap into one footprint each.

    Returns an array of (multi)polygons, ordered by the position of their first part,
    so the result does not depend on anything but the geometry.
    """
    if not parts:
        return np.array([], dtype=object)
    geoms = np.array(parts, dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(geoms), len(geoms)))
    _, group = connected_components(graph, directed=False)
    merged = []
    for label in np.unique(group):
        members = geoms[group == label]
        merged.append(members[0] if len(members) == 1 else shapely.union_all(members))
    merged = np.array(merged, dtype=object)
    # Stable order: north to south, then west to east, of each footprint's bounds.
    bounds = shapely.bounds(merged)
    order = np.lexsort((bounds[:, 0], -bounds[:, 3]))
    return merged[order]
