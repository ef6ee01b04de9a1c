"""From video to skeletons: pose estimators behind one interface, tracking, extraction into a store, rendering.

* :mod:`~skelact.pose.base`: the :class:`PoseEstimator` interface (RGB frame in, :class:`FramePoses` out) and
  :func:`create_estimator` (``"mediapipe"``: :mod:`~skelact.pose.mediapipe`; ``"onnx"``: a user's top-down model,
  :mod:`~skelact.pose.onnx_topdown`).
* :mod:`~skelact.pose.mapping`: MediaPipe-33 to COCO-17, Penn-13 and NTU-25 (what is exact, what approximated).
* :mod:`~skelact.pose.tracking`: linking persons across frames, choosing the main actors.
* :mod:`~skelact.pose.pipeline`: one video to one :class:`~skelact.data.sequence.SkeletonSequence`.
* :mod:`~skelact.pose.extract`: many videos to a dataset store (``skelact extract-poses``), parallel, resumable.
* :mod:`~skelact.pose.render`: skeletons and captions drawn on frames, written as a video.

Decoding and encoding live in :mod:`skelact.video`, below ``data``. Importing this package imports numpy and
skelact only; mediapipe, onnxruntime and PyAV are imported when an estimator is built or a video opened
(``pip install 'skelact[pose]'``).
"""

from skelact.pose.base import ESTIMATORS, FramePoses, PoseEstimator, create_estimator

__all__ = ["ESTIMATORS", "FramePoses", "PoseEstimator", "create_estimator"]
