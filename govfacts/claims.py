"""Where a fact can be: the label contract knows only numeric claims and zero claims.

A numeric claim holds a number (Arabic digits, or Chinese numerals with a classifier); a zero claim
holds a negation cue (没有/未/无/不 …). A sentence with neither holds no fact by definition, so the
tagger need not read it (`Tagger(skip_plain=True)`): on real reports about half the text.
"""
from __future__ import annotations

import re
from typing import Sequence

from govfacts.quantity import QUANTITY_RX

SENT_ENDS = "。！？；!?;\n"
# Where the tagger's windows may end: the full-width sentence ends only. The committed tagger was
# trained and calibrated on windows cut there, so they stay as they were (ASCII ends changed its input).
WINDOW_ENDS = "。；！？\n"
NEGATION = re.compile(r"没有|沒有|未|无|無|不|零")
_DIGIT = re.compile(r"[0-9０-９]")
_SPLIT = re.compile(r"(?<=[" + re.escape(SENT_ENDS) + r"])")


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """[a, b) of the sentence(s) holding text[start:end]: back to the last sentence end before `start`,
    forward to the first sentence end at or after `end` (inclusive)."""
    a = start
    while a > 0 and text[a - 1] not in SENT_ENDS:
        a -= 1
    b = end
    while b < len(text) and text[b - 1] not in SENT_ENDS:
        b += 1
    return a, b


def may_hold_claim(sentence: str) -> bool:
    return bool(_DIGIT.search(sentence) or NEGATION.search(sentence) or QUANTITY_RX.search(sentence))


def claim_segments(text: str) -> list[tuple[int, int]]:
    """[start, end) runs of consecutive sentences that may hold a claim (neighbours merged)."""
    out: list[tuple[int, int]] = []
    pos = 0
    for sent in _SPLIT.split(text):
        end = pos + len(sent)
        if sent and may_hold_claim(sent):
            if out and out[-1][1] == pos:
                out[-1] = (out[-1][0], end)
            else:
                out.append((pos, end))
        pos = end
    return out


def focus_segments(text: str, quantities: Sequence[tuple[int, int]], before: int, after: int,
                   cue_after: int) -> list[tuple[int, int]]:
    """[start, end) ranges of the claim segments around where a fact can be: `before` characters before
    and `after` after each quantity candidate, `before` before and `cue_after` after each negation cue
    (a zero claim follows its cue), clipped to the claim segment and merged where they touch. The tagger
    reads only these (`focus` in configs/finetune.yaml); a span is anchored on one of them anyway."""
    starts = sorted(quantities)
    out: list[tuple[int, int]] = []
    for a, b in claim_segments(text):
        anchors = [(s - before, e + after) for s, e in starts if s < b and e > a]
        anchors += [(m.start() - before, m.end() + cue_after) for m in NEGATION.finditer(text, a, b)]
        for s, e in sorted(anchors):
            s, e = max(a, s), min(b, e)
            if out and s <= out[-1][1] and out[-1][0] >= a:
                out[-1] = (out[-1][0], max(out[-1][1], e))
            else:
                out.append((s, e))
    return out
