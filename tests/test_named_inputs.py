"""Samples as named inputs, end to end: two named inputs through collate, and a two-input model (defined here)
trained one epoch from a config, exported to ONNX with both inputs, fused by ``ensemble`` and used as the source
of ``init.from_run``. Real NW-UCLA samples, a model of a few hundred parameters, T = 16 frames."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("lightning", reason="the engine needs the train extra (lightning)")

from skelact.data.batch import collate_by_name, model_inputs  # noqa: E402
from skelact.errors import ConfigError, DataError  # noqa: E402
from skelact.models import MODELS, DataArguments, register_model  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
T = 16


# ---------------------------------------------------------------------------------------------------------------
# collate by name


def item(k: int, frames: int) -> dict:
    """A sample with a keypoint sequence ``joint`` [1, frames, 2, 3] of value k and a fixed-shape ``extra`` [4]."""
    return {"joint": torch.full((1, frames, 2, 3), float(k)), "extra": torch.arange(4.0) + 10 * k, "label": k,
            "index": k, "inputs": ("joint", "extra"), "sequences": ("joint",)}


def test_two_named_inputs_go_through_collate():
    batch = collate_by_name([item(1, 3), item(2, 5)])
    assert batch["inputs"] == ("joint", "extra")
    assert batch["joint"].shape == (2, 1, 5, 2, 3)  # the shorter clip zero-padded at the end, in time
    assert batch["joint"][0, 0, :3].eq(1).all() and batch["joint"][0, 0, 3:].eq(0).all()
    assert batch["joint"][1].eq(2).all()
    assert batch["extra"].tolist() == [[10, 11, 12, 13], [20, 21, 22, 23]]  # stacked as they are
    assert batch["label"].tolist() == [1, 2] and batch["index"].tolist() == [1, 2]
    assert list(model_inputs(batch)) == ["joint", "extra"]
    assert collate_by_name([item(1, 3), item(2, 5)], num_frames=7)["joint"].shape[2] == 7
    with pytest.raises(DataError, match="more than data.num_frames=4"):
        collate_by_name([item(1, 3), item(2, 5)], num_frames=4)
    # an input that is not a sequence must keep one shape: padding it would invent values
    odd = item(2, 5)
    odd["extra"] = torch.zeros(5)
    with pytest.raises(DataError, match="different shapes") as e:
        collate_by_name([item(1, 3), odd])
    assert e.value.field == "extra"


# ---------------------------------------------------------------------------------------------------------------
# a two-input model trained from a config


class TwoStream(DataArguments, nn.Module):
    """``forward(joint, bone)``: each [N, M, T, V, C] stream averaged over persons, frames and joints, a linear
    layer each, and a classifier on both."""

    DATA_ARGUMENTS = ("num_classes", "in_channels")

    def __init__(self, num_classes: int, in_channels: int, hidden: int = 8):
        super().__init__()
        self.num_classes = num_classes
        self.joint = nn.Linear(in_channels, hidden)
        self.bone = nn.Linear(in_channels, hidden)
        self.fc = nn.Linear(2 * hidden, num_classes)

    def forward(self, joint: torch.Tensor, bone: torch.Tensor) -> torch.Tensor:
        j = self.joint(joint.mean(dim=(1, 2, 3))).relu()
        b = self.bone(bone.mean(dim=(1, 2, 3))).relu()
        return self.fc(torch.cat([j, b], dim=1))


CONFIG = f"""_base_: {REPO / 'configs' / '_base_' / 'datasets' / 'nw_ucla.yaml'}
model: {{type: two_stream_toy, hidden: 8}}
epochs: 1
data:
  train_pipeline:
    - {{type: CenterOnJoint, joint: 1, frame: first}}
    - {{type: MinMaxNormalize}}
    - {{type: UclaSample, window_size: {T}}}
  test_pipeline:
    - {{type: CenterOnJoint, joint: 1, frame: first}}
    - {{type: MinMaxNormalize}}
    - {{type: UclaSample, window_size: {T}, test_mode: true}}
  input_pipeline:
    - {{type: ToModality, name: bone, into: bone}}
    - {{type: ToInputs, inputs: {{joint: keypoints, bone: bone}}}}
  max_train_samples: 48
  max_test_samples: 24
  batch_size: 8
  num_workers: 0
optimizer: {{type: adamw, lr: 0.01, weight_decay: 0.01}}
schedule: {{type: constant}}
trainer: {{accelerator: cpu, progress_bar: false}}
evaluate: {{checkpoint: last}}
"""


@pytest.fixture(scope="module")
def toy_model():
    register_model("two_stream_toy", TwoStream)
    yield TwoStream
    MODELS.pop("two_stream_toy", None)


@pytest.fixture(scope="module")
def two_stream_runs(toy_model, shared_data, tmp_path_factory):
    """Two one-epoch runs of the two-input model (seeds 1 and 2) on the real NW-UCLA store."""
    from skelact.commands.train import train_command

    root = tmp_path_factory.mktemp("two_stream")
    config = root / "two_stream.yaml"
    config.write_text(CONFIG)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_DATA", str(shared_data))
        mp.setenv("SKELACT_CACHE", str(root / "cache"))
        runs = [train_command(config, [f"seed={seed}"], run_dir=root / f"run{seed}") for seed in (1, 2)]
        from skelact.config import load_config
        from skelact.engine.build import open_dataset_store

        loaded = load_config(runs[0] / "config.yaml")
        store = open_dataset_store(loaded, progress=False, log=lambda _: None)
    torch.set_num_threads(before)
    return config, runs, loaded, store


def test_the_pipeline_names_two_aligned_inputs(two_stream_runs):
    from skelact.engine.build import build_dataset

    _, runs, loaded, store = two_stream_runs
    sample = build_dataset(loaded, store, "test")[0]
    assert sample["inputs"] == ("joint", "bone") and sample["sequences"] == ("joint", "bone")
    joint, bone = sample["joint"].numpy(), sample["bone"].numpy()
    assert joint.shape == (1, T, 20, 3)
    parents = list(store.layout.parents)
    by_hand = np.stack([joint[..., v, :] - joint[..., parents[v], :] for v in range(20)], axis=-2)
    np.testing.assert_allclose(bone, by_hand, atol=1e-6)  # the bones of the same augmented clip


def test_a_two_input_model_trains_from_a_config(two_stream_runs):
    runs = two_stream_runs[1]
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["num_test_samples"] == 24 and metrics["epoch"] == 1
        state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert {"method.model.joint.weight", "method.model.bone.weight"} <= set(state["state_dict"])
        assert type(state["optimizer_states"][0]["param_groups"][0]["weight_decay"]) is float  # AdamW's groups
        assert "betas" in state["optimizer_states"][0]["param_groups"][0]


def test_the_two_input_model_exports_to_onnx(two_stream_runs, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from skelact.inference.onnx_export import export_onnx

    runs = two_stream_runs[1]
    result = export_onnx(runs[0], tmp_path / "toy.onnx", "last", log=lambda _: None)
    assert [i["name"] for i in result.info["inputs"]] == ["joint", "bone"]
    assert result.info["inputs"][1]["shape"] == ["batch", 1, "frames", 20, 3]
    session = ort.InferenceSession(str(result.onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["joint", "bone"]
    # the file gives the logits the run's own test wrote, on its first test samples (scores.npy, dataset order)
    from skelact.engine.build import build_dataset

    _, runs, loaded, store = two_stream_runs
    test_set = build_dataset(loaded, store, "test")
    batch = collate_by_name([test_set[i] for i in range(5)])
    (logits,) = session.run(None, {name: batch[name].numpy() for name in ("joint", "bone")})
    np.testing.assert_allclose(logits, np.load(runs[0] / "scores.npy")[:5], atol=1e-4)


def test_predict_feeds_both_inputs(two_stream_runs, shared_data, monkeypatch):
    """``skelact predict``'s Predictor gives a test sample the probabilities the run's test wrote for it."""
    from skelact.engine.build import subset_indices
    from skelact.inference.predictor import Predictor

    _, runs, loaded, store = two_stream_runs
    monkeypatch.setenv("SKELACT_DATA", str(shared_data))
    monkeypatch.setenv("SKELACT_CACHE", str(runs[0].parent / "cache"))
    predictor = Predictor(runs[0], "last")
    first = int(subset_indices(loaded, store, "test")[0])
    probs = predictor.probabilities(store[first])
    logits = torch.from_numpy(np.load(runs[0] / "scores.npy")[:1]).double()
    np.testing.assert_allclose(probs, torch.softmax(logits, dim=1).numpy(), atol=1e-6)


def test_ensemble_fuses_the_two_input_runs(two_stream_runs, tmp_path):
    from skelact.evaluation.ensemble import ensemble_runs

    runs = two_stream_runs[1]
    fused = ensemble_runs(runs, out_dir=tmp_path / "ensemble")
    scores = [np.load(run / "scores.npy") for run in runs]
    labels = np.load(runs[0] / "labels.npy")
    by_hand = 100.0 * float(np.mean((scores[0] + scores[1]).argmax(axis=1) == labels))
    assert fused["top1"] == pytest.approx(by_hand)
    np.testing.assert_allclose(np.load(tmp_path / "ensemble" / "scores.npy"), scores[0] + scores[1], rtol=1e-6)


def test_init_from_run_copies_the_prefix_and_refuses_mismatches(two_stream_runs):
    from skelact.config import load_config
    from skelact.engine.initialise import init_from_run
    from skelact.methods.supervised import SupervisedMethod

    config, runs = two_stream_runs[:2]
    source = torch.load(runs[0] / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    torch.manual_seed(123)
    method = SupervisedMethod(TwoStream(10, 3))
    bone_before = method.model.bone.weight.detach().clone()
    loaded = load_config(config, [f"init.from_run={runs[0]}", "init.source_prefix=model.joint.",
                                  "init.target_prefix=model.bone."])
    assert init_from_run(loaded, method, log=lambda _: None) == 2  # weight and bias
    # the joint stream of the source run, put into the bone stream of the new model; nothing else touched
    assert torch.equal(method.model.bone.weight, source["method.model.joint.weight"])
    assert torch.equal(method.model.bone.bias, source["method.model.joint.bias"])
    assert not torch.equal(bone_before, method.model.bone.weight)
    assert not torch.equal(method.model.joint.weight, source["method.model.joint.weight"])
    # the classifier [10, 16] does not fit the joint stream [8, 3]: one line naming every mismatch, nothing copied
    fc_before = method.model.fc.weight.detach().clone()
    bad = load_config(config, [f"init.from_run={runs[0]}", "init.source_prefix=model.joint.",
                               "init.target_prefix=model.fc."])
    with pytest.raises(ConfigError) as e:
        init_from_run(bad, method, log=lambda _: None)
    assert "shape mismatch fc.weight (8, 3) -> (10, 16)".replace("fc.", "model.fc.") in e.value.message
    assert "\n" not in str(e.value) and e.value.path == "command line"
    assert torch.equal(fc_before, method.model.fc.weight)
    missing = load_config(config, [f"init.from_run={runs[0]}", "init.source_prefix=model.fc.",
                                   "init.target_prefix=model."])
    with pytest.raises(ConfigError, match=r"unexpected .*model\.weight.*missing .*model\.joint\.weight"):
        init_from_run(missing, method, log=lambda _: None)


def test_init_also_merges_two_runs_into_two_parts_and_refuses_a_key_given_twice(two_stream_runs):
    """RGBPose-Conv3D's merge (pyskl's merge_pretrain): one part of the model from each run, by key prefix."""
    from skelact.config import load_config
    from skelact.engine.initialise import init_from_run
    from skelact.methods.supervised import SupervisedMethod

    config, runs = two_stream_runs[:2]
    sources = [torch.load(r / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
               for r in runs]
    torch.manual_seed(7)
    method = SupervisedMethod(TwoStream(10, 3))
    also = (f"init.also=[{{from_run: {runs[1]}, source_prefix: model.bone., target_prefix: model.bone.}}]")
    loaded = load_config(config, [f"init.from_run={runs[0]}", "init.source_prefix=model.joint.",
                                  "init.target_prefix=model.joint.", also])
    assert init_from_run(loaded, method, log=lambda _: None) == 4
    assert torch.equal(method.model.joint.weight, sources[0]["method.model.joint.weight"])
    assert torch.equal(method.model.bone.weight, sources[1]["method.model.bone.weight"])
    assert not torch.equal(sources[0]["method.model.bone.weight"], sources[1]["method.model.bone.weight"])
    # the same target from both runs: one line, and the first run's copy is undone
    torch.manual_seed(8)
    method = SupervisedMethod(TwoStream(10, 3))
    before = method.model.joint.weight.detach().clone()
    twice = (f"init.also=[{{from_run: {runs[1]}, source_prefix: model.joint., target_prefix: model.joint.}}]")
    loaded = load_config(config, [f"init.from_run={runs[0]}", "init.source_prefix=model.joint.",
                                  "init.target_prefix=model.joint.", twice])
    with pytest.raises(ConfigError, match="already came from init"):
        init_from_run(loaded, method, log=lambda _: None)
    assert torch.equal(before, method.model.joint.weight)
    with pytest.raises(ConfigError, match="replaced whole"):
        load_config(config, [f"init.also.0.from_run={runs[1]}"])
