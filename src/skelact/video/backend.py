"""PyAV, imported only when a video is actually opened: the core install has no FFmpeg, and a missing ``video``
extra is one line telling the user what to install, not an ``ImportError`` traceback."""

from __future__ import annotations

from typing import Any

from skelact.errors import ConfigError


def load_av() -> Any:
    """The ``av`` module, or a :class:`ConfigError` saying how to install it."""
    try:
        import av
    except ImportError as e:
        raise ConfigError(f"reading video needs PyAV ({e}); install it with pip install 'skelact[video]'",
                          field="video") from None
    return av


def ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's message without the errno and the repeated file name PyAV adds."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).strip()
