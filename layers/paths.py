"""Which paths minewatch opens: plain local files only.

GDAL understands many strings as datasets (``/vsicurl/``, URLs, ``/vsizip/``...):
opening one means fetching or unpacking whatever it names. A user path is therefore
checked here first, and GDAL virtual paths are only ever built by minewatch itself
(for a ``.zip`` Shapefile given directly).
"""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path

from geo.errors import InputError

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def local_path(raw: str | Path, *, layer: str, want_dir: bool | None = False) -> Path:
    """Return ``raw`` as an existing local path, or raise :class:`InputError`.

    Parameters
    ----------
    raw:
        The path as the user gave it.
    layer:
        The layer it is for ("concessions", "production", ...), named in messages.
    want_dir:
        True for a folder, False for a regular file, None for either.
    """
    text = str(raw)
    if text.startswith("/vsi") or _URL.match(text):
        raise InputError(
            f"{layer}: {text}: GDAL virtual paths and URLs are not accepted; "
            "give a local file (a .zip Shapefile can be given directly)"
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise InputError(f"{layer}: {text}: no such file or folder")
    mode = path.stat().st_mode
    if want_dir is True and not stat.S_ISDIR(mode):
        raise InputError(f"{layer}: {text}: expected a folder")
    if want_dir is False and not stat.S_ISREG(mode):
        raise InputError(f"{layer}: {text}: expected a regular file")
    if want_dir is None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(f"{layer}: {text}: expected a regular file or a folder")
    if stat.S_ISREG(mode):
        check_content(path, layer)
    return path


def check_content(path: Path, layer: str) -> None:
    """Refuse a file that is not what its name says: a GDAL virtual dataset, or another format.

    Every file minewatch hands to GDAL passes here first, whether the user named it or it
    was found in a folder or catalog the user named.
    """
    refuse_virtual_dataset(path, layer)
    require_signature(path, layer)


VIRTUAL_MARKERS = (b"<vrtdataset", b"<ogrvrtdatasource", b"<gdal_wms", b"<wms_capabilities", b"<wmts_capabilities")


def refuse_virtual_dataset(path: Path, layer: str) -> None:
    """Refuse a GDAL virtual dataset (VRT, WMS...) whatever its file name says.

    Such a file names other files or URLs that GDAL would read on opening it (a ``.tif``
    that is really a VRT pointing at ``/etc/passwd``, say), so it is refused unread.
    """
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip().lower()
    if head.startswith(b"<?xml"):
        head = head.split(b"?>", 1)[-1].lstrip()
    if head.startswith(VIRTUAL_MARKERS):
        raise InputError(
            f"{layer}: {path}: is a GDAL virtual dataset (it points at other files or servers); "
            "give the data itself, e.g. a GeoTIFF made with gdal_translate"
        )


# What each accepted file type must start with. A file whose bytes are not what its name
# says is refused before GDAL sees it: GDAL picks a driver by content, so a ".gpkg" that is
# really a VRT, a KML with network links or any other format would otherwise be opened by
# whatever driver claims it. This is the allow-list of formats, one per suffix.
FILE_SIGNATURES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".gpkg": ("GeoPackage", (b"SQLite format 3\x00",)),
    ".shp": ("Shapefile", (b"\x00\x00\x27\x0a",)),
    ".fgb": ("FlatGeobuf", (b"fgb\x03",)),
    ".parquet": ("GeoParquet", (b"PAR1",)),
    ".geoparquet": ("GeoParquet", (b"PAR1",)),
    ".zip": ("zip", (b"PK\x03\x04", b"PK\x05\x06")),
    ".xlsx": ("Excel (.xlsx)", (b"PK\x03\x04",)),
    ".xlsm": ("Excel (.xlsm)", (b"PK\x03\x04",)),
    ".xls": ("Excel 97 (.xls)", (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",)),
    ".tif": ("GeoTIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
    ".tiff": ("GeoTIFF", (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")),
    ".jp2": ("JPEG 2000", (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")),
}
JSON_SUFFIXES = {".geojson", ".json"}


def require_signature(path: Path, layer: str) -> None:
    """Refuse a file whose first bytes are not those of the format its suffix names.

    GeoJSON must begin (after a byte-order mark and white space) with ``{``. Suffixes
    without a signature (``.csv``, ``.txt``) pass; what reads them accepts only text.
    """
    suffix = path.suffix.lower()
    with open(path, "rb") as handle:
        head = handle.read(64)
    if suffix in JSON_SUFFIXES:
        if not head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{"):
            raise InputError(f"{layer}: {path}: is not a GeoJSON file (it does not begin with '{{')")
        return
    if suffix in FILE_SIGNATURES:
        name, signatures = FILE_SIGNATURES[suffix]
        if not head.startswith(signatures):
            found = "it is empty" if not head else "its first bytes are those of another format"
            raise InputError(f"{layer}: {path}: does not hold {name} data ({found}); refused unread")


def require_inside(path: Path, folder: Path, layer: str) -> None:
    """Refuse ``path`` if it resolves (through links or ``..``) to somewhere outside ``folder``.

    A folder or catalog from a stranger may hold a link named ``2021.tif`` to a private
    file, or an asset ``../../home/user/secret.tif``; only what lies inside is read.
    """
    resolved, root = path.resolve(), folder.resolve()
    if not resolved.is_relative_to(root):
        raise InputError(f"{layer}: {path}: leads outside {folder} (to {resolved}); refused")


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
