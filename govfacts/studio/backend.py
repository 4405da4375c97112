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
                            are counted and start a retrain by the policy of configs/studio.yaml (govfacts.
                            studio.trainer); START_TRAINING starts one → 201 {"job": id}; other actions → 200.
    POST /train             Label Studio's older training call: same as START_TRAINING.
    POST /job_status        {"job": id} → that training job's status.
    GET  /versions          → {"versions": [model_version]}
    GET  /health also shows the retraining policy, the submissions waiting, when the next retrain comes,
                            the running job with its time budget and the last result (scores, promoted, why).

A retrain pulls the project's annotations (logged like `studio pull`), fine-tunes a candidate in a child
process and promotes it only if it beats the current model on the test split (govfacts.studio.autorun).
When a model was promoted, the backend loads it and its model_version changes (name@weights-hash), so
Label Studio asks for fresh predictions. The model is loaded at start; a model that fails to load is an
error, never silently replaced. Its state is written to annotations/.studio-backend.json for
`govfacts studio status`.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
import xml.etree.ElementTree as ET
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

from govfacts.infer.loader import SpanExtractor, extractor_id, load
from govfacts.studio.records import BACKEND, now, write_record
from govfacts.studio.settings import StudioSettings, load_studio_settings
from govfacts.studio.tasks import prediction_result, task_score
from govfacts.studio.trainer import SUBMISSIONS, Retrainer, Trainer

TRAIN_EVENTS = (*SUBMISSIONS, "START_TRAINING")
MAX_BODY = 200 * 1024 * 1024


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
                 retrainer: Optional[Retrainer] = None, settings: Optional[StudioSettings] = None,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 annotations_dir: Optional[Path] = None, tick: float = 5.0):
        # No fallback: a model that cannot be loaded raises here (OSError / ValueError) for the caller.
        self.extractor = extractor if extractor is not None else load(model)
        self.settings = settings or load_studio_settings()
        self.log = log
        self.annotations_dir = annotations_dir  # where the backend record goes (None: no record)
        self._model_lock = threading.Lock()   # one prediction or model swap at a time
        self.counts: Counter = Counter()
        self.trainer = None if retrainer is None else Trainer(
            retrainer, self.settings, self._swap, lambda: self.model_version, lambda s: self.log(s),
            on_change=self.write_record, tick=tick)

    # -- model ------------------------------------------------------------------------------------
    @property
    def model_version(self) -> str:
        return extractor_id(self.extractor)

    def _swap(self, extractor: SpanExtractor) -> None:
        with self._model_lock:
            self.extractor = extractor

    @property
    def jobs(self) -> dict[str, dict]:
        return self.trainer.jobs if self.trainer else {}

    def health(self) -> dict:
        train = self.trainer.state() if self.trainer else {"training": False, "jobs": [],
                                                           "policy": "training is disabled in this backend"}
        return {"status": "UP", "model_class": type(self.extractor).__name__, "model_version": self.model_version,
                **train, "requests": dict(self.counts)}

    def write_record(self) -> None:
        """The backend's state for `govfacts studio status` (another process)."""
        if self.annotations_dir is not None:
            h = self.health()
            write_record(self.annotations_dir, BACKEND, {"time": now(), "pid": os.getpid(),
                                                         **{k: v for k, v in h.items() if k != "requests"}})

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
        if self.trainer is None:
            return 200, {"status": "training is disabled in this backend"}
        if action in SUBMISSIONS:
            return self.trainer.submission(body)
        job, state = self.start_training(body)
        return 201, {"status": f"training {state}", "job": job}

    def start_training(self, event: dict) -> tuple[str, str]:
        return self.trainer.start({**event, "why": event.get("why") or event.get("action")})

    def wait_idle(self, timeout: float = 600.0) -> bool:
        return self.trainer.wait_idle(timeout) if self.trainer else True

    def stop(self) -> Optional[str]:
        """Stop retraining (the running child is ended and its candidate removed); the interrupted job."""
        job = self.trainer.stop() if self.trainer else None
        self.write_record()
        return job


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
                if b.trainer is None:
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
    """Serve until Ctrl-C (or SIGTERM); then a running retrain is ended cleanly before the server exits."""
    server = make_server(backend, host, port, access_log=True)
    backend.log = log
    h, p = server.server_address[:2]
    log(f"govfacts ML backend serving {backend.model_version} on http://{h}:{p} (Ctrl-C to stop)")
    log(backend.health()["policy"])
    backend.write_record()

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        job = backend.trainer is not None and backend.trainer.training
        log("stopping: ending the running retrain …" if job else "stopping")
        interrupted = backend.stop()
        log(f"stopped; retrain job {interrupted} was interrupted, its candidate removed; the model is unchanged "
            f"({backend.model_version})" if interrupted else f"stopped (serving {backend.model_version} until now)")
    finally:
        server.server_close()
