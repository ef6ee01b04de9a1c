"""PoseConv3D heatmap volumes (numpy and torch) and their pipeline steps, against the paper's formulas worked by
hand and a real Penn Action clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from skelact.data.heatmaps import flip_heatmap, joint_heatmaps, limb_flip_permutation, limb_heatmaps
from skelact.data.heatmaps_torch import heatmap_volume_torch, joint_heatmaps_torch, limb_heatmaps_torch
from skelact.data.sources.penn_action import PennActionSource
from skelact.data.transforms import (
    GenerateHeatmap,
    HeatmapFlip,
    RandomResizedCrop,
    Resize,
    SelectCoords,
    SubjectCrop,
    UniformSample,
    build_pipeline,
)
from skelact.errors import DataError, LayoutError
from skelact.skeleton.layout import Layout, get_layout

SIGMA = 0.6


def gaussian(d2: float) -> float:
    return float(np.exp(-d2 / (2 * SIGMA ** 2)))


def one_joint(x: float, y: float, score: float = 1.0, joints: int = 1) -> tuple[np.ndarray, np.ndarray]:
    kp = np.zeros((1, 1, joints, 2), np.float32)
    kp[0, 0, 0] = (x, y)
    return kp, np.full((1, 1, joints), score, np.float32)


@pytest.fixture(scope="module")
def penn_clip(shared_data):
    """The first 24 frames of a real Penn Action clip, cropped to the subject and resized to 32 x 32."""
    source = PennActionSource(shared_data / "penn_action_labels")
    seq = source.read(source.items()[0])
    sample = {"keypoints": seq.keypoints[:, :24], "scores": seq.scores[:, :24], "layout": "penn13",
              "name": seq.name}
    rng = np.random.default_rng(0)
    return Resize([32, 32])(SubjectCrop()(sample, rng), rng)


def test_joint_map_at_and_around_the_joint_follows_the_formula():
    x, y, c = 10.3, 20.6, 0.8
    kp, scores = one_joint(x, y, c)
    maps = joint_heatmaps(kp, scores, (40, 30), SIGMA)
    assert maps.shape == (1, 1, 40, 30)
    for px, py in [(10, 20), (10, 21), (11, 21), (9, 22), (12, 19)]:
        want = gaussian((px - x) ** 2 + (py - y) ** 2) * c
        assert maps[0, 0, py, px] == pytest.approx(want, rel=1e-6)
    # the peak is at the nearest pixel, and nothing is drawn past the 3-sigma window (pyskl's)
    assert np.unravel_index(maps[0, 0].argmax(), (40, 30)) == (21, 10)
    assert maps[0, 0, 20, 15] == 0 and maps[0, 0, 25, 10] == 0
    # columns trunc(10.3 -+ 1.8) = 8..12, rows trunc(20.6 -+ 1.8) = 18..22
    assert np.count_nonzero(maps) == 25 and maps[0, 0, 18:23, 8:13].all()


def test_limb_map_along_and_beside_its_segment():
    kp = np.array([[[[10.0, 10.0], [30.0, 10.0]]]], np.float32)
    scores = np.array([[[0.9, 0.7]]], np.float32)
    maps = limb_heatmaps(kp, scores, [(0, 1)], (20, 40), SIGMA)[0, 0]
    # on the segment: the full min(c_a, c_b) everywhere between the joints
    assert np.allclose(maps[10, 10:31], 0.7)
    # beside it: the Gaussian of the distance to the line
    assert maps[11, 20] == pytest.approx(0.7 * gaussian(1.0), rel=1e-6)
    # past an end: the distance to that end point
    assert maps[10, 8] == pytest.approx(0.7 * gaussian(4.0), rel=1e-6)
    assert maps[11, 31] == pytest.approx(0.7 * gaussian(1.0 + 1.0), rel=1e-6)
    # outside the segment's box grown by 3 sigma: nothing
    assert maps[14, 20] == 0 and maps[10, 32] == 0


def test_confidence_scales_the_maps_and_tiny_confidences_draw_nothing():
    kp, full = one_joint(5.5, 6.25, 1.0)
    half = joint_heatmaps(kp, full * 0.5, (12, 12))
    np.testing.assert_allclose(half, 0.5 * joint_heatmaps(kp, full, (12, 12)), rtol=1e-6)
    assert not joint_heatmaps(kp, full * 1e-4, (12, 12)).any()


def test_missing_joints_draw_nothing_nor_limbs_that_touch_them():
    kp = np.array([[[[0.0, 0.0], [5.0, 5.0], [9.0, 5.0]]]], np.float32)  # joint 0 missing
    scores = np.ones((1, 1, 3), np.float32)
    joints = joint_heatmaps(kp, scores, (16, 16))
    assert not joints[0].any() and joints[1].any() and joints[2].any()
    limbs = limb_heatmaps(kp, scores, [(0, 1), (1, 2)], (16, 16))
    assert not limbs[0].any() and limbs[1, 0, 5, 7] == pytest.approx(1.0)
    # the torch builder keeps the same rule, also when nothing at all is drawn
    batch = torch.from_numpy(np.stack([kp, np.zeros_like(kp)]))
    got = heatmap_volume_torch(batch, torch.ones(2, 1, 1, 3), (16, 16), limbs=[(0, 1), (1, 2)])
    np.testing.assert_allclose(got[0].numpy(), np.concatenate([joints, limbs]), atol=1e-6)
    assert not got[1].any()


def test_several_persons_accumulate_by_maximum():
    rng = np.random.default_rng(1)
    kp = rng.uniform(2, 14, size=(2, 3, 4, 2)).astype(np.float32)
    kp[1] = kp[0] + 0.7  # overlapping windows
    scores = rng.uniform(0.2, 1, size=(2, 3, 4)).astype(np.float32)
    for draw in (lambda k, s: joint_heatmaps(k, s, (16, 16)),
                 lambda k, s: limb_heatmaps(k, s, [(0, 1), (1, 2), (2, 3)], (16, 16))):
        both = draw(kp, scores)
        alone = [draw(kp[m:m + 1], scores[m:m + 1]) for m in range(2)]
        np.testing.assert_array_equal(both, np.maximum(*alone))
        assert (both > alone[0]).any() and (both > alone[1]).any()


def test_numpy_and_torch_agree_on_a_real_clip_with_two_persons(penn_clip):
    layout = get_layout("penn13")
    kp, scores = penn_clip["keypoints"], penn_clip["scores"]
    second = kp.copy()
    second[..., 0] = np.where(kp[..., 0] != 0, 31 - kp[..., 0], 0)  # a mirrored second person
    kp2 = np.concatenate([kp, second])
    scores2 = np.concatenate([scores, scores * 0.6])
    want = np.concatenate([joint_heatmaps(kp2, scores2, (32, 32)),
                           limb_heatmaps(kp2, scores2, layout.bones, (32, 32))])
    batch = torch.from_numpy(np.stack([kp2, kp2[::-1].copy()]))
    batch_scores = torch.from_numpy(np.stack([scores2, scores2[::-1].copy()]))
    got = heatmap_volume_torch(batch, batch_scores, (32, 32), limbs=layout.bones)
    assert got.shape == (2, 13 + 12, 24, 32, 32)
    assert float(want.max()) > 0.9
    np.testing.assert_allclose(got[0].numpy(), want, atol=1e-5)
    np.testing.assert_allclose(got[1].numpy(), want, atol=1e-5)  # persons in the other order: same maxima
    assert torch.equal(joint_heatmaps_torch(batch, batch_scores, (32, 32)), got[:, :13])
    assert torch.equal(limb_heatmaps_torch(batch, batch_scores, layout.bones, (32, 32)), got[:, 13:])


def test_flip_swaps_left_and_right_channels_and_mirrors_the_maps():
    layout = get_layout("coco17")
    joint_order = layout.flip_permutation()
    left_wrist, right_wrist = layout.index("left_wrist"), layout.index("right_wrist")
    left_elbow, right_elbow = layout.index("left_elbow"), layout.index("right_elbow")
    assert joint_order[left_wrist] == right_wrist and joint_order[layout.index("nose")] == layout.index("nose")
    limb_order = limb_flip_permutation(layout.bones, joint_order)
    bones = [frozenset(b) for b in layout.bones]
    left_forearm = bones.index(frozenset((left_wrist, left_elbow)))
    assert bones[limb_order[left_forearm]] == frozenset((right_wrist, right_elbow))

    kp = np.zeros((1, 2, 17, 2), np.float32)
    kp[0, :, left_wrist] = (4.0, 5.0)   # only the left wrist is present
    maps = joint_heatmaps(kp, np.ones((1, 2, 17), np.float32), (10, 16))
    flipped = flip_heatmap(maps, joint_order)
    assert not flipped[left_wrist].any()
    np.testing.assert_array_equal(flipped[right_wrist], maps[left_wrist][..., ::-1])
    assert flipped[right_wrist, 0, 5, 15 - 4] == pytest.approx(1.0)


def test_generate_heatmap_then_flip_in_a_pipeline(penn_clip):
    layout = get_layout("penn13")
    sample = GenerateHeatmap(joints=True, limbs=True)(penn_clip, np.random.default_rng(0))
    volume = sample["heatmap"]
    assert volume.shape == (13 + 12, 24, 32, 32) and volume.dtype == np.float32
    np.testing.assert_array_equal(volume[:13], joint_heatmaps(penn_clip["keypoints"], penn_clip["scores"], (32, 32)))
    flipped = HeatmapFlip(p=1.0)(sample, np.random.default_rng(0))["heatmap"]
    left, right = layout.index("left_wrist"), layout.index("right_wrist")
    np.testing.assert_array_equal(flipped[left], volume[right, :, :, ::-1])
    # flipping twice gives the original back
    rng = np.random.default_rng(0)
    twice = HeatmapFlip(p=1.0)(HeatmapFlip(p=1.0)(sample, rng), rng)["heatmap"]
    np.testing.assert_array_equal(twice, volume)
    assert HeatmapFlip(p=0.0)(sample, np.random.default_rng(0))["heatmap"] is volume


def test_ten_clips_and_their_mirror_images_stack_on_a_leading_axis(penn_clip):
    pipeline = build_pipeline([
        {"type": "UniformSample", "clip_len": 4, "num_clips": 10, "test_mode": True},
        {"type": "GenerateHeatmap", "double": True},
        {"type": "ToInputs", "inputs": {"x": "heatmap"}},
    ])
    out = pipeline(penn_clip, np.random.default_rng(0))
    assert out["x"].shape == (20, 13, 4, 32, 32)
    order = get_layout("penn13").flip_permutation()
    np.testing.assert_array_equal(out["x"][10:], out["x"][:10][:, order, :, :, ::-1])
    # clip i is the volume of the frames UniformSample chose for it
    frames = UniformSample(clip_len=4, num_clips=10, test_mode=True).indices(24, None)
    clip3 = joint_heatmaps(penn_clip["keypoints"][:, frames[12:16]], penn_clip["scores"][:, frames[12:16]],
                           (32, 32))
    np.testing.assert_array_equal(out["x"][3], clip3)
    # limbs too, joints first
    both = GenerateHeatmap(joints=True, limbs=True, double=True)(dict(penn_clip, num_clips=2), None)
    single = GenerateHeatmap(joints=True, limbs=True)(penn_clip, None)
    assert both["heatmap"].shape == (4, 25, 12, 32, 32)
    np.testing.assert_array_equal(both["heatmap"][1], single["heatmap"][:, 12:])
    np.testing.assert_array_equal(both["heatmap"][3], flip_heatmap(single["heatmap"][:, 12:], both["heatmap_flip"]))


def test_uniform_sampling_covers_the_clip_and_is_fixed_at_test():
    sampler = UniformSample(clip_len=8)
    for seed in range(5):
        idx = sampler.indices(80, np.random.default_rng(seed))
        assert np.array_equal(idx // 10, np.arange(8))  # one frame from each tenth of the clip
    draws = {tuple(sampler.indices(80, np.random.default_rng(s))) for s in range(5)}
    assert len(draws) > 1
    test = UniformSample(clip_len=8, test_mode=True)
    first = test.indices(80, np.random.default_rng(0))
    assert np.array_equal(first // 10, np.arange(8))
    assert np.array_equal(first, test.indices(80, np.random.default_rng(123)))


def test_subject_crop_holds_every_joint_in_a_square_with_a_margin(penn_clip, shared_data):
    source = PennActionSource(shared_data / "penn_action_labels")
    seq = source.read(source.items()[0])
    kp = seq.keypoints[:, :24].copy()
    kp[0, 0, 3] = 0  # a missing joint stays missing
    out = SubjectCrop(margin=0.25)({"keypoints": kp, "layout": "penn13"}, None)
    h, w = out["image_size"]
    present = np.any(out["keypoints"] != 0, axis=-1)
    assert h == w and not present[0, 0, 3] and present.sum() == np.any(kp != 0, axis=-1).sum()
    xy = out["keypoints"][present]
    span = (xy.max(axis=0) - xy.min(axis=0)).max()
    assert h == pytest.approx(1.25 * span)
    # the longer side fills the square less the margin, centred
    longer = int(np.argmax(xy.max(axis=0) - xy.min(axis=0)))
    assert xy[:, longer].min() == pytest.approx(0.125 * span, rel=1e-5)
    assert xy[:, longer].max() == pytest.approx(1.125 * span, rel=1e-5)


def test_random_resized_crop_keeps_area_and_aspect_in_range():
    crop = RandomResizedCrop()
    rng = np.random.default_rng(0)
    for _ in range(200):
        x0, y0, bw, bh = crop.box(100.0, 100.0, rng)
        assert 0.56 * 1e4 * 0.75 <= bw * bh <= 1e4 + 1e-6
        assert 0 <= x0 <= 100 - bw and 0 <= y0 <= 100 - bh
    kp = np.array([[[[50.0, 50.0], [0.0, 0.0]]]], np.float32)
    out = crop({"keypoints": kp, "image_size": (100, 100)}, np.random.default_rng(3))
    x0, y0, bw, bh = crop.box(100.0, 100.0, np.random.default_rng(3))
    np.testing.assert_allclose(out["keypoints"][0, 0, 0], (50 - x0, 50 - y0), rtol=1e-6)
    assert out["image_size"] == pytest.approx((bh, bw)) and not out["keypoints"][0, 0, 1].any()


def test_select_coords_takes_x_and_y_of_3d_joints():
    kp = np.arange(24, dtype=np.float32).reshape(1, 2, 4, 3)
    out = SelectCoords([0, 1])({"keypoints": kp}, None)
    np.testing.assert_array_equal(out["keypoints"], kp[..., :2])


def test_wrong_inputs_name_the_field():
    kp, scores = one_joint(2.0, 2.0, joints=13)
    with pytest.raises(DataError, match="image_size"):
        GenerateHeatmap()({"keypoints": kp, "scores": scores, "layout": "penn13"}, None)
    with pytest.raises(DataError, match="SelectCoords"):
        Resize([8, 8])({"keypoints": np.ones((1, 1, 13, 3), np.float32), "image_size": (8, 8)}, None)
    with pytest.raises(DataError, match="heatmap"):
        HeatmapFlip(p=1.0)({"keypoints": kp}, np.random.default_rng(0))
    # flip pairs that turn a bone into a non-bone cannot order limb channels
    chain = Layout.from_dict({"name": "chain", "joints": ["a", "b", "c", "d"],
                              "bones": [["b", "a"], ["c", "b"], ["d", "c"]], "center": "a", "flip_pairs": [["a", "d"]]})
    kp3 = np.ones((1, 1, 4, 2), np.float32)
    with pytest.raises(LayoutError, match="flip_pairs|flip pairs"):
        GenerateHeatmap(limbs=True)({"keypoints": kp3, "layout": chain, "image_size": (8, 8)}, None)


def test_evaluation_averages_the_scores_of_a_samples_clips(penn_clip):
    from skelact.data.batch import clip_averaged_scores, collate_by_name
    from skelact.data.dataset import named_inputs

    pipeline = build_pipeline([
        {"type": "UniformSample", "clip_len": 4, "num_clips": 3, "test_mode": True},
        {"type": "GenerateHeatmap", "double": True},
        {"type": "ToInputs", "inputs": {"x": "heatmap"}, "clips": ["x"]},
    ])
    items = [named_inputs(pipeline(penn_clip, np.random.default_rng(0)), 1, "a", {"label": 0, "index": i})
             for i in range(2)]
    batch = collate_by_name(items)
    assert batch["x"].shape == (2, 6, 13, 4, 32, 32) and batch["clip_inputs"] == ("x",)
    torch.manual_seed(0)
    head = torch.nn.Linear(13, 5)

    def model(x):  # [N, K, T, H, W] -> [N, 5]; a clip's score depends on the clip
        assert x.dim() == 5
        return head(x.amax(dim=(2, 3, 4)) + x[:, :, :, :16].mean(dim=(2, 3, 4)))

    scores = clip_averaged_scores(model, batch)
    by_hand = torch.stack([model(batch["x"][:, c]) for c in range(6)]).mean(dim=0)
    torch.testing.assert_close(scores, by_hand)
    assert not torch.allclose(scores, model(batch["x"][:, 0]))
    # without clip inputs: one plain call, as before
    plain = {"x": batch["x"][:, 0], "inputs": ("x",)}
    torch.testing.assert_close(clip_averaged_scores(model, plain), model(batch["x"][:, 0]))
