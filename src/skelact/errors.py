"""Errors that speak to users.

Every problem a user can cause (a bad file, a wrong layout, a config typo, a missing dataset) is raised as a
:class:`SkelactError` naming the file, the field and what was expected. The CLI prints it as one line and exits
non-zero; anything else escaping is a bug in skelact.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from os import PathLike


#: ``PosixPath('/x')``, ``WindowsPath('C:/x')``, ``PurePosixPath("x")``: how ``repr`` shows a path
_PATH_REPR = re.compile(r"\b(?:Pure)?(?:Posix|Windows)?Path\((['\"])(.*?)\1\)")


class SkelactError(Exception):
    """A user-facing error: ``<path>: <field>: <message>`` on one line."""

    def __init__(self, message: str, path: str | PathLike | None = None, field: str | None = None):
        # a path formatted with !r reads PosixPath('...') to a user; every message shows the bare path instead
        self.message = _PATH_REPR.sub(lambda m: m.group(2), str(message))
        self.path = None if path is None else str(path)
        self.field = field
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.field) if p]
        parts.append(self.message)
        return ": ".join(parts)


class DataError(SkelactError):
    """A source file (or a sample inside it) is unreadable, malformed or inconsistent."""


class LayoutError(SkelactError):
    """A skeleton layout is invalid or does not match the data."""


class StoreError(SkelactError):
    """A dataset store is missing, incomplete or corrupt."""


class ConfigError(SkelactError):
    """A configuration key is unknown or a value has the wrong type."""


class DiskFullError(SkelactError):
    """Writing failed because the file system is full (``ENOSPC``) or the user is over quota (``EDQUOT``)."""


class UnsafePickleError(DataError):
    """A data pickle names a global outside ``skelact.data.safe_pickle.ADMITTED_GLOBALS``; nothing it names was
    called."""


class RunError(SkelactError):
    """A run directory is missing, incomplete (no config, no checkpoint) or cannot be resumed."""


class TrainingDiverged(SkelactError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class MissingDependencyError(SkelactError):
    """An optional dependency needed for this command is not installed."""


class LockedError(SkelactError):
    """Another live process holds the lock on the place this process wants to write (``skelact.locking``)."""


def is_disk_full(error: BaseException) -> bool:
    """True for the ``OSError`` a write raises on a full disk or an exhausted quota."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def _megabytes(n: float) -> str:
    """Bytes in the unit a person reads at a glance (a small store must not read "0.0 MB")."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def disk_full_error(path: str | PathLike, needed_bytes: int | None = None, field: str | None = None) -> DiskFullError:
    """The one-line error for a full disk at ``path``: the space free there now and, when known, the space the
    write needed."""
    try:
        free = shutil.disk_usage(_existing_parent(path)).free
        free_text = f"{_megabytes(free)} free there"
    except OSError:
        free_text = "free space unknown"
    needed = f"; about {_megabytes(needed_bytes)} needed" if needed_bytes else ""
    return DiskFullError(f"no space left on the device ({free_text}{needed}); free some space and run again",
                         path, field)


def _existing_parent(path: str | PathLike) -> str:
    p = os.path.abspath(path)
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    return p
