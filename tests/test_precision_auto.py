"""``trainer.precision: auto`` (skelact.engine.precision): bfloat16 autocast only where the hardware has it."""

from pathlib import Path

import pytest

from skelact.config import load_config
from skelact.engine.precision import cpu_flags, resolve_precision

ROOT = Path(__file__).resolve().parents[1]


def test_a_named_precision_is_passed_through():
    assert resolve_precision("bf16-mixed", "cpu", flags=frozenset()) == "bf16-mixed"
    assert resolve_precision(32, "cpu", flags=frozenset({"avx512_bf16"})) == "32"


@pytest.mark.parametrize("flags, expected", [
    ({"fpu", "avx2", "avx512f", "avx512_vnni"}, "32"),          # Ice Lake: AVX-512 without its bf16 part
    ({"fpu", "avx2"}, "32"),                                      # Zen 3
    ({"fpu", "avx2", "avx512f", "avx512_bf16"}, "bf16-mixed"),   # Zen 4
    ({"fpu", "amx_bf16", "amx_tile"}, "bf16-mixed"),             # Sapphire Rapids
])
def test_auto_on_a_cpu_follows_its_bf16_flags(flags, expected):
    assert resolve_precision("auto", "cpu", flags=frozenset(flags)) == expected


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx512_bf16\n\nprocessor\t: 1\n"
                    "flags\t\t: fpu\n")
    assert cpu_flags(info) == frozenset({"fpu", "sse2", "avx512_bf16"})
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_the_fast_recipe_asks_for_auto_and_the_config_check_admits_it():
    cfg = load_config(ROOT / "configs" / "nw_ucla" / "stgcn_joint_fast.yaml").cfg
    assert cfg.trainer.precision == "auto"
