"""The CPU as the engines will see it: its class (bf16, avx512, avx2, baseline) after each runtime's own override of
the instruction set it dispatches to. The default engine follows the class (embedded.DEFAULT_ENGINES), so setting
the overrides (avx2_env) makes this process choose, and the runtimes run, what an AVX2-only machine would: tests
and benchmarks exercise that path on any machine.
"""

from __future__ import annotations

import os
from typing import Literal

CpuClass = Literal["bf16", "avx512", "avx2", "baseline"]
CLASSES: tuple[CpuClass, ...] = ("baseline", "avx2", "avx512", "bf16")  # weakest first

# Each runtime's override, and the class each of its values caps the CPU at (values not listed cap nothing).
OVERRIDES: dict[str, dict[str, CpuClass]] = {
    "ATEN_CPU_CAPABILITY": {"default": "baseline", "avx2": "avx2"},  # torch's ATen kernels
    # oneDNN: torch's bf16 and float32 matmuls, and CTranslate2's DNNL GEMMs
    "ONEDNN_MAX_CPU_ISA": {"sse41": "baseline", "avx": "baseline", "avx2": "avx2", "avx2_vnni": "avx2",
                           "avx2_vnni_2": "avx2", "avx512_core": "avx512", "avx512_core_vnni": "avx512"},
    "CT2_FORCE_CPU_ISA": {"generic": "baseline", "avx": "baseline", "avx2": "avx2"},  # CTranslate2
}
AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"}


def hardware_class() -> CpuClass:
    """What the processor itself offers (torch's CPU probes, which ignore the overrides)."""
    import torch

    cpu = torch.cpu
    probe = lambda name: bool(getattr(cpu, name, lambda: False)())  # private probes: looked up defensively
    if probe("_is_avx512_bf16_supported") or probe("_is_amx_tile_supported"):
        return "bf16"
    if probe("_is_avx512_supported"):
        return "avx512"
    return "avx2" if probe("_is_avx2_supported") else "baseline"


def cpu_class() -> CpuClass:
    """The hardware's class capped by every override set in the environment (read now, not at import, so a
    test or a benchmark child can set them)."""
    rank = CLASSES.index(hardware_class())
    for variable, caps in OVERRIDES.items():
        cap = caps.get((os.environ.get(variable) or "").strip().lower())
        if cap is not None:
            rank = min(rank, CLASSES.index(cap))
    return CLASSES[rank]


def isa_env(isa: str | None) -> dict[str, str]:
    """Environment variables that hold every runtime to `isa` ("avx2"), or none (None: the machine's own)."""
    if isa is None:
        return {}
    if isa.lower() != "avx2":
        raise ValueError(f"unsupported forced ISA {isa!r}: use avx2")
    return dict(AVX2_ENV)
