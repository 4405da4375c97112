"""The robustness suite: rewrites keep every claim's value, spans move with the text, and the suite runs."""
import json

import pytest
from typer.testing import CliRunner

from govfacts.annotations import load_split
from govfacts.cli import app
from govfacts.evaluate.robustness import REWRITES, Case, load_distractors, markdown, run, sentence_cases, transform
from govfacts.infer.rules import RuleExtractor
from govfacts.paths import ANNOTATIONS
from govfacts.quantity import parse_quantity
from govfacts.records import Span
from govfacts.train.crossval import read_manifest


def _case(text, *claims):
    spans = [Span(text.index(c), text.index(c) + len(c), lab, c) for c, lab in claims]
    return Case("c", text, spans)


@pytest.mark.parametrize("name,claim,want", [
    ("chinese_numerals", "1136件", "一千一百三十六件"), ("chinese_numerals", "2起", "两起"),
    ("thousands_separator", "2300余人次", "2,300余人次"), ("fullwidth_digits", "47条", "４７条"),
    ("wan_unit", "22400次", "2.24万次"), ("wan_unit", "3000份", "3千份"), ("hedge", "81件", "约81件"),
    ("pdf_spacing", "1136件", "1136 件")])
def test_rewrites_keep_the_value(name, claim, want):
    rw = next(r for r in REWRITES if r.name == name)
    got = rw.fn(claim)
    assert got == want
    assert parse_quantity(got).value == parse_quantity(claim).value


def test_transform_moves_spans_and_skips_what_does_not_apply():
    case = _case("全年共受理申请1136件，其中网上申请81件。", ("1136件", "APPLICATIONS_RECEIVED"),
                 ("81件", "APPLICATIONS_RECEIVED"))
    for rw in REWRITES:
        t = transform(case, rw)
        if t is None:
            continue
        assert [t.text[s.start:s.end] for s in t.spans] == [s.text for s in t.spans]
        assert [s.label for s in t.spans] == [s.label for s in case.spans]
    trad = transform(case, next(r for r in REWRITES if r.name == "traditional"))
    assert "網上申請" in trad.text
    assert transform(_case("没有发生行政复议。", ("行政复议", "RECONSIDERATIONS")), REWRITES[0]) is None
    pdf = transform(_case("全年在政府网站平台主动公开政府信息1136条，其中规范性文件12件。", ("1136条", "POSTS_PUBLISHED"),
                          ("12件", "POSTS_PUBLISHED")), next(r for r in REWRITES if r.name == "pdf_spacing"))
    assert "\n" in pdf.text and [pdf.text[s.start:s.end] for s in pdf.spans] == ["1136 条", "12 件"]


def test_sentence_cases_of_the_gold_splits():
    docs = load_split("test")
    cases = sentence_cases(docs)
    assert len(cases) > 30
    for c in cases:
        assert c.spans and all(c.text[s.start:s.end] == s.text for s in c.spans)
        assert not any(ch in c.text[:-1] for ch in "。；")


def test_suite_runs_on_the_rules(tmp_path):
    docs = load_split("test")[:2]
    distractors = load_distractors()
    assert len(distractors) >= 280 and all(not c.spans for c in distractors)
    assert {c.source for c in distractors} == {"distractors.json", "distractors-2.json", "distractors-3.json"}
    assert len({c.case_id for c in distractors}) == len(distractors)
    rep = run([RuleExtractor()], docs, distractors[:10] + distractors[-10:])
    (res,) = rep.models.values()
    assert rep.cases["original"] > 10 and set(res) >= {"original", "chinese_numerals", "traditional", "distractors"}
    assert res["traditional"]["f1"] == pytest.approx(res["traditional"]["original_f1"])  # the rules read simplified
    d = res["distractors"]
    assert 0 <= d["clean"] <= 1 and d["sentences"] == 20
    assert {k: v["sentences"] for k, v in d["by_set"].items()} == {"distractors.json": 10, "distractors-3.json": 10}
    assert d["false_facts"] == sum(v["false_facts"] for v in d["by_set"].values())
    assert "| distractors: distractors-3.json | 10 |" in markdown(rep)
    res = CliRunner().invoke(app, ["robustness", "-m", "rules", "--split", "test", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "robustness.json").read_text(encoding="utf-8"))
    assert "distractors" in next(iter(data["models"].values()))
    assert "| chinese_numerals |" in (tmp_path / "robustness.md").read_text(encoding="utf-8")
    held = ANNOTATIONS / "heldout" / "extra-passages-9a.json"
    res = CliRunner().invoke(app, ["robustness", "-m", "rules", "--gold", str(held), "--out", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "h" / "robustness.md").read_text(encoding="utf-8")
    assert md.startswith(f"# govfacts robustness ({held} sentences)") and "| pdf_spacing |" in md
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["robustness", "-m", "rules", "--gold", str(tmp_path / "empty"), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "no gold documents" in res.output


def test_no_distractor_page_feeds_training_or_another_set():
    """A distractor of the second set on shares no page with the corpus (training negatives, passages, held-out
    rounds), and no set shares a page with another: a sentence of a page the tagger read would not test text it
    has not seen. (Some rare-label passages were cut from pages of the first set later, each sentence checked
    apart: annotations/robustness/README.md.)"""
    manifest = read_manifest(ANNOTATIONS / "MANIFEST.tsv")  # every sentence's page, as cited
    by_set: dict[str, set] = {}
    for c in load_distractors():
        by_set.setdefault(c.source, set()).add(manifest[c.case_id]["source"])
    used = {r["source"] for r in manifest.values() if r["kind"] != "distractor"} - {""}
    for name, pages in by_set.items():
        assert name == "distractors.json" or not pages & used, (name, sorted(pages & used)[:3])
        for other, more in by_set.items():
            assert other == name or not pages & more, (name, other, sorted(pages & more)[:3])
