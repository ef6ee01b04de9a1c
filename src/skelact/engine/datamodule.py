"""Data loaders for a run: seeded, epoch-aware sampling split over processes (see :mod:`skelact.data.dataset`)."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from skelact.data.dataset import EpochSampler, SkeletonCollate


class SkeletonDataModule(L.LightningDataModule):
    """Training loader (shuffled by ``(seed, epoch)``, split over processes, last partial batch dropped when
    ``drop_last``), validation loader (the test subset in order, split over processes) and a single-process
    prediction loader over the test subset (what ``test_command`` scores)."""

    def __init__(self, train_set: Any, test_set: Any, *, batch_size: int, test_batch_size: int, num_workers: int,
                 seed: int, drop_last: bool = True, num_frames: int | None = None):
        super().__init__()
        self.train_set = train_set
        self.test_set = test_set
        self.batch_size = int(batch_size)
        self.test_batch_size = int(test_batch_size)
        self.num_workers = int(num_workers)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.collate = SkeletonCollate(num_frames)

    def _ranks(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def _loader(self, dataset: Any, sampler: Any, batch_size: int, drop_last: bool) -> DataLoader:
        pin = self.trainer is not None and self.trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=self.num_workers,
                          collate_fn=self.collate, drop_last=drop_last, pin_memory=pin,
                          persistent_workers=self.num_workers > 0,
                          # only seeds worker processes; samples are seeded by (seed, epoch, index) themselves
                          generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        world, rank = self._ranks()
        sampler = EpochSampler(len(self.train_set), shuffle=True, seed=self.seed, num_replicas=world, rank=rank)
        sampler.set_epoch(self._first_epoch())
        return self._loader(self.train_set, sampler, self.batch_size, self.drop_last)

    def _first_epoch(self) -> int:
        """The epoch the first training iterator will serve: 0 for a new run, the next epoch for a resumed one.

        Lightning creates that iterator (``FitLoop.setup_data``) before it calls ``set_epoch`` for the epoch, and
        with ``num_workers > 0`` the iterator starts fetching at once, so the sampler must already hold the right
        epoch here; otherwise a resumed run repeats epoch 0's order and augmentation in its first epoch (without
        workers the sampler is read lazily, after ``set_epoch``, which is why only runs with workers diverged).
        ``epoch_progress.current.processed`` is the value Lightning itself passes to ``set_epoch``."""
        trainer = self.trainer
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_progress.current.processed)

    def val_dataloader(self) -> DataLoader:
        # split over processes like DistributedSampler: with N processes up to N - 1 samples are seen twice, so
        # the per-epoch val/* numbers of a multi-process run are approximate; metrics.json is computed in one
        # process over every test sample exactly once
        world, rank = self._ranks()
        sampler = EpochSampler(len(self.test_set), shuffle=False, seed=self.seed, num_replicas=world, rank=rank)
        return self._loader(self.test_set, sampler, self.test_batch_size, False)

    def predict_dataloader(self) -> DataLoader:
        sampler = EpochSampler(len(self.test_set), shuffle=False, seed=self.seed)
        return self._loader(self.test_set, sampler, self.test_batch_size, False)
