"""The ML backend's retrain: the pull runs in the backend (its change table and problems go to the
backend's log and the pull record, as with `studio pull`), the fine-tuning and the comparison run as
`govfacts studio retrain --no-pull` in a child process.

A child process keeps training's threads out of the server: stopping the backend ends the child
(SIGTERM: it removes its candidate and exits) instead of killing a thread inside torch.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, Optional

from govfacts.infer.loader import load
from govfacts.paths import ANNOTATIONS, DEFAULT_TAGGER, resolve_model
from govfacts.studio.client import DEFAULT_TITLE, Studio
from govfacts.studio.pull import pull, report_lines
from govfacts.studio.records import RETRAIN, read_record
from govfacts.studio.settings import StudioSettings
from govfacts.studio.trainer import Outcome, RetrainInterrupted, Retrainer


def retrain_command(ann: Path, target: Path, settings: StudioSettings, config: Optional[Path],
                    sets: list[str], runs_dir: Optional[Path]) -> list[str]:
    """The child's command line; the budget comes first so that an explicit --set max_minutes wins."""
    cmd = [sys.executable, "-m", "govfacts.cli", "studio", "retrain", "--no-pull", "--annotations", str(ann),
           "--model-dir", str(target), "--runs-dir", str(runs_dir or settings.runs_path),
           "--keep-candidates", str(settings.keep_candidates), "--set", f"max_minutes={settings.train_max_minutes:g}"]
    for s in sets:
        cmd += ["--set", s]
    if config:
        cmd += ["--config", str(config)]
    return cmd


def _stop_child(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to the child's process group (the child removes its candidate), SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def make_retrainer(settings: StudioSettings, model: Optional[str] = None, model_dir: Optional[Path] = None,
                   annotations_dir: Optional[Path] = None, config: Optional[Path] = None, sets: Optional[list[str]] = None,
                   title: Optional[str] = None, runs_dir: Optional[Path] = None,
                   log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> Retrainer:
    """Pull from Label Studio (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY), then retrain in a child process;
    the outcome is the child's retrain record and, when promoted, the new model loaded."""
    local = Path(resolve_model(model)) if model else None
    target = Path(model_dir) if model_dir else (local if local and (local / "config.json").exists() else DEFAULT_TAGGER)
    ann = Path(annotations_dir or ANNOTATIONS)

    def run(event: dict, stop: threading.Event) -> Outcome:
        project = event.get("project") if isinstance(event.get("project"), dict) else {}
        res = pull(Studio.from_env(), ann, title=project.get("title") or title or DEFAULT_TITLE, by="ML backend")
        log("automatic pull:")
        for line in report_lines(res):
            log("  " + line)
        before = read_record(ann, RETRAIN)
        if stop.is_set():  # stopped while pulling: no child to start
            raise RetrainInterrupted("the backend was stopped before the retrain started; the model is unchanged")
        proc = subprocess.Popen(retrain_command(ann, target, settings, config, sets or [], runs_dir),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        tail: list[str] = []

        def relay() -> None:
            for line in proc.stdout:
                tail.append(line.rstrip())
                del tail[:-20]
                log("  [retrain] " + line.rstrip())

        reader = threading.Thread(target=relay, daemon=True)
        reader.start()
        while proc.poll() is None:
            if stop.wait(0.5):
                _stop_child(proc)
                reader.join(5)
                raise RetrainInterrupted("the backend was stopped: the candidate was removed, the model is unchanged")
        reader.join(5)
        rec = read_record(ann, RETRAIN)
        if proc.returncode != 0 or rec is None or rec == before:
            raise RuntimeError(f"govfacts studio retrain exited with status {proc.returncode}: "
                               + " | ".join(tail[-5:]))
        return Outcome(load(str(target)) if rec.get("promoted") else None, rec)

    return run
