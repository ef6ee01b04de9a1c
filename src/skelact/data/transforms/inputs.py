"""The last step of a pipeline: which arrays of the sample the model takes, under which argument names.

A sample is a mapping of named arrays (``keypoints``, later ``heatmap``, ``frames``, ...). :class:`ToInputs` picks
the ones the model's ``forward`` takes and names them after its keyword arguments, e.g. ``{x: keypoints}`` for the
GCNs (``forward(x)``) or ``{joint: keypoints, bone: bone}`` for a two-stream model (``forward(joint, bone)``). The
dataset turns them into tensors and :func:`skelact.data.batch.collate_by_name` stacks each name over a batch.

Inputs listed in ``sequences`` are keypoint sequences ``[M, T, V, C]``: the dataset fits them to the configured
person slots and the collation pads them in time (as skeleton batches always were); every other input must have
the same shape in every sample and is stacked as it is. By default every input taken from ``keypoints``, or shaped
exactly like them (a modality written beside them, ``ToModality(into=...)``), is a sequence.

Inputs listed in ``clips`` carry several views of the sample on a leading axis (PoseConv3D's 10 clips and their
mirror images, ``[clips, K, T, H, W]``): evaluation runs the model on every clip and averages its scores per sample
(:func:`skelact.data.batch.clip_averaged_scores`); training batches must not have them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from skelact.data.transforms.registry import bad_argument, register_transform
from skelact.data.transforms.sample import Sample, sample_name, updated
from skelact.errors import DataError

#: batch keys that are not model inputs, so no input may take their names
RESERVED = ("label", "index", "inputs", "sequences", "clip_inputs")
#: the sample keys ToInputs writes: the input names in order, and those of them that are keypoint sequences
INPUTS_KEY = "inputs"
SEQUENCES_KEY = "sequences"
#: the sample key naming the inputs that carry several clips on a leading axis
CLIPS_KEY = "clip_inputs"
#: what a pipeline without a ToInputs step gives the model: its keypoints as ``x``
DEFAULT_INPUTS = {"x": "keypoints"}


@register_transform
class ToInputs:
    """Name the model's inputs: ``inputs`` maps each argument of the model's ``forward`` to a sample key (a list
    of keys uses each key as its own name). ``sequences``: the inputs that are ``[M, T, V, C]`` keypoint sequences
    (default: those taken from ``keypoints`` or shaped like them). ``clips``: the inputs with a leading clip axis
    whose scores evaluation averages (default none)."""

    def __init__(self, inputs: Any = None, sequences: Sequence[str] | None = None, clips: Sequence[str] = ()):
        if inputs is None:
            inputs = dict(DEFAULT_INPUTS)
        if isinstance(inputs, Sequence) and not isinstance(inputs, str):
            inputs = {str(k): str(k) for k in inputs}
        if not isinstance(inputs, Mapping) or not inputs:
            raise bad_argument("ToInputs", "inputs", f"expected a mapping {{argument: sample key}} or a list of "
                               f"sample keys, got {inputs!r}")
        for name, key in inputs.items():
            if not isinstance(name, str) or not name.isidentifier() or name in RESERVED:
                raise bad_argument("ToInputs", "inputs", f"an input name must be a Python identifier other than "
                                   f"{', '.join(RESERVED)}, got {name!r}")
            if not isinstance(key, str) or not key:
                raise bad_argument("ToInputs", "inputs", f"input {name!r}: expected a sample key, got {key!r}")
        self.inputs = {str(k): str(v) for k, v in inputs.items()}
        if sequences is not None:
            unknown = [s for s in sequences if s not in self.inputs]
            if isinstance(sequences, str) or unknown:
                raise bad_argument("ToInputs", "sequences", f"expected a list of input names among "
                                   f"{', '.join(self.inputs)}, got {sequences!r}")
            sequences = tuple(str(s) for s in sequences)
        self.sequences = sequences
        unknown = [c for c in clips if c not in self.inputs] if not isinstance(clips, str) else [clips]
        if unknown or (sequences is not None and set(clips) & set(sequences)):
            raise bad_argument("ToInputs", "clips", f"expected a list of input names among {', '.join(self.inputs)}"
                               f" that are not sequences, got {clips!r}")
        self.clips = tuple(str(c) for c in clips)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        arrays = {}
        for name, key in self.inputs.items():
            if key not in sample or sample[key] is None:
                have = ", ".join(k for k, v in sample.items() if isinstance(v, np.ndarray)) or "none"
                raise DataError(f"ToInputs: input {name!r} takes the sample's {key!r}, which it does not have "
                                f"(arrays: {have})", sample_name(sample), key)
            arrays[name] = np.asarray(sample[key])
        out = updated(sample, **arrays)
        out[INPUTS_KEY] = tuple(self.inputs)
        out[SEQUENCES_KEY] = self.sequences if self.sequences is not None else self._sequences_of(sample, arrays)
        out[CLIPS_KEY] = self.clips
        return out

    def _sequences_of(self, sample: Sample, arrays: dict[str, np.ndarray]) -> tuple[str, ...]:
        keypoints = sample.get("keypoints")
        shape = None if keypoints is None else np.shape(keypoints)
        return tuple(name for name, key in self.inputs.items()
                     if key == "keypoints" or (shape is not None and arrays[name].shape == shape))

    def __repr__(self) -> str:
        sequences = "" if self.sequences is None else f", sequences={list(self.sequences)!r}"
        clips = f", clips={list(self.clips)!r}" if self.clips else ""
        return f"ToInputs(inputs={self.inputs!r}{sequences}{clips})"
