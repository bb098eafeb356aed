"""Licence geometry: what lies outside every licence, where licences overlap.

All inputs are in one projected (equal-area) CRS. Differences are taken against each
feature's own neighbours found with an STRtree, never against one union of all
licences (measured here: 271 s against 2-3 s for 50k x 10k features).
"""

from __future__ import annotations

import numpy as np
import shapely

from geo.crs import M2_PER_HA


def outside_parts(footprints: np.ndarray, licences: np.ndarray) -> np.ndarray:
    """The part of each footprint outside every licence polygon (maybe empty)."""
    licences = np.asarray([g for g in licences if g is not None and not g.is_empty], dtype=object)
    footprints = np.asarray(footprints, dtype=object)
    if len(licences) == 0:
        return footprints.copy()
    tree = shapely.STRtree(licences)
    fp_index, lic_index = tree.query(footprints, predicate="intersects")
    result = footprints.copy()
    for i in np.unique(fp_index):
        neighbours = licences[lic_index[fp_index == i]]
        result[i] = shapely.difference(footprints[i], shapely.union_all(neighbours))
    return result


def licence_overlaps(licences: np.ndarray) -> list[tuple[int, int, object]]:
    """Pairs ``(i, j, shared_geometry)`` with ``i < j`` whose polygons share area."""
    geoms = np.asarray(licences, dtype=object)
    present = np.array([g is not None and not g.is_empty for g in geoms])
    tree = shapely.STRtree(np.where(present, geoms, None))
    left, right = tree.query(np.where(present, geoms, None), predicate="intersects")
    pairs = []
    for i, j in zip(left, right, strict=True):
        if i < j:
            shared = shapely.intersection(geoms[i], geoms[j])
            shared = _polygonal(shared)
            if shared is not None and shared.area > 0:
                pairs.append((int(i), int(j), shared))
    return sorted(pairs)


def uncovered_by(licences: np.ndarray, covering: np.ndarray) -> np.ndarray:
    """Each licence minus the union of the ``covering`` licences it intersects.

    Used for "activity inside licences none of which is in force": a not-in-force
    licence minus the in-force ones overlapping it.
    """
    licences = np.asarray(licences, dtype=object)
    covering = np.asarray([g for g in covering if g is not None and not g.is_empty], dtype=object)
    result = licences.copy()
    if len(covering) == 0:
        return result
    tree = shapely.STRtree(covering)
    for i, geom in enumerate(licences):
        if geom is None or geom.is_empty:
            continue
        hits = tree.query(geom, predicate="intersects")
        if len(hits):
            result[i] = _polygonal(shapely.difference(geom, shapely.union_all(covering[hits])))
    return result


def area_ha(geometries: np.ndarray) -> np.ndarray:
    """Areas in hectares of geometries in a metre-based equal-area CRS (None counts 0)."""
    geoms = np.asarray(geometries, dtype=object)
    return np.nan_to_num(shapely.area(geoms).astype(float)) / M2_PER_HA


def _polygonal(geom):
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else None
