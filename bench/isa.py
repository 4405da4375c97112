"""Run a benchmark as on a plain AVX2 machine: `--isa avx2` re-executes it under bench/isa/avx2only.c.

Int8 speed depends on the instruction set (VNNI doubles int8 throughput), and machines of the same kind
differ: a speed claim must hold on plain AVX2. On a Linux x86-64 machine whose CPU has CPUID faulting
(`cpuid_fault` in /proc/cpuinfo), the preloaded library hides AVX-512, AVX-VNNI and AMX from every
library's CPUID, so MKL, oneDNN, FBGEMM, ONNX Runtime and numpy run the kernels they run on an AVX2
machine, on this machine's cores; GLIBC_TUNABLES does the same for glibc's string functions. The
processes a benchmark starts inherit it. Cores, caches and clock stay this machine's: compare ratios
measured side by side, not chars/s across machines.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "isa" / "avx2only.c"
MARK = "GOVFACTS_BENCH_ISA"
GLIBC_HIDE = "glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX512ER,-AVX512PF,-AVX_VNNI"
ISAS = ("native", "avx2")


class IsaUnavailable(RuntimeError):
    """The instruction set cannot be limited on this machine (no compiler, no CPUID faulting, not x86-64)."""


def cpuid_faulting() -> bool:
    try:
        return "cpuid_fault" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def build(cache: Path | None = None) -> Path:
    """Compile avx2only.c once per source version into the user's cache; the shared library's path."""
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "govfacts" / "bench"
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    lib = cache / f"avx2only-{digest}.so"
    if lib.exists():
        return lib
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        raise IsaUnavailable("no C compiler (cc/gcc) to build bench/isa/avx2only.c")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), "-ldl"],
                          capture_output=True, text=True)
    if proc.returncode:
        raise IsaUnavailable(f"building {SOURCE.name} failed:\n{proc.stderr[-2000:]}")
    os.replace(tmp, lib)
    return lib


def environment(isa: str, base: dict | None = None) -> dict:
    """The environment that runs a process with instruction set `isa` (`native`: unchanged)."""
    env = dict(os.environ if base is None else base)
    if isa == "native":
        return env
    if isa != "avx2":
        raise ValueError(f"unknown instruction set {isa!r} (one of {', '.join(ISAS)})")
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise IsaUnavailable("limiting the instruction set needs Linux on x86-64")
    if not cpuid_faulting():
        raise IsaUnavailable("this CPU has no CPUID faulting (`cpuid_fault` not in /proc/cpuinfo)")
    lib = str(build())
    env["LD_PRELOAD"] = " ".join(x for x in (lib, env.get("LD_PRELOAD", "")) if x)
    env["GLIBC_TUNABLES"] = ":".join(x for x in (env.get("GLIBC_TUNABLES", ""), GLIBC_HIDE) if x)
    env[MARK] = isa
    return env


def reexec(isa: str) -> None:
    """Re-execute this process (same interpreter and arguments) under `isa`, unless it already runs so."""
    if isa == "native" or os.environ.get(MARK) == isa:
        return
    try:
        env = environment(isa)
    except IsaUnavailable as e:
        raise SystemExit(f"--isa {isa}: {e}")
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def add_option(ap, what: str = "every run") -> None:
    """The `--isa` option of a benchmark's argument parser."""
    ap.add_argument("--isa", choices=ISAS, default="native",
                    help=f"avx2: {what} as on a plain AVX2 CPU (bench/isa.py; needs CPUID faulting)")


def hidden_note(cpu: dict) -> str:
    """What a benchmark prints after the CPU's flags: the ones its CPUID hides from this process, if any."""
    return f"; hidden from CPUID (--isa {current()}): {cpu['hidden_flags']}" if cpu.get("hidden_flags") else ""


def current() -> str:
    """The instruction set this process was started with by `reexec` (`native` otherwise)."""
    return os.environ.get(MARK, "native")
