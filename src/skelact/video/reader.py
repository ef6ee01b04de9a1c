"""Decoding a video file into RGB frames through PyAV, or one clear error naming the file.

Reading gives ``uint8 [H, W, 3]`` RGB frames of the first video stream, in presentation order, optionally scaled
down by FFmpeg's swscale on the way out of the decoder (``max_side``), which costs far less than decoding the full
frame and resizing it afterwards. Every problem a user can cause is a :class:`~skelact.errors.DataError` naming the
file: a missing or empty file, a file FFmpeg cannot read as a container ("not a video"), a container without a
video stream, a stream with no frames, and a decoding failure part-way (naming the frame).

The frame count that matters is the number of frames decoded; containers often declare a different one (AVI
headers of truncated files, variable-rate MP4s), which :class:`VideoInfo` keeps as ``declared_frames``.
"""

from __future__ import annotations

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import DataError
from skelact.video.backend import ffmpeg_reason, load_av
from skelact.video.info import VideoInfo, scaled_size


class VideoReader:
    """Decode one video file into RGB frames. Use as a context manager, or call :meth:`close`.

    ``max_side`` scales frames down so that the longer side is at most that many pixels (``frame_size`` gives the
    result; keypoints found on such frames are scaled back by ``scale``). ``threads``: decoder threads; ``None``
    lets FFmpeg choose (frame and slice threading over all cores), 1 decodes in the calling thread, which is the
    better choice when several videos are decoded in parallel processes.
    """

    def __init__(self, path: str | PathLike, max_side: int | None = None, threads: int | None = None):
        self.path = Path(path)
        av = load_av()
        if not self.path.exists():
            raise DataError("no such file", self.path)
        if self.path.is_dir():
            raise DataError("is a folder, not a video file", self.path)
        if self.path.stat().st_size == 0:
            raise DataError("empty file (0 bytes), not a video", self.path)
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.error.FFmpegError as e:
            raise DataError(f"not a video file FFmpeg can read ({ffmpeg_reason(e)})", self.path,
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
        av = load_av()
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
            raise DataError(f"decoding failed after {self.frames_read} frame(s) ({ffmpeg_reason(e)})", self.path,
                            f"frame {self.frames_read}") from None
        if self.frames_read == 0:
            raise DataError("the video stream holds no frames (zero-length video)", self.path, "frames")

    def count_coded_frames(self) -> int:
        """Frames present in the file, counted from the stream's packets without decoding any (milliseconds for a
        clip that takes a second to decode). Call before iterating, on a fresh reader."""
        av = load_av()
        count = 0
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:  # the demuxer ends a stream with an empty flush packet
                    count += 1
        except av.error.FFmpegError as e:
            raise DataError(f"reading the file failed after {count} frame(s) ({ffmpeg_reason(e)})", self.path,
                            f"frame {count}") from None
        self._container.seek(0)
        return count

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_video(path: str | PathLike, max_side: int | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Every frame as one ``uint8 [T, H, W, 3]`` array (short clips only: a minute of 1080p is 11 GB)."""
    with VideoReader(path, max_side=max_side) as reader:
        frames = list(reader)
        return np.stack(frames), reader.info
