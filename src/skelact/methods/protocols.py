"""The four protocols by which a (self-supervised) skeleton encoder is judged, for any encoder with
``extract_features(x) -> [N, D]`` and ``out_channels`` (every skelact GCN), pre-trained or not.

* **linear**: the encoder is frozen, weights *and* batch-norm statistics (it stays in eval mode, so dropout is off
  too, as the reference's ``model.eval()`` during linear training, LinguoLi/CrosSCLR
  ``processor/linear_evaluation.py``); a linear classifier on the pooled embedding is trained with labels. Without
  augmentation the embeddings do not change from epoch to epoch, so they are computed once and the classifier
  trains on them (:class:`EmbeddingDataset`, option ``cache_features``);
* **knn**: no training: a weighted k-nearest-neighbour vote on cosine similarities of the frozen embeddings
  (Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018: the ``k``
  most similar training samples vote for their class with weight ``exp(s / T)``) (:func:`knn_scores`);
* **finetune**: the encoder starts from the pre-trained weights, everything is trained with labels;
* **semi**: fine-tuning on a class-stratified, seeded fraction of the training labels (1 % and 10 % in the
  literature; :func:`balanced_label_subset`).

Several views (CrosSCLR's joint, motion, bone): each view has its own encoder and its own linear classifier; the
class scores are the mean of the views' logits (the reference's ``view: 'all'``); kNN and the feature plots use the
concatenation of the L2-normalised per-view embeddings, whose cosine similarity is the mean of the views' cosine
similarities.

The classifier replaces the backbone's own ``fc`` (never transferred, frozen and unused here), initialised as the
reference's ``weights_init``: N(0, 0.02) weights and zero biases.

Recipes (how each protocol trains) are experiment-config keys plus protocol options; :data:`DEFAULT_RECIPES` holds
the defaults, a pre-training config may change them under ``protocols.<name>`` and the command line under the
usual keys. :mod:`skelact.commands.evaluate` runs them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from skelact.errors import ConfigError, DataError
from skelact.methods.registry import encoder_prefix  # noqa: F401 - the protocols' view of the method table
from skelact.methods.settings import settings_from_dict
from skelact.methods.skeletonclr import encoder_width, reset_linear_

PROTOCOLS = ("linear", "knn", "finetune", "semi")
PLOT_METHODS = ("auto", "tsne", "pca", "none")
#: linear: what stands between the frozen embedding and the classifier
FEATURE_NORMS = ("none", "batchnorm")

#: the protocols' training recipes as experiment-config layers. linear: the reference's linear evaluation
#: (LinguoLi/CrosSCLR config/linear_eval/*.yaml: SGD lr 3.0 for batch 128, no Nesterov, no weight decay, 100 epochs,
#: x0.1 at epoch 80, no augmentation); finetune / semi: our choice, the pre-training schedule's rate (0.1 for batch
#: 128) and weight decay 1e-4 over 100 epochs with the step at 80, with the pre-training augmentation.
DEFAULT_RECIPES: dict[str, dict[str, Any]] = {
    "linear": {
        "epochs": 100,
        "optimizer": {"lr": 3.0, "reference_batch_size": 128, "nesterov": False, "momentum": 0.9,
                      "weight_decay": 0.0},
        "schedule": {"type": "step", "milestones": [80], "gamma": 0.1, "warmup_epochs": 0, "interval": "epoch"},
        "trainer": {"check_val_every_n_epoch": 10},
        "evaluate": {"checkpoint": "last"},
        "augment": False,
    },
    "knn": {"k": 200, "temperature": 0.07, "augment": False},
    "finetune": {
        "epochs": 100,
        "optimizer": {"lr": 0.1, "reference_batch_size": 128, "nesterov": False, "momentum": 0.9,
                      "weight_decay": 0.0001},
        "schedule": {"type": "step", "milestones": [80], "gamma": 0.1, "warmup_epochs": 0, "interval": "epoch"},
        "trainer": {"check_val_every_n_epoch": 10},
        "evaluate": {"checkpoint": "last"},
        "augment": True,
    },
}
#: semi-supervised: the fine-tune recipe on a labelled fraction; a 1 % subset can be smaller than one batch
DEFAULT_RECIPES["semi"] = {**copy.deepcopy(DEFAULT_RECIPES["finetune"]),
                           "data": {"drop_last": False}, "label_fraction": 0.1}


@dataclass
class ProtocolOptions:
    """The keys of a recipe that are not experiment-config keys."""

    #: a view of a multi-view encoder, or ``all`` (every view; logits averaged, embeddings concatenated)
    view: str = "all"
    #: train with ``data.train_pipeline`` (augmentation) instead of ``data.test_pipeline``
    augment: bool = False
    #: kNN: neighbours and temperature of the weighted vote
    k: int = 200
    temperature: float = 0.07
    #: semi: fraction of each class's training labels kept, and the seed of the draw (null: the run's seed)
    label_fraction: float = 0.1
    label_seed: Optional[int] = None
    #: the plot of the frozen test embeddings: ``auto`` (t-SNE when scikit-learn is installed, else PCA),
    #: ``tsne``, ``pca`` or ``none``
    plot: str = "auto"
    #: the source run's checkpoint to take the encoder from (``last`` or ``best``)
    checkpoint: str = "last"
    #: ``pretrained`` (the source run's weights) or ``random`` (the same encoder, randomly initialised: the baseline)
    init: str = "pretrained"
    #: linear: ``batchnorm`` puts a batch norm without scale and shift between the frozen embedding and the
    #: classifier (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, App. A.2: MAE's
    #: features vary in scale, and a fixed learning rate suits only one scale); ``none`` is the contrastive methods'
    #: reference recipe, whose embeddings come out of a batch-normed network at one scale
    feature_norm: str = "none"
    #: linear: encode every clip once and train the classifier on the stored embeddings. The frozen encoder in eval
    #: mode gives a clip the same embedding at every epoch when the training pipeline has no augmentation, so this
    #: is the same training as encoding each batch anew (float rounding aside), in seconds instead of an encoder
    #: pass per step. Ignored with ``augment`` and in multi-process runs, which encode every batch.
    cache_features: bool = True


OPTION_KEYS = tuple(ProtocolOptions.__dataclass_fields__)


def split_recipe(protocol: str, recipe: Mapping[str, Any] | None, source: str | None = None
                 ) -> tuple[dict[str, Any], ProtocolOptions]:
    """``(experiment-config layer, options)`` of ``protocol``: the defaults with ``recipe`` merged over them."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}", field="protocol")
    merged = _deep_merge(copy.deepcopy(DEFAULT_RECIPES[protocol]), dict(recipe or {}))
    options = {k: merged.pop(k) for k in list(merged) if k in OPTION_KEYS}
    opts = settings_from_dict(options, ProtocolOptions, f"protocols.{protocol}", source)
    check_options(opts, protocol, source)
    return merged, opts


def _deep_merge(base: dict, update: Mapping[str, Any]) -> dict:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def check_options(o: ProtocolOptions, protocol: str, source: str | None = None) -> None:
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(message, source, f"protocols.{protocol}.{key}")

    need(o.k >= 1, "k", f"must be at least 1, got {o.k}")
    need(o.temperature > 0, "temperature", f"must be positive, got {o.temperature}")
    need(0.0 < o.label_fraction <= 1.0, "label_fraction", f"must lie in (0, 1], got {o.label_fraction}")
    need(o.plot in PLOT_METHODS, "plot", f"must be one of {', '.join(PLOT_METHODS)}, got {o.plot!r}")
    need(o.checkpoint in ("last", "best"), "checkpoint", f"must be 'last' or 'best', got {o.checkpoint!r}")
    need(o.init in ("pretrained", "random"), "init", f"must be 'pretrained' or 'random', got {o.init!r}")
    need(o.feature_norm in FEATURE_NORMS, "feature_norm",
         f"must be one of {', '.join(FEATURE_NORMS)}, got {o.feature_norm!r}")
    need(o.feature_norm == "none" or protocol == "linear", "feature_norm",
         f"is an option of the linear protocol, not of {protocol}")


# ----------------------------------------------------------------------------------------------------------------
# label subsets


def balanced_label_subset(labels: Any, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of a class-stratified random subset of ``labels``: from each class with ``n_c`` samples,
    ``max(1, floor(fraction * n_c + 1/2))`` of them, drawn without replacement by ``rng``. Every class present
    keeps at least one sample, and the class proportions of the full set are kept (up to rounding)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise DataError(f"expected a non-empty 1-D label array, got shape {labels.shape}", field="labels")
    if not 0.0 < float(fraction) <= 1.0:
        raise ConfigError(f"must lie in (0, 1], got {fraction}", field="label_fraction")
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keep = max(1, math.floor(float(fraction) * members.size + 0.5))
        chosen.append(rng.choice(members, size=min(keep, members.size), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# kNN


def knn_scores(train_features: Any, train_labels: Any, test_features: Any, num_classes: int, k: int = 200,
               temperature: float = 0.07, chunk: int = 1024) -> np.ndarray:
    """Weighted kNN class scores ``[N_test, num_classes]`` (Wu et al., CVPR 2018).

    Features are L2-normalised; for each test sample the ``k`` training samples of largest cosine similarity
    ``s_i`` (all of them if fewer) vote for their labels with weight ``exp(s_i / temperature)``; a class's score is
    its share of the total weight (rows sum to 1).
    """
    train = F.normalize(torch.as_tensor(np.asarray(train_features), dtype=torch.float64), dim=1)
    test = F.normalize(torch.as_tensor(np.asarray(test_features), dtype=torch.float64), dim=1)
    labels = torch.as_tensor(np.asarray(train_labels), dtype=torch.int64)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1] or labels.shape != (train.shape[0],):
        raise DataError(f"expected train [N, D] with N labels and test [M, D], got {tuple(train.shape)}, "
                        f"{tuple(labels.shape)} and {tuple(test.shape)}", field="features")
    k = min(int(k), train.shape[0])
    out = []
    for start in range(0, test.shape[0], chunk):
        sim = test[start:start + chunk] @ train.t()
        top, index = sim.topk(k, dim=1)
        weights = torch.exp((top - 1.0) / temperature)  # shifted by the largest possible similarity: no overflow
        votes = torch.zeros(sim.shape[0], num_classes, dtype=torch.float64)
        votes.scatter_add_(1, labels[index], weights)
        out.append(votes / votes.sum(dim=1, keepdim=True))
    return torch.cat(out).numpy()


# ----------------------------------------------------------------------------------------------------------------
# encoders and their classifiers


def load_encoder_weights(encoder: nn.Module, state_dict: Mapping[str, torch.Tensor], prefix: str,
                         where: str | None = None) -> int:
    """Copy the weights under ``prefix`` (the classifier ``fc.*`` excepted) into ``encoder``; every other parameter
    and buffer must be there and fit. Returns the number of tensors loaded."""
    weights = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    weights = {k: v for k, v in weights.items() if not k.startswith("fc.")}
    if not weights:
        raise DataError(f"the checkpoint has no weights under {prefix!r}", where, "state_dict")
    try:
        missing, unexpected = encoder.load_state_dict(weights, strict=False)
    except RuntimeError as e:
        raise DataError(f"the checkpoint's encoder does not fit the model ({str(e).splitlines()[0]})", where,
                        "state_dict") from None
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {list(unexpected)[:3]}"
        raise DataError(f"the checkpoint's encoder does not fit the model ({what})", where, "state_dict")
    return len(weights)


@torch.no_grad()
def estimate_batch_norm_statistics(encoders: Mapping[str, nn.Module], batches: Iterable[Mapping[str, torch.Tensor]]
                                   ) -> int:
    """Replace the running mean and variance of every batch-norm layer of ``encoders`` (``{view: backbone}``) by
    the average of the batch statistics that layer sees over ``batches`` (``{view: [N, M, T, V, C]}`` inputs);
    weights, biases and every other layer (dropout) are untouched and stay in eval mode. Returns the number of
    samples seen.

    Why: a randomly initialised encoder judged *frozen* (linear, kNN) would otherwise normalise with its initial
    statistics (mean 0, variance 1), which describe no data; ten ST-GCN blocks of ReLU then shrink the pooled
    features of NW-UCLA clips to about 1e-7, and a linear classifier on them cannot leave chance. The weights
    stay random, so this is still the random-initialisation baseline, with statistics as a frozen trained
    encoder has them (the estimate of ``torch.optim.swa_utils.update_bn``: momentum ``None``, cumulative average;
    ``update_bn`` itself is not used because it runs the whole model in training mode, so dropout would distort
    the statistics of every batch-norm layer after it, and it takes one tensor per batch, not one per view).
    """
    norms = [m for e in encoders.values() for m in e.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    momenta = [m.momentum for m in norms]
    was_training = {view: e.training for view, e in encoders.items()}
    for encoder in encoders.values():
        encoder.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    seen = 0
    try:
        for batch in batches:
            for view, encoder in encoders.items():
                encoder.extract_features(batch[view])
            seen += int(next(iter(batch.values())).shape[0])
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for view, encoder in encoders.items():
            encoder.train(was_training[view])  # also every batch-norm layer's mode
    if seen == 0:
        raise DataError("no samples to estimate the batch-norm statistics from", field="train")
    return seen


class EncoderClassifier(nn.Module):
    """Per-view encoders (``nn.ModuleDict``) with one linear classifier each; logits are the views' mean.

    ``frozen``: the encoders get no gradient and stay in eval mode whatever ``train()`` is called with, so their
    batch-norm statistics never move and dropout is off (the linear protocol). Otherwise everything trains
    (fine-tuning). ``feature_norm="batchnorm"``: each view's embedding passes a batch norm without scale and shift
    before its classifier (:class:`ProtocolOptions`). Inputs are ``{view: [N, M, T, V, C]}`` batches
    (:class:`~skelact.data.multiview.MultiViewDataset`).
    """

    def __init__(self, encoders: Mapping[str, nn.Module], num_classes: int, *, frozen: bool,
                 generator: torch.Generator | None = None, feature_norm: str = "none"):
        super().__init__()
        if not encoders:
            raise ConfigError("no encoder to evaluate", field="views")
        self.encoders = nn.ModuleDict(dict(encoders))
        self.heads = nn.ModuleDict({v: nn.Linear(encoder_width(e), int(num_classes)) for v, e in encoders.items()})
        reset_linear_(self.heads, generator)
        if feature_norm not in FEATURE_NORMS:
            raise ConfigError(f"must be one of {', '.join(FEATURE_NORMS)}, got {feature_norm!r}", field="feature_norm")
        self.feature_norms = (nn.ModuleDict({v: nn.BatchNorm1d(encoder_width(e), affine=False)
                                             for v, e in encoders.items()}) if feature_norm == "batchnorm" else None)
        self.frozen = bool(frozen)
        for encoder in self.encoders.values():
            classifier = getattr(encoder, "fc", None)
            if isinstance(classifier, nn.Module):
                classifier.requires_grad_(False)  # replaced by self.heads
        if self.frozen:
            self.encoders.requires_grad_(False)
            self.encoders.eval()

    def train(self, mode: bool = True) -> "EncoderClassifier":
        super().train(mode)
        if self.frozen:
            self.encoders.eval()
        return self

    @property
    def view_names(self) -> list[str]:
        return list(self.encoders.keys())

    def features(self, x: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pooled embeddings ``{view: [N, D]}`` (no gradient when frozen).

        A 2-D entry ``[N, D]`` of ``x`` is taken as that view's embedding, already computed by this frozen encoder
        (:class:`EmbeddingDataset`); skeleton batches are ``[N, M, T, V, C]``."""
        out = {}
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            for v in self.view_names:
                if x[v].dim() == 2:
                    if not self.frozen:
                        raise ConfigError("stored embeddings can only train the classifier of a frozen encoder",
                                          field="cache_features")
                    out[v] = x[v]
                else:
                    out[v] = self.encoders[v].extract_features(x[v])
        return out

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        feats = self.features(x)
        if self.feature_norms is not None:
            feats = {v: self.feature_norms[v](f) for v, f in feats.items()}
        logits = [self.heads[v](feats[v]) for v in self.view_names]
        return torch.stack(logits).mean(dim=0)

    def embedding(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Concatenated L2-normalised embeddings ``[N, sum D]`` (kNN, plots)."""
        feats = self.features(x)
        return torch.cat([F.normalize(feats[v].float(), dim=1) for v in self.view_names], dim=1)

    def training_step(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["x"])
        return F.cross_entropy(logits.float(), batch["label"]), logits


class RawFeaturesOf(nn.Module):
    """``forward(x)`` = the views' pooled embeddings side by side, ``[N, sum D]``, as the classifier's heads see
    them (not normalised): lets the engine's prediction loop collect them for :class:`EmbeddingDataset`."""

    def __init__(self, classifier: EncoderClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        feats = self.classifier.features(x)
        return torch.cat([feats[v].float() for v in self.classifier.view_names], dim=1)


class EmbeddingDataset(Dataset):
    """Stored per-view embeddings of a frozen encoder, served like
    :class:`~skelact.data.multiview.MultiViewDataset` items: ``{"x": {view: [D]}, "label", "index"}``.

    ``features``: ``[N, sum D]`` from :class:`RawFeaturesOf`, split into ``widths`` (one per view, in order)."""

    def __init__(self, features: Any, widths: Mapping[str, int], labels: Any, names: Any = None):
        features = torch.as_tensor(np.asarray(features, dtype=np.float32))
        labels = np.asarray(labels, dtype=np.int64)
        if features.dim() != 2 or features.shape[1] != sum(widths.values()) or features.shape[0] != labels.size:
            raise DataError(f"embeddings of shape {tuple(features.shape)} do not match {labels.size} labels and "
                            f"view widths {dict(widths)}", field="features")
        if not bool(torch.isfinite(features).all()):
            raise DataError("the encoder produced NaN or infinite embeddings", field="features")
        self.views = {v: part.contiguous() for v, part in
                      zip(widths, torch.split(features, list(widths.values()), dim=1))}
        self.labels = labels
        self.names = list(names) if names is not None else [str(i) for i in range(labels.size)]

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        # the engine's EpochSampler yields (epoch, position) keys; an embedding is the same at every epoch
        index = int(key[1]) if isinstance(key, tuple) else int(key)
        return {"x": {v: f[index] for v, f in self.views.items()}, "label": int(self.labels[index]),
                "index": index}


def collate_embeddings(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Picklable ``collate_fn`` for :class:`EmbeddingDataset`."""
    return {"x": {v: torch.stack([b["x"][v] for b in batch]) for v in batch[0]["x"]},
            "label": torch.tensor([b["label"] for b in batch], dtype=torch.int64),
            "index": torch.tensor([b["index"] for b in batch], dtype=torch.int64)}


class EmbeddingOf(nn.Module):
    """``forward(x)`` = ``classifier.embedding(x)``: lets the engine's prediction loop collect embeddings."""

    def __init__(self, classifier: EncoderClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.classifier.embedding(x)
