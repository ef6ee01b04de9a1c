"""Atomic file writes: a crash or Ctrl-C leaves the old file or the new one, never half of one.

Every layer writes through here (run configs and logs' side files, checkpoints, evaluation outputs, exported
pickles), so there is one place that gets the details right: the temporary file sits beside the target (a rename
is only atomic within one file system), its data is flushed to disk before the rename, it is made readable by
others (``mkstemp`` creates it private), and it is removed when anything goes wrong. A failed write names its
target (the ``OSError``'s ``filename``), so a full disk can be reported against the file the user knows.

Only ``kill -9`` (or a power cut) can leave a temporary behind: ``.<name>.<8 random characters>.tmp``.
:func:`remove_leftover_temporaries` deletes those of a directory; callers run it only while they hold the place's
writer lock (:mod:`skelact.locking`), when no other process can be in the middle of a write there.
"""

from __future__ import annotations

import os
import re
import tempfile
from os import PathLike
from pathlib import Path
from typing import BinaryIO, Callable

#: ``tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")``: the random part is 8 of ``[a-z0-9_]``
_TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def write_atomic(path: str | PathLike, write: Callable[[BinaryIO], object], fsync: bool = True) -> Path:
    """Call ``write(handle)`` on a binary temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if error.filename is None:  # write() and fsync() errors carry no file name; give the one the user knows
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_leftover_temporaries(directory: str | PathLike) -> list[Path]:
    """Delete the temporaries :func:`write_atomic` left in ``directory`` (not its subfolders) when its process was
    killed mid-write; returns them. Only safe while holding the directory's writer lock."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for entry in directory.iterdir():
        if _TEMPORARY_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return sorted(removed)


def write_bytes_atomic(path: str | PathLike, data: bytes, fsync: bool = False) -> Path:
    """:func:`write_atomic` of ``data``."""
    return write_atomic(path, lambda handle: handle.write(data), fsync)


def write_text_atomic(path: str | PathLike, text: str, fsync: bool = False) -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    return write_bytes_atomic(path, text.encode("utf-8"), fsync)
