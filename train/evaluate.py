"""Scoring extracted spans against held-out annotations.

Entity level: seqeval strict IOB2 over each document's characters (characters of out-of-scope table
regions removed from both sides). Fact level: a predicted fact is right when a gold fact has the same
label, an overlapping span and the same normalised value; each gold fact matches at most once.
Predictions inside out-of-scope regions are not counted.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

from govfacts.quantity import parse_quantity
from govfacts.records import Span
from govfacts.studio_io import AnnotatedDoc


def span_value(text: str) -> Optional[float]:
    q = parse_quantity(text)
    return 0.0 if q is None else q.value


def char_tags(length: int, spans: list[Span]) -> list[str]:
    tags = ["O"] * length
    for s in spans:
        tags[s.start] = f"B-{s.label}"
        for i in range(s.start + 1, s.end):
            tags[i] = f"I-{s.label}"
    return tags


def in_scope(doc: AnnotatedDoc, spans: list[Span]) -> list[Span]:
    return [s for s in spans if not any(a <= s.start < b or a < s.end <= b for a, b in doc.ignore)]


@dataclass
class FactMatch:
    doc_id: str
    gold: Optional[Span]
    pred: Optional[Span]
    kind: str  # tp | fp | fn


@dataclass
class Scores:
    entity: dict
    fact: dict
    per_label_fact: dict
    matches: list[FactMatch] = field(default_factory=list)
    value_accuracy: Optional[float] = None
    qualifier_accuracy: Optional[float] = None


def _prf(tp: int, npred: int, ngold: int) -> dict:
    p = tp / npred if npred else 0.0
    r = tp / ngold if ngold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": ngold,
            "predicted": npred, "tp": tp}


def match_facts(doc: AnnotatedDoc, pred: list[Span]) -> list[FactMatch]:
    """Greedy one-to-one matching: same label, overlapping span, equal value (largest overlap first)."""
    gold = doc.spans
    cands = []
    for gi, g in enumerate(gold):
        for pi, p in enumerate(pred):
            ov = min(g.end, p.end) - max(g.start, p.start)
            if ov > 0 and g.label == p.label and span_value(g.text) == span_value(p.text):
                cands.append((ov, gi, pi))
    used_g, used_p, out = set(), set(), []
    for ov, gi, pi in sorted(cands, reverse=True):
        if gi in used_g or pi in used_p:
            continue
        used_g.add(gi)
        used_p.add(pi)
        out.append(FactMatch(doc.doc_id, gold[gi], pred[pi], "tp"))
    out += [FactMatch(doc.doc_id, g, None, "fn") for i, g in enumerate(gold) if i not in used_g]
    out += [FactMatch(doc.doc_id, None, p, "fp") for i, p in enumerate(pred) if i not in used_p]
    return out


def score(docs: list[AnnotatedDoc], preds: dict[str, list[Span]]) -> Scores:
    """Entity-level (seqeval strict) and fact-level scores of `preds` (raw-offset spans per doc_id)."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    y_true, y_pred, matches = [], [], []
    for doc in docs:
        pred = in_scope(doc, preds.get(doc.doc_id, []))
        keep = [i for i in range(len(doc.text)) if not any(a <= i < b for a, b in doc.ignore)]
        gt, pt = char_tags(len(doc.text), doc.spans), char_tags(len(doc.text), pred)
        y_true.append([gt[i] for i in keep])
        y_pred.append([pt[i] for i in keep])
        matches += match_facts(doc, pred)
    rep = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    entity = {k: {m: float(v[m]) for m in ("precision", "recall", "f1-score", "support")} for k, v in rep.items()}
    tp = Counter(m.gold.label for m in matches if m.kind == "tp")
    ngold = Counter(m.gold.label for m in matches if m.gold is not None)
    npred = Counter(m.pred.label for m in matches if m.pred is not None)
    per_label = {lab: _prf(tp[lab], npred[lab], ngold[lab]) for lab in sorted(set(ngold) | set(npred))}
    fact = _prf(sum(tp.values()), sum(npred.values()), sum(ngold.values()))
    # value / qualifier accuracy on label-matched, overlapping spans (value not required to match)
    vals, quals = [], []
    for doc in docs:
        pred = in_scope(doc, preds.get(doc.doc_id, []))
        for g in doc.spans:
            for p in pred:
                if p.label == g.label and min(g.end, p.end) > max(g.start, p.start):
                    qg, qp = parse_quantity(g.text), parse_quantity(p.text)
                    vals.append(span_value(g.text) == span_value(p.text))
                    quals.append((qg.qualifier if qg else "exact") == (qp.qualifier if qp else "exact"))
                    break
    return Scores(entity=entity, fact=fact, per_label_fact=per_label, matches=matches,
                  value_accuracy=sum(vals) / len(vals) if vals else None,
                  qualifier_accuracy=sum(quals) / len(quals) if quals else None)


# -- calibration, confusion, per-document scores ------------------------------------------------------

def calibration(matches: list[FactMatch], bins: int = 10) -> dict:
    """Expected calibration error of predicted facts: confidence vs the share that is right, in equal-width bins."""
    preds = [(m.pred.score, m.kind == "tp") for m in matches if m.pred is not None]
    table = []
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in preds if (lo <= c < hi) or (b == bins - 1 and c == 1.0)]
        if not inside:
            table.append({"bin": [lo, hi], "count": 0, "confidence": None, "accuracy": None})
            continue
        conf = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(preds) * abs(acc - conf)
        table.append({"bin": [lo, hi], "count": len(inside), "confidence": conf, "accuracy": acc})
    return {"ece": ece if preds else None, "bins": table, "n": len(preds)}


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
        out.append({"doc_id": doc.doc_id, **_prf(tp, npred, len(doc.spans))})
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
    return {"entity": s.entity, "fact": s.fact, "fact_per_label": s.per_label_fact,
            "value_accuracy": s.value_accuracy, "qualifier_accuracy": s.qualifier_accuracy,
            "calibration": calibration(s.matches), "confusion": confusion(docs, preds),
            "documents": per_document(s.matches, docs), "errors": errors(s.matches, docs)}


def data_hash(docs: list[AnnotatedDoc]) -> str:
    import hashlib
    import json

    payload = [(d.doc_id, d.text, [(s.start, s.end, s.label) for s in d.spans], list(map(list, d.ignore)))
               for d in sorted(docs, key=lambda d: d.doc_id)]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_gold(paths, split: Optional[str] = None, splits_file=None) -> tuple[list[AnnotatedDoc], list]:
    """Gold documents from Label Studio exports, optionally restricted to one split of splits.yaml."""
    from govfacts.splits import load_splits, split_of
    from govfacts.validate import validate_exports

    docs, problems = validate_exports(paths)
    if split:
        where = split_of(load_splits(splits_file), [d.doc_id for d in docs])
        docs = [d for d in docs if where.get(d.doc_id) == split]
    return docs, problems


def predict(extractor, docs: list[AnnotatedDoc]) -> dict[str, list[Span]]:
    many = getattr(extractor, "spans_many", None)
    if many:
        return dict(zip([d.doc_id for d in docs], many([d.text for d in docs])))
    return {d.doc_id: extractor.spans(d.text) for d in docs}


def build_report(docs: list[AnnotatedDoc], extractors: dict[str, object], gold_name: str) -> dict:
    """The full evaluation of several extractors on one gold set (the content of report.json)."""
    from datetime import datetime, timezone

    return {"gold": {"name": gold_name, "documents": len(docs), "spans": sum(len(d.spans) for d in docs),
                     "hash": data_hash(docs), "doc_ids": [d.doc_id for d in docs]},
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "models": {name: evaluate_predictions(docs, predict(ex, docs)) for name, ex in extractors.items()}}


def headline_table(report: dict):
    """The headline comparison as a rich table (what `govfacts evaluate` prints)."""
    from rich.markup import escape
    from rich.table import Table

    from govfacts.train.report import HEAD, headline_rows

    t = Table(title=escape(f"{report['gold']['name']}: {report['gold']['documents']} documents, {report['gold']['spans']} spans"))
    for h in HEAD:
        t.add_column(h, justify="left" if h == "model" else "right")
    for row in headline_rows(report):
        t.add_row(*row)
    return t
