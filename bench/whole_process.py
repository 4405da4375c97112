"""Whole-process throughput: `govfacts extract` vs a naive transformers pipeline, each a fresh process.

    .venv/bin/python bench/whole_process.py [--sizes 1,16] [--naive-sizes 1,16] [--variants auto,torch-int8]
                                            [--model models/govfacts-tagger-zh] [--isa native|avx2]
                                            [--json out.json]

What a user waits for: start-up (imports, model loading) included. Corpus 1x = the bundled sample
reports x4 (each copy its own file, prefixed with its copy number); Nx holds N times as many files.

* naive: a child process that imports transformers, builds `pipeline("token-classification",
  aggregation_strategy="simple")` with the same weights (and, with `--naive-models`, with other weights too,
  e.g. the previous default's: what the same job cost before) and runs it once per sentence (split on
  。！？；and line ends, pieces over 500 chars cut), writing the entities as JSON lines.
* govfacts: `govfacts extract CORPUS -o OUT.jsonl -q [--runtime R --int8|--fp32]` as a child process
  (`auto`: the configured default, whose runtime choice is measured once per machine before the timed
  runs, as the first use on a machine does).

Printed per run: seconds (the best of `--repeat` runs, taken in turn: this machine's speed drifts between
runs), chars/s, peak RSS of the child (psutil, every 100 ms), facts/entities; then
each govfacts run's ratio to the naive run of the same size, the CPU model and SIMD flags, and the
start-up: seconds of `govfacts extract` over one short report. `--isa avx2` runs everything (naive
pipeline included) as on a plain AVX2 CPU (bench/isa.py).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import isa  # noqa: E402  (bench/isa.py: --isa avx2)
import throughput  # noqa: E402  (bench/throughput.py: the same corpus and sentence cut)
from machine import cpu_info  # noqa: E402  (bench/machine.py)

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
GOVFACTS = [PY, "-m", "govfacts.cli"]


def build_corpus(out: Path, copies: int) -> int:
    """`copies` copies of every sample report, one file each (`throughput.build_corpus`); returns the
    number of characters."""
    return throughput.build_corpus(out, 1, copies)[1]


def timed(cmd: list[str]) -> dict:
    """Run `cmd`; wall seconds and the peak RSS of its process tree."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.1)
    secs = time.perf_counter() - t0
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-2000:]}")
    return {"seconds": round(secs, 2), "peak_rss_mb": round(peak / 2**20, 1), "stdout": out}


def naive_child(model: str, corpus: str, out: str) -> None:
    """The naive pipeline, start-up included (runs in its own process)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    tok = AutoTokenizer.from_pretrained(model)
    pipe = pipeline("token-classification", model=AutoModelForTokenClassification.from_pretrained(model),
                    tokenizer=tok, aggregation_strategy="simple", device="cpu")
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for f in sorted(Path(corpus).glob("*.txt")):
            for s in throughput.sentences(open(f, encoding="utf-8").read()):
                for ent in pipe(s):
                    fh.write(json.dumps({"file": f.name, "label": ent["entity_group"], "text": ent["word"]},
                                        ensure_ascii=False) + "\n")
                    n += 1
    print(n)


def naive_name(model: str, default: str) -> str:
    """`naive` for the naive pipeline with the benchmarked model's weights, `naive (NAME)` with others'."""
    return "naive" if model == default else f"naive ({Path(model).name})"


def variant_args(variant: str) -> list[str]:
    """`auto` (the configured defaults) or `RUNTIME-int8|fp32`, each optionally followed by `@wN`
    (`--workers N`) and `@bN` (`--batch-size N`), e.g. `auto@w0`, `auto@b16`, `onnx-int8@w2@b8`."""
    variant, *options = variant.split("@")
    extra = []
    for o in options:
        if o[:1] not in ("w", "b") or not o[1:].isdigit():
            raise ValueError(f"variant option {o!r}: expected wN (workers) or bN (batch size)")
        extra += ["--workers" if o[0] == "w" else "--batch-size", o[1:]]
    if variant == "auto":
        return extra
    runtime, _, weights = variant.rpartition("-")
    return ["--runtime", runtime, "--int8" if weights == "int8" else "--fp32", *extra]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "govfacts-tagger-zh"))
    ap.add_argument("--sizes", default="1,16")
    ap.add_argument("--naive-sizes", default="1,16")
    ap.add_argument("--naive-models", default="",
                    help="comma-separated further weights the naive pipeline also runs with (e.g. the previous "
                         "default), each its own row and ratio column; it always runs with --model")
    ap.add_argument("--also-models", default="",
                    help="comma-separated further weights `govfacts extract` also runs with (e.g. a distilled "
                         "student beside the default), each variant its own row, in turn with the others")
    ap.add_argument("--variants", default="auto,torch-int8", help="auto (the default) or RUNTIME-int8/fp32, "
                    "each optionally @wN (--workers N) and @bN (--batch-size N), e.g. auto,auto@w0,auto@b16")
    ap.add_argument("--repeat", type=int, default=1, help="runs per row, best kept (naive at sizes > 1: once)")
    isa.add_option(ap, "every run (naive pipeline included)")
    ap.add_argument("--json")
    ap.add_argument("--naive-child", nargs=3, metavar=("MODEL", "CORPUS", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.naive_child:
        return naive_child(*a.naive_child)
    isa.reexec(a.isa)
    sizes = [int(x) for x in a.sizes.split(",") if x]
    naive_sizes = [int(x) for x in a.naive_sizes.split(",") if x]
    variants = [v for v in a.variants.split(",") if v]
    naive_models = [a.model] + [m for m in a.naive_models.split(",") if m and m != a.model]
    govfacts_models = [a.model] + [m for m in a.also_models.split(",") if m and m != a.model]
    info = cpu_info()
    print(f"CPU: {info['model']}, {info['cpus']} CPUs, SIMD: {info['simd_flags']} (AVX-512: {info['avx512']})"
          + isa.hidden_note(info))
    work = Path(tempfile.mkdtemp(prefix="govfacts-bench-"))
    results = []
    try:
        one = work / "one"
        one.mkdir()
        shutil.copy(ROOT / "data" / "samples" / "hrss-zhengzhou-2017.txt", one)
        # the runtime choice (and ONNX export) a machine makes once: before the timed runs
        for m in govfacts_models:
            timed([*GOVFACTS, "extract", str(one), "-o", str(work / "warm.jsonl"), "-q", "-v", "-m", m])
        start = timed([*GOVFACTS, "extract", str(one), "-o", str(work / "one.jsonl"), "-q", "-m", a.model])
        print(f"start-up: `govfacts extract` over one {len((one / 'hrss-zhengzhou-2017.txt').read_text())}-char "
              f"report, whole process: {start['seconds']} s")
        results.append({"path": "start-up (one short report)", **{k: v for k, v in start.items() if k != "stdout"}})
        for size in sorted(set(sizes) | set(naive_sizes)):
            corpus = work / f"x{size}"
            chars = build_corpus(corpus, 4 * size)
            rows = []  # (name, command, is naive)
            if size in naive_sizes:
                for k, m in enumerate(naive_models):
                    rows.append((naive_name(m, a.model), [PY, str(Path(__file__).resolve()), "--naive-child", m,
                                                          str(corpus), str(work / f"naive{k}-{size}.jsonl")], True))
            if size in sizes:
                rows += [(f"govfacts {v}" + ("" if m == a.model else f" ({Path(m).name})"),
                          [*GOVFACTS, "extract", str(corpus), "-o", str(work / f"{v}-{k}-{size}.jsonl"), "-q", "-m", m,
                           *variant_args(v)], False) for k, m in enumerate(govfacts_models) for v in variants]
            best: dict[str, dict] = {}
            for rep in range(a.repeat):
                for name, cmd, naive in rows:
                    if naive and size > 1 and rep:
                        continue
                    r = timed(cmd)
                    if name not in best or r["seconds"] < best[name]["seconds"]:
                        best[name] = r
            for name, cmd, naive in rows:
                r = best[name]
                row = {"path": name, "size": size, "chars": chars, "seconds": r["seconds"],
                       "chars_per_s": round(chars / r["seconds"]), "peak_rss_mb": r["peak_rss_mb"]}
                if naive:
                    row["entities"] = int(r["stdout"].split()[-1])
                else:
                    row["facts"] = sum(1 for _ in open(cmd[cmd.index("-o") + 1], encoding="utf-8"))
                results.append(row)
                print(json.dumps(row))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = [naive_name(m, a.model) for m in naive_models]
    naive = {(r["path"], r["size"]): r["seconds"] for r in results if r["path"] in names}
    print("\n| run | size | chars | seconds | chars/s | " + " | ".join(f"ratio to {n}" for n in names)
          + " | peak RSS (MB) |\n|---|---:|---:|---:|---:|" + "---:|" * len(names) + "---:|")
    for r in results:
        if "size" not in r:
            continue
        ratios = [f"{naive[(n, r['size'])] / r['seconds']:.1f}x" if (n, r["size"]) in naive else "-" for n in names]
        print(f"| {r['path']} | {r['size']}x | {r['chars']:,} | {r['seconds']} | {r['chars_per_s']:,} | "
              f"{' | '.join(ratios)} | {r['peak_rss_mb']} |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"cpu": info, "isa": isa.current(), "model": a.model,
                                            "naive_models": naive_models, "govfacts_models": govfacts_models,
                                            "results": results},
                                           ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
