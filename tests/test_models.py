"""ST-GCN and CTR-GCN backbones: published parameter counts, shapes, FR-Head taps, the fused CTR-GCN layers against
the per-subset / per-branch formulas of the paper and official code, device and determinism, and a tiny model that
fits a batch of real NW-UCLA samples."""

from __future__ import annotations

import io
import json
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from skelact.errors import ConfigError, DataError, SkelactError
from skelact.models import CTRGCN, STGCN, build_backbone
from skelact.models.ctrgcn import load_official_state_dict
from skelact.models.stgcn import convert_official_state_dict as convert_official_stgcn
from skelact.skeleton.graph import build_partition

NTU = dict(layout="ntu25", num_persons=2, num_classes=60, joints=25)
UCLA = dict(layout="nw_ucla20", num_persons=1, num_classes=10, joints=20)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make(cls, ds, **kw):
    return cls(ds["num_classes"], layout=ds["layout"], num_persons=ds["num_persons"], **kw)


# ---------------------------------------------------------------------------------------------- parameter counts

def test_ctrgcn_parameter_counts_equal_the_official_implementation():
    # Uason-Chen/CTR-GCN model/ctrgcn.py Model(num_class, num_point, num_person, graph=..., in_channels=3).
    ntu, ucla = n_params(make(CTRGCN, NTU)), n_params(make(CTRGCN, UCLA))
    print(f"CTR-GCN parameters: NTU-60 {ntu:,}  NW-UCLA {ucla:,}")
    assert ntu == 1_446_672
    assert ucla == 1_426_892


def stgcn_count_by_hand(c_in: int, joints: int, subsets: int, classes: int, widths, strides) -> int:
    """ST-GCN's parameters from its description (Yan et al. 2018; yysijie/st-gcn net/st_gcn.py):

    data_bn                      2 * V * C                  (weight, bias per joint and coordinate)
    per block (in -> out):
      graph conv (1x1 to K*out)  in * K * out + K * out
      BN, 9x1 conv, BN           2 * out + 9 * out * out + out + 2 * out
      residual (not block 1; only if in != out or stride 2): 1x1 conv + BN   in * out + out + 2 * out
      edge importance            K * V * V
    classifier                   C_last * classes + classes
    """
    total = 2 * joints * c_in
    prev = c_in
    for i, (out, stride) in enumerate(zip(widths, strides)):
        total += prev * subsets * out + subsets * out
        total += 2 * out + 9 * out * out + out + 2 * out
        if i > 0 and (prev != out or stride != 1):
            total += prev * out + out + 2 * out
        total += subsets * joints * joints
        prev = out
    return total + prev * classes + classes


def test_stgcn_parameter_count_equals_the_hand_count():
    widths = [64, 64, 64, 64, 128, 128, 128, 256, 256, 256]
    strides = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    # NTU-60, spatial partition (K=3), V=25, C=3:
    #   data_bn 150; blocks 37,952 + 3 * 49,664 + 181,632 + 2 * 197,632 + 723,712 + 2 * 788,480 (edge importance
    #   excluded) = 3,064,512; edge importance 10 * 3 * 625 = 18,750; classifier 256 * 60 + 60 = 15,420.
    assert stgcn_count_by_hand(3, 25, 3, 60, widths, strides) == 150 + 3_064_512 + 18_750 + 15_420 == 3_098_832
    model = make(STGCN, NTU)
    print(f"ST-GCN parameters: NTU-60 {n_params(model):,}")
    assert n_params(model) == 3_098_832
    # CrosSCLR's quarter-width encoder (hidden_channels 16, hidden_dim 256) on NW-UCLA.
    quarter = make(STGCN, UCLA, base_channels=16, final_channels=256)
    assert n_params(quarter) == stgcn_count_by_hand(3, 20, 3, 10, [16] * 4 + [32] * 3 + [64, 64, 256], strides)


# ------------------------------------------------------------------------------------------ shapes and taps

@pytest.mark.parametrize("cls", [STGCN, CTRGCN])
@pytest.mark.parametrize("ds", [NTU, UCLA], ids=["ntu60", "nw_ucla"])
def test_full_size_forward_shapes_and_fr_head_taps(cls, ds):
    torch.manual_seed(0)
    model = make(cls, ds).eval()
    n, m, t, v = 2, ds["num_persons"], 16, ds["joints"]
    x = torch.randn(n, m, t, v, 3)
    with torch.no_grad():
        logits, feats = model(x, return_features=True)
        embedding = model.extract_features(x)
        plain = model(x)
    assert logits.shape == (n, ds["num_classes"])
    # after blocks 1, 5, 8, 10: widths 64, 128, 256, 256; frames halved at blocks 5 and 8
    assert [tuple(f.shape) for f in feats] == [(n * m, 64, 16, v), (n * m, 128, 8, v), (n * m, 256, 4, v),
                                               (n * m, 256, 4, v)]
    assert embedding.shape == (n, 256) and model.out_channels == 256
    torch.testing.assert_close(plain, logits)
    # the embedding is the per-sample mean of the last tap over frames, joints and persons
    torch.testing.assert_close(embedding, feats[-1].mean(dim=(2, 3)).view(n, m, 256).mean(1))
    torch.testing.assert_close(model.fc(embedding), logits)


def test_feature_blocks_are_configurable_and_validated():
    model = make(CTRGCN, UCLA, base_channels=8, feature_blocks=[2, 10]).eval()
    _, feats = model(torch.randn(1, 1, 8, 20, 3), return_features=True)
    assert [f.shape[1] for f in feats] == [8, 32]
    with pytest.raises(ConfigError) as err:
        make(STGCN, UCLA, num_blocks=4, feature_blocks=[1, 5])
    assert err.value.field == "feature_blocks"
    assert make(STGCN, UCLA, num_blocks=4, base_channels=8).feature_blocks == (1,)


# ------------------------------------------------------------------------------------------------ the graph

@pytest.mark.parametrize("cls,strategy", [(STGCN, "spatial"), (CTRGCN, "inward_outward")])
@pytest.mark.parametrize("ds", [NTU, UCLA], ids=["ntu60", "nw_ucla"])
def test_partition_buffer_is_build_partition_output(cls, strategy, ds):
    model = make(cls, ds, base_channels=8)
    expected = build_partition(ds["layout"], strategy)
    assert "partition" in dict(model.named_buffers())
    np.testing.assert_array_equal(model.partition.numpy(), expected)
    from_array = cls(ds["num_classes"], expected, num_persons=ds["num_persons"], base_channels=8)
    np.testing.assert_array_equal(from_array.partition.numpy(), expected)
    if cls is CTRGCN:
        for block in model.blocks:  # the learnable shared topology PA starts as the partition
            np.testing.assert_array_equal(block.gcn.topology.detach().numpy(), expected)
    else:
        assert all(torch.equal(w, torch.ones_like(w)) for w in model.edge_importance)


def test_ctrgcn_initialisation_follows_the_reference():
    model = make(CTRGCN, NTU)
    for block in model.blocks:
        assert block.gcn.alpha.item() == 0.0
        assert torch.all(block.gcn.bn.weight == 1e-6)
        assert block.gcn.relation_weight.shape[2] == (8 if block.gcn.in_channels == 3 else block.gcn.in_channels // 8)
    # the classifier weight is N(0, sqrt(2 / num_classes)): std sqrt(2/60) = 0.183 over 15,360 draws
    assert abs(model.fc.weight.std().item() - (2 / 60) ** 0.5) < 0.01
    fixed = make(CTRGCN, UCLA, adaptive=False)
    assert n_params(fixed) == 1_426_892 - 10 * 3 * 20 * 20  # no learnable topology


# -------------------------------------------------- fused layers equal the published per-subset / per-branch math

def per_subset_ctrgc(unit, x):
    """CTR-GC as written in the paper and official ``unit_gcn``: per subset, convolve every frame, average the
    query/key over time, refine ``alpha * conv4(tanh(q_u - k_v)) + A``, aggregate, then sum the subsets."""
    y = 0
    for k in range(unit.num_subsets):
        def conv(w, b, inp):
            return F.conv2d(inp, w[:, :, None, None], b)
        q = conv(unit.relation_weight[0, k], unit.relation_bias[0, k], x).mean(-2)
        kk = conv(unit.relation_weight[1, k], unit.relation_bias[1, k], x).mean(-2)
        value = conv(unit.value_weight[k], unit.value_bias[k], x)
        rel = torch.tanh(q.unsqueeze(-1) - kk.unsqueeze(-2))
        topo = conv(unit.refine_weight[k], unit.refine_bias[k], rel) * unit.alpha + unit.topology[k]
        y = y + torch.einsum("ncuv,nctv->nctu", topo, value)
    y = unit.bn(y)
    return F.relu(y + (x if unit.down is None else unit.down(x)))


def per_branch_temporal(tcn, x, training):
    """The official MultiScale_TemporalConv: four branches with their own 1x1 conv and BNs, concatenated."""
    bc, s, nd = tcn.branch_channels, tcn.stride, len(tcn.temporal)

    def bn(h, mod, i):
        sl = slice(i * bc, (i + 1) * bc)
        return F.batch_norm(h, mod.running_mean[sl].clone(), mod.running_var[sl].clone(), mod.weight[sl],
                            mod.bias[sl], training, 0.1, mod.eps)

    def entry(i, stride=1):
        sl = slice(i * bc, (i + 1) * bc)
        return F.conv2d(x, tcn.pointwise.weight[sl], tcn.pointwise.bias[sl], stride=(stride, 1))

    outs = [bn(conv(F.relu(bn(entry(i), tcn.entry_bn, i))), tcn.exit_bn, i) for i, conv in enumerate(tcn.temporal)]
    pooled = F.max_pool2d(F.relu(bn(entry(nd), tcn.entry_bn, nd)), (3, 1), (s, 1), (1, 0))
    outs.append(bn(pooled, tcn.exit_bn, nd))
    outs.append(bn(entry(nd + 1, s), tcn.exit_bn, nd + 1))
    return torch.cat(outs, 1)


def randomise_(module, gen):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=gen, dtype=b.dtype) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen, dtype=b.dtype))


@pytest.mark.parametrize("block_index", [0, 1, 4], ids=["3->16", "16->16", "16->32,stride2"])
def test_fused_ctrgcn_layers_equal_the_per_subset_and_per_branch_formulas(block_index):
    gen = torch.Generator().manual_seed(block_index)
    model = make(CTRGCN, UCLA, base_channels=16, seed=3).double()
    block = model.blocks[block_index]
    randomise_(block, gen)
    c_in = block.gcn.in_channels
    x = torch.randn(3, c_in, 12, 20, generator=gen, dtype=torch.float64)
    for training in (False, True):
        block.train(training)
        torch.testing.assert_close(block.gcn(x), per_subset_ctrgc(block.gcn, x), rtol=1e-10, atol=1e-10)
        # and the gradients: alpha, the refinement weights and the input get theirs through other products
        probe = torch.randn(3, block.gcn.out_channels, 12, 20, generator=gen, dtype=torch.float64)
        inputs = [x.requires_grad_(), *block.gcn.parameters()]
        fused = torch.autograd.grad((block.gcn(x) * probe).sum(), inputs)
        reference = torch.autograd.grad((per_subset_ctrgc(block.gcn, x) * probe).sum(), inputs)
        for got, want in zip(fused, reference):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
        x = x.detach()
        h = torch.randn(3, block.gcn.out_channels, 12, 20, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(block.tcn(h), per_branch_temporal(block.tcn, h, training), rtol=1e-10,
                                   atol=1e-10)


def test_stgcn_block_spreads_an_impulse_to_one_hop_neighbours_only():
    # Eval mode with zero biases and fresh running statistics makes every non-graph layer map zero to zero, so the
    # first block's output at a joint is non-zero exactly where the partition connects it to the impulse's joint.
    model = make(STGCN, UCLA, base_channels=4, seed=0).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
        x = torch.zeros(1, 3, 5, 20)
        x[0, :, 2, 3] = 1.0  # head, middle frame
        y = model._block(0, x)
    reached = set(np.flatnonzero(y.abs().sum(dim=(0, 1, 2)).numpy()))
    assert reached == set(np.flatnonzero(model.partition[:, 3, :].sum(0).numpy())) == {2, 3}  # head, its neck


# ------------------------------------------------------------------------------------- official checkpoints

def to_official_ctrgcn(model: CTRGCN) -> dict:
    """Our state dict in the official module names (l1..l10, gcn1.convs.k.conv1..4, tcn1.branches...)."""
    sd, out = model.state_dict(), {}
    bn = ("weight", "bias", "running_mean", "running_var")
    for i, block in enumerate(model.blocks):
        src, dst = f"blocks.{i}.", f"l{i + 1}."
        for k in range(block.gcn.num_subsets):
            for j, (name, idx) in enumerate((("relation", 0), ("relation", 1), ("value", None), ("refine", None))):
                w, b = sd[f"{src}gcn.{name}_weight"], sd[f"{src}gcn.{name}_bias"]
                w, b = (w[idx, k], b[idx, k]) if idx is not None else (w[k], b[k])
                out[f"{dst}gcn1.convs.{k}.conv{j + 1}.weight"] = w[:, :, None, None]
                out[f"{dst}gcn1.convs.{k}.conv{j + 1}.bias"] = b
        out[f"{dst}gcn1.PA"], out[f"{dst}gcn1.alpha"] = sd[f"{src}gcn.topology"], sd[f"{src}gcn.alpha"]
        for key in bn + ("num_batches_tracked",):
            out[f"{dst}gcn1.bn.{key}"] = sd[f"{src}gcn.bn.{key}"]
            if block.gcn.down is not None:
                out[f"{dst}gcn1.down.1.{key}"] = sd[f"{src}gcn.down.1.{key}"]
            if block.residual is not None:
                out[f"{dst}residual.bn.{key}"] = sd[f"{src}residual.1.{key}"]
        for key in ("weight", "bias"):
            if block.gcn.down is not None:
                out[f"{dst}gcn1.down.0.{key}"] = sd[f"{src}gcn.down.0.{key}"]
            if block.residual is not None:
                out[f"{dst}residual.conv.{key}"] = sd[f"{src}residual.0.{key}"]
        bc, t = block.tcn.branch_channels, f"{dst}tcn1.branches."
        entry_names = [f"{t}0.1", f"{t}1.1", f"{t}2.1"]
        exit_names = [f"{t}0.3.bn", f"{t}1.3.bn", f"{t}2.4", f"{t}3.1"]
        for b in range(4):
            for key in ("weight", "bias"):
                out[f"{t}{b}.0.{key}"] = sd[f"{src}tcn.pointwise.{key}"][b * bc:(b + 1) * bc]
        for b in range(2):
            for key in ("weight", "bias"):
                out[f"{t}{b}.3.conv.{key}"] = sd[f"{src}tcn.temporal.{b}.{key}"]
        for names, mod in ((entry_names, "entry_bn"), (exit_names, "exit_bn")):
            for b, name in enumerate(names):
                for key in bn:
                    out[f"{name}.{key}"] = sd[f"{src}tcn.{mod}.{key}"][b * bc:(b + 1) * bc]
                out[f"{name}.num_batches_tracked"] = sd[f"{src}tcn.{mod}.num_batches_tracked"]
    for key in bn + ("num_batches_tracked",):
        out[f"data_bn.{key}"] = sd[f"data_bn.bn.{key}"]
    out["fc.weight"], out["fc.bias"] = sd["fc.weight"], sd["fc.bias"]
    return {"module." + k: v for k, v in out.items()}  # as saved from DataParallel


def test_official_ctrgcn_checkpoint_names_load_onto_the_fused_model():
    source = make(CTRGCN, UCLA, base_channels=8, seed=1)
    randomise_(source, torch.Generator().manual_seed(0))
    official = to_official_ctrgcn(source)
    assert "module.l5.tcn1.branches.2.4.running_var" in official  # the BN after the max-pool branch
    target = make(CTRGCN, UCLA, base_channels=8, seed=2)
    load_official_state_dict(target, official)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    del official["module.l3.gcn1.alpha"]
    with pytest.raises((SkelactError, KeyError)):
        load_official_state_dict(target, official)


def test_official_stgcn_names_map_onto_ours():
    model = make(STGCN, UCLA, base_channels=8, seed=0)
    official = {"A": model.partition}  # yysijie/st-gcn names: st_gcn_networks.i.gcn.conv, fcn (a 1x1 conv)
    for key, value in model.state_dict().items():
        if key == "partition":
            continue
        key = re.sub(r"^blocks\.(\d+)\.gcn\.", r"st_gcn_networks.\1.gcn.conv.", key)
        key = key.replace("blocks.", "st_gcn_networks.").replace("data_bn.bn.", "data_bn.")
        if key.startswith("fc."):
            key, value = "fcn." + key[3:], (value[:, :, None, None] if key == "fc.weight" else value)
        official["module." + key] = value
    converted = convert_official_stgcn(official)
    assert set(converted) == set(model.state_dict())
    fresh = make(STGCN, UCLA, base_channels=8, seed=1)
    fresh.load_state_dict(converted, strict=True)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ConfigError):
        convert_official_stgcn({"st_gcn_networks.0.unknown": torch.zeros(1)})


# ---------------------------------------------------------------------------- device, dtype, determinism, errors

@pytest.mark.parametrize("cls", [STGCN, CTRGCN])
def test_models_assume_no_device_and_no_dtype(cls):
    model = make(cls, UCLA, base_channels=8)
    assert {t.device.type for t in list(model.parameters()) + list(model.buffers())} == {"cpu"}
    # Everything follows .to(): on the meta device nothing is computed, so any tensor created on a fixed device
    # inside forward would fail to combine with the inputs.
    meta = make(cls, UCLA, base_channels=8).to("meta")
    logits, feats = meta(torch.empty(2, 1, 8, 20, 3, device="meta"), return_features=True)
    assert logits.device.type == "meta" and logits.shape == (2, 10)
    double = model.double().eval()
    assert double(torch.randn(2, 1, 8, 20, 3, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("cls", [STGCN, CTRGCN])
def test_seeded_init_and_eval_mode_are_deterministic(cls):
    a, b = make(cls, UCLA, base_channels=8, seed=7), make(cls, UCLA, base_channels=8, seed=7)
    c = make(cls, UCLA, base_channels=8, seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))
    a.eval()
    x = torch.randn(3, 1, 12, 20, 3)
    with torch.no_grad():
        first, second = a(x), a(x)
    assert torch.equal(first, second)
    # eval mode keeps samples independent: a sample's logits do not depend on the rest of the batch. Up to float32
    # rounding: another batch size takes other GEMM blockings (and other thread counts other summation orders), and
    # an untrained model's logits reach ~10, where float32 spacing is already ~1e-6; so the bound is relative.
    with torch.no_grad():
        torch.testing.assert_close(a(x[:1]), first[:1], rtol=1e-4, atol=1e-4 * float(first.abs().max()))


def test_bad_arguments_and_inputs_raise_skelact_errors():
    model = make(CTRGCN, UCLA, base_channels=8)
    with pytest.raises(DataError) as err:
        model(torch.randn(2, 1, 8, 25, 3))  # NTU joints into a NW-UCLA model
    assert err.value.field == "input" and "V=20" in str(err.value)
    with pytest.raises(DataError):
        model(torch.randn(2, 8, 20, 3))
    with pytest.raises(DataError):
        make(CTRGCN, NTU, base_channels=8)(torch.randn(2, 1, 8, 25, 3))  # per-person data BN needs M=2
    with pytest.raises(ConfigError) as err:
        CTRGCN(10, np.zeros((3, 20, 20)), layout="nw_ucla20")
    assert err.value.field == "partition"
    with pytest.raises(ConfigError):
        CTRGCN(10)
    with pytest.raises(ConfigError) as err:
        CTRGCN(10, np.zeros((20, 20)))
    assert err.value.field == "partition"
    with pytest.raises(ConfigError) as err:
        make(CTRGCN, UCLA, base_channels=6)  # four temporal branches need a multiple of 4
    assert err.value.field == "base_channels"
    with pytest.raises(ConfigError) as err:
        make(STGCN, UCLA, data_bn="batch")
    assert err.value.field == "data_bn"
    with pytest.raises(SkelactError):
        make(STGCN, UCLA, strategy="nope")
    with pytest.raises(ConfigError) as err:
        build_backbone("resnet", 10)
    assert err.value.field == "model"
    assert isinstance(build_backbone("stgcn", 10, layout="nw_ucla20", num_persons=1, base_channels=8), STGCN)


# ------------------------------------------------------------------------------------------ real-data training

def nw_ucla_batch(shared_data, count=16, frames=32):
    """``count`` NW-UCLA samples (seeded pick), resampled to ``frames`` frames, centred on the mean spine."""
    files = sorted((shared_data / "nw_ucla" / "all_sqe").glob("*.json"))
    assert len(files) == 1484
    picks = np.sort(np.random.default_rng(0).choice(len(files), count, replace=False))
    xs, ys = [], []
    for i in picks:
        record = json.loads(files[i].read_text())
        sk = np.asarray(record["skeletons"], dtype=np.float32)  # T x 20 x 3
        sk = sk[np.linspace(0, len(sk) - 1, frames).round().astype(int)]
        xs.append((sk - sk[:, 1].mean(axis=0))[None])
        ys.append(record["label"] - 1)
    return torch.from_numpy(np.stack(xs)), torch.tensor(ys)


@pytest.mark.parametrize("cls", [CTRGCN, STGCN])
def test_tiny_model_fits_a_real_nw_ucla_batch(shared_data, cls):
    x, y = nw_ucla_batch(shared_data)
    assert x.shape == (16, 1, 32, 20, 3) and len(set(y.tolist())) >= 8
    torch.manual_seed(0)
    model = make(cls, UCLA, base_channels=8, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    accuracy = 0.0
    for step in range(150):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step % 5 == 4:
            model.eval()
            with torch.no_grad():
                accuracy = (model(x).argmax(1) == y).float().mean().item()
            if accuracy == 1.0:
                break
    assert accuracy == 1.0, f"{cls.__name__} reached {accuracy:.2f} train accuracy"


# ------------------------------------------------------------------------------------------------------ export

@pytest.mark.parametrize("cls", [STGCN, CTRGCN])
def test_onnx_export_matches_torch(cls):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = make(cls, UCLA, base_channels=8, seed=0).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 1, 16, 20, 3),), buffer, input_names=["x"],
                          output_names=["logits"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "batch", 2: "frames"}, "logits": {0: "batch"}})
    session = ort.InferenceSession(buffer.getvalue())
    x = torch.randn(3, 1, 24, 20, 3)  # other batch size and length than traced
    (onnx_logits,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(onnx_logits, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
