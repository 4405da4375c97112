import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.factsio import read_facts
from govfacts.infer.batch import journal_path
from govfacts.records import FACT_FIELDS

runner = CliRunner()
REPORTS = ["hrss-jilin-province-2014", "hr-dongguan-2015", "hrss-zhengzhou-2017"]


@pytest.fixture
def mixed_folder(tmp_path, samples):
    d = tmp_path / "reports"
    (d / "sub").mkdir(parents=True)
    for r in REPORTS[:2]:
        shutil.copy(samples / f"{r}.txt", d / f"{r}.txt")
    text = (samples / f"{REPORTS[2]}.txt").read_text(encoding="utf-8")
    (d / "sub" / "zhengzhou-gbk.txt").write_bytes(text.encode("gbk", "ignore"))
    body = (samples / "hrss-jilin-province-2014.txt").read_text(encoding="utf-8")
    paras = "".join(f"<p>{line}</p>" for line in body.split("\n") if line.strip())
    (d / "page.html").write_text(f"<html><body><div class='nav'>首页 &gt; 年报</div>{paras}</body></html>",
                                 encoding="utf-8")
    (d / "empty.txt").write_bytes(b"")
    (d / "binary.txt").write_bytes(os.urandom(3000).replace(b"\x00", b"\x01") + b"\x00" * 50 + bytes(range(256)))
    (d / "MANIFEST.tsv").write_text("file\tagency\n", encoding="utf-8")
    return d


def test_folder_with_bad_files(mixed_folder, tmp_path):
    out, errs = tmp_path / "f.jsonl", tmp_path / "errors.jsonl"
    res = runner.invoke(app, ["extract", str(mixed_folder), "-o", str(out), "--model", "rules", "--errors", str(errs)])
    assert res.exit_code == 1, res.output
    facts = read_facts(out)
    assert {f.doc_id for f in facts} == {"hrss-jilin-province-2014", "hr-dongguan-2015", "zhengzhou-gbk", "page"}
    errors = [json.loads(line) for line in errs.read_text(encoding="utf-8").splitlines()]
    assert sorted((Path(e["path"]).name, e["reason"].split(" (")[0].split(":")[0]) for e in errors) == [
        ("binary.txt", "binary file"), ("empty.txt", "empty file")]
    for f in facts:  # offsets refer to the document text that `govfacts text` prints
        shown = runner.invoke(app, ["text", f.path]).output
        assert shown[f.start:f.end] == f.text
    gbk = [f for f in facts if f.doc_id == "zhengzhou-gbk"]
    assert ("LAWSUITS", 7.0) in {(f.metric, f.value) for f in gbk}
    assert all(f.extractor.startswith("rules@") for f in facts)
    jilin = [f for f in facts if f.doc_id == "hrss-jilin-province-2014"]
    assert {f.year for f in jilin} == {2014}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_output_formats_round_trip(samples, tmp_path, suffix):
    out = tmp_path / f"facts{suffix}"
    res = runner.invoke(app, ["extract", str(samples / "hr-dongguan-2015.txt"), "-o", str(out), "-m", "rules", "-q"])
    assert res.exit_code == 0, res.output
    facts = read_facts(out)
    assert len(facts) >= 20
    ref = read_facts(_jsonl(samples, tmp_path))
    assert [f.to_dict() for f in facts] == [f.to_dict() for f in ref]
    assert list(facts[0].to_dict()) == FACT_FIELDS


def _jsonl(samples, tmp_path):
    out = tmp_path / "ref.jsonl"
    runner.invoke(app, ["extract", str(samples / "hr-dongguan-2015.txt"), "-o", str(out), "-m", "rules", "-q"])
    return out


def test_unknown_output_extension_is_a_usage_error(samples, tmp_path):
    res = runner.invoke(app, ["extract", str(samples), "-o", str(tmp_path / "f.xlsx"), "-m", "rules"])
    assert res.exit_code == 2
    assert "must end in .jsonl, .csv or .parquet" in res.output
    assert not (tmp_path / "f.xlsx").exists()


@pytest.mark.parametrize("torn", [b'{"path": "trunc', '{"path": "报'.encode("utf-8")[:-1]],
                         ids=["mid-record", "mid-character"])
def test_resume_keeps_finished_documents_and_redoes_a_torn_one(samples, tmp_path, torn):
    out = tmp_path / "f.jsonl"
    full = tmp_path / "full.jsonl"
    runner.invoke(app, ["extract", str(samples), "-o", str(full), "-m", "rules", "-q"])
    expected = [f.to_dict() for f in read_facts(full)]
    # A journal as an interrupted run leaves it: two finished documents and a torn third line.
    first = sorted(samples.glob("*.txt"))[:2]
    lines = []
    for p in first:
        facts = [f for f in expected if f["path"] == str(p)]
        lines.append(json.dumps({"path": str(p), "facts": facts}, ensure_ascii=False))
    journal_path(out).write_bytes(("\n".join(lines) + "\n").encode("utf-8") + torn)  # killed mid-write
    res = runner.invoke(app, ["extract", str(samples), "-o", str(out), "-m", "rules", "--resume"])
    assert res.exit_code == 0, res.output
    assert "resumed: 2 documents" in res.output
    assert [f.to_dict() for f in read_facts(out)] == expected
    assert not journal_path(out).exists()


def test_console_script_survives_sigkill_and_resumes(samples, tmp_path):
    """A real process killed mid-run leaves no output file; --resume completes it exactly once."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(60):
        for p in sorted(samples.glob("*.txt"))[:5]:
            shutil.copy(p, corpus / f"{i:03d}-{p.name}")
    out = tmp_path / "f.jsonl"
    exe = [sys.executable, "-m", "govfacts.cli", "extract", str(corpus), "-o", str(out), "-m", "rules", "-q"]
    proc = subprocess.Popen(exe)
    jp = journal_path(out)
    while proc.poll() is None and (not jp.exists() or jp.stat().st_size < 20000):
        pass
    proc.kill()
    proc.wait()
    if proc.returncode == 0:
        pytest.skip("run finished before it could be killed")
    assert not out.exists()
    assert subprocess.run(exe + ["--resume"]).returncode == 0
    facts = read_facts(out)
    per_doc = {}
    for f in facts:
        per_doc.setdefault(f.doc_id, []).append((f.start, f.metric))
    assert len(per_doc) == 300
    assert all(len(v) == len(set(v)) for v in per_doc.values())  # nothing duplicated
    assert len({len(v) for k, v in per_doc.items() if k.endswith("gov-pingtan-2012")}) == 1


def test_text_command_prints_document_text(samples):
    res = runner.invoke(app, ["text", str(samples / "gov-huaian-hongze-2023.txt")])
    assert res.exit_code == 0
    assert res.output == (samples / "gov-huaian-hongze-2023.txt").read_text(encoding="utf-8") + "\n" or \
        res.output == (samples / "gov-huaian-hongze-2023.txt").read_text(encoding="utf-8")


def test_text_command_names_bad_file(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_bytes(b"")
    res = runner.invoke(app, ["text", str(f)])
    assert res.exit_code == 1 and "empty.txt" in res.output and "empty file" in res.output


def test_a_long_document_is_journalled_part_by_part_and_resumed_inside(tmp_path, monkeypatch):
    """A run interrupted inside a long document keeps the parts it finished; the resumed run extracts only
    the rest and writes exactly the facts of an uninterrupted run."""
    from govfacts.infer import api
    from govfacts.infer.api import extract_documents, extract_parts
    from govfacts.infer.batch import journal_path, run_batch
    from govfacts.infer.loader import load

    monkeypatch.setattr(api, "PART_CHARS", 60_000)  # parts of ~60k characters
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = (Path(__file__).resolve().parents[1] / "data" / "samples" / "gov-pingtan-2021.txt").read_text(encoding="utf-8")
    (corpus / "big.txt").write_text((text + "\n") * (300_000 // len(text) + 1), encoding="utf-8")
    (corpus / "small.txt").write_text(text, encoding="utf-8")
    ex = load("rules")
    one = lambda d: extract_documents(ex, [d])[0]  # noqa: E731
    many = lambda ds: extract_documents(ex, ds)  # noqa: E731
    ref = tmp_path / "ref.jsonl"
    run_batch([corpus], ref, one, extract_many=many, progress=False)

    calls = []

    def parts(doc, first, stop_after=None):
        for k, n, fs in extract_parts(ex, doc, first):
            calls.append(k)
            yield k, n, fs
            if stop_after is not None and k == stop_after:
                raise KeyboardInterrupt  # the process is stopped here, after part 2 was journalled

    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_batch([corpus], out, one, extract_many=many, progress=False,
                  extract_parts=lambda d, f: parts(d, f, stop_after=2))
    journal = [json.loads(x) for x in journal_path(out).read_text(encoding="utf-8").splitlines()]
    assert [r.get("part") for r in journal if r["path"].endswith("big.txt")] == [0, 1, 2]
    assert not any(r["path"].endswith("small.txt") for r in journal)  # units in file order: big.txt first
    calls.clear()
    res = run_batch([corpus], out, one, extract_many=many, progress=False, resume=True,
                    extract_parts=lambda d, f: parts(d, f))
    assert calls and calls[0] == 3 and res.resumed == 0  # only the rest of the long document
    assert out.read_bytes() == ref.read_bytes() and not journal_path(out).exists()


def _dying_setup():
    """Worker extractor functions that kill their process on a document holding DIE-HERE (an out-of-memory
    kill, a segfault in a native library): what the parent must survive."""
    from govfacts.infer.api import extract_documents
    from govfacts.infer.loader import load

    ex = load("rules")

    def many(docs):
        if any("DIE-HERE" in d.text for d in docs):
            Path(os.environ["GOVFACTS_TEST_DIED"]).touch()
            os._exit(1)
        return extract_documents(ex, docs)

    return (lambda d: many([d])[0]), many


def test_a_dead_worker_loses_nothing(tmp_path, samples, monkeypatch):
    """A worker process dies inside a unit: the parent finishes that unit and the rest itself; the output
    equals a run without workers."""
    from govfacts.infer.api import extract_documents
    from govfacts.infer.batch import run_batch
    from govfacts.infer.loader import load

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, p in enumerate(sorted(samples.glob("*.txt"))[:6]):
        text = p.read_text(encoding="utf-8")
        (corpus / f"{i:02d}-{p.name}").write_text(text + ("\nDIE-HERE\n" if i == 2 else ""), encoding="utf-8")
    ex = load("rules")
    one = lambda d: extract_documents(ex, [d])[0]  # noqa: E731
    many = lambda ds: extract_documents(ex, ds)  # noqa: E731
    ref, out = tmp_path / "ref.jsonl", tmp_path / "out.jsonl"
    run_batch([corpus], ref, one, extract_many=many, progress=False)
    monkeypatch.setenv("GOVFACTS_TEST_DIED", str(tmp_path / "died"))
    res = run_batch([corpus], out, one, extract_many=many, progress=False, workers=2, worker_setup=_dying_setup,
                    long_chars=20_000)
    assert (tmp_path / "died").exists()  # a worker did die
    assert res.documents == 6 and not res.failures
    assert out.read_bytes() == ref.read_bytes() and not journal_path(out).exists()


def test_batch_size_option_groups_windows_without_changing_float_facts(samples, tmp_path):
    """`--batch-size` only regroups the tagger's windows: with float weights the facts are the same; 0 is a
    usage error."""
    keys = []
    for n in (2, 8):
        out = tmp_path / f"b{n}.jsonl"
        res = runner.invoke(app, ["extract", str(samples / "hr-dongguan-2015.txt"), "-o", str(out), "-q", "--fp32",
                                  "--runtime", "onnx", "--batch-size", str(n)])
        assert res.exit_code == 0, res.output
        keys.append([(f["metric"], f["start"], f["end"], f["value"]) for f in map(json.loads, out.open(encoding="utf-8"))])
    assert keys[0] and keys[0] == keys[1]
    bad = runner.invoke(app, ["extract", str(samples), "-o", str(tmp_path / "x.jsonl"), "--batch-size", "0"])
    assert bad.exit_code == 2
