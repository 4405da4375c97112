"""Label Studio tasks of govfacts documents: scored pre-annotations and the local corpus by doc_id.

Uncertainty order: a pushed task's prediction `score` is the LOWEST confidence of its predicted spans
(0.0 when the model found no span at all: a report without a single fact is the most suspicious).
Sorting by prediction score ascending in Label Studio — or the project's "Uncertainty sampling"
queue that `setup` switches on — therefore shows the most uncertain documents first.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from govfacts.annotations import AnnotatedDoc, doc_to_task, read_tasks, region
from govfacts.records import Span
from govfacts.splits import load_splits, split_of
from govfacts.studio.client import StudioError


# -- predictions ----------------------------------------------------------------------------------
def task_score(spans: Iterable[Span]) -> float:
    """Uncertainty order of a task: the lowest span confidence; 0.0 when nothing was found."""
    scores = [float(s.score) for s in spans]
    return round(min(scores), 4) if scores else 0.0


def prediction_result(text: str, spans: list[Span], prefix: str = "r", from_name: str = "label",
                      to_name: str = "text") -> list[dict]:
    """Label Studio regions of the spans, one region per span (adjacent same-label spans stay apart)."""
    out = []
    for i, s in enumerate(sorted(spans, key=lambda s: (s.start, s.end))):
        r = region(s, text, f"{prefix}-{i}", s.score)
        r["from_name"], r["to_name"] = from_name, to_name
        out.append(r)
    return out


def prediction_task(doc: AnnotatedDoc, spans: list[Span], model_version: str) -> dict:
    """A task with the model's spans as a scored prediction (task score: see `task_score`)."""
    task = doc_to_task(AnnotatedDoc(doc.doc_id, doc.text, list(spans), list(doc.ignore), list(doc.not_tagged),
                                    meta=dict(doc.meta)), as_prediction=True, model_version=model_version)
    task["predictions"][0]["score"] = task_score(spans)
    return task


@dataclass
class CorpusTask:
    file: Path
    index: int
    task: dict


def corpus_tasks(annotations_dir: Path) -> dict[str, CorpusTask]:
    """Every task of annotations/tasks/*.json by doc_id (where it is stored and its raw JSON)."""
    folder = Path(annotations_dir) / "tasks"
    out: dict[str, CorpusTask] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        if f.name.startswith("."):
            continue
        try:
            tasks = read_tasks(f)
        except (OSError, ValueError) as e:
            raise StudioError(f"cannot read the annotated corpus file {f}: {e}") from None
        for i, t in enumerate(tasks):
            data = t.get("data") or {}
            doc_id = str(data.get("doc_id") or t.get("id"))
            if doc_id in out:
                raise StudioError(f"{f}: doc_id {doc_id!r} is also in {out[doc_id].file}; fix the corpus first")
            out[doc_id] = CorpusTask(f, i, t)
    return out


def test_split_ids(annotations_dir: Path, corpus: dict[str, CorpusTask]) -> set[str]:
    """Doc ids of the test split of `annotations_dir`/splits.yaml (patterns expanded over the corpus)."""
    splits_file = Path(annotations_dir) / "splits.yaml"
    if not splits_file.exists():
        return set()
    return {d for d, sp in split_of(load_splits(splits_file), list(corpus)).items() if sp == "test"}
