"""Zip archives from strangers, checked before anything inside them is read.

A zipped Shapefile and an Excel workbook (``.xlsx`` is a zip of XML) are both archives.
Before GDAL or openpyxl reads a byte of one, its directory is checked: not too many
members, no names that climb out (``..``, absolute paths, drive letters), no symbolic
links, and sizes and compression ratios that are not a zip bomb. Nothing is extracted
to disk: GDAL reads a zipped Shapefile through ``/vsizip/``, built here from a checked
member name, and openpyxl reads the workbook in memory.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from geo.errors import InputError
from layers.limits import InputLimits

_S_IFMT, _S_IFLNK = 0o170000, 0o120000


def checked_members(path: Path, layer: str, limits: InputLimits) -> list[zipfile.ZipInfo]:
    """The members of the zip at ``path``, or :class:`InputError` if it looks hostile."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{layer}: {path}: is not a valid zip file ({exc})") from None
    if len(infos) > limits.max_zip_members:
        raise InputError(f"{layer}: {path}: " + limits.exceeded("max_zip_members", f"holds {len(infos):,} files"))
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in Path(name.replace("\\", "/")).parts or ":" in name.split("/")[0]:
            raise InputError(f"{layer}: {path}: member {name!r} points outside the archive; refused")
        if (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
            raise InputError(f"{layer}: {path}: member {name!r} is a symbolic link; refused")
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > limits.max_zip_ratio:
            raise InputError(
                f"{layer}: {path}: member {name!r} "
                + limits.exceeded("max_zip_ratio", f"expands {ratio:,.0f}x (a possible zip bomb)")
            )
    if total > limits.max_zip_uncompressed_mb * 1024**2:
        raise InputError(
            f"{layer}: {path}: "
            + limits.exceeded("max_zip_uncompressed_mb", f"expands to {total / 1024**2:,.0f} MB (a possible zip bomb)")
        )
    return infos
