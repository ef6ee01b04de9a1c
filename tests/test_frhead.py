"""FR-Head: the refinement loss against hand-computed values, the heads' shapes against the reference's, the
training-only contract (inference = the bare backbone), multi-process prototypes, and a real NW-UCLA run."""

from __future__ import annotations

import copy
import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from skelact.errors import ConfigError, DataError
from skelact.models.frhead import (ContrastiveRefinement, FRHead, MultiLevelFRHead, all_reduce_sums,
                                   refinement_loss)

REPO = Path(__file__).resolve().parents[1]
FRHEAD_JOINT = REPO / "configs" / "nw_ucla" / "ctrgcn_frhead_joint.yaml"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads on the shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------------------
# the loss of one feature space, by hand
#
# K = 3 classes, 2-D features, tau = 0.125, m = 0.9, alpha = 0.125:
#   sample  z         label  logits               p            prediction
#   0       (1, 0)    0      (ln 3, 0, 0)         (3/5,1/5,1/5) 0  true positive
#   1       (0, 1)    0      (0, ln 2, 0)         (1/4,1/2,1/4) 1  FN of class 0, FP of class 1
#   2       (1, 1)    1      (0, ln 3, 0)         (1/5,3/5,1/5) 1  true positive
#   3       (-1, 0)   2      (ln 2, 0, 0)         (1/2,1/4,1/4) 0  FN of class 2, FP of class 0
# old prototypes P = ((0, 2), (2, 0), (0, -1)):
#   P0 = 0.9 (0, 2) + 0.1 z0 = (0.1, 1.8); P1 = 0.9 (2, 0) + 0.1 z2 = (1.9, 0.1); P2 has no true positive: (0, -1)
#   mu_FN: class 0 -> z1 = (0, 1), class 1 -> none, class 2 -> z3 = (-1, 0)
#   mu_FP: class 0 -> z3 = (-1, 0), class 1 -> z1 = (0, 1), class 2 -> none
#   phi = 1 - cos(z, mu_FN(y)): (1 - 0, 1 - 1, 0 [no FN of 1], 1 - 1) = (1, 0, 0, 0)
#   psi = 1 + cos(z, mu_FP(y)): (1 + -1, 1 + 0, 1 + 1/sqrt 2, 0 [no FP of 2]) = (0, 1, 1 + 1/sqrt 2, 0)
#   w = alpha (1 - p_y): (0.125 * 2/5, 0.125 * 3/4, 0.125 * 2/5, 0.125 * 3/4) = (0.05, 0.09375, 0.05, 0.09375)

Z = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]
LABELS = [0, 0, 1, 2]
LOGITS = [[math.log(3), 0, 0], [0, math.log(2), 0], [0, math.log(3), 0], [math.log(2), 0, 0]]
OLD_PROTOTYPES = [[0.0, 2.0], [2.0, 0.0], [0.0, -1.0]]
NEW_PROTOTYPES = [[0.1, 1.8], [1.9, 0.1], [0.0, -1.0]]
PHI = [1.0, 0.0, 0.0, 0.0]
PSI = [0.0, 1.0, 1.0 + 1.0 / math.sqrt(2.0), 0.0]
WEIGHT = [0.05, 0.09375, 0.05, 0.09375]


def cosine(a, b) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def two_part_infonce(z, labels, prototypes, lowered_fn, lowered_fp, tau=0.125) -> float:
    """The paper's loss written out: per sample -log softmax of cos/tau with the true class lowered, twice."""
    total = 0.0
    for zi, y, dfn, dfp in zip(z, labels, lowered_fn, lowered_fp):
        for drop in (dfn, dfp):
            scores = [cosine(zi, p) / tau for p in prototypes]
            scores[y] -= drop / tau
            total += -scores[y] + math.log(sum(math.exp(s) for s in scores))
    return total / len(z)


def close(tensor: torch.Tensor, nested: list) -> bool:
    return np.allclose(tensor.detach().numpy(), np.array(nested), atol=1e-6)


def hand_batch(requires_grad: bool = False):
    z = torch.tensor(Z, requires_grad=requires_grad)
    logits = torch.tensor(LOGITS, requires_grad=requires_grad)
    return z, torch.tensor(LABELS), logits, torch.tensor(OLD_PROTOTYPES)


def test_loss_matches_the_hand_computed_batch():
    z, labels, logits, prototypes = hand_batch()
    result = refinement_loss(z, labels, logits, prototypes)
    assert close(result.prototypes, NEW_PROTOTYPES)
    assert result.phi.tolist() == pytest.approx(PHI, abs=1e-6)
    assert result.psi.tolist() == pytest.approx(PSI, abs=1e-6)
    assert result.weight.tolist() == pytest.approx(WEIGHT, abs=1e-6)
    assert result.confident.tolist() == [True, False, True, False]
    assert result.class_counts.tolist() == [[1, 1, 0], [1, 0, 1], [1, 1, 0]]  # confident / FN / FP per class
    expected = two_part_infonce(Z, LABELS, NEW_PROTOTYPES, [w * p for w, p in zip(WEIGHT, PHI)],
                                [w * p for w, p in zip(WEIGHT, PSI)])
    assert float(result.loss) == pytest.approx(expected, rel=1e-5)
    assert torch.equal(prototypes, torch.tensor(OLD_PROTOTYPES))  # the input is not modified


def test_prototypes_move_only_with_confident_true_positives():
    z, labels, logits, prototypes = hand_batch()
    # p of the two true positives is 3/5: a threshold of 0.7 makes none confident, so no prototype moves ...
    result = refinement_loss(z, labels, logits, prototypes, confidence_threshold=0.7)
    assert result.prototypes.tolist() == OLD_PROTOTYPES
    assert not result.confident.any()
    # ... while FN and FP are about the predictions alone and keep their values
    assert result.phi.tolist() == pytest.approx(PHI, abs=1e-6)
    assert result.psi.tolist() == pytest.approx(PSI, abs=1e-6)
    # the misclassified samples 1 (label 0) and 3 (label 2) never enter a prototype, whatever their features
    moved = torch.tensor(Z)
    moved[1], moved[3] = torch.tensor([50.0, -7.0]), torch.tensor([3.0, 9.0])
    result = refinement_loss(moved, labels, logits, prototypes)
    assert close(result.prototypes, NEW_PROTOTYPES)


def test_module_updates_its_prototype_buffer_in_training_only():
    refinement = ContrastiveRefinement(2, 3, 2, sync=False)
    with torch.no_grad():
        refinement.project.weight.copy_(torch.eye(2))
        refinement.project.bias.zero_()
        refinement.prototypes.copy_(torch.tensor(OLD_PROTOTYPES))
    z, labels, logits, _ = hand_batch()
    refinement.eval()(z, labels, logits)
    assert refinement.prototypes.tolist() == OLD_PROTOTYPES
    loss = refinement.train()(z, labels, logits)
    assert close(refinement.prototypes, NEW_PROTOTYPES)
    assert float(loss.detach()) == pytest.approx(float(refinement_loss(*hand_batch()).loss), rel=1e-6)


def test_no_false_negatives_or_positives_leave_the_plain_prototype_infonce():
    # every sample correct: phi = psi = 0 and the loss is twice the cross-entropy over cos / tau
    z = torch.tensor([[1.0, 0.0], [0.5, 2.0], [-1.0, -0.3]])
    labels = torch.tensor([0, 1, 2])
    logits = torch.eye(3) * 2.0
    prototypes = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    result = refinement_loss(z, labels, logits, prototypes)
    assert result.phi.tolist() == [0.0, 0.0, 0.0] and result.psi.tolist() == [0.0, 0.0, 0.0]
    updated = (0.9 * prototypes + 0.1 * z).tolist()  # one true positive per class
    expected = two_part_infonce(z.tolist(), [0, 1, 2], updated, [0, 0, 0], [0, 0, 0])
    assert float(result.loss) == pytest.approx(expected, rel=1e-5)


def test_confident_anchors_switch_calibrates_only_true_positives():
    z, labels, logits, prototypes = hand_batch()
    result = refinement_loss(z, labels, logits, prototypes, anchors="confident", calibration_scale=1.0)
    assert result.weight.tolist() == pytest.approx([0.4, 0.0, 0.4, 0.0], abs=1e-6)  # (1 - p_y) for TPs only
    expected = two_part_infonce(Z, LABELS, NEW_PROTOTYPES, [0.4 * 1.0, 0, 0, 0], [0, 0, 0.4 * PSI[2], 0])
    assert float(result.loss) == pytest.approx(expected, rel=1e-5)


def test_logits_and_labels_enter_detached():
    z, labels, logits, prototypes = hand_batch(requires_grad=True)
    loss = refinement_loss(z, labels, logits, prototypes).loss
    loss.backward()
    assert logits.grad is None  # no path from the loss to the logits
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_prototype_gradient_switch():
    # the prototypes used in the loss hold 0.1 * the batch mean of true positives: with prototype_grad the loss
    # reaches the true positives also through it, without it only through their own cosines
    z, labels, logits, prototypes = hand_batch(requires_grad=True)
    g_with = torch.autograd.grad(refinement_loss(z, labels, logits, prototypes).loss, z)[0]
    g_without = torch.autograd.grad(refinement_loss(z, labels, logits, prototypes, prototype_grad=False).loss, z)[0]
    assert not torch.allclose(g_with[[0, 2]], g_without[[0, 2]])
    assert torch.allclose(g_with[3], g_without[3])  # sample 3 is in no prototype


# ---------------------------------------------------------------------------------------------------------------
# heads, stage weights, the method


def test_stage_weights_sum_the_heads_losses():
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 8), (8, 4), (16, 2), (16, 2)]
    heads = MultiLevelFRHead(shapes, 5, 3, [0.1, 0.2, 0.5, 1.0], hidden_features=16, generator=g, sync=False)
    features = [torch.randn(6, c, t, 5, generator=g) for c, t in shapes]  # N = 3 samples x M = 2 persons
    labels, logits = torch.tensor([0, 1, 2]), torch.randn(3, 3, generator=g)
    alone = [copy.deepcopy(h) for h in heads.heads]
    total, per_stage = heads(features, labels, logits)
    independent = [float(h(f, labels, logits).detach()) for h, f in zip(alone, features)]
    assert [float(v.detach()) for v in per_stage] == pytest.approx(independent, rel=1e-6)
    weighted = sum(w * v for w, v in zip([0.1, 0.2, 0.5, 1.0], independent))
    assert float(total.detach()) == pytest.approx(weighted, rel=1e-6)
    last_only = MultiLevelFRHead(shapes, 5, 3, [1.0], taps=[3], hidden_features=16, sync=False)
    assert len(last_only.heads) == 1 and last_only.heads[0].in_channels == 16


def test_head_averages_persons_and_decouples_space_and_time():
    head = FRHead(6, 4, 5, 3, hidden_features=20)  # spatial 20 // 5 = 4 channels per joint, temporal 20 // 4 = 5
    assert head.spatial.project.in_features == 4 * 5 and head.temporal.project.in_features == 5 * 4
    x = torch.randn(2, 6, 4, 5)
    swapped_persons = head.branch_features(x[[1, 0]], 1)
    for name, value in head.branch_features(x, 1).items():
        assert torch.allclose(value, swapped_persons[name], atol=1e-6), name  # the mean over persons
    pooled = FRHead(6, 4, 5, 3, hidden_features=20, decouple=False)
    assert torch.allclose(pooled.branch_features(x, 1)["pooled"], x.mean(dim=(0, 2, 3))[None], atol=1e-6)
    with pytest.raises(DataError, match="num_frames"):
        head(torch.randn(2, 6, 7, 5), torch.tensor([0, 1]), torch.randn(2, 3))


def test_shipped_configs_build_the_reference_head_sizes(ucla_store):
    """Full-width CTR-GCN on NW-UCLA clips of 52 frames: the reference's flattened branch sizes (256 // 20 * 20 =
    240 spatial; 256 // 52 * 52 = 208, 256 // 26 * 26 = 234, 256 // 13 * 13 = 247 temporal)."""
    from skelact.config import load_config
    from skelact.engine.build import build_method, build_model

    store = ucla_store
    sizes = {}
    for name in ("ctrgcn_frhead_joint", "ctrgcn_frhead_bone_motion", "ablation/ctrgcn_frhead_joint_cl",
                 "ablation/ctrgcn_frhead_joint_cl_st"):
        loaded = load_config(REPO / "configs" / "nw_ucla" / f"{name}.yaml", [f"data.store={store.path}"])
        method = build_method(loaded, build_model(loaded, store))
        sizes[name] = [{k: r.project.in_features for k, r in h.branches().items()} for h in method.heads.heads]
        assert sum(p.numel() for p in method.model.parameters()) == 1_426_892  # the CTR-GCN NW-UCLA count
    full = [{"spatial": 240, "temporal": t} for t in (208, 234, 247, 247)]
    assert sizes["ctrgcn_frhead_joint"] == full and sizes["ctrgcn_frhead_bone_motion"] == full
    assert sizes["ablation/ctrgcn_frhead_joint_cl"] == [{"pooled": 256}]
    assert sizes["ablation/ctrgcn_frhead_joint_cl_st"] == [{"spatial": 240, "temporal": 247}]


def test_method_loss_is_ce_plus_weighted_cl_and_cl_never_reaches_the_classifier():
    from skelact.methods.frhead import FRHeadMethod, FRHeadSettings, build_frhead
    from skelact.models import CTRGCN
    from skelact.skeleton.layout import get_layout

    model = CTRGCN(10, layout=get_layout("nw_ucla20"), num_persons=1, base_channels=4, seed=0)
    settings = FRHeadSettings(hidden_features=16)
    method = FRHeadMethod(model, build_frhead(model, 10, settings, 8, seed=1), w_cl=0.1)
    g = torch.Generator().manual_seed(2)
    batch = {"x": torch.randn(6, 1, 8, 20, 3, generator=g), "label": torch.tensor([0, 1, 2, 3, 4, 5])}
    loss, logits, parts = method.losses(batch)
    value = {name: float(v.detach()) for name, v in parts.items()}
    stages = [value[f"loss_cl_block{b}"] for b in (1, 5, 8, 10)]
    weighted = sum(w * v for w, v in zip((0.1, 0.2, 0.5, 1.0), stages))
    assert value["loss_cl"] == pytest.approx(weighted, rel=1e-6)
    assert float(loss.detach()) == pytest.approx(value["loss_ce"] + 0.1 * value["loss_cl"], rel=1e-6)
    # no path from the CL loss to the classifier: its gradient comes from the cross-entropy alone
    assert torch.autograd.grad(parts["loss_cl"], model.fc.weight, allow_unused=True, retain_graph=True)[0] is None
    # ... while the backbone does receive it
    grad_block = torch.autograd.grad(parts["loss_cl"], model.blocks[0].gcn.value_weight, allow_unused=True)[0]
    assert grad_block is not None and grad_block.abs().sum() > 0


def test_inference_runs_the_backbone_alone():
    """Evaluation, prediction and export call ``method(x)``: it must run no head module (so its FLOPs are the
    backbone's) and give the backbone's logits."""
    from skelact.methods.frhead import FRHeadMethod, FRHeadSettings, build_frhead
    from skelact.models import CTRGCN
    from skelact.skeleton.layout import get_layout

    model = CTRGCN(10, layout=get_layout("nw_ucla20"), num_persons=1, base_channels=4, seed=0)
    method = FRHeadMethod(model, build_frhead(model, 10, FRHeadSettings(hidden_features=32), 8, seed=1)).eval()
    x = torch.randn(2, 1, 8, 20, 3)
    called = set()
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: called.add(name))
             for name, module in method.named_modules() if name]
    try:
        with torch.no_grad():
            logits = method(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert "model" in called and "model.blocks.9" in called
    assert not [name for name in called if name.startswith("heads")]
    with torch.no_grad():
        assert torch.equal(logits, model(x))
    assert method.inference_model() is model
    assert sum(p.numel() for p in method.parameters()) > sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------------------
# multi-process prototypes


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        refinement = _seeded_refinement(sync=True)
        z, labels, logits = _ddp_batch()
        half = slice(rank * 4, rank * 4 + 4)
        loss = refinement.train()(z[half], labels[half], logits[half])
        torch.save({"loss": loss.detach(), "prototypes": refinement.prototypes.clone()}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _seeded_refinement(sync: bool) -> ContrastiveRefinement:
    return ContrastiveRefinement(5, 3, 4, sync=sync, generator=torch.Generator().manual_seed(3))


def _ddp_batch():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(8, 5, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    # right but for samples 3 (label 0, predicted 2) and 6 (label 0, predicted 1): every class has true positives
    predicted = torch.tensor([0, 1, 2, 2, 1, 2, 1, 1])
    logits = 3.0 * torch.nn.functional.one_hot(predicted, 3) + 0.1 * torch.randn(8, 3, generator=g)
    return z, labels, logits


def test_prototypes_synchronised_over_two_processes_equal_the_global_batch(tmp_path):
    """Two gloo processes, each with half the batch and sync=True, end with the prototypes one process gets from
    the whole batch, and their mean loss is the whole batch's loss."""
    import socket

    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch has no gloo process groups")
    z, labels, logits = _ddp_batch()
    single = _seeded_refinement(sync=False).train()
    initial = single.prototypes.clone()
    expected_loss = float(single(z, labels, logits).detach())
    assert not torch.allclose(single.prototypes, initial, atol=1e-3)  # every class moved
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fork: the children need no fresh interpreter (torch runs single-threaded here, so forking is safe)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method=method)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for r in ranks:
        assert torch.allclose(r["prototypes"], single.prototypes, atol=1e-6)
    assert (float(ranks[0]["loss"]) + float(ranks[1]["loss"])) / 2 == pytest.approx(expected_loss, rel=1e-5)
    # without the reduction each half would move the prototypes differently
    unsynced = _seeded_refinement(sync=False).train()
    unsynced(z[:4], labels[:4], logits[:4])
    assert not torch.allclose(unsynced.prototypes, single.prototypes, atol=1e-4)


def test_all_reduce_keeps_the_gradient_local():
    sums = torch.tensor([[1.0, 2.0]], requires_grad=True)
    counts = torch.tensor([1.0])

    class FakeDist:  # a second process contributing [[10, 20]] and 3 samples
        @staticmethod
        def all_reduce(t):
            t += torch.tensor([[10.0, 20.0, 3.0]])

    import torch.distributed as dist

    real = dist.all_reduce
    dist.all_reduce = FakeDist.all_reduce
    try:
        total, total_counts = all_reduce_sums(sums, counts)
    finally:
        dist.all_reduce = real
    assert total.tolist() == [[11.0, 22.0]] and total_counts.tolist() == [4.0]
    total.sum().backward()
    assert sums.grad.tolist() == [[1.0, 1.0]]


# ---------------------------------------------------------------------------------------------------------------
# through the engine, on real NW-UCLA data


T = 16
TRAIN_PIPE = ("data.train_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, "
              "{type: RandomViewRotation, max_degrees: 60, scale_range: [0.5, 1.5]}, {type: MinMaxNormalize}, "
              f"{{type: UclaSample, window_size: {T}}}]")
TEST_PIPE = ("data.test_pipeline=[{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, "
             f"{{type: UclaSample, window_size: {T}, test_mode: true}}]")


@pytest.fixture(scope="module")
def ucla_store(shared_data: Path, tmp_path_factory):
    from skelact.data.cache import open_or_prepare

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_CACHE", str(tmp_path_factory.mktemp("frhead_stores")))
        mp.setenv("SKELACT_DATA", str(shared_data))
        return open_or_prepare("nw-ucla", "nw_ucla", progress=False, log=lambda _: None)


def tiny_backbone(store) -> list[str]:
    """A 5-block, 4-channel CTR-GCN (taps after blocks 1 and 5) on 64 train / 32 test real samples of 16 frames,
    batch 8, on CPU."""
    return [f"data.store={store.path}", "model.base_channels=4", "model.num_blocks=5", "data.max_train_samples=64",
            "data.max_test_samples=32", "data.batch_size=8", "data.num_workers=0", TRAIN_PIPE, TEST_PIPE,
            "trainer.accelerator=cpu", "trainer.progress_bar=false"]


def tiny(store, *extra: str) -> list[str]:
    """:func:`tiny_backbone` with 32-wide FR-Heads on its two taps."""
    return [*tiny_backbone(store), "method.frhead.stage_weights=[0.2, 1.0]", "method.frhead.hidden_features=32",
            *extra]


@pytest.fixture(scope="module")
def frhead_run(ucla_store, tmp_path_factory):
    pytest.importorskip("lightning", reason="the engine needs the train extra (lightning)")
    from skelact.commands.train import train_command

    # one thread: on a shared 2-core machine two threads per process wait on each other's OpenMP barriers
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")
        mp.setenv("OMP_NUM_THREADS", "1")
        return train_command(FRHEAD_JOINT, tiny(ucla_store, "epochs=1", "evaluate.checkpoint=best"),
                             run_dir=tmp_path_factory.mktemp("runs") / "frhead")


def test_train_command_writes_metrics_and_logs_the_loss_parts(frhead_run):
    import csv

    metrics = json.loads((frhead_run / "metrics.json").read_text())
    assert metrics["num_test_samples"] == 32 and metrics["epoch"] == 1 and metrics["global_step"] == 8
    assert metrics["experiment"] == "nw_ucla_ctrgcn_frhead_joint"
    rows = [r for r in csv.DictReader((frhead_run / "csv" / "metrics.csv").open()) if r.get("train/loss")]
    assert len(rows) == 1
    row = {k: float(v) for k, v in rows[0].items() if v}
    # epoch means of per-step values: loss = CE + 0.1 * CL and CL = 0.2 * L_block1 + 1.0 * L_block5 hold exactly
    assert row["train/loss"] == pytest.approx(row["train/loss_ce"] + 0.1 * row["train/loss_cl"], rel=1e-5)
    assert row["train/loss_cl"] == pytest.approx(0.2 * row["train/loss_cl_block1"] + row["train/loss_cl_block5"],
                                                 rel=1e-5)


def test_best_checkpoint_exports_exactly_the_backbone(frhead_run, ucla_store):
    from skelact.config import load_config
    from skelact.engine.build import build_model
    from skelact.methods.frhead import inference_state_dict

    state = torch.load(frhead_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(k.startswith("method.heads.") for k in state)  # the heads were trained (and saved for resuming)
    loaded = load_config(frhead_run / "config.yaml")
    backbone = build_model(loaded, ucla_store)
    weights = inference_state_dict(state)
    backbone.load_state_dict(weights, strict=True)  # every backbone key, nothing of the heads
    assert not any("heads" in k or "prototypes" in k for k in weights)
    plain = build_model(load_config(REPO / "configs" / "nw_ucla" / "ctrgcn_joint.yaml",
                                    tiny_backbone(ucla_store)), ucla_store)
    assert sum(p.numel() for p in backbone.parameters()) == sum(p.numel() for p in plain.parameters())
    plain.load_state_dict(weights)
    # ONNX (weights kept under their state-dict names): every named initialiser is a backbone tensor, none of the
    # heads', and onnxruntime gives the plain backbone's logits
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x = torch.randn(3, 1, T, 20, 3)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(backbone.eval(), (x,), buffer, dynamo=False, input_names=["x"], do_constant_folding=False)
    graph = onnx.load_from_string(buffer.getvalue()).graph
    initialisers = {i.name for i in graph.initializer if not i.name.startswith("onnx::")}
    assert initialisers and initialisers <= set(weights)
    logits = ort.InferenceSession(buffer.getvalue()).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(logits, plain.eval()(x).numpy(), atol=1e-4)


def test_feature_plot_of_the_run(frhead_run):
    pytest.importorskip("matplotlib")
    from skelact.cli import main as cli_main
    from skelact.inference.features import ambiguous_classes, read_confused_pairs

    pairs = read_confused_pairs(frhead_run)
    classes = ambiguous_classes(pairs, 2)
    assert 2 <= len(classes) <= 4 and classes[:2] == [pairs[0]["true"], pairs[0]["predicted"]]
    assert cli_main(["plot-features", str(frhead_run), "--method", "pca", "--pairs", "2"]) == 0
    png = frhead_run / "ambiguous_features.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads(png.with_suffix(".json").read_text())
    assert summary["classes"] == classes
    labels = np.load(frhead_run / "labels.npy")
    count = int(np.isin(labels, classes).sum())  # every test sample of those classes, in both panels
    assert [p["num_samples"] for p in summary["panels"]] == [count, count]
    assert [p["dimensions"] for p in summary["panels"]] == [8, 64]  # block-5 width; 2 x 32 contrastive


def test_feature_plot_waits_for_no_one_while_the_run_is_held(frhead_run, capsys):
    """plot-features writes into the run, so it takes the run's lock like train and test: while another process
    (here: this one, through a second lock) holds it, the command is one line and exit 2, and writes nothing."""
    import os

    from skelact.cli import main as cli_main
    from skelact.locking import lock_dir

    out = frhead_run / "held.png"
    capsys.readouterr()
    with lock_dir(frhead_run, "run directory"):
        assert cli_main(["plot-features", str(frhead_run), "--method", "pca", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{frhead_run}: run directory: in use by process {os.getpid()} " in err[0], err
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_ambiguous_classes_keep_pair_order():
    pairs = [{"true": 3, "predicted": 1}, {"true": 1, "predicted": 3}, {"true": 7, "predicted": 1},
             {"true": 0, "predicted": 2}]
    assert ambiguous_classes_of(pairs, 3) == [3, 1, 7]
    assert ambiguous_classes_of(pairs, 4) == [3, 1, 7, 0, 2]


def ambiguous_classes_of(pairs, n):
    from skelact.inference.features import ambiguous_classes

    return ambiguous_classes(pairs, n)


def test_config_errors_name_the_key(ucla_store, tmp_path):
    from skelact.config import load_config
    from skelact.engine.build import build_method, build_model

    def build(*overrides):
        loaded = load_config(FRHEAD_JOINT, [f"data.store={ucla_store.path}", "model.base_channels=4", *overrides])
        return build_method(loaded, build_model(loaded, ucla_store))

    with pytest.raises(ConfigError) as info:
        build("method.frhead.temprature=0.1")
    assert info.value.field == "method.frhead.temprature" and info.value.path == "command line"
    assert "temperature" in info.value.message  # the known keys are listed
    with pytest.raises(ConfigError) as info:
        build("method.frhead.stage_weights=[1.0, 1.0]")  # 4 taps
    assert info.value.field == "method.frhead.stage_weights" and "4" in info.value.message
    with pytest.raises(ConfigError) as info:
        build("method.frhead.anchors=some")
    assert info.value.field == "method.frhead.anchors"
    with pytest.raises(ConfigError) as info:
        load_config(FRHEAD_JOINT, ["method.type=frheads"])
    assert info.value.field == "method.type" and "frhead" in info.value.message
