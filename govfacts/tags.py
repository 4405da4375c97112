"""Spans ⇄ IOB2 tags on a text view: the one conversion used by training data, rule hints, decoding
and scoring.

Gold and predicted spans carry raw offsets; the tagger reads the normalised view
(`govfacts.textview`), so spans are projected onto view characters here and back with `to_raw`.
Characters inside `ignore` regions (out-of-scope tables) get the tag None.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

from govfacts.records import Span
from govfacts.textview import TextView


def spans_to_view_tags(view: TextView, spans: Iterable[Span],
                       ignore: Sequence[tuple[int, int]] = ()) -> list[Optional[str]]:
    """IOB2 tag per view char: B-/I-LABEL when its raw index lies in a span, None inside `ignore`."""
    n = len(view.text)
    tags: list[Optional[str]] = ["O"] * n
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        vs, ve = view.from_raw(span.start, span.end)
        for i in range(vs, ve):
            tags[i] = ("B-" if i == vs else "I-") + span.label
    if ignore:
        for a, b in ignore:
            vs, ve = view.from_raw(a, b)
            for i in range(vs, ve):
                tags[i] = None
    return tags


def view_spans(tags: Sequence[Optional[str]]) -> list[tuple[int, int, str]]:
    """(start, end, label) spans of a tag sequence; None counts as O.

    A stray I-X (after O or another label) opens a span, as conlleval does: predictions from the
    constrained decoder never contain one, and gold tags never do.
    """
    out: list[tuple[int, int, str]] = []
    start, label = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        tag = tag or "O"
        kind, _, lab = tag.partition("-")
        if start is not None and not (kind == "I" and lab == label):
            out.append((start, i, label))
            start, label = None, None
        if kind == "B" or (kind == "I" and start is None):
            start, label = i, lab
    return out


def tags_to_spans(view_tags: Sequence[Optional[str]], view: TextView) -> list[Span]:
    """The inverse of `spans_to_view_tags`: view tags → Spans with raw offsets and raw text."""
    out = []
    for s, e, label in view_spans(view_tags):
        rs, re_ = view.to_raw(s, e)
        out.append(Span(rs, re_, label, view.raw[rs:re_]))
    return out
