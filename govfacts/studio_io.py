"""Label Studio JSON I/O: the one reader and writer of annotated tasks.

A task holds one whole report (`data.text`, `data.doc_id`, `data.offset` = 0) plus two govfacts
fields: `data.ignore` (out-of-scope table regions, [[start, end], ...]) and `data.not_tagged`
(reviewed numbers deliberately left untagged, with a reason). Regions are `labels` results with
`value.start/end/text/labels`; offsets are character offsets into `data.text`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from govfacts.records import Span


@dataclass
class AnnotatedDoc:
    doc_id: str
    text: str
    spans: list[Span]
    ignore: list[tuple[int, int]] = field(default_factory=list)
    not_tagged: list[dict] = field(default_factory=list)
    task_id: Optional[int] = None
    offset: int = 0
    meta: dict = field(default_factory=dict)


@dataclass
class TaskProblem:
    """A problem found in an export, named by file, task and offsets."""

    source: str
    task: str
    start: Optional[int]
    end: Optional[int]
    reason: str

    def __str__(self) -> str:
        where = f" [{self.start}:{self.end}]" if self.start is not None else ""
        return f"{self.source}: task {self.task}{where}: {self.reason}"


def task_regions(task: dict) -> list[dict]:
    """The regions of a task's newest non-cancelled annotation (predictions are not annotations)."""
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not anns:
        return []
    newest = max(anns, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))
    return [r for r in newest.get("result") or [] if r.get("type") == "labels"]


def iter_export_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.json") if f.is_file() and not f.name.startswith("."))
        else:
            files.append(p)
    return files


def read_tasks(path: str | Path) -> list[dict]:
    """Tasks of one export file: a JSON list, a single task object, or JSON lines."""
    raw = Path(path).read_text(encoding="utf-8-sig")
    stripped = raw.lstrip()
    if stripped.startswith("["):
        data = json.loads(raw)
        return data
    if stripped.startswith("{"):
        try:
            return [json.loads(raw)]
        except json.JSONDecodeError:
            pass
    tasks = []
    for n, line in enumerate(raw.splitlines(), 1):
        if line.strip():
            tasks.append(json.loads(line))
    return tasks


def task_to_doc(task: dict) -> AnnotatedDoc:
    data = task.get("data") or {}
    text = data["text"]
    spans = []
    for r in task_regions(task):
        v = r["value"]
        spans.append(Span(int(v["start"]), int(v["end"]), v["labels"][0], v.get("text", text[v["start"]:v["end"]])))
    spans.sort(key=lambda s: (s.start, s.end))
    return AnnotatedDoc(doc_id=str(data.get("doc_id") or task.get("id")), text=text, spans=spans,
                        ignore=[(int(a), int(b)) for a, b in data.get("ignore") or []],
                        not_tagged=list(data.get("not_tagged") or []), task_id=task.get("id"),
                        offset=int(data.get("offset") or 0),
                        meta={k: v for k, v in data.items() if k not in ("text", "ignore", "not_tagged")})


def region(span: Span, text: str, rid: str, score: Optional[float] = None) -> dict:
    r = {"id": rid, "from_name": "label", "to_name": "text", "type": "labels",
         "value": {"start": span.start, "end": span.end, "text": text[span.start:span.end], "labels": [span.label]}}
    if score is not None:
        r["score"] = round(float(score), 4)
    return r


def doc_to_task(doc: AnnotatedDoc, as_prediction: bool = False, model_version: str = "") -> dict:
    """An annotated document as a Label Studio task (spans as annotation, or as a scored prediction)."""
    data = dict(doc.meta)
    data.update({"text": doc.text, "doc_id": doc.doc_id, "offset": doc.offset,
                 "ignore": [list(x) for x in doc.ignore], "not_tagged": doc.not_tagged})
    regions = [region(s, doc.text, f"{doc.doc_id}-{i}", s.score if as_prediction else None)
               for i, s in enumerate(doc.spans)]
    task: dict = {"data": data}
    if doc.task_id is not None:
        task["id"] = doc.task_id
    if as_prediction:
        scores = [s.score for s in doc.spans]
        task["predictions"] = [{"model_version": model_version, "result": regions,
                                "score": round(min(scores), 4) if scores else 1.0}]
    else:
        task["annotations"] = [{"result": regions}]
    return task


def write_tasks(path: str | Path, tasks: list[dict]) -> None:
    from govfacts.factsio import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
