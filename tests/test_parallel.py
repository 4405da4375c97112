"""`workers: auto`: one worker process per CPU for large corpora when no process would hold a torch model."""
import json
import re
import shutil
import subprocess
import sys

import pytest

from govfacts.factsio import read_facts
from govfacts.infer.loader import InferSettings, load
from govfacts.infer.parallel import choose_workers, encoder_runtime, pinned_settings
from govfacts.infer.rules import RuleExtractor


def test_auto_takes_workers_only_for_large_corpora_on_several_cpus():
    rules = RuleExtractor()
    big = choose_workers("auto", rules, 500_000, cpus=2, min_chars=400_000)
    assert big.workers == 2 and "the rules" in big.reason
    small = choose_workers("auto", rules, 300_000, cpus=2, min_chars=400_000)
    assert small.workers == 0 and "fewer than parallel_min_chars" in small.reason
    assert choose_workers("auto", rules, 10**7, cpus=1, min_chars=400_000).workers == 0
    assert choose_workers(3, rules, 10, cpus=1, min_chars=400_000).workers == 3  # asked for: as given
    with pytest.raises(ValueError, match="workers must be"):
        choose_workers("many", rules, 10, cpus=2, min_chars=1)


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_auto_keeps_torch_models_in_one_process_and_pins_the_parents_runtime(tiny_tagger, runtime):
    settings = InferSettings.load(runtime=runtime, quantize=True, num_threads=2)
    tagger = load(str(tiny_tagger), settings)
    assert encoder_runtime(tagger) == runtime
    choice = choose_workers("auto", tagger, 10**6, cpus=2, min_chars=1)
    assert choice.workers == (0 if runtime == "torch" else 2), choice.reason
    ensemble = load(f"{tiny_tagger}+rules", settings)
    assert encoder_runtime(ensemble) == runtime
    assert encoder_runtime(RuleExtractor()) is None
    # a worker encodes as the parent does (`auto` is not measured again with the worker's thread count)
    auto = InferSettings.load(runtime="auto", num_threads=2)
    pinned = pinned_settings(auto, tagger, 2)
    assert (pinned.runtime, pinned.quantize, pinned.num_threads) == (runtime, True, 1)
    assert pinned_settings(auto, RuleExtractor(), 2).runtime == "auto"


def test_settings_reject_a_bad_workers_value():
    from govfacts.settings import SettingsError

    with pytest.raises(SettingsError, match="workers"):
        InferSettings.load(workers="all")
    with pytest.raises(SettingsError, match="workers"):
        InferSettings.load(workers=-1)


def test_cli_auto_runs_workers_for_a_large_corpus_with_the_same_facts(samples, tmp_path):
    settings = InferSettings.load()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    chars, k = 0, 0
    while chars < 1.2 * settings.parallel_min_chars:  # enough for `auto` to take workers
        for f in sorted(samples.glob("*.txt")):
            shutil.copy(f, corpus / f"{k:03d}-{f.name}")
            chars += len(f.read_text(encoding="utf-8"))
        k += 1
    outs = {}
    for name, extra in (("auto", []), ("one", ["--workers", "0"])):
        out = tmp_path / f"{name}.jsonl"
        res = subprocess.run([sys.executable, "-m", "govfacts.cli", "extract", str(corpus), "-o", str(out), "-m",
                              "rules", "-q", "-v", *extra], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        outs[name] = (sorted(json.dumps(f.to_dict(), sort_keys=True) for f in read_facts(out)), res.stderr)
    assert re.search(r"workers: [2-9]\d* \(auto:", outs["auto"][1]) or "workers: 0 (auto: 1 CPU" in outs["auto"][1]
    assert "workers: 0 (asked for)" in outs["one"][1]
    assert outs["auto"][0] == outs["one"][0] and len(outs["one"][0]) > 1000


def test_worker_units_shrink_towards_the_end_and_keep_every_file_in_order(tmp_path):
    from govfacts.infer.batch import units_of

    files = []
    for k in range(60):
        f = tmp_path / f"{k:02d}.txt"
        f.write_bytes(b"x" * (5_000 + 997 * (k % 7)))
        files.append(f)
    units = units_of(files, 60_000, workers=2, min_bytes=10_000)
    assert [f for u in units for f in u] == files
    sizes = [sum(f.stat().st_size for f in u) for u in units]
    assert max(sizes) <= 60_000 + 11_000 and sizes[0] > 2 * sizes[-1]  # the first units big, the last small
    assert all(s <= 10_000 + 11_000 for s in sizes[-3:])
    one = units_of(files, 60_000)  # one process: units of up to the limit all the way
    assert [f for u in one for f in u] == files and len(one) < len(units)
    assert all(sum(f.stat().st_size for f in u) > 60_000 - 11_000 for u in one[:-1])
