"""govfacts as a Label Studio ML backend: a small standard-library HTTP server.

Protocol (what Label Studio 1.x sends, label_studio/ml/api_connector.py):

    GET  /health            → {"status": "UP", "model_class": ..., "model_version": ...}
    POST /setup             {"project", "schema", "hostname", "access_token", ...} → {"model_version": ...}
    POST /predict           {"tasks": [...], "label_config", "project", "params"}
                            → {"results": [{"result": [regions], "score", "model_version"}, ...], "model_version"}
                              one result per task, in order; one region per span (adjacent spans of one
                              label stay separate regions); region `score` = span confidence; task
                              `score` = lowest span confidence (0.0 without spans), as `govfacts studio push`.
    POST /webhook           {"action": ..., "project": {...}, ...} — ANNOTATION_CREATED / ANNOTATION_UPDATED
                            (every --train-every events) and START_TRAINING start a retrain in a background
                            thread → 201 {"job": id}; other actions → 200 {"status": "ignored"}.
    POST /train             Label Studio's older training call: same as START_TRAINING.
    POST /job_status        {"job": id} → that training job's status.
    GET  /versions          → {"versions": [model_version]}

A retrain pulls the project's annotations, fine-tunes a candidate and promotes it only if it beats the
current model on the test split (govfacts.studio.retrain). When a model was promoted, the backend loads
it and its model_version changes (name@weights-hash), so Label Studio asks for fresh predictions.
The model is loaded at start; a model that fails to load is an error, never silently replaced.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import traceback
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

from govfacts.infer.loader import SpanExtractor, extractor_id, load
from govfacts.paths import ANNOTATIONS, DEFAULT_TAGGER, resolve_model
from govfacts.studio.client import DEFAULT_TITLE, Studio
from govfacts.studio.pull import pull
from govfacts.studio.retrain import retrain
from govfacts.studio.tasks import prediction_result, task_score

TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "START_TRAINING")
MAX_BODY = 200 * 1024 * 1024

Retrainer = Callable[[dict], Optional[SpanExtractor]]


class BadRequest(Exception):
    pass


def config_names(label_config: Optional[str]) -> tuple[str, str, str]:
    """(from_name, to_name, data key) of the first <Labels> and the <Text> it points to."""
    default = ("label", "text", "text")
    if not label_config:
        return default
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError:
        return default
    labels = next(root.iter("Labels"), None)
    if labels is None or not labels.get("name") or not labels.get("toName"):
        return default
    to_name = labels.get("toName")
    text = next((t for t in root.iter("Text") if t.get("name") == to_name), None)
    value = (text.get("value") if text is not None else None) or "$text"
    return labels.get("name"), to_name, value.lstrip("$")


class Backend:
    """The model behind the HTTP endpoints: predictions, model version and background retraining."""

    def __init__(self, model: Optional[str] = None, extractor: Optional[SpanExtractor] = None,
                 retrainer: Optional[Retrainer] = None, train_every: int = 1,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)):
        # No fallback: a model that cannot be loaded raises here (OSError / ValueError) for the caller.
        self.extractor = extractor if extractor is not None else load(model)
        self.retrainer = retrainer
        self.train_every = max(0, int(train_every))
        self.log = log
        self._model_lock = threading.Lock()   # one prediction or model swap at a time
        self._state_lock = threading.Lock()
        self._worker: Optional[threading.Thread] = None
        self._pending: Optional[tuple[str, dict]] = None
        self.jobs: dict[str, dict] = {}
        self.events_since_train = 0
        self.counts: Counter = Counter()

    # -- model ------------------------------------------------------------------------------------
    @property
    def model_version(self) -> str:
        return extractor_id(self.extractor)

    def health(self) -> dict:
        with self._state_lock:
            training = self._worker is not None and self._worker.is_alive()
            last = list(self.jobs.values())[-5:]
        return {"status": "UP", "model_class": type(self.extractor).__name__, "model_version": self.model_version,
                "training": training, "jobs": last, "requests": dict(self.counts)}

    def setup(self, body: dict) -> dict:
        return {"model_version": self.model_version}

    def predict(self, body: dict) -> dict:
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise BadRequest("expected {\"tasks\": [...]}")
        from_name, to_name, key = config_names(body.get("label_config"))
        texts = []
        for i, t in enumerate(tasks):
            data = t.get("data") if isinstance(t, dict) else None
            if not isinstance(data, dict) or not isinstance(data.get(key), str):
                raise BadRequest(f"task {t.get('id', i) if isinstance(t, dict) else i} has no text in data.{key}")
            texts.append(data[key])
        with self._model_lock:
            ex, mv = self.extractor, self.model_version
            per_task = ex.spans_many(texts) if texts else []
        results = []
        for t, text, spans in zip(tasks, texts, per_task):
            prefix = f"t{t.get('id', 'x')}"
            results.append({"result": prediction_result(text, spans, prefix, from_name, to_name),
                            "score": task_score(spans), "model_version": mv})
        self.counts["predicted_tasks"] += len(tasks)
        return {"results": results, "model_version": mv}

    # -- training ---------------------------------------------------------------------------------
    def webhook(self, body: dict) -> tuple[int, dict]:
        action = body.get("action")
        if not isinstance(action, str):
            raise BadRequest("webhook payload without an 'action'")
        self.counts[f"event:{action}"] += 1
        if action not in TRAIN_EVENTS:
            return 200, {"status": f"ignored event {action}"}
        if self.retrainer is None:
            return 200, {"status": "training is disabled in this backend"}
        if action != "START_TRAINING":
            with self._state_lock:
                self.events_since_train += 1
                due = self.train_every and self.events_since_train >= self.train_every
                if not due:
                    left = (self.train_every - self.events_since_train) if self.train_every else None
                    return 200, {"status": "annotation noted" + (f"; retraining after {left} more" if left else "")}
                self.events_since_train = 0
        job, state = self.start_training(body)
        return 201, {"status": f"training {state}", "job": job}

    def start_training(self, event: dict) -> tuple[str, str]:
        """Run a retrain in the background; while one runs, later requests coalesce into one queued run."""
        with self._state_lock:
            if self._worker is not None and self._worker.is_alive():
                if self._pending is None:
                    job = uuid.uuid4().hex[:12]
                    self.jobs[job] = {"job": job, "status": "queued", "action": event.get("action")}
                    self._pending = (job, event)
                return self._pending[0], "queued"
            job = uuid.uuid4().hex[:12]
            self.jobs[job] = {"job": job, "status": "queued", "action": event.get("action")}
            self._worker = threading.Thread(target=self._train_loop, args=(job, event), name="govfacts-retrain",
                                            daemon=True)
            self._worker.start()
            return job, "started"

    def _train_loop(self, job: str, event: dict) -> None:
        while True:
            self._train_once(job, event)
            with self._state_lock:
                if self._pending is None:
                    return
                job, event = self._pending
                self._pending = None

    def _train_once(self, job: str, event: dict) -> None:
        rec = self.jobs[job]
        rec.update(status="running", started=time.strftime("%H:%M:%S"), model_version_before=self.model_version)
        self.log(f"retraining (job {job}, {event.get('action')})")
        try:
            new = self.retrainer(event)
        except Exception as e:  # noqa: BLE001 - a failed run is reported in /health and /job_status, the server goes on
            rec.update(status="failed", error=f"{type(e).__name__}: {e}")
            self.log(f"retraining failed (job {job}): {type(e).__name__}: {e}\n{traceback.format_exc()}")
            return
        if new is not None:
            with self._model_lock:
                self.extractor = new
        rec.update(status="done", promoted=new is not None, model_version=self.model_version,
                   finished=time.strftime("%H:%M:%S"))
        self.log(f"retraining done (job {job}): serving {self.model_version}")

    def wait_idle(self, timeout: float = 600.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._state_lock:
                w = self._worker
            if w is None or not w.is_alive():
                return True
            w.join(0.2)
        return False


def make_retrainer(model: Optional[str] = None, model_dir: Optional[Path] = None,
                   annotations_dir: Optional[Path] = None, config: Optional[Path] = None,
                   overrides: Optional[dict] = None, title: Optional[str] = None,
                   runs_dir: Optional[Path] = None) -> Retrainer:
    """Pull from Label Studio (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY), retrain, promote if better;
    returns the promoted model (loaded) or None."""
    local = Path(resolve_model(model)) if model else None
    target = Path(model_dir) if model_dir else (local if local and (local / "config.json").exists() else DEFAULT_TAGGER)
    ann = Path(annotations_dir or ANNOTATIONS)

    def run(event: dict) -> Optional[SpanExtractor]:
        project = event.get("project") if isinstance(event.get("project"), dict) else {}
        studio = Studio.from_env()
        pull(studio, ann, title=project.get("title") or title or DEFAULT_TITLE)
        res = retrain(ann, target, config=config, overrides=overrides, runs_dir=runs_dir)
        return load(str(target)) if res.promoted else None

    return run


# -- HTTP -------------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    server_version = "govfacts-ml-backend"
    protocol_version = "HTTP/1.1"

    @property
    def backend(self) -> Backend:
        return self.server.backend  # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # route access logs through the backend's logger
        if getattr(self.server, "access_log", False):
            self.backend.log(f"{self.address_string()} {fmt % args}")

    def _send(self, code: int, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise BadRequest(f"request body too large ({n} bytes)")
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BadRequest(f"request body is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise BadRequest("request body must be a JSON object")
        return data

    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        self.backend.counts[f"GET {path}"] += 1
        if path in ("/", "/health"):
            self._send(200, self.backend.health())
        elif path == "/versions":
            self._send(200, {"versions": [self.backend.model_version], "model_version": self.backend.model_version})
        elif path == "/metrics":
            self._send(200, {})
        else:
            self._send(404, {"error": f"no such endpoint: GET {path}"})

    def do_POST(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        self.backend.counts[f"POST {path}"] += 1
        b = self.backend
        try:
            body = self._body()
            if path == "/predict":
                self._send(200, b.predict(body))
            elif path == "/setup":
                self._send(200, b.setup(body))
            elif path == "/webhook":
                self._send(*b.webhook(body))
            elif path == "/train":
                if b.retrainer is None:
                    self._send(200, {"status": "training is disabled in this backend"})
                else:
                    job, state = b.start_training({"action": "START_TRAINING", **{k: v for k, v in body.items()
                                                                                 if k != "annotations"}})
                    self._send(201, {"job": job, "status": f"training {state}"})
            elif path == "/job_status":
                job = b.jobs.get(str(body.get("job")))
                self._send(200 if job else 404, job or {"error": f"unknown job {body.get('job')!r}"})
            else:
                self._send(404, {"error": f"no such endpoint: POST {path}"})
        except BadRequest as e:
            self._send(400, {"error": str(e)})
        except Exception as e:  # noqa: BLE001 - answer 500 with the cause instead of dropping the connection
            b.log(f"error in POST {path}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            self._send(500, {"error": f"{type(e).__name__}: {e}"})


def make_server(backend: Backend, host: str = "127.0.0.1", port: int = 9090, access_log: bool = False):
    """A threading HTTP server for `backend` (port 0 = any free port: see server.server_address)."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.backend = backend  # type: ignore[attr-defined]
    server.access_log = access_log  # type: ignore[attr-defined]
    return server


def serve_forever(backend: Backend, host: str = "127.0.0.1", port: int = 9090,
                  log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> None:
    server = make_server(backend, host, port, access_log=True)
    backend.log = log
    h, p = server.server_address[:2]
    log(f"govfacts ML backend serving {backend.model_version} on http://{h}:{p} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
