"""Write a folder of outputs all at once, or not at all.

Files go into a temporary sibling folder, which then replaces the target by renames; a
failed or killed run leaves the previous folder as it was. A target that exists and is
not an earlier output of ours (it lacks ``marker``) is refused, so a mistyped path never
deletes someone's files.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geo.errors import InputError


@contextmanager
def folder_lock(target: str | Path) -> Iterator[None]:
    """Hold ``<target>.lock`` beside ``target`` for a whole run, or refuse at once.

    A second ``analyze`` into the same folder while one runs would interleave their
    outputs; it stops with an error naming the folder instead. The lock is the
    operating system's (``flock``): a killed run releases it by dying.
    """
    out = Path(target).expanduser().absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = open(out.with_name(f"{out.name}.lock"), "a+")  # noqa: SIM115 - held for the with block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"--out {out}: another minewatch run is writing this folder; wait for it to end") from None
        yield
    finally:
        handle.close()


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
