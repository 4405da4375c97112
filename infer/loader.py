"""The one way to get an extractor: `load(spec, settings)`.

`govfacts extract`, `govfacts evaluate`, the Python API, the Label Studio push and ML backend, the
Ray engine and the benchmarks all load through here, so they run the same configuration: the
default extractor, runtime and int8 choice of configs/infer.yaml (`InferSettings`), applied to a
tagger whether it runs alone or inside an ensemble.

Specs: `rules` (the rule baseline); a model directory or hub name (a tagger); `A+B` with one side
`rules` (an explicit ensemble: A decides, B fills gaps); None (the default of configs/infer.yaml,
the rules while its model is absent).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Union

from govfacts.infer.ensemble import EnsembleExtractor
from govfacts.infer.onnx_runtime import available as onnx_available
from govfacts.infer.rules import RuleExtractor
from govfacts.infer.runtime import choose
from govfacts.infer.tagger import Tagger, available_cpus
from govfacts.paths import CONFIGS, resolve_model
from govfacts.records import Span
from govfacts.settings import SettingsError, load_settings

RUNTIMES = ("auto", "torch", "onnx")


class SpanExtractor(Protocol):
    name: str
    version: str

    def spans(self, raw: str) -> list[Span]: ...

    def spans_many(self, texts: list[str]) -> list[list[Span]]: ...


@dataclass(frozen=True)
class InferSettings:
    """configs/infer.yaml: what `load` builds when asked for no particular setting."""

    default_extractor: str
    runtime: str  # auto | torch | onnx
    quantize: Optional[bool]  # None: the model's recorded verdict
    num_threads: Optional[int]
    batch_size: int
    workers: Union[int, str]  # worker processes of a batch, or `auto` (govfacts.infer.parallel)
    parallel_min_chars: int  # `workers: auto` runs workers only for at least this many characters

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides) -> "InferSettings":
        """The settings file with the non-None `overrides` applied (CLI flags, API arguments)."""
        s = load_settings(cls, path or CONFIGS / "infer.yaml")
        return s.replace(**overrides)

    def replace(self, **overrides) -> "InferSettings":
        s = dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if s.runtime not in RUNTIMES:
            raise SettingsError(f"unknown runtime {s.runtime!r} (choose from {', '.join(RUNTIMES)})")
        if not (s.workers == "auto" or (isinstance(s.workers, int) and s.workers >= 0)):
            raise SettingsError(f"workers must be a number >= 0 or 'auto', not {s.workers!r}")
        return s


def extractor_id(ex: SpanExtractor) -> str:
    """`name@version`: the `extractor` field of every fact."""
    return f"{ex.name}@{ex.version}"


def taggers_in(ex) -> list:
    """The taggers `ex` runs: itself, or the tagger members of an ensemble (none for the rules)."""
    if hasattr(ex, "view_probs"):
        return [ex]
    members = [m for m in (getattr(ex, "primary", None), getattr(ex, "secondary", None)) if m is not None]
    return [t for m in members for t in taggers_in(m)]


def has_tagger(ex) -> bool:
    """Does `ex` (or a member of an ensemble) run a model? Such an extractor wants all CPUs of one
    process rather than one process per CPU."""
    return bool(taggers_in(ex))


def default_spec(settings: InferSettings) -> str:
    """The default extractor with model paths resolved; `rules` if its model is absent."""
    parts = []
    for part in settings.default_extractor.split("+"):
        if part != "rules":
            path = resolve_model(part)
            if not (Path(path) / "config.json").exists():
                return "rules"
            part = str(path)
        parts.append(part)
    return "+".join(parts)


def load(spec: str | Path | None = None, settings: InferSettings | None = None) -> SpanExtractor:
    """The extractor named by `spec` with `settings` applied to every tagger in it."""
    settings = settings or InferSettings.load()
    spec = default_spec(settings) if spec is None else str(spec)

    def member(part: str):
        if part == "rules":
            return RuleExtractor()
        return configure(Tagger.from_pretrained(resolve_model(part)), settings)

    parts = spec.split("+", 1) if "+" in spec else [spec]
    if len(parts) == 2 and "rules" in parts:
        return EnsembleExtractor(member(parts[0]), member(parts[1]))
    return member(spec)


def resolve_runtime(runtime: str) -> str:
    """`onnx` falls back to torch when onnxruntime is not installed."""
    return runtime if runtime != "onnx" or onnx_available() else "torch"


def configure(tagger, settings: InferSettings):
    """Apply inference settings to a tagger: threads, batch size, int8 or float weights on the torch
    or ONNX Runtime encoder. `runtime: auto` takes what measured fastest on this machine with the float
    model's spans (`govfacts.infer.runtime`); the choice and its reasons are in `tagger.runtime_choice`."""
    if settings.num_threads:
        tagger.options.num_threads = int(settings.num_threads)
    if settings.batch_size:
        tagger.options.batch_size = int(settings.batch_size)
    if settings.runtime == "auto":
        choice = choose(tagger, settings.quantize, tagger.options.num_threads or available_cpus())
        runtime, quantize = choice.runtime, choice.int8
        tagger.runtime_choice = choice
    else:
        quantize = settings.quantize
        if quantize is None:  # the model's own verdict (train/calibrate.py check_int8), else float
            quantize = bool(getattr(tagger.config, "govfacts_quantize", False))
        runtime = resolve_runtime(settings.runtime)
    if runtime == "onnx":
        tagger.use_onnx(int8=bool(quantize))
    elif quantize:
        tagger.quantize()
    return tagger
