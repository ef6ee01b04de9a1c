"""What ``skelact prepare video-folder`` needs to know about a video before storing a reference to it.

:func:`probe_video` reads only the header. :func:`probe_frames` also counts the frames the file really holds (its
packets, without decoding them) and decodes the first one, so a file FFmpeg cannot decode, a file with no frames
and a truncated file are refused with their reason. Truncation shows as fewer frames present than the container
declares: an AVI cut short keeps its header (a 1 MB NTU RGB+D clip cut to 400 kB declares 103 frames and holds
22). A container that declares no count (some MP4 and WebM files) is taken at the count found.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike

from skelact.errors import DataError
from skelact.video.info import VideoInfo
from skelact.video.reader import VideoReader


@dataclass(frozen=True)
class ProbedVideo:
    """A video's header facts and the number of frames it holds."""

    info: VideoInfo
    frames: int


def probe_video(path: str | PathLike) -> VideoInfo:
    """The header facts of a video, without decoding it."""
    with VideoReader(path) as reader:
        return reader.info


def probe_frames(path: str | PathLike) -> ProbedVideo:
    """Header facts and frame count, or a :class:`DataError` saying why the file is not a usable video."""
    with VideoReader(path, threads=1) as reader:
        frames = reader.count_coded_frames()
        info = reader.info
        if frames == 0:
            raise DataError("the video stream holds no frames (zero-length video)", reader.path, "frames")
        if info.declared_frames is not None and frames < info.declared_frames:
            raise DataError(f"truncated: the container declares {info.declared_frames} frames but only {frames} "
                            "are present", reader.path, "frames")
        if info.fps <= 0:
            raise DataError("the video stream has no frame rate", reader.path, "fps")
        next(iter(reader))  # decodes one frame: the codec is usable (raises DataError otherwise)
    return ProbedVideo(info=info, frames=frames)
