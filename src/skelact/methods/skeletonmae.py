"""SkeletonMAE: masked body-region graph pre-training (Yan et al., "SkeletonMAE: Graph-based Masked Autoencoder
for Skeleton Sequence Pre-training", ICCV 2023, arXiv 2307.08476, Sec. 3), from the paper (its authors published
no code).

Every frame of every person is a graph of the layout's joints (:mod:`skelact.models.gin`). One step:

1. the joints are embedded to ``D`` by the encoder (:class:`~skelact.models.skeleton_gin.SkeletonGIN`);
2. the joints of whole body regions (:mod:`skelact.methods.body_masking`) are replaced by a learnable ``[MASK]``
   token ``m`` of dimension ``D`` (initialised to zeros as GraphMAE's ``enc_mask_token``);
3. the encoder's ``L_D = 3`` GIN layers map them to ``H``;
4. with ``remask`` (GraphMAE's re-mask, the paper does not say; ours on by default), the masked joints' rows of
   ``H`` are set to zero, so the decoder must infer them from their neighbours;
5. one GIN layer, the decoder, reconstructs the coordinates ``Z`` from ``H`` and ``A`` alone;
6. the loss is the re-weighted cosine error over the masked joints ``V_m`` of each frame graph (the paper's Eq.,
   GraphMAE's SCE): ``L = sum_{i in V_m} (1/|V_m| - x_i . z_i / (|V_m| ||x_i|| ||z_i||))^beta``, ``beta = 2``;
   missing joints (all-zero coordinates) are no targets; the batch's loss is the mean over graphs with a target.
   With ``target: bones`` (ours; the paper compares coordinates) ``x_i`` is the joint minus its parent in the
   layout's tree (the bone modality's vector), and the centre, which has no bone, is no target: a coordinate's
   direction from the origin is mostly where the body stands (a dataset-mean constant reconstructs Penn Action's
   masked coordinates at loss 0.089, their bones only at 0.194), a bone's is the limb's pose.

Masks are drawn with ``numpy.random.default_rng([seed, step])``, ``step`` being a counter in the method's state
(so a resumed run draws the masks the uninterrupted one would have).

The decoder and the ``[MASK]`` token are pre-training only; the encoder lies at ``views.<view>.encoder.`` (the
protocols' prefix) and its graph layers at ``views.<view>.encoder.encoder.``, what STRL's ``init`` takes.

Config (``method.type: skeletonmae``, the view is ``data.modality``; settings under ``method.skeletonmae``)::

    method:
      type: skeletonmae
      skeletonmae: {strategy: region, regions: [right_arm, right_leg], mask_unit: clip, beta: 2.0, remask: true,
                    target: coordinates}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from skelact.data.transforms import modality_name
from skelact.errors import ConfigError
from skelact.methods.body_masking import MASK_STRATEGIES, MASK_UNITS, BodyRegionMasker
from skelact.methods.settings import MethodContext, need
from skelact.models.gin import GRAPH_LAYERS, graph_layer

#: the prefix of view ``v``'s encoder in the method's state dict (the protocols load it)
ENCODER_PREFIX = "views.{view}.encoder."
#: what the reconstruction is compared with: the joints' coordinates, or their bone vectors
MAE_TARGETS = ("coordinates", "bones")


@dataclass
class MAESettings:
    """``method.skeletonmae`` keys; where the paper is silent the default is our choice (module docstring)."""

    #: ``region`` (whole body parts of the layout) or ``random`` (as many joints drawn at random)
    strategy: str = "region"
    #: the parts to hide (the paper's best: right_arm, right_leg); empty: ``num_regions`` parts drawn per unit
    regions: list = field(default_factory=list)
    num_regions: int = 2
    #: one mask per ``clip`` (every frame of a person) or per ``frame``
    mask_unit: str = "clip"
    #: the persons of a clip share their mask
    shared_across_persons: bool = True
    #: zero the masked joints' encoder output before the decoder (GraphMAE's re-mask)
    remask: bool = True
    #: the exponent of the re-weighted cosine error
    beta: float = 2.0
    #: the decoder's one graph layer: ``gin`` (the paper) or ``gcn`` (with a GCN encoder, its ablation)
    decoder_layer: str = "gin"
    #: what the cosine error compares: ``coordinates`` (the paper) or ``bones`` (each joint minus its parent)
    target: str = "coordinates"


@dataclass
class SkeletonMAESettings:
    """The settings of ``method.type: skeletonmae``: its ``method.skeletonmae`` section."""

    skeletonmae: MAESettings = field(default_factory=MAESettings)


def check_skeletonmae_settings(settings: Any) -> None:
    s = settings.skeletonmae
    need(s.strategy in MASK_STRATEGIES, "skeletonmae.strategy",
         f"must be one of {', '.join(MASK_STRATEGIES)}, got {s.strategy!r}")
    need(isinstance(s.regions, (list, tuple)) and all(isinstance(r, str) for r in s.regions),
         "skeletonmae.regions", f"must be a list of body-part names, got {s.regions!r}")
    need(s.num_regions >= 1, "skeletonmae.num_regions", f"must be at least 1, got {s.num_regions}")
    need(s.mask_unit in MASK_UNITS, "skeletonmae.mask_unit",
         f"must be one of {', '.join(MASK_UNITS)}, got {s.mask_unit!r}")
    need(s.beta >= 1.0, "skeletonmae.beta", f"must be at least 1 (GraphMAE's scaling), got {s.beta}")
    need(s.target in MAE_TARGETS, "skeletonmae.target", f"must be one of {', '.join(MAE_TARGETS)}, got {s.target!r}")
    need(s.decoder_layer in GRAPH_LAYERS, "skeletonmae.decoder_layer",
         f"must be one of {', '.join(GRAPH_LAYERS)}, got {s.decoder_layer!r}")


# ----------------------------------------------------------------------------------------------------------------
# the loss


def reweighted_cosine_loss(target: torch.Tensor, reconstruction: torch.Tensor, mask: torch.Tensor,
                           beta: float = 2.0) -> torch.Tensor:
    """The paper's loss on graphs ``[B, V, C]`` with masks ``[B, V]`` (True: masked and a target).

    Per graph, ``sum_{i in V_m} ((1 - cos(x_i, z_i)) / |V_m|)^beta``; the mean over graphs with ``|V_m| > 0``
    (zero when there is none). Unmasked joints do not enter it.
    """
    cos = F.cosine_similarity(target.float(), reconstruction.float(), dim=-1, eps=1e-8)  # [B, V]
    mask = mask.to(torch.bool)
    count = mask.sum(dim=-1)  # [B]
    terms = ((1.0 - cos) / count.clamp(min=1)[:, None]).pow(beta)
    per_graph = torch.where(mask, terms, torch.zeros_like(terms)).sum(dim=-1)
    has_target = count > 0
    if not bool(has_target.any()):
        return per_graph.sum() * 0.0
    return per_graph[has_target].mean()


# ----------------------------------------------------------------------------------------------------------------
# one view


class MaskedGraphAutoencoder(nn.Module):
    """One view's encoder (a :class:`~skelact.models.skeleton_gin.SkeletonGIN`), ``[MASK]`` token and decoder."""

    def __init__(self, encoder: nn.Module, decoder_layer: str = "gin", remask: bool = True):
        super().__init__()
        graph = getattr(encoder, "encoder", None)
        if not hasattr(graph, "embed") or not hasattr(graph, "encode") or getattr(encoder, "layout", None) is None:
            raise ConfigError(f"SkeletonMAE needs a per-frame graph encoder (model.type: skeleton_gin), got "
                              f"{type(encoder).__name__}", field="model.type")
        classifier = getattr(encoder, "fc", None)
        if isinstance(classifier, nn.Module):
            classifier.requires_grad_(False)  # the protocols put their own on top
        self.encoder = encoder
        self.mask_token = nn.Parameter(torch.zeros(graph.hidden_channels))
        self.decoder = graph_layer(decoder_layer, graph.hidden_channels, graph.in_channels)
        self.remask = bool(remask)

    def encode_masked(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Encoder output ``H`` ``[..., V, D]`` of the graphs ``x`` ``[..., V, C]`` whose ``mask`` joints are
        replaced by the ``[MASK]`` token after the embedding (re-masked to zero when ``remask``)."""
        graph = self.encoder.encoder
        h = graph.embed(x)
        h = torch.where(mask[..., None], self.mask_token.to(h.dtype), h)
        h = graph.encode(h)
        if self.remask:
            h = torch.where(mask[..., None], torch.zeros_like(h), h)
        return h

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Coordinates ``[..., V, C]`` reconstructed from ``H`` and the graph alone."""
        return self.decoder(h, self.encoder.encoder.adjacency)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_masked(x, mask))


class SkeletonMAEMethod(nn.Module):
    """SkeletonMAE on one view (the run's modality); ``training_step`` returns ``(loss, None, parts)``."""

    def __init__(self, views: Mapping[str, MaskedGraphAutoencoder], masker: BodyRegionMasker, *, beta: float = 2.0,
                 mask_unit: str = "clip", shared_across_persons: bool = True, seed: int = 1,
                 target: str = "coordinates", parents: Any = None):
        super().__init__()
        self.target = target
        if target == "bones":
            parent = torch.as_tensor(np.asarray(parents), dtype=torch.long)
            self.register_buffer("parents", parent, persistent=False)
            # a root (its own parent) has no bone
            self.register_buffer("has_bone", parent != torch.arange(len(parent)), persistent=False)
        self.views = nn.ModuleDict(dict(views))
        self.masker = masker
        self.beta, self.mask_unit, self.shared = float(beta), mask_unit, bool(shared_across_persons)
        self.seed = int(seed)
        # the masks' generator is seeded by (seed, step): the step travels in checkpoints, so resume is exact
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    @property
    def view_names(self) -> list[str]:
        return list(self.views.keys())

    def encoders(self) -> dict[str, nn.Module]:
        return {name: view.encoder for name, view in self.views.items()}

    def forward(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The encoders' pooled embeddings ``{view: [N, D]}``."""
        return {name: view.encoder.extract_features(x[name]) for name, view in self.views.items()}

    def draw_masks(self, shape: tuple[int, ...]) -> torch.Tensor:
        """Boolean masks ``[N, M, T, V]`` of this step (advances the step counter)."""
        n, m, t = shape[:3]
        rng = np.random.default_rng([self.seed, int(self.step)])
        self.step += 1
        return torch.from_numpy(self.masker.draw_for_batch(n, m, t, rng, self.mask_unit, self.shared))

    def training_step(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None, dict[str, torch.Tensor]]:
        x0 = batch["x"][self.view_names[0]]
        mask = self.draw_masks(tuple(x0.shape)).to(x0.device)
        total = 0.0
        parts: dict[str, torch.Tensor] = {}
        for name, view in self.views.items():
            x = batch["x"][name]
            reconstruction = view(x, mask)
            present = x.abs().sum(dim=-1) > 0  # a missing joint is no target
            target = x
            if self.target == "bones":
                target = x - x[..., self.parents, :]
                present = present & present[..., self.parents] & self.has_bone  # a bone needs both of its ends
            loss = reweighted_cosine_loss(target.flatten(0, 2), reconstruction.flatten(0, 2),
                                          (mask & present).flatten(0, 2), self.beta)
            total = total + loss
            parts[f"loss_{name}"] = loss.detach()
        return total, None, parts


def build_skeletonmae_method(settings: SkeletonMAESettings, context: MethodContext) -> SkeletonMAEMethod:
    """SkeletonMAE on the run's modality, around the encoder ``context.make_model()`` builds."""
    s = settings.skeletonmae
    encoder = context.make_model()
    layout = getattr(encoder, "layout", None)
    view = MaskedGraphAutoencoder(encoder, s.decoder_layer, s.remask)
    masker = BodyRegionMasker(dict(layout.parts), layout.num_joints, s.strategy, tuple(s.regions), s.num_regions,
                              layout.name)
    return SkeletonMAEMethod({modality_name(context.modality): view}, masker, beta=s.beta, mask_unit=s.mask_unit,
                             shared_across_persons=s.shared_across_persons, seed=context.seed, target=s.target,
                             parents=layout.parents)
