"""SkeletonCLR / CrosSCLR pre-training and the four evaluation protocols: the queue, the momentum update, InfoNCE,
cross-view mining, frozen linear evaluation, label subsets, kNN, and end-to-end runs on real NW-UCLA clips."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from skelact.errors import ConfigError, DataError
from skelact.methods.crossclr import CrosSCLRMethod, cross_view_loss, topk_positive_mask
from skelact.methods.protocols import (EncoderClassifier, balanced_label_subset, estimate_batch_norm_statistics,
                                      knn_scores)
from skelact.methods.queue import MemoryQueue
from skelact.methods.skeletonclr import (SkeletonCLR, SkeletonCLRMethod, info_nce_logits, info_nce_loss,
                                         momentum_update_)

pytestmark = pytest.mark.filterwarnings("ignore:.*smaller than the logging interval",
                                        "ignore:.*LeafSpec.*is deprecated", "ignore:.*does not have many workers",
                                        "ignore:.*module\\(s\\) in eval mode", "ignore:Checkpoint directory .* exists")

REPO = Path(__file__).resolve().parents[1]
T = 16
PREP = "{type: CenterOnJoint, joint: 1, frame: first}, {type: MinMaxNormalize}, " \
       f"{{type: UclaSample, window_size: {T}, test_mode: true}}"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads; on a shared machine OpenMP spin-waits make them much slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ucla_store(shared_data: Path, tmp_path_factory):
    from skelact.data.cache import open_or_prepare

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKELACT_CACHE", str(tmp_path_factory.mktemp("ssl_store_cache")))
        mp.setenv("SKELACT_DATA", str(shared_data))
        return open_or_prepare("nw-ucla", "nw_ucla", progress=False, log=lambda _: None)


def tiny(store, *extra: str) -> list[str]:
    """A 3-block ST-GCN 4-4-16 on 48 train / 30 test real clips of 16 frames, batch 8, queue 32, on CPU."""
    return [f"data.store={store.path}", "model.base_channels=4", "model.final_channels=16", "model.num_blocks=3",
            "data.max_train_samples=48", "data.max_test_samples=30", "data.batch_size=8",
            "data.test_batch_size=16", "data.num_workers=0", "trainer.accelerator=cpu", "trainer.progress_bar=false",
            f"data.train_pipeline=[{PREP}, {{type: TemporalCrop, padding_ratio: 6}}, {{type: Shear}}]",
            f"data.test_pipeline=[{PREP}]", "method.skeletonclr.queue_size=32", *extra]


class TinyEncoder(nn.Module):
    """The encoder interface the methods need: ``extract_features`` and ``out_channels``."""

    def __init__(self, d_in: int = 3, width: int = 4):
        super().__init__()
        self.lin = nn.Linear(d_in, width)
        self.out_channels = width

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def tiny_view(queue_size=6, dim=2, momentum=0.9, temperature=0.5, seed=0) -> SkeletonCLR:
    torch.manual_seed(seed)
    return SkeletonCLR(TinyEncoder(), nn.Linear(4, dim), queue_size=queue_size, feature_dim=dim, momentum=momentum,
                       temperature=temperature, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------------------
# queue


def test_queue_is_fifo_and_wraps_around():
    q = MemoryQueue(5, 2, torch.Generator().manual_seed(0))
    assert torch.allclose(q.keys.norm(dim=1), torch.ones(5))  # random unit vectors until filled
    key = [torch.tensor([[float(i), -float(i)]]) for i in range(1, 8)]
    q.enqueue(torch.cat(key[0:2]))  # rows 0, 1
    assert not q.is_full and int(q.pointer) == 2
    q.enqueue(torch.cat(key[2:4]))  # rows 2, 3
    q.enqueue(torch.cat(key[4:6]))  # rows 4, then 0: key 1 (the oldest) is overwritten by key 6
    assert q.is_full and int(q.pointer) == 1 and int(q.count) == 6
    assert q.keys[:, 0].tolist() == [6.0, 2.0, 3.0, 4.0, 5.0]
    assert q.ordered()[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]  # oldest first
    q.enqueue(key[6])
    assert q.ordered()[:, 0].tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
    # more keys than rows at once: the newest five survive, still in order
    q.enqueue(torch.arange(10, 17, dtype=torch.float32)[:, None].repeat(1, 2))
    assert q.ordered()[:, 0].tolist() == [12.0, 13.0, 14.0, 15.0, 16.0]


def _queue_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        q = MemoryQueue(6, 1, torch.Generator().manual_seed(0))
        q.enqueue(torch.tensor([[10.0 * rank + 1], [10.0 * rank + 2]]))
        torch.save(q.ordered(), f"{out}/queue{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_queue_enqueues_the_keys_of_every_process(tmp_path):
    """Two gloo processes each enqueue their own two keys; both queues end with all four, in rank order."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch has no gloo process groups")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_queue_worker, args=(2, port, str(tmp_path)), nprocs=2, start_method=method)
    queues = [torch.load(tmp_path / f"queue{r}.pt") for r in range(2)]
    assert torch.equal(queues[0], queues[1])
    assert queues[0][-4:, 0].tolist() == [1.0, 2.0, 11.0, 12.0]


# ---------------------------------------------------------------------------------------------------------------
# momentum update and InfoNCE


def test_momentum_update_by_hand():
    k, q = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 3.0])
    momentum_update_([k], [q], 0.9)
    assert k.tolist() == pytest.approx([0.9 * 2.0 + 0.1 * 1.0, 0.9 * -1.0 + 0.1 * 3.0])  # [1.9, -0.6]
    assert q.tolist() == [1.0, 3.0]


def test_training_step_moves_every_key_parameter_towards_its_query():
    view = tiny_view(momentum=0.9)
    assert all(torch.equal(k, q) for k, q in zip(view.key_parameters(), view.query_parameters()))  # k starts = q
    assert not any(k.requires_grad for k in view.key_parameters())
    with torch.no_grad():  # as after some optimiser steps: queries away from keys
        for p in view.query_parameters():
            p.add_(1.0)
    before_k = [k.clone() for k in view.key_parameters()]
    before_q = [q.clone() for q in view.query_parameters()]
    method = SkeletonCLRMethod({"joint": view})
    batch = {"query": {"joint": torch.randn(4, 3)}, "key": {"joint": torch.randn(4, 3)}}
    loss, logits, parts = method.training_step(batch)
    assert logits is None and set(parts) == {"loss_joint", "instance_acc_joint"}
    for k, k0, q0 in zip(view.key_parameters(), before_k, before_q):
        assert torch.allclose(k, 0.9 * k0 + 0.1 * q0)
    loss.backward()  # the loss reaches the query side only
    assert all(q.grad is not None for q in view.query_parameters())
    assert all(k.grad is None for k in view.key_parameters())


def test_info_nce_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [0.6, -0.8]])
    tau = 0.5
    # sample 1: positive 0.6, negatives 0, -1, 0.6; sample 2: positive 1, negatives 1, 0, -0.8
    first = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0) + math.exp(-2.0) + math.exp(1.2)))
    second = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(2.0) + math.exp(0.0) + math.exp(-1.6)))
    assert info_nce_logits(q, k, negatives, tau)[0].tolist() == pytest.approx([1.2, 0.0, -2.0, 1.2])
    assert float(info_nce_loss(q, k, negatives, tau)) == pytest.approx((first + second) / 2, rel=1e-6)


def test_logits_use_the_queue_from_before_the_batch_is_enqueued():
    view = tiny_view(queue_size=4)
    x = torch.randn(2, 3)
    expected_negatives = view.queue.keys.clone()
    q = view.query(x)
    with torch.no_grad():
        view.momentum_update()
        k = view.key(x)
        expected = float(info_nce_loss(q, k, expected_negatives, view.temperature))
    fresh = tiny_view(queue_size=4)
    loss, _, _ = SkeletonCLRMethod({"joint": fresh}).training_step({"query": {"joint": x}, "key": {"joint": x}})
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert torch.allclose(fresh.queue.keys[:2], k)  # then the keys went in


# ---------------------------------------------------------------------------------------------------------------
# cross-view mining


def test_topk_mining_on_a_hand_made_similarity_matrix():
    s_v = torch.tensor([[0.1, 0.9, 0.3, 0.5], [0.8, 0.2, 0.7, 0.0]])
    assert topk_positive_mask(s_v, 1).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert topk_positive_mask(s_v, 2).tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]]
    with pytest.raises(ConfigError):
        topk_positive_mask(s_v, 5)


def _hand_cross_loss(p, s_u, s_v, mined, tau, context):
    logits = [p] + list(s_u) + ([a * b for a, b in zip(s_u, s_v)] if context else [])
    positives = [0] + [1 + j for j in mined] + ([1 + len(s_u) + j for j in mined] if context else [])
    log_z = math.log(sum(math.exp(v / tau) for v in logits))
    return -sum(logits[j] / tau - log_z for j in positives) / len(positives)


def test_cross_view_loss_takes_positives_from_the_other_view():
    s_u = torch.tensor([[0.2, -0.1, 0.4, 0.0]])
    s_v = torch.tensor([[0.1, 0.9, 0.3, 0.5]])  # view v's nearest queue entry is 1, view u's would be 2
    p = torch.tensor([0.7])
    for context in (True, False):
        got = float(cross_view_loss(p, s_u, s_v, topk=1, temperature=0.5, context=context))
        want = _hand_cross_loss(0.7, [0.2, -0.1, 0.4, 0.0], [0.1, 0.9, 0.3, 0.5], [1], 0.5, context)
        assert got == pytest.approx(want, rel=1e-6)
    two = float(cross_view_loss(p, s_u, s_v, topk=2, temperature=0.5, context=True))
    assert two == pytest.approx(_hand_cross_loss(0.7, [0.2, -0.1, 0.4, 0.0], [0.1, 0.9, 0.3, 0.5], [1, 3], 0.5,
                                                 True), rel=1e-6)


VIEWS = ("joint", "joint_motion", "bone")


def _crossclr(**kwargs) -> CrosSCLRMethod:
    views = {name: tiny_view(queue_size=6, seed=i) for i, name in enumerate(VIEWS)}
    with torch.no_grad():  # queries away from their keys, as after optimiser steps
        for view in views.values():
            for p in view.query_parameters():
                p.add_(0.5)
    return CrosSCLRMethod(views, single_view_epochs=1, topk=1, **kwargs)


def test_crossclr_phases_pair_sum_and_reference_key_update():
    g = torch.Generator().manual_seed(5)
    batch = {w: {n: torch.randn(4, 3, generator=g) for n in VIEWS} for w in ("query", "key")}
    method = _crossclr()
    method.set_epoch(0)
    loss0, _, parts0 = method.training_step(batch)
    assert float(parts0["cross_phase"]) == 0.0
    assert float(loss0.detach()) == pytest.approx(sum(float(parts0[f"loss_{n}"]) for n in VIEWS), rel=1e-6)
    method.set_epoch(1)
    # what the cross phase should compute, from the method's own embeddings and queues before the step
    q = {n: method.views[n].query(batch["query"][n]).detach() for n in VIEWS}
    snapshot = {n: method.views[n].negatives() for n in VIEWS}
    keys_before = {n: [k.clone() for k in method.views[n].key_parameters()] for n in VIEWS}
    loss1, _, parts1 = method.training_step(batch)
    k = {n: method.views[n].key(batch["key"][n]) for n in VIEWS}  # keys after this step's update
    s = {n: q[n] @ snapshot[n].t() for n in VIEWS}
    pos = {n: (q[n] * k[n]).sum(1) for n in VIEWS}
    want = sum(float(cross_view_loss(pos[u], s[u], s[v], topk=1, temperature=0.5))
               for u in VIEWS for v in VIEWS if u != v)  # the sum over the six ordered pairs
    assert float(parts1["cross_phase"]) == 1.0
    assert float(loss1.detach()) == pytest.approx(want, rel=1e-5)
    # the reference's reduction: each view's mean over its two guides, i.e. half the sum with three views
    mean = _crossclr(pair_reduction="mean")
    plain = _crossclr()
    for m in (mean, plain):
        m.set_epoch(1)
    assert float(mean.training_step(batch)[0].detach()) == pytest.approx(
        float(plain.training_step(batch)[0].detach()) / 2, rel=1e-6)
    assert all(not torch.equal(a, b) for a, b in zip(method.views["joint"].key_parameters(), keys_before["joint"]))
    # the reference's switch: only the listed view's key encoder moves in the cross phase
    ref = _crossclr(cross_key_updates=["joint_motion"])
    ref.set_epoch(1)
    frozen = [p.clone() for p in ref.views["joint"].key_parameters()]
    ref.training_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(ref.views["joint"].key_parameters(), frozen))


def test_settings_and_protocol_recipes_are_checked(ucla_store):
    from skelact.config import load_config
    from skelact.engine.build import build_method, method_settings_of

    config = REPO / "configs" / "nw_ucla" / "crossclr_3view.yaml"
    assert method_settings_of(load_config(config)).crossclr.views == ["joint", "joint_motion", "bone"]
    with pytest.raises(ConfigError) as e:
        method_settings_of(load_config(config, ["method.crossclr.top_k=2"]))
    assert e.value.field == "method.crossclr.top_k" and e.value.path == "command line"
    with pytest.raises(ConfigError) as e:
        method_settings_of(load_config(config, ["method.crossclr.cross_key_updates=[motion]"]))
    assert e.value.field == "method.crossclr.cross_key_updates" and e.value.path == "command line"
    with pytest.raises(ConfigError, match="skelact pretrain"):  # `skelact train` refuses a pre-training config
        build_method(load_config(config), None)
    # protocol recipes are checked before pre-training starts, naming the recipe key
    from skelact.commands.protocol_config import check_protocol_recipes

    check_protocol_recipes(load_config(config))
    for override, field in (("protocols.knn.kk=3", "protocols.knn.kk"), ("protocols.knn.k=0", "protocols.knn.k"),
                            ("protocols.semi.optimizer.lr=-1", "protocols.semi.optimizer.lr"),
                            ("protocols.lineer={}", "protocols.lineer")):
        with pytest.raises(ConfigError) as e:
            check_protocol_recipes(load_config(config, [override]))
        assert e.value.field == field and e.value.path == "command line", override


# ---------------------------------------------------------------------------------------------------------------
# protocols


def test_linear_protocol_freezes_weights_and_batch_norm_statistics():
    from skelact.models import STGCN

    encoder = STGCN(10, layout="nw_ucla20", num_persons=1, base_channels=4, final_channels=8, num_blocks=2,
                    dropout=0.5, seed=0)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    probe = EncoderClassifier({"joint": encoder}, 10, frozen=True, generator=torch.Generator().manual_seed(0))
    head_before = probe.heads["joint"].weight.clone()
    optimizer = torch.optim.SGD(probe.parameters(), lr=1.0, momentum=0.9, weight_decay=1e-2)
    probe.train()  # what the engine calls every epoch
    for step in range(3):
        x = torch.randn(6, 1, 8, 20, 3, generator=torch.Generator().manual_seed(step)) * 3 + 1
        loss, _ = probe.training_step({"x": {"joint": x}, "label": torch.arange(6) % 10})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), [k for k in before if not torch.equal(
        before[k], after[k])]
    assert any("running_mean" in k for k in before)
    assert not torch.equal(probe.heads["joint"].weight, head_before)  # the classifier did learn
    # fine-tuning (not frozen) on the same batches does move the statistics
    tuned = EncoderClassifier({"joint": encoder}, 10, frozen=False).train()
    tuned.training_step({"x": {"joint": x}, "label": torch.arange(6) % 10})
    assert not torch.equal(encoder.state_dict()["data_bn.bn.running_mean"], before["data_bn.bn.running_mean"])


class WidthEncoder(nn.Module):
    """An encoder of stored embeddings: only its width matters (the classifier takes 2-D inputs as they are)."""

    def __init__(self, width: int):
        super().__init__()
        self.out_channels = width


def test_feature_norm_makes_the_linear_probe_indifferent_to_the_embedding_scale():
    """MAE's linear probe (a batch norm without scale and shift before the classifier): four overlapping classes,
    embeddings 50 times larger than a batch-normed network gives. With the reference recipe's SGD at lr 3 the
    classifier's loss explodes (on real SkeletonMAE features its accuracy fell to chance); with the norm the same
    recipe fits, and the logits do not depend on the scale."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(256) % 4
    centres = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    feats = torch.randn(256, 8, generator=gen)
    feats[:, :2] += 1.5 * centres[labels]
    results = {}
    for norm in ("none", "batchnorm"):
        probe = EncoderClassifier({"joint": WidthEncoder(8)}, 4, frozen=True, feature_norm=norm,
                                  generator=torch.Generator().manual_seed(1)).train()
        optimizer = torch.optim.SGD(probe.parameters(), lr=3.0, momentum=0.9)
        for _ in range(10):
            for start in range(0, 256, 32):
                loss, _ = probe.training_step({"x": {"joint": feats[start:start + 32] * 50},
                                               "label": labels[start:start + 32]})
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        probe.eval()
        with torch.no_grad():
            logits = probe({"joint": feats * 50})
        results[norm] = (float(F.cross_entropy(logits, labels)), float((logits.argmax(1) == labels).float().mean()))
    assert results["none"][0] > 100.0, results  # ln 4 = 1.39 is a classifier that knows nothing
    assert results["batchnorm"][0] < 1.0 and results["batchnorm"][1] > 0.8, results
    probe = EncoderClassifier({"joint": WidthEncoder(8)}, 4, frozen=True, feature_norm="batchnorm").train()
    torch.testing.assert_close(probe({"joint": feats * 12}), probe({"joint": feats}), atol=1e-4, rtol=1e-4)
    plain = EncoderClassifier({"joint": WidthEncoder(8)}, 4, frozen=True).train()
    assert not torch.allclose(plain({"joint": feats * 12}), plain({"joint": feats}), atol=1e-2)
    # an option of the linear protocol only, and a typo is named
    from skelact.methods.protocols import split_recipe

    assert split_recipe("linear", {"feature_norm": "batchnorm"})[1].feature_norm == "batchnorm"
    for protocol, value in (("linear", "bn"), ("finetune", "batchnorm"), ("semi", "batchnorm")):
        with pytest.raises(ConfigError) as e:
            split_recipe(protocol, {"feature_norm": value})
        assert e.value.field == f"protocols.{protocol}.feature_norm", (protocol, value)


class NormEncoder(nn.Module):
    """BatchNorm over 2 features, then dropout: the statistics must come from the BN input alone."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(2, momentum=0.3)
        self.drop = nn.Dropout(0.5)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.bn(x))


def test_batch_norm_statistics_are_the_average_over_the_batches():
    encoder = NormEncoder().eval()
    weight_before = encoder.bn.weight.detach().clone()
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(5, 2, generator=gen) * torch.tensor([2.0, 0.5]) + torch.tensor([3.0, -1.0])
               for _ in range(4)]
    seen = estimate_batch_norm_statistics({"joint": encoder}, [{"joint": b} for b in batches])
    assert seen == 20
    # by hand: the mean of the four batch means and of the four unbiased batch variances
    torch.testing.assert_close(encoder.bn.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0))
    torch.testing.assert_close(encoder.bn.running_var, torch.stack([b.var(0) for b in batches]).mean(0))
    assert encoder.bn.momentum == 0.3 and not encoder.training and not encoder.bn.training
    assert torch.equal(encoder.bn.weight, weight_before)
    with pytest.raises(DataError):
        estimate_batch_norm_statistics({"joint": encoder}, [])


def test_a_random_encoder_gets_usable_features_from_its_estimated_statistics(ucla_store):
    """The reason for the estimate: with its initial statistics (mean 0, variance 1) a random ST-GCN shrinks real
    NW-UCLA clips to features a linear classifier cannot learn from (measured about 1e-7 at full depth)."""
    from skelact.data.multiview import MultiViewDataset
    from skelact.models import STGCN
    from skelact.config import load_config
    from skelact.engine.build import build_pipeline_of

    loaded = load_config(REPO / "configs" / "nw_ucla" / "skeletonclr_joint.yaml", [f"data.store={ucla_store.path}"])
    data = MultiViewDataset(ucla_store, np.arange(0, 1484, 50), build_pipeline_of(loaded, "test"), ["joint"],
                            draws=1, num_persons=1, seed=0)
    x = torch.stack([torch.as_tensor(data[i]["x"]["joint"]) for i in range(len(data))])
    encoder = STGCN(10, layout="nw_ucla20", num_persons=1, base_channels=16, final_channels=256, dropout=0.5,
                    seed=0).eval()
    with torch.no_grad():
        before = encoder.extract_features(x)
    estimate_batch_norm_statistics({"joint": encoder}, [{"joint": x[:15]}, {"joint": x[15:]}])
    with torch.no_grad():
        after = encoder.extract_features(x)
    assert before.norm(dim=1).mean() < 1e-3
    assert after.norm(dim=1).mean() > 1.0
    assert after.std(dim=0).mean() > 0.01  # the clips differ from each other, not only in scale


def test_balanced_label_subsets_are_stratified_and_seeded():
    labels = np.repeat([0, 1, 2, 3], [100, 50, 15, 3])
    np.random.default_rng(0).shuffle(labels)
    ten = balanced_label_subset(labels, 0.1, np.random.default_rng(7))
    # floor(f * n + 1/2) of each class, at least one: 10, 5, 1.5 -> 2, 0.3 -> 1
    assert np.bincount(labels[ten]).tolist() == [10, 5, 2, 1]
    one = balanced_label_subset(labels, 0.01, np.random.default_rng(7))
    assert np.bincount(labels[one]).tolist() == [1, 1, 1, 1]
    assert np.array_equal(ten, balanced_label_subset(labels, 0.1, np.random.default_rng(7)))
    assert not np.array_equal(ten, balanced_label_subset(labels, 0.1, np.random.default_rng(8)))
    assert np.all(np.diff(ten) > 0) and ten.max() < labels.size  # sorted, distinct positions


def test_knn_weighted_vote_by_hand():
    train = np.array([[1.0, 0.0], [0.0, 2.0], [0.8, 0.6]])  # the second is normalised to [0, 1]
    labels = np.array([0, 1, 0])
    scores = knn_scores(train, labels, np.array([[0.6, 0.8]]), num_classes=3, k=2, temperature=1.0)
    # similarities 0.6, 0.8, 0.96: the two nearest are sample 2 (class 0) and sample 1 (class 1)
    w0, w1 = math.exp(0.96), math.exp(0.8)
    assert scores[0].tolist() == pytest.approx([w0 / (w0 + w1), w1 / (w0 + w1), 0.0])
    everyone = knn_scores(train, labels, np.array([[0.6, 0.8]]), num_classes=2, k=50, temperature=0.1)
    w = [math.exp(0.6 / 0.1), math.exp(0.8 / 0.1), math.exp(0.96 / 0.1)]
    assert everyone[0, 0] == pytest.approx((w[0] + w[2]) / sum(w))


def test_views_are_computed_from_the_same_augmented_draw(ucla_store):
    from skelact.data.multiview import MultiViewDataset
    from skelact.data.transforms import Compose, bone_vectors, motion

    pipe = Compose([{"type": "UclaSample", "window_size": 12, "test_mode": True}, {"type": "Shear"}])
    ds = MultiViewDataset(ucla_store, ucla_store.split("cross_view", "train")[:3], pipe,
                          ["joint", "jm", "bone"], draws=2, seed=3)
    item = ds[(2, 1)]
    assert set(item) == {"query", "key", "label", "index"}
    q, k = item["query"], item["key"]
    assert not torch.equal(q["joint"], k["joint"])  # two independent augmentations
    assert torch.allclose(q["joint_motion"], torch.from_numpy(motion(q["joint"].numpy())))
    assert torch.allclose(k["bone"], torch.from_numpy(bone_vectors(k["joint"].numpy(), ucla_store.layout)))
    assert torch.equal(ds[(2, 1)]["query"]["joint"], q["joint"])  # a function of (seed, epoch, sample, draw)
    assert not torch.equal(ds[(3, 1)]["query"]["joint"], q["joint"])


# ---------------------------------------------------------------------------------------------------------------
# end to end, through the skelact command line (skelact.cli.main)


@pytest.fixture(scope="module")
def pretrained(ucla_store, tmp_path_factory) -> Path:
    from skelact.cli import main

    run = tmp_path_factory.mktemp("ssl") / "skeletonclr"
    rc = main(["pretrain", str(REPO / "configs" / "nw_ucla" / "skeletonclr_joint.yaml"), *tiny(ucla_store),
               "epochs=2", f"--run-dir={run}"])
    assert rc == 0
    return run


def test_pretrain_writes_a_run_with_queue_and_key_encoder(pretrained):
    ckpt = torch.load(pretrained / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    assert ckpt["epoch"] == 1
    assert int(state["method.views.joint.queue.count"]) == 2 * 6 * 8  # 2 epochs x 6 steps x batch 8
    assert any(k.startswith("method.views.joint.key_encoder.") for k in state)
    rows = (pretrained / "csv" / "metrics.csv").read_text().splitlines()
    assert "train/loss_joint" in rows[0] and len(rows) == 3


@pytest.mark.parametrize("protocol, extra", [("linear", ["epochs=2"]), ("knn", ["--k=5"]),
                                             ("finetune", ["epochs=1"]),
                                             ("semi", ["epochs=1", "--label-fraction=0.1"])])
def test_every_protocol_writes_metrics(pretrained, tmp_path, protocol, extra):
    from skelact.cli import main

    out = tmp_path / protocol
    assert main(["evaluate", protocol, str(pretrained), "--plot=pca", f"--run-dir={out}", *extra]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"top1", "top5", "mean_class_acc", "epoch", "num_test_samples"} <= set(metrics)
    assert metrics["num_test_samples"] == 30 and metrics["protocol"] == protocol
    assert (out / "features_pca.png").stat().st_size > 0
    assert metrics["epoch"] == {"linear": 2, "knn": 0, "finetune": 1, "semi": 1}[protocol]
    if protocol == "semi":
        assert metrics["num_train_samples"] == 10  # one of ~5 per class in the 48-clip subset
    if protocol in ("linear", "finetune"):
        source = torch.load(pretrained / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        tuned = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        pairs = [(tuned[f"method.encoders.joint.{k[len('method.views.joint.encoder.'):]}"], v)
                 for k, v in source.items() if k.startswith("method.views.joint.encoder.") and ".fc." not in k]
        same = all(torch.equal(a, b) for a, b in pairs)
        assert same == (protocol == "linear")  # frozen weights and BN statistics vs fine-tuned


def test_linear_on_stored_embeddings_trains_as_encoding_every_batch(pretrained, tmp_path):
    """The default linear run encodes each clip once; --no-cache-features encodes every batch. Same data order,
    same frozen encoder: the classifiers and the test scores must agree to float rounding."""
    from skelact.cli import main

    runs = {}
    for name, flag in (("stored", []), ("every_batch", ["--no-cache-features"])):
        out = tmp_path / name
        assert main(["evaluate", "linear", str(pretrained), "--plot=none", f"--run-dir={out}", "epochs=3",
                     *flag]) == 0
        state = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        runs[name] = (state, np.load(out / "scores.npy"), json.loads((out / "metrics.json").read_text()))
    (stored, s_scores, s_metrics), (every, e_scores, e_metrics) = runs["stored"], runs["every_batch"]
    assert s_metrics["cached_features"] is True and e_metrics["cached_features"] is False
    assert stored.keys() == every.keys()  # the whole classifier is saved either way, encoder included
    head = [k for k in stored if k.startswith("method.heads.")]
    assert head and all(torch.allclose(stored[k], every[k], atol=1e-5) for k in head)
    # three epochs of training moved the head away from its initialisation in both runs
    assert not torch.allclose(stored["method.heads.joint.bias"], torch.zeros_like(stored["method.heads.joint.bias"]))
    np.testing.assert_allclose(s_scores, e_scores, atol=1e-4)
    assert s_metrics["top1"] == e_metrics["top1"]


def test_crossclr_resumes_exactly_across_the_phase_switch(ucla_store, tmp_path):
    """1 single-view epoch + 1 cross-view epoch uninterrupted, against 1 epoch then --resume: same weights, key
    encoders and queues."""
    from skelact.cli import main

    config = str(REPO / "configs" / "nw_ucla" / "crossclr_3view.yaml")
    args = [*tiny(ucla_store, "data.max_train_samples=24", "method.skeletonclr.queue_size=16"),
            "method.crossclr.single_view_epochs=1"]
    assert main(["pretrain", config, *args, "epochs=2", f"--run-dir={tmp_path / 'whole'}"]) == 0
    assert main(["pretrain", config, *args, "epochs=1", f"--run-dir={tmp_path / 'split'}"]) == 0
    assert main(["pretrain", "--resume", str(tmp_path / "split"), "epochs=2"]) == 0
    whole = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    split = torch.load(tmp_path / "split" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert whole.keys() == split.keys()
    assert all(torch.equal(whole[k], split[k]) for k in whole), [k for k in whole if not torch.equal(whole[k],
                                                                                                     split[k])]
    assert int(whole["method.views.bone.queue.count"]) == 2 * 3 * 8
    assert "epoch 2: cross-view knowledge mining" in (tmp_path / "whole" / "train.log").read_text()
    # every view of the CrosSCLR encoders evaluated at once
    assert main(["evaluate", "knn", str(tmp_path / "whole"), "--plot=none", f"--run-dir={tmp_path / 'knn'}"]) == 0
    metrics = json.loads((tmp_path / "knn" / "metrics.json").read_text())
    assert metrics["views"] == ["joint", "joint_motion", "bone"]


def test_protocols_take_a_supervised_or_a_random_encoder(pretrained, ucla_store, tmp_path):
    """Any encoder: the backbone of a `skelact train` run, and the pre-training architecture at random init."""
    from skelact.commands.train import train_command
    from skelact.cli import main

    supervised = train_command(REPO / "configs" / "nw_ucla" / "stgcn_joint.yaml",
                               [f"data.store={ucla_store.path}", "model.base_channels=4", "model.num_blocks=3",
                                "data.max_train_samples=48", "data.max_test_samples=30", "data.batch_size=8",
                                "data.num_workers=0", "trainer.accelerator=cpu", "trainer.progress_bar=false",
                                f"data.train_pipeline=[{PREP}]", f"data.test_pipeline=[{PREP}]", "epochs=1",
                                "evaluate.checkpoint=last", "trainer.check_val_every_n_epoch=0"],
                               run_dir=tmp_path / "supervised")
    assert main(["evaluate", "knn", str(supervised), "--plot=none", f"--run-dir={tmp_path / 'sup_knn'}"]) == 0
    sup = json.loads((tmp_path / "sup_knn" / "metrics.json").read_text())
    assert sup["source_method"] == "supervised" and sup["source_epoch"] == 1
    assert main(["evaluate", "knn", str(pretrained), "--init=random", "--plot=none",
                 f"--run-dir={tmp_path / 'random'}"]) == 0
    assert json.loads((tmp_path / "random" / "metrics.json").read_text())["init"] == "random"


def test_a_queue_larger_than_an_epoch_is_refused(ucla_store, tmp_path, capsys):
    from skelact.cli import main

    config = str(REPO / "configs" / "nw_ucla" / "skeletonclr_joint.yaml")
    rc = main(["pretrain", config, *tiny(ucla_store, "method.skeletonclr.queue_size=49"), "epochs=1",
               f"--run-dir={tmp_path / 'big'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "method.skeletonclr.queue_size" in err and "48 keys one epoch" in err


def test_an_unreadable_encoder_checkpoint_is_refused_before_anything_is_written(pretrained, tmp_path, capsys):
    import shutil

    from skelact.cli import main

    broken = tmp_path / "broken"
    shutil.copytree(pretrained, broken)
    ckpt = broken / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:4096])  # a copy cut short
    out = tmp_path / "knn"
    rc = main(["evaluate", "knn", str(broken), "--plot=none", f"--run-dir={out}"])
    err = capsys.readouterr().err
    assert rc == 2 and str(ckpt) in err and "unreadable checkpoint" in err
    assert not out.exists()


def test_a_protocol_run_resumes_to_the_same_classifier(pretrained, tmp_path):
    """linear for 2 epochs uninterrupted, against 1 epoch then `evaluate linear --resume ... epochs=2`."""
    from skelact.cli import main

    whole, split = tmp_path / "whole", tmp_path / "split"
    assert main(["evaluate", "linear", str(pretrained), "--plot=none", f"--run-dir={whole}", "epochs=2"]) == 0
    assert main(["evaluate", "linear", str(pretrained), "--plot=none", f"--run-dir={split}", "epochs=1"]) == 0
    assert main(["evaluate", "linear", "--resume", str(split), "epochs=2"]) == 0
    a, b = (json.loads((run / "metrics.json").read_text()) for run in (whole, split))
    assert b["epoch"] == 2 and a["top1"] == b["top1"]
    wa, wb = (torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"] for run in (whole, split))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
