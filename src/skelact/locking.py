"""One writer per place: an exclusive lock on a run directory, a store being written or a pose-extraction output.

The lock is ``fcntl.flock`` on a small file in (or beside) the place. The kernel drops it when the holding process
dies, however it dies (``kill -9`` included), so a stale lock cannot block anyone: a dead holder's file is simply
locked again by the next process, which then writes its own details into it. The file's text (process id, host,
start time, command) is only there to name the holder in the error a second writer gets.

A forked child (a ``DataLoader`` worker) inherits copies of the held descriptors, and ``flock`` stays held while
any copy is open, so a worker outliving its killed parent for a few seconds would keep the place locked. Children
never write the place: they close their copies right after the fork.

File systems without ``flock`` (some network mounts) raise ``OSError`` on the call; there the lock is skipped with
a warning rather than making the place unusable.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import warnings
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from types import TracebackType

try:  # POSIX only; on other systems the lock is a no-op (documented in docs/architecture.md)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from skelact.errors import LockedError

#: the lock file's name inside a run directory
LOCK_FILE = ".skelact.lock"


def _holder_text(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return (f"process {info.get('pid')} on {info.get('host')} since {info.get('started')}"
                f" ({info.get('command')})")
    except (OSError, ValueError, AttributeError):
        return "another process"


#: the locks this process holds (strong references: a dropped, unreleased lock still holds its descriptor), closed
#: in forked children (see the module's docstring)
_HELD: "set[WriterLock]" = set()


class WriterLock:
    """An exclusive, non-blocking lock held through a file at ``lock_path``; a context manager.

    ``what`` names the place in the error (``run directory``, ``store``, ...). Acquiring fails at once with
    :class:`LockedError` naming the holder when a live process holds it. Re-entrant within one process is not
    supported: a second :meth:`acquire` on the same path from the same process also fails, which is what two
    commands racing in one test process must see.
    """

    def __init__(self, lock_path: str | PathLike, what: str, place: str | PathLike | None = None):
        self.lock_path = Path(lock_path)
        self.what = what
        self.place = Path(place) if place is not None else self.lock_path.parent
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "WriterLock":
        if self._fd is not None or fcntl is None:
            return self
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(f"in use by {_holder_text(self.lock_path)}; wait for it to finish, or stop it",
                                  self.place, self.what) from None
            warnings.warn(f"{self.lock_path}: cannot lock ({error.strerror}); not guarding against a second writer",
                          stacklevel=2)
            return self
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv[:3])[:200]}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        except OSError:  # a full disk must not keep the lock from working; the holder is then unnamed
            pass
        self._fd = fd
        _HELD.add(self)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _HELD.discard(self)
        # the file stays: unlinking it would let a third process lock a new inode while a second waits on the old
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing drops the flock

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _close_copies_in_forked_child() -> None:
    for lock in list(_HELD):
        fd, lock._fd = lock._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_copies_in_forked_child)


def lock_dir(directory: str | PathLike, what: str) -> WriterLock:
    """The :class:`WriterLock` of a directory (a run directory, a pose-extraction output folder), not acquired."""
    directory = Path(directory)
    return WriterLock(directory / LOCK_FILE, what, directory)


def lock_beside(target: str | PathLike, what: str) -> WriterLock:
    """The :class:`WriterLock` of a path that is created whole by renaming (a store): the lock file sits beside it,
    ``.<name>.lock``, since the target itself does not exist until the end."""
    target = Path(target)
    return WriterLock(target.parent / f".{target.name}.lock", what, target)
