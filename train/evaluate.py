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
