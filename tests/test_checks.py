"""`govfacts check`: each kind of inconsistency planted in a real report's facts is found; consistent
reports give no finding; a real report that breaks the template's arithmetic gives findings."""
import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.checks import check_document
from govfacts.cli import app
from govfacts.factsio import read_facts
from govfacts.infer.api import extract_documents
from govfacts.infer.loader import load
from govfacts.reader import read_document

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def facts():
    docs = [read_document(ROOT / "data" / "samples" / f"{d}.txt") for d in
            ("gov-pingtan-2021", "gov-pingtan-2024", "gov-huaian-hongze-2023", "hr-dongguan-2015")]
    return {d.doc_id: (d, fs) for d, fs in zip(docs, extract_documents(load("rules"), docs))}


def _plant(fs, key, delta):
    return [dataclasses.replace(f, value=f.value + delta) if f.cell == key else f for f in fs]


def test_consistent_reports_give_no_finding(facts):
    for doc_id in ("gov-pingtan-2021", "gov-pingtan-2024", "hr-dongguan-2015"):
        doc, fs = facts[doc_id]
        assert check_document(doc_id, fs, doc.text) == [], doc_id


@pytest.mark.parametrize("key,delta,kinds", [
    ("requests.granted.natural_person", 1, {"row_total", "outcomes_total"}),
    ("requests.carried_out.total", 2, {"balance", "row_total"}),
    ("requests.total_handled.business", 1, {"row_total", "balance", "outcomes_total"}),
    ("review.total", 1, {"appeal_total"}),
    ("litigation_direct.upheld", 3, {"appeal_total"})])
def test_planted_inconsistencies_are_found(facts, key, delta, kinds):
    doc, fs = facts["gov-pingtan-2021"]
    found = check_document(doc.doc_id, _plant(fs, key, delta), doc.text)
    assert {f.check for f in found} == kinds
    assert all(key in f.cells for f in found)


def test_prose_that_contradicts_the_table(facts):
    doc, fs = facts["gov-pingtan-2021"]
    total = next(f for f in fs if f.cell == "requests.new.total")
    text = doc.text + f"\n全年共收到政府信息公开申请{int(total.value) + 1}件。"
    s = text.rindex("共收到") + len("共收到政府信息公开申请")
    claim = dataclasses.replace(fs[0], metric="APPLICATIONS_RECEIVED", value=total.value + 1, qualifier="exact",
                                text=text[s:-1], start=s, end=len(text) - 1, source="prose", cell=None)
    found = check_document(doc.doc_id, fs + [claim], text)
    assert [(f.check, f.expected, f.found) for f in found] == [("prose_vs_table", total.value, total.value + 1)]
    part = text + f"其中网上申请{int(total.value) + 1}件。"  # a part of the total, not the total
    s2 = len(part) - len(f"{int(total.value) + 1}件。")
    claim2 = dataclasses.replace(claim, start=s2, end=len(part) - 1)
    assert check_document(doc.doc_id, fs + [claim2], part) == []


def test_a_real_report_that_breaks_the_arithmetic(facts):
    doc, fs = facts["gov-huaian-hongze-2023"]
    found = check_document(doc.doc_id, fs, doc.text)
    assert {(f.check, tuple(f.cells[-1:])) for f in found} == {("appeal_total", ("review.total",)),
                                                             ("appeal_total", ("litigation_after_review.total",))}


def test_check_command(tmp_path):
    out, findings = tmp_path / "facts.csv", tmp_path / "findings.jsonl"
    runner = CliRunner()
    res = runner.invoke(app, ["extract", str(ROOT / "data" / "samples"), "-o", str(out), "-m", "rules", "-q"])
    assert res.exit_code == 0, res.output
    assert any(f.source == "table" and f.cell == "requests.new.total" for f in read_facts(out))  # csv keeps them
    pq = tmp_path / "facts.parquet"
    assert runner.invoke(app, ["extract", str(ROOT / "data" / "samples"), "-o", str(pq), "-m", "rules", "-q"]).exit_code == 0
    assert [(f.cell, f.value, f.start) for f in read_facts(pq)] == [(f.cell, f.value, f.start) for f in read_facts(out)]
    res = runner.invoke(app, ["check", str(out), "--output", str(findings)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in findings.read_text(encoding="utf-8").splitlines()]
    assert {x["doc_id"] for x in lines} == {"gov-huaian-hongze-2023"}
    assert set(lines[0]) == {"doc_id", "check", "cells", "expected", "found", "message"}
    assert "2 findings in 1 of 17 documents" in res.output
