"""What a benchmark ran on: CPU model, the SIMD flags that decide int8 speed (AVX2 vs AVX-512/VNNI), cores."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_info() -> dict:
    model, flags = platform.processor(), []
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), model)
        flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    except OSError:
        pass
    simd = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c", "vnni"))
    return {"model": model, "simd_flags": " ".join(simd), "avx512": any(f.startswith("avx512") for f in flags),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
