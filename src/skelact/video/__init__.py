"""Video files in and out through PyAV (FFmpeg), below :mod:`skelact.data` so that stores can refer to videos.

* :mod:`~skelact.video.backend`: the lazy PyAV import (one clear error when the ``video`` extra is missing).
* :mod:`~skelact.video.names`: the file endings a folder scan takes for videos.
* :mod:`~skelact.video.info`: :class:`VideoInfo`, what a container says about its video stream.
* :mod:`~skelact.video.reader`: decoding RGB frames, optionally scaled down by FFmpeg.
* :mod:`~skelact.video.probe`: frame count, rate and size without decoding; truncated files found.
* :mod:`~skelact.video.writer`: encoding frames into a video, atomically.
* :mod:`~skelact.video.frame_cache`: decoded, resized frames kept as memory-mapped ``.npy`` files.

Importing this package imports numpy and skelact only; PyAV is imported when a video is opened
(``pip install 'skelact[video]'``).
"""

from skelact.video.info import VideoInfo, scaled_size
from skelact.video.names import VIDEO_SUFFIXES, is_video_name

__all__ = ["VIDEO_SUFFIXES", "VideoInfo", "is_video_name", "scaled_size"]
