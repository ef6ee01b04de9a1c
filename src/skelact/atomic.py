"""Atomic file writes: a crash or Ctrl-C leaves the old file or the new one, never half of one.

Every layer writes through here (run configs and logs' side files, checkpoints, evaluation outputs, exported
pickles), so there is one place that gets the details right: the temporary file sits beside the target (a rename
is only atomic within one file system), its data is flushed to disk before the rename, it is made readable by
others (``mkstemp`` creates it private), and it is removed when anything goes wrong.
"""

from __future__ import annotations

import os
import tempfile
from os import PathLike
from pathlib import Path
from typing import BinaryIO, Callable


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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | PathLike, data: bytes, fsync: bool = False) -> Path:
    """:func:`write_atomic` of ``data``."""
    return write_atomic(path, lambda handle: handle.write(data), fsync)


def write_text_atomic(path: str | PathLike, text: str, fsync: bool = False) -> Path:
    """UTF-8 text version of :func:`write_bytes_atomic`."""
    return write_bytes_atomic(path, text.encode("utf-8"), fsync)
