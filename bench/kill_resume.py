"""A run killed every N seconds still finishes, with the facts of an uninterrupted run.

    .venv/bin/python bench/kill_resume.py [--every 20] [--model DEFAULT] [--json out.json]

Corpus: the bundled sample reports x4 plus one 2 MB report (a sample repeated). First an uninterrupted
`govfacts extract` (the reference), then `govfacts extract --resume` started again and again, each run
SIGKILLed after `--every` seconds, until one finishes. Printed: the reference's seconds, the number of
kills, the total wall time, whether the output equals the reference (facts per document, in order), and
the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_info  # noqa: E402  (bench/machine.py)
from whole_process import build_corpus  # noqa: E402

from govfacts.infer.batch import journal_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def by_doc(path: Path) -> dict:
    out = defaultdict(list)
    for line in open(path, encoding="utf-8"):
        rec = json.loads(line)
        rec.pop("extractor", None)
        out[rec["path"]].append(rec)
    return dict(out)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--every", type=float, default=20.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--max-runs", type=int, default=60)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    info = cpu_info()
    print(f"CPU: {info['model']}, {info['cpus']} CPUs, SIMD: {info['simd_flags']}")
    work = Path(tempfile.mkdtemp(prefix="govfacts-kill-"))
    try:
        corpus = work / "corpus"
        chars = build_corpus(corpus, 4)
        text = (ROOT / "data" / "samples" / "gov-pingtan-2021.txt").read_text(encoding="utf-8") + "\n"
        big = text * (2_000_000 // len(text.encode("utf-8")) + 1)
        (corpus / "big-2mb.txt").write_text(big, encoding="utf-8")
        chars += len(big)
        base = [sys.executable, "-m", "govfacts.cli", "extract", str(corpus), "-q",
                *(["-m", a.model] if a.model else [])]
        t0 = time.perf_counter()
        subprocess.run([*base, "-o", str(work / "ref.jsonl")], check=True, cwd=ROOT)
        ref_secs = time.perf_counter() - t0
        print(f"uninterrupted: {chars:,} chars in {ref_secs:.1f} s")
        out = work / "facts.jsonl"
        kills, t0 = 0, time.perf_counter()
        for run in range(a.max_runs):
            proc = subprocess.Popen([*base, "-o", str(out), *(["--resume"] if run else [])], cwd=ROOT)
            try:
                proc.wait(timeout=a.every)
                break
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills += 1
                journal = journal_path(out)
                lines = sum(1 for _ in open(journal, encoding="utf-8")) if journal.exists() else 0
                print(f"  killed after {a.every:.0f} s (run {run + 1}); journal holds {lines} records")
        total = time.perf_counter() - t0
        same = out.exists() and by_doc(out) == by_doc(work / "ref.jsonl")
        result = {"cpu": info, "chars": chars, "uninterrupted_s": round(ref_secs, 1), "every_s": a.every,
                  "kills": kills, "killed_runs_total_s": round(total, 1), "finished": out.exists(),
                  "same_facts": same, "facts": sum(1 for _ in open(out, encoding="utf-8")) if out.exists() else 0}
        print(json.dumps(result, ensure_ascii=False))
        if a.json:
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
        if not same:
            raise SystemExit("the interrupted run did not give the uninterrupted run's facts")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
