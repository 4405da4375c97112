"""Label Studio JSON: the one reader, validator and writer of annotated tasks, and the corpus loader.

A task holds one whole report (`data.text`, `data.doc_id`, `data.offset` = 0) plus two govfacts
fields: `data.ignore` (out-of-scope table regions, [[start, end], ...]) and `data.not_tagged`
(reviewed numbers deliberately left untagged, with a reason). Regions are `labels` results with
`value.start/end/text/labels`; offsets are character offsets into `data.text`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from govfacts.atomic import write_text_atomic
from govfacts.labels import LabelSet, default_labels
from govfacts.paths import ANNOTATIONS
from govfacts.records import Span
from govfacts.splits import load_splits, split_members, split_of


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


def newest_annotation(task: dict) -> Optional[dict]:
    """A task's newest non-cancelled annotation, the one its gold is read from (predictions are not annotations)."""
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not anns:
        return None
    return max(anns, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))


def task_regions(task: dict) -> list[dict]:
    """The label regions of a task's newest non-cancelled annotation."""
    newest = newest_annotation(task)
    return [r for r in (newest or {}).get("result") or [] if r.get("type") == "labels"]


def iter_export_files(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*.json") if f.is_file() and not f.name.startswith("."))
        else:
            files.append(p)
    return files


def read_export(path: str | Path) -> tuple[list[dict], list["TaskProblem"]]:
    """Tasks of one export file (a JSON list, a single task object, or JSON lines) and the problems
    met reading it: a malformed file or line, or a list item that is not a task, becomes a problem."""
    path = Path(path)
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
    try:
        obj = json.loads(raw)
        if isinstance(obj, dict):
            return [obj], []
        return [], [TaskProblem(str(path), "-", None, None, "not a Label Studio export (a list of tasks)")]
    except json.JSONDecodeError:
        pass
    tasks, problems = [], []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(TaskProblem(str(path), f"line {n}", None, None, f"malformed JSON line: {e.msg}"))
            continue
        if isinstance(obj, dict):
            tasks.append(obj)
        else:
            problems.append(TaskProblem(str(path), f"line {n}", None, None, "not a task object"))
    return tasks, problems


def read_tasks(path: str | Path) -> list[dict]:
    """Tasks of one export file; raises ValueError naming the file and line if any of it is malformed."""
    tasks, problems = read_export(path)
    if problems:
        raise ValueError("; ".join(map(str, problems[:3])))
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


def data_hash(docs: Iterable[AnnotatedDoc]) -> str:
    """sha256 (hex) of what gold documents are: doc ids, texts, spans and out-of-scope regions, in doc-id
    order. Evaluation reports print it; the annotator loop names the test split it compares models on by it."""
    payload = [(d.doc_id, d.text, [(s.start, s.end, s.label) for s in d.spans], list(map(list, d.ignore)))
               for d in sorted(docs, key=lambda d: d.doc_id)]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


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
    write_text_atomic(path, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")


# -- validation -------------------------------------------------------------------------------------
def task_problems(task: dict, source: str, labels: LabelSet) -> list[TaskProblem]:
    """Everything wrong with one task: no text, offsets, region texts, labels, overlaps, empty spans."""
    tid = str(task.get("id", (task.get("data") or {}).get("doc_id", "?")))
    data = task.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        return [TaskProblem(source, tid, None, None, "task has no data.text (export the project as JSON, "
                                                     "not JSON-MIN or CSV)")]
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
    for a, b in _regions(data.get("ignore")):
        for s, e in spans:
            if s < b and a < e:
                probs.append(TaskProblem(source, tid, s, e, f"inside the out-of-scope table region [{a}:{b}] "
                                                            "(data.ignore): tables are not labelled"))
    return probs


def _regions(ignore) -> list[tuple[int, int]]:
    out = []
    for x in ignore or []:
        try:
            out.append((int(x[0]), int(x[1])))
        except (TypeError, ValueError, IndexError):
            continue
    return out


def validate_exports(paths: Iterable[str | Path], labels: LabelSet | None = None
                     ) -> tuple[list[AnnotatedDoc], list[TaskProblem]]:
    """Valid documents of all exports under `paths`, and every problem found; nothing raises."""
    labels = labels or default_labels()
    docs: list[AnnotatedDoc] = []
    problems: list[TaskProblem] = []
    for f in iter_export_files(paths):
        try:
            tasks, probs = read_export(f)
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


# -- the labelled corpus -----------------------------------------------------------------------------
def tasks_folder(annotations_dir: str | Path) -> Path:
    """annotations/tasks when it exists, else the folder itself (an export folder)."""
    root = Path(annotations_dir)
    return root / "tasks" if (root / "tasks").is_dir() else root


def load_corpus(annotations_dir: str | Path = ANNOTATIONS) -> dict[str, AnnotatedDoc]:
    """Every annotated document under `annotations_dir`, by doc_id. Training data must be clean: an
    invalid task or a doc_id seen twice is a ValueError naming the file and task."""
    docs, problems = validate_exports([tasks_folder(annotations_dir)])
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in the labelled corpus, e.g. {problems[0]} "
                         "(govfacts annotations validate lists them all)")
    out: dict[str, AnnotatedDoc] = {}
    for d in docs:
        if d.doc_id in out:
            raise ValueError(f"{annotations_dir}: duplicate doc_id {d.doc_id!r}")
        out[d.doc_id] = d
    return out


def load_split(split: str, annotations_dir: str | Path = ANNOTATIONS,
               splits_yaml: str | Path | None = None) -> list[AnnotatedDoc]:
    """The documents of one split (train/dev/test) of the corpus, in the order splits.yaml lists them."""
    docs = load_corpus(annotations_dir)
    splits_yaml = splits_yaml or Path(annotations_dir) / "splits.yaml"
    members = split_members(splits_yaml, docs)
    if split not in members:
        raise KeyError(f"{splits_yaml}: no split {split!r} (have {sorted(members)})")
    return [docs[i] for i in members[split]]


def load_gold(paths: Iterable[str | Path], split: Optional[str] = None, splits_file: str | Path | None = None
              ) -> tuple[list[AnnotatedDoc], list[TaskProblem]]:
    """Gold documents of Label Studio exports (invalid tasks reported, not raised), optionally only
    those of one split of splits.yaml."""
    docs, problems = validate_exports(paths)
    if split:
        where = split_of(load_splits(splits_file), [d.doc_id for d in docs])
        docs = [d for d in docs if where.get(d.doc_id) == split]
    return docs, problems
