"""Video to skeletons: layout mapping, tracking, the ONNX plumbing, video I/O errors, rendering, and extraction of
the real NTU sample against its Kinect skeleton.

Pure numpy parts run everywhere; video parts need PyAV, MediaPipe parts mediapipe and the ONNX parts onnx and
onnxruntime (the ``pose`` extra). Without them a test is skipped, except under ``CI=true``, where the extra is part
of the test environment and a missing package is a failure.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from skelact.data.store import SkeletonStore
from skelact.errors import ConfigError, DataError, LayoutError, StoreError
from skelact.pose.base import FramePoses, PoseEstimator, keypoint_boxes
from skelact.pose.mapping import get_mapping, mirror_sides
from skelact.pose.onnx_topdown import crop_geometry, crop_resize, decode_heatmaps, decode_simcc
from skelact.pose.render import draw_skeleton
from skelact.pose.tracking import PoseTracker, box_iou, select_main_actors, track_poses
from skelact.skeleton.layout import Layout, get_layout

A001 = "S001C001P001R001A001"


def need(module: str) -> Any:
    """Import an optional dependency of the pose extra: skip without it, fail under CI (where it is installed)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{module} is missing from the CI environment ({e}); install skelact[pose]")
        pytest.skip(f"needs {module} (pip install 'skelact[pose]')")


# ----------------------------------------------------------------------------------------------------------------
# layout mapping


def _numbered(layout: str, coords: int = 2) -> np.ndarray:
    """Joint v at (v, 10 v[, 100 v]): a mapped joint's value names the source joint(s) it came from."""
    v = np.arange(get_layout(layout).num_joints, dtype=np.float32)
    return np.stack([v * 10 ** k for k in range(coords)], axis=-1)


def test_coco17_takes_the_same_named_mediapipe_landmarks():
    mp = get_layout("mediapipe33")
    mapping = get_mapping("mediapipe33", "coco17")
    out, _ = mapping.apply(_numbered("mediapipe33"), np.ones(33, np.float32))
    # MediaPipe's PoseLandmark order: nose 0, left_eye 2, right_ear 8, left_wrist 15, right_ankle 28
    for name, mp_index in {"nose": 0, "left_eye": 2, "right_ear": 8, "left_wrist": 15, "right_ankle": 28}.items():
        assert mp.joints[mp_index] == name
        assert out[get_layout("coco17").index(name)].tolist() == [mp_index, 10 * mp_index]


def test_penn13_uses_anatomical_sides_and_the_ear_midpoint_for_the_head():
    penn = get_layout("penn13")
    out, scores = get_mapping("mediapipe33", "penn13").apply(_numbered("mediapipe33"),
                                                              np.linspace(0.1, 0.9, 33).astype(np.float32))
    # penn13 index 1 is the person's right shoulder (the README's "left" is image-left in front views)
    assert penn.joints[1] == "right_shoulder" and out[1].tolist() == [12, 120]  # MediaPipe 12 = right_shoulder
    assert out[penn.index("left_ankle")].tolist() == [27, 270]
    assert out[0].tolist() == [7.5, 75]  # head = mean of ears 7 and 8
    assert scores[0] == pytest.approx(np.linspace(0.1, 0.9, 33)[7])  # the lower of the two ear scores


def test_ntu25_interpolates_the_spine_along_the_torso_axis():
    mp = get_layout("mediapipe33")
    kp = np.zeros((33, 3), np.float32)
    for name, xyz in {"left_hip": (1, 0, 0), "right_hip": (-1, 0, 0), "left_shoulder": (2, 10, 0),
                      "right_shoulder": (-2, 10, 0), "left_ear": (1, 14, 0), "right_ear": (-1, 14, 0),
                      "left_wrist": (5, 0, 0), "left_index": (5, -3, 0), "left_pinky": (5, -3, 0)}.items():
        kp[mp.index(name)] = xyz
    ntu = get_layout("ntu25")
    out, _ = get_mapping(mp, ntu).apply(kp, np.ones(33, np.float32))
    at = {n: out[ntu.index(n)] for n in ntu.joints}
    np.testing.assert_allclose(at["spine_base"], [0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(at["spine_mid"], [0, 6.0, 0], atol=1e-5)  # H + 0.60 (S - H), S - H = 10
    np.testing.assert_allclose(at["spine_shoulder"], [0, 10.6, 0], atol=1e-5)
    np.testing.assert_allclose(at["neck"], [0, 10.6 + 0.33 * (14 - 10.6), 0], atol=1e-5)
    np.testing.assert_allclose(at["left_hip"], [0.7, 0, 0], atol=1e-6)  # hips pulled in to 0.7 of their spread
    np.testing.assert_allclose(at["left_hand"], [5, -2, 0], atol=1e-5)  # mean of wrist and the two knuckles
    np.testing.assert_allclose(at["left_hand_tip"], [5, -3.75, 0], atol=1e-5)  # knuckles + 0.25 (knuckles - wrist)


def test_mapping_commutes_with_affine_coordinate_changes():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(4, 33, 3)).astype(np.float32)
    a = rng.normal(size=(3, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    mapping = get_mapping("mediapipe33", "ntu25")
    direct, _ = mapping.apply(kp @ a.T + b, np.ones((4, 33), np.float32))
    after, _ = mapping.apply(kp, np.ones((4, 33), np.float32))
    np.testing.assert_allclose(direct, after @ a.T + b, atol=1e-4)


def test_mirroring_swaps_left_and_right_and_is_its_own_inverse():
    coco = get_layout("coco17")
    kp, sc = _numbered("coco17"), np.arange(17, dtype=np.float32)
    swapped, swapped_scores = mirror_sides(kp, sc, coco)
    assert swapped[coco.index("left_shoulder")].tolist() == kp[coco.index("right_shoulder")].tolist()
    assert swapped_scores[coco.index("nose")] == 0
    back, _ = mirror_sides(swapped, swapped_scores, coco)
    np.testing.assert_array_equal(back, kp)


def test_bad_mappings_are_one_line_layout_errors():
    with pytest.raises(LayoutError, match="no built-in mapping from layout 'coco17' to 'ntu25'"):
        get_mapping("coco17", "ntu25")
    tri = Layout.from_dict({"name": "tri", "joints": ["a", "b", "c"], "bones": [["b", "a"], ["c", "a"]],
                            "center": "a"})
    with pytest.raises(LayoutError, match="sum to 0.9000"):
        get_mapping("coco17", tri, {"a": {"nose": 0.9}, "b": {"left_eye": 1}, "c": {"right_eye": 1}})
    with pytest.raises(LayoutError, match=r"no source for target joint\(s\) \['c'\]"):
        get_mapping("coco17", tri, {"a": {"nose": 1}, "b": {"left_eye": 1}})
    assert get_mapping("coco17", "coco17").is_identity


# ----------------------------------------------------------------------------------------------------------------
# tracking


def test_box_iou_and_keypoint_boxes_by_hand():
    assert box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3]]))[0, 0] == pytest.approx(1 / 7)
    assert box_iou(np.array([[0, 0, 1, 1]]), np.array([[2, 2, 3, 3]]))[0, 0] == 0
    kp = np.array([[[1, 5], [3, 2], [100, 100]]], np.float32)
    np.testing.assert_array_equal(keypoint_boxes(kp, np.array([[1, 1, 0]], np.float32)), [[1, 2, 3, 5]])


def _person(x: float, y: float, size: float, seed: int = 0, v: int = 17) -> np.ndarray:
    """A crude pose: joints spread on a size x 2 size box at (x, y), the same shape for the same seed."""
    rng = np.random.default_rng(seed)
    return np.stack([x + rng.uniform(0, size, v), y + rng.uniform(0, 2 * size, v)], -1).astype(np.float32)


def test_tracker_keeps_identities_through_shuffles_and_short_gaps():
    frames = []
    for t in range(30):
        a = _person(10 + 2 * t, 50, 40, seed=1)   # walks right
        b = _person(300 - 2 * t, 60, 30, seed=2)  # walks left, never overlapping a's box in these frames
        persons = [a, b] if t % 2 else [b, a]  # detection order changes every frame
        if 10 <= t < 13:                        # a missed for 3 frames
            persons = [b]
        frames.append(FramePoses(np.stack(persons), np.ones((len(persons), 17), np.float32)))
    tracks = track_poses(frames, max_missed=5)
    assert len(tracks) == 2
    lengths = sorted(len(t) for t in tracks)
    assert lengths == [27, 30]
    a_track = next(t for t in tracks if len(t) == 27)
    xs = [k[:, 0].min() for k in a_track.keypoints]
    assert np.all(np.diff(xs) > 0)  # it only ever followed the person walking right
    # with a shorter memory than the gap, a comes back as a new track
    assert len(track_poses(frames, max_missed=2)) == 3


def test_main_actor_selection_by_area_and_by_motion():
    tracker = PoseTracker()
    for t in range(20):
        big_still = _person(0, 0, 100, seed=1)
        small_moving = _person(400 + 5 * t, 0, 30, seed=2)
        tracker.update(t, FramePoses(np.stack([small_moving, big_still]), np.ones((2, 17), np.float32)))
    kp, sc, ids = select_main_actors(tracker.tracks, 25, 17, 2, max_persons=1, criterion="area")
    assert kp.shape == (1, 25, 17, 2) and kp[0, 0, :, 0].max() <= 100  # the big one
    assert sc[0, :20].min() == 1 and sc[0, 20:].max() == 0 and not kp[0, 20:].any()  # unseen frames are zeros
    kp, _, _ = select_main_actors(tracker.tracks, 20, 17, 2, max_persons=1, criterion="motion")
    assert kp[0, 0, :, 0].min() >= 400  # the moving one
    both, _, ids = select_main_actors(tracker.tracks, 20, 17, 2, max_persons=5)
    assert both.shape[0] == 2 and len(ids) == 2
    with pytest.raises(DataError, match="no person detected in any of the 7 frame"):
        select_main_actors([], 7, 17, 2, source="clip.mp4")


# ----------------------------------------------------------------------------------------------------------------
# ONNX top-down plumbing: decoders by hand, then tiny models built here


def test_heatmap_and_simcc_decoding_by_hand():
    hm = np.zeros((1, 2, 4, 6), np.float32)
    hm[0, 0, 2, 3], hm[0, 0, 2, 4], hm[0, 0, 2, 2] = 1.0, 0.5, 0.2  # peak (3, 2), right neighbour higher
    hm[0, 1, 0, 0] = 0.7                                            # peak on the border: no refinement
    loc, sc = decode_heatmaps(hm, (24, 16))  # input 24 x 16 = 4x the heatmap
    np.testing.assert_allclose(loc[0], [[3.25 * 4, 2 * 4], [0, 0]])
    np.testing.assert_allclose(sc[0], [1.0, 0.7])
    sx = np.zeros((1, 1, 12), np.float32)
    sy = np.zeros((1, 1, 8), np.float32)
    sx[0, 0, 7], sy[0, 0, 3] = 0.9, 0.6
    loc, sc = decode_simcc(sx, sy, 2.0)
    np.testing.assert_allclose(loc[0, 0], [3.5, 1.5])
    assert sc[0, 0] == pytest.approx(0.6)  # the smaller maximum, as mmpose


def test_crop_resize_with_a_unit_box_reproduces_the_frame():
    frame = np.random.default_rng(1).integers(0, 255, (12, 16, 3), dtype=np.uint8)
    centre, step = crop_geometry(np.array([0, 0, 16, 12]), (16, 12), padding=1.0)
    assert step == 1.0
    # input pixel u samples frame x = centre_x + (u - W/2) * step = u: the crop is the frame itself
    np.testing.assert_array_equal(centre, [8, 6])
    crop = crop_resize(frame, centre, step, (16, 12))
    np.testing.assert_allclose(crop, frame.astype(np.float32), atol=1e-4)


def _tiny_model(path: Path, kind: str, size: tuple[int, int] = (48, 64)) -> Path:
    """A 3-keypoint 'pose model' whose keypoint k is the brightest spot of colour channel k."""
    onnx = need("onnx")
    from onnx import TensorProto, helper

    w, h = size
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, h, w])
    if kind == "heatmap":
        nodes = [helper.make_node("AveragePool", ["image"], ["heatmaps"], kernel_shape=[4, 4], strides=[4, 4])]
        outputs = [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 3, h // 4, w // 4])]
    else:
        nodes = [helper.make_node("ReduceMax", ["image"], ["simcc_x"], axes=[2], keepdims=0),
                 helper.make_node("ReduceMax", ["image"], ["simcc_y"], axes=[3], keepdims=0)]
        outputs = [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 3, w]),
                   helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 3, h])]
    graph = helper.make_graph(nodes, "tiny_pose", [image], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


TRI = Layout.from_dict({"name": "tri", "joints": ["red", "green", "blue"],
                        "bones": [["green", "red"], ["blue", "red"]], "center": "red"})
SPOTS = {0: (130.0, 90.0), 1: (170.0, 140.0), 2: (150.0, 60.0)}  # channel -> (x, y) in the frame


def _spot_frame() -> np.ndarray:
    frame = np.zeros((200, 300, 3), np.uint8)
    yy, xx = np.mgrid[:200, :300]
    for channel, (x, y) in SPOTS.items():  # a blob brightest at its centre, so the maximum is unique
        frame[..., channel] = np.rint(255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 8.0 ** 2)))
    return frame


@pytest.mark.parametrize("kind", ["heatmap", "simcc"])
def test_onnx_topdown_finds_the_spots_with_boxes_and_in_follow_mode(tmp_path, kind):
    need("onnxruntime")
    from skelact.pose.onnx_topdown import OnnxTopDownPose

    model = _tiny_model(tmp_path / f"{kind}.onnx", kind)
    frame = _spot_frame()
    expected = np.array([SPOTS[k] for k in range(3)])
    with OnnxTopDownPose(model, layout=TRI, person_boxes=lambda f: np.array([[100, 40, 200, 160, 0.9]])) as est:
        assert est.input_size == (48, 64)
        poses = est.estimate(frame)
        _, step = crop_geometry(np.array([100, 40, 200, 160]), (48, 64), 1.25)
        cell = step * (4 if kind == "heatmap" else 1)  # one output cell, in frame pixels
        assert poses.keypoints.shape == (1, 3, 2)
        assert np.abs(poses.keypoints[0] - expected).max() <= cell
        assert (poses.scores > 0).all()
    # no detector: the whole frame first, then the box of the previous pose (tighter, so more precise)
    with OnnxTopDownPose(model, layout=TRI, min_keypoints=3, min_keypoint_score=-10) as est:
        first = est.estimate(frame).keypoints[0]
        second = est.estimate(frame)
        assert np.abs(first - expected).max() <= crop_geometry(np.array([0, 0, 300, 200]), (48, 64), 1.25)[1] * 4
        assert np.abs(second.keypoints[0] - expected).max() < np.abs(first - expected).max() + 1e-3
        assert second.boxes[0, 2] - second.boxes[0, 0] < 100  # it followed the spots, not the whole frame


def test_onnx_model_with_the_wrong_joint_count_or_file_is_a_clear_error(tmp_path):
    need("onnxruntime")
    from skelact.pose.onnx_topdown import OnnxTopDownPose

    model = _tiny_model(tmp_path / "hm.onnx", "heatmap")
    with OnnxTopDownPose(model, layout="coco17") as est:
        with pytest.raises(DataError, match="outputs 3 keypoints but layout 'coco17' has 17"):
            est.estimate(_spot_frame())
    with pytest.raises(ConfigError, match="no such ONNX model file"):
        OnnxTopDownPose(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(ConfigError, match="onnxruntime cannot load the model"):
        OnnxTopDownPose(tmp_path / "junk.onnx")


# ----------------------------------------------------------------------------------------------------------------
# rendering


def test_draw_skeleton_paints_bones_and_hides_low_scores():
    frame = np.zeros((60, 80, 3), np.uint8)
    kp = np.array([[10, 20], [50, 20], [10, 50]], np.float32)  # red-green bone horizontal, blue below red
    out = draw_skeleton(frame, kp, np.array([1, 1, 0.1], np.float32), TRI, thickness=3)
    assert not frame.any()  # the input is left alone
    assert out[20, 30].any()                      # on the red-green bone
    assert not out[35, 10].any()                  # the bone to the hidden blue joint is not drawn
    assert not out[5, 70].any()                   # far from everything
    out_all = draw_skeleton(frame, kp, None, TRI, thickness=3)
    assert out_all[35, 10].any()


def _write_clip(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    from skelact.video.writer import write_video

    assert write_video(path, frames, fps) == len(frames)
    return path


def test_render_video_writes_an_mp4_that_decodes_to_the_same_frame_count(tmp_path):
    av = need("av")
    from skelact.pose.render import render_video

    frames = [np.full((120, 160, 3), 40, np.uint8) for _ in range(20)]
    src = _write_clip(tmp_path / "src.mp4", frames)
    kp = np.zeros((1, 20, 3, 2), np.float32)
    kp[0, :, 0] = [40, 60]
    kp[0, :, 1] = [120, 60]
    kp[0, :, 2] = [40, 100]
    out = tmp_path / "rendered.mp4"
    n = render_video(src, out, kp, np.ones((1, 20, 3), np.float32), TRI, captions=["drink water 0.93"] * 20)
    assert n == 20
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 20
    assert np.abs(decoded[10][60, 80].astype(int) - 40).sum() > 60  # a bone crosses the grey background
    assert np.abs(decoded[10][110, 150].astype(int) - 40).sum() < 30  # away from it, the frame is unchanged
    assert not list(tmp_path.glob(".*partial*"))


# ----------------------------------------------------------------------------------------------------------------
# video input


def _zero_frame_avi(path: Path) -> Path:
    av = need("av")
    container = av.open(str(path), mode="w")
    stream = container.add_stream("mpeg4", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def test_bad_videos_give_one_line_errors_naming_the_file(tmp_path, shared_data):
    need("av")
    from skelact.video.reader import VideoReader

    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.avi"
    cut.write_bytes((shared_data / "videos" / f"{A001}_rgb.avi").read_bytes()[:3000])
    cases = {text: "not a video file FFmpeg can read", empty: r"empty file \(0 bytes\)",
             _zero_frame_avi(tmp_path / "zero.avi"): "holds no frames", tmp_path / "nope.mp4": "no such file",
             cut: "not a video file", tmp_path: "is a folder"}
    for path, message in cases.items():
        with pytest.raises(DataError, match=message) as info:
            with VideoReader(path) as reader:
                list(reader)
        assert info.value.path == str(path) and "\n" not in str(info.value)


def test_reader_gives_the_real_clip_frames_and_scales_them(shared_data):
    need("av")
    from skelact.video.reader import VideoReader

    with VideoReader(shared_data / "videos" / "S004C002P003R002A046_rgb.avi", max_side=480, threads=1) as reader:
        assert (reader.info.width, reader.info.height, reader.info.fps) == (1920, 1080, 30.0)
        assert reader.frame_size == (480, 270) and reader.scale == (4.0, 4.0)
        frames = list(reader)
    assert len(frames) == 67 == reader.info.declared_frames  # the README's 1920x1080 30 fps clip, 67 frames
    assert frames[0].shape == (270, 480, 3) and frames[0].dtype == np.uint8


# ----------------------------------------------------------------------------------------------------------------
# extraction with a stand-in estimator: labels, resume, parallel workers, bad files


class SpotEstimator(PoseEstimator):
    """Finds the bright square of the test clips; its 17 'joints' spread over the square. Counts its frames."""

    name = "spot"
    calls = 0

    def __init__(self, fail_on_frame: int | None = None):
        self.layout = get_layout("coco17")
        self.coords = 2
        self.fail_on_frame = fail_on_frame

    def estimate(self, frame: np.ndarray) -> FramePoses:
        SpotEstimator.calls += 1
        if self.fail_on_frame is not None and SpotEstimator.calls >= self.fail_on_frame:
            raise KeyboardInterrupt
        ys, xs = np.nonzero(frame[..., 0] > 200)
        if not len(xs):
            return FramePoses.empty(17, 2)
        grid = np.linspace(0, 1, 17, dtype=np.float32)
        kp = np.stack([xs.min() + grid * (xs.max() - xs.min()), ys.min() + grid * (ys.max() - ys.min())], -1)
        return FramePoses(kp[None], np.ones((1, 17), np.float32))


def _square_clip(path: Path, frames: int, start: int = 5) -> Path:
    clip = []
    for t in range(frames):
        f = np.zeros((64, 96, 3), np.uint8)
        f[20:40, start + t:start + t + 20] = 255
        clip.append(f)
    return _write_clip(path, clip)


def _video_folder(root: Path) -> Path:
    need("av")
    (root / "jump").mkdir(parents=True)
    (root / "wave").mkdir()
    _square_clip(root / "jump" / "a.mp4", 12)
    _square_clip(root / "jump" / "b.mp4", 9, start=20)
    _square_clip(root / "wave" / "c.mp4", 15)
    (root / "wave" / "broken.mp4").write_text("not a video")
    _write_clip(root / "wave" / "dark.mp4", [np.zeros((64, 96, 3), np.uint8)] * 6)  # nobody in it
    (root / "wave" / "readme.txt").write_text("ignored: not a video ending")
    return root


def test_extract_poses_labels_from_folders_and_skips_bad_videos(tmp_path):
    from skelact.pose.extract import extract_poses

    videos = _video_folder(tmp_path / "videos")
    report = extract_poses(videos, tmp_path / "store", estimator=SpotEstimator(), layout="coco17",
                           labels_from_folders=True, progress=False)
    store = SkeletonStore(tmp_path / "store")
    assert store.names == ["jump/a", "jump/b", "wave/c"]
    assert store.class_names == ["jump", "wave"] and store.labels.tolist() == [0, 0, 1]
    assert store.frames.tolist() == [12, 9, 15]
    seq = store[0]
    # the square's left edge moves one pixel per frame (scaled back to full size: max_side does not apply here)
    np.testing.assert_allclose(seq.keypoints[0, :, 0, 0], 5 + np.arange(12), atol=1.0)
    reasons = {Path(r["file"]).name: r["reason"] for r in store.rejected}
    assert set(reasons) == {"broken.mp4", "dark.mp4"}
    assert "not a video file" in reasons["broken.mp4"] and "no person detected" in reasons["dark.mp4"]
    assert report.num_samples == 3 and len(report.rejected) == 2
    assert not (tmp_path / ".store.work").exists()  # the cache goes once the store is complete


def test_extract_poses_resumes_after_an_interruption_without_redoing_finished_videos(tmp_path):
    from skelact.pose.extract import extract_poses, work_dir_for

    videos = _video_folder(tmp_path / "videos")
    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\njump/a,high\nb.mp4,high\nc,low\n")
    SpotEstimator.calls = 0
    with pytest.raises(KeyboardInterrupt):  # interrupted while on the second video (a has 12 frames)
        extract_poses(videos, tmp_path / "store", estimator=SpotEstimator(fail_on_frame=15), labels_csv=labels,
                      progress=False)
    assert not (tmp_path / "store").exists()
    assert len(list((work_dir_for(tmp_path / "store") / "cache").glob("*.npz"))) == 1
    SpotEstimator.calls = 0
    report = extract_poses(videos, tmp_path / "store", estimator=SpotEstimator(), labels_csv=labels,
                           progress=False)
    assert SpotEstimator.calls == 9 + 15 + 6  # b, c and dark; a came from the cache
    assert report.reused == 1
    store = SkeletonStore(tmp_path / "store")
    assert store.class_names == ["high", "low"] and store.labels.tolist() == [0, 0, 1]
    with pytest.raises(StoreError, match="already exists"):
        extract_poses(videos, tmp_path / "store", estimator=SpotEstimator(), progress=False)


def test_extract_poses_in_two_worker_processes(tmp_path, monkeypatch):
    from skelact.pose import base, extract

    monkeypatch.setitem(base.ESTIMATORS, "spot", f"{SpotEstimator.__module__}:SpotEstimator")
    videos = _video_folder(tmp_path / "videos")
    report = extract.extract_poses(videos, tmp_path / "store", estimator="spot", workers=2, progress=False)
    assert report.workers == 2
    store = SkeletonStore(tmp_path / "store")
    assert store.frames.tolist() == [12, 9, 15] and store.labels.tolist() == [-1, -1, -1]
    assert json.loads((tmp_path / "store" / "manifest.json").read_text())["extraction"]["estimator"] == \
        {"name": "spot"}


def test_extract_poses_rejects_bad_arguments_before_touching_videos(tmp_path):
    from skelact.pose.extract import extract_poses

    with pytest.raises(DataError, match="no such file or folder"):
        extract_poses(tmp_path / "missing", tmp_path / "store", estimator=SpotEstimator(), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video files"):
        extract_poses(tmp_path / "empty", tmp_path / "store", estimator=SpotEstimator(), progress=False)
    with pytest.raises(ConfigError, match="unknown pose estimator 'openpose'"):
        extract_poses(tmp_path / "empty", tmp_path / "store", estimator="openpose", progress=False)


# ----------------------------------------------------------------------------------------------------------------
# MediaPipe on the real NTU sample, against its Kinect skeleton


@pytest.fixture(scope="module")
def a001_store(tmp_path_factory, shared_data):
    need("av")
    need("mediapipe")
    from skelact.pose.extract import extract_poses

    root = tmp_path_factory.mktemp("ntu_videos")
    shutil.copyfile(shared_data / "videos" / f"{A001}_rgb.avi", root / f"{A001}_rgb.avi")
    (root / "not_a_video.avi").write_text("hello")
    (root / "empty.mp4").write_bytes(b"")
    _zero_frame_avi(root / "zero_length.avi")
    _write_clip(root / "nobody.mp4", [np.full((120, 160, 3), 128, np.uint8)] * 8)
    out = root.parent / "ntu_store"
    report = extract_poses(root, out, estimator="mediapipe", layout="ntu25", mirrored=True, workers=1,
                           progress=False)
    return SkeletonStore(out), report


def test_mediapipe_extraction_keeps_every_frame_and_reports_bad_files(a001_store):
    store, report = a001_store
    assert store.names == [f"{A001}_rgb"] and store.frames.tolist() == [103]  # the clip's 103 frames
    assert store.layout.name == "ntu25" and store.coords == 2
    assert store.meta(0)["img_shape"] == [1080, 1920] and store.meta(0)["fps"] == 30.0
    reasons = {Path(r["file"]).name: r["reason"] for r in store.rejected}
    assert set(reasons) == {"not_a_video.avi", "empty.mp4", "zero_length.avi", "nobody.mp4"}
    assert "not a video" in reasons["not_a_video.avi"] and "empty file" in reasons["empty.mp4"]
    assert "no frames" in reasons["zero_length.avi"] and "no person detected" in reasons["nobody.mp4"]
    assert all("\n" not in r for r in reasons.values())
    assert report.total_frames == 103


def test_mediapipe_keypoints_fall_on_the_person_seen_by_the_kinect(a001_store, shared_data):
    """Projection-free comparison with the Kinect v2 skeleton of the same recording (103 frames each).

    Kinect camera-space (X, -Y) and image (x, y) differ by a projection, but the person stays at about 3.6 m, so
    per-frame shapes normalised for position and scale must agree, and joint trajectories must correlate.
    """
    store, _ = a001_store
    seq = store[0]
    ntu = get_layout("ntu25")
    kinect = np.load(shared_data / "ntu_rgbd_samples" / "npy" / f"{A001}.skeleton.npy",
                     allow_pickle=True).item()["skel_body0"]
    assert kinect.shape[0] == seq.num_frames == 103
    ours = seq.keypoints[0]
    theirs = np.stack([kinect[..., 0], -kinect[..., 1]], axis=-1)

    def shape(p: np.ndarray) -> np.ndarray:
        p = p - p.mean(axis=1, keepdims=True)
        return p / np.sqrt((p ** 2).sum(axis=(1, 2), keepdims=True) / p.shape[1])

    body = [ntu.index(n) for n in ("spine_base", "spine_mid", "spine_shoulder", "neck", "head", "left_shoulder",
                                   "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip",
                                   "left_knee", "right_knee", "left_ankle", "right_ankle")]
    error = np.linalg.norm(shape(ours) - shape(theirs), axis=-1)
    assert np.median(error[:, body]) < 0.15  # in units of the pose's RMS radius
    swapped, _ = mirror_sides(ours, seq.scores[0], ntu)
    assert np.median(np.linalg.norm(shape(swapped) - shape(theirs), axis=-1)[:, body]) > np.median(error[:, body])
    # the drinking arm (the person's right): its vertical trajectory follows the Kinect's
    for joint in ("right_wrist", "right_elbow"):
        j = ntu.index(joint)
        assert np.corrcoef(ours[:, j, 1], theirs[:, j, 1])[0, 1] > 0.95, joint
    assert seq.scores[0][:, body].mean() > 0.5
