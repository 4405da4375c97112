"""What a run happens on: CPU model, the SIMD flags that decide int8 speed (AVX2 vs AVX-512/VNNI), cores.

Benchmarks record it with every table; the tagger's runtime choice (`govfacts.infer.runtime`) is cached
per CPU signature, because the fastest encoder runtime differs between CPUs of the same kind. The flags are
those this process's libraries see: /proc/cpuinfo lists what the CPU has, but a CPU whose CPUID hides
AVX-512 from the process (a hypervisor, or bench/isa.py's `--isa avx2`) runs the AVX2 kernels, so AVX-512,
AVX-VNNI and AMX flags are kept only when numpy's runtime CPU detection (CPUID) reports AVX512F.
"""
from __future__ import annotations

import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def cpu_info() -> dict:
    try:
        fields = _first_fields(Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        fields = {}
    model = fields["model name"] if "model name" in fields else platform.processor()
    flags = fields.get("flags", "").split()
    simd = sorted(f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c", "vnni"))
    hidden = [f for f in simd if f.startswith(_WIDE)] if _cpuid_hides_avx512() else []
    simd = [f for f in simd if f not in hidden]
    return {"model": model, "cpu_id": _cpu_ident(fields), "simd_flags": " ".join(simd),
            "avx512": any(f.startswith("avx512") for f in simd), "hidden_flags": " ".join(hidden),
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}


_WIDE = ("avx512", "amx", "avx_vnni")  # what an AVX2-only CPUID leaves out


def _first_fields(lines: list[str]) -> dict[str, str]:
    """`key: value` lines of /proc/cpuinfo, the first value of each key: the first CPU's model name, flags
    and family/model/stepping (a model name such as `AMD EPYC` covers several generations whose fastest
    encoder runtime differs: one ran int8 fastest, another float)."""
    fields: dict[str, str] = {}
    for ln in lines:
        key, sep, value = ln.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _cpu_ident(fields: dict[str, str]) -> str:
    """`family F model M stepping S` (the parts /proc/cpuinfo gives) of `_first_fields`."""
    return " ".join(f"{name} {fields[key]}" for name, key in (("family", "cpu family"), ("model", "model"),
                                                               ("stepping", "stepping")) if fields.get(key))


def _cpuid_hides_avx512() -> bool:
    """Does this process's CPUID deny AVX512F (as numpy detected it at import)? False if numpy cannot say."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features  # numpy >= 2
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features  # numpy 1.x
        except ImportError:
            return False
    return "AVX512F" in features and not features["AVX512F"]


def cpu_signature() -> str:
    """Short id of (CPU model and family/model/stepping, SIMD flags, usable cores, machine): what makes one
    runtime faster than another."""
    info = cpu_info()
    key = "|".join([platform.machine(), info["model"], info["cpu_id"], info["simd_flags"], str(info["cpus"])])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
