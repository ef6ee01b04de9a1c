"""Video files in and out through PyAV (FFmpeg): RGB frames with their rate and count, or one clear error.

Reading gives ``uint8 [H, W, 3]`` RGB frames of the first video stream, in presentation order, optionally scaled
down by FFmpeg's swscale on the way out of the decoder (``max_side``), which costs far less than decoding the full
frame and resizing it afterwards. Every problem a user can cause is a :class:`~skelact.errors.DataError` naming the
file: a missing or empty file, a file FFmpeg cannot read as a container ("not a video"), a container without a
video stream, a stream with no frames, and a decoding failure part-way (naming the frame).

The frame count that matters is the number of frames decoded; containers often declare a different one (AVI
headers of truncated files, variable-rate MP4s), which :class:`VideoInfo` keeps as ``declared_frames``.

PyAV is imported only when a video is opened: ``pip install 'skelact[video]'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import ConfigError, DataError

#: file name endings a folder scan treats as videos (lower case)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
                  ".ts", ".mts", ".ogv")


def _av() -> Any:
    try:
        import av
    except ImportError as e:
        raise ConfigError(f"reading video needs PyAV ({e}); install it with pip install 'skelact[video]'",
                          field="video") from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream. ``width``/``height`` are the coded size."""

    path: str
    width: int
    height: int
    fps: float
    #: frame count in the container header (``None`` when it gives none); the decoded count may differ
    declared_frames: int | None
    codec: str
    #: seconds, from the stream or container header, when known
    duration: float | None


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """``(w, h)`` with the longer side at most ``max_side``, the aspect ratio kept (never scaled up)."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 16:
        raise ConfigError(f"max_side must be at least 16 pixels, got {max_side}", field="max_side")
    factor = max_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


class VideoReader:
    """Decode one video file into RGB frames. Use as a context manager, or call :meth:`close`.

    ``max_side`` scales frames down so that the longer side is at most that many pixels (``frame_size`` gives the
    result; keypoints found on such frames are scaled back by ``scale``). ``threads``: decoder threads; ``None``
    lets FFmpeg choose (frame and slice threading over all cores), 1 decodes in the calling thread, which is the
    better choice when several videos are decoded in parallel processes.
    """

    def __init__(self, path: str | PathLike, max_side: int | None = None, threads: int | None = None):
        self.path = Path(path)
        av = _av()
        if not self.path.exists():
            raise DataError("no such file", self.path)
        if self.path.is_dir():
            raise DataError("is a folder, not a video file", self.path)
        if self.path.stat().st_size == 0:
            raise DataError("empty file (0 bytes), not a video", self.path)
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as e:
            raise DataError(f"not a video file FFmpeg can read ({_ffmpeg_reason(e)})", self.path,
                            "container") from None
        except (OSError, IndexError) as e:  # PyAV reads a header with no streams as an IndexError
            raise DataError(f"cannot open as a video ({e})", self.path, "container") from None
        try:
            streams = self._container.streams.video
            if not streams:
                kinds = sorted({s.type for s in self._container.streams}) or ["none"]
                raise DataError(f"has no video stream (streams: {', '.join(kinds)})", self.path, "streams")
            self._stream = streams[0]
            if threads is None:
                self._stream.thread_type = "AUTO"
            else:
                self._stream.thread_count = int(threads)
            ctx = self._stream.codec_context
            width, height = int(ctx.width or 0), int(ctx.height or 0)
            if width < 1 or height < 1:
                raise DataError(f"video stream has no frame size ({width}x{height})", self.path, "streams")
            rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
            fps = float(rate) if rate else 0.0
            duration = None
            if self._stream.duration is not None and self._stream.time_base is not None:
                duration = float(self._stream.duration * self._stream.time_base)
            elif self._container.duration is not None:
                duration = self._container.duration / 1_000_000  # AV_TIME_BASE
            declared = int(self._stream.frames or 0) or None
            self.info = VideoInfo(path=str(self.path), width=width, height=height, fps=fps,
                                  declared_frames=declared, codec=str(ctx.name), duration=duration)
            self.frame_size = scaled_size(width, height, max_side)
        except BaseException:
            self._container.close()
            raise
        #: multiply frame coordinates by this to get coordinates in the video's full resolution
        self.scale = (width / self.frame_size[0], height / self.frame_size[1])
        self.frames_read = 0

    def __iter__(self) -> Iterator[np.ndarray]:
        av = _av()
        w, h = self.frame_size
        full = (w, h) == (self.info.width, self.info.height)
        try:
            for frame in self._container.decode(self._stream):
                if full and frame.width == w and frame.height == h:
                    rgb = frame.to_ndarray(format="rgb24")
                else:
                    rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
                self.frames_read += 1
                yield rgb
        except av.error.FFmpegError as e:
            raise DataError(f"decoding failed after {self.frames_read} frame(s) ({_ffmpeg_reason(e)})", self.path,
                            f"frame {self.frames_read}") from None
        if self.frames_read == 0:
            raise DataError("the video stream holds no frames (zero-length video)", self.path, "frames")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's message without the errno and the repeated file name PyAV adds."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip()


def probe_video(path: str | PathLike) -> VideoInfo:
    """The header facts of a video, without decoding it."""
    with VideoReader(path) as reader:
        return reader.info


def read_video(path: str | PathLike, max_side: int | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Every frame as one ``uint8 [T, H, W, 3]`` array (short clips only: a minute of 1080p is 11 GB)."""
    with VideoReader(path, max_side=max_side) as reader:
        frames = list(reader)
        return np.stack(frames), reader.info


def write_video(path: str | PathLike, frames: Iterable[np.ndarray], fps: float, codec: str = "libx264",
                crf: int = 23) -> int:
    """Encode RGB ``uint8 [H, W, 3]`` frames into ``path`` (MP4 with H.264 by default); returns the frame count.

    Odd frame sizes are padded by one black row or column: H.264 in yuv420p needs even sides. The file is written
    under a temporary name and renamed when complete, so an interrupted render leaves no half-written video.
    """
    import os

    av = _av()
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
                if codec in ("libx264", "h264"):
                    stream.options = {"crf": str(crf)}
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
    from fractions import Fraction

    if not fps or fps <= 0 or not np.isfinite(fps):
        raise DataError(f"frame rate must be a positive number, got {fps!r}", field="fps")
    return Fraction(float(fps)).limit_denominator(1001)
