"""The label audit finds what the held-out runs agree on against the gold; reviewed decisions change the task
files exactly as recorded, once, and the committed decisions are in effect in the committed annotations."""
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from govfacts.annotations import AnnotatedDoc, load_corpus, read_tasks
from govfacts.cli import app
from govfacts.corrections import apply_decisions, read_decisions
from govfacts.labels import default_labels
from govfacts.paths import ANNOTATIONS
from govfacts.records import Span
from govfacts.train.audit import audit, markdown

TEXT = "全年主动公开政府信息120条,制定规范性文件3件,接待来访群众45人次,开展培训2次。"


def _doc():
    spans = [Span(10, 14, "POSTS_PUBLISHED", "120条"), Span(22, 24, "DOCUMENTS_ISSUED", "3件"),
             Span(31, 35, "VISITORS_RECEIVED", "45人次")]
    assert [TEXT[s.start:s.end] for s in spans] == ["120条", "3件", "45人次"]
    return AnnotatedDoc(doc_id="d1", text=TEXT, spans=spans, ignore=[])


def _run(seed_spans):
    return {"docs": ["d1"], "tagger": {"spans": {"d1": seed_spans}}}


def test_the_audit_lists_what_every_held_out_run_disagrees_on():
    both = [[10, 14, "POSTS_PUBLISHED", 0.95], [22, 24, "POSTS_PUBLISHED", 0.8], [40, 42, "TRAININGS", 0.9]]
    runs = [_run(both), _run([s[:3] + [s[3] - 0.1] for s in both])]
    found = {(x.kind, x.start, x.gold, x.predicted) for x in audit(runs, {"d1": _doc()})}
    assert found == {("relabel", 22, "DOCUMENTS_ISSUED", "POSTS_PUBLISHED"),
                     ("unannotated", 40, None, "TRAININGS"),
                     ("missed", 31, "VISITORS_RECEIVED", None)}
    # one run that agrees with the gold is enough to drop a case, and so is low confidence
    runs[1]["tagger"]["spans"]["d1"] = [[10, 14, "POSTS_PUBLISHED", 0.9], [22, 24, "DOCUMENTS_ISSUED", 0.9],
                                        [31, 35, "VISITORS_RECEIVED", 0.9], [40, 42, "TRAININGS", 0.2]]
    assert audit(runs, {"d1": _doc()}) == []
    assert "0 cases" in markdown([])


def _decisions(tmp_path, rows):
    path = tmp_path / "decisions.tsv"
    path.write_text("doc_id\tstart\tend\taction\tnew_label\tnew_start\tnew_end\treason\n"
                    + "".join("\t".join(map(str, r)) + "\n" for r in rows), encoding="utf-8")
    return read_decisions(path, set(default_labels().names))


def test_decisions_change_the_task_files_once_and_as_recorded(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(ANNOTATIONS / "tasks" / "extra-passages-8q.json", tasks)
    before = load_corpus(tmp_path)["extra-8q01"]
    assert [(s.start, s.end, s.label) for s in before.spans] == [(142, 147, "VISITORS_RECEIVED")]
    rows = [("extra-8q01", 142, 147, "relabel", "ONLINE_INQUIRIES", "", "", "test"),
            ("extra-8q01", 157, 162, "add", "CALLS_ANSWERED", 157, 162, "test"),
            ("extra-8q01", 45, 48, "skip", "", "", "", "units")]
    decisions = _decisions(tmp_path, rows)
    assert apply_decisions(tasks, decisions) == {"relabelled": 1, "added": 1}
    after = load_corpus(tmp_path)["extra-8q01"]
    assert [(s.start, s.end, s.label, s.text) for s in after.spans] == \
        [(142, 147, "ONLINE_INQUIRIES", "86 人次"), (157, 162, "CALLS_ANSWERED", "123 次")]
    assert not apply_decisions(tasks, decisions)  # already in effect
    removed = _decisions(tmp_path, [("extra-8q01", 157, 162, "remove", "", "", "", "no label fits")])
    assert apply_decisions(tasks, removed) == {"removed": 1}
    task = next(t for t in read_tasks(tasks / "extra-passages-8q.json") if t["data"]["doc_id"] == "extra-8q01")
    assert {"start": 157, "end": 162, "reason": "no label fits"} in task["data"]["not_tagged"]


def test_a_bad_decision_names_its_line_or_its_document(tmp_path):
    with pytest.raises(ValueError, match="line 3: relabel needs a known label"):
        _decisions(tmp_path, [("d", 1, 2, "keep", "", "", "", ""), ("d", 1, 2, "relabel", "POSTS", "", "", "")])
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(ANNOTATIONS / "tasks" / "extra-passages-8q.json", tasks)
    with pytest.raises(ValueError, match="no task for nowhere-1"):
        apply_decisions(tasks, _decisions(tmp_path, [("nowhere-1", 1, 2, "remove", "", "", "", "")]))
    with pytest.raises(ValueError, match="extra-8q01: no span at 1-2"):
        apply_decisions(tasks, _decisions(tmp_path, [("extra-8q01", 1, 2, "relabel", "STAFF", "", "", "")]))


def test_the_committed_decisions_are_in_effect(tmp_path):
    tables = sorted((ANNOTATIONS / "audit").glob("*.tsv"))
    assert tables
    shutil.copytree(ANNOTATIONS / "tasks", tmp_path / "tasks")
    for table in tables:
        res = CliRunner().invoke(app, ["annotations", "correct", str(table), "--tasks", str(tmp_path / "tasks")])
        assert res.exit_code == 0 and "every decision is in effect" in res.output, (table, res.output)


def test_a_table_with_one_unknown_span_changes_no_file(tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    shutil.copy(ANNOTATIONS / "tasks" / "extra-passages-8q.json", tasks)
    before = (tasks / "extra-passages-8q.json").read_bytes()
    table = tmp_path / "decisions.tsv"
    table.write_text("doc_id\tstart\tend\taction\tnew_label\treason\n"
                     "extra-8q01\t142\t147\trelabel\tSTAFF\tfine\n"
                     "extra-8q01\t1\t2\trelabel\tSTAFF\tno such span\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["annotations", "correct", str(table), "--tasks", str(tasks)])
    assert res.exit_code == 1 and "extra-8q01: no span at 1-2" in res.output
    assert (tasks / "extra-passages-8q.json").read_bytes() == before
