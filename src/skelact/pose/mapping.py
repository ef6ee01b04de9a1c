"""Convert keypoints from one joint layout to another: each target joint is a fixed weighted sum of source joints.

A :class:`LayoutMapping` is data (``{target joint: {source joint: weight}}``, weights summing to 1), applied as one
matrix product, so it works alike on image pixels, MediaPipe's image-plane depth and metric world coordinates (an
affine combination commutes with any affine change of coordinates). A derived joint's score is the lowest score
among the source joints it is built from: it is only as present as its least present part.

Built-in mappings from MediaPipe Pose's 33 landmarks (layout ``mediapipe33``, the person's own left and right, as
MediaPipe names them):

* ``coco17``: exact. The 17 COCO keypoints are a subset of MediaPipe's (BlazePose extends COCO's topology).
* ``penn13``: exact for the 12 limb joints; Penn Action's ``head`` is the midpoint of the two ears. Penn's
  annotators clicked the centre of the head; in Penn's front-view videos the head lies 0.40 torso lengths above
  the shoulder midpoint (median over 74 videos, torso = shoulder midpoint to hip midpoint), and MediaPipe's ear
  midpoint lies 0.41 above it on NTU sample A001 (its nose 0.39, its eyes 0.45), so the ears it is; unlike the
  nose, they stay at the head's centre in profile views.
* ``ntu25`` (Kinect v2): approximate. Kinect places joints where MediaPipe has none, so those are interpolated
  along MediaPipe's torso axis with fractions measured on the genuine Kinect skeletons in
  ``shared/data/ntu_rgbd_samples`` (285 fully tracked frames of 7 clips), with H the hip midpoint and S the
  shoulder midpoint: ``spine_base`` = H (measured -0.02 of H->S), ``spine_mid`` = H + 0.60 (S - H),
  ``spine_shoulder`` = H + 1.06 (S - H), ``head`` = ears' midpoint (as for Penn), ``neck`` = spine_shoulder + 0.33
  (head - spine_shoulder) (measured along spine_shoulder->head). Kinect's hip joints lie closer together than
  MediaPipe's (hip width / shoulder width 0.42 in those frames, 0.63 for MediaPipe on NTU sample A001), so each hip
  is pulled towards H to 0.7 of its distance. Hands: ``hand`` (the palm centre) = mean of wrist, index and pinky
  knuckles (0.23 forearm lengths past the wrist; Kinect 0.25), ``hand_tip`` = the knuckles' midpoint extended by a
  quarter of the wrist->knuckles vector (MediaPipe has no finger tips: a guess at the fingers' length),
  ``thumb`` = MediaPipe's thumb landmark. ``foot`` = midpoint of ankle and toe tip (``foot_index``): Kinect's foot
  joint sits on the front of the foot, 0.32 shank lengths from the ankle. Shoulders, elbows, wrists, knees and
  ankles are exact.

Mirrored video. MediaPipe names sides as seen on an unmirrored camera image. NTU RGB+D's colour videos show the
Kinect's left joints on the image's left (compare ``rgb_body0`` with ``skel_body0`` in the NTU npy files), i.e. the
frames are mirror images; on such video MediaPipe's left is the person's right. :func:`mirror_sides` swaps a
layout's left/right pairs to undo that (``mirrored=True`` in :func:`skelact.pose.extract.extract_poses`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelact.errors import LayoutError
from skelact.skeleton.layout import Layout, get_layout

Weights = Mapping[str, Mapping[str, float]]


def _mid(*joints: str) -> dict[str, float]:
    return {j: 1.0 / len(joints) for j in joints}


def _blend(a: Mapping[str, float], b: Mapping[str, float], t: float) -> dict[str, float]:
    """Weights of ``a + t (b - a)``."""
    out: dict[str, float] = {}
    for j, w in a.items():
        out[j] = out.get(j, 0.0) + (1 - t) * w
    for j, w in b.items():
        out[j] = out.get(j, 0.0) + t * w
    return out


_COCO_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                "right_knee", "left_ankle", "right_ankle")
_LIMBS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")

_HIP_MID = _mid("left_hip", "right_hip")
_SHOULDER_MID = _mid("left_shoulder", "right_shoulder")
_EAR_MID = _mid("left_ear", "right_ear")
#: Kinect hip width relative to MediaPipe's (see the module docstring)
_NTU_HIP_SPREAD = 0.7


def _ntu25_from_mediapipe33() -> dict[str, dict[str, float]]:
    spine_shoulder = _blend(_HIP_MID, _SHOULDER_MID, 1.06)
    w: dict[str, dict[str, float]] = {
        "spine_base": dict(_HIP_MID),
        "spine_mid": _blend(_HIP_MID, _SHOULDER_MID, 0.60),
        "spine_shoulder": spine_shoulder,
        "neck": _blend(spine_shoulder, _EAR_MID, 0.33),
        "head": dict(_EAR_MID),
    }
    for side, other in (("left", "right"), ("right", "left")):
        for joint in ("shoulder", "elbow", "wrist", "knee", "ankle"):
            w[f"{side}_{joint}"] = {f"{side}_{joint}": 1.0}
        w[f"{side}_hip"] = {f"{side}_hip": 0.5 + _NTU_HIP_SPREAD / 2, f"{other}_hip": 0.5 - _NTU_HIP_SPREAD / 2}
        w[f"{side}_hand"] = _mid(f"{side}_wrist", f"{side}_index", f"{side}_pinky")
        knuckles = _mid(f"{side}_index", f"{side}_pinky")
        w[f"{side}_hand_tip"] = _blend({f"{side}_wrist": 1.0}, knuckles, 1.25)
        w[f"{side}_thumb"] = {f"{side}_thumb": 1.0}
        w[f"{side}_foot"] = _mid(f"{side}_ankle", f"{side}_foot_index")
    return w


def _penn13_from_mediapipe33() -> dict[str, dict[str, float]]:
    w: dict[str, dict[str, float]] = {"head": dict(_EAR_MID)}
    for side in ("left", "right"):
        for joint in _LIMBS:
            w[f"{side}_{joint}"] = {f"{side}_{joint}": 1.0}
    return w


#: (source layout, target layout) -> weights by joint name
BUILTIN_MAPPINGS: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("mediapipe33", "coco17"): {j: {j: 1.0} for j in _COCO_JOINTS},
    ("mediapipe33", "penn13"): _penn13_from_mediapipe33(),
    ("mediapipe33", "ntu25"): _ntu25_from_mediapipe33(),
}


@dataclass(frozen=True)
class LayoutMapping:
    """Keypoints of ``source`` to keypoints of ``target``: ``out[..., v, :] = sum_u matrix[v, u] * x[..., u, :]``."""

    source: Layout
    target: Layout
    #: float64 [V_target, V_source]; each row sums to 1
    matrix: np.ndarray

    @classmethod
    def from_weights(cls, source: Layout, target: Layout, weights: Weights) -> "LayoutMapping":
        """Build and check a mapping from ``{target joint: {source joint: weight}}`` (names or indices)."""
        where = f"<mapping {source.name} -> {target.name}>"
        if not isinstance(weights, Mapping):
            raise LayoutError("expected {target joint: {source joint: weight}}", where)
        matrix = np.zeros((target.num_joints, source.num_joints), dtype=np.float64)
        done = np.zeros(target.num_joints, dtype=bool)
        for t_ref, row in weights.items():
            t = _joint(target, t_ref, where)
            if not isinstance(row, Mapping) or not row:
                raise LayoutError("expected a non-empty {source joint: weight} mapping", where, target.joints[t])
            for s_ref, w in row.items():
                matrix[t, _joint(source, s_ref, where)] += float(w)
            done[t] = True
        missing = [target.joints[v] for v in np.flatnonzero(~done)]
        if missing:
            raise LayoutError(f"no source for target joint(s) {missing}", where)
        sums = matrix.sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > 1e-6)
        if bad.size:
            raise LayoutError(f"weights sum to {sums[bad[0]]:.4f}, not 1 (an affine combination keeps points "
                              "on the body whatever the coordinate frame)", where, target.joints[bad[0]])
        return cls(source=source, target=target, matrix=matrix)

    @property
    def is_identity(self) -> bool:
        return self.matrix.shape[0] == self.matrix.shape[1] and bool(np.array_equal(self.matrix,
                                                                                    np.eye(len(self.matrix))))

    def apply(self, keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map ``keypoints [..., V_source, C]`` and ``scores [..., V_source]`` to the target layout.

        A target joint's score is the minimum score of the source joints with a non-zero weight in it.
        """
        kp = np.asarray(keypoints, dtype=np.float32)
        sc = np.asarray(scores, dtype=np.float32)
        if kp.shape[-2] != self.source.num_joints or sc.shape[-1] != self.source.num_joints:
            raise LayoutError(f"expected {self.source.num_joints} joints of layout {self.source.name!r}, got "
                              f"keypoints {kp.shape} and scores {sc.shape}", field="keypoints")
        out = np.einsum("vu,...uc->...vc", self.matrix.astype(np.float32), kp)
        used = self.matrix != 0
        masked = np.where(used, sc[..., None, :], np.inf)
        return out.astype(np.float32), masked.min(axis=-1).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """The weights by joint name (what the store manifest records)."""
        return {self.target.joints[v]: {self.source.joints[u]: round(float(w), 6)
                                        for u, w in enumerate(row) if w != 0}
                for v, row in enumerate(self.matrix)}


def _joint(layout: Layout, ref: Any, where: str) -> int:
    try:
        return layout.index(ref)
    except LayoutError:
        raise LayoutError(f"unknown joint {ref!r} of layout {layout.name!r}", where) from None


def get_mapping(source: "str | Layout", target: "str | Layout", weights: Weights | None = None) -> LayoutMapping:
    """The mapping from ``source`` to ``target``: identity for the same layout, else ``weights`` or a built-in one."""
    src, dst = get_layout(source), get_layout(target)
    if weights is not None:
        return LayoutMapping.from_weights(src, dst, weights)
    if src.joints == dst.joints:
        return LayoutMapping(src, dst, np.eye(src.num_joints))
    try:
        table = BUILTIN_MAPPINGS[(src.name, dst.name)]
    except KeyError:
        known = sorted({t for s, t in BUILTIN_MAPPINGS if s == src.name})
        raise LayoutError(f"no built-in mapping from layout {src.name!r} to {dst.name!r}"
                          + (f" (from {src.name!r}: {', '.join(known)}, or itself)" if known else "")
                          + "; give one as {target joint: {source joint: weight}}", field="layout") from None
    return LayoutMapping.from_weights(src, dst, table)


def mirror_sides(keypoints: np.ndarray, scores: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """Swap every left/right joint pair of ``layout`` (positions stay, names swap): for mirror-image video."""
    perm = layout.flip_permutation()
    return np.asarray(keypoints)[..., perm, :], np.asarray(scores)[..., perm]
