"""The Python API (govfacts.infer.api.Extractor): typed facts, the same as `govfacts extract`."""
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.factsio import read_facts
from govfacts.infer import api
from govfacts.infer.api import Extractor
from govfacts.infer.facts import facts_from_spans
from govfacts.records import Document, Fact

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _key(f: Fact):
    return (f.metric, f.value, f.unit, f.qualifier, f.text, f.start, f.end, f.confidence, f.agency, f.year,
            f.extractor)


def test_rules_extract_typed_facts(samples):
    ex = Extractor.from_pretrained("rules")
    assert ex.id.startswith("rules@") and repr(ex) == f"Extractor({ex.id})"
    text = "2023年共受理政府信息公开申请1136件，网站主动发布信息1100多条，未发生行政复议。"
    facts = ex.extract(text, doc_id="demo")
    assert all(isinstance(f, Fact) for f in facts)
    got = {(f.metric, f.value, f.unit, f.qualifier) for f in facts}
    assert ("APPLICATIONS_RECEIVED", 1136.0, "件", "exact") in got
    assert ("POSTS_PUBLISHED", 1100.0, "条", "more_than") in got
    assert ("RECONSIDERATIONS", 0.0, "", "exact") in got
    for f in facts:
        assert text[f.start:f.end] == f.text and f.doc_id == "demo" and 0 <= f.confidence <= 1
        assert f.extractor == ex.id
    assert {f.name for f in fields(Fact)} >= {"metric", "value", "unit", "qualifier", "text", "start", "end",
                                              "confidence", "agency", "year", "extractor"}
    anon = ex.extract(text)
    assert anon[0].doc_id.startswith("text-") and [_key(f) for f in anon] == [_key(f) for f in facts]
    assert ex.extract("") == [] and ex.extract("没有数字的句子。") == []


def test_api_equals_cli_output(samples, tmp_path):
    out = tmp_path / "f.jsonl"
    res = runner.invoke(app, ["extract", str(samples), "-o", str(out), "-m", "rules", "-q"])
    assert res.exit_code == 0, res.output
    cli = read_facts(out)
    ex = Extractor.from_pretrained("rules")
    paths = sorted(samples.glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in paths]
    many = ex.extract_many(texts, doc_ids=[p.stem for p in paths], paths=[str(p) for p in paths])
    assert len(many) == len(paths)
    assert [f.to_dict() for fs in many for f in fs] == [f.to_dict() for f in cli]
    one = ex.extract_file(paths[3])
    assert [f.to_dict() for f in one] == [f.to_dict() for f in many[3]]
    with pytest.raises(ValueError):
        ex.extract_many(texts[:2], doc_ids=["a"])


def test_long_document_is_segmented_without_changing_facts(samples, monkeypatch):
    """A document over MAX_SEGMENT_CHARS is cut at paragraph ends; the rules find the same facts."""
    from govfacts.infer.rules import RuleExtractor
    from govfacts.tables import read_tables

    text = "\n".join((samples / f"{d}.txt").read_text(encoding="utf-8")
                     for d in ("hr-dongguan-2015", "gov-pingtan-2019", "hrss-jilin-province-2014")) * 3
    pieces = api.segments(text, 5000)
    assert len(pieces) > 5 and "".join(p for _, p in pieces) == text
    assert all(len(p) <= 5000 and text[o:o + len(p)] == p for o, p in pieces)
    assert all(p[-1] in "\n。！？；" for _, p in pieces[:-1])  # paragraph or sentence ends
    monkeypatch.setattr(api, "MAX_SEGMENT_CHARS", 5000)
    monkeypatch.setattr(api, "GROUP_CHARS", 12000)
    seg = [f for f in Extractor.from_pretrained("rules").extract(text, doc_id="long") if f.source == "prose"]
    regions = read_tables(text).regions()  # prose spans inside template tables are dropped (table facts)
    whole = [s for s in RuleExtractor().spans(text) if not any(a <= s.start and s.end <= b for a, b in regions)]
    assert len(whole) < len(RuleExtractor().spans(text))
    assert [(f.start, f.end, f.metric, f.text) for f in seg] == [(s.start, s.end, s.label, s.text) for s in whole]
    assert len(seg) > 100
    assert api.segments("短", 5000) == [(0, "短")]
    hard = api.segments("字" * 12000, 5000)  # no line or sentence ends: hard cuts
    assert [len(p) for _, p in hard] == [5000, 5000, 2000]


def test_tagger_api_matches_tagger_and_cli(tiny_tagger, samples, tmp_path):
    from govfacts.infer.tagger import Tagger

    ex = Extractor.from_pretrained(tiny_tagger, quantize=False, num_threads=1)
    tagger = Tagger.from_pretrained(tiny_tagger, num_threads=1)
    assert ex.id == f"{tagger.name}@{tagger.version}"
    paths = sorted(samples.glob("*.txt"))[:4]
    docs = [Document(p.stem, str(p), p.read_text(encoding="utf-8")) for p in paths]
    want = [facts_from_spans(d, tagger.spans(d.text), f"{tagger.name}@{tagger.version}") for d in docs]
    got = [[f for f in fs if f.source == "prose"]
           for fs in ex.extract_many([d.text for d in docs], doc_ids=[d.doc_id for d in docs], paths=[d.path for d in docs])]
    def same(a, b):  # batched windows are padded: confidences agree to float noise, not to the last digit
        da, db = a.to_dict(), b.to_dict()
        return da.pop("confidence") == pytest.approx(db.pop("confidence"), abs=1e-3) and da == db
    assert [len(fs) for fs in got] == [len(fs) for fs in want]
    assert all(same(a, b) for fs, ws in zip(got, want) for a, b in zip(fs, ws))
    single = [f for f in ex.extract(docs[1].text, doc_id=docs[1].doc_id, path=docs[1].path) if f.source == "prose"]
    assert len(single) == len(want[1]) and all(same(a, b) for a, b in zip(single, want[1]))
    out = tmp_path / "t.jsonl"
    folder = tmp_path / "in"
    folder.mkdir()
    for p in paths:
        shutil.copy(p, folder / p.name)
    res = runner.invoke(app, ["extract", str(folder), "-o", str(out), "-m", str(tiny_tagger), "-q", "--fp32"])
    assert res.exit_code == 0, res.output
    cli = [_key(f) for f in read_facts(out) if f.source == "prose"]
    flat = [_key(f) for fs in want for f in fs]
    assert [k[:7] + k[8:] for k in cli] == [k[:7] + k[8:] for k in flat]  # all but the confidence
    assert all(a[7] == pytest.approx(b[7], abs=1e-3) for a, b in zip(cli, flat))


@pytest.mark.parametrize("runtime,suffix", [("torch", "+int8"), ("onnx", "+onnx-int8")])
def test_quantized_tagger(tiny_tagger, samples, runtime, suffix):
    ex = Extractor.from_pretrained(tiny_tagger, quantize=True, num_threads=1, runtime=runtime)
    assert ex.version.endswith(suffix) and (ex.extractor.quantized or ex.extractor.runner.int8)
    text = (samples / "hr-dongguan-2015.txt").read_text(encoding="utf-8")
    facts = ex.extract(text, doc_id="d")
    assert all(text[f.start:f.end] == f.text and f.extractor.endswith(suffix) for f in facts)
    if runtime == "torch":
        assert ex.extractor.quantize() is ex.extractor  # idempotent


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_an_ensemble_runs_its_tagger_with_the_inference_settings(tiny_tagger, runtime):
    from govfacts.infer.loader import InferSettings, has_tagger, load

    for spec, member in ((f"{tiny_tagger}+rules", "primary"), (f"rules+{tiny_tagger}", "secondary")):
        ex = load(spec, InferSettings.load(quantize=True, runtime=runtime, num_threads=1, batch_size=4))
        tagger = getattr(ex, member)
        assert has_tagger(ex) and tagger.options.num_threads == 1 and tagger.options.batch_size == 4
        assert (tagger.quantized if runtime == "torch" else tagger.runner.int8)
        assert tagger.version in ex.version and ex.version.count("int8") == 1


def test_local_worker_processes_give_the_same_output(samples, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out, extra in ((a, []), (b, ["--workers", "2"])):
        res = runner.invoke(app, ["extract", str(samples), "-o", str(out), "-m", "rules", "-q", *extra])
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()


def test_engine_option_is_checked(samples, tmp_path):
    res = runner.invoke(app, ["extract", str(samples), "-o", str(tmp_path / "x.jsonl"), "-m", "rules",
                              "--engine", "spark"])
    assert res.exit_code == 2 and "--engine must be local or ray" in res.output
    res = runner.invoke(app, ["extract", str(samples), "-o", str(tmp_path / "x.jsonl"), "-m", "rules",
                              "--address", "auto"])
    assert res.exit_code == 2 and "--address needs --engine ray" in res.output


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_a_documents_reading_does_not_depend_on_the_documents_beside_it(tiny_tagger, samples, runtime):
    """int8 encoders scale activations per forward pass, so no pass mixes two documents: a report read alone
    or among others (another corpus, a resumed run) gives the same per-char probabilities, bit for bit."""
    import numpy as np

    from govfacts.textview import build_view

    ex = Extractor.from_pretrained(tiny_tagger, quantize=True, num_threads=1, runtime=runtime)
    views = [build_view((samples / f"{n}.txt").read_text(encoding="utf-8"))
             for n in ("hr-dongguan-2015", "gov-huaian-hongze-2023", "hrss-zhengzhou-2017")]
    alone = ex.extractor.view_probs([views[0]])[0]
    among = ex.extractor.view_probs([views[1], views[0], views[2]])[1]
    assert alone[1].any() and np.array_equal(alone[0], among[0]) and np.array_equal(alone[1], among[1])
    batches = list(ex.extractor.window_batches(views))
    assert all(len({vi for vi, *_ in batch}) == 1 for batch, *_ in batches)
    assert all(len(batch) <= ex.extractor.options.batch_size for batch, *_ in batches)
