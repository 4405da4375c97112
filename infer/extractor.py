"""Choosing an extractor by name: `rules`, or a tagger model directory / hub name."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from govfacts.records import Document, Fact, Span


class SpanExtractor(Protocol):
    name: str
    version: str

    def spans(self, raw: str) -> list[Span]: ...


def extractor_id(ex: SpanExtractor) -> str:
    return f"{ex.name}@{ex.version}"


def default_spec() -> str:
    """The default extractor of configs/infer.yaml, with model paths made absolute; `rules` if its model is absent."""
    import yaml

    from govfacts.paths import CONFIGS, ROOT

    cfg = yaml.safe_load((CONFIGS / "infer.yaml").read_text(encoding="utf-8")) or {}
    parts = []
    for part in str(cfg.get("default_extractor", "rules")).split("+"):
        if part != "rules":
            path = Path(part) if Path(part).is_absolute() else ROOT / part
            if not (path / "config.json").exists():
                return "rules"
            part = str(path)
        parts.append(part)
    return "+".join(parts)


def load_extractor(spec: str | None) -> SpanExtractor:
    """`rules` → the rule baseline; `DIR+rules` / `rules+DIR` → an explicit ensemble (the first decides, the
    second fills gaps); anything else → a token-classifier model (directory or hub name).

    With no spec, the default of configs/infer.yaml is used (the rules while its model is absent).
    """

    if spec is None:
        spec = default_spec()
    if spec == "rules":
        from govfacts.infer.rules import RuleExtractor

        return RuleExtractor()
    from govfacts.infer.tagger import Tagger

    if "+" in spec and "rules" in spec.split("+"):  # DIR+rules or rules+DIR: an explicit ensemble
        from govfacts.infer.ensemble import EnsembleExtractor
        from govfacts.infer.rules import RuleExtractor

        first, second = spec.split("+", 1)
        members = [RuleExtractor() if part == "rules" else Tagger.from_pretrained(part) for part in (first, second)]
        return EnsembleExtractor(*members)
    return Tagger.from_pretrained(spec)


def extract_document(doc: Document, extractor: SpanExtractor) -> list[Fact]:
    from govfacts.infer.facts import facts_from_spans

    return facts_from_spans(doc, extractor.spans(doc.text), extractor_id(extractor))


def is_model_dir(spec: str) -> bool:
    return Path(spec).is_dir() and (Path(spec) / "config.json").exists()
