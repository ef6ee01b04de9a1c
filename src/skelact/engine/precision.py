"""``trainer.precision: auto``: bfloat16 autocast where the hardware computes in it, float32 elsewhere.

bfloat16 autocast made the fast CPU recipe's training step 1.6x faster on a CPU with AVX512-BF16 (AMD Zen 4,
docs/results.md, "Fast CPU recipe"), but on CPUs without bfloat16 instructions (Intel Ice Lake, AMD Zen 3) oneDNN
emulates it and the same step is slower than in float32. ``auto`` therefore asks the machine: on a CPU, bfloat16
when Linux reports ``avx512_bf16`` or ``amx_bf16`` among the CPU flags; on a CUDA GPU, bfloat16 when
``torch.cuda.is_bf16_supported()``; float32 otherwise. The choice is printed with the run's other settings, and the
resolved value is what the trainer gets, so two machines may train the same config in different precisions.
"""

from __future__ import annotations

from pathlib import Path

import torch

AUTO = "auto"
#: the CPU flags (``/proc/cpuinfo``) of bfloat16 arithmetic in hardware
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first processor's ``flags`` line; empty where there is no such file (not Linux) or it cannot be read."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def uses_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(value: object, accelerator: str, *, flags: frozenset[str] | None = None) -> str:
    """The Lightning precision for ``trainer.precision`` ``value``: itself, or for ``auto`` the machine's choice."""
    if str(value) != AUTO:
        return str(value)
    if uses_gpu(accelerator):
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32"
    return "bf16-mixed" if (cpu_flags() if flags is None else flags) & BF16_CPU_FLAGS else "32"
