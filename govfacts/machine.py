"""What a run happens on: CPU model, the SIMD flags that decide int8 speed (AVX2 vs AVX-512/VNNI), cores.

Benchmarks record it with every table; the tagger's runtime choice (`govfacts.infer.runtime`) is cached
per CPU signature, because the fastest encoder runtime differs between CPUs of the same kind.
"""
from __future__ import annotations

import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
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


def cpu_signature() -> str:
    """Short id of (CPU model, SIMD flags, usable cores, machine): what makes one runtime faster than another."""
    info = cpu_info()
    key = "|".join([platform.machine(), info["model"], info["simd_flags"], str(info["cpus"])])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
