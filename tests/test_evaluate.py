"""Evaluation metrics on hand-computed cases, and the report outputs."""
import json

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.records import Span
from govfacts.studio_io import AnnotatedDoc, doc_to_task
from govfacts.train.evaluate import calibration, confusion, evaluate_predictions, score

TEXT = "网站发布信息10条，接听电话5次，受理申请3件。表格1 2 3"


def _span(text, label, score=1.0, occurrence=0):
    s = TEXT.index(text)
    return Span(s, s + len(text), label, text, score)


@pytest.fixture
def case():
    gold = AnnotatedDoc("d1", TEXT, [_span("10条", "POSTS_PUBLISHED"), _span("5次", "CALLS_ANSWERED"),
                                     _span("3件", "APPLICATIONS_RECEIVED")], ignore=[(TEXT.index("表格"), len(TEXT))])
    pred = [_span("10条", "POSTS_PUBLISHED", 0.9), _span("5次", "ONLINE_INQUIRIES", 0.6),
            Span(TEXT.index("3件"), TEXT.index("3件") + 1, "APPLICATIONS_RECEIVED", "3", 0.8),
            Span(TEXT.index("1 2"), TEXT.index("1 2") + 1, "POSTS_PUBLISHED", "1", 0.99)]  # in the table: ignored
    return gold, {"d1": pred}


def test_entity_and_fact_scores_by_hand(case):
    gold, preds = case
    s = score([gold], preds)
    # strict entities: only 10条 is exact → P = R = 1/3
    assert s.entity["micro avg"]["precision"] == pytest.approx(1 / 3)
    assert s.entity["micro avg"]["recall"] == pytest.approx(1 / 3)
    assert s.entity["POSTS_PUBLISHED"]["f1-score"] == 1.0
    assert s.entity["APPLICATIONS_RECEIVED"]["f1-score"] == 0.0
    # facts: 10条 and "3" (same label, overlapping, value 3) are right; the label error is not; table ignored
    assert (s.fact["tp"], s.fact["predicted"], s.fact["support"]) == (2, 3, 3)
    assert s.fact["f1"] == pytest.approx(2 / 3)
    assert s.per_label_fact["CALLS_ANSWERED"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1,
                                                  "predicted": 0, "tp": 0}
    assert s.value_accuracy == 1.0 and s.qualifier_accuracy == 1.0


def test_calibration_by_hand(case):
    gold, preds = case
    cal = calibration(score([gold], preds).matches)
    # (|1-0.9| + |0-0.6| + |1-0.8|) / 3
    assert cal["ece"] == pytest.approx(0.3)
    assert cal["n"] == 3 and sum(b["count"] for b in cal["bins"]) == 3


def test_confusion_by_hand(case):
    gold, preds = case
    c = confusion([gold], preds)
    m = {(g, p): c["matrix"][i][j] for i, g in enumerate(c["labels"]) for j, p in enumerate(c["labels"])}
    assert m[("CALLS_ANSWERED", "ONLINE_INQUIRIES")] == 1
    assert m[("POSTS_PUBLISHED", "POSTS_PUBLISHED")] == 1
    assert m[("APPLICATIONS_RECEIVED", "APPLICATIONS_RECEIVED")] == 1
    assert sum(map(sum, c["matrix"])) == 3


def test_errors_sorted_by_confidence(case):
    gold, preds = case
    res = evaluate_predictions([gold], preds)
    assert [(e["kind"], e["text"]) for e in res["errors"]] == [("fp", "5次"), ("fn", "5次")]
    assert res["errors"][1]["predicted_here"] == ["ONLINE_INQUIRIES"]
    assert res["documents"][0]["f1"] == pytest.approx(2 / 3)


def test_evaluate_command_writes_three_reports(tmp_path):
    out = tmp_path / "eval"
    res = CliRunner().invoke(app, ["evaluate", "--gold", "annotations", "--split", "test", "--model", "rules",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["gold"]["documents"] >= 3 and len(report["gold"]["hash"]) == 64
    (name, r), = report["models"].items()
    assert name.startswith("rules@") and 0.5 < r["fact"]["f1"] <= 1
    assert "| model | entity P" in (out / "report.md").read_text(encoding="utf-8")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="headline"' in html and "data:image/png;base64," in html
    assert (out / "reliability.png").stat().st_size > 1000


def test_evaluate_accepts_an_export_file(tmp_path, case):
    gold, _ = case
    f = tmp_path / "export.json"
    f.write_text(json.dumps([doc_to_task(gold)], ensure_ascii=False), encoding="utf-8")
    res = CliRunner().invoke(app, ["evaluate", "--gold", str(f), "--model", "rules", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "o" / "report.json").read_text(encoding="utf-8"))
    assert r["gold"]["spans"] == 3
