"""When the ML backend retrains: after N submitted tasks or once a submission has waited M minutes
(configs/studio.yaml), one run at a time in a background thread that can be stopped.

A retrain takes minutes of CPU, so Label Studio's events are counted instead of each starting a run.
Label Studio may also ask for training itself (its "Start model training on annotation submission"
switch, or Start Training): such a request joins a run that already covers every submission, and a
submission saved before the running retrain started (it pulled it) is not counted again.
"""
from __future__ import annotations

import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from govfacts.infer.loader import SpanExtractor
from govfacts.studio.settings import StudioSettings

SUBMISSIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


class RetrainInterrupted(Exception):
    """The backend was stopped while a retrain ran; the run's candidate is gone, the model unchanged."""


@dataclass
class Outcome:
    extractor: Optional[SpanExtractor]  # the promoted model, loaded; None when the current one stays
    summary: dict  # the retrain record: scores, promoted, reason, test split


# (event, stop) → outcome; it must return soon after `stop` is set (raising RetrainInterrupted)
Retrainer = Callable[[dict, threading.Event], Outcome]


def event_time(body: dict) -> Optional[datetime]:
    """When the annotation of a webhook event was saved (Label Studio sends it with the event)."""
    ann = body.get("annotation") if isinstance(body.get("annotation"), dict) else {}
    raw = ann.get("updated_at") or ann.get("created_at")
    if not isinstance(raw, str):
        return None
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def scores_text(summary: dict) -> str:
    cur, new = summary.get("current") or {}, summary.get("new") or {}
    if not cur or not new:
        return ""
    return (f"fact F1 {cur['fact_f1']:.3f} → {new['fact_f1']:.3f}, entity F1 {cur['entity_f1']:.3f} → "
            f"{new['entity_f1']:.3f} (current → candidate)")


class Trainer:
    """Counts submissions, starts retrains by the policy, runs them one at a time and keeps their outcome."""

    def __init__(self, retrainer: Retrainer, settings: StudioSettings, on_model: Callable[[SpanExtractor], None],
                 version: Callable[[], str], log: Callable[[str], None], on_change: Callable[[], None] = lambda: None,
                 tick: float = 5.0):
        self.retrainer, self.settings, self.on_model, self.version = retrainer, settings, on_model, version
        self.log, self.on_change, self.tick = log, on_change, tick
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.jobs: dict[str, dict] = {}
        self.pending = 0  # submissions not yet trained on
        self.first_pending: Optional[float] = None  # monotonic time of the oldest of them
        self.run_started: Optional[datetime] = None  # when the running (or last) retrain began (it pulls then)
        self._worker: Optional[threading.Thread] = None
        self._queued: Optional[tuple[str, dict]] = None
        self._ticker: Optional[threading.Thread] = None
        if settings.train_after_minutes > 0:
            self._ticker = threading.Thread(target=self._tick, name="govfacts-retrain-timer", daemon=True)
            self._ticker.start()

    # -- policy -----------------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def submission(self, body: dict) -> tuple[int, dict]:
        """A submitted or updated annotation: counted; a retrain starts once the policy says so."""
        with self.lock:
            saved = event_time(body)
            if saved is not None and self.run_started is not None and saved <= self.run_started:
                return 200, {"status": "annotation already in the running retrain"}
            self.pending += 1
            if self.first_pending is None:
                self.first_pending = time.monotonic()
            n, waiting = self.settings.train_after_tasks, self.pending
        if not (n and waiting >= n):
            self.on_change()
            left = f"; retraining after {n - waiting} more" if n else ""
            return 200, {"status": f"annotation noted ({waiting} waiting){left}"}
        job, state = self.start({"action": body.get("action"), "why": f"after {waiting} submitted tasks"})
        return 201, {"status": f"training {state}", "job": job}

    def _tick(self) -> None:
        while not self.stop_event.wait(self.tick):
            with self.lock:
                due = (self.first_pending is not None and not self.training
                       and time.monotonic() - self.first_pending >= 60 * self.settings.train_after_minutes)
            if due:
                self.start({"action": "TIMER", "why": f"a submission waited {self.settings.train_after_minutes:g} min"})

    def next_retrain(self) -> str:
        s = self.settings
        if self.training:
            return "training now"
        parts = []
        if s.train_after_tasks:
            parts.append(f"after {max(0, s.train_after_tasks - self.pending)} more submitted tasks")
        if s.train_after_minutes and self.first_pending is not None:
            at = time.time() + 60 * s.train_after_minutes - (time.monotonic() - self.first_pending)
            parts.append(f"at {time.strftime('%H:%M', time.localtime(at))}")
        return " or ".join(parts) or "on Start Training only"

    # -- runs -------------------------------------------------------------------------------------
    def start(self, event: dict) -> tuple[str, str]:
        """Start a retrain in the background. While one runs, a request joins it when no submission came
        after it started, else one more run is queued (later requests join that one)."""
        with self.lock:
            if self.training:
                running = next(j for j, r in reversed(self.jobs.items()) if r["status"] == "running")
                if self._queued is None and self.pending == 0:
                    return running, "running (it covers every submission)"
                if self._queued is None:
                    job = uuid.uuid4().hex[:12]
                    self.jobs[job] = {"job": job, "status": "queued", "action": event.get("action")}
                    self._queued = (job, event)
                return self._queued[0], "queued"
            job = uuid.uuid4().hex[:12]
            self.jobs[job] = {"job": job, "status": "queued", "action": event.get("action")}
            self._begin()
            self._worker = threading.Thread(target=self._loop, args=(job, event), name="govfacts-retrain")
            self._worker.start()
        self.on_change()
        return job, "started"

    def _loop(self, job: str, event: dict) -> None:
        while not self.stop_event.is_set():
            self._run(job, event)
            with self.lock:
                if self._queued is None:
                    break
                job, event = self._queued
                self._queued = None
                self._begin()
        self.on_change()

    def _begin(self) -> None:
        """A run starts (under the lock): it pulls every submission saved until now."""
        self.run_started = datetime.now(timezone.utc)
        self.pending, self.first_pending = 0, None

    def _run(self, job: str, event: dict) -> None:
        rec = self.jobs[job]
        t0 = time.monotonic()
        budget = self.settings.train_max_minutes
        rec.update(status="running", started=time.strftime("%H:%M:%S"), why=event.get("why") or event.get("action"),
                   budget_minutes=budget, model_version_before=self.version(),
                   deadline=time.strftime("%H:%M", time.localtime(time.time() + 60 * budget)))
        self.on_change()
        self.log(f"retraining (job {job}, {rec['why']}): pull, then fine-tuning in a child process within "
                 f"{budget:g} min (train_max_minutes), then both models on the test split")
        try:
            out = self.retrainer(event, self.stop_event)
        except RetrainInterrupted as e:
            rec.update(status="interrupted", error=str(e))
            self.log(f"retraining interrupted (job {job}): {e}")
            return
        except Exception as e:  # noqa: BLE001 - a failed run is reported in /health and /job_status, the server goes on
            rec.update(status="failed", error=f"{type(e).__name__}: {e}")
            self.log(f"retraining failed (job {job}): {type(e).__name__}: {e}\n{traceback.format_exc()}")
            self.on_change()
            return
        if out.extractor is not None:
            self.on_model(out.extractor)
        s = out.summary
        rec.update(status="done", promoted=out.extractor is not None, reason=s.get("reason", ""),
                   current=s.get("current"), new=s.get("new"), test_split=s.get("test_split"),
                   model_version=self.version(), finished=time.strftime("%H:%M:%S"),
                   seconds=round(time.monotonic() - t0, 1))
        verdict = "promoted" if rec["promoted"] else "not promoted"
        self.log(f"retraining done (job {job}, {rec['seconds']:.0f} s): {scores_text(s)}; {verdict}: "
                 f"{rec['reason']}; serving {self.version()}")
        self.on_change()

    def stop(self, timeout: float = 60.0) -> Optional[str]:
        """Stop the timer and any running retrain (cooperatively); the id of the job that was interrupted."""
        self.stop_event.set()
        with self.lock:
            w = self._worker
            running = next((j for j, r in self.jobs.items() if r["status"] == "running"), None)
            self._queued = None
        if w is not None:
            w.join(timeout)
        return running

    def wait_idle(self, timeout: float = 600.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            w = self._worker
            if w is None or not w.is_alive():
                return True
            w.join(0.2)
        return False

    def state(self) -> dict:
        with self.lock:
            jobs = list(self.jobs.values())[-5:]
            return {"training": self.training, "policy": self.settings.policy_text(), "pending": self.pending,
                    "next_retrain": self.next_retrain(), "jobs": jobs,
                    "last_result": next((j for j in reversed(jobs) if j["status"] in ("done", "failed", "interrupted")),
                                        None)}
