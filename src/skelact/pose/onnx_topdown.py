"""Bring your own top-down pose model: any ONNX export that maps a person crop to keypoints, run by onnxruntime.

Top-down models (SimpleBaseline, HRNet, ViTPose, RTMPose, ...) see one person at a time: a box around the person is
cut out of the frame, resized to the model's input and normalised; the output is decoded to keypoints in the crop
and mapped back to the frame. This estimator does all of that around a user-supplied ``.onnx`` file.

I/O contract (what a model must look like):

* **Input**: one float32 tensor ``[N, 3, H, W]`` (NCHW). ``H`` and ``W`` are read from the model; a model with
  dynamic spatial axes needs ``input_size=(W, H)``. A fixed ``N = 1`` is run once per person, a dynamic ``N`` once
  per frame. Pixels are RGB (``channel_order="bgr"`` for models trained on OpenCV's BGR) normalised as
  ``(pixel - mean) / std`` with ``mean``/``std`` on the 0..255 scale, by default ImageNet's
  ``(123.675, 116.28, 103.53)`` / ``(58.395, 57.12, 57.375)``, what mmpose trains RTMPose and HRNet with.
* **Outputs**, recognised by shape (``output="auto"``) or named by ``output``:

  - ``"simcc"``: two tensors ``[N, K, Wx]`` and ``[N, K, Wy]``, SimCC's 1D x and y classifications (Li et al.,
    ECCV 2022; RTMPose). Location = argmax / split ratio, where the split ratio is ``Wx / W`` (``Wy / H`` must
    agree; RTMPose uses 2.0) unless ``simcc_split_ratio`` is given. Score = the smaller of the two maxima (as
    mmpose's ``get_simcc_maximum``); a keypoint whose score is <= 0 gets score 0.
  - ``"heatmap"``: one tensor ``[N, K, h, w]``. Location = argmax, moved a quarter cell towards the higher
    neighbour on each axis (the refinement of SimpleBaseline / HRNet's ``get_final_preds``), times ``W / w`` and
    ``H / h`` (mmpose's heatmap codec convention). Score = the maximum.
  - ``"keypoints"``: ``[N, K, 2]`` or ``[N, K, 3]`` already decoded, in input pixels (third column = score), with
    optionally a second output ``[N, K]`` of scores (exports with the decoding inside the graph).

  ``K`` must equal the joint count of ``layout`` (default ``coco17``). Scores are the model's own numbers, passed
  on unchanged (RTMPose's SimCC maxima are not probabilities and may exceed 1).
* **Boxes**: a crop is the person's box ``x1, y1, x2, y2`` enlarged by ``padding`` (1.25, as mmpose and rtmlib)
  and widened or heightened to the input's aspect ratio. Input pixel ``(u, v)`` samples frame point
  ``centre + ((u, v) - (W, H) / 2) * scale`` (the affine map of mmpose's top-down pipeline, without rotation),
  bilinearly, black outside the frame. Boxes come from ``person_boxes`` (a callable: RGB frame -> ``[P, 4]`` or
  ``[P, 5]`` with a score; plug in any person detector), or, without one, from the previous frame's pose: the box
  of its keypoints scoring at least ``min_keypoint_score``, when at least ``min_keypoints`` of them do, else the
  whole frame. That follow mode tracks one person, like MediaPipe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from skelact.errors import ConfigError, DataError
from skelact.pose.base import FramePoses, PoseEstimator, check_frame, keypoint_boxes, missing_extra
from skelact.skeleton.layout import Layout, get_layout

OUTPUT_KINDS = ("auto", "simcc", "heatmap", "keypoints")
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def crop_geometry(box: np.ndarray, input_size: tuple[int, int], padding: float) -> tuple[np.ndarray, float]:
    """``(centre [2], frame pixels per input pixel)`` of the crop for ``box`` (``x1, y1, x2, y2``)."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w_in, h_in = input_size
    bw, bh = max(x2 - x1, 1.0) * padding, max(y2 - y1, 1.0) * padding
    if bw / bh > w_in / h_in:
        bh = bw * h_in / w_in
    else:
        bw = bh * w_in / h_in
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2]), bw / w_in


def crop_resize(frame: np.ndarray, centre: np.ndarray, step: float, input_size: tuple[int, int]) -> np.ndarray:
    """The crop as float32 ``[H, W, 3]``: input pixel ``(u, v)`` = frame at ``centre + ((u, v) - (W, H)/2) * step``,
    bilinear, 0 outside the frame."""
    w_in, h_in = input_size
    height, width = frame.shape[:2]
    xs = centre[0] + (np.arange(w_in) - w_in / 2) * step
    ys = centre[1] + (np.arange(h_in) - h_in / 2) * step
    x0, y0 = np.floor(xs).astype(np.int64), np.floor(ys).astype(np.int64)
    fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)
    out = np.zeros((h_in, w_in, 3), dtype=np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        rows = y0 + dy
        row_ok = (rows >= 0) & (rows < height)
        for dx, wx in ((0, 1 - fx), (1, fx)):
            cols = x0 + dx
            col_ok = (cols >= 0) & (cols < width)
            patch = frame[np.clip(rows, 0, height - 1)][:, np.clip(cols, 0, width - 1)].astype(np.float32)
            weight = (wy * row_ok)[:, None] * (wx * col_ok)[None, :]
            out += patch * weight[..., None]
    return out


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """``[N, K, 2]`` input-pixel locations and ``[N, K]`` scores from SimCC vectors (see the module docstring)."""
    x = np.argmax(simcc_x, axis=-1).astype(np.float32)
    y = np.argmax(simcc_y, axis=-1).astype(np.float32)
    scores = np.minimum(simcc_x.max(axis=-1), simcc_y.max(axis=-1)).astype(np.float32)
    scores = np.where(scores > 0, scores, 0.0).astype(np.float32)
    return np.stack([x, y], axis=-1) / np.float32(ratio), scores


def decode_heatmaps(heatmaps: np.ndarray, input_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``[N, K, 2]`` input-pixel locations and ``[N, K]`` scores from heatmaps ``[N, K, h, w]``."""
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    best = np.argmax(flat, axis=-1)
    scores = np.take_along_axis(flat, best[..., None], axis=-1)[..., 0].astype(np.float32)
    y, x = np.divmod(best, w)
    loc = np.stack([x, y], axis=-1).astype(np.float32)
    hm = heatmaps.reshape(n * k, h, w)
    xi, yi = x.reshape(-1), y.reshape(-1)
    idx = np.arange(n * k)
    inner_x = (xi > 0) & (xi < w - 1)
    inner_y = (yi > 0) & (yi < h - 1)
    dx = np.zeros(n * k, np.float32)
    dy = np.zeros(n * k, np.float32)
    dx[inner_x] = np.sign(hm[idx[inner_x], yi[inner_x], xi[inner_x] + 1]
                          - hm[idx[inner_x], yi[inner_x], xi[inner_x] - 1])
    dy[inner_y] = np.sign(hm[idx[inner_y], yi[inner_y] + 1, xi[inner_y]]
                          - hm[idx[inner_y], yi[inner_y] - 1, xi[inner_y]])
    loc += 0.25 * np.stack([dx, dy], axis=-1).reshape(n, k, 2)
    w_in, h_in = input_size
    return loc * np.array([w_in / w, h_in / h], dtype=np.float32), scores


class OnnxTopDownPose(PoseEstimator):
    """A user's ONNX top-down pose model behind :class:`PoseEstimator` (contract in the module docstring)."""

    name = "onnx"

    def __init__(self, model: str | PathLike, layout: "str | PathLike | Layout" = "coco17",
                 input_size: Sequence[int] | None = None, output: str = "auto",
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 channel_order: str = "rgb", padding: float = 1.25, simcc_split_ratio: float | None = None,
                 person_boxes: Callable[[np.ndarray], np.ndarray] | None = None, max_persons: int | None = None,
                 min_keypoint_score: float = 0.3, min_keypoints: int = 4, threads: int | None = None,
                 providers: Sequence[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise missing_extra("onnxruntime", "pose", e) from None
        self.model_path = Path(model)
        if not self.model_path.is_file():
            raise ConfigError("no such ONNX model file", self.model_path, "model")
        if output not in OUTPUT_KINDS:
            raise ConfigError(f"unknown output kind {output!r}; choose one of {', '.join(OUTPUT_KINDS)}",
                              self.model_path, "output")
        if channel_order not in ("rgb", "bgr"):
            raise ConfigError(f"must be 'rgb' or 'bgr', got {channel_order!r}", self.model_path, "channel_order")
        if len(mean) != 3 or len(std) != 3 or any(float(s) == 0 for s in std):
            raise ConfigError("mean and std need three values each, std non-zero", self.model_path, "mean")
        if padding <= 0:
            raise ConfigError(f"must be positive, got {padding}", self.model_path, "padding")
        self.layout = get_layout(layout)
        self.coords = 2
        self.max_persons = max_persons if person_boxes is not None else 1
        self.padding = float(padding)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.channel_order = channel_order
        self.person_boxes = person_boxes
        self.min_keypoint_score = float(min_keypoint_score)
        self.min_keypoints = int(min_keypoints)
        self._previous_box: np.ndarray | None = None

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(self.model_path), sess_options=options,
                                                 providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for a bad file
            raise ConfigError(f"onnxruntime cannot load the model ({str(e).splitlines()[0]})", self.model_path,
                              "model") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = [(i.name, i.shape) for i in inputs]
            raise ConfigError(f"expected one input [N, 3, H, W], the model has {shapes}", self.model_path, "input")
        self._input_name = inputs[0].name
        n, c, h, w = inputs[0].shape
        if isinstance(c, int) and c != 3:
            raise ConfigError(f"expected 3 input channels, the model has {c}", self.model_path, "input")
        self._batched = not (isinstance(n, int) and n == 1)
        if input_size is not None:
            self.input_size = (int(input_size[0]), int(input_size[1]))
        elif isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            self.input_size = (w, h)
        else:
            raise ConfigError(f"the model's input {inputs[0].shape} has a dynamic size; give input_size=(W, H)",
                              self.model_path, "input_size")
        self.output = output
        self.simcc_split_ratio = simcc_split_ratio
        self._output_names = [o.name for o in self._session.get_outputs()]

    # -- boxes -----------------------------------------------------------------------------------------------

    def _boxes(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if self.person_boxes is not None:
            boxes = np.asarray(self.person_boxes(frame), dtype=np.float32)
            if boxes.size == 0:
                return np.zeros((0, 4), np.float32)
            if boxes.ndim != 2 or boxes.shape[1] not in (4, 5):
                raise DataError(f"person_boxes returned shape {boxes.shape}; expected [P, 4] or [P, 5]",
                                field="person_boxes")
            if boxes.shape[1] == 5:
                boxes = boxes[np.argsort(-boxes[:, 4], kind="stable")]
            boxes = boxes[:, :4]
            return boxes if self.max_persons is None else boxes[: self.max_persons]
        if self._previous_box is not None:
            return self._previous_box[None]
        return np.array([[0, 0, width, height]], dtype=np.float32)

    # -- inference -------------------------------------------------------------------------------------------

    def estimate(self, frame: np.ndarray) -> FramePoses:
        image = check_frame(frame, "onnx input")
        boxes = self._boxes(image)
        if not len(boxes):
            return FramePoses.empty(self.layout.num_joints, 2)
        if self.channel_order == "bgr":
            image = image[..., ::-1]
        geometry = [crop_geometry(b, self.input_size, self.padding) for b in boxes]
        crops = np.stack([(crop_resize(image, c, s, self.input_size) - self.mean) / self.std for c, s in geometry])
        batch = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
        if self._batched:
            outputs = self._session.run(self._output_names, {self._input_name: batch})
        else:
            per_person = [self._session.run(self._output_names, {self._input_name: batch[i:i + 1]})
                          for i in range(len(batch))]
            outputs = [np.concatenate([p[k] for p in per_person]) for k in range(len(self._output_names))]
        locations, scores = self._decode(outputs)
        w_in, h_in = self.input_size
        keypoints = np.empty_like(locations)
        for p, (centre, step) in enumerate(geometry):
            keypoints[p] = centre + (locations[p] - np.array([w_in / 2, h_in / 2], np.float32)) * step
        scores = scores.astype(np.float32)
        if self.person_boxes is None:
            self._follow(keypoints[0], scores[0])
        return FramePoses(keypoints=keypoints.astype(np.float32), scores=scores, boxes=boxes.astype(np.float32))

    def _follow(self, keypoints: np.ndarray, scores: np.ndarray) -> None:
        confident = scores >= self.min_keypoint_score
        if int(confident.sum()) >= self.min_keypoints:
            self._previous_box = keypoint_boxes(keypoints[None], scores[None], self.min_keypoint_score)[0]
        else:
            self._previous_box = None

    def _decode(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        k = self.layout.num_joints
        kind = self.output
        shapes = [np.shape(o) for o in outputs]
        if kind == "auto":
            if len(outputs) >= 2 and len(shapes[0]) == 3 and len(shapes[1]) == 3 and shapes[0][:2] == shapes[1][:2] \
                    and shapes[0][2] > 3:
                kind = "simcc"
            elif len(shapes[0]) == 4:
                kind = "heatmap"
            elif len(shapes[0]) == 3 and shapes[0][2] in (2, 3):
                kind = "keypoints"
            else:
                raise DataError(f"cannot tell the output kind from shapes {shapes}; set output= to simcc, heatmap "
                                "or keypoints", self.model_path, "output")
        first = np.asarray(outputs[0], dtype=np.float32)
        if first.shape[1] != k:
            raise DataError(f"the model outputs {first.shape[1]} keypoints but layout {self.layout.name!r} has {k}",
                            self.model_path, "layout")
        if kind == "simcc":
            if len(outputs) < 2:
                raise DataError(f"simcc needs two outputs (x and y), the model has {len(outputs)}", self.model_path,
                                "output")
            sx, sy = first, np.asarray(outputs[1], dtype=np.float32)
            ratio = self.simcc_split_ratio
            w_in, h_in = self.input_size
            if ratio is None:
                ratio = sx.shape[2] / w_in
                if abs(sy.shape[2] / h_in - ratio) > 1e-6:
                    raise DataError(f"SimCC lengths {sx.shape[2]} and {sy.shape[2]} imply different split ratios for "
                                    f"an input of {w_in}x{h_in}; give simcc_split_ratio", self.model_path, "output")
            return decode_simcc(sx, sy, float(ratio))
        if kind == "heatmap":
            if first.ndim != 4:
                raise DataError(f"heatmaps must be [N, K, h, w], got {first.shape}", self.model_path, "output")
            return decode_heatmaps(first, self.input_size)
        if first.ndim != 3 or first.shape[2] not in (2, 3):
            raise DataError(f"keypoints must be [N, K, 2] or [N, K, 3], got {first.shape}", self.model_path, "output")
        if first.shape[2] == 3:
            return first[..., :2], first[..., 2]
        if len(outputs) >= 2:
            return first, np.asarray(outputs[1], dtype=np.float32).reshape(first.shape[:2])
        return first, np.ones(first.shape[:2], dtype=np.float32)

    def reset(self) -> None:
        self._previous_box = None

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "model": str(self.model_path.resolve()),
                "model_bytes": self.model_path.stat().st_size, "layout": self.layout.name,
                "input_size": list(self.input_size), "output": self.output, "mean": self.mean.tolist(),
                "std": self.std.tolist(), "channel_order": self.channel_order, "padding": self.padding,
                "simcc_split_ratio": self.simcc_split_ratio, "person_boxes": self.person_boxes is not None,
                "min_keypoint_score": self.min_keypoint_score, "min_keypoints": self.min_keypoints}
