"""A sample's reference to its video, and the record of a sample that is a video and a label (no keypoints).

A :class:`VideoRef` names the video by its path relative to the source root the store was prepared from (so a
dataset folder can move: :class:`~skelact.data.store.SkeletonStore` takes another root when opened), with the facts
a clip sampler needs without opening the file: the frames it holds, its rate and its size. In a store with
keypoints the reference is aligned frame by frame with them: keypoint frame ``t`` was estimated on video frame
``t``, which the store checks when it is written (``frames`` equals the keypoints' ``T``).

A :class:`VideoSample` is what the ``video-folder`` reader returns for plain RGB datasets (UCF101, HMDB51,
Kinetics): the store it goes into holds no keypoints until ``skelact extract-poses`` adds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from skelact.errors import DataError


@dataclass(frozen=True)
class VideoRef:
    """Where a sample's video is (relative POSIX path under the source root) and its frame count, rate and size."""

    path: str
    frames: int
    fps: float
    width: int
    height: int

    def __post_init__(self) -> None:
        p = PurePosixPath(self.path)
        if not self.path or p.is_absolute() or ".." in p.parts:
            raise DataError(f"expected a path inside the source root, got {self.path!r}", field="video.path")
        for name in ("frames", "width", "height"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"expected a positive number, got {getattr(self, name)!r}", self.path,
                                f"video.{name}")
        if not float(self.fps) > 0:
            raise DataError(f"expected a positive frame rate, got {self.fps!r}", self.path, "video.fps")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "frames": int(self.frames), "fps": float(self.fps), "width": int(self.width),
                "height": int(self.height)}

    @classmethod
    def from_dict(cls, raw: Any, where: str | None = None) -> "VideoRef":
        """The reference a store's ``samples.jsonl`` line holds; a :class:`DataError` names what is wrong."""
        try:
            return cls(path=str(raw["path"]), frames=int(raw["frames"]), fps=float(raw["fps"]),
                       width=int(raw["width"]), height=int(raw["height"]))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"expected {{path, frames, fps, width, height}}, got {raw!r} ({e})", where,
                            "video") from None


@dataclass
class VideoSample:
    """One sample of a keypoint-free store: its name, 0-based label (-1 unknown), video and split facts."""

    name: str
    label: int
    video: VideoRef
    meta: dict[str, Any] = field(default_factory=dict)
