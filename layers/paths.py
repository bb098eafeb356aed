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
        refuse_virtual_dataset(path, layer)
    return path


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


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
