"""Write a folder of outputs all at once, or not at all, even if the process is killed.

Files go into a hidden staging folder beside the target (``.<name>.tmp-*``), which then
takes the target's place in one atomic step: Linux's ``renameat2(RENAME_EXCHANGE)``
swaps the two folders, so at every instant ``<name>`` is either the complete previous
output or the complete new one. (Elsewhere, two renames are used and a run killed
between them is repaired by the next run.) A run killed before the swap leaves only its
hidden staging folder, which the next run writing the same target removes.

A target that exists and is not an earlier output of ours (it lacks ``marker``) is
refused, so a mistyped path never deletes someone's files. Every write holds the
target's lock (:func:`folder_lock`), so two runs never interleave.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geo.errors import InputError

_held: dict[Path, int] = {}  # targets whose lock this process holds, with a nesting count


@contextmanager
def folder_lock(target: str | Path) -> Iterator[None]:
    """Hold ``<target>.lock`` beside ``target`` for a whole run, or refuse at once.

    A second ``analyze`` into the same folder while one runs would interleave their
    outputs; it stops with an error naming the folder instead. The lock is the
    operating system's (``flock``): a killed run releases it by dying. Within one
    process the lock is re-entrant (``analyze`` holds it while it reads and computes,
    and writing the folder takes it again).

    Nothing is left behind by a run that ends, well or badly: the lock file is removed
    on release (a run that finds its lock file replaced meanwhile takes the new one),
    and folders made for ``target``'s parent are removed again if they stayed empty.
    """
    out = Path(target).expanduser().absolute()
    if out in _held:
        _held[out] += 1
        try:
            yield
        finally:
            _held[out] -= 1
        return
    made = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.with_name(f"{out.name}.lock")
    handle = _acquire(path, out)
    _held[out] = 1
    try:
        yield
    finally:
        del _held[out]
        path.unlink(missing_ok=True)  # still ours: unlinked before the lock is let go
        handle.close()
        for folder in made:  # innermost first
            with contextlib.suppress(OSError):  # not empty: the run wrote its output there
                folder.rmdir()


def _acquire(path: Path, out: Path):
    """Open and lock ``path``; retry if another run removed or replaced it in between."""
    while True:
        handle = open(path, "a+")  # noqa: SIM115 - returned open, closed by folder_lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise InputError(f"--out {out}: another minewatch run is writing this folder; wait for it to end") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # we locked a file the previous holder had just removed: try the new one


@contextmanager
def atomic_folder(target: str | Path, marker: str) -> Iterator[Path]:
    """Yield a staging folder; on success it becomes ``target`` (which must hold ``marker``)."""
    out = Path(target).expanduser().absolute()
    with folder_lock(out):
        _recover(out)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / marker).exists())):
            raise InputError(f"--out {out}: exists and is not a minewatch output folder; choose a new or empty folder")
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            yield staging
            _fsync_tree(staging)
            _swap_in(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 and flush it to disk."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def leftovers(target: str | Path) -> list[Path]:
    """Staging or retired folders of ``target`` left by a killed run (removed by the next one)."""
    out = Path(target).expanduser().absolute()
    if not out.parent.is_dir():
        return []
    prefixes = (f".{out.name}.tmp-", f".{out.name}.old-")
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(prefixes))


def _recover(out: Path) -> None:
    """Under the lock: put back a previous output a killed swap left retired, then sweep leftovers."""
    for retired in leftovers(out):
        if retired.name.startswith(f".{out.name}.old-") and not out.exists() and (retired / "previous").is_dir():
            os.rename(retired / "previous", out)
    for stale in leftovers(out):
        shutil.rmtree(stale, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder``, and the folder, to disk before it is swapped in."""
    for path in [*folder.rglob("*"), folder]:
        if path.is_file() or path.is_dir():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2``); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this kernel or file system cannot
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    if _exchange(staging, out):  # staging now holds the previous output, removed by the caller
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, retired / "previous")
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(retired / "previous", out)  # put the previous output back
        raise
    shutil.rmtree(retired, ignore_errors=True)
