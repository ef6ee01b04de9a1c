"""SkeletonMAE and STRL (issue 21): body-region masking, the re-weighted cosine loss, the GIN layer, the decoder's
input, STRL's SM block, the encoder's way from a pre-training run into STRL, and a tiny pre-training on real
NW-UCLA clips."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from skelact.errors import ConfigError
from skelact.methods.body_masking import BodyRegionMasker
from skelact.methods.skeletonmae import (MaskedGraphAutoencoder, SkeletonMAEMethod, reweighted_cosine_loss)
from skelact.models.gin import GINLayer
from skelact.models.skeleton_gin import SkeletonGIN
from skelact.models.strl import STRL, SpatialModelling, multiscale_temporal_pool
from skelact.skeleton.layout import Layout, get_layout

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def masker_of(layout: Layout, **kwargs) -> BodyRegionMasker:
    return BodyRegionMasker(dict(layout.parts), layout.num_joints, layout_name=layout.name, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# masking


def test_named_regions_hide_exactly_their_joints():
    layout = get_layout("nw_ucla20")
    mask = masker_of(layout, regions=["right_arm", "right_leg"]).draw(3, np.random.default_rng(0))
    # nw_ucla20: right_elbow 9, right_wrist 10, right_hand 11, right_knee 17, right_ankle 18, right_foot 19
    assert [sorted(np.flatnonzero(row)) for row in mask] == [[9, 10, 11, 17, 18, 19]] * 3


def test_drawn_regions_are_whole_parts_of_a_user_layout():
    layout = Layout.from_dict({"name": "stick5", "joints": ["a", "b", "c", "d", "e"],
                               "bones": [["b", "a"], ["c", "b"], ["d", "c"], ["e", "d"]], "center": "a",
                               "parts": {"top": ["a", "b"], "middle": ["c"], "bottom": ["d", "e"]}})
    masker = masker_of(layout, num_regions=2)
    parts = [{0, 1}, {2}, {3, 4}]
    seen = set()
    for row in masker.draw(200, np.random.default_rng(1)):
        hidden = set(np.flatnonzero(row).tolist())
        chosen = [p for p in parts if p <= hidden]
        assert len(chosen) == 2 and set().union(*chosen) == hidden  # two whole parts, nothing else
        seen.add(frozenset(hidden))
    assert len(seen) == 3  # every pair of the three parts occurs
    with pytest.raises(ConfigError, match="no body part 'right_arm'"):
        masker_of(layout, regions=["right_arm"])


def test_random_masking_hides_as_many_joints_as_the_regions():
    layout = get_layout("penn13")
    masker = masker_of(layout, strategy="random", regions=["right_arm", "right_leg"])
    masks = masker.draw(300, np.random.default_rng(2))
    assert (masks.sum(axis=1) == 4).all()  # right elbow, wrist, knee, ankle of penn13
    assert masks.any(axis=0).all()  # not the same four joints every time: all 13 occur


def test_clip_masks_hold_for_every_frame_and_person_frame_masks_change():
    masker = masker_of(get_layout("penn13"), strategy="random", regions=["right_arm"])
    clip = masker.draw_for_batch(2, 2, 5, np.random.default_rng(3), "clip", True)
    assert clip.shape == (2, 2, 5, 13) and (clip == clip[:, :1, :1]).all()
    frame = masker.draw_for_batch(1, 1, 50, np.random.default_rng(3), "frame", True)
    assert len({tuple(r) for r in frame[0, 0]}) > 1 and (frame.sum(-1) == 2).all()


# ----------------------------------------------------------------------------------------------------------------
# the loss


def test_loss_by_hand_and_blind_to_unmasked_joints():
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [3.0, 4.0]]])  # one graph, 4 joints
    z = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, True, False]])
    # cos = 1, 0, -1 on the three masked joints, |V_m| = 3: ((1 - cos) / 3)^2 summed = (0 + 1 + 4) / 9
    assert reweighted_cosine_loss(x, z, mask, beta=2.0).item() == pytest.approx(5 / 9)
    assert reweighted_cosine_loss(x, z, mask, beta=1.0).item() == pytest.approx(3 / 3)
    # a second graph with one masked joint at cos 0: (1/1)^2 = 1; the batch is the mean over graphs
    x2 = torch.cat([x, x]); z2 = torch.cat([z, z]); mask2 = torch.tensor([[True, True, True, False],
                                                                         [False, True, False, False]])
    assert reweighted_cosine_loss(x2, z2, mask2).item() == pytest.approx((5 / 9 + 1) / 2)
    z_other = z.clone()
    z_other[0, 3] = torch.tensor([-5.0, 2.0])  # the unmasked joint's reconstruction changes
    assert reweighted_cosine_loss(x, z_other, mask).item() == pytest.approx(5 / 9)
    zg = z.clone().requires_grad_(True)
    reweighted_cosine_loss(x, zg, mask).backward()
    assert zg.grad[0, 3].abs().sum() == 0 and zg.grad[0, 1].abs().sum() > 0


def tiny_mae(layout="nw_ucla20", regions=("right_arm", "right_leg"), **settings) -> SkeletonMAEMethod:
    torch.manual_seed(0)
    encoder = SkeletonGIN(num_classes=10, layout=layout, in_channels=3, hidden_channels=8)
    lay = get_layout(layout)
    return SkeletonMAEMethod({"joint": MaskedGraphAutoencoder(encoder)}, masker_of(lay, regions=list(regions)),
                             **settings)


def test_bone_target_compares_each_masked_joint_minus_its_parent_and_skips_the_root():
    """``target: bones`` (ours): the reconstruction of a masked joint is compared with the joint minus its parent
    in the layout's tree; the centre has no bone and is no target. Checked with a fixed reconstruction against a
    loop over the layout's parents, on the right arm + leg and on the torso (which holds the centre)."""
    lay = get_layout("nw_ucla20")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 3, 20, 3, generator=gen)
    z = torch.randn(1, 1, 3, 20, 3, generator=gen)
    for regions in (["right_arm", "right_leg"], ["torso"]):
        method = tiny_mae(regions=regions, target="bones", parents=lay.parents)
        method.views["joint"].forward = lambda x_, mask_: z  # the reconstruction is fixed: only the target acts
        hidden = [v for part in regions for v in dict(lay.parts)[part] if v != lay.center]
        expected = 0.0
        for t in range(3):
            cos = [F.cosine_similarity(x[0, 0, t, v] - x[0, 0, t, lay.parents[v]], z[0, 0, t, v], dim=0)
                   for v in hidden]
            expected += sum(((1 - c) / len(hidden)) ** 2 for c in cos) / 3
        loss, _, _ = method.training_step({"x": {"joint": x}})
        assert loss.item() == pytest.approx(float(expected), rel=1e-5), regions
        # moving the whole body moves no bone; the coordinates' target would change
        shifted, _, _ = method.training_step({"x": {"joint": x + torch.tensor([5.0, -2.0, 1.0])}})
        assert shifted.item() == pytest.approx(loss.item(), rel=1e-5)
    coordinates = tiny_mae(regions=["right_arm"])
    coordinates.views["joint"].forward = lambda x_, mask_: z
    assert coordinates.training_step({"x": {"joint": x + 5.0}})[0].item() != pytest.approx(
        coordinates.training_step({"x": {"joint": x}})[0].item(), rel=1e-3)


# ----------------------------------------------------------------------------------------------------------------
# GIN, decoder, STRL


def test_gin_layer_by_hand():
    layer = GINLayer(2, 1, mlp_ratio=1, eps=0.5)
    with torch.no_grad():  # MLP: Linear(2, 1) identity-like sum, ReLU, Linear(1, 1) times 2
        layer.mlp[0].weight.copy_(torch.tensor([[1.0, 1.0]])); layer.mlp[0].bias.zero_()
        layer.mlp[2].weight.fill_(2.0); layer.mlp[2].bias.fill_(-1.0)
    a = torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float32)  # path 0 - 1 - 2
    h = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]]])
    # (1 + 0.5) h_v + neighbours: v0: 1.5*(1,0) + (0,2) = (1.5, 2); v1: 1.5*(0,2) + (1,0)+(3,1) = (4, 4);
    # v2: 1.5*(3,1) + (0,2) = (4.5, 3.5); then 2 * relu(sum) - 1
    expected = torch.tensor([[[2 * 3.5 - 1], [2 * 8.0 - 1], [2 * 8.0 - 1]]])
    assert torch.allclose(layer(h, a), expected)




def test_decoder_sees_only_the_encoder_output():
    view = tiny_mae().views["joint"]
    x = torch.randn(2, 1, 4, 20, 3)
    mask = torch.zeros(2, 1, 4, 20, dtype=torch.bool)
    mask[..., [9, 10, 11]] = True
    seen = []
    view.decoder.register_forward_hook(lambda module, args, out: seen.append(args))
    out = view(x, mask)
    (h, adjacency), = seen
    assert torch.equal(h, view.encode_masked(x, mask)) and torch.equal(adjacency, view.encoder.encoder.adjacency)
    assert (h[mask] == 0).all()  # re-masked: the hidden joints reach the decoder as zeros
    x_changed = x.clone()
    x_changed[mask] = 100.0  # the hidden joints' coordinates never reach the decoder
    assert torch.allclose(view(x_changed, mask), out)


@pytest.mark.parametrize("remask", [True, False])
def test_remask_leaves_the_far_end_of_a_masked_limb_nothing_to_reconstruct_from(remask):
    """With whole-region masks and a one-layer decoder, re-masking zeroes every input the decoder has for the right
    wrist (its one neighbour, the elbow, is hidden too), so its reconstruction is one constant for every clip; the
    elbow's still comes from the visible shoulder. Without re-masking the wrist's comes from the encoder's output
    there, which has seen the shoulder two hops away."""
    torch.manual_seed(0)
    encoder = SkeletonGIN(num_classes=2, layout="penn13", in_channels=2, hidden_channels=8)
    view = MaskedGraphAutoencoder(encoder, remask=remask)
    x = torch.randn(6, 13, 2)
    mask = torch.zeros(6, 13, dtype=torch.bool)
    mask[:, [3, 5, 9, 11]] = True  # penn13's right arm (elbow 3, wrist 5) and right leg (knee 9, ankle 11)
    z = view(x, mask)

    def same_for_every_clip(joint: int) -> bool:
        return torch.allclose(z[:, joint], z[:1, joint].expand(6, -1), atol=1e-6)

    assert same_for_every_clip(5) == same_for_every_clip(11) == remask
    assert not same_for_every_clip(3) and not same_for_every_clip(9)


def test_spatial_modelling_block_against_its_formula():
    torch.manual_seed(1)
    encoder = SkeletonGIN(num_classes=2, layout="penn13", in_channels=2, hidden_channels=4).encoder
    block = SpatialModelling(4)
    h = torch.randn(3, 13, 4)
    e = encoder.encode(h)
    pooled = e.sum(dim=1)  # sum over joints
    expected = torch.relu((h + (pooled @ block.projection.weight.T + block.projection.bias)[:, None, :])
                          @ block.weight.weight.T + block.weight.bias)
    assert torch.allclose(block(h, encoder), expected, atol=1e-6)
    # with context_norm the pooled context is layer-normalised (mean 0, variance 1 over D, then LN's affine) first
    normed = SpatialModelling(4, context_norm=True)  # a fresh layer norm: weight 1, bias 0
    centred = pooled - pooled.mean(dim=1, keepdim=True)
    standardised = centred / torch.sqrt(centred.pow(2).mean(dim=1, keepdim=True) + 1e-5)
    expected = torch.relu((h + (standardised @ normed.projection.weight.T + normed.projection.bias)[:, None, :])
                          @ normed.weight.weight.T + normed.weight.bias)
    assert torch.allclose(normed(h, encoder), expected, atol=1e-5)
    # multi-scale pooling of T = 4 frames at scales 1, 2: whole clip, then frames {0, 1} and {2, 3}
    f = torch.arange(4.0)[None, :, None, None].expand(1, 4, 2, 1)
    assert multiscale_temporal_pool(f, (1, 2)).flatten().tolist() == [1.5, 0.5, 2.5]


def test_context_norm_makes_an_sm_block_indifferent_to_the_encoders_output_scale():
    """A pre-trained encoder's features are many times a fresh one's (the cosine loss leaves their scale free);
    with ``context_norm`` an SM block's output does not change when the encoder's output is scaled, without it it
    does."""
    torch.manual_seed(2)
    encoder = SkeletonGIN(num_classes=2, layout="penn13", in_channels=2, hidden_channels=8).encoder
    h = torch.randn(3, 13, 8)
    scaled = copy.deepcopy(encoder)
    with torch.no_grad():  # the last layer's output x 12 (ReLU commutes with a positive factor)
        scaled.layers[-1].mlp[-1].weight.mul_(12.0)
        scaled.layers[-1].mlp[-1].bias.mul_(12.0)
    assert torch.allclose(scaled.encode(h), 12.0 * encoder.encode(h), atol=1e-5)
    for context_norm in (True, False):
        block = SpatialModelling(8, context_norm=context_norm)
        same = torch.allclose(block(h, scaled), block(h, encoder), atol=1e-4)
        assert same == context_norm


def test_strl_blocks_share_one_encoder_and_take_a_pretrained_one_unchanged():
    from skelact.engine.initialise import load_by_prefix
    from skelact.methods.supervised import SupervisedMethod

    mae = tiny_mae()
    with torch.no_grad():
        for p in mae.parameters():
            p.add_(torch.randn_like(p))  # weights no fresh model has
    strl = SupervisedMethod(STRL(num_classes=10, layout="nw_ucla20", in_channels=3, hidden_channels=8,
                                 max_frames=16))
    assert len([m for m in strl.modules() if m.__class__.__name__ == "GraphEncoder"]) == 1
    init = yaml.safe_load((REPO / "configs" / "_base_" / "methods" / "strl.yaml").read_text())["init"]
    source = mae.state_dict()
    count = load_by_prefix(strl, source, init["source_prefix"], init["target_prefix"])
    taken = {k[len(init["source_prefix"]):]: v for k, v in source.items() if k.startswith(init["source_prefix"])}
    mine = strl.model.encoder.state_dict()
    assert count == len(taken) == len(mine) and all(torch.equal(mine[k], v) for k, v in taken.items())
    assert strl(torch.randn(2, 1, 16, 20, 3)).shape == (2, 10)


def test_an_encoder_of_xy_moves_between_layouts():
    """The adjacency belongs to the layout, not the weights: an NW-UCLA (x, y) encoder loads into Penn Action's."""
    ucla = SkeletonGIN(num_classes=10, layout="nw_ucla20", in_channels=2)
    penn = STRL(num_classes=15, layout="penn13", in_channels=2)
    penn.encoder.load_state_dict(ucla.encoder.state_dict())
    assert penn.encoder.adjacency.shape == (13, 13)


# ----------------------------------------------------------------------------------------------------------------
# real clips


def test_a_tiny_pretraining_reduces_the_loss_on_real_nw_ucla_clips(shared_data):
    from skelact.data.sources.nw_ucla import NWUCLASource
    from skelact.data.transforms import Compose, sample_from_sequence

    source = NWUCLASource(shared_data / "nw_ucla")
    pipeline = Compose([{"type": "CenterOnJoint", "joint": 1, "frame": "first"}, {"type": "MinMaxNormalize"},
                        {"type": "UclaSample", "window_size": 16, "test_mode": True}])
    clips = []
    for item in source.items()[::100][:12]:
        seq = source.read(item)
        sample = pipeline(sample_from_sequence(seq), np.random.default_rng(0))
        clips.append(torch.from_numpy(np.ascontiguousarray(sample["keypoints"][:1], dtype=np.float32)))
    x = torch.stack(clips)  # [12, 1, 16, 20, 3]
    method = tiny_mae()
    optimiser = torch.optim.AdamW(method.parameters(), lr=3e-3)

    def loss_at(step: int) -> float:  # the same masks each time: compare like with like
        with torch.no_grad():
            method.step.fill_(step)
            return float(method.training_step({"x": {"joint": x}})[0])

    before = loss_at(0)
    for _ in range(40):
        loss, _, _ = method.training_step({"x": {"joint": x}})
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    after = loss_at(0)
    assert after < 0.7 * before, (before, after)  # measured: 0.291 -> 0.154


def test_temporal_modules_let_frames_see_their_neighbours_and_nothing_else_changes():
    """A temporal module mixes a frame with its neighbours up to 4 frames away (kernel 5 at dilations 1 and 2) and
    no further; ``temporal_module: none`` leaves it out."""
    from skelact.models.strl import TemporalModelling

    torch.manual_seed(0)
    layer = TemporalModelling(8).eval()
    h = torch.randn(1, 12, 5, 8)
    moved = h.clone()
    moved[:, 2] += 1.0
    assert not torch.allclose(layer(h)[:, 0], layer(moved)[:, 0])  # frame 0 sees frame 2 ...
    assert not torch.allclose(layer(h)[:, 6], layer(moved)[:, 6])  # ... frame 6 sees it at dilation 2 ...
    assert torch.equal(layer(h)[:, 7:], layer(moved)[:, 7:])       # ... and nothing 5 or more frames away does
    for kind in ("multiscale", "none"):
        model = STRL(num_classes=4, layout="nw_ucla20", in_channels=3, hidden_channels=8, max_frames=16,
                     temporal_module=kind).eval()
        assert model(torch.randn(2, 1, 16, 20, 3)).shape == (2, 4)
        assert (model.temporal is None) == (kind == "none")
    with pytest.raises(ConfigError, match="multiscale"):
        STRL(num_classes=4, layout="nw_ucla20", temporal_module="tcn")


@pytest.mark.parametrize("dataset", ["nw_ucla", "penn_action"])
def test_skeletonmae_runs_fine_tune_with_adamw_not_the_contrastive_sgd_recipe(dataset):
    """The default fine-tune / semi recipe (SGD 0.1, SkeletonCLR's) made the batch-norm-free GIN diverge; SkeletonMAE's
    configs give the protocols AdamW 1e-3 with a cosine, and keep the kNN k of the data set's config."""
    from skelact.commands.protocol_config import protocol_recipe
    from skelact.config import load_config

    src = load_config(REPO / "configs" / dataset / "skeletonmae_joint.yaml")
    for protocol in ("finetune", "semi"):
        layer, _ = protocol_recipe(src, protocol)
        assert layer["optimizer"]["lr"] == 0.001 and layer["schedule"]["type"] == "cosine"
    assert src.cfg.optimizer.type == "adamw"
    _, knn = protocol_recipe(src, "knn")
    assert knn.k == 20
