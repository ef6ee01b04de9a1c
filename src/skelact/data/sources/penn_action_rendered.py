"""Penn Action's real poses rendered into small synthetic RGB videos, with the keypoints aligned to them.

Format key ``penn-action-rendered``: SRC is Penn Action's label folder (as for ``penn-action``); each label file
becomes a ``size x size`` H.264 video at 30 fps (Penn's rate, every frame kept) drawn by
:mod:`skelact.data.render_poses`, in the store's own ``videos/`` folder, and a sample whose keypoints are the
annotations moved by the same crop, zoom and drift as the frames. Labels, the 15 class names, the view and the
official train/test flag (``penn_action_official`` split) are Penn's. So RGB models (FstCN) and pose models
(PoseConv3D, RGBPose-Conv3D) train on one store. The videos are synthetic: real motion, synthetic appearance.

Options: ``size`` (frame side in pixels, default 112), ``crf`` (H.264 quality, default 23), ``max_frames``.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.data.render_poses import render_clip
from skelact.data.sequence import SkeletonSequence
from skelact.data.sources.base import DEFAULT_MAX_FRAMES
from skelact.data.sources.penn_action import PennActionSource
from skelact.data.video_sample import VideoRef
from skelact.errors import ConfigError, DataError
from skelact.skeleton.layout import get_layout

#: Penn Action's clips are 30 fps
PENN_FPS = 30.0
#: the store's folder of rendered videos
VIDEOS_FOLDER = "videos"


class PennActionRenderedSource(PennActionSource):
    """Penn Action labels, each rendered into a video by :meth:`render` (which ``prepare`` calls in its workers)."""

    format = "penn-action-rendered"
    #: ``prepare`` hands this kind to :mod:`skelact.data.prepare_rendered`: items become a video and keypoints
    kind = "rendered"
    reader_version = 1

    def __init__(self, root: str | PathLike, size: int = 112, crf: int = 23, max_frames: int = DEFAULT_MAX_FRAMES,
                 **options: Any):
        super().__init__(root, max_frames=max_frames, **options)
        if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 1024:
            raise ConfigError(f"expected a frame side in pixels between 16 and 1024, got {size!r}", field="size")
        if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
            raise ConfigError(f"expected an H.264 quality (crf) between 0 and 51, got {crf!r}", field="crf")
        self.size = size
        self.crf = crf

    def render(self, item: str | PathLike, store_dir: str | PathLike) -> tuple[SkeletonSequence, VideoRef]:
        """Read one label file, write its video under ``store_dir/videos/`` and return the aligned sample."""
        from skelact.video.writer import write_video

        seq = self.read(item)
        layout = get_layout(self.layout)
        clip = render_clip(seq.name, seq.keypoints[0], layout, self.size)
        relative = f"{VIDEOS_FOLDER}/{seq.name}.mp4"
        target = Path(store_dir) / relative
        target.parent.mkdir(exist_ok=True)
        # one encoder thread (the workers already use every core) and no macroblock tree: with it, x264 encoded
        # identical frames of some clips (0371) to different bytes on reruns; veryfast: 3x faster than medium
        written = write_video(target, clip.frames(), PENN_FPS, crf=self.crf, threads=1,
                              options={"preset": "veryfast", "x264-params": "mbtree=0"})
        if written != seq.num_frames:
            raise DataError(f"wrote {written} frames for {seq.num_frames} poses", item, "video")
        rendered = SkeletonSequence(
            keypoints=clip.keypoints[None].astype(np.float32), scores=seq.scores, label=seq.label, name=seq.name,
            layout=seq.layout, meta={**seq.meta, "img_shape": (self.size, self.size), "fps": PENN_FPS,
                                     "source_img_shape": seq.meta["img_shape"]})
        video = VideoRef(path=relative, frames=written, fps=PENN_FPS, width=self.size, height=self.size)
        return rendered.validate(str(item)), video
