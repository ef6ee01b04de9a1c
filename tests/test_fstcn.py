"""FstCN (Sun et al., ICCV 2015): clip pairs, the T-P operator, block shapes, SCI fusion of test views, and a tiny
network that learns a few real rendered clips.

Independent references: SCI values computed by hand (one-hot 1, uniform 0), skelact's numpy SCI fusion
(:func:`skelact.evaluation.fusion.fuse_sci`, what ``skelact ensemble --method sci`` runs), frame differences taken
from the decoded video with plain numpy indexing, crop positions enumerated by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from skelact.data.transforms import ClipPairs
from skelact.data.transforms.clip_pairs import RGB_MEAN, RGB_STD, eighteen_crops
from skelact.errors import ConfigError, DataError
from skelact.evaluation.fusion import fuse_sci, sparsity_concentration_index
from skelact.models import MODELS
from skelact.models.fstcn import FstCN, TransformPermute, fuse_views, sci

#: one clip of each of five classes (0168 has 38 frames, shorter than nothing here needs)
CLIPS = ("0001", "0168", "0341", "0789", "1149")
SIZE = 64
TINY = dict(crop_size=64, scl_widths=(8, 16, 16, 16), path_channels=16, tp_channels=8, temporal_channels=4,
            fc_widths=(32,), dropout=0.0)


# -- SCI and fusion --------------------------------------------------------------------------------------------------

def test_sci_of_one_hot_is_one_and_of_uniform_is_zero():
    k = 7
    one_hot = torch.zeros(k, dtype=torch.float64)
    one_hot[3] = 1.0
    uniform = torch.full((k,), 1.0 / k, dtype=torch.float64)
    assert float(sci(one_hot)) == pytest.approx(1.0)
    assert float(sci(uniform)) == pytest.approx(0.0, abs=1e-12)
    # half the mass on one of 3 classes: (3 * 0.5 - 1) / 2 = 0.25, by hand
    assert float(sci(torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))) == pytest.approx(0.25)
    # the same numbers as the ensemble's numpy SCI
    assert sparsity_concentration_index(one_hot.numpy()) == pytest.approx(1.0)
    assert sparsity_concentration_index(uniform.numpy()) == pytest.approx(0.0, abs=1e-12)


def test_sci_fusion_prefers_a_confident_crop_and_averaging_does_not():
    # view 0 is sure of class 2 (SCI 0.94); four views lean to class 1 (SCI 0.175 each). Averaging follows the
    # majority (class 1: (0.02 + 4 * 0.45) / 5 = 0.364 > class 2: (0.96 + 4 * 0.20) / 5 = 0.352); SCI weighting
    # the confident crop (class 2: 0.94 * 0.96 + 4 * 0.175 * 0.20 = 1.04 > class 1: 0.33).
    probabilities = torch.tensor([[[0.02, 0.02, 0.96]] + [[0.35, 0.45, 0.20]] * 4], dtype=torch.float64)
    logits = probabilities.log()
    assert int(fuse_views(logits, "mean").argmax()) == 1
    assert int(fuse_views(logits, "sci").argmax()) == 2


def test_view_fusion_is_the_ensembles_sci_rule_with_views_as_streams():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(4, 6, 5))  # [N, views, K]
    ours = fuse_views(torch.from_numpy(logits), "sci").exp().numpy()
    theirs = fuse_sci([logits[:, v] for v in range(logits.shape[1])])
    np.testing.assert_allclose(ours, theirs / theirs.sum(axis=1, keepdims=True), rtol=1e-10)
    mean = fuse_views(torch.from_numpy(logits), "mean").exp().numpy()
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(mean, softmax.mean(axis=1), rtol=1e-10)


# -- clip pairs ------------------------------------------------------------------------------------------------------

def test_eighteen_test_crops_cover_the_nine_positions_and_their_flips():
    crops = eighteen_crops(112, 120, 96)
    assert len(crops) == 18
    expected = {(top, left) for top in (0, 8, 16) for left in (0, 12, 24)}
    assert {(t, l) for t, l, f in crops if not f} == expected
    assert {(t, l) for t, l, f in crops if f} == expected
    assert len(set(crops)) == 18


def test_clip_pair_is_the_frames_and_their_differences_at_the_same_positions():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(40, 20, 24, 3), dtype=np.uint8)
    pairs = ClipPairs(clip_len=5, stride=5, diff_offset=9, crop_size=16)
    clip, diff = pairs.pair(frames, start=3, top=2, left=5, flipped=False)
    assert clip.shape == diff.shape == (3, 5, 16, 16)
    positions = [3, 8, 13, 18, 23]
    raw = frames[:, 2:18, 5:21].astype(np.int64)
    np.testing.assert_allclose(diff * RGB_STD[:, None, None, None] * 255,
                               (raw[[p + 9 for p in positions]] - raw[positions]).transpose(3, 0, 1, 2), atol=1e-3)
    np.testing.assert_allclose((clip * RGB_STD[:, None, None, None] + RGB_MEAN[:, None, None, None]) * 255,
                               raw[positions].transpose(3, 0, 1, 2), atol=1e-3)
    flipped_clip, flipped_diff = pairs.pair(frames, start=3, top=2, left=5, flipped=True)
    np.testing.assert_array_equal(flipped_diff, diff[..., ::-1])


def test_clip_pairs_refuse_a_crop_larger_than_the_frames_and_a_sample_without_video(rendered):
    store, _ = rendered
    with pytest.raises(DataError, match="video"):
        ClipPairs(crop_size=32)({"name": "x"}, np.random.default_rng(0))
    with pytest.raises(DataError, match="crop_size"):
        ClipPairs(crop_size=SIZE + 1)({"name": "x", "video": str(store.video_path(0))}, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="clip_len"):
        ClipPairs(clip_len=0)


# -- network blocks ----------------------------------------------------------------------------------------------------

def test_tp_operator_shapes_and_p_receives_gradients():
    tp = TransformPermute(channels=6, out_channels=4)
    x = torch.randn(2, 5, 6, 3, 3, requires_grad=True)  # [N, T, C, H, W]
    y = tp(x)
    assert y.shape == (2, 9, 4, 5)  # [N, H W, C', T]
    # at its identity start, row c of position (h, w) at time t is channel c there
    torch.testing.assert_close(y[1, 3 * 1 + 2, :, 4], x[1, 4, :4, 1, 2])
    y.square().sum().backward()
    assert tp.P.grad is not None and tp.P.grad.abs().sum() > 0


def test_paper_block_output_shapes():
    # the paper's convolution widths and 204 px crops; narrow fully connected layers keep the test fast
    model = FstCN(num_classes=101, fc_widths=(64, 32), aux_weight=0.5)
    clip = torch.randn(1, 3, 5, 204, 204)
    lower = model.lower_frames(clip)
    assert lower.shape == (1, 5, 512, 12, 12)
    assert model.temporal_path(clip).shape == (1, 32)
    # two temporal convolutions x 32 channels x C' = 128 rows x l_t = 5 enter the temporal FC
    assert model.temporal_fc[0].in_features == 2 * 32 * 128 * 5
    spatial, aux = model.spatial_path(clip)
    assert spatial.shape == (1, 32) and aux.shape == (1, 101)
    assert model.spatial_fc[0].in_features == 128 * 5 * 5
    logits, aux_logits = model(clip, clip, return_aux=True)
    assert logits.shape == aux_logits.shape == (1, 101)
    assert [m.out_channels for m in model.lower.layers if isinstance(m, torch.nn.Conv2d)] == [96, 256, 512, 512]
    assert sum(isinstance(m, torch.nn.LocalResponseNorm) for m in model.lower.layers) == 2
    with pytest.raises(ConfigError, match="too small"):
        FstCN(num_classes=5, crop_size=40)


def test_multi_view_input_gives_one_fused_distribution_per_sample():
    model = FstCN(num_classes=5, **TINY).eval()
    views = torch.randn(2, 18, 3, 5, 64, 64)
    fused = model(views, views)
    assert fused.shape == (2, 5)
    torch.testing.assert_close(fused.exp().sum(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="crop"):
        model(torch.randn(1, 3, 5, 40, 40), torch.randn(1, 3, 5, 40, 40))


def test_pretrained_weights_load_from_a_local_file(tmp_path):
    source = FstCN(num_classes=5, **TINY)
    torch.save({"state_dict": {f"method.model.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.pt")
    loaded = FstCN(num_classes=5, pretrained=str(tmp_path / "w.pt"), **TINY)
    torch.testing.assert_close(loaded.tp.P, source.tp.P)
    torch.testing.assert_close(loaded.lower.layers[0].weight, source.lower.layers[0].weight)
    with pytest.raises(ConfigError, match="no such weights file"):
        FstCN(num_classes=5, pretrained=str(tmp_path / "missing.pt"), **TINY)
    assert MODELS["fstcn"] is FstCN


# -- on rendered clips -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered(tmp_path_factory, render_penn_store):
    return render_penn_store(CLIPS, SIZE), tmp_path_factory.mktemp("frames")


def _decoded(path: Path) -> np.ndarray:
    from skelact.video.reader import VideoReader

    with VideoReader(path) as reader:
        return np.stack(list(reader))


def test_diff_of_a_rendered_video_equals_its_decoded_frame_differences(rendered):
    from skelact.data.dataset import SkeletonDataset
    from skelact.data.transforms import Compose, ToInputs

    store, cache = rendered
    pairs = ClipPairs(clip_len=3, stride=2, diff_offset=4, crop_size=SIZE, flip=0.0, cache_dir=str(cache))
    # the dataset hands the step the sample's video path
    item = SkeletonDataset(store, [0], Compose([pairs, ToInputs({"clip": "clip", "diff": "diff"})]))[0]
    clip, diff = item["clip"].numpy(), item["diff"].numpy()
    frames = _decoded(store.video_path(0)).astype(np.int64)
    first = (clip[:, 0] * RGB_STD[:, None, None] + RGB_MEAN[:, None, None]) * 255
    starts = [s for s in range(frames.shape[0]) if np.abs(first - frames[s].transpose(2, 0, 1)).max() < 1e-3]
    assert starts, "the clip's first frame is not a frame of the video"
    t = starts[0]
    expected = (frames[[t + 4, t + 6, t + 8]] - frames[[t, t + 2, t + 4]]).transpose(3, 0, 1, 2)
    np.testing.assert_allclose(diff * RGB_STD[:, None, None, None] * 255, expected, atol=1e-3)
    assert len(list(cache.glob("*.npy"))) == 1  # decoded once, into the frame cache


def test_tiny_fstcn_learns_five_rendered_clips(rendered):
    from skelact.data.batch import collate_by_name, model_inputs
    from skelact.data.dataset import SkeletonDataset
    from skelact.data.transforms import Compose, ToInputs
    from skelact.methods.supervised import SupervisedMethod

    store, cache = rendered
    pipeline = Compose([ClipPairs(clip_len=5, stride=2, diff_offset=3, crop_size=64, flip=0.5,
                                  cache_dir=str(cache)),
                        ToInputs({"clip": "clip", "diff": "diff"})])
    data = SkeletonDataset(store, np.arange(len(store)), pipeline, seed=0)
    torch.manual_seed(0)
    method = SupervisedMethod(FstCN(num_classes=store.num_classes, aux_weight=0.3, **TINY))
    optimiser = torch.optim.Adam(method.parameters(), lr=3e-3)
    first = None
    for epoch in range(100):
        batch = collate_by_name([data[(epoch, i)] for i in range(len(data))])
        loss, logits, parts = method.training_step(batch)
        first = float(loss.detach()) if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert set(parts) == {"ce", "aux_ce"}
    method.eval()
    test = Compose([ClipPairs(clip_len=5, stride=2, diff_offset=3, crop_size=64, num_clips=1, test_mode=True,
                              cache_dir=str(cache)), ToInputs({"clip": "clip", "diff": "diff"})])
    batch = collate_by_name([SkeletonDataset(store, np.arange(len(store)), test)[i] for i in range(len(store))])
    assert batch["clip"].shape == (len(CLIPS), 18, 3, 5, 64, 64)
    with torch.no_grad():
        fused = method(**model_inputs(batch))
    assert float(loss.detach()) < 0.2 * first
    assert (fused.argmax(dim=1) == batch["label"]).all()


def test_clip_pairs_and_fstcn_work_on_a_keypoint_free_video_store(tmp_path, shared_data):
    """A `prepare video-folder` store (UCF101 / HMDB51 style, no keypoints): the dataset hands ClipPairs the video,
    and the model is built from the store's classes alone."""
    pytest.importorskip("av")
    from types import SimpleNamespace

    from skelact.cli import main
    from skelact.data.dataset import SkeletonDataset
    from skelact.data.store import SkeletonStore
    from skelact.data.transforms import Compose, ToInputs
    from skelact.engine.build import data_info

    videos = shared_data / "videos"
    if not (videos / "mmaction2_demo.mp4").is_file():
        pytest.skip("real clips not available")
    for action, clip in (("arm_wrestling", "mmaction2_demo.mp4"), ("ntu_sample", "pyskl_ntu_sample.avi")):
        (tmp_path / "src" / action).mkdir(parents=True)
        (tmp_path / "src" / action / clip).symlink_to(videos / clip)
    assert main(["prepare", "video-folder", str(tmp_path / "src"), str(tmp_path / "store"), "-q",
                 "--workers", "1"]) in (0, None)
    store = SkeletonStore(tmp_path / "store")
    assert not store.has_keypoints
    pipeline = Compose([ClipPairs(crop_size=64, num_clips=1, test_mode=True, max_side=128,
                                  cache_dir=str(tmp_path / "frames")), ToInputs({"clip": "clip", "diff": "diff"})])
    data = SkeletonDataset(store, np.arange(len(store)), pipeline)
    items = [data[i] for i in range(len(store))]
    assert [item["label"] for item in items] == [0, 1]
    assert items[0]["clip"].shape == items[0]["diff"].shape == (18, 3, 5, 64, 64)
    info = data_info(SimpleNamespace(cfg=SimpleNamespace(data=SimpleNamespace(num_persons=1))), store)
    model = FstCN.from_data(info, **TINY).eval()
    with torch.no_grad():
        assert model(items[0]["clip"][None], items[0]["diff"][None]).shape == (1, 2)
