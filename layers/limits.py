"""Size limits on every input, so a hostile or broken file is refused, not processed.

A cadastre forwarded by email or a zip from a stranger may be built to exhaust memory or
time: a ring of a million vertices, a CSV "line" of 100 MB, a 40 kB GeoTIFF that claims
a trillion pixels, a zip that expands a thousandfold. Each limit below is far above what
real inputs of a diamond field need (the defaults are documented with their reasons), and
each can be raised: ``--limit name=value`` on the command line, or a ``[limits]`` table
in the ``--config`` TOML file. A file over a limit is refused with one line naming the
file, the limit and how to raise it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from geo.errors import SettingsError
from geo.settings import numbers_from, parse_toml


@dataclass(frozen=True)
class InputLimits:
    """Limits on input files (units in the names).

    Attributes
    ----------
    max_vector_file_mb:
        A concessions or context file (a national cadastre as GeoPackage is ~100 MB).
    max_table_file_mb:
        A production or national-totals table.
    max_table_line_kb:
        One line of a CSV table (a real row is well under 1 kB).
    max_features:
        Features in one vector file (Zimbabwe's whole mining cadastre is ~10^4-10^5).
    max_feature_vertices:
        Vertices of one feature, all its rings together (surveyed licences have tens to
        thousands; a river-following boundary digitised at 1 m some 10^5).
    max_raster_megapixels:
        Pixels of one raster, in millions (Zimbabwe at 10 m is ~3,900).
    max_zip_members, max_zip_uncompressed_mb, max_zip_ratio:
        A zipped Shapefile or an Excel workbook (also a zip): number of members, total
        expanded size, and expanded/compressed size of any member (a DBF of blanks
        compresses ~50x; a zip bomb 1000x and more).
    """

    max_vector_file_mb: float = 2048
    max_table_file_mb: float = 512
    max_table_line_kb: float = 1024
    max_features: int = 1_000_000
    max_feature_vertices: int = 250_000
    max_raster_megapixels: float = 20_000
    max_zip_members: int = 1000
    max_zip_uncompressed_mb: float = 2048
    max_zip_ratio: float = 200

    def exceeded(self, name: str, what: str) -> str:
        """A message for ``what`` going over the limit ``name`` (with how to raise it)."""
        value = getattr(self, name)
        return f"{what}: more than the limit {name}={value:,g} (raise it with --limit {name}=N if the file is genuine)"

    def to_dict(self) -> dict:
        """The limits as a plain dict (for provenance.json)."""
        return dataclasses.asdict(self)


DEFAULT_LIMITS = InputLimits()


def load_limits(toml_text: str | None = None, overrides: list[str] | None = None) -> InputLimits:
    """Limits from the defaults, then the ``[limits]`` table of a TOML document, then ``name=value``."""
    table = parse_toml(toml_text).get("limits", {})
    values = numbers_from(InputLimits, table, overrides or [], noun="limit", option="--limit")
    for name, value in values.items():
        if not value > 0:
            raise SettingsError(f"limit {name} must be positive, not {value!r}")
    return InputLimits(**values)
