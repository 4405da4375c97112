"""What does the confidence map cost at extraction? `extract_documents` with the model's map and without one,
side by side in one process (alternating, best of N), and the rules-agreement checks the map reads, timed
over the same documents' spans; CPU flags recorded.

    .venv/bin/python bench/confidence_overhead.py [--model DIR] [--repeat 3] [--copies 4] [--isa avx2]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import isa  # noqa: E402  (bench/isa.py: --isa avx2)
from in_process import sample_documents, warmed_extractor  # noqa: E402
from machine import cpu_info  # noqa: E402

from govfacts.infer.api import extract_documents  # noqa: E402
from govfacts.infer.confidence import rules_agree
from govfacts.infer.hints import rule_spans
from govfacts.infer.loader import extractor_id
from govfacts.textview import build_view


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: configs/infer.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--copies", type=int, default=4)
    isa.add_option(ap, "the whole run")
    a = ap.parse_args()
    isa.reexec(a.isa)
    docs = sample_documents(a.copies)
    chars = sum(len(d.text) for d in docs)
    ex = warmed_extractor(a.model, docs)
    tagger = getattr(ex, "extractor", ex)
    cmap = tagger.options.confidence
    if cmap is None:
        sys.exit(f"{extractor_id(ex)} has no confidence map to measure")
    best = {"map": float("inf"), "none": float("inf")}
    facts = {}
    for _ in range(a.repeat):
        for name, m in (("none", None), ("map", cmap)):
            tagger.options.confidence = m
            t0 = time.perf_counter()
            out = extract_documents(ex, docs, tables=False)
            best[name] = min(best[name], time.perf_counter() - t0)
            facts[name] = [(f.start, f.end, f.metric) for fs in out for f in fs]
    tagger.options.confidence = cmap
    # the agreement checks alone: each document's spans against its rules spans (computed once per view)
    views = [build_view(d.text) for d in docs]
    spans = [tagger.spans(d.text) for d in docs]
    ruled = [rule_spans(v, tagger.rules) for v in views] if tagger.rules is not None else [[] for _ in views]
    t0 = time.perf_counter()
    checks = sum(rules_agree(s.start, s.end, s.label, r) for ss, r in zip(spans, ruled) for s in ss)
    agree_s = time.perf_counter() - t0
    res = {"extractor": extractor_id(ex), "documents": len(docs), "chars": chars, "cpu": cpu_info(), "isa": isa.current(),
           "no_map_s": round(best["none"], 3), "map_s": round(best["map"], 3),
           "ratio": round(best["map"] / best["none"], 3), "same_spans": facts["map"] == facts["none"],
           "agreement_checks": sum(map(len, spans)), "agreeing": int(checks), "agreement_checks_s": round(agree_s, 4)}
    print(json.dumps(res, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
