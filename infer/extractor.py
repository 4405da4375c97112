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


def load_extractor(spec: str | None) -> SpanExtractor:
    """`rules` → the rule baseline; `ensemble:DIR` → tagger + rules where the tagger found nothing;
    anything else → a token-classifier model (directory or hub name).

    With no spec, the bundled default tagger is used when it exists, else the rules.
    """
    from govfacts.paths import DEFAULT_TAGGER

    if spec is None:
        spec = str(DEFAULT_TAGGER) if (DEFAULT_TAGGER / "config.json").exists() else "rules"
    if spec == "rules":
        from govfacts.infer.rules import RuleExtractor

        return RuleExtractor()
    from govfacts.infer.tagger import Tagger

    if spec.startswith("ensemble:"):
        from govfacts.infer.ensemble import EnsembleExtractor
        from govfacts.infer.rules import RuleExtractor

        return EnsembleExtractor(Tagger.from_pretrained(spec.split(":", 1)[1]), RuleExtractor())
    return Tagger.from_pretrained(spec)


def extract_document(doc: Document, extractor: SpanExtractor) -> list[Fact]:
    from govfacts.infer.facts import facts_from_spans

    return facts_from_spans(doc, extractor.spans(doc.text), extractor_id(extractor))


def is_model_dir(spec: str) -> bool:
    return Path(spec).is_dir() and (Path(spec) / "config.json").exists()
