"""Validating Label Studio exports: every problem named by file, task and offsets; valid tasks kept."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from govfacts.labels import LabelSet, default_labels
from govfacts.studio_io import AnnotatedDoc, TaskProblem, iter_export_files, task_regions, task_to_doc


def _load_lenient(path: Path) -> tuple[list[dict], list[TaskProblem]]:
    """Tasks of an export; a malformed file or line becomes a problem instead of an exception."""
    raw = path.read_text(encoding="utf-8-sig", errors="replace")
    s = raw.lstrip()
    if s.startswith("["):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            return [], [TaskProblem(str(path), "-", None, None, f"malformed JSON at line {e.lineno}: {e.msg}")]
        return [t for t in data if isinstance(t, dict)], [
            TaskProblem(str(path), f"#{i}", None, None, "not a task object") for i, t in enumerate(data)
            if not isinstance(t, dict)]
    tasks, problems = [], []
    try:
        obj = json.loads(raw)
        return ([obj] if isinstance(obj, dict) else []), []
    except json.JSONDecodeError:
        pass
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(TaskProblem(str(path), f"line {n}", None, None, f"malformed JSON line: {e.msg}"))
            continue
        tasks.append(obj)
    return tasks, problems


def task_problems(task: dict, source: str, labels: LabelSet) -> list[TaskProblem]:
    tid = str(task.get("id", (task.get("data") or {}).get("doc_id", "?")))
    data = task.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return [TaskProblem(source, tid, None, None, "task has no data.text")]
    text = data["text"]
    names = set(labels.names)
    probs: list[TaskProblem] = []
    spans = []
    for r in task_regions(task):
        v = r.get("value") or {}
        try:
            s, e = int(v["start"]), int(v["end"])
        except (KeyError, TypeError, ValueError):
            probs.append(TaskProblem(source, tid, None, None, f"region {r.get('id')} without integer start/end"))
            continue
        labs = v.get("labels") or []
        if e <= s:
            probs.append(TaskProblem(source, tid, s, e, "empty span"))
        elif s < 0 or e > len(text):
            probs.append(TaskProblem(source, tid, s, e, f"span outside the text (length {len(text)})"))
        elif "text" in v and v["text"] != text[s:e]:
            probs.append(TaskProblem(source, tid, s, e, f"region text {v['text']!r} != task text {text[s:e]!r}"))
        if len(labs) != 1:
            probs.append(TaskProblem(source, tid, s, e, f"expected one label, got {labs}"))
        elif labs[0] not in names:
            probs.append(TaskProblem(source, tid, s, e, f"unknown label {labs[0]!r} (not in configs/labels.yaml)"))
        spans.append((s, e))
    spans.sort()
    for (a, b), (c, d) in zip(spans, spans[1:]):
        if c < b:
            probs.append(TaskProblem(source, tid, c, d, f"overlaps span [{a}:{b}]"))
    return probs


def validate_exports(paths: Iterable[str | Path], labels: LabelSet | None = None
                     ) -> tuple[list[AnnotatedDoc], list[TaskProblem]]:
    """Valid documents of all exports under `paths`, and every problem found; nothing raises."""
    labels = labels or default_labels()
    docs: list[AnnotatedDoc] = []
    problems: list[TaskProblem] = []
    for f in iter_export_files(paths):
        try:
            tasks, probs = _load_lenient(f)
        except OSError as e:
            problems.append(TaskProblem(str(f), "-", None, None, f"cannot read: {e}"))
            continue
        problems += probs
        for task in tasks:
            p = task_problems(task, str(f), labels)
            problems += p
            if not p:
                docs.append(task_to_doc(task))
    return docs, problems
