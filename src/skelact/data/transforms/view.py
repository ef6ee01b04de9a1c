"""View normalisation: move, turn and rescale a skeleton into a canonical frame before augmentation.

A person whose joints are all exactly zero in a frame is absent there (padding, a missing second person); these
transforms leave such slots at zero, so an absent person never turns into a ghost at minus the centre.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skelact.data.transforms.hold import hold_last_valid
from skelact.data.transforms.registry import bad_argument, register_transform
from skelact.data.transforms.rotation import linear_map, rotation_onto
from skelact.data.transforms.sample import (
    Sample,
    as_float32,
    get_keypoints,
    get_layout_of,
    get_scores,
    absent_person_frames,
    require_coords,
    sample_name,
    updated,
)
from skelact.errors import DataError


def _joint_ref(owner: str, argument: str, value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_argument(owner, argument, f"expected a joint name or index, got {value!r}")
    return value


def _resolve(sample: Sample, kp: np.ndarray, ref: int | str, who: str) -> int:
    """A joint given by index, or by name through the sample's layout; checked against ``V``."""
    if isinstance(ref, str):
        return get_layout_of(sample, kp, who).index(ref)
    v = kp.shape[2]
    if not -v <= ref < v:
        raise DataError(f"{who}: joint index {ref} is out of range for {v} joints", sample_name(sample), "keypoints")
    return ref % v


@register_transform
class CenterOnJoint:
    """Subtract one joint's position from every joint.

    ``frame='first'`` (CTR-GCN's NW-UCLA feeder: joint 1, the spine, of the first frame) uses the first person's
    joint in the first frame where that person is present, for everyone and every frame; ``frame='each'`` centres
    every person's every frame on its own joint (CrosSCLR's NTU pre-processing, on the spine-shoulder joint). With
    ``each``, missing joints (all-zero) stay missing, and a frame whose centre joint is missing uses that person's
    last measured centre (:func:`~skelact.data.transforms.hold.hold_last_valid`). ``joint`` is an index or (with a
    layout) a joint name, or ``"center"`` for the layout's centre: its centre joint, or for a virtual centre
    (``center: {midpoint: [...]}``, issue 27) the mean of the named joints that are measured (not all-zero); a
    layout joint literally named ``center`` is what ``"center"`` means on such a layout.
    """

    def __init__(self, joint: int | str = 1, frame: str = "first"):
        self.joint = _joint_ref("CenterOnJoint", "joint", joint)
        if frame not in ("first", "each"):
            raise bad_argument("CenterOnJoint", "frame", f"expected 'first' or 'each', got {frame!r}")
        self.frame = frame

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "CenterOnJoint")
        j = _centre_joints(sample, kp, self.joint)
        x = kp.astype(np.float64)
        absent = absent_person_frames(kp)[..., None, None]
        if self.frame == "each":
            return updated(sample, keypoints=as_float32(_centre_each_frame(sample, x, j)))
        else:
            present = np.flatnonzero(~absent[0, :, 0, 0])
            if present.size == 0:
                raise DataError("CenterOnJoint: the first person is absent from every frame", sample_name(sample),
                                "keypoints")
            centre = _mean_of_measured(x[0, present[0]], j)
            if centre is None:
                raise DataError("CenterOnJoint: the first person's first frame shows none of the centre joints "
                                f"{list(j)}", sample_name(sample), "keypoints")
        return updated(sample, keypoints=as_float32(np.where(absent, 0.0, x - centre)))

    def __repr__(self) -> str:
        return f"CenterOnJoint(joint={self.joint!r}, frame={self.frame!r})"


def _centre_joints(sample: Sample, kp: np.ndarray, ref: int | str) -> tuple[int, ...]:
    """The joints whose mean is the centre: ``ref`` alone, or the layout's centre joints for ``"center"``."""
    if ref == "center":
        layout = get_layout_of(sample, kp, "CenterOnJoint")
        if "center" not in layout.joints:
            return tuple(layout.center_joints)
    return (_resolve(sample, kp, ref, "CenterOnJoint"),)


def _mean_of_measured(frame: np.ndarray, joints: tuple[int, ...]) -> np.ndarray | None:
    """Mean of ``frame[joints]`` over the joints that are measured (not all-zero); None if none is."""
    points = frame[list(joints)]
    measured = np.any(points != 0, axis=-1)
    if len(joints) == 1:
        return points[0]  # one centre joint: used as given, as before virtual centres existed
    return points[measured].mean(axis=0) if measured.any() else None


def _centre_each_frame(sample: Sample, x: np.ndarray, joints: tuple[int, ...]) -> np.ndarray:
    """Every person's every frame minus that frame's centre (the mean of the measured ``joints``); missing joints
    stay at zero."""
    present = np.any(x != 0, axis=-1)  # [M, T, V]
    sub = x[..., list(joints), :]  # [M, T, J, C]
    sub_present = present[..., list(joints)]  # [M, T, J]
    counts = sub_present.sum(axis=-1)  # [M, T]
    means = np.where(counts[..., None] > 0,
                     (sub * sub_present[..., None]).sum(axis=-2) / np.maximum(counts, 1)[..., None], 0.0)
    joint = joints[0] if len(joints) == 1 else list(joints)
    out = np.zeros_like(x)
    for m in range(x.shape[0]):
        measured = counts[m] > 0
        if not present[m].any():
            continue  # absent throughout (padding, no second person): stays all-zero
        if not measured.any():
            raise DataError(f"CenterOnJoint: person {m} never shows joint {joint}, the joint to centre on",
                            sample_name(sample), "keypoints")
        centre = hold_last_valid(means[m], measured)  # [T, C]
        out[m] = np.where(present[m][..., None], x[m] - centre[:, None, :], 0.0)
    return out


@register_transform
class MinMaxNormalize:
    """Per-axis min-max scaling of the whole sample to ``[-1, 1]``, as CTR-GCN's NW-UCLA feeder does after its view
    transform: ``2 (x - min) / (max - min) - 1`` with min and max over all frames and joints of that axis.

    Absent people neither count nor move. An axis with no spread (CTR-GCN would divide by zero) maps to 0.
    """

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        kp = get_keypoints(sample, "MinMaxNormalize")
        present = ~absent_person_frames(kp)
        if not present.any():
            return sample
        x = kp.astype(np.float64)
        values = x[present].reshape(-1, x.shape[-1])
        low, high = values.min(axis=0), values.max(axis=0)
        spread = high - low
        safe = np.where(spread > 0, spread, 1.0)
        scaled = np.where(spread > 0, 2.0 * (x - low) / safe - 1.0, 0.0)
        return updated(sample, keypoints=as_float32(np.where(present[..., None, None], scaled, 0.0)))

    def __repr__(self) -> str:
        return "MinMaxNormalize()"


@register_transform
class PreNormalize3D:
    """pyskl's ``PreNormalize3D`` (``pyskl/datasets/pipelines/pose_related.py``, after 2s-AGCN's pre-processing).

    1. Keep the frames in which the main person (the one present in the most frames; the first on a tie) is
       present, and put that person first.
    2. ``align_center``: subtract the main person's ``center`` joint in the first kept frame from every present
       joint (default as pyskl: joint 1, the NTU spine middle, for 25-joint skeletons, else the last joint).
    3. ``align_spine``: rotate everything so the main person's first-frame ``spine`` vector (bottom -> top, NTU
       joints 0 -> 1) points along +z, then so its ``shoulders`` vector (first -> second, NTU right shoulder 8 ->
       left shoulder 4, i.e. ``x[8] - x[4]``) points along +x. The second turn may tilt the spine off z again;
       that is pyskl's behaviour.

    Joints are indices or (with a layout) names. An all-zero sample is returned unchanged.
    """

    def __init__(self, spine: Any = (0, 1), shoulders: Any = (8, 4), center: int | str | None = None,
                 align_center: bool = True, align_spine: bool = True):
        self.spine = self._pair("spine", spine)
        self.shoulders = self._pair("shoulders", shoulders)
        self.center = None if center is None else _joint_ref("PreNormalize3D", "center", center)
        for name, flag in (("align_center", align_center), ("align_spine", align_spine)):
            if not isinstance(flag, bool):
                raise bad_argument("PreNormalize3D", name, f"expected true or false, got {flag!r}")
        self.align_center = align_center
        self.align_spine = align_spine

    @staticmethod
    def _pair(argument: str, value: Any) -> tuple[int | str, int | str]:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise bad_argument("PreNormalize3D", argument, f"expected two joints [from, to], got {value!r}")
        return (_joint_ref("PreNormalize3D", argument, value[0]), _joint_ref("PreNormalize3D", argument, value[1]))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        who = "PreNormalize3D"
        kp = get_keypoints(sample, who)
        require_coords(sample, kp, (3,), who)
        if not np.any(kp != 0):
            return sample
        scores = get_scores(sample, kp, who)
        present_frames = ~np.all(np.isclose(kp, 0.0), axis=(2, 3))  # [M, T], pyskl's test
        counts = present_frames.sum(axis=1)
        main = int(np.argmax(counts))
        order = [main] + [m for m in range(kp.shape[0]) if m != main]
        frames = np.flatnonzero(present_frames[main])
        x = kp[order][:, frames].astype(np.float64)
        if self.align_center:
            if self.center is None:
                c = 1 if x.shape[2] == 25 else x.shape[2] - 1
            else:
                c = _resolve(sample, kp, self.center, who)
            present = np.any(x != 0, axis=-1, keepdims=True)
            x = (x - x[0, 0, c].copy()) * present
        if self.align_spine:
            bottom, top = (_resolve(sample, kp, j, who) for j in self.spine)
            x = linear_map(x, rotation_onto(x[0, 0, top] - x[0, 0, bottom], [0.0, 0.0, 1.0]))
            first, second = (_resolve(sample, kp, j, who) for j in self.shoulders)
            x = linear_map(x, rotation_onto(x[0, 0, first] - x[0, 0, second], [1.0, 0.0, 0.0]))
        out = updated(sample, keypoints=as_float32(x))
        if scores is not None:
            out["scores"] = as_float32(scores[order][:, frames])
        return out

    def __repr__(self) -> str:
        return (f"PreNormalize3D(spine={list(self.spine)}, shoulders={list(self.shoulders)}, center={self.center!r},"
                f" align_center={self.align_center}, align_spine={self.align_spine})")


def _joint_group(owner: str, argument: str, value: Any) -> tuple[int | str, ...]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise bad_argument(owner, argument, "expected at least one joint")
    return tuple(_joint_ref(owner, argument, v) for v in values)


@register_transform
class TorsoNormalize:
    """Put image keypoints from any estimator or annotator on one footing: subtract the hip midpoint and divide by
    the torso length, both measured on the whole sample.

    Pixel coordinates depend on the camera's resolution, the person's distance and where they stand in the frame;
    estimators agree far better on the *shape* of the body. So ``centre`` = the mean over frames of the midpoint of
    the ``center`` joints (default: the hips), ``scale`` = the median over frames of the distance from the midpoint
    of the ``bottom`` joints (hips) to the midpoint of the ``top`` joints (shoulders), and every joint becomes
    ``(x - centre) / scale``. Per-sample rather than per-frame statistics keep the body's own movement (a jump, a
    squat going down) in the signal; the median ignores frames where the torso is foreshortened. The first person
    sets centre and scale for everyone, so people keep their relative places.

    Missing joints (all coordinates exactly 0: unannotated in Penn Action, undetected in OpenPose) are left at 0
    and measure nothing: only frames where all the joints of a midpoint are present count. When no frame has them
    (Penn clips whose legs are out of the picture throughout), the centre is the mean of all present joints and the
    scale their root-mean-square distance from it.

    Works for 2D and 3D keypoints; joints are names (with a layout) or indices.
    """

    def __init__(self, center: Any = ("left_hip", "right_hip"), bottom: Any = ("left_hip", "right_hip"),
                 top: Any = ("left_shoulder", "right_shoulder")):
        self.center = _joint_group("TorsoNormalize", "center", center)
        self.bottom = _joint_group("TorsoNormalize", "bottom", bottom)
        self.top = _joint_group("TorsoNormalize", "top", top)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        who = "TorsoNormalize"
        kp = get_keypoints(sample, who)
        x = kp.astype(np.float64)
        if not np.isfinite(x).all():
            raise DataError(f"{who}: keypoints are not finite", sample_name(sample), "keypoints")
        present = np.any(kp != 0, axis=-1)  # [M, T, V]
        first, seen = x[0], present[0]
        if not seen.any():
            raise DataError(f"{who}: the first person is absent from every frame", sample_name(sample), "keypoints")

        def midpoints(group: tuple[int | str, ...]) -> tuple[np.ndarray, np.ndarray]:
            joints = [_resolve(sample, kp, j, who) for j in group]
            return first[:, joints].mean(axis=1), seen[:, joints].all(axis=1)

        mid, ok = midpoints(self.center)
        if ok.any():
            centre = mid[ok].mean(axis=0)
        else:
            centre = first[seen].mean(axis=0)
        (top, top_ok), (bottom, bottom_ok) = midpoints(self.top), midpoints(self.bottom)
        both = top_ok & bottom_ok
        torso = np.linalg.norm(top[both] - bottom[both], axis=-1)
        torso = torso[torso > 0]
        if torso.size:
            scale = float(np.median(torso))
        else:
            spread = float(np.sqrt(np.mean(np.sum((first[seen] - centre) ** 2, axis=-1))))
            scale = spread if spread > 0 else 1.0
        out = np.where(present[..., None], (x - centre) / scale, 0.0)
        return updated(sample, keypoints=as_float32(out))

    def __repr__(self) -> str:
        return f"TorsoNormalize(center={list(self.center)}, bottom={list(self.bottom)}, top={list(self.top)})"
