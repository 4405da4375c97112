"""From labelled spans to facts: normalise each span's quantity and attach document context."""
from __future__ import annotations

from typing import Iterable, Optional

from govfacts.claims import sentence_bounds
from govfacts.context import detect_context
from govfacts.quantity import parse_quantity
from govfacts.records import Document, Fact, Span
from govfacts.tables import CONFIDENCE, TABLES_ID, TableRead, read_tables
from govfacts.textview import TextView, build_view


def evidence_span(view: TextView, start: int, end: int) -> tuple[int, int]:
    """Raw [start, end) of the sentence holding the raw span [start, end): found on the normalised view,
    so a PDF line break inside a sentence does not cut it; leading and trailing whitespace left out."""
    vs, ve = view.from_raw(start, end)
    t = view.text
    a, b = sentence_bounds(t, vs, max(ve, vs + 1))
    while a < vs and t[a].isspace():
        a += 1
    while b > ve and t[b - 1].isspace():
        b -= 1
    rs, re_ = view.to_raw(a, b)
    return min(rs, start), max(re_, end)


def span_to_fact(span: Span, doc: Document, agency: Optional[str], year: Optional[int], extractor: str,
                 view: Optional[TextView] = None) -> Fact:
    """A span becomes a fact; a span without a numeral is a zero claim (value 0)."""
    q = parse_quantity(span.text)
    if q is None:
        value, unit, qualifier = 0.0, "", "exact"
    else:
        value, unit, qualifier = q.value, q.unit, q.qualifier
    es, ee = evidence_span(view or build_view(doc.text), span.start, span.end)
    return Fact(doc_id=doc.doc_id, path=doc.path, metric=span.label, value=value, unit=unit, qualifier=qualifier,
                text=span.text, start=span.start, end=span.end, confidence=round(float(span.score), 4),
                agency=agency, year=year, extractor=extractor, evidence=doc.text[es:ee], evidence_start=es,
                evidence_end=ee)


def facts_from_spans(doc: Document, spans: Iterable[Span], extractor: str, tables: bool = False,
                     read: Optional[TableRead] = None) -> list[Fact]:
    """The prose facts of `doc`, then (with `tables`) one fact per template-table cell. A prose span inside
    a template table (`TableRead.regions`) is dropped: the table's numbers are its cells' facts, and the
    label contract leaves them untagged in prose. `read`: the document's `read_tables`, if already done."""
    agency, year = detect_context(doc.text)
    spans = list(spans)
    if spans or tables:  # a document without prose spans needs its tables read only for their cells
        read = read if read is not None else read_tables(doc.text)
        regions = read.regions()
        spans = [s for s in spans if not any(a <= s.start and s.end <= b for a, b in regions)]
    view = build_view(doc.text) if spans else None
    out = [span_to_fact(s, doc, agency, year, extractor, view) for s in spans]
    if tables:
        out += table_facts(doc, read, agency, year)
    return out


def table_facts(doc: Document, read: TableRead, agency: Optional[str], year: Optional[int]) -> list[Fact]:
    """One fact per cell read; its value is the number in the cell, its unit the template's."""
    return [Fact(doc_id=doc.doc_id, path=doc.path, metric=c.metric, value=c.value, unit=c.unit, qualifier="exact",
                 text=c.text, start=c.start, end=c.end, confidence=CONFIDENCE[c.how], agency=agency, year=year,
                 extractor=TABLES_ID, source="table", cell=c.key, evidence=doc.text[c.row_start:c.row_end],
                 evidence_start=c.row_start, evidence_end=c.row_end) for c in read.cells]
