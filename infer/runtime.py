"""`runtime: auto`: the tagger's encoder runtime chosen by measuring it on this machine.

Which of torch / ONNX Runtime × float / dynamic int8 runs the encoder fastest depends on the CPU:
int8 pays off with AVX-512/VNNI and gains little on plain AVX2, and ONNX Runtime's fused kernels beat
eager torch by different margins. So the first time a model runs on a machine, each candidate encodes
the same real windows (`probe.txt`: prose copied from the bundled sample reports) and the fastest one
whose spans equal the float model's is kept. The choice is cached per (model files, CPU signature,
runtime versions, threads) in `$GOVFACTS_CACHE/runtime.json`; later runs read it without importing
torch when the choice is ONNX Runtime.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Optional

from govfacts.atomic import write_text_atomic
from govfacts.infer.onnx_runtime import available as onnx_available
from govfacts.machine import cpu_info, cpu_signature
from govfacts.paths import cache_root
from govfacts.textview import build_view

PROBE = Path(__file__).with_name("probe.txt")
MIN_SECONDS = 0.3  # each candidate encodes the probe until this much time has passed (at least twice)


@dataclass(frozen=True)
class Candidate:
    runtime: str  # torch | onnx
    int8: bool

    @property
    def name(self) -> str:
        return f"{self.runtime}-{'int8' if self.int8 else 'fp32'}"


@dataclass
class RuntimeChoice:
    """What `runtime: auto` took for a model on this machine, and why."""

    runtime: str
    int8: bool
    seconds: dict[str, float] = field(default_factory=dict)  # candidate → seconds per probe pass
    same_spans: dict[str, bool] = field(default_factory=dict)  # candidate → spans equal the float model's
    cpu: str = ""
    cached: bool = False

    @property
    def name(self) -> str:
        return Candidate(self.runtime, self.int8).name

    def why(self) -> str:
        if not self.seconds:
            return f"{self.name}: the only candidate"
        parts = [f"{k} {v * 1000:.0f} ms{'' if self.same_spans.get(k) else ' (spans differ)'}"
                 for k, v in sorted(self.seconds.items(), key=lambda kv: kv[1])]
        how = "cached measurement" if self.cached else "measured now"
        return f"{self.name}: fastest with the float model's spans on {self.cpu} ({how}: {', '.join(parts)})"


def _cpu_name() -> str:
    """The CPU as `-v` names it: model name, and family/model/stepping where known."""
    info = cpu_info()
    return f"{info['model']} ({info['cpu_id']})" if info.get("cpu_id") else info["model"]


def candidates(int8_allowed: bool, int8_only: bool = False) -> list[Candidate]:
    runtimes = ["torch", "onnx"] if onnx_available() else ["torch"]
    kinds = [True] if int8_only else ([False, True] if int8_allowed else [False])
    return [Candidate(r, q) for r in runtimes for q in kinds]


def cache_file() -> Path:
    return cache_root() / "runtime.json"


def cache_key(tagger, threads: int) -> str:
    versions = []
    for pkg in ("torch", "onnxruntime"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} -")
    return "|".join([tagger.weights_key(), cpu_signature(), *versions, f"threads {threads}",
                     f"batch {tagger.options.batch_size}"])


def choose(tagger, quantize: Optional[bool], threads: int) -> RuntimeChoice:
    """The runtime for `tagger` here: cached, else measured (and cached). `quantize`: None lets int8
    compete where the model's calibration kept its dev F1 (`govfacts_quantize`), True/False forces it."""
    int8_allowed = bool(getattr(tagger.config, "govfacts_quantize", False)) if quantize is None else quantize
    pool = candidates(int8_allowed, int8_only=quantize is True)
    if len(pool) == 1:
        return RuntimeChoice(pool[0].runtime, pool[0].int8, cpu=_cpu_name())
    key = f"{cache_key(tagger, threads)}|{','.join(c.name for c in pool)}"
    path = cache_file()
    stored = _read(path)
    if key in stored:
        try:
            return RuntimeChoice(**{**stored[key], "cached": True})
        except TypeError:
            pass  # an entry written by another version: measure again
    choice = measure(tagger, pool, same_spans_only=quantize is not True)
    stored[key] = {k: v for k, v in asdict(choice).items() if k != "cached"}
    try:
        write_text_atomic(path, json.dumps(stored, ensure_ascii=False, indent=1))
    except OSError:
        pass  # a read-only cache: measure again next time
    return choice


def measure(tagger, pool: list[Candidate], same_spans_only: bool = True) -> RuntimeChoice:
    """Time each candidate on the probe windows; the fastest whose spans equal the float torch model's wins
    (the float model when none does). Without `same_spans_only` (int8 asked for explicitly) the fastest wins."""
    views = [build_view(t) for t in PROBE.read_text(encoding="utf-8").split("\n\n") if t.strip()]
    batches = list(tagger.window_batches(views))
    float_torch = Candidate("torch", False)
    spans, seconds = {}, {}
    for cand in pool:
        variant = _variant(tagger, cand)
        seconds[cand.name] = _time(variant, batches)
        spans[cand.name] = _spans(variant, views, batches)
    if float_torch.name not in spans:  # int8 only: the float model is still the reference
        spans[float_torch.name] = _spans(_variant(tagger, float_torch), views, batches)
    same = {c.name: spans[c.name] == spans[float_torch.name] for c in pool}
    eligible = ([c for c in pool if same[c.name]] or [float_torch]) if same_spans_only else pool
    best = min(eligible, key=lambda c: seconds.get(c.name, float("inf")))
    return RuntimeChoice(best.runtime, best.int8, seconds={k: round(v, 5) for k, v in seconds.items()},
                         same_spans=same, cpu=_cpu_name())


def _variant(tagger, cand: Candidate):
    """A copy of `tagger` on one candidate runtime (sharing tokenizer, rules and float weights)."""
    v = copy.copy(tagger)
    v.options = copy.copy(tagger.options)
    v.runner, v.quantized = None, False
    v._model = tagger.model  # the same float weights (the setter would mark them as other weights)
    if cand.runtime == "onnx":
        v.use_onnx(int8=cand.int8)
    elif cand.int8:
        v.quantize()  # a quantised copy: the float weights stay the reference's
    return v


def _time(variant, batches) -> float:
    """Seconds per pass over the probe batches: the best of passes run for at least MIN_SECONDS."""
    for _, ids, mask, types in batches[:2]:  # warm-up: kernels, allocations
        variant.encode(ids, mask, types)
    best, spent, n = float("inf"), 0.0, 0
    while n < 2 or spent < MIN_SECONDS:
        t0 = time.perf_counter()
        for _, ids, mask, types in batches:
            variant.encode(ids, mask, types)
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def _spans(variant, views, batches) -> list:
    logits = [(batch, variant.encode(ids, mask, types)) for batch, ids, mask, types in batches]
    found = variant.decode_views(views, variant.merge_windows(views, logits))
    return [[(s.start, s.end, s.label) for s in spans] for spans in found]


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
