"""What a container says about its first video stream, and the frame size a reader scales it to."""

from __future__ import annotations

from dataclasses import dataclass

from skelact.errors import ConfigError


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
