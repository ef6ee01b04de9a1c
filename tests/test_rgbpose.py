"""RGBPose-Conv3D (PoseConv3D paper, Sec. 3.4): the two clips of one video, the lateral connections, the separate
losses, shapes and parameter counts, one training step on real rendered clips.

Independent references: a synthetic video whose bright spot sits exactly on a joint (the RGB clip's spot and the
heatmap's peak must coincide, through a random crop and a flip); two single-pathway networks (the joint network with
zeroed lateral entries must compute exactly what they compute); pyskl's parameter count worked out by hand from its
config (``configs/rgbpose_conv3d/rgbpose_conv3d.py``: layer widths, kernels, lateral channels).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skelact.data.transforms import RGBPoseClips
from skelact.errors import ConfigError, DataError
from skelact.models import MODELS, RGBPoseConv3D
from skelact.skeleton.layout import get_layout

TINY = dict(rgb_backbone={"base_channels": 8, "stage_blocks": [1, 1, 1, 1]},
            pose_backbone={"base_channels": 4, "stage_blocks": [1, 1, 1]}, rgb_to_pose_reduction=4, dropout=0.0)


def tiny(**settings) -> RGBPoseConv3D:
    torch.manual_seed(0)
    return RGBPoseConv3D(5, 13, **{**TINY, **settings}).eval()


def inputs(n: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, 64, 64, generator=g), torch.rand(n, 13, 16, 16, 16, generator=g)


# -- sampling --------------------------------------------------------------------------------------------------------

def spot_video(frames: int = 40, height: int = 96, width: int = 128):
    """Frames with one bright 3 x 3 spot on joint 0 (the head), which moves 2 px right per frame, and keypoints whose
    other joints stay put (they make the subject box)."""
    layout = get_layout("penn13")
    kp = np.zeros((1, frames, layout.num_joints, 2), np.float32)
    rng = np.random.default_rng(0)
    kp[0, :, 1:] = rng.uniform([30, 20], [100, 80], size=(layout.num_joints - 1, 2)).astype(np.float32)
    video = np.zeros((frames, height, width, 3), np.uint8)
    for t in range(frames):
        x, y = 15 + 2 * t, 40 + (t % 7)
        kp[0, t, 0] = (x, y)
        video[t, y - 1:y + 2, x - 1:x + 2] = 255
    sample = {"keypoints": kp, "scores": np.ones(kp.shape[:3], np.float32), "layout": layout, "name": "spot",
              "label": 0, "video": "spot.mp4", "meta": {"img_shape": (height, width)}}
    return sample, video


def centroid(image: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """``(x, y)`` centroid of an ``[H, W]`` image's values above ``floor``."""
    w = np.clip(image - floor, 0, None)
    ys, xs = np.mgrid[:image.shape[0], :image.shape[1]]
    return np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()


def spot_positions(rgb: np.ndarray, heatmap: np.ndarray, ratio: int) -> tuple[np.ndarray, np.ndarray]:
    """Per RGB frame ``t``: the RGB spot in heatmap coordinates and the head heatmap's peak at pose frame ``r t``."""
    speed = heatmap.shape[1] // rgb.shape[1]
    # the spot is white (2.25 once normalised); the grey padding past the frame's edge (0.06) is left out
    spots = [(centroid(rgb[0, t], floor=1.0) + 0.5) / ratio - 0.5 for t in range(rgb.shape[1])]
    peaks = [centroid(heatmap[0, speed * t]) for t in range(rgb.shape[1])]
    return np.array(spots), np.array(peaks)


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_rgb_and_pose_clips_come_from_the_same_frames_crop_and_flip(flip):
    sample, video = spot_video()
    clips = RGBPoseClips(rgb_len=4, pose_len=16, rgb_size=64, flip=flip, area=(0.8, 1.0))
    clips.frames_of = lambda path: video
    out = clips(sample, np.random.default_rng(3))
    assert out["rgb"].shape == (3, 4, 64, 64) and out["heatmap"].shape == (13, 16, 16, 16)
    # the RGB frames are every 4th pose frame
    np.testing.assert_array_equal(out["rgb_frames"], out["pose_frames"][:, ::4])
    spots, peaks = spot_positions(out["rgb"], out["heatmap"], 4)
    # same frames (the spot moves 2 px per frame, several heatmap pixels over a clip), same crop, same flip
    np.testing.assert_allclose(spots, peaks, atol=0.25)
    assert np.ptp(peaks[:, 0]) > 3
    direction = np.sign(peaks[-1, 0] - peaks[0, 0])
    assert direction == (-1 if flip else 1)  # the spot moves right; in the mirror image left


def test_test_mode_clips_and_their_mirror_images_stay_aligned():
    sample, video = spot_video()
    clips = RGBPoseClips(rgb_len=4, pose_len=16, rgb_size=64, num_clips=2, test_mode=True, double=True)
    clips.frames_of = lambda path: video
    out = clips(sample, np.random.default_rng(0))
    again = clips(sample, np.random.default_rng(99))
    assert out["rgb"].shape == (4, 3, 4, 64, 64) and out["heatmap"].shape == (4, 13, 16, 16, 16)
    np.testing.assert_array_equal(out["rgb"], again["rgb"])  # test mode ignores the generator
    for view in range(4):
        spots, peaks = spot_positions(out["rgb"][view], out["heatmap"][view], 4)
        np.testing.assert_allclose(spots, peaks, atol=0.25)
    np.testing.assert_array_equal(out["rgb"][2], out["rgb"][0][..., ::-1])


def test_rgbpose_clips_refuse_bad_settings_and_unaligned_videos():
    with pytest.raises(ConfigError, match="multiple of rgb_len"):
        RGBPoseClips(rgb_len=3, pose_len=16)
    with pytest.raises(ConfigError, match="heatmap_ratio"):
        RGBPoseClips(rgb_size=30, heatmap_ratio=4)
    sample, video = spot_video()
    clips = RGBPoseClips(rgb_len=4, pose_len=16, rgb_size=64)
    clips.frames_of = lambda path: video[:-1]
    with pytest.raises(DataError, match="aligned"):
        clips(sample, np.random.default_rng(0))
    with pytest.raises(DataError, match="video"):
        clips({k: v for k, v in sample.items() if k != "video"}, np.random.default_rng(0))


# -- the network -----------------------------------------------------------------------------------------------------

def pyskl_parameter_count(num_classes: int = 60, joints: int = 17, lateral: bool = True) -> int:
    """pyskl's RGBPoseConv3D + RGBPoseHead parameters, from its config by hand: bottlenecks of 1x1x1 (3x1x1
    inflated), 1x3x3 and 1x1x1 convolutions with batch-norms (2 parameters a channel), a projection shortcut in each
    stage's first block, whose input is widened by the lateral channels (RGB stages 2, 3: +128, +256; pose stages
    1, 2: +32, +64); the pose->RGB laterals are bias-free 7x1x1 convolutions 128->128 and 256->256, the RGB->pose
    ones 7x1x1 transposed convolutions 512->32 and 1024->64 with batch-norm."""
    def bottleneck(inp: int, planes: int, kt: int, shortcut: bool) -> int:
        n = inp * planes * kt + planes * planes * 9 + planes * 4 * planes + 2 * (planes + planes + 4 * planes)
        return n + (inp * 4 * planes + 2 * 4 * planes if shortcut else 0)

    def pathway(cin, base, blocks, inflate, extra):
        n, width = cin * base * 49 + 2 * base, base
        for i, count in enumerate(blocks):
            for j in range(count):
                n += bottleneck(width + (extra[i] if j == 0 else 0), base * 2 ** i, 3 if inflate[i] else 1, j == 0)
                width = base * 2 ** i * 4
        return n

    rgb_extra, pose_extra = ((0, 0, 128, 256), (0, 32, 64)) if lateral else ((0,) * 4, (0,) * 3)
    rgb = pathway(3, 64, (3, 4, 6, 3), (0, 0, 1, 1), rgb_extra)
    pose = pathway(joints, 32, (4, 6, 3), (0, 1, 1), pose_extra)
    laterals = (128 * 128 * 7 + 256 * 256 * 7 + 512 * 32 * 7 + 2 * 32 + 1024 * 64 * 7 + 2 * 64) if lateral else 0
    return rgb + pose + laterals + (2048 + 1) * num_classes + (512 + 1) * num_classes


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_and_feature_shapes_match_pyskls_configuration():
    model = RGBPoseConv3D(60, 17).eval()
    assert count(model) == pyskl_parameter_count() == 36_147_928
    assert count(RGBPoseConv3D(60, 17, pathways=["rgb"])) + count(RGBPoseConv3D(60, 17, pathways=["pose"])) \
        == pyskl_parameter_count(lateral=False)
    # pyskl's sizes scaled down 7x in space: 8 RGB frames at 32 px, 32 heatmap frames at 8 px
    with torch.no_grad():
        features, clips = model.features(torch.randn(1, 3, 8, 32, 32), torch.rand(1, 17, 32, 8, 8))
        out = model(torch.randn(1, 2, 3, 8, 32, 32), torch.rand(1, 2, 17, 32, 8, 8))
    assert clips is None
    assert features["rgb"].shape == (1, 2048, 8, 1, 1) and features["pose"].shape == (1, 512, 32, 1, 1)
    assert out.shape == (1, 60)
    torch.testing.assert_close(out.exp().sum(), torch.tensor(1.0))
    assert MODELS["rgbpose_conv3d"] is RGBPoseConv3D


def test_lateral_connections_change_the_other_pathways_features_and_not_when_switched_off():
    rgb, heatmap = inputs()
    other_rgb, other_heatmap = inputs(seed=2)
    for lateral in (True, False):
        model = tiny(lateral=lateral)
        with torch.no_grad():
            _, base = model(rgb, heatmap, return_pathways=True)
            _, rgb_changed = model(other_rgb, heatmap, return_pathways=True)
            _, pose_changed = model(rgb, other_heatmap, return_pathways=True)
        # a pathway's own input always matters
        assert not torch.allclose(rgb_changed["rgb"], base["rgb"])
        assert not torch.allclose(pose_changed["pose"], base["pose"])
        # the other pathway's input matters only through the laterals
        assert torch.allclose(rgb_changed["pose"], base["pose"]) is not lateral
        assert torch.allclose(pose_changed["rgb"], base["rgb"]) is not lateral
    assert len(tiny(lateral=False).laterals) == 0


def test_zeroed_lateral_entries_make_the_joint_network_the_two_networks_pre_trained_alone():
    torch.manual_seed(5)
    alone = {p: RGBPoseConv3D(5, 13, pathways=[p], **TINY).eval() for p in ("rgb", "pose")}
    joint = tiny()
    # the pathways' keys are those of the single-pathway networks: init loads them by prefix, nothing to pad
    for p, net in alone.items():
        getattr(joint, p).load_state_dict(getattr(net, p).state_dict())
    joint.zero_lateral_entries()
    rgb, heatmap = inputs()
    with torch.no_grad():
        fused, parts = joint(rgb, heatmap, return_pathways=True)
        torch.testing.assert_close(parts["rgb"], alone["rgb"](rgb=rgb))
        torch.testing.assert_close(parts["pose"], alone["pose"](heatmap=heatmap))
    # late fusion 1:1 of the two probabilities
    expected = (torch.softmax(parts["rgb"], -1) + torch.softmax(parts["pose"], -1)) / 2
    torch.testing.assert_close(fused, expected.log())


def grads_of(model: RGBPoseConv3D, loss: torch.Tensor) -> dict[str, bool]:
    """Which parts of the model the loss gives a non-zero gradient."""
    model.zero_grad()
    loss.backward()
    parts = {"rgb.head": model.rgb.head, "pose.head": model.pose.head, "rgb.backbone": model.rgb.backbone,
             "pose.backbone": model.pose.backbone, "pose_to_rgb": model.laterals["pose_to_rgb_2"],
             "rgb_to_pose": model.laterals["rgb_to_pose_1"]}
    return {name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
            for name, part in parts.items()}


@pytest.mark.parametrize("detach", [False, True])
def test_each_pathways_loss_reaches_only_its_own_head(detach):
    rgb, heatmap = inputs()
    labels = torch.tensor([1, 3])
    model = tiny(lateral_detach=detach).train()
    _, parts = model(rgb, heatmap, return_pathways=True)
    from_rgb = grads_of(model, F.cross_entropy(parts["rgb"], labels))
    _, parts = model(rgb, heatmap, return_pathways=True)
    from_pose = grads_of(model, F.cross_entropy(parts["pose"], labels))
    assert from_rgb["rgb.head"] and not from_rgb["pose.head"]
    assert from_pose["pose.head"] and not from_pose["rgb.head"]
    assert from_rgb["rgb.backbone"] and from_rgb["pose_to_rgb"]
    assert from_pose["pose.backbone"] and from_pose["rgb_to_pose"]
    # through a lateral a loss reaches the other pathway's lower stages (and the lateral into them), as in pyskl,
    # unless detached
    assert from_rgb["pose.backbone"] is not detach and from_rgb["rgb_to_pose"] is not detach
    assert from_pose["rgb.backbone"] is not detach and from_pose["pose_to_rgb"] is not detach


def test_the_network_refuses_inputs_it_cannot_take():
    model = tiny()
    rgb, heatmap = inputs()
    with pytest.raises(DataError, match="speed_ratio"):
        model(rgb, heatmap[:, :, :8])
    with pytest.raises(DataError, match="needs the input 'rgb'"):
        model(heatmap=heatmap)
    with pytest.raises(DataError, match="no pathway"):
        RGBPoseConv3D(5, 13, pathways=["pose"], **TINY)(rgb, heatmap)
    with pytest.raises(ConfigError, match="lateral_stages"):
        tiny(lateral_stages=[1])
    with pytest.raises(ConfigError, match="pathways"):
        tiny(pathways=["depth"])


# -- one training step on real rendered clips ------------------------------------------------------------------------

CLIPS = ("0001", "0341", "1149")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, render_penn_store):
    return render_penn_store(CLIPS, 64), tmp_path_factory.mktemp("frames")


def test_one_training_step_adds_the_two_heads_losses(rendered):
    from skelact.data.batch import collate_by_name
    from skelact.data.dataset import SkeletonDataset
    from skelact.data.transforms import Compose, ToInputs
    from skelact.methods.supervised import SupervisedMethod

    store, cache = rendered
    pipeline = Compose([RGBPoseClips(rgb_len=4, pose_len=16, rgb_size=64, cache_dir=str(cache)),
                        ToInputs({"rgb": "rgb", "heatmap": "heatmap"})])
    data = SkeletonDataset(store, np.arange(len(store)), pipeline, seed=0)
    batch = collate_by_name([data[i] for i in range(len(data))])
    assert batch["rgb"].shape == (3, 3, 4, 64, 64) and batch["heatmap"].shape == (3, 13, 16, 16, 16)
    assert len(list(cache.glob("*.npy"))) == len(CLIPS)  # each video decoded once, into the frame cache
    torch.manual_seed(0)
    model = RGBPoseConv3D(store.num_classes, 13, loss_weights={"rgb": 1.0, "pose": 0.5}, **TINY)
    method = SupervisedMethod(model).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, fused, parts = method.training_step(batch)
    assert set(parts) == {"ce_rgb", "ce_pose"}
    torch.testing.assert_close(loss.detach(), parts["ce_rgb"] + 0.5 * parts["ce_pose"])
    assert fused.shape == (3, store.num_classes) and torch.isfinite(loss)
    optimiser = torch.optim.SGD(method.parameters(), lr=0.1)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    after = model.state_dict()
    for key in ("rgb.head.fc.weight", "pose.head.fc.weight", "laterals.pose_to_rgb_2.transform.conv.weight",
                "laterals.rgb_to_pose_1.transform.conv.weight"):
        assert not torch.equal(before[key], after[key]), key


# -- configs -----------------------------------------------------------------------------------------------------------

CONFIGS = ("rgbpose_rgb_only", "rgbpose_pose_only", "rgbpose_conv3d", "rgbpose_rgb_only_cpu",
           "rgbpose_pose_only_cpu", "rgbpose_conv3d_cpu")


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_build_their_network_and_pipelines(name, rendered):
    from pathlib import Path

    from skelact.config import load_config
    from skelact.engine.build import build_model, build_pipeline_of

    store, _ = rendered
    loaded = load_config(Path(__file__).parents[1] / "configs" / "penn_action" / f"{name}.yaml")
    d = loaded.cfg.data
    assert d.format == "penn-action-rendered" and d.source == "penn_action_labels"  # prepared on first use
    model = build_model(loaded, store)
    assert isinstance(model, RGBPoseConv3D) and model.num_classes == store.num_classes
    steps = [s["type"] for s in d.input_pipeline]
    assert steps == ["ToInputs"]
    inputs_named = set(d.input_pipeline[0]["inputs"])
    assert inputs_named == {"rgb": {"rgb"}, "pose": {"heatmap"}, "both": {"rgb", "heatmap"}}[
        model.pathways[0] if len(model.pathways) == 1 else "both"]
    build_pipeline_of(loaded, "train"), build_pipeline_of(loaded, "test")
    if name.startswith("rgbpose_conv3d"):
        # the merge: RGB pathway from one run, pose pathway from another; laterals enter at zero
        assert loaded.cfg.init.target_prefix == "model.rgb." and loaded.cfg.init.also[0].target_prefix == "model.pose."
        assert all(not lat.entry.conv1.weight.detach().any() for lat in model.laterals.values())


# -- predict and export on a real video --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(rendered, tmp_path_factory):
    """A one-epoch RGBPose-Conv3D run of the CPU config, narrowed, on the three rendered clips."""
    pytest.importorskip("lightning")
    from pathlib import Path

    from skelact.cli import main

    store, cache = rendered
    run = tmp_path_factory.mktemp("rgbpose") / "run"
    config = Path(__file__).parents[1] / "configs" / "penn_action" / "rgbpose_conv3d_cpu.yaml"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_FRAME_CACHE", str(cache))
        assert main(["train", str(config), "init.from_run=null", "init.also=[]", "model.lateral_entry_init=kaiming",
                     f"data.store={store.path}", "epochs=1",
                     "data.train_subset=test", "data.batch_size=3", "data.num_workers=0", "trainer.accelerator=cpu",
                     "trainer.progress_bar=false", "trainer.precision=32",
                     "model.rgb_backbone={base_channels: 4, stage_blocks: [1, 1, 1, 1]}",
                     "model.pose_backbone={base_channels: 4, stage_blocks: [1, 1, 1]}", "model.rgb_to_pose_reduction=4",
                     "--run-dir", str(run)]) == 0
        yield run


def test_predict_runs_both_pathways_on_a_real_video_decoded_once(tiny_run, shared_data, monkeypatch):
    pytest.importorskip("mediapipe")
    from skelact.inference.predictor import Predictor, decoded_frames, predict
    from skelact.video import reader

    video = shared_data / "videos" / "S001C001P001R001A001_rgb.avi"
    if not video.is_file():
        pytest.skip("real clip not available")
    opened = []
    original = reader.VideoReader.__init__

    def counting(self, path, *args, **kwargs):
        opened.append(str(path))
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(reader.VideoReader, "__init__", counting)
    predictor = Predictor(tiny_run)
    assert predictor.rgb_pose
    result = predict(tiny_run, video, predictor=predictor)
    assert opened == [str(video)]  # MediaPipe's decode is the only one; the RGB pathway reads the same frames
    assert result.kind == "video (RGB + poses)" and result.frames == result.sequence.num_frames
    assert np.any(result.sequence.keypoints != 0)  # MediaPipe found the person
    # by hand: the test pipeline's step on the decoded frames and MediaPipe's poses, then the network
    frames = decoded_frames(video)
    step = RGBPoseClips(rgb_len=4, pose_len=16, rgb_size=64, num_clips=1, test_mode=True)
    step.frames_of = lambda path: frames
    sample = {"keypoints": result.sequence.keypoints, "scores": result.sequence.scores, "layout": predictor.layout,
              "name": "x", "video": str(video), "meta": dict(result.sequence.meta)}
    clips = step(sample, np.random.default_rng(0))
    with torch.no_grad():
        logits = predictor.network(rgb=torch.from_numpy(clips["rgb"])[None],
                                   heatmap=torch.from_numpy(clips["heatmap"])[None])
    np.testing.assert_allclose(result.probs, torch.softmax(logits.double(), -1)[0].numpy(), atol=1e-6)


def test_export_writes_a_two_input_onnx_model_that_agrees_with_pytorch(tiny_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from skelact.inference.onnx_export import export_onnx

    result = export_onnx(tiny_run, tmp_path / "rgbpose.onnx", "last", log=lambda _: None)
    assert [i["name"] for i in result.info["inputs"]] == ["rgb", "heatmap"]
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["rgb", "heatmap"]
    # the file gives the logits the run's own test wrote for its first test sample
    from skelact.config import load_config
    from skelact.data.batch import collate_by_name
    from skelact.data.cache import open_store
    from skelact.engine.build import build_dataset

    loaded = load_config(tiny_run / "config.yaml")
    test_set = build_dataset(loaded, open_store(loaded.cfg.data.store), "test")
    batch = collate_by_name([test_set[0]])
    (out,) = session.run(None, {name: batch[name].numpy() for name in ("rgb", "heatmap")})
    np.testing.assert_allclose(out, np.load(tiny_run / "scores.npy")[:1], atol=1e-4)
