"""Label audit: where the cross-validated tagger confidently disagrees with the gold annotations.

Every annotated document is held out once per seed in cross-validation, so each one has predictions of
models that never trained on it. Where the runs of every seed agree with one another and not with the
gold (another label on the same quantity, a confident claim nobody annotated, or a gold span no run
finds), either the model has a systematic gap or the annotation breaks the label contract; in a corpus
annotated over many rounds the second is common, and such spans teach the model to hesitate on exactly
the boundaries it is scored on. The audit lists these cases, most confident first, for an annotator to
decide against `labels.md` (numbers an annotator already recorded as not tagged are not listed again);
it changes nothing itself (confident learning, Northcutt et al. 2021).
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from govfacts.annotations import AnnotatedDoc, load_corpus
from govfacts.atomic import write_text_atomic


@dataclass(frozen=True)
class Suspect:
    """One gold/prediction disagreement shared by the runs."""

    doc_id: str
    start: int
    end: int
    kind: str  # relabel (another label on a gold span) | unannotated (a claim no gold span holds) | missed
    gold: Optional[str]
    predicted: Optional[str]
    runs: int  # runs (seeds) that agree on the disagreement
    confidence: float  # their mean confidence (0 for missed)
    context: str


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def read_runs(folders: Iterable[str | Path]) -> list[dict]:
    """The stored fold results (one JSON per recipe, fold and seed) of cross-validation output folders."""
    runs = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            x = json.loads(path.read_text(encoding="utf-8"))
            if "spans" in x.get("tagger", {}):
                runs.append(x)
    return runs


def audit(runs: list[dict], docs: dict[str, AnnotatedDoc], min_runs: Optional[int] = None,
          min_confidence: float = 0.6, width: int = 30) -> list[Suspect]:
    """Disagreements every one of `min_runs` runs (default: all runs that held the document out) shares."""
    preds: dict[str, list[list]] = defaultdict(list)  # doc → one list of spans per run that held it out
    for x in runs:
        for doc_id in x["docs"]:
            preds[doc_id].append(x["tagger"]["spans"].get(doc_id, []))
    out: list[Suspect] = []
    for doc_id in sorted(preds):
        doc = docs.get(doc_id)
        if doc is None:
            continue
        per_run = preds[doc_id]
        need = min_runs or len(per_run)

        def ctx(s: int, e: int) -> str:
            return (doc.text[max(0, s - width):s] + "[" + doc.text[s:e] + "]" + doc.text[e:e + width // 2]) \
                .replace("\n", "⏎")

        gold = [(g.start, g.end, g.label) for g in doc.spans]
        for s, e, label in gold:
            hits = []
            for spans in per_run:
                best = max(spans, key=lambda p: _overlap((s, e), (p[0], p[1])), default=None)
                hits.append(best if best is not None and _overlap((s, e), (best[0], best[1])) else None)
            if all(h is None for h in hits) and len(hits) >= need:
                out.append(Suspect(doc_id, s, e, "missed", label, None, len(hits), 0.0, ctx(s, e)))
                continue
            other = defaultdict(list)
            for h in hits:
                if h is not None and h[2] != label:
                    other[h[2]].append(float(h[3]))
            for plabel, confs in other.items():
                mean = sum(confs) / len(confs)
                if len(confs) >= need and mean >= min_confidence:
                    out.append(Suspect(doc_id, s, e, "relabel", label, plabel, len(confs), round(mean, 3), ctx(s, e)))
        claims: dict[tuple[int, int, str], list[float]] = defaultdict(list)
        for spans in per_run:
            for p in spans:
                if not any(_overlap((p[0], p[1]), (g[0], g[1])) for g in gold):
                    claims[(int(p[0]), int(p[1]), p[2])].append(float(p[3]))
        for (s, e, plabel), confs in claims.items():
            mean = sum(confs) / len(confs)
            reviewed = list(doc.ignore) + [(int(n["start"]), int(n["end"])) for n in doc.not_tagged]
            if len(confs) >= need and mean >= min_confidence and not any(_overlap((s, e), r) for r in reviewed):
                out.append(Suspect(doc_id, s, e, "unannotated", None, plabel, len(confs), round(mean, 3), ctx(s, e)))
    order = {"relabel": 0, "unannotated": 1, "missed": 2}
    return sorted(out, key=lambda x: (order[x.kind], -x.confidence, x.doc_id, x.start))


def markdown(suspects: list[Suspect]) -> str:
    lines = ["# Label audit: cross-validated disagreements", "",
             f"{len(suspects)} cases ({', '.join(f'{k} {sum(x.kind == k for x in suspects)}' for k in ('relabel', 'unannotated', 'missed'))}).",
             "", "| kind | document | gold | predicted | runs | confidence | text |", "|---|---|---|---|---|---|---|"]
    for x in suspects:
        lines.append(f"| {x.kind} | {x.doc_id} | {x.gold or ''} | {x.predicted or ''} | {x.runs} | "
                     f"{x.confidence:.2f} | {x.context.replace('|', '¦')} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m govfacts.train.audit", description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="cross-validation results folders (one per seed)")
    ap.add_argument("--annotations", default="annotations")
    ap.add_argument("--min-confidence", type=float, default=0.6)
    ap.add_argument("--out", default=None, help="markdown file (default: print)")
    a = ap.parse_args(argv)
    text = markdown(audit(read_runs(a.results), load_corpus(a.annotations), min_confidence=a.min_confidence))
    if a.out:
        write_text_atomic(Path(a.out), text)
    else:
        print(text)


if __name__ == "__main__":
    main()
