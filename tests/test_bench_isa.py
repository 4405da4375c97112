"""bench/isa.py: a process run with `--isa avx2` sees a plain AVX2 CPU, and nothing else about it changes."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("govfacts_bench_isa", ROOT / "bench" / "isa.py")
isa = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(isa)

pytestmark = pytest.mark.skipif(not isa.cpuid_faulting(), reason="this CPU has no CPUID faulting")

PROBE = """
import json, faulthandler
faulthandler.enable()  # the program's own SIGSEGV handler: the library must keep answering CPUID after it
import numpy, torch
from numpy._core._multiarray_umath import __cpu_features__ as f
from govfacts.machine import cpu_info
print(json.dumps({"numpy_avx2": f["AVX2"], "numpy_avx512f": f["AVX512F"],
                  "torch": torch.backends.cpu.get_cpu_capability(), "cpu": cpu_info(),
                  "sum": float(torch.arange(10.0).sum())}))
"""


def _probe(env: dict) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def avx2_env(tmp_path_factory):
    try:
        env = isa.environment("avx2")
    except isa.IsaUnavailable as e:
        pytest.skip(str(e))
    env["AVX2ONLY_COUNT"] = str(tmp_path_factory.mktemp("isa") / "count.txt")
    return env


def test_libraries_see_avx2_without_avx512_and_cpu_info_says_what_was_hidden(avx2_env):
    native = _probe(isa.environment("native"))
    limited = _probe(avx2_env)
    assert limited["numpy_avx2"] and not limited["numpy_avx512f"]
    assert limited["torch"] == "AVX2"
    assert limited["sum"] == native["sum"] == 45.0
    flags = limited["cpu"]["simd_flags"].split()
    assert "avx2" in flags and not any(f.startswith(("avx512", "amx", "avx_vnni")) for f in flags)
    assert limited["cpu"]["avx512"] is False
    # the flags hidden are exactly the wide ones the CPU has; the runtime choice is cached apart from them
    assert set(limited["cpu"]["hidden_flags"].split()) == {
        f for f in native["cpu"]["simd_flags"].split() if f.startswith(("avx512", "amx", "avx_vnni"))}
    assert native["cpu"]["hidden_flags"] == ""
    lines = Path(avx2_env["AVX2ONLY_COUNT"]).read_text().splitlines()  # "pid answered" per process
    assert sum(int(ln.split()[1]) for ln in lines) > 0  # CPUIDs were answered by the library, not by the CPU


def test_a_real_segmentation_fault_still_reaches_the_programs_handler(avx2_env):
    crash = "import faulthandler, ctypes; faulthandler.enable(); ctypes.string_at(0)"
    out = subprocess.run([sys.executable, "-c", crash], env=avx2_env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "Segmentation fault" in out.stderr


def test_an_unknown_instruction_set_is_refused():
    with pytest.raises(ValueError, match="unknown instruction set"):
        isa.environment("sse2")


def test_whole_process_variants_name_runtime_workers_and_batch_size():
    spec = importlib.util.spec_from_file_location("govfacts_bench_whole", ROOT / "bench" / "whole_process.py")
    whole = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(whole)  # it puts bench/ on sys.path for its siblings, as its own script would
    assert whole.variant_args("auto") == []
    assert whole.variant_args("auto@w0@b16") == ["--workers", "0", "--batch-size", "16"]
    assert whole.variant_args("onnx-int8@b8") == ["--runtime", "onnx", "--int8", "--batch-size", "8"]
    with pytest.raises(ValueError, match="wN"):
        whole.variant_args("auto@x3")
