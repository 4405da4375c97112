"""Throughput of `govfacts extract` with a tagger vs a naive transformers pipeline, in ONE process.

    .venv/bin/python bench/throughput.py [--model models/govfacts-tagger-zh] [--mb 2] [--sizes 1,4,16]
                                         [--naive-sizes 1] [--variants int8,fp32] [--json out.json]

Corpus: data/samples/*.txt repeated (as separate files, each prefixed with its copy number) to at
least `--mb` MB of UTF-8 text; 4x and 16x are 4 and 16 times as many files.

(a) naive: `transformers.pipeline("token-classification", aggregation_strategy="simple")` with the
    same weights and tokenizer, called once per sentence (split on 。！？；and line ends; pieces over
    500 chars cut, the model's limit being 512 positions), the text read with `open().read()`.
    Pipeline construction is NOT timed.
(b) govfacts: `govfacts extract CORPUS -o OUT.jsonl -m MODEL -q --runtime torch|onnx --int8|--fp32`
    through the CLI entry point (typer app) in this process: discovery, reading, normalised view,
    windows, batched inference, decoding, facts, journal, atomic output. Model loading IS timed; the
    ONNX export (once per machine, cached) is done before the timed runs.

Printed per run: chars (document characters), seconds, chars/s, peak RSS during the run (sampled
every 10 ms with psutil) and the process RSS before it; then the govfacts/naive ratio and the
linearity of govfacts over 1x/4x/16x. Without a trained tagger at `--model`, a model of the same
architecture as configs/pretrain.yaml `model:` (tokenizer of models/govfacts-base-zh, or one built
from the samples) with a random token-classification head is built in a temp dir: speed does not
depend on the weights, except through the number of spans, so the random head's O bias is
raised to leave a trained tagger's few spans per thousand characters. `--f1` also reports strict entity F1 on the dev split for int8 vs fp32
(meaningful only for a trained tagger).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import isa  # noqa: E402  (bench/isa.py: --isa avx2)
from machine import cpu_info  # noqa: E402  (bench/machine.py)

ROOT = Path(__file__).resolve().parents[1]


# -- measuring -----------------------------------------------------------------------------------
class PeakRSS:
    """Peak resident set size of this process while the block runs (psutil sampling)."""

    def __init__(self, every: float = 0.01):
        import psutil

        self.proc = psutil.Process()
        self.every = every

    def __enter__(self):
        self.before = self.proc.memory_info().rss
        self.peak = self.before
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _mb(n: int) -> float:
    return round(n / 2**20, 1)


# -- inputs --------------------------------------------------------------------------------------
def build_model(out: Path) -> Path:
    """configs/pretrain.yaml `model:` BERT with a random token-classification head (47 IOB2 tags)."""
    import torch
    import yaml
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

    from govfacts.labels import default_labels

    labels = default_labels()
    base = ROOT / "models" / "govfacts-base-zh"
    if (base / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(base)
    else:
        from govfacts.train.vocab import build_tokenizer

        tok = build_tokenizer([p.read_text(encoding="utf-8") for p in (ROOT / "data" / "samples").glob("*.txt")],
                              out / "tok")
    arch = yaml.safe_load((ROOT / "configs" / "pretrain.yaml").read_text(encoding="utf-8"))["model"]
    fine = yaml.safe_load((ROOT / "configs" / "finetune.yaml").read_text(encoding="utf-8"))
    cfg = BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id or 0, num_labels=len(labels.bio_tags),
                     id2label=labels.id2label, label2id=labels.label2id, **arch)
    torch.manual_seed(0)
    model = BertForTokenClassification(cfg)
    with torch.no_grad():  # a random head that, like a trained tagger, says O almost everywhere
        model.classifier.bias[labels.label2id["O"]] = 6.0
    model.config.govfacts_max_len = int(fine.get("max_len", 256))
    model.config.govfacts_stride = int(fine.get("stride", 64))
    model.config.govfacts_temperature = 1.0
    model.config.govfacts_version = "bench-random-head"
    d = out / "bench-tagger"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def build_corpus(out: Path, min_bytes: int, copies_of: int) -> tuple[Path, int]:
    """`copies_of` x (samples repeated to >= min_bytes), one file per copy; returns (dir, chars)."""
    samples = sorted((ROOT / "data" / "samples").glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in samples]
    one = sum(len(t.encode("utf-8")) for t in texts)
    reps = -(-min_bytes // one) * copies_of
    out.mkdir(parents=True, exist_ok=True)
    chars = 0
    for r in range(reps):
        for p, t in zip(samples, texts):
            body = f"副本{r}\n{t}"
            (out / f"{r:04d}-{p.name}").write_text(body, encoding="utf-8")
            chars += len(body)
    return out, chars


# -- the two paths -------------------------------------------------------------------------------
_SENT = re.compile(r"[^。！？；\n]+[。！？；]?")


def sentences(text: str, limit: int = 500) -> list[str]:
    out = []
    for m in _SENT.finditer(text):
        s = m.group()
        if s.strip():
            out.extend(s[i:i + limit] for i in range(0, len(s), limit))
    return out


def run_naive(model_dir: Path, corpus: Path, threads: int) -> dict:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(model_dir)
    pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu")
    files = sorted(corpus.glob("*.txt"))
    chars = n_sent = n_ent = 0
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        for f in files:
            text = open(f, encoding="utf-8").read()
            chars += len(text)
            for s in sentences(text):
                n_sent += 1
                n_ent += len(pipe(s))
        secs = time.perf_counter() - t0
    del pipe, model
    gc.collect()
    return {"path": "naive", "chars": chars, "seconds": round(secs, 2), "chars_per_s": round(chars / secs),
            "peak_rss_mb": _mb(mem.peak), "rss_before_mb": _mb(mem.before), "sentences": n_sent, "entities": n_ent}


def variant_settings(variant: str) -> tuple[str, bool]:
    """`int8`, `fp32` (torch encoder) or `onnx-int8`, `onnx-fp32` (ONNX Runtime) → (runtime, int8)."""
    runtime, _, weights = variant.rpartition("-")
    return runtime or "torch", weights == "int8"


def variant_args(variant: str) -> list[str]:
    runtime, int8 = variant_settings(variant)
    return ["--runtime", runtime, "--int8" if int8 else "--fp32"]


def variant_tagger(model_dir: Path, variant: str):
    """The tagger `govfacts extract` runs for `variant` (loaded as it loads it: govfacts.infer.loader)."""
    from govfacts.infer.loader import InferSettings, load

    runtime, int8 = variant_settings(variant)
    return load(str(model_dir), InferSettings.load(quantize=int8, runtime=runtime))


def warm_onnx(model_dir: Path, variants: list[str]) -> None:
    """Export (and quantise) the ONNX graphs once, as the first use on a machine does; not timed."""
    for v in variants:
        if variant_settings(v)[0] == "onnx":
            variant_tagger(model_dir, v)


def run_govfacts(model_dir: Path, corpus: Path, out: Path, variant: str, extra: list[str]) -> dict:
    from govfacts.cli import app

    args = ["extract", str(corpus), "-o", str(out), "-m", str(model_dir), "-q", *variant_args(variant), *extra]
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        try:
            app(args, standalone_mode=False)
        except SystemExit as e:  # typer.Exit(1) when a file failed: none should
            if e.code:
                raise
        secs = time.perf_counter() - t0
    chars = sum(len(p.read_text(encoding="utf-8")) for p in corpus.glob("*.txt"))
    n_facts = sum(1 for _ in open(out, encoding="utf-8"))
    gc.collect()
    return {"path": f"govfacts-{variant}", "chars": chars, "seconds": round(secs, 2),
            "chars_per_s": round(chars / secs), "peak_rss_mb": _mb(mem.peak), "rss_before_mb": _mb(mem.before),
            "facts": n_facts, "args": " ".join(["govfacts", *args[:1], "CORPUS", *args[2:3], "OUT", *args[4:]])}


def dev_f1(model_dir: Path) -> dict:
    from govfacts.annotations import load_split
    from govfacts.paths import ANNOTATIONS
    from govfacts.train.finetune import evaluate

    docs = load_split("dev", ANNOTATIONS, ANNOTATIONS / "splits.yaml")
    out = {}
    for name in ("fp32", "int8", "onnx-fp32", "onnx-int8"):
        ev = evaluate(variant_tagger(model_dir, name), docs)
        out[name] = {k: round(ev[k], 4) for k in ("precision", "recall", "f1")}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "govfacts-tagger-zh"))
    ap.add_argument("--mb", type=float, default=2.0, help="corpus size of 1x in MB of UTF-8 text")
    ap.add_argument("--sizes", default="1,4,16", help="govfacts corpus multiples")
    ap.add_argument("--naive-sizes", default="1", help="naive corpus multiples (it is slow)")
    ap.add_argument("--variants", default="int8,onnx-fp32,onnx-int8,fp32",
                    help="govfacts encoders at 1x: [onnx-]int8 / [onnx-]fp32; the first one is also run at the "
                    "larger sizes")
    ap.add_argument("--extra", default="", help="more `govfacts extract` options, e.g. '--workers 1'")
    ap.add_argument("--f1", action="store_true", help="also dev-split F1 of fp32 vs int8 (trained tagger only)")
    isa.add_option(ap, "the whole run")
    ap.add_argument("--json", default=None, help="write all numbers here")
    a = ap.parse_args(argv)
    isa.reexec(a.isa)

    from govfacts.infer.tagger import available_cpus

    threads = available_cpus()  # what the tagger uses; the naive pipeline gets the same
    tmp = Path(tempfile.mkdtemp(prefix="govfacts-bench-"))
    try:
        model = Path(a.model)
        trained = (model / "config.json").exists()
        if not trained:
            print(f"no tagger at {model}: using a random-head model of the configs/pretrain.yaml architecture")
            model = build_model(tmp)
        sizes = [int(s) for s in a.sizes.split(",") if s]
        naive_sizes = [int(s) for s in a.naive_sizes.split(",") if s]
        variants = [v for v in a.variants.split(",") if v]
        corpora = {}
        for k in sorted(set(sizes) | set(naive_sizes)):
            corpora[k] = build_corpus(tmp / f"corpus-{k}x", int(a.mb * 1e6), k)
        extra = a.extra.split()
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
        import torch

        torch.set_num_threads(threads)
        cpu = cpu_info()
        print(f"CPU {cpu['model']} ({cpu['cpus']} CPUs; {cpu['simd_flags']})"
              + isa.hidden_note(cpu))
        print(f"model {model} (trained: {trained}); torch {torch.__version__}, {threads} threads; "
              f"1x = {corpora[min(corpora)][1]:,} chars in {len(list(corpora[min(corpora)][0].glob('*.txt')))} files")
        warm_onnx(model, variants)
        results = []
        for v in variants:  # warm-up-free: each run loads its model like the real command
            r = run_govfacts(model, corpora[1][0] if 1 in corpora else corpora[min(corpora)][0],
                             tmp / f"out-{v}.jsonl", v, extra)
            r["size"] = 1
            results.append(r)
            print(json.dumps(r, ensure_ascii=False), flush=True)
        for k in naive_sizes:
            r = run_naive(model, corpora[k][0], threads)
            r["size"] = k
            results.append(r)
            print(json.dumps(r, ensure_ascii=False), flush=True)
        for k in sizes:
            if k == 1:
                continue
            r = run_govfacts(model, corpora[k][0], tmp / f"out-{k}.jsonl", variants[0], extra)
            r["size"] = k
            results.append(r)
            print(json.dumps(r, ensure_ascii=False), flush=True)
        summary = summarise(results, variants[0])
        if a.f1:
            summary["dev_f1"] = dev_f1(model) if trained else "no trained tagger"
        summary["ru_maxrss_mb"] = _ru_maxrss_mb()
        summary["cpu"] = cpu
        summary["isa"] = isa.current()
        print(json.dumps(summary, ensure_ascii=False, indent=1))
        if a.json:
            Path(a.json).write_text(json.dumps({"results": results, "summary": summary, "model": str(a.model),
                                                "trained": trained, "threads": threads, "cpu": cpu},
                                               ensure_ascii=False,
                                               indent=1) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ru_maxrss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def summarise(results: list[dict], main_variant: str) -> dict:
    gov = {r["size"]: r for r in results if r["path"] == f"govfacts-{main_variant}"}
    naive = {r["size"]: r for r in results if r["path"] == "naive"}
    out = {}
    if 1 in gov and 1 in naive:
        out["speedup_vs_naive_1x"] = round(gov[1]["chars_per_s"] / naive[1]["chars_per_s"], 2)
    for r in results:
        if r["path"].startswith("govfacts-") and r["size"] == 1:
            out[f"{r['path'].replace('-', '_')}_chars_per_s_1x"] = r["chars_per_s"]
    if 1 in gov:
        out["linearity"] = {f"{k}x": {"seconds": gov[k]["seconds"], "seconds_per_x": round(gov[k]["seconds"] / k, 2),
                                      "chars_per_s": gov[k]["chars_per_s"]} for k in sorted(gov)}
    out["peak_rss_mb"] = {f"{r['path']}@{r['size']}x": r["peak_rss_mb"] for r in results}
    return out


if __name__ == "__main__":
    sys.exit(main())
