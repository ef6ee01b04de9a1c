"""FR-Head: the training-only feature refinement head (Zhou, Liu and Wang, "Learning Discriminative Representations
for Skeleton Based Action Recognition", CVPR 2023; official code zhysora/FR-Head ``model/lib.py``).

Our own implementation. Heads attach to the stage features a backbone returns from
``forward(x, return_features=True)`` (``[N * M, C, T, V]`` after blocks 1, 5, 8 and 10 of CTR-GCN / ST-GCN) and
add a loss; they never change the logits, so at inference they are dropped and the deployed network is the bare
backbone (same parameters, same FLOPs).

Pieces, bottom up:

* :func:`refinement_loss` - the contrastive feature refinement loss of one feature space (pure function);
* :class:`ContrastiveRefinement` - projection to the contrastive space + class prototypes (buffer) + that loss;
* :class:`FRHead` - one stage: spatial-temporal decoupling, then one refinement per branch;
* :class:`MultiLevelFRHead` - the heads of several stages and their weights ``lambda_i``.

The loss of one feature space, for a batch with features ``F_i`` (projected), labels ``y_i``, softmax
probabilities ``p_i`` of the (detached) logits and predictions ``yhat_i = argmax p_i``:

* confident samples of class ``k``: true positives (``y_i = yhat_i = k``) with ``p_ik > confidence_threshold``;
  false negatives of ``k``: ``y_i = k != yhat_i``; false positives of ``k``: ``yhat_i = k != y_i``;
* prototypes ``P_k <- m P_k + (1 - m) mean(confident F of class k)`` (``m = 0.9``), only for classes with at least
  one confident sample in the batch; the updated prototypes serve the same step's loss;
* ``phi_i = 1 - cos(F_i, mu_FN(y_i))`` (compensation: pull the anchor towards the class's missed samples) and
  ``psi_i = 1 + cos(F_i, mu_FP(y_i))`` (penalty: push it from the samples wrongly taken for its class), each zero
  when its set is empty, both scaled by ``w_i = alpha (1 - p_{i, y_i})``;
* ``L = CE(s^FN_i, y_i) + CE(s^FP_i, y_i)`` averaged over the batch, where ``s_il = cos(F_i, P_l) / tau`` and the
  true class's logit is lowered by ``w_i phi_i / tau`` (``s^FN``) or ``w_i psi_i / tau`` (``s^FP``): the two-part
  InfoNCE over prototypes, ``-log exp((cos(F, P_y) - w phi) / tau) / (exp((cos(F, P_y) - w phi) / tau) +
  sum_{l != y} exp(cos(F, P_l) / tau))`` plus the same with ``psi``.

Choices the paper leaves open, and where the public reference differs from the paper's text (each is a switch):

* **Taps.** The outputs of blocks 1, 5, 8, 10 (the reference clones ``l1``, ``l5``, ``l8``, ``l10``), weights
  ``lambda = (0.1, 0.2, 0.5, 1.0)``, total ``CE + w_cl sum_i lambda_i L_CL^i`` with ``w_cl = 0.1``, from the first
  epoch on (reference ``start_cl_epoch = -1``).
* **Persons.** Stage features are averaged over person slots before the branches (reference).
* **Decoupling sizes.** "A fixed size" in the paper; the reference squeezes to ``H // V`` channels (spatial, after
  the mean over frames) and ``H // T_b`` channels (temporal, after the mean over joints) with ``H = 256``, so the
  flattened branch has at most ``H`` values (240 for 20 joints; 208, 234, 247 for 52, 26, 13 frames). We do the
  same and keep at least one channel when ``V`` or ``T_b`` exceeds ``H`` (the reference would build zero channels).
  The temporal branch flattens ``T_b`` frames, so a head is built for a fixed clip length (``num_frames``).
* **Contrastive space.** A linear layer from the flattened branch to ``H = 256`` values (reference ``cl_fc``), no
  non-linearity; cosines normalise it.
* **Prototypes.** Initialised from a standard normal, as the reference's ``torch.randn`` (here from a seeded
  generator), kept in a buffer so they travel in checkpoints and a resumed run continues with them (the
  reference's plain attribute is not saved). Gradient flows through the ``(1 - m)`` batch-mean part of the
  prototype used in the loss, as in the reference; ``prototype_grad=False`` detaches it.
* **Confidence.** The reference's threshold is 0 on the softmax probability, so every true positive is
  "confident"; ``confidence_threshold`` raises it.
* **Which anchors are calibrated.** As we read the paper (and the issue), the compensation and penalty act on
  confident anchors. The reference's default (``cl_version='V0'``: the released default, so likely the
  one behind the published numbers, but its result configs do not record it) applies
  them to every sample's true-class logit, weighted by ``1 - p_{i, y_i}``, so misclassified samples get the largest
  calibration; ``V1`` restricts them to true positives. ``anchors="all"`` (default, reference V0) or
  ``anchors="confident"`` (V1, the paper's wording).
* **Scale of the calibration.** Besides ``1 - p_{i, y_i}`` the reference multiplies ``phi`` and ``psi`` by a
  constant ``alpha = 0.125`` (``RenovateNet.alp``); ``calibration_scale`` (1.0 gives the bare ``1 - p`` scaling);
  ``confidence_weight=False`` drops ``1 - p`` (reference ``use_p_map=False``).
* **FN / FP means.** Batch means in the contrastive space, not detached (reference); FN counts every misclassified
  sample of the class, also when a confidence threshold excludes low-confidence true positives from the prototype.
* **Detached inputs.** Logits (hence ``p``, the predictions and the masks) and labels enter detached: the loss
  reaches the backbone only through the stage features, never through the classifier's logits.
* **Temperature** ``tau = 0.125`` (reference ``tmp``); momentum ``m = 0.9`` (reference ``mom``).
* **Multi-process training.** The reference never reduces over processes (its ``all_reduce`` lines are commented
  out; under ``DataParallel`` its prototype assignments on replicas are lost). With ``sync=True`` (default) the
  per-class sums and counts of confident, FN and FP features are all-reduced, so every process holds the same
  prototypes, equal to those of one process seeing the global batch; gradients flow through this process's own
  samples only. ``sync=False`` keeps per-process statistics (PyTorch DDP then broadcasts the buffers of process 0
  at every forward, so its prototypes win).
* **Precision.** The loss is computed in float32 also under mixed precision.
* **Ablation "CL only"** (``decouple=False``): the stage feature averaged over persons, frames and joints (for
  block 10, the classifier's embedding) is projected by a linear layer ``C -> H``; no spatial/temporal branches.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError, DataError

#: FR-Head's stage weights lambda_i for the taps after blocks 1, 5, 8, 10 (paper and reference ``w_multi_cl_loss``)
STAGE_WEIGHTS = (0.1, 0.2, 0.5, 1.0)
#: width of the contrastive space (reference ``h_channel``)
HIDDEN_FEATURES = 256
#: reference ``tmp``, ``mom``, ``alp``
TEMPERATURE = 0.125
MOMENTUM = 0.9
CALIBRATION_SCALE = 0.125
ANCHORS = ("all", "confident")

#: sums [R, D] and counts [R] -> the same summed over processes
SumReducer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class RefinementResult(NamedTuple):
    """What :func:`refinement_loss` computes; everything but ``loss`` is detached."""

    loss: torch.Tensor  #: scalar
    prototypes: torch.Tensor  #: [K, D] updated prototypes
    phi: torch.Tensor  #: [N] compensation 1 - cos(F_i, mu_FN(y_i)), 0 where class y_i has no FN
    psi: torch.Tensor  #: [N] penalty 1 + cos(F_i, mu_FP(y_i)), 0 where class y_i has no FP
    weight: torch.Tensor  #: [N] calibration weight alpha (1 - p_{i,y_i}) (0 for anchors not calibrated)
    confident: torch.Tensor  #: [N] bool, the sample updates its class's prototype
    false_negative: torch.Tensor  #: [N] bool, misclassified (an FN of its class y_i)
    class_counts: torch.Tensor  #: [3, K] confident, FN, FP samples per class (after any reduction)


def refinement_loss(features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor, prototypes: torch.Tensor, *,
                    temperature: float = TEMPERATURE, momentum: float = MOMENTUM,
                    calibration_scale: float = CALIBRATION_SCALE, confidence_weight: bool = True,
                    confidence_threshold: float = 0.0, anchors: str = "all", prototype_grad: bool = True,
                    reduce_sums: SumReducer | None = None) -> RefinementResult:
    """FR-Head's contrastive feature refinement loss of one feature space (see the module docstring).

    ``features`` ``[N, D]`` (the projected features; gradients flow into them), ``labels`` ``[N]``, ``logits``
    ``[N, K]`` (used detached), ``prototypes`` ``[K, D]`` (the running prototypes before this batch; not
    modified). ``reduce_sums``: sums per-class statistics over processes (see :func:`all_reduce_sums`).
    """
    if anchors not in ANCHORS:
        raise ConfigError(f"must be one of {', '.join(ANCHORS)}, got {anchors!r}", field="anchors")
    num_classes = prototypes.shape[0]
    z = features.float()
    labels = labels.detach().long()
    logits = logits.detach().float()
    if z.dim() != 2 or logits.shape != (z.shape[0], num_classes) or labels.shape != (z.shape[0],):
        raise DataError(f"expected features [N, D], labels [N], logits [N, {num_classes}]; got "
                        f"{tuple(z.shape)}, {tuple(labels.shape)}, {tuple(logits.shape)}", field="features")

    prob = logits.softmax(dim=1)
    predicted = logits.argmax(dim=1)
    correct = predicted == labels
    p_true = prob.gather(1, labels[:, None]).squeeze(1)
    confident = correct & (p_true > confidence_threshold)
    wrong = (~correct).to(z.dtype)[:, None]
    label_onehot = F.one_hot(labels, num_classes).to(z.dtype)
    masks = torch.cat([label_onehot * confident.to(z.dtype)[:, None],  # confident true positives of class k
                       label_onehot * wrong,  # false negatives of k: labelled k, predicted otherwise
                       F.one_hot(predicted, num_classes).to(z.dtype) * wrong], dim=1)  # false positives of k
    sums = masks.t() @ z  # [3K, D]
    counts = masks.sum(dim=0)  # [3K]
    if reduce_sums is not None:
        sums, counts = reduce_sums(sums, counts)
    means = sums / counts.clamp_min(1.0)[:, None]
    present = counts > 0
    tp_mean, fn_mean, fp_mean = means.split(num_classes)
    has_tp, has_fn, has_fp = present.split(num_classes)

    previous = prototypes.detach().float()
    updated = torch.where(has_tp[:, None], momentum * previous + (1.0 - momentum) * tp_mean, previous)
    if not prototype_grad:
        updated = updated.detach()

    unit = F.normalize(z, dim=1)
    cos_prototypes = unit @ F.normalize(updated, dim=1).t()  # [N, K]
    phi = (1.0 - (unit * F.normalize(fn_mean[labels], dim=1)).sum(dim=1)) * has_fn[labels].to(z.dtype)
    psi = (1.0 + (unit * F.normalize(fp_mean[labels], dim=1)).sum(dim=1)) * has_fp[labels].to(z.dtype)
    weight = torch.full_like(p_true, float(calibration_scale))
    if confidence_weight:
        weight = weight * (1.0 - p_true)
    if anchors == "confident":
        weight = weight * confident.to(z.dtype)

    scaled = cos_prototypes / temperature
    true_class = label_onehot / temperature
    loss_fn = F.cross_entropy(scaled - true_class * (weight * phi)[:, None], labels)
    loss_fp = F.cross_entropy(scaled - true_class * (weight * psi)[:, None], labels)
    return RefinementResult(loss_fn + loss_fp, updated.detach(), phi.detach(), psi.detach(), weight,
                            confident, ~correct, counts.detach().view(3, num_classes))


def all_reduce_sums(sums: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum per-class ``sums`` ``[R, D]`` and ``counts`` ``[R]`` over the default process group.

    The values become the global ones; the gradient keeps flowing through this process's own contribution only
    (``sums + (global - local).detach()``), as all-reduce has no autograd.
    """
    import torch.distributed as dist

    packed = torch.cat([sums.detach(), counts.detach()[:, None]], dim=1).contiguous()
    dist.all_reduce(packed)
    total_sums, total_counts = packed[:, :-1], packed[:, -1]
    return sums + (total_sums - sums.detach()), total_counts


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def reset_default_(module: nn.Module, generator: torch.Generator | None) -> None:
    """PyTorch's default initialisation of ``nn.Linear`` / ``nn.Conv2d`` (Kaiming-uniform with ``a = sqrt(5)``,
    bias uniform in ``+-1/sqrt(fan_in)``), the reference's (it never re-initialises its heads), but drawn from
    ``generator`` so a run's heads do not consume the global RNG the backbone is initialised from."""
    weight = module.weight
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if module.bias is not None:
        fan_in = weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(module.bias, -bound, bound, generator=generator)


class ContrastiveRefinement(nn.Module):
    """Projection ``in_features -> hidden_features`` (the contrastive space), class prototypes, and
    :func:`refinement_loss` (reference ``RenovateNet``).

    ``forward(features [N, in_features], labels [N], logits [N, K]) -> loss``; in training mode it also moves the
    prototypes (buffer ``prototypes`` ``[K, hidden_features]``). Keyword arguments are those of
    :func:`refinement_loss`; ``sync`` all-reduces the class statistics in multi-process runs.
    """

    def __init__(self, in_features: int, num_classes: int, hidden_features: int = HIDDEN_FEATURES, *,
                 temperature: float = TEMPERATURE, momentum: float = MOMENTUM,
                 calibration_scale: float = CALIBRATION_SCALE, confidence_weight: bool = True,
                 confidence_threshold: float = 0.0, anchors: str = "all", prototype_grad: bool = True,
                 sync: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        _check_settings(temperature=temperature, momentum=momentum, calibration_scale=calibration_scale,
                        anchors=anchors)
        self.project = nn.Linear(in_features, hidden_features)
        reset_default_(self.project, generator)
        self.register_buffer("prototypes", torch.randn(num_classes, hidden_features, generator=generator))
        self.options = dict(temperature=float(temperature), momentum=float(momentum),
                            calibration_scale=float(calibration_scale), confidence_weight=bool(confidence_weight),
                            confidence_threshold=float(confidence_threshold), anchors=anchors,
                            prototype_grad=bool(prototype_grad))
        self.sync = bool(sync)

    def forward(self, features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self.refine(features, labels, logits).loss

    def refine(self, features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> RefinementResult:
        """The full :class:`RefinementResult` (and the prototype update in training mode)."""
        z = self.project(features)
        reducer = all_reduce_sums if self.sync and _distributed() else None
        with torch.autocast(device_type=z.device.type, enabled=False):
            result = refinement_loss(z, labels, logits, self.prototypes, reduce_sums=reducer, **self.options)
        if self.training:
            with torch.no_grad():
                self.prototypes.copy_(result.prototypes)
        return result


def _check_settings(**values) -> None:
    if not values["temperature"] > 0:
        raise ConfigError(f"must be positive, got {values['temperature']}", field="temperature")
    if not 0.0 <= values["momentum"] < 1.0:
        raise ConfigError(f"must lie in [0, 1), got {values['momentum']}", field="momentum")
    if values["calibration_scale"] < 0:
        raise ConfigError(f"must be 0 or more, got {values['calibration_scale']}", field="calibration_scale")
    if values["anchors"] not in ANCHORS:
        raise ConfigError(f"must be one of {', '.join(ANCHORS)}, got {values['anchors']!r}", field="anchors")


def _squeeze(in_channels: int, out_channels: int, generator: torch.Generator | None) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)
    reset_default_(conv, generator)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())


class FRHead(nn.Module):
    """FR-Head of one stage (reference ``ST_RenovateNet``): spatial-temporal decoupling, then one
    :class:`ContrastiveRefinement` per branch; ``L = CL(F_s) + CL(F_t)``.

    Args:
        in_channels, num_frames, num_joints: shape ``C, T_b, V`` of the stage's features ``[N * M, C, T_b, V]``.
        num_classes: classes ``K``.
        hidden_features: ``H``; the spatial branch squeezes to ``max(1, H // V)`` channels per joint, the temporal
            one to ``max(1, H // T_b)`` per frame, and each flattened branch is projected to ``H``.
        decouple: ``False`` for the "CL only" ablation (one refinement of the pooled ``[N, C]`` feature).
        generator: draws the initial weights and prototypes.
        refinement: keyword arguments of :class:`ContrastiveRefinement`.
    """

    def __init__(self, in_channels: int, num_frames: int, num_joints: int, num_classes: int, *,
                 hidden_features: int = HIDDEN_FEATURES, decouple: bool = True,
                 generator: torch.Generator | None = None, **refinement):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("num_frames", num_frames), ("num_joints", num_joints),
                            ("num_classes", num_classes), ("hidden_features", hidden_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        self.in_channels, self.num_frames, self.num_joints = in_channels, num_frames, num_joints
        self.decouple = bool(decouple)
        if self.decouple:
            spatial_channels = max(1, hidden_features // num_joints)
            temporal_channels = max(1, hidden_features // num_frames)
            self.spatial_squeeze = _squeeze(in_channels, spatial_channels, generator)
            self.temporal_squeeze = _squeeze(in_channels, temporal_channels, generator)
            self.spatial = ContrastiveRefinement(spatial_channels * num_joints, num_classes, hidden_features,
                                                 generator=generator, **refinement)
            self.temporal = ContrastiveRefinement(temporal_channels * num_frames, num_classes, hidden_features,
                                                  generator=generator, **refinement)
        else:
            self.pooled = ContrastiveRefinement(in_channels, num_classes, hidden_features, generator=generator,
                                                **refinement)

    def branches(self) -> dict[str, ContrastiveRefinement]:
        """The refinements by branch name (``spatial``, ``temporal``; or ``pooled`` without decoupling)."""
        if self.decouple:
            return {"spatial": self.spatial, "temporal": self.temporal}
        return {"pooled": self.pooled}

    def branch_features(self, feature: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
        """Flattened branch features before the projection, ``{name: [N, D_in]}``, from the stage features
        ``[N * M, C, T_b, V]`` of a batch of ``batch_size`` samples."""
        nm, c, t, v = feature.shape
        if batch_size < 1 or nm % batch_size or (c, t, v) != (self.in_channels, self.num_frames, self.num_joints):
            raise DataError(
                f"expected stage features [N * M, C={self.in_channels}, T={self.num_frames}, V={self.num_joints}] "
                f"for N={batch_size}, got {tuple(feature.shape)}; the head is built for clips of a fixed length "
                "(FR-Head's temporal branch flattens the frames): set method.frhead.num_frames to the clip length "
                "of the training pipeline", field="num_frames")
        per_sample = feature.view(batch_size, nm // batch_size, c, t, v).mean(dim=1)
        if not self.decouple:
            return {"pooled": per_sample.mean(dim=(2, 3))}
        spatial = self.spatial_squeeze(per_sample.mean(dim=2, keepdim=True))  # [N, C_s, 1, V]
        temporal = self.temporal_squeeze(per_sample.mean(dim=3, keepdim=True))  # [N, C_t, T, 1]
        return {"spatial": spatial.flatten(1), "temporal": temporal.flatten(1)}

    def embed(self, feature: torch.Tensor, batch_size: int) -> dict[str, torch.Tensor]:
        """Each branch's features in its contrastive space, ``{name: [N, H]}`` (for plots)."""
        refinements = self.branches()
        return {name: refinements[name].project(f) for name, f in self.branch_features(feature, batch_size).items()}

    def forward(self, feature: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        refinements = self.branches()
        parts = self.branch_features(feature, labels.shape[0])
        return sum(refinements[name](f, labels, logits) for name, f in parts.items())


class MultiLevelFRHead(nn.Module):
    """FR-Heads on several stages, ``L = sum_i lambda_i L_CL^i`` (reference ``ren_low/mid/high/fin``).

    Args:
        stage_shapes: ``(channels, frames)`` of every tap the backbone returns (:func:`stage_shapes`).
        num_joints, num_classes: as the backbone's.
        stage_weights: ``lambda_i``, one per used tap.
        taps: which of the backbone's taps get a head (indices into its list; default all). The ablations without
            multi-level refinement use only the last one.
        kwargs: of :class:`FRHead` (``hidden_features``, ``decouple``, ``generator``, refinement options).
    """

    def __init__(self, stage_shapes: Sequence[tuple[int, int]], num_joints: int, num_classes: int,
                 stage_weights: Sequence[float], *, taps: Sequence[int] | None = None, **kwargs):
        super().__init__()
        taps = tuple(range(len(stage_shapes))) if taps is None else tuple(int(i) for i in taps)
        if not taps or any(not 0 <= i < len(stage_shapes) for i in taps) or len(set(taps)) != len(taps):
            raise ConfigError(f"must be distinct indices into the {len(stage_shapes)} stage taps, got {list(taps)}",
                              field="taps")
        weights = tuple(float(w) for w in stage_weights)
        if len(weights) != len(taps) or any(w < 0 for w in weights):
            raise ConfigError(f"expected {len(taps)} non-negative stage weights (one per head), got {list(weights)}",
                              field="stage_weights")
        self.taps = taps
        self.register_buffer("stage_weights", torch.tensor(weights), persistent=False)
        self.heads = nn.ModuleList(FRHead(stage_shapes[i][0], stage_shapes[i][1], num_joints, num_classes, **kwargs)
                                   for i in taps)

    def forward(self, features: Sequence[torch.Tensor], labels: torch.Tensor,
                logits: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(sum_i lambda_i L_i, [L_i])`` for the backbone's list of stage ``features``."""
        losses = [head(features[i], labels, logits) for i, head in zip(self.taps, self.heads)]
        total = sum(w * loss for w, loss in zip(self.stage_weights.unbind(0), losses))
        return total, losses


def stage_shapes(backbone: nn.Module, num_frames: int) -> list[tuple[int, int]]:
    """``(channels, frames)`` of each stage feature ``backbone(x, return_features=True)`` returns for clips of
    ``num_frames`` frames, found by one forward pass of a zero clip in eval mode (no state changes)."""
    try:
        persons, joints, coords = backbone.num_persons, backbone.num_joints, backbone.in_channels
    except AttributeError:
        raise ConfigError(f"{type(backbone).__name__} does not expose num_persons / num_joints / in_channels; "
                          "FR-Head needs a skeleton GCN with stage taps", field="model.type") from None
    parameter = next(backbone.parameters())
    x = torch.zeros(1, persons, int(num_frames), joints, coords, device=parameter.device, dtype=parameter.dtype)
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            _, taps = backbone(x, return_features=True)
    finally:
        backbone.train(was_training)
    if not taps:
        raise ConfigError("the backbone returns no stage features (model.feature_blocks is empty)",
                          field="model.feature_blocks")
    return [(int(t.shape[1]), int(t.shape[2])) for t in taps]


__all__ = ["ANCHORS", "CALIBRATION_SCALE", "HIDDEN_FEATURES", "MOMENTUM", "STAGE_WEIGHTS", "TEMPERATURE",
           "ContrastiveRefinement", "FRHead", "MultiLevelFRHead", "RefinementResult", "all_reduce_sums",
           "refinement_loss", "stage_shapes"]
