"""Does reading the template tables slow extraction down? `extract_documents` with and without table
facts over the same corpus, side by side in one process (alternating, best of N), CPU flags recorded.

    .venv/bin/python bench/tables_overhead.py [--model rules|DIR] [--repeat 3] [--copies 4]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from in_process import sample_documents, warmed_extractor  # noqa: E402
from machine import cpu_info  # noqa: E402

from govfacts.infer.api import extract_documents  # noqa: E402
from govfacts.infer.loader import extractor_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="default: configs/infer.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--copies", type=int, default=4)
    a = ap.parse_args()
    docs = sample_documents(a.copies)
    chars = sum(len(d.text) for d in docs)
    ex = warmed_extractor(a.model, docs)
    best = {True: float("inf"), False: float("inf")}
    facts = {}
    for _ in range(a.repeat):
        for tables in (False, True):
            t0 = time.perf_counter()
            out = extract_documents(ex, docs, tables=tables)
            best[tables] = min(best[tables], time.perf_counter() - t0)
            facts[tables] = sum(map(len, out))
    res = {"extractor": extractor_id(ex), "documents": len(docs), "chars": chars, "cpu": cpu_info(),
           "prose_only_s": round(best[False], 3), "with_tables_s": round(best[True], 3),
           "ratio": round(best[True] / best[False], 3), "facts_prose_only": facts[False],
           "facts_with_tables": facts[True]}
    print(json.dumps(res, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
