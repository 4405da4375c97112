"""How long does `govfacts summarize` take on a corpus of 10,000 reports? A facts file of N reports is
built from the bundled samples' facts (each report copied with its agency, year and doc_id varied), then the
`summarize` command runs on it as a user runs it (a fresh process each time: start-up, imports, reading,
pages), once with the code of a baseline revision and once with the working tree, side by side in one run;
the outputs of the two are compared (facts_wide.csv, facts_wide.parquet, summary.html).

    .venv/bin/python bench/summarize.py [--reports 10000] [--baseline REV] [--repeat 3] [--json OUT]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AGENCIES = 700  # agencies per sample report: 10,000 reports give agencies with a run of years each


def sample_facts(work: Path, model: str) -> list[dict]:
    """The samples' facts, extracted once (cached in `work`)."""
    path = work / f"samples-{model.replace('/', '_')}.jsonl"
    if not path.exists():
        subprocess.run([sys.executable, "-m", "govfacts.cli", "extract", str(ROOT / "data" / "samples"),
                        "-o", str(path), "--model", model, "-q"], check=True, cwd=ROOT, env=_env(ROOT))
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def build(rows: list[dict], reports: int, path: Path) -> tuple[int, int]:
    """A facts file of `reports` reports: copy k of a sample report gets doc_id `<doc>~k`, the agency
    `<agency>·<k mod AGENCIES>` and the year + k // AGENCIES (a report without agency or year keeps none)."""
    by_doc: dict[str, list[dict]] = {}
    for r in rows:
        by_doc.setdefault(r["doc_id"], []).append(r)
    docs, n, facts = list(by_doc), 0, 0
    with open(path, "w", encoding="utf-8") as fh:
        k = 0
        while n < reports:
            for d in docs:
                if n == reports:
                    break
                for r in by_doc[d]:
                    c = dict(r, doc_id=f"{d}~{k}", path=f"{r['path']}~{k}")
                    if r["agency"]:
                        c["agency"] = f"{r['agency']}·{k % AGENCIES}"
                    if r["year"]:
                        c["year"] = r["year"] + k // AGENCIES
                    fh.write(json.dumps(c, ensure_ascii=False) + "\n")
                    facts += 1
                n += 1
            k += 1
    return n, facts


def _env(code: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code))
    env.pop("GOVFACTS_CACHE", None)
    return env


def baseline_code(rev: str, work: Path) -> Path:
    """`govfacts/` and `configs/` of revision `rev`, unpacked under `work` (the other layers are imported as
    installed; `summarize` does not change them)."""
    dest = work / f"code-{rev}"
    if not dest.exists():
        tar = subprocess.run(["git", "archive", rev, "govfacts", "configs"], cwd=ROOT, check=True,
                             capture_output=True).stdout
        tarfile.open(fileobj=io.BytesIO(tar)).extractall(dest, filter="data")
    return dest


def run(code: Path, facts: Path, out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "govfacts.cli", "summarize", str(facts), "--out", str(out)],
                   check=True, cwd=code, env=_env(code), stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def same_outputs(a: Path, b: Path) -> dict:
    import pyarrow.parquet as pq

    return {"facts_wide.csv": (a / "facts_wide.csv").read_bytes() == (b / "facts_wide.csv").read_bytes(),
            "facts_wide.parquet": pq.read_table(a / "facts_wide.parquet").equals(pq.read_table(b / "facts_wide.parquet")),
            "summary.html": (a / "summary.html").read_bytes() == (b / "summary.html").read_bytes()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reports", type=int, default=10_000)
    ap.add_argument("--model", default="rules", help="extractor of the sample facts (default: rules)")
    ap.add_argument("--baseline", default="831c1dd", help="revision to compare with (default: 831c1dd, the "
                    "per-fact summarize); '' to time the working tree only")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    ap.add_argument("--work", type=Path, default=ROOT / "out" / "bench-summarize")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    facts = a.work / f"facts-{a.reports}.jsonl"
    rows = sample_facts(a.work, a.model)
    reports, n_facts = build(rows, a.reports, facts)
    codes = {"working tree": ROOT}
    if a.baseline:
        codes = {f"baseline {a.baseline}": baseline_code(a.baseline, a.work), **codes}
    best = {name: float("inf") for name in codes}
    for _ in range(a.repeat):  # alternating, so a busy spell of the machine hits both
        for name, code in codes.items():
            best[name] = min(best[name], run(code, facts, a.work / f"out-{list(codes).index(name)}"))
    res = {"reports": reports, "facts": n_facts, "facts_file_mb": round(facts.stat().st_size / 1e6, 1),
           "cpu": cpu_info(), "seconds": {k: round(v, 2) for k, v in best.items()}}
    if a.baseline:
        res["speedup"] = round(best[f"baseline {a.baseline}"] / best["working tree"], 1)
        res["same_outputs"] = same_outputs(a.work / "out-0", a.work / "out-1")
    text = json.dumps(res, ensure_ascii=False, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
