"""Write a folder of outputs all at once, or not at all.

Files go into a temporary sibling folder, which then replaces the target by renames; a
failed or killed run leaves the previous folder as it was. A target that exists and is
not an earlier output of ours (it lacks ``marker``) is refused, so a mistyped path never
deletes someone's files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geo.errors import InputError


@contextmanager
def atomic_folder(target: str | Path, marker: str) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes ``target`` (which must hold ``marker``)."""
    out = Path(target).expanduser().absolute()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / marker).exists())):
        raise InputError(f"--out {out}: exists and is not a minewatch output folder; choose a new or empty folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield staging
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 and flush it to disk."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, retired / "previous")
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(retired / "previous", out)  # put the previous output back
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)
