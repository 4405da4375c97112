"""End to end against a REAL Label Studio: setup → push → annotate through the API → pull → retrain a tiny
model (not promoted, then forced) → ML backend connected, asked for predictions and retrained by Label
Studio itself; plus bad inputs (unreachable server, wrong token, malformed export).

Label Studio runs from .venv-studio/ (created here when missing; the tests are skipped only if that
fails), started by scripts/start-label-studio.sh on a free 127.0.0.1 port with a temporary data dir.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.annotations import read_tasks, task_to_doc

from govfacts.infer.rules import RuleExtractor
from govfacts.studio.records import read_record
from govfacts.studio.testsplit import comparison_split, split_hash

RULES_ID = f"rules@{RuleExtractor().version}"

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STUDIO_VENV = Path(os.environ.get("LABEL_STUDIO_VENV") or ROOT / ".venv-studio")  # as the start script
TOKEN = "e2e0123456789abcdef0123456789abcdef0123"
USER, PASSWORD = "annotator@example.org", "e2e-Passw0rd!"
TITLE = "govfacts e2e"
PUSHED = ["gov-pingtan-2011", "hrss-jilin-province-2014"]
NEW_DOC = "e2e-new-report-2099"
TINY = ["--set", "max_len=64", "--set", "stride=16", "--set", "epochs=1", "--set", "max_steps=3",
        "--set", "batch_size=8", "--set", "eval_batch_size=64", "--set", "progress=false", "--set", "max_minutes=3"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_studio_venv() -> None:
    if (STUDIO_VENV / "bin" / "label-studio").exists():
        return
    try:
        subprocess.run([sys.executable if shutil.which("python3") is None else "python3", "-m", "venv",
                        str(STUDIO_VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(STUDIO_VENV / "bin" / "pip"), "install", "-q", "label-studio"], check=True,
                       capture_output=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        shutil.rmtree(STUDIO_VENV, ignore_errors=True)
        detail = getattr(e, "stderr", b"") or b""
        pytest.skip(f"Label Studio is not installable here (python3 -m venv .venv-studio && pip install label-studio "
                    f"failed: {type(e).__name__} {detail.decode(errors='replace')[-300:]})")


def _get_json(url: str, timeout: float = 10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    _ensure_studio_venv()
    data = tmp_path_factory.mktemp("studio-data")
    port = _free_port()
    env = {**os.environ, "LS_PORT": str(port), "LABEL_STUDIO_BASE_DATA_DIR": str(data),
           "LABEL_STUDIO_USERNAME": USER, "LABEL_STUDIO_PASSWORD": PASSWORD, "LABEL_STUDIO_USER_TOKEN": TOKEN}
    start = subprocess.run(["bash", str(ROOT / "scripts" / "start-label-studio.sh")], env=env, capture_output=True,
                           text=True, timeout=300)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        url = f"http://127.0.0.1:{port}"
        yield {"url": url, "env": {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": TOKEN}, "port": port,
               "data": data}
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "start-label-studio.sh"), "stop"], env=env,
                       capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A copy of the annotated corpus to merge into, and a report that is not in it yet."""
    w = tmp_path_factory.mktemp("work")
    shutil.copytree(ROOT / "annotations", w / "annotations")
    # the whole reports are enough for the loop; the many short passages only make each retrain slower
    for f in list((w / "annotations" / "tasks").glob("extra-passages*.json")) + [w / "annotations" / "tasks" / "negatives.json"]:
        f.unlink()
    reports = w / "reports"
    reports.mkdir()
    for d in PUSHED:
        shutil.copy(ROOT / "data" / "samples" / f"{d}.txt", reports)
    text = (ROOT / "data" / "samples" / "gov-pingtan-2024.txt").read_text(encoding="utf-8")
    (reports / f"{NEW_DOC}.txt").write_text(text.replace("2024", "2099"), encoding="utf-8")
    (reports / "broken-empty.txt").write_bytes(b"")
    return {"dir": w, "ann": w / "annotations", "reports": reports}


def run(args, env, code=0):
    res = CliRunner().invoke(app, ["studio", *args], env=env)
    assert res.exit_code == code, f"exit {res.exit_code} != {code}\n{res.output}\n{res.exception!r}"
    return res.output


def _client(studio):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=studio["url"], api_key=TOKEN)


def _snapshot(folder: Path) -> dict:
    """The corpus files (the loop's records `.studio-*.json` beside them are not corpus)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".studio-")}


# -- start-up -------------------------------------------------------------------------------------------
def test_a_new_data_dir_starts_from_the_prepared_empty_database(studio):
    """The start script copies an empty database with Label Studio's migrations already applied (made once per
    installed version) into a new data dir, so Label Studio does not set its database up again; the data dir
    still gets its own secret key."""
    log = (studio["data"] / "label-studio.log").read_text(encoding="utf-8", errors="replace")
    assert "Database and media directory" in log and "Initializing database" not in log, log[-2000:]
    prepared = list((STUDIO_VENV / "govfacts-empty-db").glob("*/label_studio.sqlite3"))
    assert prepared and (studio["data"] / "label_studio.sqlite3").stat().st_size >= prepared[0].stat().st_size
    assert "SECRET_KEY" in (studio["data"] / ".env").read_text(encoding="utf-8")


# -- bad connections ------------------------------------------------------------------------------
def test_missing_unreachable_and_wrong_token_are_clear_errors(studio, work):
    before = _snapshot(work["ann"])
    out = run(["setup", "--title", TITLE], {"LABEL_STUDIO_URL": studio["url"], "LABEL_STUDIO_API_KEY": None}, 2)
    assert "LABEL_STUDIO_API_KEY" in out and "not set" in out
    dead = f"http://127.0.0.1:{_free_port()}"
    for args in (["setup", "--title", TITLE], ["pull", "--title", TITLE, "--annotations", str(work["ann"])]):
        out = run(args, {"LABEL_STUDIO_URL": dead, "LABEL_STUDIO_API_KEY": TOKEN}, 2)
        assert f"cannot reach Label Studio at {dead}" in out and len(out.strip().splitlines()) == 1
    out = run(["pull", "--title", TITLE, "--annotations", str(work["ann"])],
              {**studio["env"], "LABEL_STUDIO_API_KEY": "wrong-token-0000000000000000000000000000"}, 2)
    assert f"Label Studio at {studio['url']} rejected the API key (HTTP 401)" in out
    assert _snapshot(work["ann"]) == before  # nothing written by any failure
    # starting Label Studio again on the same data dir with another token is refused at once, with the way out
    again = subprocess.run(["bash", str(ROOT / "scripts" / "start-label-studio.sh")], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "LS_PORT": str(_free_port()),
                                            "LABEL_STUDIO_BASE_DATA_DIR": str(studio["data"]),
                                            "LABEL_STUDIO_USERNAME": USER, "LABEL_STUDIO_PASSWORD": PASSWORD,
                                            "LABEL_STUDIO_USER_TOKEN": "another-token-000000000000000000000000"})
    assert again.returncode == 2 and "set up for" in again.stderr and "LABEL_STUDIO_BASE_DATA_DIR" in again.stderr


# -- setup and push -------------------------------------------------------------------------------
def test_setup_is_idempotent_and_push_skips_duplicates_and_bad_files(studio, work):
    env = studio["env"]
    pid = run(["setup", "--title", TITLE], env).strip().splitlines()[-1]
    out = run(["setup", "--title", TITLE], env)
    assert out.strip().splitlines()[-1] == pid and "unchanged" in out
    ls = _client(studio)
    assert [p.title for p in ls.projects.list()].count(TITLE) == 1
    project = ls.projects.get(int(pid))
    assert project.sampling == "Uncertainty sampling"
    assert any((v.data or {}).get("ordering") == ["tasks:predictions_score"] for v in ls.views.list(project=int(pid)))

    out = run(["push", str(work["reports"]), "--model", "rules", "--title", TITLE,
               "--annotations", str(work["ann"])], env, 1)
    assert "broken-empty.txt: empty file" in out and "3 tasks pushed" in out
    out = run(["push", str(work["reports"] / f"{PUSHED[0]}.txt"), "--model", "rules", "--title", TITLE], env)
    assert "no new documents" in out and f"already in the project: {PUSHED[0]}" in out

    tasks = list(ls.tasks.list(project=int(pid), fields="all"))
    assert sorted(t.data["doc_id"] for t in tasks) == sorted(PUSHED + [NEW_DOC])
    for t in tasks:
        (pred,) = t.predictions
        assert pred.model_version == RULES_ID and pred.result
        scores = [r["score"] for r in pred.result]
        assert pred.score == min(scores) and all(0 < s <= 1 for s in scores)
        for r in pred.result:
            assert t.data["text"][r["value"]["start"]:r["value"]["end"]] == r["value"]["text"]
    # a corpus document carries its gold spans as an annotation (the model's spans are the prediction), so
    # the annotator corrects the gold and a pull can never drop a gold span the annotator did not delete
    for t in tasks:
        anns = [a if isinstance(a, dict) else a.dict() for a in (t.annotations or [])]
        if t.data["doc_id"] in PUSHED:
            gold = task_to_doc(read_tasks(work["ann"] / "tasks" / f"{t.data['doc_id']}.json")[0])
            (ann,) = anns
            assert sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in ann["result"]) \
                == [(x.start, x.end, x.label) for x in gold.spans]
        else:
            assert not anns
    # the test split is protected: pushing a test document needs --allow-test
    held = work["dir"] / "held-out"
    held.mkdir(exist_ok=True)
    shutil.copy(ROOT / "data" / "samples" / "hrss-zhengzhou-2017.txt", held)
    out = run(["push", str(held), "--model", "rules", "--title", TITLE, "--annotations", str(work["ann"])], env, 1)
    assert "in the test split" in out and "--allow-test" in out
    # the reviewed table regions / not-tagged numbers of corpus documents travel with the task
    stored = read_tasks(work["ann"] / "tasks" / f"{PUSHED[0]}.json")[0]["data"]
    pushed = next(t for t in tasks if t.data["doc_id"] == PUSHED[0]).data
    assert pushed["ignore"] == stored["ignore"] and pushed["not_tagged"] == stored["not_tagged"]
    # the "most uncertain first" tab shows doc_id, text and score: every other column Label Studio has is hidden
    req = urllib.request.Request(f"{studio['url']}/api/dm/columns?project={pid}", headers={"Authorization": f"Token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        columns = json.loads(r.read())["columns"]
    every = {"tasks:" + ("data." if c.get("parent") == "data" else "") + c["id"] for c in columns if c.get("parent") or
             c["id"] != "data"}
    (view,) = [v for v in ls.views.list(project=int(pid)) if (v.data or {}).get("title") == "Most uncertain first"]
    shown = every - set(view.data["hiddenColumns"]["explore"])
    assert shown == {"tasks:data.doc_id", "tasks:data.text", "tasks:predictions_score"}, shown
    studio.update(project=int(pid), tasks={t.data["doc_id"]: t.id for t in tasks})


# -- annotate in Label Studio, pull -----------------------------------------------------------------
def _free_number(text: str, taken: list[tuple[int, int]], unit: str = "[条次件个人期场篇]") -> tuple[int, int]:
    import re

    for m in re.finditer(r"\d+" + unit, text):
        if not any(min(m.end(), b) > max(m.start(), a) for a, b in taken):
            return m.start(), m.end()
    raise AssertionError("no free number in the text")


def _region(text, s, e, label, rid):
    return {"id": rid, "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": s, "end": e, "text": text[s:e], "labels": [label]}}


def test_annotations_made_in_studio_are_merged_into_the_corpus(studio, work):
    ls, env, pid = _client(studio), studio["env"], studio["project"]
    ann = work["ann"]
    before = _snapshot(ann)
    # 1. a corpus document: the annotator starts from the gold spans, relabels one and adds one
    gold = task_to_doc(read_tasks(ann / "tasks" / f"{PUSHED[0]}.json")[0])
    text = gold.text
    regions = [_region(text, s.start, s.end, s.label, f"g{i}") for i, s in enumerate(gold.spans)]
    relabel = regions[0]["value"]
    old_label = relabel["labels"][0]
    new_label = "MEDIA_COVERAGE" if old_label != "MEDIA_COVERAGE" else "POSTS_PUBLISHED"
    relabel["labels"] = [new_label]
    s, e = _free_number(text, [(x.start, x.end) for x in gold.spans] + [tuple(x) for x in gold.ignore])
    regions.append(_region(text, s, e, "POSTS_PUBLISHED", "added"))
    ls.annotations.create(id=studio["tasks"][PUSHED[0]], result=regions, project=pid)
    # 2. the new report: the annotator takes the model's predictions, changes one label, adds one span
    task = ls.tasks.get(str(studio["tasks"][NEW_DOC]))
    new_text = task.data["text"]
    pred = [dict(r, value=dict(r["value"])) for r in task.predictions[0].result]
    for r in pred:
        r.pop("score", None)
    pred[1]["value"]["labels"] = ["PUBLICITY_EVENTS"]
    s2, e2 = _free_number(new_text, [(r["value"]["start"], r["value"]["end"]) for r in pred])
    pred.append(_region(new_text, s2, e2, "WEBSITE_VISITS", "added"))
    ls.annotations.create(id=studio["tasks"][NEW_DOC], result=pred, project=pid)
    # (the third task stays unannotated: it is not exported and its corpus file is untouched)

    out = run(["pull", "--title", TITLE, "--annotations", str(ann)], env)
    assert "1 new, 1 updated, 1 unchanged documents; 2 files written" in out
    assert f"edited [{relabel['start']}:{relabel['end']}]" in out and f"{old_label} → " in out
    assert f"added to split 'train' of splits.yaml: {NEW_DOC}" in out
    after = _snapshot(ann)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == {f"tasks/{PUSHED[0]}.json", f"tasks/{NEW_DOC}.json", "splits.yaml"}
    rec = read_record(ann, "pull")
    assert rec["by"] == "govfacts studio pull" and rec["new"] == 1 and rec["updated"] == 1
    assert rec["per_label"][new_label]["edited"] == 1 and any("changes per label" in x for x in rec["lines"])
    # the corpus document: exactly the annotation; its reviewed data kept (minus the now-tagged number)
    merged = read_tasks(ann / "tasks" / f"{PUSHED[0]}.json")
    assert len(merged) == 1
    doc = task_to_doc(merged[0])
    assert [(x.start, x.end, x.label) for x in doc.spans] == sorted(
        (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regions)
    assert doc.ignore == gold.ignore and doc.meta.get("source") == gold.meta.get("source")
    assert [nt for nt in gold.not_tagged if not (nt["start"] < e and s < nt["end"])] == doc.not_tagged
    # the new document: its own file, in the train split, comments of splits.yaml kept
    new = task_to_doc(read_tasks(ann / "tasks" / f"{NEW_DOC}.json")[0])
    assert len(new.spans) == len(pred) and (s2, e2, "WEBSITE_VISITS") in [(x.start, x.end, x.label) for x in new.spans]
    splits_text = (ann / "splits.yaml").read_text(encoding="utf-8")
    assert NEW_DOC in yaml.safe_load(splits_text)["train"] and "# test is held out" in splits_text

    # the structured change report of the same pull, replayed on the untouched corpus
    from govfacts.studio.client import Studio
    from govfacts.studio.pull import pull

    fresh = work["dir"] / "fresh"
    shutil.copytree(ROOT / "annotations", fresh)
    fresh_before = _snapshot(fresh)
    res = pull(Studio(studio["url"], TOKEN), fresh, title=TITLE, dry_run=True)
    upd = next(c for c in res.changes if c.doc_id == PUSHED[0])
    assert [(o.label, n.label) for o, n in upd.edited] == [(old_label, new_label)]
    assert [(x.start, x.end, x.label) for x in upd.added] == [(s, e, "POSTS_PUBLISHED")] and upd.removed == []
    per = res.per_label()
    assert per[new_label]["edited"] == 1 and per["POSTS_PUBLISHED"]["added"] >= 1
    assert _snapshot(fresh) == fresh_before and not res.written  # a dry run writes nothing

    # pulling again changes nothing
    snap = _snapshot(ann)
    out = run(["pull", "--title", TITLE, "--annotations", str(ann)], env)
    assert "0 new, 0 updated, 3 unchanged documents; 0 files written" in out
    assert _snapshot(ann) == snap


def test_bad_exports(studio, work, tmp_path):
    from govfacts.studio.client import Studio

    ann = tmp_path / "annotations"
    shutil.copytree(ROOT / "annotations", ann)
    before = _snapshot(ann)
    bad = tmp_path / "export.json"
    bad.write_text('[{"id": 1, "data": {"text": "abc"}, "annotations": [{"result": [', encoding="utf-8")
    out = run(["pull", "--export", str(bad), "--annotations", str(ann)], {}, 2)
    assert "not valid JSON" in out and "nothing was written" in out
    bad.write_text('"not an export"', encoding="utf-8")
    assert "not a list of Label Studio tasks" in run(["pull", "--export", str(bad), "--annotations", str(ann)], {}, 2)
    # a JSON-MIN export (Label Studio's own) is named as such, with the way out
    ls = _client(studio)
    bad.write_bytes(b"".join(ls.projects.exports.download_sync(studio["project"], export_type="JSON_MIN")))
    out = run(["pull", "--export", str(bad), "--annotations", str(ann)], {}, 2)
    assert "JSON-MIN export" in out and "export the project as JSON" in out and "nothing was written" in out
    assert _snapshot(ann) == before
    # a real export plus an invalid task: the invalid one is named and skipped, the valid ones merged
    tasks = json.loads(Studio(studio["url"], TOKEN).export_raw(studio["project"]))
    broken = json.loads(json.dumps(tasks[0]))
    broken["id"], broken["data"]["doc_id"] = 999, "broken-doc"
    broken["annotations"][0]["result"][0]["value"]["labels"] = ["NOT_A_LABEL"]
    mixed = tmp_path / "mixed.json"
    mixed.write_text(json.dumps(tasks + [broken], ensure_ascii=False), encoding="utf-8")
    out = run(["pull", "--export", str(mixed), "--annotations", str(ann), "--split", "none"], {}, 1)
    assert "task 999" in out and "unknown label 'NOT_A_LABEL'" in out
    assert not (ann / "tasks" / "broken-doc.json").exists() and (ann / "tasks" / f"{NEW_DOC}.json").exists()
    assert (ann / "splits.yaml").read_bytes() == (ROOT / "annotations" / "splits.yaml").read_bytes()

    # the test split's gold changes only with --allow-test
    test_file = ann / "tasks" / "hrss-zhengzhou-2017.json"
    test_task = read_tasks(test_file)[0]
    changed = json.loads(json.dumps(test_task))
    changed["id"] = 1000
    changed["annotations"][0]["result"] = changed["annotations"][0]["result"][1:]  # one gold span deleted
    export = tmp_path / "test-doc.json"
    export.write_text(json.dumps([changed], ensure_ascii=False), encoding="utf-8")
    before = test_file.read_bytes()
    out = run(["pull", "--export", str(export), "--annotations", str(ann)], {}, 1)
    assert "in the test split: not merged" in out and test_file.read_bytes() == before
    original = split_hash(ROOT / "annotations")
    out = run(["pull", "--export", str(export), "--annotations", str(ann), "--allow-test"], {})
    assert "1 updated" in out and len(task_to_doc(read_tasks(test_file)[0]).spans) == len(task_to_doc(test_task).spans) - 1
    # the pull record and the retrain's comparison know the test split as it was before the pulls
    changed_hash = split_hash(ann)
    assert changed_hash != original and f"test split: changed (hash {original} → {changed_hash})" in out
    rec = read_record(ann, "pull")
    assert rec["test_split"] == {"before": original, "after": changed_hash} and rec["by"] == "govfacts studio pull"
    cmp = comparison_split(ann)
    assert cmp.hash == original and cmp.changed and "counts from the next retrain" in cmp.note()


# -- retrain --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A tiny BERT (hidden 32, 1 layer) with the project's character tokenizer, saved like a base model."""
    from transformers import BertConfig, BertForTokenClassification

    from govfacts.train.vocab import build_tokenizer

    out = tmp_path_factory.mktemp("tiny-base")
    texts = [(ROOT / "data" / "samples" / f"{d}.txt").read_text(encoding="utf-8") for d in PUSHED]
    tok = build_tokenizer(texts, out)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    BertForTokenClassification(cfg).save_pretrained(out)
    return out


def test_retrain_promotes_only_a_better_model_unless_forced(studio, work, tiny_base):
    env, ann = studio["env"], work["ann"]
    model_dir = work["dir"] / "models" / "govfacts-tagger-zh"
    common = ["--title", TITLE, "--annotations", str(ann), "--model-dir", str(model_dir),
              "--set", f"base_model={tiny_base}", *TINY]
    # the test split changed by a pull --allow-test since the last retrain: the models are still compared on
    # the test split as it was before, and the output says so
    before_hash = split_hash(ann)
    test_task = read_tasks(ann / "tasks" / "hrss-zhengzhou-2017.json")[0]
    test_task["id"], test_task["annotations"][0]["result"] = 1001, test_task["annotations"][0]["result"][1:]
    export = work["dir"] / "test-change.json"
    export.write_text(json.dumps([test_task], ensure_ascii=False), encoding="utf-8")
    run(["pull", "--export", str(export), "--annotations", str(ann), "--allow-test"], {})
    after_hash = split_hash(ann)
    out = run(["retrain", *common, "--candidate-dir", str(work["dir"] / "runs" / "a" / "candidate")], env)
    assert "0 new, 0 updated, 3 unchanged documents" in out  # it pulled first
    assert f"models compared on the test split as it was before the pulls since" in out
    assert f"hash {before_hash}" in out and f"now hash {after_hash}" in out
    assert "current rules@0.1.0+" in out and "fact F1" in out and "entity F1" in out
    assert "not promoted" in out and not model_dir.exists()
    assert (work["dir"] / "runs" / "a" / "candidate" / "config.json").exists()
    assert (work["dir"] / "runs" / "a" / "eval" / "report.json").exists()

    out = run(["retrain", *common, "--no-pull", "--force",
               "--candidate-dir", str(work["dir"] / "runs" / "b" / "candidate")], env)
    assert "promoted" in out and "forced" in out
    assert f"as it is (no pull since the last retrain)" in out and f"hash {after_hash}" in out
    out = run(["status", "--annotations", str(ann)], {})
    assert "last retrain:" in out and "promoted: forced" in out and f"hash {after_hash}" in out
    assert (model_dir / "config.json").exists() and (model_dir / "model.safetensors").exists()
    assert not list(model_dir.parent.glob(".govfacts-tagger-zh.*"))  # no temp dirs left behind
    from govfacts.infer.loader import load

    assert load(str(model_dir)).name == "govfacts-tagger-zh"


# -- ML backend ---------------------------------------------------------------------------------------
def _health_when(url: str, done, timeout: float = 150):
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = _get_json(url + "/health")
        if done(h):
            return h
        time.sleep(0.5)
    raise AssertionError(f"backend state not reached: {h}")


def test_label_studio_uses_the_ml_backend(studio, work, tiny_base):
    model_dir = work["dir"] / "models" / "govfacts-tagger-zh"
    assert (model_dir / "config.json").exists(), "needs the model promoted by the retrain test"
    runs = work["dir"] / "runs" / "backend"
    config = work["dir"] / "studio.yaml"
    config.write_text(yaml.safe_dump({"train_after_tasks": 1, "train_after_minutes": 0, "train_max_minutes": 3,
                                      "keep_candidates": 0, "runs_dir": str(runs)}), encoding="utf-8")
    port = _free_port()
    backend_url = f"http://127.0.0.1:{port}"
    log_file = work["dir"] / "backend.log"
    log = open(log_file, "w")
    proc = subprocess.Popen([sys.executable, "-m", "govfacts.cli", "studio", "serve", "--port", str(port),
                             "--model", str(model_dir), "--title", TITLE, "--annotations", str(work["ann"]),
                             "--studio-config", str(config), "--set", f"base_model={tiny_base}", *TINY],
                            env={**os.environ, **studio["env"]}, stdout=log, stderr=subprocess.STDOUT,
                            # Ctrl-C reaches it as in a terminal even when the suite runs as a background job
                            # (a non-interactive shell starts those with SIGINT ignored, and children inherit that)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for _ in range(120):
            try:
                health = _get_json(backend_url + "/health", 2)
                break
            except OSError:
                assert proc.poll() is None, log_file.read_text()
                time.sleep(0.5)
        assert health["status"] == "UP" and health["model_class"] == "Tagger"
        assert "after 1 submitted task" in health["policy"] and "budget 3 min" in health["policy"]
        version = health["model_version"]
        assert version.startswith("govfacts-tagger-zh@")

        out = run(["setup", "--title", TITLE, "--connect-backend", backend_url, "--studio-config", str(config)],
                  studio["env"])
        assert "connected" in out and "Start model training on annotation submission: on, every 1" in out
        ls, pid = _client(studio), studio["project"]
        (ml,) = ls.ml.list(project=pid)
        assert ml.url == backend_url and ml.state == "CO" and ml.model_version == version
        # Label Studio's training switch agrees with the backend
        assert ls.projects.get(pid).min_annotations_to_start_training == 1
        assert "already connected" in run(["setup", "--title", TITLE, "--connect-backend", backend_url,
                                           "--studio-config", str(config)], studio["env"])

        # Label Studio asks the backend for predictions of every task ("Retrieve predictions" action)
        ls.actions.create(id="retrieve_tasks_predictions", project=pid)
        tasks = list(ls.tasks.list(project=pid, fields="all"))
        for t in tasks:
            mine = [p for p in t.predictions if p.model_version == version]
            assert len(mine) == 1, [p.model_version for p in t.predictions]
            for r in mine[0].result:
                assert t.data["text"][r["value"]["start"]:r["value"]["end"]] == r["value"]["text"]
        assert _get_json(backend_url + "/health")["requests"]["predicted_tasks"] >= len(tasks)

        # a submitted annotation reaches the backend twice (webhook event, and Label Studio's own training
        # request since its switch is on): exactly one retrain, in a child process
        third = next(t for t in tasks if t.data["doc_id"] == PUSHED[1])
        result = [{k: v for k, v in r.items() if k != "score"} for r in third.predictions[0].result]
        gold = sorted((s.start, s.end, s.label) for s in task_to_doc(read_tasks(work["ann"] / "tasks" / f"{PUSHED[1]}.json")[0]).spans)
        if sorted((r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result) == gold:
            result = result[1:]  # the annotator corrects the model: the submission must differ from the stored gold
        ls.annotations.create(id=third.id, result=result, project=pid)
        h = _health_when(backend_url, lambda h: h["jobs"] and h["jobs"][-1]["status"] in ("done", "failed")
                         and not h["training"])
        assert h["requests"].get("event:ANNOTATION_CREATED", 0) >= 1
        job = h["jobs"][-1]
        assert job["status"] == "done", (job, log_file.read_text()[-3000:])
        assert len(h["jobs"]) == 1, h["jobs"]
        assert h["model_version"] == job["model_version"]
        res = h["last_result"]
        assert res["reason"] and res["current"]["fact_f1"] >= 0 and "fact_f1" in res["new"]
        assert "models compared on the test split" in res["test_split"]
        # the retrain pulled the new annotation into the corpus first, and logged it like `studio pull`
        pulled = task_to_doc(read_tasks(work["ann"] / "tasks" / f"{PUSHED[1]}.json")[0])
        assert [(x.start, x.end, x.label) for x in pulled.spans] == sorted(
            (r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in result)
        text = log_file.read_text()
        assert "automatic pull:" in text and "changes per label" in text and "0 new, 1 updated" in text
        assert "retraining done" in text and ("not promoted" in text or "promoted" in text)
        # every candidate is gone (keep_candidates: 0); its evaluation report stays
        assert not list(runs.glob("*/candidate")) and list(runs.glob("*/eval/report.html"))
        # `studio pull` and `studio status` show the automatic pull and the retrain
        out = run(["pull", "--title", TITLE, "--annotations", str(work["ann"])], studio["env"])
        assert "by ML backend" in out and f"updated: {PUSHED[1]}" in out and "0 new, 0 updated" in out
        out = run(["status", "--annotations", str(work["ann"])], {})
        assert f"serving {h['model_version']}" in out and f"job {job['job']}: done" in out and "last retrain:" in out

        # Ctrl-C while the backend retrains: the child is ended, its candidate removed, the server exits cleanly
        req = urllib.request.Request(backend_url + "/webhook", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"action": "START_TRAINING", "project": {"id": pid}}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 201
        _health_when(backend_url, lambda h: h["training"], 30)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        # the retrain child gets up to 30 s to end after SIGTERM, then SIGKILL
        try:
            assert proc.wait(60) == 0
        except subprocess.TimeoutExpired:
            raise AssertionError("the backend did not stop within 60 s of Ctrl-C:\n" + log_file.read_text()[-4000:])
        text = log_file.read_text()
        assert "stopped; retrain job" in text and "was interrupted" in text, text[-2000:]
        assert "terminate called" not in text and "Traceback" not in text
        assert not list(runs.glob("*/candidate"))
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
