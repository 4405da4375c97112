"""Explicit ensembles of the tagger and the rules: one extractor is primary, the other only fills gaps.

They are separate, named extractors (`DIR+rules`: the tagger decides, rule spans are added where it
found nothing; `rules+DIR`: the other way round), never a silent change to either member: the
primary's spans are kept as they are, and a secondary span is added only if it overlaps none of them.
"""
from __future__ import annotations

from typing import Sequence

from govfacts.records import Span


class EnsembleExtractor:
    def __init__(self, primary, secondary, secondary_weight: float = 1.0):
        self.primary = primary
        self.secondary = secondary
        self.secondary_weight = secondary_weight
        self.name = f"{primary.name}+{secondary.name}"
        self.version = f"{primary.version}+{secondary.version}"

    @staticmethod
    def merge(primary: Sequence[Span], secondary: Sequence[Span], secondary_weight: float = 1.0) -> list[Span]:
        out = list(primary)
        for r in secondary:
            if not any(r.start < m.end and m.start < r.end for m in primary):
                out.append(Span(r.start, r.end, r.label, r.text, round(r.score * secondary_weight, 4)))
        return sorted(out, key=lambda s: s.start)

    def spans(self, raw: str) -> list[Span]:
        return self.spans_many([raw])[0]

    def spans_many(self, texts: Sequence[str]) -> list[list[Span]]:
        return [self.merge(p, s, self.secondary_weight)
                for p, s in zip(self.primary.spans_many(texts), self.secondary.spans_many(texts))]
