"""Pieces of the runs whose samples come in several views (``skelact pretrain`` and the protocols of ``skelact
evaluate``): the pipelines without a modality, the multi-view data module, the method's epoch callback, checkpoint
reading and prediction in dataset order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from skelact.config import LoadedConfig, to_container
from skelact.engine.runs import RunLog, lit_module
from skelact.errors import ConfigError, RunError


def plain_pipeline(loaded: LoadedConfig, which: str):
    """``data.<which>_pipeline`` as a Compose, without a modality (views are added by the multi-view dataset)."""
    from skelact.data.transforms import Compose

    key = f"data.{which}_pipeline"
    try:
        return Compose(list(to_container(loaded.cfg.data[f"{which}_pipeline"])))
    except ConfigError as e:
        field = f"{key}.{e.field}" if e.field else key
        raise ConfigError(e.message, loaded.source_of(key), field) from None


def multiview_data_module(loaded: LoadedConfig, train_set: Any, test_set: Any):
    from skelact.data.multiview import MultiViewCollate
    from skelact.engine.datamodule import SkeletonDataModule
    from skelact.methods.protocols import EmbeddingDataset, collate_embeddings

    d = loaded.cfg.data
    stored = isinstance(train_set if train_set is not None else test_set, EmbeddingDataset)
    # stored embeddings are in memory already: worker processes would only add start-up time
    data = SkeletonDataModule(train_set, test_set, batch_size=d.batch_size, test_batch_size=d.test_batch_size,
                              num_workers=0 if stored else d.num_workers, seed=loaded.cfg.seed,
                              drop_last=d.drop_last, num_frames=d.num_frames)
    data.collate = collate_embeddings if stored else MultiViewCollate(d.num_frames)
    return data


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one user-facing line
        raise RunError(f"unreadable checkpoint ({type(e).__name__})", path) from None


def method_epoch_callback(log: RunLog):
    import lightning as L

    class MethodEpoch(L.Callback):
        """Hands the epoch to methods whose loss depends on it (CrosSCLR's phases) before each epoch."""

        def __init__(self):
            self._phase: Any = None

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            method = pl_module.method
            if hasattr(method, "set_epoch"):
                method.set_epoch(trainer.current_epoch)
                phase = getattr(method, "cross_phase", None)
                if phase is not None and phase != self._phase and trainer.is_global_zero:
                    what = "cross-view knowledge mining" if phase else "single-view contrastive learning"
                    log(f"epoch {trainer.current_epoch + 1}: {what}")
                self._phase = phase

    return MethodEpoch()


def method_views(loaded: LoadedConfig) -> list[str]:
    """The views (modalities) whose encoders a run of ``loaded`` trains (the method table's ``views``: CrosSCLR's
    ``method.crossclr.views``, else ``data.modality``)."""
    from skelact.engine.build import method_views as views_of

    return views_of(loaded)


def predict_in_order(loaded: LoadedConfig, method: Any, dataset: Any, num_classes: int) -> np.ndarray:
    """``method(batch['x'])`` for every sample of ``dataset``, in dataset order, through the engine's single-device
    prediction loop."""
    import torch

    from skelact.engine.optim import LRSchedule
    from skelact.engine.trainer import build_eval_trainer

    module = lit_module(loaded, method, LRSchedule(base_lr=loaded.cfg.optimizer.lr, epochs=1), num_classes, None)
    outputs = build_eval_trainer(loaded.cfg).predict(module, datamodule=multiview_data_module(loaded, None, dataset))
    values = torch.cat([o["logits"] for o in outputs]).cpu().numpy().astype(np.float32)
    index = torch.cat([o["index"] for o in outputs]).cpu().numpy()
    ordered = np.empty_like(values)
    ordered[index] = values
    return ordered

