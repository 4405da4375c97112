"""How many worker processes a batch runs in (`workers: auto` in configs/infer.yaml).

On a 2-core machine one process leaves much of the second core idle: ONNX Runtime's encoder scales to
2 threads by about 1.4x, and the Python around it (reading, hints, decoding) runs on one core. One worker
process per CPU, each with a 1-thread encoder, keeps both cores busy the whole time (bench/README.md has
the measured ratio). It pays a start-up per worker, so it is worth it only above a corpus size, and it
multiplies the model's memory, so `auto` takes it only where a process stays small: the rules, or a
tagger whose encoder runs on ONNX Runtime (a torch process holds about twice the memory).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from govfacts.infer.loader import taggers_in
from govfacts.infer.tagger import available_cpus


@dataclass(frozen=True)
class WorkerChoice:
    """Worker processes for one batch (0: this process) and why."""

    workers: int
    reason: str


def encoder_runtime(extractor) -> Optional[str]:
    """`onnx` or `torch` for the tagger(s) in `extractor` (torch if any member runs torch); None for the rules."""
    kinds = {"onnx" if t.runner is not None else "torch" for t in taggers_in(extractor)}
    return None if not kinds else ("torch" if "torch" in kinds else "onnx")


def choose_workers(setting: int | str, extractor, pending_chars: int, cpus: int, min_chars: int) -> WorkerChoice:
    """`setting`: a number of workers (taken as given) or `auto`: one per CPU when there are at least 2
    CPUs, `pending_chars` (the characters still to extract) reach `min_chars`, and the extractor runs
    without torch; else 0."""
    if not isinstance(setting, str):
        return WorkerChoice(int(setting), "asked for")
    if setting != "auto":
        raise ValueError(f"workers must be a number or 'auto', not {setting!r}")
    if cpus < 2:
        return WorkerChoice(0, f"auto: {cpus} CPU")
    if pending_chars < min_chars:
        return WorkerChoice(0, f"auto: {pending_chars:,} characters to extract, fewer than "
                               f"parallel_min_chars {min_chars:,}")
    runtime = encoder_runtime(extractor)
    if runtime == "torch":
        return WorkerChoice(0, "auto: the encoder runs on torch (one process per CPU would hold a torch "
                               "model each)")
    what = "the rules" if runtime is None else "the encoder on ONNX Runtime"
    return WorkerChoice(cpus, f"auto: {pending_chars:,} characters to extract (>= {min_chars:,}) with "
                              f"{what}: {cpus} worker processes, 1 encoder thread each")


def pinned_settings(settings, extractor, workers: int):
    """A worker's settings: its share of the CPUs, and the runtime the parent's extractor took (a worker
    does not measure again with its own thread count, so every process encodes alike)."""
    s = settings.replace(num_threads=max(1, available_cpus() // max(1, workers)))
    runtime = encoder_runtime(extractor)
    if runtime is None or settings.runtime != "auto":
        return s
    int8 = any(t.quantized or (t.runner is not None and t.runner.int8) for t in taggers_in(extractor))
    return s.replace(runtime=runtime, quantize=int8)
