"""Which joints SkeletonMAE hides: whole body regions of the layout, or as many joints drawn at random
(Yan et al., ICCV 2023, arXiv 2307.08476, Sec. 3.1 and its masking ablation).

The regions are the layout's ``parts`` (the built-in layouts carry SkeletonMAE's six: head, torso, left/right arm,
left/right leg; a user layout names its own). A mask is a boolean ``[V]`` row per *unit*; what a unit is, the
paper leaves open, so it is a setting (``method.skeletonmae.mask_unit``): ``clip`` (one mask for every frame of a
person, ours by default: a region stays hidden for the whole motion, so it cannot be copied from a neighbouring
frame) or ``frame`` (a new mask per frame). Whether the persons of a clip share it is ``shared_across_persons``.

* ``region`` strategy: the named ``regions`` when given (the paper's best: right arm and right leg), else
  ``num_regions`` regions drawn per unit;
* ``random`` strategy: the same number of joints as the region strategy would hide (the named regions' joint
  count, or, with drawn regions, the rounded mean over all region choices), drawn uniformly per unit: the paper's
  comparison at equal masked-joint count.

Every draw takes a seeded :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from skelact.errors import ConfigError

MASK_STRATEGIES = ("region", "random")
MASK_UNITS = ("clip", "frame")


def region_joints(parts: dict, regions: Sequence[str], layout_name: str = "") -> np.ndarray:
    """Sorted joint indices of the named ``regions`` of ``parts`` (a layout's ``{name: joint indices}``)."""
    unknown = [r for r in regions if r not in parts]
    if unknown:
        raise ConfigError(f"layout {layout_name!r} has no body part {unknown[0]!r}; its parts: "
                          f"{', '.join(parts) or 'none'}", field="skeletonmae.regions")
    return np.array(sorted({j for r in regions for j in parts[r]}), dtype=np.int64)


def equal_joint_count(parts: dict, regions: Sequence[str], num_regions: int) -> int:
    """How many joints the region strategy hides: the named regions' count, else the rounded mean over every
    choice of ``num_regions`` parts."""
    if regions:
        return int(region_joints(parts, regions).size)
    sizes = [len({j for r in combo for j in parts[r]}) for combo in itertools.combinations(parts, num_regions)]
    return int(round(float(np.mean(sizes))))


class BodyRegionMasker:
    """Draws masks ``[units, V]`` for one layout (``parts``: name -> joint indices, ``num_joints``)."""

    def __init__(self, parts: dict, num_joints: int, strategy: str = "region", regions: Sequence[str] = (),
                 num_regions: int = 2, layout_name: str = ""):
        if strategy not in MASK_STRATEGIES:
            raise ConfigError(f"must be one of {', '.join(MASK_STRATEGIES)}, got {strategy!r}",
                              field="skeletonmae.strategy")
        self.parts = {str(k): tuple(int(j) for j in v) for k, v in parts.items()}
        if not self.parts:
            raise ConfigError(f"layout {layout_name!r} names no body parts to mask (give it `parts:`)",
                              field="skeletonmae.regions")
        self.num_joints, self.strategy, self.regions = int(num_joints), strategy, tuple(regions)
        if not self.regions and not 1 <= num_regions < len(self.parts):
            raise ConfigError(f"must lie in 1..{len(self.parts) - 1} (layout {layout_name!r} has {len(self.parts)} "
                              f"parts), got {num_regions}", field="skeletonmae.num_regions")
        self.num_regions = int(num_regions)
        self.fixed = region_joints(self.parts, self.regions, layout_name) if self.regions else None
        self.count = equal_joint_count(self.parts, self.regions, self.num_regions)
        if not 1 <= self.count < self.num_joints:
            raise ConfigError(f"would hide {self.count} of {self.num_joints} joints; leave at least one visible",
                              field="skeletonmae.regions")

    def draw(self, units: int, rng: np.random.Generator) -> np.ndarray:
        """Boolean masks ``[units, V]`` (True: hidden)."""
        mask = np.zeros((int(units), self.num_joints), dtype=bool)
        names = list(self.parts)
        for u in range(int(units)):
            if self.strategy == "random":
                mask[u, rng.choice(self.num_joints, size=self.count, replace=False)] = True
            elif self.fixed is not None:
                mask[u, self.fixed] = True
            else:
                chosen = rng.choice(len(names), size=self.num_regions, replace=False)
                mask[u, [j for k in chosen for j in self.parts[names[k]]]] = True
        return mask

    def draw_for_batch(self, n: int, m: int, t: int, rng: np.random.Generator, unit: str = "clip",
                       shared_across_persons: bool = True) -> np.ndarray:
        """Masks ``[N, M, T, V]`` for a batch, per ``unit`` (``clip`` or ``frame``), shared by a clip's persons or
        not."""
        if unit not in MASK_UNITS:
            raise ConfigError(f"must be one of {', '.join(MASK_UNITS)}, got {unit!r}", field="skeletonmae.mask_unit")
        persons = 1 if shared_across_persons else m
        frames = t if unit == "frame" else 1
        mask = self.draw(n * persons * frames, rng).reshape(n, persons, frames, self.num_joints)
        return np.broadcast_to(mask, (n, m, t, self.num_joints)).copy()
