"""Reviewed corrections of gold annotations, applied to the task files from a committed decisions table.

A label audit proposes; an annotator decides each case against `labels.md`; the decisions are kept as a
table (doc, span, action, label, reason) beside the annotations so every change to the gold has a
reason on record and can be re-applied or reverted. Actions: `keep`, `relabel` (new label on the same
span), `remove` (the quantity is not a claim: the span goes and its reason joins the task's
`not_tagged`), `add` (a claim no span held: a new span at new_start..new_end, replacing a `not_tagged` entry there),
`skip` (no change).
Applying is idempotent: a decision already in effect changes nothing.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from govfacts.annotations import newest_annotation, read_tasks, task_regions, write_tasks

ACTIONS = ("keep", "skip", "relabel", "remove", "add")


@dataclass(frozen=True)
class Decision:
    doc_id: str
    start: int
    end: int
    action: str
    label: str = ""
    reason: str = ""
    new_start: Optional[int] = None  # add: the span to create (default: start..end)
    new_end: Optional[int] = None


def read_decisions(path: str | Path, labels: Optional[set] = None) -> list[Decision]:
    """Rows of a decisions TSV; a malformed row raises ValueError naming the file and line."""
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            try:
                action = row["action"].strip()
                label = (row.get("new_label") or "").strip()
                if action not in ACTIONS:
                    raise ValueError(f"unknown action {action!r}")
                if action in ("relabel", "add") and (not label or (labels is not None and label not in labels)):
                    raise ValueError(f"{action} needs a known label, got {label!r}")
                ns, ne = (row.get("new_start") or "").strip(), (row.get("new_end") or "").strip()
                out.append(Decision(row["doc_id"].strip(), int(row["start"]), int(row["end"]), action, label,
                                    (row.get("reason") or "").strip(), int(ns) if ns else None,
                                    int(ne) if ne else None))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}: line {n}: {e}") from None
    return out


def _region_at(regions: list[dict], start: int, end: int) -> Optional[dict]:
    return next((r for r in regions if (r["value"]["start"], r["value"]["end"]) == (start, end)), None)


def apply_decisions(tasks_dir: str | Path, decisions: list[Decision]) -> Counter:
    """Apply the decisions to the task files under `tasks_dir` (each file rewritten atomically, only if it
    changed, and only when every decision was found). Returns counts per outcome; a decision whose document or
    span is not found raises ValueError and changes no file."""
    by_doc: dict[str, list[Decision]] = {}
    for d in decisions:
        if d.action not in ("keep", "skip"):
            by_doc.setdefault(d.doc_id, []).append(d)
    counts: Counter = Counter()
    seen: set = set()
    changed_files: list[tuple[Path, list]] = []
    for path in sorted(Path(tasks_dir).glob("*.json")):
        tasks = read_tasks(path)
        changed = False
        for task in tasks:
            doc_id = str(task["data"].get("doc_id") or task.get("id"))
            if doc_id not in by_doc:
                continue
            seen.add(doc_id)
            text = task["data"]["text"]
            annotation = newest_annotation(task)  # the annotation the gold is read from
            if annotation is None:
                raise ValueError(f"{path}: {doc_id}: the task has no annotation to correct")
            results = annotation.setdefault("result", [])
            for d in by_doc[doc_id]:
                region = _region_at(task_regions(task), d.start, d.end)
                if d.action == "relabel":
                    if region is None:
                        raise ValueError(f"{path}: {doc_id}: no span at {d.start}-{d.end} to relabel")
                    if region["value"]["labels"] != [d.label]:
                        region["value"]["labels"] = [d.label]
                        counts["relabelled"] += 1
                        changed = True
                elif d.action == "remove":
                    if region is not None:
                        results.remove(region)
                        task["data"].setdefault("not_tagged", []).append(
                            {"start": d.start, "end": d.end, "reason": d.reason or "not a claim"})
                        counts["removed"] += 1
                        changed = True
                elif d.action == "add":
                    s = d.start if d.new_start is None else d.new_start
                    e = d.end if d.new_end is None else d.new_end
                    if not 0 <= s < e <= len(text):
                        raise ValueError(f"{path}: {doc_id}: span {s}-{e} outside the text")
                    if _region_at(task_regions(task), s, e) is None:
                        if any(r["value"]["start"] < e and s < r["value"]["end"] for r in task_regions(task)):
                            raise ValueError(f"{path}: {doc_id}: new span {s}-{e} overlaps a gold span")
                        results.append({"id": f"{doc_id}-c{s}", "from_name": "label", "to_name": "text",
                                        "type": "labels", "value": {"start": s, "end": e, "text": text[s:e],
                                                                    "labels": [d.label]}})
                        results.sort(key=lambda r: r["value"]["start"])
                        task["data"]["not_tagged"] = [n for n in task["data"].get("not_tagged") or []
                                                      if not (n["start"] < e and s < n["end"])]
                        counts["added"] += 1
                        changed = True
        if changed:
            changed_files.append((path, tasks))
    missing = sorted(set(by_doc) - seen)
    if missing:
        raise ValueError(f"{tasks_dir}: no task for {', '.join(missing[:5])}")
    for path, tasks in changed_files:  # only once every decision has been found: a bad table changes nothing
        write_tasks(path, tasks)
    return counts
