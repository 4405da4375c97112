"""An explicit tagger + rules ensemble: the tagger's spans, plus rule spans where the tagger found nothing.

It is a separate, named extractor (`ensemble:<model dir>`), never a silent change to the tagger: the
tagger decides wherever it predicts a span; a rule span is added only if it overlaps no tagger span.
"""
from __future__ import annotations

from typing import Sequence

from govfacts.records import Span


class EnsembleExtractor:
    def __init__(self, tagger, rules, rule_weight: float = 1.0):
        self.tagger = tagger
        self.rules = rules
        self.rule_weight = rule_weight
        self.name = f"ensemble-{tagger.name}"
        self.version = f"{tagger.version}+{rules.name}{rules.version}"

    @staticmethod
    def merge(model_spans: Sequence[Span], rule_spans: Sequence[Span], rule_weight: float = 1.0) -> list[Span]:
        out = list(model_spans)
        for r in rule_spans:
            if not any(r.start < m.end and m.start < r.end for m in model_spans):
                out.append(Span(r.start, r.end, r.label, r.text, round(r.score * rule_weight, 4)))
        return sorted(out, key=lambda s: s.start)

    def spans(self, raw: str) -> list[Span]:
        return self.merge(self.tagger.spans(raw), self.rules.spans(raw), self.rule_weight)

    def spans_many(self, texts: Sequence[str]) -> list[list[Span]]:
        return [self.merge(m, self.rules.spans(t), self.rule_weight)
                for m, t in zip(self.tagger.spans_many(texts), texts)]
