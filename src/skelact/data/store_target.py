"""Where a store is written: the checks on OUT, its one-writer lock, the clean-up of what a killed writer left
beside it, and the report of a finished write. Shared by every writer of a store (``prepare`` of skeleton and
video sources, ``extract-poses``), so each gets the same guarantees: one writer per OUT at a time, an existing
store replaced only when asked, leftovers of a killed run removed under the lock.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelact.data.store import FORMAT_NAME, MANIFEST
from skelact.errors import ConfigError, SkelactError, StoreError, disk_full_error, is_disk_full
from skelact.locking import LockedError, WriterLock, lock_beside


@dataclass
class PrepareReport:
    """What :func:`prepare` did. ``rejected`` holds ``{"file", "reason"}`` for every skipped item."""

    out: Path
    format: str
    source: str
    num_items: int
    num_samples: int
    total_frames: int
    seconds: float
    workers: int
    rejected: list[dict[str, str]] = field(default_factory=list)
    splits: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def files_per_second(self) -> float:
        return self.num_items / self.seconds if self.seconds > 0 else float("inf")

    def summary(self, max_rejected: int = 20) -> str:
        """Human-readable lines for the end of ``skelact prepare``."""
        lines = [f"wrote {self.num_samples} samples ({self.total_frames} frames) from {self.num_items} "
                 f"{self.format} item(s) to {self.out} in {self.seconds:.1f} s "
                 f"({self.files_per_second:.0f} files/s, {self.workers} worker(s))"]
        for split, subsets in self.splits.items():
            lines.append(f"split {split}: " + ", ".join(f"{k} {v}" for k, v in subsets.items()))
        for w in self.warnings:
            lines.append(f"warning: {w}")
        if self.rejected:
            lines.append(f"rejected {len(self.rejected)} item(s):")
            for r in self.rejected[:max_rejected]:
                lines.append(f"  {r['file']}: {r['reason']}")
            if len(self.rejected) > max_rejected:
                lines.append(f"  ... and {len(self.rejected) - max_rejected} more (all are listed in "
                             f"{self.out / MANIFEST} under 'rejected')")
        return "\n".join(lines)


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1




def store_write_error(error: BaseException, out: Path, needed_bytes: int | None = None) -> SkelactError | None:
    """The one-line error for a write of the store ``out`` that failed with ``error``: a full disk names the file
    it filled and the space the store needs (``needed_bytes``, when known); another OS error (no permission, ...)
    says where; None for anything else, which the caller re-raises."""
    if is_disk_full(error):
        full_file = Path(error.filename).name if getattr(error, "filename", None) else None
        return disk_full_error(out, needed_bytes, full_file)
    if isinstance(error, OSError):
        return StoreError(f"cannot write the store ({error.strerror or error})", error.filename or out)
    return None

def worker_count(workers: int | None, num_items: int) -> int:
    """The processes a writer uses for ``num_items`` items: ``workers`` (default all cores), never more than there
    are items; fewer than 1 is a :class:`ConfigError` on ``workers``."""
    n = default_workers() if workers is None else int(workers)
    if n < 1:
        raise ConfigError(f"must be at least 1, got {workers}", field="workers")
    return min(n, num_items)

def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an OUT that exists unless ``overwrite`` and it is a store or an empty folder; refuse a missing parent."""
    if not (out.exists() or out.is_symlink()):
        if not out.parent.is_dir():
            raise StoreError("parent directory does not exist", out.parent)
        return
    if not overwrite:
        raise StoreError("already exists; pass --overwrite (overwrite=True) to replace it", out)
    # --overwrite replaces a store or an empty folder, never an arbitrary directory given by mistake
    if out.is_dir() and not out.is_symlink():
        manifest = out / MANIFEST
        is_store = manifest.is_file() and f'"{FORMAT_NAME}"' in manifest.read_text(errors="replace")[:4096]
        if is_store or not any(out.iterdir()):
            return
    raise StoreError("exists and is not a skelact store; refusing to replace it even with --overwrite", out)


def acquire_store_lock(out: Path, wait: bool = False, what: str = "store", poll_seconds: float = 0.5,
                       log: Any = None) -> WriterLock:
    """The acquired :func:`~skelact.locking.lock_beside` lock of the store ``out``.

    Without ``wait`` a held lock raises :class:`~skelact.locking.LockedError` at once. With it, this polls until
    the holder is gone (the kernel frees a flock when its process dies, so a dead holder cannot make this wait
    forever; a live one that hangs can, and the message ``log`` gets names it).
    """
    lock = lock_beside(out, what)
    told = False
    while True:
        try:
            return lock.acquire()
        except LockedError as e:
            if not wait:
                raise
            if not told and log is not None:
                log(f"waiting: {e}")
                told = True
            time.sleep(poll_seconds)



def store_lock(out: Path, *, wait: bool = False, held: bool = False) -> AbstractContextManager:
    """A context holding OUT's lock for a writer: :func:`acquire_store_lock`, or nothing when the caller already
    holds it (``held``: the store cache takes the lock once to look, announce and prepare under it)."""
    return nullcontext() if held else acquire_store_lock(out, wait=wait)

def clean_leftovers(out: Path) -> list[Path]:
    """Delete what a killed earlier writer of ``out`` left beside it; call only while holding its lock.

    ``.OUT.partial-*``: an unfinished store (removed). ``.OUT.old-*``: a complete previous store set aside by
    ``--overwrite``; it is put back when OUT is missing (the writer died between its two renames) and removed
    otherwise. ``.OUT.*.tmp``: an unfinished atomic file write (removed). Returns what was removed.
    """
    removed: list[Path] = []
    prefix = f".{out.name}."
    try:
        siblings = sorted(p for p in out.parent.iterdir() if p.name.startswith(prefix))
    except OSError:
        return removed
    for p in siblings:
        rest = p.name[len(prefix):]
        if rest.startswith("old-") and not (out.exists() or out.is_symlink()):
            os.replace(p, out)
            continue
        if not (rest.startswith(("partial-", "old-")) or rest.endswith(".tmp")):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed
