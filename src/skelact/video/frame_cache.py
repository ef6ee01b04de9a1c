"""Decoded, resized RGB frames kept on disk, so that repeated epochs over a video dataset decode each clip once.

Decoding is what an RGB model's loader spends its CPU on: a 1920x1080 NTU RGB+D clip decodes at a few hundred
frames per second on one core even when FFmpeg scales it down on the way out, while reading the same frames back
from a memory-mapped array runs at memory speed (docs/benchmarks.md has both figures for the real clips). The cache
keeps, per video and per setting, one ``uint8 [T, H, W, 3]`` ``.npy`` file (NumPy's own format, so any tool reads
it) that :meth:`FrameCache.frames` returns memory-mapped: a loader touches only the frames it samples.

The key is a hash of the video's resolved path, size and modification time and of the resize settings
(``max_side``, ``max_frames``) and :data:`CACHE_VERSION`: a changed video or another size is decoded again, never
served stale. Files are written with :func:`skelact.atomic.write_atomic` (temporary file beside the target, fsync,
rename), so a crash leaves the old state or the new file, and two processes filling the same entry at once both end
with a complete file. An entry that cannot be read back (cut short by a full disk, say) is decoded again.
"""

from __future__ import annotations

import hashlib
import json
import os
from os import PathLike
from pathlib import Path

import numpy as np

from skelact.atomic import write_atomic
from skelact.errors import ConfigError, DataError, StoreError, disk_full_error, is_disk_full
from skelact.video.reader import VideoReader

#: bump when what an entry holds changes, so old entries are not served
CACHE_VERSION = 1


def default_frame_cache_dir() -> Path:
    """``$SKELACT_FRAME_CACHE`` when set, else ``~/.cache/skelact/frames``."""
    env = os.environ.get("SKELACT_FRAME_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "skelact" / "frames"


class FrameCache:
    """Frames of videos decoded once, scaled so the longer side is at most ``max_side`` (``None``: full size),
    at most the first ``max_frames`` frames (``None``: all)."""

    def __init__(self, directory: str | PathLike | None = None, max_side: int | None = None,
                 max_frames: int | None = None):
        self.directory = Path(directory) if directory is not None else default_frame_cache_dir()
        if max_frames is not None and int(max_frames) < 1:
            raise ConfigError(f"must be at least 1, got {max_frames}", field="max_frames")
        self.max_side = None if max_side is None else int(max_side)
        self.max_frames = None if max_frames is None else int(max_frames)

    def key(self, video: str | PathLike) -> str:
        """The entry name of ``video`` under this cache's settings (changes when the file changes)."""
        path = Path(video).resolve()
        st = path.stat()
        facts = {"file": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "max_side": self.max_side,
                 "max_frames": self.max_frames, "version": CACHE_VERSION}
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode("utf-8")).hexdigest()[:32]

    def entry(self, video: str | PathLike) -> Path:
        """Where the frames of ``video`` are (or will be) cached."""
        return self.directory / f"{self.key(video)}.npy"

    def frames(self, video: str | PathLike) -> np.ndarray:
        """``uint8 [T, H, W, 3]`` RGB frames of ``video``, memory-mapped read-only; decoded and stored on a miss.

        Raises :class:`~skelact.errors.DataError` for a video that cannot be decoded (nothing is cached then).
        """
        if not Path(video).is_file():
            raise DataError("no such video file", video)
        entry = self.entry(video)
        cached = _open_entry(entry)
        if cached is not None:
            return cached
        self._fill(video, entry)
        cached = _open_entry(entry)
        if cached is None:
            raise StoreError("the frame cache entry just written cannot be read back", entry)
        return cached

    def decode(self, video: str | PathLike) -> np.ndarray:
        """The frames :meth:`frames` returns, decoded now and not stored."""
        with VideoReader(video, max_side=self.max_side, threads=1) as reader:
            frames = []
            for frame in reader:
                frames.append(frame)
                if self.max_frames is not None and len(frames) >= self.max_frames:
                    break
        return np.stack(frames)

    def _fill(self, video: str | PathLike, entry: Path) -> None:
        frames = self.decode(video)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_atomic(entry, lambda handle: np.save(handle, frames, allow_pickle=False))
        except OSError as e:
            if is_disk_full(e):
                raise disk_full_error(entry, frames.nbytes, "frame cache") from None
            raise StoreError(f"cannot write the frame cache ({e.strerror or e})", entry) from None


def _open_entry(entry: Path) -> np.ndarray | None:
    """The cached array, or ``None`` when there is none or it is unreadable (then it is removed, to be redone)."""
    if not entry.is_file():
        return None
    try:
        arr = np.load(entry, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError):
        entry.unlink(missing_ok=True)
        return None
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] < 1:
        entry.unlink(missing_ok=True)
        return None
    return arr
