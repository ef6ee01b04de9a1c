"""Samples seen through several modalities at once, and drawn twice for contrastive learning.

Contrastive pre-training (SkeletonCLR, CrosSCLR; Li et al., CVPR 2021) needs, per training sample, two independent
augmentations (the *query* and the *key* draw), and CrosSCLR needs each draw in several modalities (joint, motion,
bone) computed from the same augmented joints, as the reference computes them from its two augmented joint arrays
(LinguoLi/CrosSCLR ``net/crossclr_3views.py``). :class:`MultiViewDataset` does both:

* the per-sample ``pipeline`` (augmentation, temporal sampling; no modality) runs ``draws`` times, each draw with
  its own generator ``default_rng([seed, epoch, sample index, draw])``, so a sample's augmentations are a pure
  function of the seed, the epoch and the sample (whatever the workers, the order or a resume), and the two draws
  differ;
* every draw is turned into each modality of ``views`` with :class:`~skelact.data.transforms.ToModality`, the one
  place modalities are computed.

Batches (:class:`MultiViewCollate`) are dicts: with one draw ``x = {view: [N, M, T, V, C]}``, with two draws
``query`` and ``key`` of that form; plus ``label`` and ``index`` as :class:`~skelact.data.dataset.SkeletonDataset`
gives them. The evaluation protocols use one draw (every view of the same clip), pre-training two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from skelact.data.dataset import SkeletonDataset, collate_skeletons, fit_persons
from skelact.data.transforms import ToModality, modality_name, sample_from_sequence
from skelact.errors import ConfigError, DataError

#: batch keys of the draws, in draw order
DRAW_KEYS = {1: ("x",), 2: ("query", "key")}


class MultiViewDataset(SkeletonDataset):
    """Samples ``indices`` of ``store``, each drawn ``draws`` times (1 or 2) through ``pipeline`` and returned in
    every modality of ``views`` (``joint``, ``bone``, ``joint_motion``, ``bone_motion`` or their aliases).

    ``num_persons`` person slots as in :class:`~skelact.data.dataset.SkeletonDataset`, whose indexing, labels and
    names it shares; only the per-draw generators and the items differ.
    """

    def __init__(self, store: Any, indices: Sequence[int], pipeline: Callable | None, views: Sequence[str], *,
                 draws: int = 1, num_persons: int = 1, seed: int = 0):
        if draws not in DRAW_KEYS:
            raise ConfigError(f"expected 1 or 2 draws per sample, got {draws!r}", field="draws")
        names = [modality_name(v) for v in views]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"expected distinct modalities, got {list(views)}", field="views")
        super().__init__(store, indices, pipeline, num_persons=num_persons, seed=seed)
        self.views = tuple(names)
        self.draws = int(draws)
        self._to_view = {v: ToModality(v) for v in self.views}

    def rng(self, position: int, epoch: int = 0, draw: int = 0) -> np.random.Generator:
        """The generator of draw ``draw`` of sample ``position`` at ``epoch``."""
        return np.random.default_rng([self.seed, int(epoch), int(self.indices[position]), int(draw)])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, position = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (0, int(key))
        seq = self.store[int(self.indices[position])]
        base = sample_from_sequence(seq)
        base["layout"] = self.store.layout
        out: dict[str, Any] = {"label": int(seq.label), "index": position}
        for draw, name in enumerate(DRAW_KEYS[self.draws]):
            rng = self.rng(position, epoch, draw)
            sample = base if self.pipeline is None else self.pipeline(base, rng)
            views = {}
            for view, to_view in self._to_view.items():
                x = fit_persons(np.asarray(to_view(sample, rng)["keypoints"], dtype=np.float32), self.num_persons)
                if not np.isfinite(x).all():
                    raise DataError(f"the pipeline produced NaN or infinite {view} coordinates", seq.name,
                                    "keypoints")
                views[view] = torch.from_numpy(np.ascontiguousarray(x))
            out[name] = views
        return out


class MultiViewCollate:
    """Picklable ``collate_fn`` for :class:`MultiViewDataset`: every view of every draw is stacked (and padded to
    ``num_frames`` or the longest clip) by :func:`~skelact.data.dataset.collate_skeletons`."""

    def __init__(self, num_frames: int | None = None):
        self.num_frames = num_frames

    def __call__(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        first = batch[0]
        out: dict[str, Any] = {}
        for name in (k for k in ("x", "query", "key") if k in first):
            out[name] = {}
            for view in first[name]:
                stacked = collate_skeletons([{"x": b[name][view], "label": b["label"], "index": b["index"]}
                                             for b in batch], self.num_frames)
                out[name][view] = stacked["x"]
        out["label"] = torch.tensor([b["label"] for b in batch], dtype=torch.int64)
        out["index"] = torch.tensor([b["index"] for b in batch], dtype=torch.int64)
        return out
