"""`govfacts studio push`: reports with the model's scored pre-annotations into the project."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from govfacts.annotations import AnnotatedDoc, doc_to_task, task_to_doc
from govfacts.infer.batch import discover
from govfacts.infer.loader import extractor_id, load
from govfacts.paths import ANNOTATIONS
from govfacts.reader import ReadError, read_document
from govfacts.studio.client import DEFAULT_TITLE, Studio, StudioError
from govfacts.studio.tasks import corpus_tasks, prediction_task, task_score, test_split_ids


@dataclass
class PushResult:
    project_id: int
    model_version: str
    pushed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped_types: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    spans: dict[str, int] = field(default_factory=dict)


def push(studio: Studio, paths: Iterable[str | Path], title: str = DEFAULT_TITLE, model: Optional[str] = None,
         annotations_dir: Optional[Path] = None, extractor=None, chunk: int = 8, allow_test: bool = False) -> PushResult:
    """Read the reports, predict spans and import the documents the project does not hold yet.

    A document the corpus already holds (same text) carries its gold spans as an annotation beside the
    model's prediction, so an annotator corrects the gold instead of re-doing it from the model's spans
    (and `pull` can never lose a gold span the annotator did not delete). Documents of the test split are
    pushed only with `allow_test`: their gold is what models are judged on."""
    project = studio.require_project(title)
    files, skipped = discover(paths)
    present = studio.task_doc_ids(project.id)
    if extractor is None:
        try:
            extractor = load(model)
        except (OSError, ValueError) as e:
            raise StudioError(f"cannot load model {model or '(default)'}: {e}") from None
    mv = extractor_id(extractor)
    res = PushResult(project.id, mv, skipped_types=skipped)
    ann_dir = Path(annotations_dir or ANNOTATIONS)
    corpus = corpus_tasks(ann_dir)
    test_ids = test_split_ids(ann_dir, corpus)
    docs: list[AnnotatedDoc] = []
    gold: dict[str, AnnotatedDoc] = {}
    seen: set[str] = set()

    def flush() -> None:
        """Predict and import one chunk (an interrupted push resumes: imported docs are skipped next time)."""
        if not docs:
            return
        try:
            per_doc = extractor.spans_many([d.text for d in docs])
        except Exception:  # noqa: BLE001 - find the document that breaks the chunk, report it, go on
            per_doc = []
            for d in docs:
                try:
                    per_doc.append(extractor.spans(d.text))
                except Exception as e:  # noqa: BLE001
                    per_doc.append(e)
        tasks = []
        for d, spans in zip(docs, per_doc):
            if isinstance(spans, Exception):
                res.failures.append((d.meta.get("source") or d.doc_id,
                                     f"extraction failed: {type(spans).__name__}: {spans}"))
                continue
            spans = [x for x in spans if not any(x.start < b and a < x.end for a, b in d.ignore)]  # no tables
            task = prediction_task(d, spans, mv)
            if d.doc_id in gold:  # the reviewed spans as the task's annotation, the model's as its prediction
                task["annotations"] = doc_to_task(gold[d.doc_id])["annotations"]
            tasks.append(task)
            res.scores[d.doc_id] = task_score(spans)
            res.spans[d.doc_id] = len(spans)
        if tasks:
            studio.import_tasks(project.id, tasks)
            if not res.pushed:
                studio.set_model_version(project.id, mv)
            res.pushed += [t["data"]["doc_id"] for t in tasks]
        docs.clear()

    for f in files:
        try:
            d = read_document(f)
        except ReadError as e:
            res.failures.append((str(f), e.reason))
            continue
        if d.doc_id in present or d.doc_id in seen:
            res.already.append(d.doc_id)
            continue
        if d.doc_id in test_ids and not allow_test:
            res.failures.append((str(f), "in the test split (annotations/splits.yaml): its gold is what models are "
                                         "judged on; push it with --allow-test to review it"))
            continue
        seen.add(d.doc_id)
        ignore, not_tagged, meta = [], [], {"source": str(f)}
        known = corpus.get(d.doc_id)
        if known and (known.task.get("data") or {}).get("text") == d.text:
            gold[d.doc_id] = task_to_doc(known.task)
            data = known.task["data"]  # keep the reviewed table regions and not-tagged numbers
            ignore = [tuple(x) for x in data.get("ignore") or []]
            not_tagged = list(data.get("not_tagged") or [])
            meta = {k: v for k, v in data.items() if k not in ("text", "ignore", "not_tagged", "doc_id", "offset")}
        docs.append(AnnotatedDoc(d.doc_id, d.text, [], ignore, not_tagged, meta=meta))
        if len(docs) >= chunk:
            flush()
    flush()
    return res
