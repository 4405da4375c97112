"""What a run happens on: CPUs that share a model name are told apart by family, model and stepping."""
from pathlib import Path

import govfacts.machine as machine

CPUINFO = """processor	: 0
vendor_id	: AuthenticAMD
cpu family	: 25
model		: 1
model name	: AMD EPYC
stepping	: 1
flags		: fpu sse2 avx avx2 fma f16c

processor	: 1
vendor_id	: AuthenticAMD
cpu family	: 23
model		: 49
model name	: AMD EPYC
stepping	: 0
flags		: fpu sse2 avx avx2 fma f16c
"""


def test_the_first_cpus_family_model_and_stepping_are_read():
    fields = machine._first_fields(CPUINFO.splitlines())
    assert machine._cpu_ident(fields) == "family 25 model 1 stepping 1"
    assert fields["model name"] == "AMD EPYC" and fields["flags"].split()[-1] == "f16c"
    assert machine._cpu_ident(machine._first_fields(["processor\t: 0", "model name\t: Some CPU", ""])) == ""


def test_this_machine_reports_its_cpu_id():
    info = machine.cpu_info()
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "cpu family" in text:
        assert info["cpu_id"].startswith("family ")
    assert set(info) >= {"model", "cpu_id", "simd_flags", "avx512", "hidden_flags", "cpus"}


def test_two_generations_with_one_model_name_get_two_signatures(monkeypatch):
    """The runtime choice is cached per signature: a float-fastest and an int8-fastest CPU must not share it."""
    base = dict(machine.cpu_info())
    monkeypatch.setattr(machine, "cpu_info", lambda: {**base, "cpu_id": "family 25 model 1 stepping 1"})
    first = machine.cpu_signature()
    monkeypatch.setattr(machine, "cpu_info", lambda: {**base, "cpu_id": "family 23 model 49 stepping 0"})
    assert machine.cpu_signature() != first
