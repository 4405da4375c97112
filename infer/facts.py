"""From labelled spans to facts: normalise each span's quantity and attach document context."""
from __future__ import annotations

from typing import Iterable, Optional

from govfacts.context import detect_context
from govfacts.quantity import parse_quantity
from govfacts.records import Document, Fact, Span


def span_to_fact(span: Span, doc: Document, agency: Optional[str], year: Optional[int], extractor: str) -> Fact:
    """A span becomes a fact; a span without a numeral is a zero claim (value 0)."""
    q = parse_quantity(span.text)
    if q is None:
        value, unit, qualifier = 0.0, "", "exact"
    else:
        value, unit, qualifier = q.value, q.unit, q.qualifier
    return Fact(doc_id=doc.doc_id, path=doc.path, metric=span.label, value=value, unit=unit, qualifier=qualifier,
                text=span.text, start=span.start, end=span.end, confidence=round(float(span.score), 4),
                agency=agency, year=year, extractor=extractor)


def facts_from_spans(doc: Document, spans: Iterable[Span], extractor: str) -> list[Fact]:
    agency, year = detect_context(doc.text)
    return [span_to_fact(s, doc, agency, year, extractor) for s in spans]
