"""The training engine: Lightning runs the loop, checkpoints, logging, mixed precision and distributed training.

The commands that use it (``train``, ``test``, ``pretrain``, ``evaluate``) live in :mod:`skelact.commands`; this
package holds the training machinery alone.
Lightning is an optional dependency (the ``train`` extra); importing this package does not need it, using the
engine does (:func:`require_lightning` says how to get it).
"""

from __future__ import annotations

from skelact.errors import MissingDependencyError

INSTALL_HINT = "pip install 'skelact[train]'"


def require_lightning() -> None:
    """Raise one :class:`MissingDependencyError` line when Lightning is not importable."""
    try:
        import lightning  # noqa: F401
    except ImportError:
        raise MissingDependencyError(f"training needs the 'lightning' package; install it with {INSTALL_HINT}",
                                     field="lightning") from None


__all__ = ["INSTALL_HINT", "MissingDependencyError", "require_lightning"]
