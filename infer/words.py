"""Word-boundary snapping for spans that no quantity grammar delimits (zero claims).

A zero claim's span is a noun phrase (`没有发生[行政复议]`); a small tagger often gets its edges a
character short (`政复议`, `政府信息公开的申`). Chinese has no spaces, but jieba knows where words
end: a decoded span is widened to the jieba words it touches, within its sentence.
"""
from __future__ import annotations

import logging
from functools import lru_cache

from govfacts.claims import sentence_bounds


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def word_bounds(sentence: str) -> list[tuple[int, int]]:
    return [(s, e) for _, s, e in _jieba().tokenize(sentence)]


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole jieba words of its sentence (never across a sentence end)."""
    a, b = sentence_bounds(text, start, end)
    s, e = start, end
    for ws, we in word_bounds(text[a:b]):
        ws, we = ws + a, we + a
        if ws < start < we:
            s = ws
        if ws < end < we:
            e = we
    return s, e


def snap_free_spans(text: str, found, candidates) -> list:
    """Spans (start, end, label, score) that overlap no quantity candidate are snapped to words;
    fragments that then overlap are merged (label and score of the most confident one)."""
    in_cand = [False] * (len(text) + 1)
    for s, e in candidates:
        in_cand[s:e] = [True] * (e - s)
    out = []
    for s, e, lab, score in sorted(found):
        if not any(in_cand[s:e]):
            s, e = snap_to_words(text, s, e)
        if out and s < out[-1][1]:
            ps, pe, plab, pscore = out[-1]
            best = (plab, pscore) if pscore >= score else (lab, score)
            out[-1] = (min(ps, s), max(pe, e), *best)
        else:
            out.append((s, e, lab, score))
    return out
