"""`govfacts extract --engine ray`: the same facts as the local engine (Ray Data, local instance)."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import ray  # noqa: F401
    import ray.data  # noqa: F401

    RAY = None
except ImportError as e:  # pragma: no cover - depends on the environment
    RAY = f"Ray Data is not installed ({e}); install it with: pip install 'ray[data]>=2.9'"

pytestmark = pytest.mark.skipif(RAY is not None, reason=RAY or "")

from govfacts.factsio import read_facts  # noqa: E402
from govfacts.infer.batch import journal_path, run_batch  # noqa: E402

EXE = Path(sys.executable).with_name("govfacts")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, samples):
    """The shared reports plus an HTML copy, a GBK copy and two bad files."""
    d = tmp_path_factory.mktemp("ray") / "reports"
    shutil.copytree(samples, d)
    text = (samples / "hr-dongguan-2015.txt").read_text(encoding="utf-8")
    (d / "dongguan-gbk.txt").write_bytes(text.encode("gbk", "ignore"))
    (d / "page.html").write_text("<html><body>" + "".join(f"<p>{x}</p>" for x in text.split("\n")) + "</body></html>",
                                 encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(bytes(range(256)) * 20)
    return d


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(address=None, include_dashboard=False, num_cpus=2, logging_level="WARNING")
    yield ray
    ray.shutdown()


def _local(corpus, out, spec, errors=None):
    from govfacts.infer.api import extract_documents
    from govfacts.infer.loader import InferSettings, load

    ex = load(spec, InferSettings.load(quantize=False))
    return run_batch([corpus], out, lambda d: extract_documents(ex, [d])[0], errors=errors, progress=False,
                     extract_many=lambda docs: extract_documents(ex, docs))


def test_ray_rules_equal_local(ray_session, corpus, tmp_path):
    from govfacts.infer.ray_engine import run_ray

    local, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    _local(corpus, local, "rules", errors=tmp_path / "local-errors.jsonl")
    result, name = run_ray([corpus], ray_out, "rules", errors=tmp_path / "ray-errors.jsonl", progress=False,
                           workers=2)
    assert name.startswith("rules@")
    assert ray_out.read_bytes() == local.read_bytes()  # same facts, same order
    assert (tmp_path / "ray-errors.jsonl").read_text() == (tmp_path / "local-errors.jsonl").read_text()
    assert {Path(f.path).name for f in result.failures} == {"empty.txt", "binary.txt"}
    assert result.documents == 19 and len(result.facts) > 300
    assert not journal_path(ray_out).exists()


def test_ray_resumes_a_local_journal(ray_session, corpus, tmp_path):
    """An interrupted local run's journal is picked up by the Ray engine (same journal format)."""
    from govfacts.infer.ray_engine import run_ray

    full = tmp_path / "full.jsonl"
    _local(corpus, full, "rules")
    expected = [f.to_dict() for f in read_facts(full)]
    out = tmp_path / "out.jsonl"
    first = sorted(corpus.glob("*.txt"))[:3]
    lines = [json.dumps({"path": str(p), "facts": [f for f in expected if f["path"] == str(p)]}, ensure_ascii=False)
             for p in first]
    journal_path(out).write_text("\n".join(lines) + '\n{"path": "torn', encoding="utf-8")
    result, _ = run_ray([corpus], out, "rules", resume=True, progress=False)
    assert result.resumed == 3
    assert [f.to_dict() for f in read_facts(out)] == expected


def test_ray_tagger_equal_local(ray_session, corpus, tmp_path, tiny_tagger):
    from govfacts.infer.ray_engine import run_ray

    model = tiny_tagger
    small = tmp_path / "reports"  # a few reports and the bad files: what the tagger actors have to get right
    small.mkdir()
    for name in ("hr-dongguan-2015.txt", "dongguan-gbk.txt", "page.html", "gov-pingtan-2012.txt", "empty.txt"):
        shutil.copy(corpus / name, small / name)
    corpus = small
    local, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    _local(corpus, local, str(model))
    from govfacts.infer.loader import InferSettings

    _, name = run_ray([corpus], ray_out, str(model), InferSettings.load(quantize=False), progress=False)
    a, b = read_facts(local), read_facts(ray_out)
    assert name == a[0].extractor if a else True
    assert [(f.path, f.start, f.end, f.metric, f.text, f.value) for f in a] == \
        [(f.path, f.start, f.end, f.metric, f.text, f.value) for f in b]
    for x, y in zip(a, b):  # windows may be batched differently: float noise only
        assert abs(x.confidence - y.confidence) <= 2e-4


def test_cli_engine_ray(corpus, tmp_path):
    """The console script with --engine ray starts (and stops) its own local Ray instance."""
    local, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    _local(corpus, local, "rules")
    res = subprocess.run([str(EXE), "extract", str(corpus), "-o", str(ray_out), "-m", "rules", "--engine", "ray",
                          "--workers", "2", "-q", "--errors", str(tmp_path / "e.jsonl")],
                         capture_output=True, text=True, timeout=170)
    assert res.returncode == 1, res.stderr  # the two bad files
    assert ray_out.read_bytes() == local.read_bytes()
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 2


def test_ray_takes_journalled_parts_of_a_long_document(ray_session, samples, tmp_path):
    """A long document's parts that an interrupted run journalled are not extracted again: part 0 is
    journalled here with no facts, so the output holds exactly the facts of the other parts."""
    from govfacts.infer.api import extract_parts
    from govfacts.infer.loader import InferSettings, load
    from govfacts.infer.ray_engine import run_ray
    from govfacts.reader import read_document

    corpus = tmp_path / "c"
    corpus.mkdir()
    text = (samples / "gov-pingtan-2021.txt").read_text(encoding="utf-8") + "\n"
    long = corpus / "long.txt"
    long.write_text(text * (120_000 // len(text) + 1), encoding="utf-8")
    shutil.copy(samples / "hr-dongguan-2015.txt", corpus / "short.txt")
    rules = load("rules", InferSettings.load())
    parts = list(extract_parts(rules, read_document(long)))
    assert len(parts) >= 2
    out = tmp_path / "out.jsonl"
    journal_path(out).write_text(json.dumps({"path": str(long), "part": 0, "parts": len(parts), "facts": []}) + "\n",
                                 encoding="utf-8")
    result, _ = run_ray([corpus], out, "rules", resume=True, progress=False, workers=2)
    got = [f for f in read_facts(out) if f.path == str(long)]
    want = [f for k, _, fs in parts[1:] for f in fs]
    assert [(f.start, f.metric, f.value) for f in got] == [(f.start, f.metric, f.value) for f in want]
    assert any(f.path == str(corpus / "short.txt") for f in read_facts(out)) and result.failures == []
