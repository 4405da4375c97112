"""Settings of the annotator loop (configs/studio.yaml): when the ML backend retrains and what it keeps.

Retraining is CPU-bound for minutes, so the backend waits for several submitted tasks (or a while) and
gives each run a time budget instead of retraining after every click.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from govfacts.paths import CONFIGS, resolve
from govfacts.settings import load_settings


@dataclass(frozen=True)
class StudioSettings:
    train_after_tasks: int
    train_after_minutes: float
    train_max_minutes: float
    keep_candidates: int
    runs_dir: str

    @property
    def runs_path(self) -> Path:
        return resolve(self.runs_dir)

    def policy_text(self) -> str:
        """The retraining rule in words (backend log, /health, `studio status`)."""
        rules = []
        if self.train_after_tasks:
            rules.append(f"after {self.train_after_tasks} submitted task{'s' if self.train_after_tasks != 1 else ''}")
        if self.train_after_minutes:
            rules.append(f"{self.train_after_minutes:g} min after a submission")
        when = " or ".join(rules) if rules else "only on Start Training"
        return f"retrains {when}; budget {self.train_max_minutes:g} min of fine-tuning per run"


def load_studio_settings(path: Optional[str | Path] = None, overrides: Optional[dict] = None) -> StudioSettings:
    return load_settings(StudioSettings, path or CONFIGS / "studio.yaml", overrides)
