"""A normalised view of a raw document text that maps every character back to raw offsets.

Traditional characters become simplified (OpenCC t2s), full-width ASCII becomes half-width, hard
line breaks inside sentences (PDF text), spaces wedged between CJK characters and digits, and the
pinyin glosses that some web copies put after characters (`行政復(fù)議`, `政(zheng)府(fu)`) are
dropped, and Chinese numerals that begin a quantity are written as Arabic digits (`两起` → `2起`).
Rules and the tagger work on the view; spans are mapped back with `to_raw`, so facts
always carry offsets into the text as stored.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import compress

from govfacts.charforms import to_halfwidth, to_simplified
from govfacts.quantity import arabic_numerals

_TERMINAL = set("。！？；：!?;:…」』”）)】")
_HEADING = re.compile(r"\s*([一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\(?[0-9]{1,2}[.、)）]|[•·●◆■□-]\s)")
_SPACE = " \t\u3000\xa0"


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or ch in "，。、；：？！“”‘’（）《》％"


@dataclass
class TextView:
    raw: str
    text: str
    index: list[int]  # index[i] = raw offset of view character i
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # derived data, computed once per view

    def to_raw(self, start: int, end: int) -> tuple[int, int]:
        """Map a view span [start, end) to the raw span covering the same characters."""
        if end <= start:
            r = self.index[start] if start < len(self.index) else len(self.raw)
            return r, r
        return self.index[start], self.index[end - 1] + 1

    def from_raw(self, start: int, end: int) -> tuple[int, int]:
        """Map a raw span to the smallest view span whose characters lie inside it."""
        import bisect

        s = bisect.bisect_left(self.index, start)
        e = bisect.bisect_left(self.index, end)
        return s, e


VIEW_CACHE_CHARS = 500_000  # raw characters of the recent views kept: one group of documents (infer/api.py
# GROUP_CHARS); a view holds about 40 bytes per character
_recent: "OrderedDict[tuple, TextView]" = OrderedDict()
_recent_chars = 0


def build_view(raw: str, join_lines: bool = True, drop_spaces: bool = True, arabic: bool = True) -> TextView:
    """The normalised view of `raw` (see module docstring).

    The tagger, the rules and the fact builder each ask for the view of the same document; the recent
    views are kept (up to VIEW_CACHE_CHARS raw characters), so a document is normalised once and what
    its view memoises (quantity candidates, the rules' hits) is computed once for all of them."""
    global _recent_chars
    key = (raw, join_lines, drop_spaces, arabic)
    view = _recent.get(key)
    if view is not None:
        _recent.move_to_end(key)
        return view
    view = _new_view(raw, join_lines, drop_spaces, arabic)
    if len(raw) <= VIEW_CACHE_CHARS:
        _recent[key] = view
        _recent_chars += len(raw)
        while _recent_chars > VIEW_CACHE_CHARS:
            (old_raw, *_), _old = _recent.popitem(last=False)
            _recent_chars -= len(old_raw)
    return view


def _new_view(raw: str, join_lines: bool, drop_spaces: bool, arabic: bool) -> TextView:
    conv = to_halfwidth(to_simplified(raw))
    keep = [True] * len(raw)
    _mark_pinyin_glosses(conv, keep)
    if join_lines:
        _mark_soft_breaks(conv, keep)
    if drop_spaces:
        _mark_inner_spaces(conv, keep)
    index = list(compress(range(len(raw)), keep))
    text = conv if len(index) == len(conv) else "".join([conv[i] for i in index])
    if arabic:
        text, index = _arabic_numerals(text, index)
    return TextView(raw, text, index)


def _arabic_numerals(text: str, index: list[int]) -> tuple[str, list[int]]:
    """Chinese numerals that begin a quantity written as Arabic digits (`二万四千七百四十五人次` →
    `24745人次`). The digits map onto the numeral's raw characters, first onto first and last onto last, so
    a span over them maps back to the whole numeral as written."""
    reps = arabic_numerals(text)
    if not reps:
        return text, index
    parts: list[str] = []
    idx: list[int] = []
    last = 0
    for a, b, digits in reps:
        parts.append(text[last:a])
        idx.extend(index[last:a])
        parts.append(digits)
        n = len(digits)
        idx.extend(index[a + (k * (b - a - 1)) // (n - 1)] if n > 1 else index[a] for k in range(n))
        last = b
    parts.append(text[last:])
    idx.extend(index[last:])
    return "".join(parts), idx


_TONES = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüÜ", "aaaaeeeeiiiioooouuuuvvvvvv")
# A pinyin syllable (tone marks removed, ü written v): optional initial, then a final.
_SYLLABLE = re.compile(r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?"
                       r"(?:iang|iong|uang|ueng|ang|eng|ing|ong|iao|ian|uai|uan|van|ai|ei|ao|ou|an|en|in|un|vn|ia|ie|"
                       r"iu|ua|uo|ui|ve|ue|er|a|o|e|i|u|v)")
_GLOSS = re.compile(r"(?<=[\u4e00-\u9fff])(?:[(（][A-Za-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüÜ]{1,6}[)）])+")


def _mark_pinyin_glosses(text: str, keep: list[bool]) -> None:
    """Drop `(fù)` / `(zheng)` right after a Chinese character when every bracket holds one pinyin
    syllable: web copies gloss characters that way, which splits the words the rules and tagger read."""
    for m in _GLOSS.finditer(text):
        sylls = re.findall(r"[(（]([^)）]+)[)）]", m.group())
        if all(_SYLLABLE.fullmatch(x.lower().translate(_TONES)) for x in sylls):
            for i in range(m.start(), m.end()):
                keep[i] = False


def _mark_soft_breaks(text: str, keep: list[bool]) -> None:
    """Drop a line break inside a sentence: the line before is long and does not end a sentence."""
    lines = text.split("\n")
    pos = 0
    for n, line in enumerate(lines[:-1]):
        end = pos + len(line)
        if not all(keep[pos:end]):  # judge the line as the view will show it (glosses dropped)
            line = "".join(c for c, k in zip(line, keep[pos:end]) if k)
        body = line.rstrip(_SPACE)
        nxt = lines[n + 1]
        if (len(body) >= 12 and body[-1] not in _TERMINAL and nxt.strip(_SPACE)
                and not _HEADING.match(nxt) and not re.fullmatch(r"\s*-\s*\d+\s*-\s*", nxt)):
            keep[end] = False
        pos = end + 1


def _mark_inner_spaces(text: str, keep: list[bool]) -> None:
    """Drop runs of spaces between CJK and digits/CJK (PDF '1136 条', '2023 年') and before a percent sign
    (`100 %`, half-width by now), never digit–digit."""
    for m in re.finditer(r"[ \t\u3000\xa0]+", text):
        a, b = m.start() - 1, m.end()
        if a < 0 or b >= len(text):
            continue
        left, right = text[a], text[b]
        if ((_is_cjk(left) or _is_cjk(right)) and not (left.isdigit() and right.isdigit())) or (
                left.isdigit() and right == "%"):
            for i in range(m.start(), m.end()):
                keep[i] = False
