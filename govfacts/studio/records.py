"""What the loop did last, as small JSON files beside the corpus they are about.

`annotations/.studio-pull.json` (the last pull: who, when, the change table, problems, the test split's
hash before and after), `.studio-retrain.json` (the last retrain: scores, promoted or not and why),
`.studio-backend.json` (the ML backend's state) and `.studio-test-baseline.json` (the test split as it
was before the pulls since the last retrain). The backend, `studio pull`, `studio retrain` and
`studio status` run in different processes, so every file is replaced atomically; their names start
with a dot, so corpus readers skip them.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

from govfacts.atomic import write_text_atomic

PULL, RETRAIN, BACKEND, BASELINE = "pull", "retrain", "backend", "test-baseline"


def record_path(annotations_dir: Path, kind: str) -> Path:
    return Path(annotations_dir) / f".studio-{kind}.json"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def write_record(annotations_dir: Path, kind: str, data: dict) -> Path:
    return write_text_atomic(record_path(annotations_dir, kind), json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def read_record(annotations_dir: Path, kind: str) -> Optional[dict]:
    """The record, or None when there is none (or it cannot be read: a record never stops the loop)."""
    try:
        data = json.loads(record_path(annotations_dir, kind).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_record(annotations_dir: Path, kind: str) -> None:
    record_path(annotations_dir, kind).unlink(missing_ok=True)
