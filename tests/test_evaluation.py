"""Evaluation layer: metrics, score fusion, reports, plots and run ensembles, against hand-computed values."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter

import numpy as np
import pytest

from skelact.data.class_names import NTU120_CLASS_NAMES, NW_UCLA_CLASS_NAMES
from skelact.errors import ConfigError, DataError, SkelactError, StoreError
from skelact.evaluation import (
    CTRGCN_FOUR_STREAM_WEIGHTS,
    classification_metrics,
    confusion_matrix,
    ensemble_runs,
    fuse_sci,
    fuse_scores,
    fuse_weighted,
    load_run_scores,
    mean_class_accuracy,
    most_confused_pairs,
    per_class_accuracy,
    save_run_scores,
    sparsity_concentration_index,
    topk_accuracy,
    write_report,
)
from skelact.evaluation.plots import embed_2d, save_feature_scatter

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def one_hot_scores(predicted, num_classes):
    scores = np.zeros((len(predicted), num_classes), dtype=np.float32)
    scores[np.arange(len(predicted)), predicted] = 1.0
    return scores


# ---------------------------------------------------------------- metrics


TIE_SCORES = np.array(
    [
        [0.1, 0.5, 0.4],  # label 2: class 1 is ahead -> rank 1
        [0.3, 0.3, 0.1],  # label 1: ties with class 0, which has the lower index -> rank 1
        [0.3, 0.3, 0.1],  # label 0: wins the tie -> rank 0
        [0.2, 0.2, 0.2],  # label 2: ties with 0 and 1, both lower -> rank 2
    ]
)
TIE_LABELS = np.array([2, 1, 0, 2])


def test_topk_accuracy_with_ties_by_hand():
    assert topk_accuracy(TIE_SCORES, TIE_LABELS, k=1) == pytest.approx(25.0)
    assert topk_accuracy(TIE_SCORES, TIE_LABELS, k=2) == pytest.approx(75.0)
    assert topk_accuracy(TIE_SCORES, TIE_LABELS, k=3) == pytest.approx(100.0)
    # k beyond the number of classes counts everything (top-5 of a 3-class problem)
    assert topk_accuracy(TIE_SCORES, TIE_LABELS, k=5) == pytest.approx(100.0)
    # the tie rule makes top-1 exactly np.argmax's prediction
    assert topk_accuracy(TIE_SCORES, TIE_LABELS, k=1) == pytest.approx(
        100.0 * np.mean(np.argmax(TIE_SCORES, axis=1) == TIE_LABELS)
    )


# 4 classes, class 3 has no samples; predictions give per-class 1/2, 2/3, 1/1
CLASS_LABELS = np.array([0, 0, 1, 1, 1, 2])
CLASS_PREDICTED = np.array([0, 1, 1, 1, 0, 2])


def test_confusion_matrix_against_hand_count():
    expected = np.array([[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix(CLASS_LABELS, CLASS_PREDICTED, 4), expected)


def test_per_class_and_mean_class_accuracy_skip_a_class_without_samples():
    confusion = confusion_matrix(CLASS_LABELS, CLASS_PREDICTED, 4)
    per_class = per_class_accuracy(confusion)
    np.testing.assert_allclose(per_class[:3], [50.0, 200.0 / 3.0, 100.0])
    assert math.isnan(per_class[3])
    scores = one_hot_scores(CLASS_PREDICTED, 4)
    expected_mean = (50.0 + 200.0 / 3.0 + 100.0) / 3.0
    assert mean_class_accuracy(scores, CLASS_LABELS) == pytest.approx(expected_mean)
    metrics = classification_metrics(scores, CLASS_LABELS)
    assert metrics["top1"] == pytest.approx(400.0 / 6.0)
    assert metrics["mean_class_acc"] == pytest.approx(expected_mean)
    assert metrics["num_test_samples"] == 6 and metrics["num_classes"] == 4


def test_most_confused_pairs_order():
    confusion = np.array(
        [
            [5, 3, 0, 0],  # 0 -> 1: 3 of 8 (37.5 %)
            [3, 1, 0, 0],  # 1 -> 0: 3 of 4 (75 %): same count, higher rate, so first
            [1, 0, 9, 0],  # 2 -> 0: 1 of 10
            [1, 0, 0, 9],  # 3 -> 0: 1 of 10, ties with 2 -> 0 and comes after it
        ]
    )
    names = ["a", "b", "c", "d"]
    pairs = most_confused_pairs(confusion, top=None, class_names=names)
    assert [(p["true"], p["predicted"]) for p in pairs] == [(1, 0), (0, 1), (2, 0), (3, 0)]
    assert [p["count"] for p in pairs] == [3, 3, 1, 1]
    assert pairs[0]["rate"] == pytest.approx(75.0) and pairs[1]["rate"] == pytest.approx(37.5)
    assert (pairs[0]["true_name"], pairs[0]["predicted_name"]) == ("b", "a")
    assert len(most_confused_pairs(confusion, top=2)) == 2


@pytest.mark.parametrize(
    "scores, labels, field",
    [
        (np.array([[0.1, np.nan]]), np.array([0]), "scores"),
        (np.zeros((2, 3)), np.array([0, 3]), "labels"),
        (np.zeros((2, 3)), np.array([0, -1]), "labels"),
        (np.zeros((2, 3)), np.array([0]), "labels"),
        (np.zeros(3), np.array([0]), "scores"),
    ],
)
def test_bad_metric_inputs_are_one_clear_error(scores, labels, field):
    with pytest.raises(DataError) as info:
        topk_accuracy(scores, labels)
    assert info.value.field == field


# ---------------------------------------------------------------- fusion


def test_weighted_fusion_sums_raw_scores_and_weights_change_the_winner():
    stream_a = np.array([[3.0, 1.0, 0.0]])
    stream_b = np.array([[0.0, 2.5, 0.0]])
    equal = fuse_weighted([stream_a, stream_b])
    np.testing.assert_allclose(equal, [[3.0, 3.5, 0.0]])
    assert int(np.argmax(equal)) == 1
    weighted = fuse_weighted([stream_a, stream_b], weights=[1.0, 0.5])
    np.testing.assert_allclose(weighted, [[3.0, 2.25, 0.0]])
    assert int(np.argmax(weighted)) == 0


def test_ctrgcn_four_stream_weights():
    assert CTRGCN_FOUR_STREAM_WEIGHTS == (0.6, 0.6, 0.4, 0.4)
    streams = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[2.0, 0.0]]), np.array([[0.0, 3.0]])]
    fused = fuse_weighted(streams, CTRGCN_FOUR_STREAM_WEIGHTS)
    np.testing.assert_allclose(fused, [[0.6 + 0.8, 0.6 + 1.2]])


def test_softmax_normalisation_changes_the_winner_where_one_stream_has_large_logits():
    streams = [np.array([[6.0, 0.0]]), np.array([[0.0, 1.5]]), np.array([[0.0, 1.5]])]
    raw = fuse_weighted(streams)
    assert int(np.argmax(raw)) == 0  # 6 vs 3
    sigmoid = lambda x: 1.0 / (1.0 + math.exp(-x))  # noqa: E731  two-class softmax
    class0 = sigmoid(6.0) + 2 * sigmoid(-1.5)
    probabilities = fuse_weighted(streams, normalize="softmax")
    np.testing.assert_allclose(probabilities, [[class0, 3.0 - class0]])
    assert int(np.argmax(probabilities)) == 1


def test_sci_by_hand():
    sci = sparsity_concentration_index(
        np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    )
    np.testing.assert_allclose(sci, [0.0, 1.0, 0.0])
    # (K * max / sum - 1) / (K - 1) = (3 * 0.5 - 1) / 2, and the same for the unnormalised vector
    halves = np.array([[0.5, 0.25, 0.25], [2.0, 1.0, 1.0]])
    np.testing.assert_allclose(sparsity_concentration_index(halves), [0.25, 0.25])
    with pytest.raises(DataError):
        sparsity_concentration_index(np.array([[0.5, -0.1]]))


def test_sci_fusion_prefers_the_confident_stream():
    confident = np.array([0.05, 0.9, 0.05])  # SCI (3 * 0.9 - 1) / 2 = 0.85
    diffuse = np.array([0.5, 0.05, 0.45])  # SCI (3 * 0.5 - 1) / 2 = 0.25
    # a plain average picks class 0 (1.05 vs 1.00) ...
    assert int(np.argmax(confident + 2 * diffuse)) == 0
    expected = 0.85 * confident + 2 * 0.25 * diffuse  # [0.2925, 0.79, 0.2675]
    # ... the SCI weighting picks class 1; logits = log p + any constant softmax back to p
    logits = [np.log(p)[None, :] + shift for p, shift in ((confident, 3.0), (diffuse, -1.0), (diffuse, 0.0))]
    fused = fuse_sci(logits)
    np.testing.assert_allclose(fused, expected[None, :], rtol=1e-12)
    assert int(np.argmax(fused)) == 1
    np.testing.assert_allclose(fuse_scores(logits, method="sci"), fused)
    from_probabilities = fuse_sci([confident[None], diffuse[None]], from_logits=False)
    np.testing.assert_allclose(from_probabilities, (0.85 * confident + 0.25 * diffuse)[None])


def test_fusion_rejects_bad_weights_and_shapes():
    streams = [np.zeros((2, 3)), np.zeros((2, 3))]
    with pytest.raises(ConfigError) as info:
        fuse_weighted(streams, weights=[1.0])
    assert info.value.field == "weights"
    with pytest.raises(ConfigError):
        fuse_weighted(streams, weights=[1.0, -1.0])
    with pytest.raises(DataError):
        fuse_weighted([np.zeros((2, 3)), np.zeros((3, 3))])
    with pytest.raises(ConfigError) as info:
        fuse_scores(streams, method="vote")
    assert info.value.field == "method"


# ---------------------------------------------------------------- report and plots


def test_write_report_files_reread(tmp_path):
    names = ["alpha", "beta", "gamma", "delta"]
    scores = one_hot_scores(CLASS_PREDICTED, 4) + 0.01 * np.arange(4)  # second choice: the highest index
    sample_names = [f"s{i}" for i in range(6)]
    metrics = write_report(tmp_path, scores, CLASS_LABELS, names, names=sample_names, extra={"epoch": np.int64(7)})

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == metrics
    assert on_disk["top1"] == pytest.approx(400.0 / 6.0)
    assert on_disk["mean_class_acc"] == pytest.approx((50.0 + 200.0 / 3.0 + 100.0) / 3.0)
    assert on_disk["epoch"] == 7 and on_disk["num_test_samples"] == 6
    assert on_disk["top5"] == pytest.approx(100.0)  # 4 classes: top-5 covers them all

    rows = list(csv.DictReader((tmp_path / "per_class.csv").open()))
    assert [r["class_name"] for r in rows] == names
    assert [r["num_samples"] for r in rows] == ["2", "3", "1", "0"]
    assert float(rows[0]["accuracy"]) == pytest.approx(50.0) and rows[3]["accuracy"] == ""
    assert rows[0]["most_confused_with"] == "beta" and rows[1]["most_confused_with"] == "alpha"
    per_class = json.loads((tmp_path / "per_class.json").read_text())
    assert per_class[3]["accuracy"] is None and per_class[1]["num_correct"] == 2

    pairs = json.loads((tmp_path / "confused_pairs.json").read_text())
    assert [(p["true_name"], p["predicted_name"], p["count"]) for p in pairs] == [
        ("alpha", "beta", 1),  # 1 of 2 = 50 %
        ("beta", "alpha", 1),  # 1 of 3
    ]
    confusion_rows = list(csv.reader((tmp_path / "confusion.csv").open()))
    assert confusion_rows[0][1:] == names and confusion_rows[2] == ["beta", "1", "2", "0", "0"]
    predictions = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert [p["name"] for p in predictions] == sample_names
    assert [int(p["correct"]) for p in predictions] == [1, 0, 1, 1, 0, 1]

    import matplotlib.image

    png = tmp_path / "confusion.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE and png.stat().st_size > 5000
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300


def test_report_rejects_wrong_class_names_and_colliding_extra(tmp_path):
    scores = one_hot_scores(CLASS_PREDICTED, 4)
    with pytest.raises(DataError) as info:
        write_report(tmp_path, scores, CLASS_LABELS, ["a", "b"])
    assert info.value.field == "class_names"
    with pytest.raises(ValueError):
        write_report(tmp_path, scores, CLASS_LABELS, None, extra={"top1": 1.0})


def test_confusion_png_for_120_classes_is_larger(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(120), 2)
    scores = rng.normal(size=(240, 120))
    write_report(tmp_path, scores, labels, NTU120_CLASS_NAMES)
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "confusion.png")
    # 120 rows of tick labels need far more pixels than the 10-class figure
    assert image.shape[0] > 2000 and image.shape[1] > 2000


def test_report_without_matplotlib_writes_the_rest(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.warns(UserWarning, match="matplotlib"):
        write_report(tmp_path, one_hot_scores(CLASS_PREDICTED, 4), CLASS_LABELS, None)
    assert (tmp_path / "metrics.json").is_file() and not (tmp_path / "confusion.png").exists()


def test_real_nw_ucla_test_split_report(shared_data, tmp_path):
    """A perfect classifier on the real cross-view test view: per-class counts must match the file names."""
    split = json.loads((shared_data / "nw_ucla" / "split_cross_view.json").read_text())
    test = split["val"] if "val" in split else split["test"]
    action_ids = ["a01", "a02", "a03", "a04", "a05", "a06", "a08", "a09", "a11", "a12"]
    labels = np.array([action_ids.index(entry["file_name"][:3]) for entry in test])
    names = [entry["file_name"] for entry in test]
    metrics = write_report(tmp_path, one_hot_scores(labels, 10), labels, NW_UCLA_CLASS_NAMES, names=names)
    assert metrics["num_test_samples"] == 464  # the README's view-3 test count
    assert metrics["top1"] == 100.0 and metrics["mean_class_acc"] == 100.0
    by_file_name = Counter(name[:3] for name in names if name.endswith("_v03"))
    rows = json.loads((tmp_path / "per_class.json").read_text())
    assert [r["num_samples"] for r in rows] == [by_file_name[a] for a in action_ids]
    assert json.loads((tmp_path / "confused_pairs.json").read_text()) == []


def test_pca_embedding_preserves_distances_of_planar_data(tmp_path):
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    coords = rng.normal(size=(40, 2)) * [3.0, 1.0]
    features = coords @ basis.T + 5.0
    points = embed_2d(features, method="pca")
    original = np.linalg.norm(features[:, None] - features[None], axis=-1)
    embedded = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.testing.assert_allclose(embedded, original, atol=1e-9)
    assert points[:, 0].var() > points[:, 1].var()
    labels = np.arange(40) % 3
    path = save_feature_scatter(features, labels, tmp_path / "features.png", class_names=["x", "y", "z"])
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_tsne_without_scikit_learn_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)
    with pytest.raises(SkelactError, match="scikit-learn"):
        embed_2d(np.random.default_rng(0).normal(size=(10, 4)), method="tsne")


# ---------------------------------------------------------------- ensembles of run directories


def write_fake_run(run_dir, scores, labels, names):
    """The agreed per-run files, written with plain numpy/json (not through skelact) to pin the format."""
    run_dir.mkdir(parents=True)
    np.save(run_dir / "scores.npy", np.asarray(scores, dtype=np.float32))
    np.save(run_dir / "labels.npy", np.asarray(labels, dtype=np.int64))
    (run_dir / "names.json").write_text(json.dumps(list(names)))
    (run_dir / "config.yaml").write_text("model: fake\n")
    return run_dir


# three samples, three classes; joint is right on s0 and s1, bone on s1 and s2
JOINT = np.array([[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [2.0, 0.0, 1.5]])
BONE = np.array([[0.0, 2.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
LABELS = np.array([0, 1, 2])
NAMES = ["s0", "s1", "s2"]


def test_ensemble_of_two_runs_aligns_by_name_and_weights(tmp_path):
    joint = write_fake_run(tmp_path / "joint", JOINT, LABELS, NAMES)
    order = [2, 0, 1]  # the bone run was evaluated in another order
    bone = write_fake_run(tmp_path / "bone", BONE[order], LABELS[order], [NAMES[i] for i in order])

    # equal weights: s0 [3, 3.5, 0] -> 1 wrong, s1 [0, 3, 1] -> 1 right, s2 [2, 0, 2.5] -> 2 right
    equal = ensemble_runs([joint, bone])
    assert equal["top1"] == pytest.approx(200.0 / 3.0)
    assert [r["top1"] for r in equal["runs"]] == pytest.approx([200.0 / 3.0, 200.0 / 3.0])
    # joint weighted 1, bone 0.5: s0 [3, 2.25, 0] -> 0, s1 [0, 2.5, 1] -> 1, s2 [2, 0, 2] -> 0 (tie, lower index)
    weighted = ensemble_runs([joint, bone], weights=[1.0, 0.5], out_dir=tmp_path / "fused")
    assert weighted["top1"] == pytest.approx(200.0 / 3.0)
    assert weighted["weights"] == [1.0, 0.5] and weighted["method"] == "weighted"
    fused_dir = tmp_path / "fused"
    np.testing.assert_allclose(
        np.load(fused_dir / "scores.npy"), [[3.0, 2.25, 0.0], [0.0, 2.5, 1.0], [2.0, 0.0, 2.0]]
    )
    assert json.loads((fused_dir / "names.json").read_text()) == NAMES
    assert json.loads((fused_dir / "metrics.json").read_text())["top1"] == pytest.approx(200.0 / 3.0)
    assert (fused_dir / "confusion.png").is_file() and (fused_dir / "per_class.csv").is_file()
    correct = [row.split(",")[3] for row in (fused_dir / "predictions.csv").read_text().splitlines()[1:]]
    assert correct == ["1", "1", "0"]
    # bone weighted 0.7: s0 [3, 2.75, 0] -> 0, s1 [0, 2.7, 1] -> 1, s2 [2, 0, 2.2] -> 2, all right
    assert ensemble_runs([joint, bone], weights=[1.0, 0.7])["top1"] == pytest.approx(100.0)
    # the fused directory is itself a run that can be re-read
    assert load_run_scores(fused_dir).names == NAMES


def test_sci_ensemble_runs(tmp_path):
    joint = write_fake_run(tmp_path / "joint", JOINT, LABELS, NAMES)
    bone = write_fake_run(tmp_path / "bone", BONE, LABELS, NAMES)
    result = ensemble_runs([joint, bone], method="sci")
    expected = fuse_sci([JOINT, BONE])
    assert result["top1"] == pytest.approx(100.0 * np.mean(np.argmax(expected, axis=1) == LABELS))
    assert result["method"] == "sci" and result["normalize"] == "softmax"


def test_ensemble_errors_name_the_run_and_the_file(tmp_path):
    joint = write_fake_run(tmp_path / "joint", JOINT, LABELS, NAMES)
    no_scores = write_fake_run(tmp_path / "no_scores", BONE, LABELS, NAMES)
    (no_scores / "scores.npy").unlink()
    with pytest.raises(StoreError) as info:
        ensemble_runs([joint, no_scores])
    assert str(no_scores) in str(info.value) and "scores.npy" in str(info.value)
    assert "\n" not in str(info.value)

    other_samples = write_fake_run(tmp_path / "other", BONE, LABELS, ["s0", "s1", "s9"])
    with pytest.raises(StoreError, match="s9") as info:
        ensemble_runs([joint, other_samples])
    assert info.value.path == str(other_samples) and info.value.field == "names.json"

    other_labels = write_fake_run(tmp_path / "relabelled", BONE, [0, 2, 2], NAMES)
    with pytest.raises(StoreError) as info:
        ensemble_runs([joint, other_labels])
    assert info.value.field == "labels.npy" and "'s1'" in str(info.value)

    truncated = write_fake_run(tmp_path / "truncated", BONE, LABELS, NAMES)
    data = (truncated / "scores.npy").read_bytes()
    (truncated / "scores.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError) as info:
        load_run_scores(truncated)
    assert info.value.path == str(truncated / "scores.npy")

    with pytest.raises(ConfigError):
        ensemble_runs([joint, joint], weights=[1.0, 1.0, 1.0])
    with pytest.raises(StoreError, match="not found"):
        ensemble_runs([tmp_path / "nowhere"])


def test_save_run_scores_round_trip(tmp_path):
    save_run_scores(tmp_path / "run", JOINT, LABELS, NAMES)
    run = load_run_scores(tmp_path / "run")
    assert run.scores.dtype == np.float32 and run.labels.dtype == np.int64
    np.testing.assert_array_equal(run.scores, JOINT.astype(np.float32))
    np.testing.assert_array_equal(run.labels, LABELS)
    assert run.names == NAMES
