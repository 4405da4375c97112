"""The evaluation report of one or more extractors on a gold set (the content of report.json).

Predictions are made exactly as `govfacts extract` makes them (`govfacts.infer.api.extract_documents`
on each gold document's text, with the extractor loaded by `govfacts.infer.loader.load`), and scored
by the one scorer, `govfacts.scoring`.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

from govfacts.annotations import AnnotatedDoc, data_hash
from govfacts.evaluate.tables import table_accuracy
from govfacts.evaluate.render import HEAD, comparison_lines, headline_rows
from govfacts.infer.api import extract_documents
from govfacts.records import Document, Span
from govfacts.scoring import (FactMatch, bootstrap_interval, calibration, ece_interval, in_scope, paired_bootstrap,
                              paired_ece, prf,
                              score)


def confusion(docs: list[AnnotatedDoc], preds: dict[str, list[Span]]) -> dict:
    """Gold label × predicted label over spans; 'O' stands for no span on that side (misses, spurious spans)."""
    counts: Counter = Counter()
    for doc in docs:
        pred = in_scope(doc, preds.get(doc.doc_id, []))
        hit = set()
        for g in doc.spans:
            best, best_ov = None, 0
            for i, p in enumerate(pred):
                ov = min(g.end, p.end) - max(g.start, p.start)
                if ov > best_ov:
                    best, best_ov = i, ov
            if best is None:
                counts[(g.label, "O")] += 1
            else:
                hit.add(best)
                counts[(g.label, pred[best].label)] += 1
        for i, p in enumerate(pred):
            if i not in hit:
                counts[("O", p.label)] += 1
    labels = sorted({a for a, _ in counts} | {b for _, b in counts}, key=lambda x: (x == "O", x))
    return {"labels": labels, "matrix": [[counts[(g, p)] for p in labels] for g in labels]}


def per_document(matches: list[FactMatch], docs: list[AnnotatedDoc]) -> list[dict]:
    out = []
    for doc in docs:
        ms = [m for m in matches if m.doc_id == doc.doc_id]
        tp = sum(m.kind == "tp" for m in ms)
        npred = sum(m.pred is not None for m in ms)
        out.append({"doc_id": doc.doc_id, **prf(tp, npred, len(doc.spans))})
    return out


def errors(matches: list[FactMatch], docs: list[AnnotatedDoc], width: int = 20) -> list[dict]:
    """Every false positive and false negative with its context, most confident first."""
    texts = {d.doc_id: d.text for d in docs}
    preds_by_doc: dict[str, list[Span]] = {}
    for m in matches:
        if m.pred is not None:
            preds_by_doc.setdefault(m.doc_id, []).append(m.pred)
    out = []
    for m in matches:
        if m.kind == "tp":
            continue
        s = m.pred if m.kind == "fp" else m.gold
        conf = s.score if m.kind == "fp" else max(
            [p.score for p in preds_by_doc.get(m.doc_id, []) if min(p.end, s.end) > max(p.start, s.start)], default=0.0)
        overlap = [p.label for p in preds_by_doc.get(m.doc_id, []) if min(p.end, s.end) > max(p.start, s.start)]
        t = texts[m.doc_id]
        out.append({"kind": m.kind, "doc_id": m.doc_id, "label": s.label, "text": s.text, "start": s.start,
                    "end": s.end, "confidence": round(float(conf), 4),
                    "predicted_here": overlap if m.kind == "fn" else None,
                    "left": t[max(0, s.start - width):s.start], "right": t[s.end:s.end + width]})
    out.sort(key=lambda e: (-e["confidence"], e["kind"] != "fp", e["doc_id"], e["start"]))
    return out


def evaluate_predictions(docs: list[AnnotatedDoc], preds: dict[str, list[Span]]) -> dict:
    """All numbers of one model on one gold set, as plain data (the report's model section)."""
    s = score(docs, preds)
    return {"entity": s.entity, "schemes": s.schemes, "fact": s.fact,
            "fact_interval": bootstrap_interval(s.matches, [d.doc_id for d in docs]),
            "fact_per_label": s.per_label_fact,
            "value_accuracy": s.value_accuracy, "qualifier_accuracy": s.qualifier_accuracy,
            "calibration": {**calibration(s.matches), "interval": ece_interval(s.matches, [d.doc_id for d in docs])},
            "confusion": confusion(docs, preds),
            "documents": per_document(s.matches, docs), "errors": errors(s.matches, docs)}


def predict(extractor, docs: list[AnnotatedDoc]) -> dict[str, list[Span]]:
    """The prose facts `govfacts extract` writes for each gold text, as scored spans (table cells are
    scored against the table gold, `govfacts.evaluate.tables`)."""
    per_doc = extract_documents(extractor, [Document(d.doc_id, "", d.text) for d in docs], tables=False)
    return {d.doc_id: [f.to_span() for f in facts]
            for d, facts in zip(docs, per_doc)}


def build_report(docs: list[AnnotatedDoc], extractors: dict[str, object], gold_name: str,
                 tables_gold: Optional[Path] = None) -> dict:
    """The full evaluation of several extractors on one gold set (the content of report.json)."""
    from datetime import datetime, timezone

    preds = {name: predict(ex, docs) for name, ex in extractors.items()}
    return {"gold": {"name": gold_name, "documents": len(docs), "spans": sum(len(d.spans) for d in docs),
                     "hash": data_hash(docs), "doc_ids": [d.doc_id for d in docs]},
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "models": {name: evaluate_predictions(docs, p) for name, p in preds.items()},
            "comparisons": compare(docs, preds),
            "tables": table_accuracy(tables_gold) if tables_gold and Path(tables_gold).is_dir() else []}


def compare(docs: list[AnnotatedDoc], preds: dict[str, dict[str, list[Span]]]) -> list[dict]:
    """Paired bootstraps between the first model and each other one (same documents): of fact F1, and of
    the ECE (`ece`)."""
    names = list(preds)
    ids = [d.doc_id for d in docs]
    matches = {n: score(docs, p).matches for n, p in preds.items()}
    return [{"a": names[0], "b": b, **paired_bootstrap(matches[names[0]], matches[b], ids),
             "ece": paired_ece(matches[names[0]], matches[b], ids)} for b in names[1:]]


def headline_table(report: dict):
    """The headline comparison as a rich table (what `govfacts evaluate` prints)."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=escape(f"{report['gold']['name']}: {report['gold']['documents']} documents, {report['gold']['spans']} spans"))
    for h in HEAD:
        t.add_column(h, justify="left" if h == "model" else "right")
    for row in headline_rows(report):
        t.add_row(*row)
    lines = comparison_lines(report)
    if lines:
        t.caption = escape("\n".join(lines))
    return t
