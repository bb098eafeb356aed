"""The exceptions minewatch raises for problems a user can fix.

Every message names the layer, the file, the row or feature, and the fix; the command
line prints ``str(error)`` on one line and exits with status 2.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


class MinewatchError(Exception):
    """Base of every error minewatch raises on purpose."""


class InputError(MinewatchError):
    """An input file or value is missing, unreadable or invalid."""


class CRSError(InputError):
    """A dataset has no coordinate reference system, or one that cannot be used."""


class SettingsError(MinewatchError):
    """A setting (command line or TOML file) has an unknown name or a bad value."""


def raised_plainly(function: Callable) -> Callable:
    """``function`` as a task: a :class:`MinewatchError` it raises leaves without the exceptions it was raised from.

    On a Dask cluster a task's exception travels to the client pickled together with its
    cause and context (``tblib``). Ours are raised while handling a library's exception
    (``raise InputError(...) from None`` still keeps it as the context), and some of those
    do not unpickle: rasterio's ``CPLE_OpenFailedError`` has a read-only ``args``. Dask
    then hands the client a bare ``Exception("InputError('...')")``, and the command line
    prints a traceback and exits 1 instead of the one-line message and 2. Our message
    already says what went wrong, so the context is dropped.
    """

    @functools.wraps(function)
    def task(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except MinewatchError as error:
            error.__cause__ = error.__context__ = None
            raise

    return task
