"""``skelact train / test / ensemble`` end to end on real NW-UCLA data with a tiny CTR-GCN, Ctrl-C during training,
the one-line errors of bad input, and the CPU thread setting."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning", reason="training needs the train extra (lightning)")

from skelact.cli import main  # noqa: E402
from skelact.engine.threads import OMP_ENV, available_cpus, resolve_num_threads  # noqa: E402
from skelact.evaluation.run_scores import save_run_scores  # noqa: E402
from cli_run import one_line_error, real_data_env, run_cli  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:Checkpoint directory .* exists",
                                        "ignore:.*does not have many workers")

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml"
TEST_SAMPLES = 16
#: NW-UCLA action ids of the file names (aXX) -> 0-based labels (shared/data/nw_ucla/README.txt)
ACTION_TO_LABEL = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 6: 5, 8: 6, 9: 7, 11: 8, 12: 9}
TINY = ["model.base_channels=8", "model.num_blocks=2", "data.max_train_samples=32",
        f"data.max_test_samples={TEST_SAMPLES}", "data.batch_size=8", "data.num_workers=0",
        "trainer.accelerator=cpu", "trainer.progress_bar=false", "trainer.threads=1",
        "data.train_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
        "{type: UclaSample, window_size: 16}]",
        "data.test_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
        "{type: UclaSample, window_size: 16, test_mode: true}]"]


@pytest.fixture(scope="module", autouse=True)
def data_env(shared_data: Path, tmp_path_factory):
    """Configs name NW-UCLA by format + source: point the data root at the real data and the store cache at a
    session folder (test_export.py shares it, so the store is prepared once per session)."""
    with real_data_env(tmp_path_factory, shared_data):
        yield


def printed_path(out: str, label: str) -> Path:
    line = next(line for line in out.splitlines() if line.startswith(label + " "))
    return Path(line[len(label):].strip())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two one-epoch runs of the tiny model (different seeds): the first in the default place, runs/ under the
    current directory; the second with --run-dir. Returns their directories and the first one's stdout."""
    work = tmp_path_factory.mktemp("work")
    before = os.getcwd()
    threads = torch.get_num_threads()
    os.chdir(work)
    try:
        code = main(["train", str(CONFIG), "epochs=1", *TINY])
    finally:
        os.chdir(before)
    assert code == 0
    second = work / "second"
    assert main(["train", str(CONFIG), "epochs=1", "seed=7", *TINY, "--run-dir", str(second)]) == 0
    assert torch.get_num_threads() == threads  # trainer.threads applies to the command only
    first = next((work / "runs").iterdir())
    return first, second


def test_train_writes_the_run_directory(runs):
    run, _ = runs
    assert run.parent.name == "runs" and run.name.startswith("nw_ucla_ctrgcn_joint-")  # the default location
    for name in ("config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "metrics.json", "scores.npy",
                 "labels.npy", "names.json", "per_class.csv", "confusion.csv", "csv/metrics.csv", "train.log"):
        assert (run / name).is_file(), name
    assert (run / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and metrics["num_test_samples"] == TEST_SAMPLES
    # the saved config is the resolved one, overrides included
    saved = (run / "config.yaml").read_text()
    assert "base_channels: 8" in saved and "epochs: 1" in saved and "threads: 1" in saved
    # the test subset is the cross-view test view, labelled as the file names say
    names = json.loads((run / "names.json").read_text())
    labels = np.load(run / "labels.npy")
    assert all(n.endswith("_v03") for n in names)
    assert labels.tolist() == [ACTION_TO_LABEL[int(n[1:3])] for n in names]
    # the accuracies are the scores' own, recomputed by hand
    scores = np.load(run / "scores.npy")
    assert metrics["top1"] == pytest.approx(100.0 * np.mean(scores.argmax(1) == labels))
    top5 = np.argsort(-scores, axis=1)[:, :5]
    assert metrics["top5"] == pytest.approx(100.0 * np.mean([y in row for y, row in zip(labels, top5)]))
    per_class = [np.mean(scores[labels == k].argmax(1) == k) for k in np.unique(labels)]
    assert metrics["mean_class_acc"] == pytest.approx(100.0 * np.mean(per_class))
    assert "threads: 1 per process (trainer.threads)" in (run / "train.log").read_text()


def test_train_prints_metrics_and_the_confusion_matrix(capsys, tmp_path):
    code, out, err = run_cli(capsys, "train", CONFIG, "epochs=1", *TINY, "--run-dir", tmp_path / "r")
    assert code == 0, err
    run = printed_path(out, "run")
    assert run == (tmp_path / "r").resolve()
    metrics = json.loads((run / "metrics.json").read_text())
    test_line = next(line for line in out.splitlines() if line.startswith("accuracy "))
    assert f"top1 {metrics['top1']:.2f} %" in test_line and f"top5 {metrics['top5']:.2f} %" in test_line
    assert f"mean class acc {metrics['mean_class_acc']:.2f} %" in test_line
    assert printed_path(out, "confusion matrix") == run / "confusion.png"


def test_test_reproduces_the_training_metrics(runs, capsys):
    run, _ = runs
    trained = json.loads((run / "metrics.json").read_text())
    trained_scores = np.load(run / "scores.npy")
    code, out, err = run_cli(capsys, "test", run, "--checkpoint", "best")
    assert code == 0, err
    again = json.loads((run / "metrics.json").read_text())
    for key in ("top1", "top5", "mean_class_acc", "epoch", "num_test_samples"):
        assert again[key] == trained[key], key
    np.testing.assert_array_equal(np.load(run / "scores.npy"), trained_scores)
    assert f"top1 {trained['top1']:.2f} %" in out and printed_path(out, "metrics") == run / "metrics.json"
    # a figure of the best checkpoint says it was chosen on the test set, in the output and in metrics.json
    assert "(best checkpoint" in out and "selected on the test set" in out and again["selected_on_test_set"]


def test_test_defaults_to_the_last_checkpoint(runs, capsys):
    run, _ = runs
    code, out, err = run_cli(capsys, "test", run)
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["checkpoint"] == "last" and metrics["selected_on_test_set"] is False
    assert "(last checkpoint" in out and "selected on the test set" not in out


def test_ensemble_of_two_runs(runs, capsys, tmp_path):
    a, b = runs
    out_dir = tmp_path / "fused"
    code, out, err = run_cli(capsys, "ensemble", a, b, "--weights", "0.6", "0.4", "--out", out_dir)
    assert code == 0, err
    labels = np.load(a / "labels.npy")
    fused = 0.6 * np.load(a / "scores.npy") + 0.4 * np.load(b / "scores.npy")  # CTR-GCN ensemble.py's rule
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert metrics["top1"] == pytest.approx(100.0 * np.mean(fused.argmax(1) == labels))
    assert metrics["num_test_samples"] == TEST_SAMPLES
    assert [r["weight"] for r in metrics["runs"]] == [0.6, 0.4]
    for run, row in zip((a, b), metrics["runs"]):
        own = json.loads((run / "metrics.json").read_text())
        assert row["top1"] == pytest.approx(own["top1"])
        assert f"{own['top1']:6.2f}" in next(line for line in out.splitlines() if line.startswith(str(run)))
    assert f"top1 {metrics['top1']:.2f} %" in out and (out_dir / "confusion.png").is_file()
    # class names come from the first run's store
    first_row = (out_dir / "per_class.csv").read_text().splitlines()[1]
    assert first_row.startswith("0,pick up with one hand,")


def test_ensemble_default_output_directory(runs, capsys, tmp_path, monkeypatch):
    a, b = runs
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "ensemble", a, b)
    assert code == 0, err
    (made,) = (tmp_path / "runs").iterdir()
    assert made.name.startswith("ensemble-") and (made / "metrics.json").is_file()


# ------------------------------------------------------------------------------------------------------ Ctrl-C


def interrupt_at_epoch(monkeypatch, epoch: int) -> None:
    """Make the run's Trainer raise KeyboardInterrupt (what Ctrl-C raises) when ``epoch`` (0-based) starts."""
    import lightning as L

    import skelact.engine.trainer as trainer_module

    class CtrlC(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == epoch:
                raise KeyboardInterrupt

    real = trainer_module.build_trainer
    monkeypatch.setattr(trainer_module, "build_trainer",
                        lambda cfg, run_dir, *, callbacks=(), **kw: real(cfg, run_dir, callbacks=[*callbacks, CtrlC()],
                                                                         **kw))


def test_ctrl_c_during_training_names_the_resume_command(capsys, tmp_path, monkeypatch):
    run = (tmp_path / "r").resolve()
    handler = signal.getsignal(signal.SIGINT)
    with monkeypatch.context() as mp:
        interrupt_at_epoch(mp, 1)
        code, out, err = run_cli(capsys, "train", CONFIG, "epochs=2", "evaluate.checkpoint=last", *TINY,
                                 "--run-dir", run)
    assert code == 130
    assert f"skelact: interrupted; the run can be resumed with: skelact train --resume {run}" in err
    assert "nothing was written" not in err
    assert signal.getsignal(signal.SIGINT) == handler  # Lightning's SIG_IGN does not outlive the command
    # the printed command continues it
    code, out, err = run_cli(capsys, "train", "--resume", run)
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["epoch"] == 2
    # resuming for fewer epochs than the run has done is a config error, not Lightning's traceback
    line = one_line_error(capsys, "train", "--resume", run, "epochs=1")
    assert "epochs: is 1 but the run's last checkpoint has already completed 2 epochs" in line


def test_ctrl_c_before_the_first_checkpoint(capsys, tmp_path, monkeypatch):
    interrupt_at_epoch(monkeypatch, 0)
    code, out, err = run_cli(capsys, "train", CONFIG, "epochs=2", *TINY, "--run-dir", tmp_path / "r")
    assert code == 130
    assert "before the first checkpoint" in err and "--resume" not in err


def test_ctrl_c_during_prepare_says_nothing_was_written(capsys, tmp_path, monkeypatch, shared_data):
    import skelact.data.prepare as prepare_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "prepare", interrupted)
    code, out, err = run_cli(capsys, "prepare", "nw-ucla", shared_data / "nw_ucla", tmp_path / "store")
    assert code == 130 and err.strip() == "skelact: interrupted; nothing was written"


# ------------------------------------------------------------------------------------------------- bad input


def test_unknown_config_key(capsys):
    line = one_line_error(capsys, "train", CONFIG, "epoch=1", *TINY)
    assert "epoch: unknown key" in line and "epochs" in line


def test_wrong_config_type(capsys):
    line = one_line_error(capsys, "train", CONFIG, "epochs=abc", *TINY)
    assert "epochs" in line and "wrong type" in line


def test_negative_thread_count(capsys):
    assert "trainer.threads" in one_line_error(capsys, "train", CONFIG, *TINY, "trainer.threads=-1")


def test_store_layout_other_than_the_models_graph(capsys, tmp_path):
    line = one_line_error(capsys, "train", CONFIG, *TINY, "model.layout=ntu25", "--run-dir", tmp_path / "r")
    assert "model.layout" in line and "'ntu25' (25 joints)" in line and "'nw_ucla20' (20 joints)" in line
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.fixture
def run_without_checkpoints(runs, tmp_path) -> Path:
    run = tmp_path / "no_ckpt"
    run.mkdir()
    shutil.copy(runs[0] / "config.yaml", run / "config.yaml")
    return run


#: commands that take a run directory; RUN stands for it
RUN_COMMANDS = [["test", "RUN"], ["export", "RUN", "--onnx", "model.onnx"], ["train", "--resume", "RUN"]]


def with_run(command: list[str], run: Path) -> list:
    return [run if a == "RUN" else a for a in command]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: c[0])
def test_run_without_checkpoints(command, run_without_checkpoints, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = one_line_error(capsys, *with_run(command, run_without_checkpoints))
    assert "no checkpoints" in line and str(run_without_checkpoints) in line
    assert not (tmp_path / "model.onnx").exists()


@pytest.mark.parametrize("command", [*RUN_COMMANDS, ["ensemble", "RUN"]], ids=lambda c: c[0])
def test_run_directory_that_does_not_exist(command, capsys, tmp_path):
    missing = tmp_path / "no_such_run"
    line = one_line_error(capsys, *with_run(command, missing))
    assert str(missing) in line and "not found" in line


def test_ensemble_of_runs_over_other_samples(runs, capsys, tmp_path):
    a, b = runs
    other = tmp_path / "other"
    shutil.copytree(b, other)
    names = json.loads((b / "names.json").read_text())
    save_run_scores(other, np.load(b / "scores.npy")[:-1], np.load(b / "labels.npy")[:-1], names[:-1])
    line = one_line_error(capsys, "ensemble", a, other, "--out", tmp_path / "fused")
    assert str(other) in line and "other samples" in line and names[-1] in line
    assert not (tmp_path / "fused").exists()


def test_ensemble_wrong_number_of_weights(runs, capsys, tmp_path):
    assert "1 weights for 2 streams" in one_line_error(capsys, "ensemble", *runs, "--weights", "1",
                                                       "--out", tmp_path / "f")


def test_ensemble_never_overwrites_a_run(runs, capsys):
    a, b = runs
    before = np.load(a / "scores.npy")
    assert "already holds results" in one_line_error(capsys, "ensemble", a, b, "--out", a)
    np.testing.assert_array_equal(np.load(a / "scores.npy"), before)


# ----------------------------------------------------------------------------------------------------- threads


def test_thread_count_resolution():
    assert resolve_num_threads(3, 2, environ={OMP_ENV: "1"})[0] == 3  # the config wins
    assert resolve_num_threads(0, 1, environ={OMP_ENV: "5"}) == (5, f"{OMP_ENV}=5")  # then the environment
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cpus() == cpus
    assert resolve_num_threads(0, 1, environ={})[0] == cpus
    assert resolve_num_threads(0, 2, environ={})[0] == max(1, cpus // 2)
    assert resolve_num_threads(0, 4 * cpus, environ={})[0] == 1  # never 0
    assert resolve_num_threads(0, 1, environ={OMP_ENV: "lots"})[0] == cpus  # unusable value: ignored
