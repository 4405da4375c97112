"""The ML backend's Label Studio protocol, answered over real HTTP (rules extractor, stub retrainer), and its
retraining policy: after N submissions or M minutes, one run at a time, stoppable."""
from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from typer.testing import CliRunner

from govfacts.infer.loader import load as load_extractor
from govfacts.studio.backend import Backend, config_names, make_server
from govfacts.studio.settings import StudioSettings, load_studio_settings
from govfacts.studio.trainer import Outcome, RetrainInterrupted
from govfacts.labels import default_labels
from govfacts.records import Span
from tests.conftest import sample_text

from govfacts.infer.rules import RuleExtractor

RULES_ID = f"rules@{RuleExtractor().version}"


class Stub:
    """An extractor with fixed spans: two ADJACENT spans of one label, then another label."""

    name, version = "stub", "1"

    def spans(self, raw):
        return [Span(0, 3, "FEES", raw[0:3], 0.9), Span(3, 6, "FEES", raw[3:6], 0.6), Span(7, 9, "STAFF", raw[7:9], 0.8)]

    def spans_many(self, texts):
        return [self.spans(t) for t in texts]


class Trained(Stub):
    version = "2"


def _serve(backend):
    server = make_server(backend, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _call(url, path, body=None, raw: bytes | None = None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url + path, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def rules_backend():
    backend = Backend("rules", log=lambda s: None)
    server, url = _serve(backend)
    yield backend, url, server
    server.shutdown()
    server.server_close()


def test_health_setup_and_loopback_default(rules_backend):
    backend, url, server = rules_backend
    assert server.server_address[0] == "127.0.0.1"
    code, h = _call(url, "/health")
    assert code == 200 and h["status"] == "UP" and h["model_class"] == "RuleExtractor"
    assert h["model_version"] == RULES_ID
    code, s = _call(url, "/setup", {"project": "1.1700000000", "schema": default_labels().studio_config(),
                                     "hostname": "http://localhost:8080", "access_token": "x", "extra_params": None})
    assert code == 200 and s == {"model_version": RULES_ID}
    assert _call(url, "/versions")[1]["versions"] == [RULES_ID]


def test_predict_matches_label_studio_protocol(rules_backend):
    _, url, _ = rules_backend
    texts = [sample_text("gov-pingtan-2011"), "本年度未收到申请。", sample_text("hrss-jilin-province-2014")]
    tasks = [{"id": 10 + i, "data": {"text": t, "doc_id": f"d{i}"}} for i, t in enumerate(texts)]
    code, out = _call(url, "/predict", {"tasks": tasks, "label_config": default_labels().studio_config(),
                                        "project": "1.1700000000", "params": {"context": None}})
    assert code == 200
    assert out["model_version"] == RULES_ID and len(out["results"]) == 3
    names = set(default_labels().names)
    rules = load_extractor("rules")
    for text, res in zip(texts, out["results"]):
        assert res["model_version"] == RULES_ID
        regions = res["result"]
        assert len(regions) == len(rules.spans(text))
        assert len({r["id"] for r in regions}) == len(regions)
        for r in regions:
            v = r["value"]
            assert (r["from_name"], r["to_name"], r["type"]) == ("label", "text", "labels")
            assert v["text"] == text[v["start"]:v["end"]] and v["labels"][0] in names and 0 < r["score"] <= 1
        # task score = the lowest span confidence, 0.0 when nothing was found (most uncertain first)
        assert res["score"] == (min(r["score"] for r in regions) if regions else 0.0)
    assert out["results"][0]["result"] and out["results"][1]["result"] == [] and out["results"][1]["score"] == 0.0


def test_predict_follows_the_label_config_names(rules_backend):
    _, url, _ = rules_backend
    cfg = ('<View><Labels name="tag" toName="doc"><Label value="FEES"/></Labels>'
           '<Text name="doc" value="$body"/></View>')
    assert config_names(cfg) == ("tag", "doc", "body")
    code, out = _call(url, "/predict", {"tasks": [{"id": 1, "data": {"body": sample_text("gov-pingtan-2011")}}],
                                        "label_config": cfg})
    assert code == 200 and {(r["from_name"], r["to_name"]) for r in out["results"][0]["result"]} == {("tag", "doc")}


def test_bad_requests_are_400_or_404(rules_backend):
    _, url, _ = rules_backend
    assert _call(url, "/predict", raw=b"{not json")[0] == 400
    code, out = _call(url, "/predict", {"nothing": 1})
    assert code == 400 and "tasks" in out["error"]
    code, out = _call(url, "/predict", {"tasks": [{"id": 7, "data": {"image": "x.png"}}]})
    assert code == 400 and "task 7" in out["error"]
    assert _call(url, "/nowhere", {})[0] == 404
    assert _call(url, "/webhook", {"project": {}})[0] == 400
    # no retrainer: training events are acknowledged, nothing runs
    code, out = _call(url, "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
    assert code == 200 and "disabled" in out["status"]


def test_adjacent_same_label_spans_stay_separate_regions():
    backend = Backend(extractor=Stub(), log=lambda s: None)
    out = backend.predict({"tasks": [{"id": 1, "data": {"text": "十二元五六元 三人"}}]})
    regions = out["results"][0]["result"]
    assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in regions] == [
        (0, 3, "FEES"), (3, 6, "FEES"), (7, 9, "STAFF")]
    assert out["results"][0]["score"] == 0.6


SCORES = {"reason": "better on the test split", "current": {"fact_f1": 0.5, "entity_f1": 0.4},
          "new": {"fact_f1": 0.6, "entity_f1": 0.45}, "test_split": "models compared on the test split …"}


def policy(tasks=2, minutes=0.0):
    return StudioSettings(train_after_tasks=tasks, train_after_minutes=minutes, train_max_minutes=3,
                          keep_candidates=0, runs_dir="runs/studio-retrain")


def test_settings_file_declares_the_policy():
    s = load_studio_settings()
    assert s.train_after_tasks > 1 and s.train_after_minutes > 0 and s.train_max_minutes > 0
    assert "submitted tasks" in s.policy_text() and "budget" in s.policy_text()


def test_webhook_trains_after_n_submissions_in_the_background(tmp_path):
    started, release = threading.Event(), threading.Event()
    calls = []

    def retrainer(event, stop):
        calls.append(event["action"])
        started.set()
        assert release.wait(10)
        return Outcome(Trained(), SCORES)

    backend = Backend(extractor=Stub(), retrainer=retrainer, settings=policy(tasks=2), log=lambda s: None,
                      annotations_dir=tmp_path)
    server, url = _serve(backend)
    try:
        assert _call(url, "/setup", {})[1]["model_version"] == "stub@1"
        code, out = _call(url, "/webhook", {"action": "PROJECT_UPDATED", "project": {"id": 1}})
        assert code == 200 and "ignored" in out["status"]
        code, out = _call(url, "/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 1}})
        assert code == 200 and not calls and "1 more" in out["status"]  # 1 of 2 submissions
        h = _call(url, "/health")[1]
        assert h["pending"] == 1 and "after 1 more submitted tasks" in h["next_retrain"] and "budget 3" in h["policy"]
        code, out = _call(url, "/webhook", {"action": "ANNOTATION_UPDATED", "project": {"id": 1}})
        assert code == 201 and out["status"] == "training started"
        job = out["job"]
        assert started.wait(10)
        h = _call(url, "/health")[1]
        assert h["training"] is True and h["jobs"][-1]["budget_minutes"] == 3 and h["jobs"][-1]["deadline"]
        # Label Studio's own training request joins the run that covers every submission
        code, joined = _call(url, "/webhook", {"action": "START_TRAINING", "project": {"id": 1}})
        assert code == 201 and joined["job"] == job
        # a submission saved before the run started was pulled by it: not counted again
        early = {"action": "ANNOTATION_CREATED", "annotation": {"id": 5, "updated_at": "2001-01-01T00:00:00Z"}}
        assert "already in the running retrain" in _call(url, "/webhook", early)[1]["status"]
        # two new submissions during the run: one more run is queued, later requests join it
        _call(url, "/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 1}})
        code, q1 = _call(url, "/webhook", {"action": "ANNOTATION_CREATED", "project": {"id": 1}})
        code2, q2 = _call(url, "/train", {"annotations": [], "project": "1.1"})
        assert (code, code2) == (201, 201) and q1["status"] == "training queued" and q1["job"] == q2["job"] != job
        assert _call(url, "/predict", {"tasks": [{"id": 1, "data": {"text": "十二元五六元 三人"}}]})[0] == 200
        release.set()
        assert backend.wait_idle(20)
        assert calls == ["ANNOTATION_UPDATED", "ANNOTATION_CREATED"]
        code, st = _call(url, "/job_status", {"job": job})
        assert code == 200 and st["status"] == "done" and st["promoted"] and st["model_version"] == "stub@2"
        assert st["reason"] == "better on the test split" and st["new"]["fact_f1"] == 0.6
        assert _call(url, "/setup", {})[1] == {"model_version": "stub@2"}
        h = _call(url, "/health")[1]
        assert h["model_version"] == "stub@2" and h["last_result"]["promoted"] and h["last_result"]["current"]
        assert _call(url, "/job_status", {"job": "nope"})[0] == 404
    finally:
        release.set()
        server.shutdown()
        server.server_close()
    # the backend's record is what `govfacts studio status` shows
    from govfacts.cli import app

    res = CliRunner().invoke(app, ["studio", "status", "--annotations", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "serving stub@2" in res.output and "promoted: better on the test split" in res.output
    assert "last pull: none recorded" in res.output


def test_a_waiting_submission_is_trained_after_m_minutes():
    ran = threading.Event()
    whys = []

    def retrainer(event, stop):
        whys.append(event["why"])
        ran.set()
        return Outcome(None, {"reason": "not better on the test split: the current model stays"})

    backend = Backend(extractor=Stub(), retrainer=retrainer, settings=policy(tasks=5, minutes=0.005),
                      log=lambda s: None, tick=0.05)
    code, out = backend.webhook({"action": "ANNOTATION_CREATED"})
    assert code == 200 and "4 more" in out["status"]
    assert ran.wait(10) and backend.wait_idle(10)
    assert whys == ["a submission waited 0.005 min"]
    job = backend.health()["last_result"]
    assert job["status"] == "done" and not job["promoted"] and "current model stays" in job["reason"]
    backend.stop()


def test_stopping_the_backend_interrupts_a_retrain():
    started = threading.Event()

    def retrainer(event, stop):
        started.set()
        assert stop.wait(10)
        raise RetrainInterrupted("the backend was stopped")

    backend = Backend(extractor=Stub(), retrainer=retrainer, settings=policy(), log=lambda s: None)
    code, out = backend.webhook({"action": "START_TRAINING"})
    assert code == 201 and started.wait(10)
    assert backend.stop() == out["job"]
    assert backend.jobs[out["job"]]["status"] == "interrupted" and backend.model_version == "stub@1"


def test_failed_training_is_reported_and_the_model_stays():
    def retrainer(event, stop):
        raise RuntimeError("no annotations yet")

    backend = Backend(extractor=Stub(), retrainer=retrainer, settings=policy(), log=lambda s: None)
    code, out = backend.webhook({"action": "START_TRAINING"})
    assert code == 201
    assert backend.wait_idle(10)
    job = backend.jobs[out["job"]]
    assert job["status"] == "failed" and "no annotations yet" in job["error"]
    assert backend.model_version == "stub@1"


def test_serve_refuses_a_model_that_does_not_load(tmp_path):
    from govfacts.cli import app

    res = CliRunner().invoke(app, ["studio", "serve", "--model", str(tmp_path / "missing-model"), "--port", "0"])
    assert res.exit_code == 2
    assert "cannot load model" in res.output


def test_backend_without_a_loadable_model_raises(tmp_path):
    with pytest.raises((OSError, ValueError)):
        Backend(str(tmp_path / "missing-model"))
