"""A pipeline: transforms applied in order, sharing one random generator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any, Callable

import numpy as np

from skelact.data.transforms.registry import build_transform, register_transform
from skelact.data.transforms.sample import Sample
from skelact.errors import ConfigError


@register_transform
class Compose:
    """Apply ``transforms`` one after the other: ``Compose([a, b])(s, rng) == b(a(s, rng), rng)``.

    Items may be transform instances or config specs ``{'type': Name, ...}``; a nested ``Compose`` is written
    ``{'type': 'Compose', 'transforms': [...]}``. ``rng`` must be a :class:`numpy.random.Generator`; the caller
    (the dataset) seeds it, so a pipeline run is reproducible from its seed.
    """

    def __init__(self, transforms: Sequence[Any] = (), source: str | PathLike | None = None):
        if isinstance(transforms, (Mapping, str)) or not isinstance(transforms, Sequence):
            raise ConfigError(f"Compose: expected a list of transforms, got {type(transforms).__name__}", source,
                              "transforms")
        self.transforms: list[Callable[[Sample, np.random.Generator], Sample]] = [
            build_transform(t, source=source, where=f"transforms[{k}]") for k, t in enumerate(transforms)
        ]

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


def build_pipeline(specs: Sequence[Any], source: str | PathLike | None = None) -> Compose:
    """A :class:`Compose` from a list of specs (as a YAML config lists them)."""
    return Compose(specs, source=source)
