"""The software versions a provenance record names: ``analyze``'s ``provenance.json`` and the STAC items of
``build-activity``."""

from __future__ import annotations

import functools
import importlib.metadata
import platform


def software_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Python, GDAL, PROJ, minewatch and each of ``packages`` (distribution names), ``"not installed"`` for one
    that is not."""
    return dict(_versions_loaded(packages))


@functools.cache
def _versions_loaded(packages: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Looked up once per process (about 3 ms: each package's metadata is found on disk): the code a process
    has loaded does not change, even if a package is upgraded on disk meanwhile."""
    import pyproj
    import rasterio

    versions = {"python": platform.python_version(), "gdal": rasterio.__gdal_version__, "proj": pyproj.proj_version_str}
    for name in ("minewatch", *packages):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return tuple(versions.items())
