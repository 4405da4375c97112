"""Robustness of an extractor, CheckList-style: the same claim written the other ways reports write it
must give the same fact, and real sentences whose quantities are not disclosure claims must give none.

Cases are the sentences of the held-out gold documents (dev and test splits) that hold a gold claim.
Each transformation rewrites every gold claim of a sentence it applies to — Chinese numerals
(`1136件` → `一千一百三十六件`), thousands separators, full-width digits, 万 units (`22400次` →
`2.24万次`), a hedge (`约`), PDF spacing and a hard line break, traditional script — and moves the gold
spans with it; the metric and value of each claim stay the same. A transformation is scored on the
sentences it changed, by fact-level matching (same label, overlapping span, same value), against the
same sentences untransformed (`original`). The distractor sets (`annotations/robustness/distractors*.json`:
real sentences about social insurance, approvals, tourism …, never trained on) are scored by the share of
sentences that give no fact at all, over all sets and per set.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

from govfacts.annotations import AnnotatedDoc, read_tasks, task_to_doc
from govfacts.claims import SENT_ENDS
from govfacts.infer.api import extract_documents
from govfacts.infer.loader import extractor_id
from govfacts.paths import ANNOTATIONS
from govfacts.records import Document, Span
from govfacts.numforms import REWRITES, Rewrite
from govfacts.scoring import match_spans, prf_of

DISTRACTORS = ANNOTATIONS / "robustness"  # distractors.json, distractors-2.json, … (collected from disjoint pages)
@dataclass
class Case:
    """One sentence with its gold claims (offsets into `text`)."""

    case_id: str
    text: str
    spans: list[Span]
    source: str = ""  # the file a distractor comes from (per-set scores)


@lru_cache(maxsize=1)
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def sentence_cases(docs: Sequence[AnnotatedDoc]) -> list[Case]:
    """The sentences of `docs` that hold a gold claim (claims that cross a sentence end are skipped)."""
    out = []
    for doc in docs:
        pos = 0
        for n, sent in enumerate(re.split(r"(?<=[" + re.escape(SENT_ENDS) + "])", doc.text)):
            a, b = pos, pos + len(sent)
            pos = b
            inside = [s for s in doc.spans if a <= s.start and s.end <= b]
            if inside and not any(s.start < b < s.end or s.start < a < s.end for s in doc.spans):
                out.append(Case(f"{doc.doc_id}#{n}", sent, [Span(s.start - a, s.end - a, s.label, s.text)
                                                            for s in inside]))
    return out


def transform(case: Case, rw: Rewrite) -> Optional[Case]:
    """`case` with every claim rewritten by `rw` (None when it changes nothing)."""
    if rw.whole_sentence:  # traditional script: the same length, the same offsets
        text = _s2t().convert(case.text)
        if len(text) != len(case.text) or text == case.text:
            return None
        return Case(case.case_id, text, [Span(s.start, s.end, s.label, text[s.start:s.end]) for s in case.spans])
    parts, spans, last, changed = [], [], 0, False
    for s in sorted(case.spans, key=lambda s: s.start):
        new = rw.fn(s.text)
        claim = s.text if new is None else new
        changed |= new is not None
        parts.append(case.text[last:s.start])
        start = sum(map(len, parts))
        parts.append(claim)
        spans.append(Span(start, start + len(claim), s.label, claim))
        last = s.end
    if not changed:
        return None
    text = "".join(parts) + case.text[last:]
    if rw.name == "pdf_spacing" and len(text) > 24:  # and a hard line break inside the sentence, as PDF text has
        cut = next((i for i in range(len(text) // 2, len(text)) if not any(x.start <= i < x.end for x in spans)), None)
        if cut:
            text = text[:cut] + "\n" + text[cut:]
            spans = [s if s.end <= cut else Span(s.start + 1, s.end + 1, s.label, s.text) for s in spans]
    return Case(case.case_id, text, spans)


def _facts(extractor, cases: Sequence[Case]) -> dict[str, list[Span]]:
    per = extract_documents(extractor, [Document(c.case_id, "", c.text) for c in cases], tables=False)
    return {c.case_id: [f.to_span() for f in fs] for c, fs in zip(cases, per)}


def score_cases(extractor, cases: Sequence[Case]) -> dict:
    preds = _facts(extractor, cases)
    matches = [m for c in cases for m in match_spans(c.case_id, c.spans, preds[c.case_id], "fact")]
    out = prf_of(matches)
    out["cases"] = len(cases)
    return out


def load_distractors(path: Path = DISTRACTORS) -> list[Case]:
    """The sentences of one distractor file, or of every `distractors*.json` of a directory."""
    files = sorted(path.glob("distractors*.json"), key=lambda f: (len(f.name), f.name)) if path.is_dir() else [path]
    return [Case(d.doc_id, d.text, [], f.name) for f in files for d in map(task_to_doc, read_tasks(f))]


def distractor_score(extractor, cases: Sequence[Case]) -> dict:
    preds = _facts(extractor, cases)
    hits = {k: v for k, v in preds.items() if v}

    def summary(ids: list[str]) -> dict:
        hit = [k for k in ids if k in hits]
        return {"sentences": len(ids), "clean": 1 - len(hit) / max(1, len(ids)),
                "false_facts": sum(len(hits[k]) for k in hit)}

    out = summary([c.case_id for c in cases])
    sets = list(dict.fromkeys(c.source for c in cases))
    if len(sets) > 1:
        out["by_set"] = {s: summary([c.case_id for c in cases if c.source == s]) for s in sets}
    out["examples"] = [{"case": k, "text": next(c.text for c in cases if c.case_id == k),
                        "facts": [(s.label, s.text) for s in v]} for k, v in list(hits.items())[:20]]
    return out


@dataclass
class RobustnessReport:
    models: dict[str, dict] = field(default_factory=dict)  # model id -> {transform: scores, "distractors": ...}
    cases: dict[str, int] = field(default_factory=dict)


def run(extractors: Sequence, docs: Sequence[AnnotatedDoc], distractors: Optional[Sequence[Case]] = None
        ) -> RobustnessReport:
    base = sentence_cases(docs)
    suites = {"original": base}
    for rw in REWRITES:
        changed = [t for t in (transform(c, rw) for c in base) if t is not None]
        suites[rw.name] = changed
    rep = RobustnessReport(cases={k: len(v) for k, v in suites.items()})
    for ex in extractors:
        res: dict = {}
        for name, cases in suites.items():
            res[name] = score_cases(ex, cases)
            if name != "original":  # the same sentences before the rewrite, for a fair comparison
                ids = {c.case_id for c in cases}
                res[name]["original_f1"] = score_cases(ex, [c for c in base if c.case_id in ids])["f1"]
        if distractors is not None:
            res["distractors"] = distractor_score(ex, distractors)
        rep.models[extractor_id(ex)] = res
    return rep


def markdown(rep: RobustnessReport) -> str:
    names = list(rep.models)
    head = "| transformation | sentences | " + " | ".join(f"{n} fact F1 (same sentences untransformed)" for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + len(names))]
    for t, n in rep.cases.items():
        cells = []
        for m in names:
            r = rep.models[m][t]
            cells.append(f"{r['f1']:.3f}" + (f" ({r['original_f1']:.3f})" if "original_f1" in r else ""))
        lines.append(f"| {t} | {n} | " + " | ".join(cells) + " |")
    if all("distractors" in rep.models[m] for m in names):
        d0 = rep.models[names[0]]["distractors"]
        lines.append(f"| distractors: share without a fact | {d0['sentences']} | " + " | ".join(
            f"{rep.models[m]['distractors']['clean']:.3f} ({rep.models[m]['distractors']['false_facts']} facts)"
            for m in names) + " |")
        for s, v in d0.get("by_set", {}).items():
            lines.append(f"| distractors: {s} | {v['sentences']} | " + " | ".join(
                f"{rep.models[m]['distractors']['by_set'][s]['clean']:.3f} "
                f"({rep.models[m]['distractors']['by_set'][s]['false_facts']} facts)" for m in names) + " |")
    return "\n".join(lines)
