"""Which files a folder scan takes for videos: by their ending, so a scan never opens every file it passes."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

#: file name endings a folder scan treats as videos (lower case)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
                  ".ts", ".mts", ".ogv")


def is_video_name(path: str | PathLike) -> bool:
    """True when the file's ending is one of :data:`VIDEO_SUFFIXES` (any case)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES
