"""The exceptions minewatch raises for problems a user can fix.

Every message names the layer, the file, the row or feature, and the fix; the command
line prints ``str(error)`` on one line and exits with status 2.
"""


class MinewatchError(Exception):
    """Base of every error minewatch raises on purpose."""


class InputError(MinewatchError):
    """An input file or value is missing, unreadable or invalid."""


class CRSError(InputError):
    """A dataset has no coordinate reference system, or one that cannot be used."""


class SettingsError(MinewatchError):
    """A setting (command line or TOML file) has an unknown name or a bad value."""
