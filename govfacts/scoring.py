"""The one scorer of predicted spans against gold: epoch selection, the int8 choice, calibration,
`govfacts evaluate` and studio promotion all measure with it.

Entity level: seqeval strict IOB2 over each document's characters (characters of out-of-scope table
regions removed from both sides), and the span-matching schemes of nervaluate (`SCHEMES`): `strict`
(same boundaries and label), `exact` (same boundaries), `partial` (overlap), `type` (overlap and same
label). Fact level: a predicted fact is right when a gold fact has the same label, an overlapping
span and the same normalised value. Matching is one-to-one, largest overlap first. Predictions
inside out-of-scope regions are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from govfacts.quantity import parse_quantity
from govfacts.records import Span
from govfacts.annotations import AnnotatedDoc


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
    entity: dict  # seqeval strict, per label and averages
    fact: dict
    per_label_fact: dict
    matches: list[FactMatch] = field(default_factory=list)  # fact-level
    schemes: dict = field(default_factory=dict)  # nervaluate scheme -> P/R/F1
    value_accuracy: Optional[float] = None
    qualifier_accuracy: Optional[float] = None


def prf(tp: int, npred: int, ngold: int) -> dict:
    p = tp / npred if npred else 0.0
    r = tp / ngold if ngold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": ngold,
            "predicted": npred, "tp": tp}


SCHEMES = ("strict", "exact", "partial", "type")


def _agrees(g: Span, p: Span, scheme: str) -> bool:
    if scheme in ("strict", "exact"):
        same = g.start == p.start and g.end == p.end
        return same and (scheme == "exact" or g.label == p.label)
    if min(g.end, p.end) <= max(g.start, p.start):
        return False
    if scheme == "partial":
        return True
    if scheme == "type":
        return g.label == p.label
    if scheme == "fact":
        return g.label == p.label and span_value(g.text) == span_value(p.text)
    raise ValueError(f"unknown matching scheme {scheme!r} (choose from {', '.join(SCHEMES + ('fact',))})")


def match_spans(doc_id: str, gold: list[Span], pred: list[Span], scheme: str = "fact") -> list[FactMatch]:
    """One-to-one matching of predicted to gold spans under `scheme` (`SCHEMES` or `fact`), largest
    overlap first: a `tp` per matched pair, an `fn` per unmatched gold, an `fp` per unmatched prediction."""
    cands = []
    for gi, g in enumerate(gold):
        for pi, p in enumerate(pred):
            if _agrees(g, p, scheme):
                cands.append((min(g.end, p.end) - max(g.start, p.start), gi, pi))
    used_g, used_p, out = set(), set(), []
    for ov, gi, pi in sorted(cands, reverse=True):
        if gi in used_g or pi in used_p:
            continue
        used_g.add(gi)
        used_p.add(pi)
        out.append(FactMatch(doc_id, gold[gi], pred[pi], "tp"))
    out += [FactMatch(doc_id, g, None, "fn") for i, g in enumerate(gold) if i not in used_g]
    out += [FactMatch(doc_id, None, p, "fp") for i, p in enumerate(pred) if i not in used_p]
    return out


def match_facts(doc: AnnotatedDoc, pred: list[Span]) -> list[FactMatch]:
    """Fact-level matching: same label, overlapping span, equal value."""
    return match_spans(doc.doc_id, doc.spans, pred, "fact")


def prf_of(matches: list[FactMatch]) -> dict:
    return prf(sum(m.kind == "tp" for m in matches), sum(m.pred is not None for m in matches),
                sum(m.gold is not None for m in matches))


def score(docs: list[AnnotatedDoc], preds: dict[str, list[Span]]) -> Scores:
    """Entity-level (seqeval strict) and fact-level scores of `preds` (raw-offset spans per doc_id)."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    y_true, y_pred, matches = [], [], []
    by_scheme: dict[str, list[FactMatch]] = {k: [] for k in SCHEMES}
    for doc in docs:
        pred = in_scope(doc, preds.get(doc.doc_id, []))
        keep = [i for i in range(len(doc.text)) if not any(a <= i < b for a, b in doc.ignore)]
        gt, pt = char_tags(len(doc.text), doc.spans), char_tags(len(doc.text), pred)
        y_true.append([gt[i] for i in keep])
        y_pred.append([pt[i] for i in keep])
        matches += match_facts(doc, pred)
        for k in SCHEMES:
            by_scheme[k] += match_spans(doc.doc_id, doc.spans, pred, k)
    rep = classification_report(y_true, y_pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    entity = {k: {m: float(v[m]) for m in ("precision", "recall", "f1-score", "support")} for k, v in rep.items()}
    counts = label_counts(matches)
    per_label = {lab: prf(*counts[lab]) for lab in sorted(counts)}
    fact = prf(*(sum(c[i] for c in counts.values()) for i in range(3)))
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
                  schemes={k: prf_of(v) for k, v in by_scheme.items()},
                  value_accuracy=sum(vals) / len(vals) if vals else None,
                  qualifier_accuracy=sum(quals) / len(quals) if quals else None)


# -- calibration, confusion, per-document scores ------------------------------------------------------

def calibration_bin(confidence: float, bins: int = 10) -> Optional[int]:
    """The equal-width bin of a confidence (1.0 in the last one; None outside [0, 1])."""
    for b in range(bins):
        if b / bins <= confidence < (b + 1) / bins or (b == bins - 1 and confidence == 1.0):
            return b
    return None


def calibration(matches: list[FactMatch], bins: int = 10) -> dict:
    """Expected calibration error of predicted facts: confidence vs the share that is right, in equal-width bins."""
    return calibration_of([(m.pred.score, m.kind == "tp") for m in matches if m.pred is not None], bins)


def calibration_of(preds: Sequence[tuple[float, bool]], bins: int = 10) -> dict:
    """`calibration` of bare (confidence, right) pairs."""
    by_bin: list[list] = [[] for _ in range(bins)]
    for c, ok in preds:
        b = calibration_bin(c, bins)
        if b is not None:
            by_bin[b].append((c, ok))
    table = []
    ece = 0.0
    for b, inside in enumerate(by_bin):
        lo, hi = b / bins, (b + 1) / bins
        if not inside:
            table.append({"bin": [lo, hi], "count": 0, "confidence": None, "accuracy": None})
            continue
        conf = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        ece += len(inside) / len(preds) * abs(acc - conf)
        table.append({"bin": [lo, hi], "count": len(inside), "confidence": conf, "accuracy": acc})
    return {"ece": ece if preds else None, "bins": table, "n": len(preds)}


# -- intervals: documents resampled with replacement ------------------------------------------------
BOOTSTRAP_SAMPLES = 2000


def _doc_counts(matches: list[FactMatch], doc_ids: list[str]):
    import numpy as np

    index = {d: i for i, d in enumerate(doc_ids)}
    c = np.zeros((len(doc_ids), 3))  # tp, predicted, gold per document
    for m in matches:
        i = index[m.doc_id]
        c[i] += (m.kind == "tp", m.pred is not None, m.gold is not None)
    return c


def _f1(c):
    import numpy as np

    tp, npred, ngold = c[..., 0], c[..., 1], c[..., 2]
    p = np.divide(tp, npred, out=np.zeros_like(tp), where=npred > 0)
    r = np.divide(tp, ngold, out=np.zeros_like(tp), where=ngold > 0)
    return np.divide(2 * p * r, p + r, out=np.zeros_like(tp), where=(p + r) > 0)


def _resample(n_docs: int, samples: int, seed: int):
    import numpy as np

    return np.random.default_rng(seed).integers(0, n_docs, size=(samples, n_docs))


def bootstrap_interval(matches: list[FactMatch], doc_ids: list[str], samples: int = BOOTSTRAP_SAMPLES,
                       seed: int = 0, level: float = 0.95) -> dict:
    """Percentile interval of fact F1 over documents drawn with replacement (a report's claims are
    not independent of each other; documents are the unit that was sampled)."""
    import numpy as np

    if not doc_ids:
        return {"f1": None, "low": None, "high": None, "samples": 0}
    c = _doc_counts(matches, doc_ids)
    idx = _resample(len(doc_ids), samples, seed)
    f1 = _f1(c[idx].sum(axis=1))
    a = (1 - level) / 2
    return {"f1": float(_f1(c.sum(axis=0))), "low": float(np.quantile(f1, a)), "high": float(np.quantile(f1, 1 - a)),
            "samples": samples, "level": level}


def _ece_parts(matches: list[FactMatch], doc_ids: list[str], bins: int):
    """(per_doc [docs, bins, 2]: summed confidence and right facts per document and bin, facts per document,
    conf, right, onehot [facts, bins]) of the predicted facts of `matches`; None without any."""
    import numpy as np

    index = {d: i for i, d in enumerate(doc_ids)}
    preds = [(index[m.doc_id], m.pred.score, m.kind == "tp") for m in matches if m.pred is not None]
    if not doc_ids or not preds:
        return None
    doc = np.array([d for d, _, _ in preds])
    conf, right = (np.array(x, dtype=float) for x in list(zip(*preds))[1:])
    onehot = np.zeros((len(preds), bins))  # [facts, bins], the bins of `calibration` (a row of zeros outside them)
    for i, c in enumerate(conf):
        b = calibration_bin(c, bins)
        if b is not None:
            onehot[i, b] = 1
    per_doc = np.zeros((len(doc_ids), bins, 2))
    np.add.at(per_doc, doc, onehot[:, :, None] * np.stack([conf, right], axis=1)[:, None, :])
    return per_doc, np.bincount(doc, minlength=len(doc_ids)), conf, right, onehot


def _ece(conf_sum, right_sum, n):
    import numpy as np

    return np.abs(right_sum - conf_sum).sum(axis=-1) / np.maximum(n, 1)


def _point_ece(parts) -> float:
    _, _, conf, right, onehot = parts
    return float(_ece(conf @ onehot, right @ onehot, len(conf)))


def _boot_ece(parts, idx):
    per_doc, counts = parts[0], parts[1]
    t = per_doc[idx].sum(axis=1)
    return _ece(t[..., 0], t[..., 1], counts[idx].sum(axis=1))


def ece_interval(matches: list[FactMatch], doc_ids: list[str], bins: int = 10, samples: int = BOOTSTRAP_SAMPLES,
                 seed: int = 0, level: float = 0.95) -> dict:
    """How far a split of a few reports can pin an ECE (the bins of `calibration`) down, two ways:
    `low`/`high`, the percentile interval over documents drawn with replacement (it sits above the estimate:
    resampling adds noise, and noise only raises an ECE); and `calibrated_high`, the ECE a perfectly
    calibrated extractor would still show at `level` with these very confidences, each fact right with the
    probability it states (consistency resampling, Bröcker & Smith 2007). An ECE below `calibrated_high`
    is within what chance alone gives at this size."""
    import numpy as np

    parts = _ece_parts(matches, doc_ids, bins)
    if parts is None:
        return {"ece": None, "low": None, "high": None, "calibrated_median": None, "calibrated_high": None, "samples": 0}
    _, _, conf, _, onehot = parts
    boot = _boot_ece(parts, _resample(len(doc_ids), samples, seed))
    draws = np.random.default_rng(seed).random((samples, len(conf))) < conf  # outcomes as the confidences say
    chance = _ece(conf @ onehot, draws.astype(float) @ onehot, len(conf))
    a = (1 - level) / 2
    return {"ece": _point_ece(parts), "low": float(np.quantile(boot, a)),
            "high": float(np.quantile(boot, 1 - a)), "calibrated_median": float(np.median(chance)),
            "calibrated_high": float(np.quantile(chance, level)),
            "samples": samples, "level": level}


def paired_ece(a: list[FactMatch], b: list[FactMatch], doc_ids: list[str], bins: int = 10,
               samples: int = BOOTSTRAP_SAMPLES, seed: int = 0, level: float = 0.95) -> dict:
    """ECE of A minus that of B on the same resampled documents: the difference, its percentile interval and
    the share of samples where A's is lower. "A is better calibrated" only when the whole interval lies below
    zero (`a_better`)."""
    pa, pb = _ece_parts(a, doc_ids, bins), _ece_parts(b, doc_ids, bins)
    if pa is None or pb is None:
        return {"diff": None, "low": None, "high": None, "p_a_better": None, "a_better": False, "b_better": False}
    idx = _resample(len(doc_ids), samples, seed)
    return _paired_summary(_point_ece(pa) - _point_ece(pb), _boot_ece(pa, idx) - _boot_ece(pb, idx),
                           samples, level, higher_is_better=False)


def _paired_summary(diff: float, d, samples: int, level: float, higher_is_better: bool = True) -> dict:
    """A − B (`diff`) with the percentile interval of its resampled values `d` and the share of samples where
    A is better; A (B) is called better only when the whole interval lies on its side of zero."""
    import numpy as np

    q = (1 - level) / 2
    low, high = float(np.quantile(d, q)), float(np.quantile(d, 1 - q))
    if higher_is_better:
        p, a_better, b_better = (d > 0).mean(), low > 0, high < 0
    else:
        p, a_better, b_better = (d < 0).mean(), high < 0, low > 0
    return {"diff": float(diff), "low": low, "high": high, "p_a_better": float(p), "a_better": a_better,
            "b_better": b_better, "samples": samples, "level": level}


def paired_bootstrap(a: list[FactMatch], b: list[FactMatch], doc_ids: list[str], samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = 0, level: float = 0.95) -> dict:
    """Fact F1 of A minus that of B on the same resampled documents: the difference, its percentile
    interval and the share of samples where A is better. "A beats B" is claimed only when the whole
    interval lies above zero (`a_better`)."""
    if not doc_ids:
        return {"diff": None, "low": None, "high": None, "p_a_better": None, "a_better": False, "b_better": False}
    return paired_bootstrap_counts(_doc_counts(a, doc_ids), _doc_counts(b, doc_ids), samples, seed, level)


def paired_bootstrap_counts(ca, cb, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0, level: float = 0.95) -> dict:
    """`paired_bootstrap` from per-document (tp, predicted, gold) counts [n_docs, 3] of A and B (as kept by
    a cross-validation, whose documents were scored in different runs)."""
    import numpy as np

    ca, cb = np.asarray(ca, dtype=float), np.asarray(cb, dtype=float)
    idx = _resample(len(ca), samples, seed)
    return _paired_summary(_f1(ca.sum(axis=0)) - _f1(cb.sum(axis=0)), _f1(ca[idx].sum(axis=1)) - _f1(cb[idx].sum(axis=1)),
                           samples, level)


def label_counts(matches: list[FactMatch]) -> dict[str, list[int]]:
    """Per label a prediction or a gold span carries: [tp, predicted, gold] fact counts."""
    out: dict[str, list[int]] = {}
    for m in matches:
        if m.pred is not None:
            out.setdefault(m.pred.label, [0, 0, 0])[1] += 1
        if m.gold is not None:
            out.setdefault(m.gold.label, [0, 0, 0])[2] += 1
            if m.kind == "tp":
                out[m.gold.label][0] += 1
    return out


def doc_counts(matches: list[FactMatch], doc_ids: list[str]) -> list[list[int]]:
    """Per document of `doc_ids`: [tp, predicted, gold] fact counts."""
    return [[int(x) for x in row] for row in _doc_counts(matches, doc_ids)]


def f1_of_counts(counts) -> float:
    """Micro fact F1 of summed (tp, predicted, gold) counts."""
    import numpy as np

    return float(_f1(np.asarray(counts, dtype=float).reshape(-1, 3).sum(axis=0)))
