"""The labelled corpus and the tools that check it."""
import json

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.splits import load_splits, split_of
from govfacts.consistency import explain, uncovered_numbers
from govfacts.labels import default_labels
from govfacts.paths import ANNOTATIONS
from govfacts.annotations import doc_to_task, read_tasks, task_to_doc
from govfacts.annotations import validate_exports

runner = CliRunner()


@pytest.fixture(scope="module")
def corpus():
    docs, problems = validate_exports([ANNOTATIONS / "tasks"])
    assert problems == []
    return docs


def test_corpus_is_valid_and_fully_reviewed(corpus):
    assert len(corpus) >= 19
    assert sum(len(d.spans) for d in corpus) >= 380
    assert [u for d in corpus for u in uncovered_numbers(d)] == []
    for d in corpus:
        assert all(d.text[s.start:s.end] == s.text for s in d.spans)
        assert not any(a <= s.start < b for s in d.spans for a, b in d.ignore)
        assert all(n.get("reason") for n in d.not_tagged)


def test_samples_are_the_annotated_reports(corpus, samples):
    for d in corpus:
        src = d.meta.get("source", "")
        if src.startswith("reports/"):
            assert (samples / src.split("/", 1)[1]).read_text(encoding="utf-8") == d.text


def test_splits_are_document_level_and_disjoint(corpus):
    splits = load_splits()
    ids = {d.doc_id for d in corpus}
    seen = [doc for docs in splits.values() for doc in docs if "*" not in doc]
    assert len(seen) == len(set(seen))
    assert set(seen) <= ids
    where = split_of(splits, sorted(ids))
    assert set(where) == ids  # every document has a split
    assert all(where[d] == ("dev" if d.startswith("extra-4") else "train") for d in ids if d.startswith("extra-"))
    assert all(where[d] != "test" for d in ids if d.startswith("extra-"))  # passages never enter test
    assert len(splits["test"]) >= 3
    assert any(doc.startswith(("hr-", "hrss-")) for doc in splits["test"])
    assert "gov-pingtan-2022" in splits["test"]  # a 2021-template report


def test_no_negative_or_distractor_sentence_is_inside_a_document_with_claims(corpus):
    """A sentence kept empty (a training negative, a distractor) that a corpus document also holds would be a
    contradiction in training, or a distractor trained on."""
    import re

    from govfacts.evaluate.robustness import load_distractors

    def norm(t: str) -> str:
        return re.sub(r"\s+", "", t)

    claims = [norm(d.text) for d in corpus if d.spans]
    empty = [d.text for d in corpus if d.doc_id.startswith("neg-")] + [c.text for c in load_distractors()]
    assert len(empty) >= 200
    keys = [norm(t)[:40] for t in empty]
    inside = [k for k in keys if any(k in c for c in claims)]
    assert inside == []


def test_task_round_trip(corpus):
    for d in corpus:
        again = task_to_doc(json.loads(json.dumps(doc_to_task(d), ensure_ascii=False)))
        assert again.spans == d.spans and again.ignore == d.ignore and again.doc_id == d.doc_id


def _task(text, regions, tid=1):
    return {"id": tid, "data": {"text": text, "doc_id": f"d{tid}"},
            "annotations": [{"result": [{"id": str(i), "from_name": "label", "to_name": "text", "type": "labels",
                                         "value": {"start": s, "end": e, "text": t, "labels": [lab]}}
                                        for i, (s, e, t, lab) in enumerate(regions)]}]}


def test_validator_reports_each_problem_and_keeps_valid_tasks(tmp_path):
    text = "网站主动发布信息1100多条，接听咨询电话22.4万余次。"
    good = _task(text, [(8, 14, "1100多条", "POSTS_PUBLISHED")], 1)
    bad = _task(text, [(8, 14, "1100多", "POSTS_PUBLISHED"),      # text mismatch
                       (21, 28, "22.4万余次", "CALLS"),              # unknown label
                       (22, 24, "2.", "CALLS_ANSWERED"),            # overlap
                       (5, 5, "", "POSTS_PUBLISHED"),               # empty
                       (40, 90, "", "POSTS_PUBLISHED")], 2)         # outside
    f = tmp_path / "export.json"
    f.write_text(json.dumps([good, bad], ensure_ascii=False), encoding="utf-8")
    lines = tmp_path / "export.jsonl"
    lines.write_text(json.dumps(good, ensure_ascii=False) + "\n{not json\n", encoding="utf-8")
    docs, problems = validate_exports([f, lines])
    assert [d.doc_id for d in docs] == ["d1", "d1"]
    reasons = sorted(p.reason.split(" ")[0] for p in problems if p.task == "2")
    assert reasons == ["empty", "overlaps", "region", "span", "unknown"]
    assert any(p.task == "line 2" and "malformed JSON line" in p.reason and "export.jsonl" in p.source
               for p in problems)
    out = tmp_path / "valid.json"
    res = runner.invoke(app, ["annotations", "validate", str(f), str(lines), "-o", str(out)])
    assert res.exit_code == 1
    assert "task 2 [21:28]: unknown label 'CALLS'" in res.output
    assert [t["data"]["doc_id"] for t in read_tasks(out)] == ["d1", "d1"]


def test_validator_names_a_malformed_file(tmp_path):
    f = tmp_path / "broken.json"
    f.write_text('[{"id": 1, "data": ', encoding="utf-8")
    docs, problems = validate_exports([f])
    assert docs == [] and "malformed JSON" in problems[0].reason and problems[0].source == str(f)


def test_config_command_prints_every_label():
    res = runner.invoke(app, ["annotations", "config"])
    assert res.exit_code == 0
    assert all(f'value="{name}"' in res.output for name in default_labels().names)


def test_stats_command_checks_the_corpus():
    res = runner.invoke(app, ["annotations", "stats", "--check"])
    assert res.exit_code == 0, res.output
    assert "0 numbers in the prose not covered" in res.output


@pytest.mark.parametrize("text,number,reason", [
    ("2014年网站", "2014", "year"), ("〔2014〕103号", "103", "document number"), ("电话：0769-22836661", "0769", None),
    ("邮编：523888，", "523888", "phone/postcode/address/url"), ("占24.43%", "24.43", "share or change"),
    ("第三十条", None, None), ("1.认真贯彻", "1.", "section number"), ("信息1100多条", "1100", None),
])
def test_explain_rules(text, number, reason):
    if number is None:
        return
    s = text.index(number)
    got = explain(text, s, s + len(number))
    assert got == reason or (reason is None and number == "0769" and got is not None)


def test_to_dataset_round_trips_the_real_annotations(tmp_path, corpus):
    from datasets import load_from_disk

    from govfacts.textview import build_view
    from govfacts.tags import tags_to_spans

    res = runner.invoke(app, ["annotations", "to-dataset", "--out", str(tmp_path / "ds")])
    assert res.exit_code == 0, res.output
    ds = load_from_disk(str(tmp_path / "ds"))
    by_id = {d.doc_id: d for d in corpus}
    assert len(ds) == len(corpus)
    for row in ds:
        doc = by_id[row["doc_id"]]
        view = build_view(doc.text)
        assert "".join(row["chars"]) == view.text
        back = tags_to_spans(row["tags"], view)
        assert [(s.start, s.end, s.label) for s in back] == [(s.start, s.end, s.label) for s in doc.spans]


def test_facts_become_scored_predictions(tmp_path, samples):
    facts = tmp_path / "f.jsonl"
    assert runner.invoke(app, ["extract", str(samples / "hr-dongguan-2015.txt"), "-o", str(facts), "-m", "rules",
                               "-q"]).exit_code == 0
    out = tmp_path / "tasks.json"
    res = runner.invoke(app, ["annotations", "from-facts", str(facts), "-o", str(out)])
    assert res.exit_code == 0, res.output
    (task,) = read_tasks(out)
    pred = task["predictions"][0]
    assert pred["model_version"].startswith("rules@") and pred["result"]
    text = task["data"]["text"]
    assert all(r["value"]["text"] == text[r["value"]["start"]:r["value"]["end"]] and 0 < r["score"] <= 1
               for r in pred["result"])
    assert pred["score"] == min(r["score"] for r in pred["result"])


def test_a_span_inside_a_table_region_is_flagged(tmp_path):
    text = "网站发布信息10条。表格 规章 000 行政许可2293"
    t = text.index("表格")
    task = doc_to_task(task_to_doc({"data": {"text": text, "doc_id": "t", "ignore": [[t, len(text)]]},
                                    "annotations": [{"result": []}]}))
    task["annotations"][0]["result"] = [
        {"id": "a", "from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": 6, "end": 9, "text": "10条", "labels": ["POSTS_PUBLISHED"]}},
        {"id": "b", "from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": len(text) - 4, "end": len(text), "text": text[-4:], "labels": ["STAFF"]}}]
    f = tmp_path / "export.json"
    f.write_text(json.dumps([task], ensure_ascii=False), encoding="utf-8")
    docs, problems = validate_exports([f])
    assert not docs and len(problems) == 1 and "out-of-scope table region" in problems[0].reason


def test_pull_of_a_json_object_is_refused(tmp_path):
    from govfacts.cli import app

    ann = tmp_path / "annotations"
    (ann / "tasks").mkdir(parents=True)
    (ann / "splits.yaml").write_text("train: []\n", encoding="utf-8")
    f = tmp_path / "export.json"
    f.write_text(json.dumps({"id": 1, "data": {"text": "x"}}), encoding="utf-8")
    res = CliRunner().invoke(app, ["studio", "pull", "--export", str(f), "--annotations", str(ann)])
    assert res.exit_code == 2 and "one JSON object" in res.output and not list((ann / "tasks").iterdir())
