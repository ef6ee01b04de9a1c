"""PoseConv3D's 3D-CNN backbones (ResNet3D-SlowOnly, C3D-light, X3D-shallow) and its recognizer with the I3D head:
shapes against the strides worked out by hand, parameter counts against hand counts (and the full SlowOnly against
the ~2.0 M of the paper), one SGD step lowers the loss, multi-clip averaging, ONNX export and overfitting a small
batch of synthetic Gaussian heatmap volumes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skelact.errors import ConfigError, DataError
from skelact.models import MODELS, DataInfo, PoseConv3D
from skelact.models.c3d import C3D
from skelact.models.resnet3d_slowonly import Bottleneck3d, ResNet3dSlowOnly
from skelact.models.x3d import X3D, X3DBlock, round_width
from skelact.skeleton.layout import get_layout

#: small versions of each backbone (for the training-step tests)
SMALL = {
    "slowonly": dict(base_channels=4, stage_blocks=(1, 1, 1)),
    "c3d": dict(base_channels=4),
    "x3d": dict(base_channels=8, stage_blocks=(1, 1, 1)),
}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------- shapes


def test_block_shapes():
    x = torch.randn(2, 8, 6, 10, 10)
    # inflated, strided in time and space: T 6 -> 3, H, W 10 -> 5, channels 4 * planes
    assert Bottleneck3d(8, 4, spatial_stride=2, temporal_stride=2, inflate=True)(x).shape == (2, 16, 3, 5, 5)
    assert Bottleneck3d(8, 2)(x).shape == (2, 8, 6, 10, 10)
    assert X3DBlock(8, 18, 16, spatial_stride=2, se_ratio=1 / 16)(x).shape == (2, 16, 6, 5, 5)
    assert X3DBlock(8, 18, 8)(x).shape == (2, 8, 6, 10, 10)


@pytest.mark.parametrize("name, shape", [
    # SlowOnly: no stem down-sampling, spatial strides (2, 2, 2): 32 -> 4; temporal (1, 1, 2): 8 -> 4; 4 * 128
    ("slowonly", (1, 512, 4, 4, 4)),
    # C3D-light: three 1x2x2 average pools, time kept; 8 * 32 channels
    ("c3d", (1, 256, 8, 4, 4)),
    # X3D-shallow: stem stride 2 and three strided stages: 32 -> 2; 96 * 2.25 channels
    ("x3d", (1, 216, 8, 2, 2)),
])
def test_backbone_shapes_at_reference_widths(name, shape):
    model = PoseConv3D(5, 17, name).eval()
    x = torch.randn(1, 17, 8, 32, 32)
    with torch.no_grad():
        assert model.backbone(x).shape == shape
        assert model(x).shape == (1, 5)
        assert model.extract_features(x).shape == (1, shape[1])


# ---------------------------------------------------------------------------------------------------- parameters


def test_slowonly_parameters_hand_count():
    """in 3, base 2, one block in each of two stages (the second inflated); 5 classes.

    stem 1x3x3 3->2: 54 + BN 4 = 58
    stage 1 (2 -> planes 2 -> 8): conv1 4 + 4, conv2 36 + 4, conv3 16 + 16, shortcut 16 + 16 = 112
    stage 2 (8 -> planes 4 -> 16): conv1 3x1x1 96 + 8, conv2 144 + 8, conv3 64 + 32, shortcut 128 + 32 = 512
    head 16 * 5 + 5 = 85
    """
    model = PoseConv3D(5, 3, "slowonly", backbone_options=dict(
        base_channels=2, stage_blocks=(1, 1), inflate=(0, 1), spatial_strides=(2, 2), temporal_strides=(1, 2),
        stem_kernel=(1, 3, 3)))
    assert n_params(model.backbone) == 58 + 112 + 512
    assert n_params(model) == 58 + 112 + 512 + 85


def test_c3d_parameters_hand_count():
    """Every conv is 3x3x3 without bias, plus a BN's weight and bias: 27 * c_in * c_out + 2 * c_out."""
    widths = [(17, 32), (32, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    assert n_params(C3D(17)) == sum(27 * a * b + 2 * b for a, b in widths) == 3_389_472


def test_full_slowonly_parameter_count():
    """The paper's SlowOnly has "about 2.0 M" parameters; ours, counted once and kept as a regression figure, is
    1,994,080 in the backbone and 2,024,860 with a 60-class head (512 * 60 + 60)."""
    model = PoseConv3D(60, 17, "slowonly")
    assert n_params(model.backbone) == 1_994_080
    assert n_params(model) == 1_994_080 + 512 * 60 + 60


def test_full_x3d_parameter_count():
    """X3D-shallow's count, kept as a regression figure (benchmarks: 0.57 GMACs at 17x48x56x56)."""
    assert n_params(PoseConv3D(60, 17, "x3d").backbone) == 241_488


def test_x3d_width_rounding():
    # X3D rounds widths to multiples of 8, never more than 10 % below the exact value
    assert round_width(24, 1.0) == 24
    assert round_width(24, 2.0) == 48
    assert round_width(30, 1.0) == 32
    assert round_width(54, 1 / 16) == 8
    assert X3D(17, width_factor=2.0).out_channels == int(192 * 2.25)


# ---------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("name", sorted(SMALL))
def test_one_training_step_lowers_the_loss(name):
    torch.manual_seed(0)
    model = PoseConv3D(3, 4, name, dropout=0.0, backbone_options=SMALL[name]).train()
    x = torch.rand(6, 4, 4, 16, 16)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05)
    before = F.cross_entropy(model(x), y)
    before.backward()
    optimiser.step()
    with torch.no_grad():
        after = F.cross_entropy(model(x), y)
    assert after.item() < before.item()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_channels_last_gives_the_same_outputs_and_gradients(name):
    """The memory format is a speed setting only: same weights, same inputs -> same logits and gradients."""
    torch.manual_seed(0)
    fast = PoseConv3D(3, 4, name, dropout=0.0, backbone_options=SMALL[name]).train()
    plain = PoseConv3D(3, 4, name, dropout=0.0, backbone_options=SMALL[name], channels_last=False).train()
    plain.load_state_dict(fast.state_dict())
    x = torch.rand(2, 2, 4, 4, 16, 16)  # two clips per sample: the flattened batch goes through the format too
    y = torch.tensor([0, 2])
    for model in (fast, plain):
        F.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        torch.testing.assert_close(fast.eval()(x), plain.eval()(x), atol=1e-5, rtol=1e-5)
    for (key, a), (_, b) in zip(fast.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=key)
    assert fast._clips(x[:, 0])[0].is_contiguous(memory_format=torch.channels_last_3d)
    assert plain._clips(x[:, 0])[0].is_contiguous()


def gaussian_volumes(n_per_class: int, channels: int, frames: int, size: int, sigma: float = 1.0):
    """Heatmap volumes of two classes: in class 0 every joint's Gaussian moves left to right, in class 1 right to
    left (same positions, reversed in time, so only the temporal order tells them apart)."""
    rng = np.random.default_rng(7)
    grid = np.arange(size, dtype=np.float32)
    volumes, labels = [], []
    for label in (0, 1):
        for _ in range(n_per_class):
            rows = rng.uniform(3, size - 3, channels)
            start, end = rng.uniform(2, 5), rng.uniform(size - 5, size - 2)
            xs = np.linspace(start, end, frames) if label == 0 else np.linspace(end, start, frames)
            v = np.exp(-((grid[None, None, :, None] - rows[:, None, None, None]) ** 2
                         + (grid[None, None, None, :] - xs[None, :, None, None]) ** 2) / (2 * sigma ** 2))
            volumes.append(v.astype(np.float32))
            labels.append(label)
    return torch.from_numpy(np.stack(volumes)), torch.tensor(labels)


def test_tiny_model_overfits_gaussian_heatmaps():
    torch.manual_seed(0)
    x, y = gaussian_volumes(4, channels=3, frames=8, size=16)
    assert x.shape == (8, 3, 8, 16, 16) and abs(float(x.max()) - 1.0) < 0.05
    model = PoseConv3D(2, 3, "slowonly", dropout=0.0, backbone_options=SMALL["slowonly"])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(40):
        optimiser.zero_grad()
        loss = F.cross_entropy(model.train()(x), y)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        logits = model.eval()(x)
    assert F.cross_entropy(logits, y).item() < 0.2
    assert torch.equal(logits.argmax(1), y)


# ---------------------------------------------------------------------------------------------------- clips


def test_multi_clip_average_is_the_mean_of_single_clip_scores():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 4, 4, 16, 16)  # 2 samples of 3 clips
    by_score = PoseConv3D(5, 4, "slowonly", clip_average="score", backbone_options=SMALL["slowonly"]).eval()
    by_prob = PoseConv3D(5, 4, "slowonly", backbone_options=SMALL["slowonly"]).eval()
    by_prob.load_state_dict(by_score.state_dict())
    with torch.no_grad():
        torch.nn.init.normal_(by_score.head.fc.weight, 0, 1.0)  # logits far from uniform
        by_prob.head.fc.weight.copy_(by_score.head.fc.weight)
        single = torch.stack([by_score(x[:, c]) for c in range(3)], dim=1)  # [N, clips, classes]
        assert torch.allclose(by_score(x), single.mean(1), atol=1e-5)
        assert torch.allclose(torch.softmax(by_prob(x), -1), torch.softmax(single, -1).mean(1), atol=1e-6)
        assert torch.allclose(by_score.extract_features(x),
                              torch.stack([by_score.extract_features(x[:, c]) for c in range(3)], 1).mean(1),
                              atol=1e-6)


def test_wrong_input_is_one_data_error():
    model = PoseConv3D(5, 4, "c3d", backbone_options=SMALL["c3d"])
    with pytest.raises(DataError) as e:
        model(torch.zeros(1, 4, 8, 8))
    assert e.value.field == "heatmap"
    with pytest.raises(DataError, match="expected 4 heatmap channels"):
        model(torch.zeros(1, 17, 4, 8, 8))


# ---------------------------------------------------------------------------------------------------- the table


def test_from_data_counts_heatmap_channels_from_the_layout():
    assert MODELS["poseconv3d"] is PoseConv3D
    layout = get_layout("nw_ucla20")
    data = DataInfo(num_classes=10, layout=layout, in_channels=3, num_persons=1)
    joints = PoseConv3D.from_data(data, backbone="x3d")
    assert (joints.num_classes, joints.in_channels) == (10, 20)
    assert PoseConv3D.from_data(data, heatmap="limbs").in_channels == 19  # a tree of 20 joints has 19 bones
    assert PoseConv3D.from_data(data, heatmap="both", in_channels=39).in_channels == 39
    with pytest.raises(ConfigError) as e:
        PoseConv3D.from_data(data, in_channels=17)
    assert e.value.field == "in_channels"
    with pytest.raises(ConfigError) as e:
        PoseConv3D.from_data(data, num_classes=60)
    assert e.value.field == "num_classes"
    with pytest.raises(ConfigError) as e:
        PoseConv3D.from_data(data, backbone="slowfast")
    assert e.value.field == "backbone"
    with pytest.raises(ConfigError) as e:
        PoseConv3D.from_data(data, backbone_options={"depth": 50})
    assert e.value.field == "backbone_options.depth"


# ---------------------------------------------------------------------------------------------------- export


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_onnx_export_matches_pytorch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(2)
    model = PoseConv3D(4, 5, "slowonly", backbone_options=dict(base_channels=8)).eval()
    for shape in [(2, 5, 8, 24, 24), (1, 2, 5, 8, 24, 24)]:
        x = torch.rand(shape)
        path = tmp_path / f"poseconv3d_{len(shape)}d.onnx"
        with torch.no_grad():
            torch.onnx.export(model, (), str(path), kwargs={"heatmap": x}, input_names=["heatmap"],
                              output_names=["logits"], opset_version=17, dynamo=False,
                              dynamic_axes={"heatmap": {0: "batch"}, "logits": {0: "batch"}})
            expected = model(x).numpy()
        onnx.checker.check_model(onnx.load(str(path)))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = session.run(["logits"], {"heatmap": x.numpy()})
        assert got.shape == expected.shape
        assert np.max(np.abs(got - expected)) < 1e-4


def test_a_config_builds_it_through_the_engine(tmp_path):
    """``model.type: poseconv3d`` in a config: the engine's build_model fills num_classes and in_channels from the
    store, and a wrong backbone option or channel count is one ConfigError naming the config key."""
    import types
    from pathlib import Path

    from skelact.config import load_config
    from skelact.engine.build import build_model

    repo = Path(__file__).resolve().parents[1]
    config = tmp_path / "poseconv3d.yaml"
    config.write_text("_base_:\n"
                      f"  - {repo}/configs/_base_/datasets/nw_ucla.yaml\n"
                      f"  - {repo}/configs/_base_/schedules/ctrgcn_nw_ucla.yaml\n"
                      f"  - {repo}/configs/_base_/modalities/joint.yaml\n"
                      "model: {type: poseconv3d, backbone: x3d, heatmap: limbs,\n"
                      "        backbone_options: {base_channels: 8}}\n")
    store = types.SimpleNamespace(num_classes=10, layout=get_layout("nw_ucla20"), coords=3,
                                  class_names=tuple("abcdefghij"), path=tmp_path)
    model = build_model(load_config(config), store)
    assert isinstance(model, PoseConv3D) and (model.num_classes, model.in_channels) == (10, 19)
    with pytest.raises(ConfigError) as e:
        build_model(load_config(config, ["model.backbone_options.depth=50"]), store)
    assert e.value.field == "model.backbone_options.depth"
    with pytest.raises(ConfigError) as e:
        build_model(load_config(config, ["model.in_channels=17"]), store)
    assert e.value.field == "model.in_channels" and "19 channels" in e.value.message
