"""The training engine on real NW-UCLA data with tiny models: run directory, exact resume, NaN stop, overfitting,
two-process data parallel training, mixed precision, re-testing, and the one-line errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="the engine needs the train extra (lightning)")
import lightning as L  # noqa: E402

from skelact.data.dataset import (EpochSampler, SkeletonDataset, collate_skeletons, evenly_spaced,  # noqa: E402
                                  fit_persons)
from skelact.engine import MissingDependencyError, require_lightning  # noqa: E402
from skelact.commands.test import test_command as retest  # noqa: E402
from skelact.commands.train import train_command  # noqa: E402
from skelact.errors import RunError, TrainingDiverged  # noqa: E402
from skelact.engine.optim import LRSchedule, lr_scaling_message, scaled_lr  # noqa: E402
from skelact.engine.trainer import AtomicCheckpointIO  # noqa: E402
from skelact.errors import ConfigError, DataError, LayoutError  # noqa: E402

# Lightning's advice for large jobs, irrelevant to 8-step test runs
pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists")

REPO = Path(__file__).resolve().parents[1]
CTRGCN_JOINT = REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP barriers of competing processes
    make multi-threaded steps up to 50x slower; one thread keeps the file's run time predictable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def store_cache(shared_data: Path, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("store_cache")


@pytest.fixture(scope="session")
def ucla_store(shared_data: Path, store_cache: Path):
    """The real NW-UCLA store, prepared through the engine's cache (format + source, as a config names it)."""
    from skelact.data.cache import open_or_prepare

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_CACHE", str(store_cache))
        mp.setenv("SKELACT_DATA", str(shared_data))
        return open_or_prepare("nw-ucla", "nw_ucla", progress=False, log=lambda _: None)


T = 16
TRAIN_AUG = ("data.train_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, "
             "{type: RandomViewRotation, max_degrees: 60, scale_range: [0.5, 1.5]}, {type: MinMaxNormalize}, "
             f"{{type: UclaSample, window_size: {T}}}]")
TEST_PIPE = ("data.test_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
             f"{{type: UclaSample, window_size: {T}, test_mode: true}}]")


def tiny(store, *extra: str) -> list[str]:
    """A 2-block, 4-channel CTR-GCN on 64 train / 32 test real samples of T=16 frames, batch 8, on CPU."""
    return [f"data.store={store.path}", "model.base_channels=4", "model.num_blocks=2", "data.max_train_samples=64",
            "data.max_test_samples=32", "data.batch_size=8", "data.num_workers=0", TRAIN_AUG, TEST_PIPE,
            "trainer.accelerator=cpu", "trainer.progress_bar=false", *extra]


# ---------------------------------------------------------------------------------------------------------------
# learning-rate rules (pure functions)


def ctrgcn_lr(epoch: int, base=0.1, warm=5, steps=(50,), rate=0.1) -> float:
    """CTR-GCN main.py adjust_learning_rate, written out by hand."""
    if epoch < warm:
        return base * (epoch + 1) / warm
    return base * rate ** sum(epoch >= s for s in steps)


def test_step_schedule_is_ctrgcns():
    ours = LRSchedule(base_lr=0.1, epochs=65, warmup_epochs=5, milestones=(50,), gamma=0.1)
    assert [round(ours.lr_at(e), 12) for e in range(5)] == [0.02, 0.04, 0.06, 0.08, 0.1]
    assert ours.lr_at(49) == pytest.approx(0.1) and ours.lr_at(50) == pytest.approx(0.01)
    assert all(ours.lr_at(e) == pytest.approx(ctrgcn_lr(e)) for e in range(65))


def test_325_passes_reproduce_the_repeated_65_epochs():
    """Their epoch e is our passes 5e..5e+4: same rate after warm-up, and the same rate at the last pass of each of
    their warm-up epochs (ours ramps per pass, theirs per 5 passes)."""
    ours = LRSchedule(base_lr=0.1, epochs=325, warmup_epochs=25, milestones=(250,), gamma=0.1)
    for p in range(325):
        theirs = ctrgcn_lr(p // 5)
        if p >= 25 or p % 5 == 4:
            assert ours.lr_at(p) == pytest.approx(theirs), p
        else:
            assert ours.lr_at(p) < theirs


def test_per_step_warmup_and_cosine():
    s = LRSchedule(base_lr=0.1, epochs=10, warmup_epochs=2, type="cosine", min_lr=0.0)
    steps = 4
    assert s.lr_at(0, steps_per_epoch=steps) == pytest.approx(0.1 / 8)  # first of 2 x 4 warm-up steps
    assert s.lr_at(1 + 3 / 4, steps_per_epoch=steps) == pytest.approx(0.1)  # last warm-up step
    assert s.lr_at(2) == pytest.approx(0.1)
    assert s.lr_at(6) == pytest.approx(0.05)  # half way through the 8 cosine epochs
    assert s.lr_at(10) == pytest.approx(0.0)


def test_linear_scaling_and_its_log_line():
    assert scaled_lr(0.1, 16, 8) == pytest.approx(0.05)
    assert scaled_lr(0.1, 16, 64) == pytest.approx(0.4)
    assert scaled_lr(0.1, 16, 64, scale=False) == pytest.approx(0.1)
    assert lr_scaling_message(0.1, 16, 8, 0.05) == "lr 0.1 for batch 16 -> 0.05 for global batch 8"


# ---------------------------------------------------------------------------------------------------------------
# data plumbing


def test_epoch_sampler_splits_and_reseeds():
    ranks = [EpochSampler(10, seed=3, num_replicas=2, rank=r) for r in range(2)]
    orders = [[i for _, i in s] for s in ranks]
    assert len(orders[0]) == len(orders[1]) == 5
    assert sorted(orders[0] + orders[1]) == list(range(10))
    assert [i for _, i in EpochSampler(10, seed=3, num_replicas=2, rank=0)] == orders[0]
    ranks[0].set_epoch(1)
    assert [e for e, _ in ranks[0]] == [1] * 5
    assert [i for _, i in ranks[0]] != orders[0]
    odd = [EpochSampler(5, shuffle=False, num_replicas=2, rank=r) for r in range(2)]
    assert [[i for _, i in s] for s in odd] == [[0, 2, 4], [1, 3, 0]]  # padded with its own start


def test_dataset_augmentation_depends_only_on_seed_epoch_and_sample(ucla_store):
    from skelact.data.transforms import Compose

    pipe = Compose([{"type": "RandomViewRotation"}, {"type": "UclaSample", "window_size": 8}])
    ds = SkeletonDataset(ucla_store, ucla_store.split("cross_view", "train")[:4], pipe, num_persons=2, seed=5)
    forward = [ds[(1, i)]["x"] for i in range(4)]
    backward = [ds[(1, i)]["x"] for i in reversed(range(4))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward))
    assert not torch.equal(ds[(2, 0)]["x"], forward[0])  # another epoch, another draw
    assert forward[0].shape == (2, 8, 20, 3) and torch.all(forward[0][1] == 0)  # second person slot padded
    assert ds[0]["label"] == int(ucla_store.labels[ucla_store.split("cross_view", "train")[0]])


def test_persons_and_frames_are_padded():
    x = np.ones((3, 4, 2, 3), np.float32)
    assert fit_persons(x, 2).shape == (2, 4, 2, 3)
    padded = fit_persons(x[:1], 2)
    assert padded.shape == (2, 4, 2, 3) and padded[1].sum() == 0
    batch = [{"x": torch.ones(1, n, 2, 3), "label": k, "index": k} for k, n in enumerate((3, 5))]
    out = collate_skeletons(batch)
    assert out["x"].shape == (2, 1, 5, 2, 3) and out["x"][0, 0, 3:].sum() == 0
    assert out["label"].tolist() == [0, 1]
    assert collate_skeletons(batch, num_frames=6)["x"].shape[2] == 6
    with pytest.raises(DataError, match="num_frames"):
        collate_skeletons(batch, num_frames=4)
    assert evenly_spaced(np.arange(10), 3).tolist() == [0, 4, 9]


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"w": torch.arange(3)}, target)

    def crash(obj, handle, *a, **k):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        io.save_checkpoint({"w": torch.zeros(3)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


# ---------------------------------------------------------------------------------------------------------------
# training runs


class Crash(Exception):
    pass


class CrashAtEpoch(L.Callback):
    """Kills training at the start of ``epoch`` (0-based), after the previous epoch's checkpoints were written."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            raise Crash(f"simulated crash at epoch {self.epoch}")


def state_dict_of(run: Path, which: str = "last") -> dict:
    return torch.load(run / "checkpoints" / f"{which}.ckpt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def two_runs(ucla_store, tmp_path_factory):
    """The same 2-epoch experiment run straight, and crashed after epoch 1 then resumed."""
    root = tmp_path_factory.mktemp("runs")
    # warm-up over epoch 1 per step, decay at epoch 2, dropout: the resume must restore schedule and RNG
    overrides = tiny(ucla_store, "epochs=2", "schedule.warmup_epochs=1", "schedule.milestones=[1]",
                     "schedule.interval=step", "model.dropout=0.5", "evaluate.checkpoint=best")
    straight = train_command(CTRGCN_JOINT, overrides, run_dir=root / "straight")
    with pytest.raises(Crash):
        train_command(CTRGCN_JOINT, overrides, run_dir=root / "resumed", callbacks=[CrashAtEpoch(1)])
    assert state_dict_of(root / "resumed")["epoch"] == 0  # only epoch 1 was saved before the crash
    resumed = train_command(None, [], resume=root / "resumed")
    return straight, resumed


def test_run_directory_contents(two_runs, ucla_store):
    run, _ = two_runs
    for name in ("config.yaml", "train.log", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "csv/metrics.csv",
                 "metrics.json", "scores.npy", "labels.npy", "names.json", "per_class.csv"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_samples"] == 32 and metrics["checkpoint"] == "best"
    scores, labels = np.load(run / "scores.npy"), np.load(run / "labels.npy")
    names = json.loads((run / "names.json").read_text())
    test_idx = evenly_spaced(ucla_store.split("cross_view", "test"), 32)
    assert names == [ucla_store.name(int(i)) for i in test_idx]
    assert labels.tolist() == ucla_store.labels[test_idx].tolist()
    assert scores.shape == (32, 10)
    assert metrics["top1"] == pytest.approx(100.0 * np.mean(scores.argmax(1) == labels))
    # the learning-rate line: base 0.1 for batch 16, scaled to the global batch of 8
    assert "lr 0.1 for batch 16 -> 0.05 for global batch 8" in (run / "train.log").read_text()
    import csv

    rows = list(csv.DictReader((run / "csv" / "metrics.csv").open()))
    assert sorted({int(r["epoch"]) for r in rows}) == [0, 1]
    lrs = [float(r["lr"]) for r in rows if r["lr"]]
    assert lrs == pytest.approx([0.05 / 8, 0.005], rel=1e-6)  # first of 8 warm-up steps; after the decay


def test_resume_continues_bit_for_bit(two_runs):
    straight, resumed = two_runs
    a, b = state_dict_of(straight), state_dict_of(resumed)
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"] == 16
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    ma = json.loads((straight / "metrics.json").read_text())
    mb = json.loads((resumed / "metrics.json").read_text())
    for key in ("top1", "top5", "mean_class_acc", "epoch", "num_test_samples"):
        assert ma[key] == mb[key], key
    assert np.array_equal(np.load(straight / "scores.npy"), np.load(resumed / "scores.npy"))
    # the per-epoch log holds both epochs once, as the straight run's does
    assert (resumed / "csv" / "metrics.csv").read_text() == (straight / "csv" / "metrics.csv").read_text()


def test_test_command_reevaluates_best_and_last(two_runs):
    import csv

    run, _ = two_runs
    trained = np.load(run / "scores.npy")
    best = retest(run, "best")
    assert np.array_equal(np.load(run / "scores.npy"), trained)  # same checkpoint, same scores
    rows = [r for r in csv.DictReader((run / "csv" / "metrics.csv").open()) if r["val/top1"]]
    top1 = [float(r["val/top1"]) for r in rows]
    assert best["epoch"] == int(np.argmax(top1)) + 1  # first epoch with the highest test top-1
    assert best["top1"] == pytest.approx(max(top1))
    last = retest(run, "last")
    assert last["epoch"] == 2 and last["checkpoint"] == "last"
    assert last["top1"] == pytest.approx(top1[-1])
    assert json.loads((run / "metrics.json").read_text())["checkpoint"] == "last"


def test_best_checkpoint_without_any_test_in_the_schedule_is_refused_up_front(ucla_store, tmp_path):
    """Testing every 5 passes (the reference's NW-UCLA cadence), 'best' over 3 passes would have nothing to
    choose from, so the run stops before training with the key named, and writes nothing."""
    with pytest.raises(ConfigError) as info:
        train_command(CTRGCN_JOINT, tiny(ucla_store, "epochs=3", "evaluate.checkpoint=best",
                                         "trainer.check_val_every_n_epoch=5"),
                      run_dir=tmp_path / "no_best")
    assert info.value.field == "evaluate.checkpoint"
    assert "trainer.check_val_every_n_epoch is 5" in str(info.value)
    assert not (tmp_path / "no_best" / "checkpoints").exists()


def test_tiny_model_overfits_a_real_batch(ucla_store, tmp_path):
    """16 real training samples, no augmentation, evaluated on the same 16: 100 % accuracy through the engine."""
    same = TEST_PIPE.replace("data.test_pipeline", "data.train_pipeline")
    run = train_command(CTRGCN_JOINT, tiny(ucla_store, same, "model.base_channels=16", "data.max_train_samples=16",
                                           "data.max_test_samples=16", "data.test_subset=train",
                                           "data.batch_size=16", "optimizer.reference_batch_size=16",
                                           "optimizer.weight_decay=0", "schedule.warmup_epochs=0",
                                           "schedule.milestones=[]", "epochs=60",
                                           "trainer.check_val_every_n_epoch=0", "evaluate.checkpoint=last"),
                        run_dir=tmp_path / "overfit")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_test_samples"] == 16
    assert len(set(np.load(run / "labels.npy").tolist())) >= 8  # the 16 samples span the classes
    assert metrics["top1"] == 100.0


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(ucla_store, tmp_path):
    class PoisonWeights(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                with torch.no_grad():
                    next(pl_module.parameters()).fill_(float("nan"))

    run_dir = tmp_path / "nan"
    with pytest.raises(TrainingDiverged) as info:
        train_command(CTRGCN_JOINT, tiny(ucla_store, "epochs=3", "schedule.warmup_epochs=0"), run_dir=run_dir,
                      callbacks=[PoisonWeights()])
    message = str(info.value)
    assert "loss is NaN at epoch 2, step 1 of 8" in message and "\n" not in message
    assert str(run_dir / "checkpoints" / "last.ckpt") in message
    kept = state_dict_of(run_dir)
    assert kept["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point())
    assert not (run_dir / "metrics.json").exists()


def test_bf16_mixed_precision_runs_on_cpu(ucla_store, tmp_path):
    class OutputDtype(L.Callback):
        dtypes: list = []

        def on_fit_start(self, trainer, pl_module):
            pl_module.method.model.fc.register_forward_hook(lambda m, i, o: self.dtypes.append(o.dtype))

    probe = OutputDtype()
    run = train_command(CTRGCN_JOINT, tiny(ucla_store, "epochs=1", "trainer.precision=bf16-mixed",
                                           "evaluate.checkpoint=last"), run_dir=tmp_path / "bf16",
                        callbacks=[probe])
    assert torch.bfloat16 in probe.dtypes
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["top1"])


def _gloo_available() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


@pytest.mark.skipif(not _gloo_available(), reason="this platform's torch has no gloo (CPU) process groups")
def test_two_cpu_processes_train_one_epoch(ucla_store, store_cache, shared_data, tmp_path):
    """trainer.strategy=ddp with 2 CPU processes (gloo); the first process tests on the whole test subset."""
    overrides = [o for o in tiny(ucla_store, "epochs=1", "evaluate.checkpoint=last") if not o.startswith("data.store")]
    env = {**os.environ, "SKELACT_CACHE": str(store_cache), "SKELACT_DATA": str(shared_data)}
    env.pop("LOCAL_RANK", None)
    proc = subprocess.run([sys.executable, "-m", "skelact", "train", str(CTRGCN_JOINT), *overrides,
                           "trainer.devices=2", "trainer.strategy=ddp"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("nw_ucla_ctrgcn_joint-")  # both processes wrote one run
    log = (runs[0] / "train.log").read_text()
    assert "2 process(es)" in log
    assert "lr 0.1 for batch 16 -> 0.1 for global batch 16" in log
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    # 64 samples over 2 processes x 8 per batch: 4 steps, half of what one process takes
    assert metrics["global_step"] == 4
    assert metrics["num_test_samples"] == 32


@pytest.mark.parametrize("name", ["ctrgcn_joint", "ctrgcn_bone_motion", "stgcn_joint"])
def test_shipped_configs_build_their_models_from_the_store(ucla_store, name):
    """The published models at full width on the real NW-UCLA test pipeline (52 frames)."""
    from skelact.config import load_config
    from skelact.engine.build import build_dataset, build_model

    loaded = load_config(REPO / "configs" / "nw_ucla" / f"{name}.yaml", [f"data.store={ucla_store.path}"])
    model = build_model(loaded, ucla_store)
    if name.startswith("ctrgcn"):
        # the official CTR-GCN's count for NW-UCLA (20 joints, 1 person, 10 classes), from the issue
        assert sum(p.numel() for p in model.parameters()) == 1_426_892
    batch = collate_skeletons([build_dataset(loaded, ucla_store, "test")[i] for i in range(2)])
    assert batch["x"].shape == (2, 1, 52, 20, 3)
    with torch.no_grad():
        assert model.eval()(batch["x"]).shape == (2, 10)


# ---------------------------------------------------------------------------------------------------------------
# errors


def test_store_layout_must_match_the_models_graph(ucla_store, tmp_path):
    with pytest.raises(LayoutError) as info:
        train_command(CTRGCN_JOINT, tiny(ucla_store, "model.layout=ntu25"), run_dir=tmp_path / "r")
    err = info.value
    assert err.field == "model.layout" and err.path == "command line"
    assert "ntu25" in err.message and "25 joints" in err.message and "20 joints" in err.message


def test_run_directory_without_checkpoints(ucla_store, tmp_path):
    run = tmp_path / "empty_run"
    run.mkdir()
    with pytest.raises(RunError, match="not a skelact run directory"):
        retest(run)
    (run / "config.yaml").write_text(CTRGCN_JOINT.read_text().replace("../_base_", str(REPO / "configs/_base_")))
    with pytest.raises(RunError) as info:
        retest(run, "best")
    assert info.value.path == str(run.resolve() / "checkpoints" / "best.ckpt")
    assert "no checkpoints" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RunError):
        train_command(None, [], resume=run)
    with pytest.raises(RunError, match="run directory not found"):
        retest(tmp_path / "nowhere")


def test_a_run_directory_is_never_overwritten(two_runs, ucla_store):
    run, _ = two_runs
    before = state_dict_of(run)["global_step"]
    with pytest.raises(RunError, match="already holds a run"):
        train_command(CTRGCN_JOINT, tiny(ucla_store, "epochs=1"), run_dir=run)
    assert state_dict_of(run)["global_step"] == before


def test_missing_dataset_names_the_path_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("SKELACT_DATA", str(tmp_path))
    with pytest.raises(DataError) as info:
        train_command(CTRGCN_JOINT, ["data.source=no_such_dataset", "trainer.progress_bar=false"],
                      run_dir=tmp_path / "r")
    assert info.value.path == str(tmp_path / "no_such_dataset")
    assert "dataset not found" in info.value.message


def test_cached_store_is_reused(ucla_store, store_cache, monkeypatch):
    from skelact.data.cache import open_or_prepare

    monkeypatch.setenv("SKELACT_CACHE", str(store_cache))
    said = []
    again = open_or_prepare("nw-ucla", "nw_ucla", progress=False, log=said.append)
    # no second prepare; one line names the cached store and when it was made (issue 27, item 8)
    assert again.path == ucla_store.path
    assert said == [f"using the cached store {again.path} (made {again.manifest['created']} from nw-ucla "
                    f"{again.manifest['source']['path']}; a changed source file, layout or reader makes a new one)"]
    assert len(again) == 1484 and again.split("cross_view", "test").size == 464


def test_missing_lightning_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "lightning", None)
    with pytest.raises(MissingDependencyError, match=r"skelact\[train\]"):
        require_lightning()


def test_a_pipeline_that_keeps_x_and_y_builds_a_2d_model(ucla_store):
    """SelectCoords declares what it leaves, so STRL on NW-UCLA x, y (the SkeletonMAE transfer target) is built for
    2 coordinates, takes a 13-joint Penn Action encoder, and a pipeline pair that disagrees is one config error."""
    from skelact.config import load_config
    from skelact.engine.build import build_dataset, build_model
    from skelact.models.skeleton_gin import SkeletonGIN

    config = REPO / "configs" / "nw_ucla" / "strl_joint_xy.yaml"
    loaded = load_config(config, [f"data.store={ucla_store.path}", "model.hidden_channels=8"])
    model = build_model(loaded, ucla_store)
    assert model.in_channels == 2 and model.encoder.num_joints == 20
    penn = SkeletonGIN(num_classes=15, layout="penn13", in_channels=2, hidden_channels=8)
    model.encoder.load_state_dict(penn.encoder.state_dict())
    batch = collate_skeletons([build_dataset(loaded, ucla_store, "test")[i] for i in range(2)])
    assert batch["x"].shape == (2, 1, 64, 20, 2)
    with torch.no_grad():
        assert model.eval()(batch["x"]).shape == (2, 10)
    assert build_model(load_config(REPO / "configs" / "nw_ucla" / "strl_joint.yaml",
                                   [f"data.store={ucla_store.path}"]), ucla_store).in_channels == 3
    half = load_config(config, [f"data.store={ucla_store.path}", "data.test_pipeline=[{type: MinMaxNormalize}, "
                                "{type: UclaSample, window_size: 64, test_mode: true}]"])
    with pytest.raises(ConfigError, match="test pipeline 3") as error:
        build_model(half, ucla_store)
    assert error.value.field == "data.test_pipeline"
