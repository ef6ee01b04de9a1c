"""Errors of runs: a run directory that is not usable, a training run that diverged."""

from __future__ import annotations

from skelact.errors import SkelactError


class RunError(SkelactError):
    """A run directory is missing, incomplete (no config, no checkpoint) or cannot be resumed."""


class TrainingDiverged(SkelactError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""
