"""How many CPU threads torch may use in a run: ``trainer.threads``, else ``OMP_NUM_THREADS``, else the free cores.

Why this is a setting at all: torch's CPU kernels run on an OpenMP pool whose threads spin-wait at every barrier.
With more threads than cores actually free to the process (a shared machine, a container limited by a CPU
affinity mask, several training processes on one node), a step can become ten times slower instead of a bit
faster. torch's own default is the machine's core count, which ignores both the affinity mask and the other
processes of a data-parallel run.

Resolution order (:func:`resolve_num_threads`):

1. ``trainer.threads > 0``: exactly that many threads per process;
2. ``trainer.threads = 0`` (auto) and ``OMP_NUM_THREADS`` set to a positive integer: that value, so the usual
   OpenMP knob keeps working (``OMP_NUM_THREADS=1 skelact train ...`` on a busy machine);
3. otherwise the CPUs this process may run on (``len(os.sched_getaffinity(0))``, ``os.cpu_count()`` where the
   platform has no affinity mask) divided by the processes the run starts on this node, at least 1 (Lightning's
   DDP launcher divides ``os.cpu_count()`` the same way when it is left to choose).

:func:`use_threads` applies the choice for the duration of a command and restores the previous setting after it,
so calling the engine from Python does not change the caller's process for good.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator, Mapping

#: the environment variable an explicit user choice arrives in when ``trainer.threads`` is 0
OMP_ENV = "OMP_NUM_THREADS"


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the machine's total."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no affinity mask
        return max(1, os.cpu_count() or 1)


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if value >= 1 else None


def resolve_num_threads(requested: int = 0, local_processes: int = 1,
                        environ: Mapping[str, str] | None = None) -> tuple[int, str]:
    """``(threads per process, why)`` for ``trainer.threads = requested`` in a run of ``local_processes``
    processes on this node (see the module docstring for the order)."""
    env = os.environ if environ is None else environ
    if int(requested) > 0:
        return int(requested), "trainer.threads"
    from_env = _positive_int(env.get(OMP_ENV))
    if from_env is not None:
        return from_env, f"{OMP_ENV}={from_env}"
    cpus = available_cpus()
    processes = max(1, int(local_processes))
    threads = max(1, cpus // processes)
    return threads, f"auto: {cpus} CPU(s) available to this process / {processes} local process(es)"


@contextmanager
def use_threads(requested: int = 0, local_processes: int = 1,
                log: Callable[[str], None] | None = None) -> Iterator[int]:
    """Run the enclosed block with torch limited to the resolved number of threads, then restore the previous
    count. ``OMP_NUM_THREADS`` is also set for the block (and restored), so processes started inside it (Lightning's
    DDP workers) inherit the same choice instead of Lightning's own ``cpu_count // processes``."""
    import torch

    threads, why = resolve_num_threads(requested, local_processes)
    previous_threads = torch.get_num_threads()
    previous_env = os.environ.get(OMP_ENV)
    torch.set_num_threads(threads)
    os.environ[OMP_ENV] = str(threads)
    if log is not None:
        log(f"threads: {threads} per process ({why})")
    try:
        yield threads
    finally:
        torch.set_num_threads(previous_threads)
        if previous_env is None:
            os.environ.pop(OMP_ENV, None)
        else:
            os.environ[OMP_ENV] = previous_env
