"""A torch ``Dataset`` over one subset of a store's split, its per-sample pipeline, sampler and batch collation.

Reproducibility without hidden state: the random generator of a sample is derived from ``(seed, epoch, sample
index)`` only, never from a worker's or the process's RNG. A sample therefore gets the same augmentation whatever
the number of workers, the order it is loaded in, or whether the run was resumed. The epoch reaches the workers
through the sampler, which yields ``(epoch, index)`` pairs (:class:`EpochSampler`); plain integer indices use epoch
0 (evaluation). The shuffling order is likewise a function of ``(seed, epoch)``.

An item is a mapping of named inputs (see :mod:`skelact.data.batch`): the arrays the pipeline's last step,
:class:`~skelact.data.transforms.ToInputs`, names (without one: ``x``, the keypoints), with ``label`` and ``index``.
Keypoint sequences are float32 ``[M, T, V, C]`` (M = the configured person slots); batches add ``N`` in front.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from skelact.data.batch import NamedCollate, collate_by_name
from skelact.data.transforms import sample_from_sequence
from skelact.data.transforms.inputs import CLIPS_KEY, DEFAULT_INPUTS, INPUTS_KEY, SEQUENCES_KEY
from skelact.errors import DataError


def evenly_spaced(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` entries of ``indices``, evenly spaced (first and last kept), so a small subset still spans
    every class of a dataset stored class by class."""
    indices = np.asarray(indices, dtype=np.int64)
    if limit is None or limit >= indices.size:
        return indices
    picks = np.unique(np.linspace(0, indices.size - 1, int(limit)).round().astype(np.int64))
    return indices[picks]


class SkeletonDataset(Dataset):
    """Samples ``indices`` of ``store``, each run through ``pipeline`` with its own seeded generator.

    ``pipeline`` is a callable ``(sample dict, rng) -> sample dict`` (a
    :class:`~skelact.data.transforms.Compose`). ``num_persons`` is the number of person slots the model takes:
    fewer persons are zero-padded (the convention of NTU's two-body arrays), further ones are dropped, keeping the
    first ones, which readers order most relevant first.
    """

    def __init__(self, store: Any, indices: Sequence[int], pipeline: Callable | None = None, *,
                 num_persons: int = 1, seed: int = 0):
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.pipeline = pipeline
        self.num_persons = int(num_persons)
        self.seed = int(seed)

    def __len__(self) -> int:
        return int(self.indices.size)

    @property
    def labels(self) -> np.ndarray:
        """Labels of the samples in dataset order (int64)."""
        return np.asarray(self.store.labels, dtype=np.int64)[self.indices]

    @property
    def names(self) -> list[str]:
        return [self.store.name(int(i)) for i in self.indices]

    def rng(self, position: int, epoch: int = 0) -> np.random.Generator:
        """The generator of sample ``position`` at ``epoch`` (a pure function of the seed, epoch and sample)."""
        return np.random.default_rng([self.seed, int(epoch), int(self.indices[position])])

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        epoch, position = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (0, int(key))
        index = int(self.indices[position])
        if getattr(self.store, "has_keypoints", True):
            seq = self.store[index]
            sample = sample_from_sequence(seq)
            # the store's own Layout object: a user-defined layout may not be resolvable by name
            sample["layout"] = self.store.layout
        else:  # a video store (UCF101, HMDB51): no keypoints, the pipeline works on the video alone
            sample = {"name": self.store.name(index), "label": int(self.store.labels[index]),
                      "meta": self.store.meta(index)}
        # an RGB pipeline step (ClipPairs) reads the frames of the sample's video (aligned with any keypoints)
        if getattr(self.store, "video_root", None) is not None and self.store.video(index) is not None:
            sample["video"] = str(self.store.video_path(index))
        if self.pipeline is not None:
            sample = self.pipeline(sample, self.rng(position, epoch))
        return named_inputs(sample, self.num_persons, str(sample["name"]),
                            {"label": int(sample["label"]), "index": position})


def named_inputs(sample: dict[str, Any], num_persons: int, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The model inputs a pipeline's sample names (:class:`~skelact.data.transforms.ToInputs`; without one, its
    keypoints as ``x``) as tensors, keypoint sequences fitted to ``num_persons`` slots, plus ``extra``."""
    names = tuple(sample.get(INPUTS_KEY, tuple(DEFAULT_INPUTS)))
    sequences = tuple(sample.get(SEQUENCES_KEY, tuple(DEFAULT_INPUTS)))
    item: dict[str, Any] = {}
    for input_name in names:
        key = DEFAULT_INPUTS[input_name] if INPUTS_KEY not in sample else input_name
        value = np.asarray(sample[key])
        if input_name in sequences:
            value = fit_persons(value.astype(np.float32, copy=False), num_persons)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise DataError(f"the pipeline produced NaN or infinite values in input {input_name!r}", name, key)
        item[input_name] = torch.from_numpy(np.ascontiguousarray(value))
    item.update(extra)
    item[INPUTS_KEY] = names
    item[SEQUENCES_KEY] = sequences
    if sample.get(CLIPS_KEY):
        item[CLIPS_KEY] = tuple(sample[CLIPS_KEY])
    return item


def fit_persons(keypoints: np.ndarray, num_persons: int) -> np.ndarray:
    """``[M, T, V, C]`` -> ``[num_persons, T, V, C]``: zero-pad missing persons, keep the first ones."""
    m = keypoints.shape[0]
    if m == num_persons:
        return keypoints
    if m > num_persons:
        return keypoints[:num_persons]
    pad = np.zeros((num_persons - m, *keypoints.shape[1:]), dtype=keypoints.dtype)
    return np.concatenate([keypoints, pad], axis=0)


#: the names skelact's skeleton batches always had; the collation now stacks any named inputs
collate_skeletons = collate_by_name
SkeletonCollate = NamedCollate


class EpochSampler(Sampler):
    """Yields ``(epoch, position)`` pairs: a shuffled (or ordered) pass over ``size`` samples, split over ranks.

    Like :class:`torch.utils.data.DistributedSampler`, the order is a function of ``(seed, epoch)`` and each of
    ``num_replicas`` ranks takes every ``num_replicas``-th entry after padding the order with its own beginning to
    a multiple of ``num_replicas`` (so every rank runs the same number of steps). Unlike it, the permutation comes
    from a seeded numpy generator and the epoch travels with every index, so the dataset can seed per-sample
    augmentation from it. The training loop calls :meth:`set_epoch` before each epoch (Lightning does).
    """

    def __init__(self, size: int, *, shuffle: bool = True, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.size = int(size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """This rank's positions for the current epoch."""
        if self.shuffle:
            full = np.random.default_rng([self.seed, self.epoch, 0x5EED]).permutation(self.size)
        else:
            full = np.arange(self.size)
        total = self.num_samples * self.num_replicas
        if total > self.size:
            full = np.concatenate([full, np.resize(full, total - self.size)])
        return full[self.rank:total:self.num_replicas]

    @property
    def num_samples(self) -> int:
        return math.ceil(self.size / self.num_replicas)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return iter([(epoch, int(p)) for p in self.order()])

    def __len__(self) -> int:
        return self.num_samples
