"""The FIFO memory of negative keys of momentum contrast (MoCo; He et al., CVPR 2020), as SkeletonCLR uses it.

The queue holds the ``size`` most recent keys, one row each. Enqueueing a batch overwrites the oldest rows; the
write position wraps around, so any size works (MoCo and the CrosSCLR reference require ``size`` to be a multiple
of the batch size and write whole slices; our modular write gives the same contents in that case). Rows start as
random unit vectors drawn from a seeded generator, as MoCo initialises them.

Data-parallel training: every process enqueues the keys of *all* processes, gathered in rank order, so the queues
of all processes stay identical and hold the keys of the global batch (MoCo's ``concat_all_gather``). The CrosSCLR
reference instead writes each GPU's keys into a slice chosen by ``keys.device.index``, which only works for one
process driving several GPUs (``DataParallel``) and breaks under multi-process training; we do not reproduce it.

State (``keys``, ``pointer``, ``count``) is made of buffers, so it travels in the method's state dict and a resumed
run continues with exactly the queue it stopped with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from skelact.errors import ConfigError


def gather_from_processes(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` of every process concatenated along dim 0 in rank order (this process's own when not distributed).

    No gradient flows through the result (keys never carry one). Every process must pass the same shape, as the
    engine's sampler guarantees (each process runs the same number of equally sized batches).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.detach().contiguous())
    return torch.cat(parts, dim=0)


class MemoryQueue(nn.Module):
    """A first-in first-out memory of ``size`` keys of width ``dim``.

    ``keys`` ``[size, dim]`` is the memory in storage order; :meth:`ordered` gives it oldest first. ``pointer`` is
    the row the next key goes to; ``count`` how many keys were ever enqueued (the queue is full once it reaches
    ``size``; until then some rows are still the random initial vectors).
    """

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        for name, value in (("queue_size", size), ("feature_dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a positive integer, got {value!r}", field=name)
        self.size = int(size)
        self.dim = int(dim)
        self.register_buffer("keys", F.normalize(torch.randn(self.size, self.dim, generator=generator), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.int64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    @property
    def is_full(self) -> bool:
        return int(self.count) >= self.size

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, gather: bool = True) -> None:
        """Append ``keys`` ``[n, dim]`` (of all processes when ``gather``), dropping the oldest rows."""
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"expected keys [n, {self.dim}], got {tuple(keys.shape)}")
        if gather:
            keys = gather_from_processes(keys)
        keys = keys.detach().to(self.keys.dtype)
        n = keys.shape[0]
        start = int(self.pointer)
        rows = (start + torch.arange(n, device=self.keys.device)) % self.size
        # with more keys than rows only the newest `size` survive; keeping just them makes the rows distinct
        keep = slice(max(0, n - self.size), n)
        self.keys[rows[keep]] = keys[keep]
        self.pointer.fill_((start + n) % self.size)
        self.count.add_(n)

    def ordered(self) -> torch.Tensor:
        """The keys oldest first (a copy)."""
        return torch.roll(self.keys, shifts=-int(self.pointer), dims=0).clone()

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.dim}"
