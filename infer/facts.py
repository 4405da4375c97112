"""From labelled spans to facts: normalise each span's quantity and attach document context."""
from __future__ import annotations

from typing import Iterable, Optional

from govfacts.context import detect_context
from govfacts.quantity import parse_quantity
from govfacts.records import Document, Fact, Span
from govfacts.tables import CONFIDENCE, TABLES_ID, TableRead, read_tables


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


def facts_from_spans(doc: Document, spans: Iterable[Span], extractor: str, tables: bool = False) -> list[Fact]:
    """The prose facts of `doc`, then (with `tables`) one fact per template-table cell."""
    agency, year = detect_context(doc.text)
    out = [span_to_fact(s, doc, agency, year, extractor) for s in spans]
    if tables:
        out += table_facts(doc, read_tables(doc.text), agency, year)
    return out


def table_facts(doc: Document, read: TableRead, agency: Optional[str], year: Optional[int]) -> list[Fact]:
    """One fact per cell read; its value is the number in the cell, its unit the template's."""
    return [Fact(doc_id=doc.doc_id, path=doc.path, metric=c.metric, value=c.value, unit=c.unit, qualifier="exact",
                 text=c.text, start=c.start, end=c.end, confidence=CONFIDENCE[c.how], agency=agency, year=year,
                 extractor=TABLES_ID, source="table", cell=c.key) for c in read.cells]
