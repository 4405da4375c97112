"""Word-boundary snapping for spans that no quantity grammar delimits (zero claims).

A zero claim's span is a noun phrase (`没有发生[行政复议]`); a small tagger often gets its edges a
character short (`政复议`, `政府信息公开的申`). Chinese has no spaces, but jieba knows where words
end: a decoded span is widened to the jieba words it touches, within its sentence.
"""
from __future__ import annotations

import logging
import threading

from govfacts.claims import NEGATION, sentence_bounds

_lock = threading.Lock()
_loaded: list = []  # the initialised jieba module, once loaded
_prefetching: list = []  # the prefetch thread, once started


def _jieba():
    if not _loaded:
        with _lock:  # one load, also when a prefetch is still running
            if not _loaded:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _loaded.append(jieba)
    return _loaded[0]


def prefetch() -> None:
    """Load jieba's dictionary (about a second) in a background thread: a tagger starts it when it begins
    a long read (`tagger.PREFETCH_WORDS_CHARS`), so the load overlaps reading and encoding (ONNX Runtime
    and torch release the GIL) instead of holding up the first zero claim off the rules' phrases. (Not at
    load: a process that only loads a tagger, such as the parent of worker processes, never pays for it.)"""
    with _lock:
        if _loaded or _prefetching:
            return
        _prefetching.append(threading.Thread(target=_jieba, name="govfacts-jieba", daemon=True))
    _prefetching[0].start()


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


def may_be_zero_claim(text: str, start: int, end: int) -> bool:
    """Could [start, end), or any widening of it within its sentence, be kept as a zero claim? Only with a
    negation cue in its sentence before `end` (decoding keeps a free span only after such a cue,
    `decode.is_zero_claim_site`)."""
    a, _ = sentence_bounds(text, start, end)
    return bool(NEGATION.search(text, a, end))


def snap_free_spans(text: str, found, candidates, phrases=()) -> list:
    """Spans (start, end, label, score) that overlap no quantity candidate are snapped to words;
    fragments that then overlap are merged (label and score of the most confident one). A span that
    overlaps one of `phrases` (the rules' zero-claim phrases, whose bounds `hints.snap_to_phrases` gives
    it next) is left as it is: most zero claims are such, so most documents never need jieba. Nor is a
    fragment that no negation cue precedes (`行` of `行政行为`): decoding drops it whatever its bounds."""
    in_cand = [False] * (len(text) + 1)
    for s, e in list(candidates) + list(phrases):
        in_cand[s:e] = [True] * (e - s)
    out = []
    for s, e, lab, score in sorted(found):
        if not any(in_cand[s:e]) and may_be_zero_claim(text, s, e):
            s, e = snap_to_words(text, s, e)
        if out and s < out[-1][1]:
            ps, pe, plab, pscore = out[-1]
            best = (plab, pscore) if pscore >= score else (lab, score)
            out[-1] = (min(ps, s), max(pe, e), *best)
        else:
            out.append((s, e, lab, score))
    return out
