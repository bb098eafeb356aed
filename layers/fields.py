"""Matching a file's column names to minewatch's canonical names.

Names match case-insensitively; ``--field canonical=theirs`` maps any other name
(Shapefile field names are at most 10 characters). ``--field production:carats=CT``
limits a mapping to one layer.
"""

from __future__ import annotations

from collections import Counter

from geo.errors import InputError


def parse_field_mappings(items: list[str] | None) -> dict[str | None, dict[str, str]]:
    """Parse ``canonical=theirs`` / ``layer:canonical=theirs`` items.

    Returns ``{layer or None: {canonical: theirs}}``; ``None`` holds mappings for
    every layer.
    """
    mappings: dict[str | None, dict[str, str]] = {}
    for item in items or []:
        left, sep, theirs = item.partition("=")
        if not sep or not left.strip() or not theirs.strip():
            raise InputError(f"--field expects canonical=theirs (e.g. holder=HOLDER_NM), got {item!r}")
        layer, _, canonical = left.rpartition(":")
        if not canonical.strip():
            raise InputError(f"--field expects canonical=theirs (e.g. holder=HOLDER_NM), got {item!r}")
        mappings.setdefault(layer.strip().lower() or None, {})[canonical.strip().lower()] = theirs.strip()
    return mappings


def resolve_columns(
    columns: list[str],
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    mappings: dict[str | None, dict[str, str]],
    layer: str,
    source: str,
) -> dict[str, str]:
    """Map canonical names to the file's own column names.

    Returns ``{canonical: column_in_file}`` for every required name and for the optional
    names present. Raises :class:`InputError` naming the missing column, the columns the
    file has, and the ``--field`` fix.
    """
    by_lower = {str(c).lower(): str(c) for c in columns}
    mapping = {**mappings.get(None, {}), **mappings.get(layer, {})}
    found: dict[str, str] = {}
    for canonical in required + optional:
        theirs = mapping.get(canonical)
        if theirs is not None and theirs.lower() in by_lower:
            found[canonical] = by_lower[theirs.lower()]
        elif canonical in mappings.get(layer, {}):
            raise InputError(f"{layer}: {source}: --field {canonical}={theirs}: the file has no column {theirs!r}")
        elif canonical in by_lower:
            found[canonical] = by_lower[canonical]
    counts = Counter(str(c).lower() for c in columns)
    for canonical, theirs in found.items():
        if counts[theirs.lower()] > 1:
            same = [str(c) for c in columns if str(c).lower() == theirs.lower()]
            raise InputError(
                f"{layer}: {source}: {len(same)} columns are named {theirs.lower()!r} ({', '.join(map(repr, same))}); "
                f"keep one, or rename the others (minewatch cannot tell which holds the {canonical})"
            )
    missing = [c for c in required if c not in found]
    if missing:
        have = ", ".join(str(c) for c in columns if str(c).lower() != "geometry") or "none"
        raise InputError(
            f"{layer}: {source}: missing column {missing[0]!r} (the file has: {have}); "
            f"map it with --field {missing[0]}=THEIR_NAME"
        )
    return found
