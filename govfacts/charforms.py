"""Character forms: traditional → simplified and full-width → half-width, length-preserving, so that a
normalised text keeps one character per raw character (the text view and quantity parsing both use them)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65536)
def _char_t2s(ch: str) -> str:
    out = _t2s().convert(ch)
    return out if len(out) == 1 else ch


def to_simplified(text: str) -> str:
    """Length-preserving traditional→simplified conversion (falls back to per-character conversion)."""
    if text.isascii():
        return text
    out = _t2s().convert(text)
    if len(out) == len(text):
        return out
    return "".join(_char_t2s(c) for c in text)


_HALFWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F) if chr(c) not in "，：；（）！？"} | {0x3000: 0x20}


def to_halfwidth(text: str) -> str:
    """Full-width ASCII forms (！–～) and the ideographic space become their half-width forms, the percent
    sign among them (`100％` is the rate `100%`); Chinese punctuation (，：；（）！？) stays."""
    return text.translate(_HALFWIDTH)
