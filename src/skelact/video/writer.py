"""Encoding RGB frames into a video file through PyAV, under a temporary name renamed when complete."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import DataError
from skelact.video.backend import load_av


def write_video(path: str | PathLike, frames: Iterable[np.ndarray], fps: float, codec: str = "libx264",
                crf: int = 23, threads: int | None = None, options: Mapping[str, str] | None = None) -> int:
    """Encode RGB ``uint8 [H, W, 3]`` frames into ``path`` (MP4 with H.264 by default); returns the frame count.

    Odd frame sizes are padded by one black row or column: H.264 in yuv420p needs even sides. The file is written
    under a temporary name and renamed when complete, so an interrupted render leaves no half-written video.
    ``threads``: encoder threads (default: the codec's choice); 1 makes H.264 output the same on every machine.
    ``options``: more encoder options, e.g. ``{"preset": "veryfast"}`` (x264 encodes small clips ~3x faster than
    its default ``medium``) or ``{"x264-params": "mbtree=0"}`` (x264's macroblock tree made some clips encode to
    different bytes from identical frames on reruns, even with one thread).
    """
    av = load_av()
    out = Path(path)
    tmp = out.with_name(f".{out.stem}.partial-{os.getpid()}{out.suffix}")
    rate = _rational_rate(fps)
    count = 0
    container = av.open(str(tmp), mode="w")
    try:
        stream = None
        for frame in frames:
            arr = np.asarray(frame)
            if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
                raise DataError(f"frame {count}: expected uint8 [H, W, 3], got {arr.dtype} {arr.shape}", out,
                                "frames")
            h, w = arr.shape[:2]
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.width, stream.height = w + w % 2, h + h % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {**({"crf": str(crf)} if codec in ("libx264", "h264") else {}),
                                  **{str(k): str(v) for k, v in (options or {}).items()}}
                if threads:
                    stream.thread_count = int(threads)
            if (w + w % 2, h + h % 2) != (stream.width, stream.height):
                raise DataError(f"frame {count} is {w}x{h}, earlier frames {stream.width}x{stream.height}", out,
                                "frames")
            if w % 2 or h % 2:
                arr = np.pad(arr, ((0, h % 2), (0, w % 2), (0, 0)))
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")):
                container.mux(packet)
            count += 1
        if stream is None:
            raise DataError("no frames to write", out, "frames")
        for packet in stream.encode(None):
            container.mux(packet)
        container.close()
    except BaseException:
        container.close()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    return count


def _rational_rate(fps: float) -> Any:
    if not fps or fps <= 0 or not np.isfinite(fps):
        raise DataError(f"frame rate must be a positive number, got {fps!r}", field="fps")
    return Fraction(float(fps)).limit_denominator(1001)
