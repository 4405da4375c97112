"""The one reader and writer of fact files (.jsonl, .csv, .parquet), always written atomically."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable

from govfacts.atomic import atomic_path
from govfacts.records import FACT_FIELDS, Fact

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: output must end in .jsonl, .csv or .parquet")
    return FORMATS[suffix]


def write_facts(path: str | Path, facts: Iterable[Fact]) -> int:
    fmt = output_format(path)
    rows = [f.to_dict() for f in facts]
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=FACT_FIELDS)
                w.writeheader()
                w.writerows(rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {k: [r[k] for r in rows] for k in FACT_FIELDS}
            pq.write_table(pa.table(cols), tmp)
    return len(rows)


def read_facts(path: str | Path) -> list[Fact]:
    fmt = output_format(path)
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as fh:
            return [Fact.from_dict(json.loads(line)) for line in fh if line.strip()]
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as fh:
            out = []
            for r in csv.DictReader(fh):
                for k in ("value", "confidence"):
                    r[k] = float(r[k]) if r[k] not in ("", None) else None
                for k in ("start", "end", "evidence_start", "evidence_end"):
                    if k in r:
                        r[k] = int(r[k]) if r[k] not in ("", None) else -1
                r["year"] = int(r["year"]) if r.get("year") else None
                r["agency"] = r.get("agency") or None
                r["cell"] = r.get("cell") or None
                r["source"] = r.get("source") or "prose"
                out.append(Fact.from_dict(r))
            return out
    import pyarrow.parquet as pq

    return [Fact.from_dict(r) for r in pq.read_table(path).to_pylist()]
