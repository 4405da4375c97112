"""Evaluation metrics on hand-computed cases, and the report outputs."""
import json

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.records import Span
from govfacts.annotations import AnnotatedDoc, doc_to_task
from govfacts.evaluate.report import confusion, evaluate_predictions
from govfacts.scoring import calibration, score

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


def test_evaluate_scores_exactly_what_extract_writes(tmp_path):
    """`govfacts evaluate` with no --model runs the default extractor as `govfacts extract` does
    (configs/infer.yaml: model, runtime, int8), on a report of the test split."""
    from govfacts.annotations import load_split, write_tasks
    from govfacts.evaluate.report import predict
    from govfacts.factsio import read_facts
    from govfacts.infer.loader import load
    from govfacts.paths import ANNOTATIONS, SAMPLES

    gold = next(d for d in load_split("test", ANNOTATIONS) if d.doc_id == "hrss-zhengzhou-2017")
    report = SAMPLES / f"{gold.doc_id}.txt"
    assert report.read_text(encoding="utf-8") == gold.text
    runner = CliRunner()
    res = runner.invoke(app, ["extract", str(report), "-o", str(tmp_path / "facts.jsonl"), "-q"])
    assert res.exit_code == 0, res.output
    facts = [f for f in read_facts(tmp_path / "facts.jsonl") if f.source == "prose"]
    assert facts and len({f.extractor for f in facts}) == 1
    # the same spans, scores and extractor id through the evaluation's prediction path
    ex = load(None)
    spans = predict(ex, [gold])[gold.doc_id]
    assert [(s.start, s.end, s.label, s.score) for s in spans] == [(f.start, f.end, f.metric, f.confidence) for f in facts]
    # and the command itself scores that extractor on that document
    write_tasks(tmp_path / "gold.json", [doc_to_task(gold)])
    res = runner.invoke(app, ["evaluate", "--gold", str(tmp_path / "gold.json"), "--out", str(tmp_path / "eval")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "eval" / "report.json").read_text(encoding="utf-8"))
    assert list(rep["models"]) == [facts[0].extractor]
    assert rep["models"][facts[0].extractor]["fact"]["predicted"] == len(facts)


def test_bootstrap_interval_and_paired_comparison():
    from govfacts.scoring import FactMatch, bootstrap_interval, paired_bootstrap

    g = Span(0, 2, "FEES", "0元")
    ids = [f"d{i}" for i in range(20)]
    good = [FactMatch(d, g, g, "tp") for d in ids]  # right on every document
    half = [FactMatch(d, g, g, "tp") if i % 2 else FactMatch(d, g, None, "fn") for i, d in enumerate(ids)]
    ci = bootstrap_interval(half, ids, samples=500)
    assert ci["low"] < ci["f1"] < ci["high"] and ci["f1"] == pytest.approx(2 / 3)
    assert bootstrap_interval(good, ids, samples=200)["low"] == 1.0
    cmp = paired_bootstrap(good, half, ids, samples=500)
    assert cmp["diff"] == pytest.approx(1 / 3) and cmp["low"] > 0 and cmp["a_better"] and not cmp["b_better"]
    same = paired_bootstrap(half, half, ids, samples=200)
    assert same["diff"] == 0 and not same["a_better"] and not same["b_better"]
    # a difference on two documents out of twenty is not shown to be real
    near = [FactMatch(d, g, g, "tp") if i % 2 or i < 4 else FactMatch(d, g, None, "fn") for i, d in enumerate(ids)]
    assert not paired_bootstrap(near, half, ids, samples=1000)["a_better"]


def test_ece_interval_over_documents():
    """The point estimate is `calibration`'s ECE; the interval widens with fewer documents and is zero-width
    where every document is calibrated alike."""
    from govfacts.scoring import FactMatch, ece_interval

    g = Span(0, 2, "FEES", "0元")

    def matches(ids, n_right):  # each document: one fact at 0.75 confidence, right on the first n_right
        return [FactMatch(d, g, Span(0, 2, "FEES", "0元", 0.75), "tp" if i < n_right else "fp")
                for i, d in enumerate(ids)]

    ids = [f"d{i}" for i in range(8)]
    m = matches(ids, 6)  # 75 % right at 0.75: calibrated
    ci = ece_interval(m, ids, samples=500)
    assert ci["ece"] == pytest.approx(calibration(m)["ece"]) == pytest.approx(0.0)
    assert ci["low"] == pytest.approx(0.0) and ci["high"] > 0.1  # 8 documents cannot rule a large error out
    many = [f"d{i}" for i in range(400)]
    wide, narrow = ci["high"] - ci["low"], (lambda c: c["high"] - c["low"])(ece_interval(matches(many, 300), many,
                                                                                          samples=500))
    assert narrow < wide / 2
    mixed = matches(ids, 2) + [FactMatch("d0", g, Span(3, 5, "FEES", "1元", 0.15), "fp")]
    assert ece_interval(mixed, ids, samples=100)["ece"] == pytest.approx(calibration(mixed)["ece"])
    assert ece_interval([], ids)["ece"] is None
    # chance alone: 8 facts at 0.75 give a sizeable ECE even when calibrated; 400 facts a small one
    few, lots = ci["calibrated_high"], ece_interval(matches(many, 300), many, samples=500)["calibrated_high"]
    assert few > 0.2 and lots < 0.1 and lots < few


def test_paired_ece_claims_better_calibration_only_where_the_interval_says_so():
    """Same facts, same outcomes, other confidences: on 400 documents a map stating 0.75 for facts right 3
    times in 4 is shown better calibrated than one stating 0.95; on 8 documents that is not shown."""
    from govfacts.scoring import FactMatch, calibration, paired_ece

    g = Span(0, 2, "FEES", "0元")

    def matches(ids, conf):  # one fact per document, right on 3 of every 4
        return [FactMatch(d, g, Span(0, 2, "FEES", "0元", conf), "tp" if i % 4 else "fp") for i, d in enumerate(ids)]

    many = [f"d{i}" for i in range(400)]
    out = paired_ece(matches(many, 0.75), matches(many, 0.95), many, samples=500)
    assert out["diff"] == pytest.approx(calibration(matches(many, 0.75))["ece"] - calibration(matches(many, 0.95))["ece"])
    assert out["diff"] < 0 and out["a_better"] and not out["b_better"] and out["p_a_better"] > 0.95
    back = paired_ece(matches(many, 0.95), matches(many, 0.75), many, samples=500)
    assert back["b_better"] and back["diff"] == pytest.approx(-out["diff"])
    few = [f"d{i}" for i in range(8)]
    assert not paired_ece(matches(few, 0.75), matches(few, 0.85), few, samples=500)["a_better"]
    assert paired_ece([], matches(few, 0.75), few)["diff"] is None


def test_report_prints_intervals_and_claims_only_what_they_show(tmp_path):
    res = CliRunner().invoke(app, ["evaluate", "--gold", "annotations", "--split", "test", "-m", "rules",
                                   "-m", "rules", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (name,) = rep["models"]  # the same extractor twice is one model
    ci = rep["models"][name]["fact_interval"]
    assert ci["low"] <= rep["models"][name]["fact"]["f1"] <= ci["high"]
    ece = rep["models"][name]["calibration"]
    assert ece["ece"] <= ece["interval"]["high"] and ece["interval"]["calibrated_high"] > 0
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "fact F1 95 % CI" in md and "ECE 95 % CI" in md
