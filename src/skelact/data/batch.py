"""Batches of named inputs: samples stacked name by name, and the model's keyword arguments taken from a batch.

A dataset item is a mapping: the model's inputs under their argument names (tensors), ``label`` (int), ``index``
(position in the dataset), ``inputs`` (the input names, in order) and ``sequences`` (those of them that are
``[M, T, V, C]`` keypoint sequences; see :class:`~skelact.data.transforms.ToInputs`). :func:`collate_by_name`
stacks each input over the batch: keypoint sequences are zero-padded at the end of the time axis to the longest
clip of the batch (or to ``num_frames``), as the reference feeders pad to a fixed length; any other input must have
the same shape in every sample. An item without ``inputs`` is a plain skeleton sample: ``x`` is its keypoint
sequence (what skelact's batches always held).

A batch keeps ``inputs``, so whoever runs the model needs no other knowledge of the data:
``model(**model_inputs(batch))``. An item may also name ``clip_inputs``: inputs with a leading clip axis (a test
sample of several clips, ``[N, S, ...]`` once batched); :func:`clip_averaged_scores` runs the model on every clip
and averages the scores per sample, and is what evaluation calls (a batch without clip inputs: one plain call).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from skelact.errors import DataError

#: the inputs of an item that does not name its own: its keypoint sequence ``x``
PLAIN_INPUTS = ("x",)


def input_names(item: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the model inputs in a dataset item or a batch."""
    return tuple(item.get("inputs", PLAIN_INPUTS))


def model_inputs(batch: Mapping[str, Any]) -> dict[str, Any]:
    """The batch's inputs as the keyword arguments of the model's ``forward``."""
    return {name: batch[name] for name in input_names(batch)}


def pad_time(x: torch.Tensor, frames: int) -> torch.Tensor:
    """``[M, T, ...]`` zero-padded at the end of the time axis (axis 1) to ``frames``."""
    if x.shape[1] >= frames:
        return x
    pad = x.new_zeros((x.shape[0], frames - x.shape[1], *x.shape[2:]))
    return torch.cat([x, pad], dim=1)


def stack_sequences(xs: Sequence[torch.Tensor], num_frames: int | None, name: str = "x") -> torch.Tensor:
    """``[M, T_i, V, C]`` sequences as one ``[N, M, T, V, C]`` tensor, ``T`` the longest clip or ``num_frames``.
    A clip longer than ``num_frames`` is an error: cutting it is the pipeline's job (a temporal sampling
    transform), not the collator's."""
    frames = [x.shape[1] for x in xs]
    target = max(frames) if num_frames is None else int(num_frames)
    if max(frames) > target:
        raise DataError(f"a sample's {name!r} has {max(frames)} frames, more than data.num_frames={target}; add a "
                        "temporal sampling transform to the pipeline or raise data.num_frames",
                        field="data.num_frames")
    return torch.stack([pad_time(x, target) for x in xs])


def collate_by_name(batch: Sequence[Mapping[str, Any]], num_frames: int | None = None) -> dict[str, Any]:
    """One batch from dataset items (see the module docstring)."""
    first = batch[0]
    names = input_names(first)
    sequences = set(first.get("sequences", PLAIN_INPUTS if "inputs" not in first else ()))
    out: dict[str, Any] = {}
    for name in names:
        values = [torch.as_tensor(b[name]) for b in batch]
        if name in sequences:
            out[name] = stack_sequences(values, num_frames, name)
            continue
        shapes = {tuple(v.shape) for v in values}
        if len(shapes) != 1:
            raise DataError(f"input {name!r} has different shapes within a batch ({', '.join(map(str, sorted(shapes)))}"
                            "); give the samples one shape in the pipeline, or list the input under ToInputs' "
                            "sequences if it is a keypoint sequence", field=name)
        out[name] = torch.stack(values)
    out["label"] = torch.tensor([b["label"] for b in batch], dtype=torch.int64)
    out["index"] = torch.tensor([b["index"] for b in batch], dtype=torch.int64)
    out["inputs"] = names
    if first.get("clip_inputs"):
        out["clip_inputs"] = tuple(first["clip_inputs"])
    return out


def clip_averaged_scores(model: Callable[..., torch.Tensor], batch: Mapping[str, Any]) -> torch.Tensor:
    """``[N, classes]`` scores of the batch: ``model(**model_inputs(batch))``, except that inputs named in
    ``clip_inputs`` (``[N, S, ...]``) are run as ``N * S`` samples (other inputs repeated for each clip) and the
    ``S`` scores of each sample averaged, as pyskl does for PoseConv3D's multi-clip test (it averages softmax
    probabilities by default, its ``average_clips='prob'``; we average the raw scores, ``'score'``, so that the
    result stays a logit that the loss and score fusion read as before)."""
    inputs = model_inputs(batch)
    clip_names = tuple(batch.get("clip_inputs", ()))
    if not clip_names:
        return model(**inputs)
    counts = {tuple(inputs[name].shape[:2]) for name in clip_names}
    if len(counts) != 1:
        raise DataError(f"inputs {', '.join(clip_names)} have different [N, clips] {sorted(counts)}",
                        field="clip_inputs")
    (n, clips), = counts
    flat = {}
    for name, value in inputs.items():
        if name in clip_names:
            flat[name] = value.reshape(n * clips, *value.shape[2:])
        else:
            flat[name] = value.repeat_interleave(clips, dim=0)
    scores = model(**flat)
    return scores.reshape(n, clips, *scores.shape[1:]).mean(dim=1)


class NamedCollate:
    """Picklable ``collate_fn`` with a fixed ``num_frames`` (for DataLoader workers)."""

    def __init__(self, num_frames: int | None = None):
        self.num_frames = num_frames

    def __call__(self, batch: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return collate_by_name(batch, self.num_frames)
