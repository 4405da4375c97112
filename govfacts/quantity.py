"""Quantity normalisation: '22.4万余次' -> Quantity(224000, '次', 'more_than').

Chinese numerals are converted with cn2an; the surrounding grammar (approximators, 多/余, 万/亿
multipliers, classifiers, 左右) follows the span conventions of the label contract.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from govfacts.records import Quantity
from govfacts.charforms import to_halfwidth, to_simplified

APPROX_BEFORE = {"将近": "nearly", "近": "nearly", "大约": "approx", "约": "approx", "超过": "more_than",
                 "逾": "more_than", "超": "more_than"}
CN_DIGITS = "零〇一二两三四五六七八九十百千万亿"
# a numeral of any form: a span holding none is a zero claim (`没有…[收费]`)
NUMERAL_RX = re.compile("[0-9０-９" + CN_DIGITS + "]")
_MULT = {"万": 1e4, "亿": 1e8, "千": 1e3, "百": 1e2}

# A second classifier in brackets after the first (`723条(次)`, `163人（次）`): part of the claim.
_BRACKETED_UNIT = r"[(（](?:次|条|件|篇|人|个)[)）]"
_RX = re.compile(
    r"^(?P<pre>将近|大约|超过|近|约|逾|超)?"
    r"(?P<num>[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?|[" + CN_DIGITS + r"]+(?:点[零〇一二三四五六七八九]+)?)"
    r"(?P<more1>多|余)?(?P<mult>[万亿千百]*)(?P<more2>多|余)?"
    r"(?P<unit>.*?)(?:" + _BRACKETED_UNIT + r")?(?P<post>左右)?$"
)


# The grammar of a numeric claim in running text (span convention 1): optional approximator, the
# number, 多/余, multiplier, a classifier (with a second one in brackets, `723条(次)`, `163人（次）`) and 左右. Both the rule baseline and the tagger's
# quantity-anchored decoding use it to find where numeric claims may begin and end.
UNITS = ["人次", "件次", "条次", "场次", "批次", "篇次", "万元", "万份", "万次", "亿次", "元", "条", "次", "件", "篇", "个", "场",
         "期", "项", "份", "册", "名", "人", "起", "宗", "通", "席", "批", "本", "张", "套", "部", "家", "户", "档",
         "位", "则", "%"]
_UNIT_RX = "|".join(re.escape(u) for u in UNITS)
_CN = "零〇一二两三四五六七八九十百千"
# Chinese numerals: 万/亿 inside one only when more digits follow (`十九万六千零二十二`; in `三万次` the 万 is
# the multiplier, as in `一万余次`); a bare 万/亿 is one of it where 多/余 follows (`发放资料万余份`; `万家` is no
# count). A lone 一 (`申请一件。`) only where its classifier closes the clause: `一个良好的格局`,
# `一次性`, `一批…` are not counts; before 名, a classifier of people only, it is one (`安排一名干部专门负责`).
_NUM = (r"(?:[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?"
        r"|[零〇二两三四五六七八九十百千](?:[" + _CN + r"]|[万亿](?=[" + _CN + r"]))*"
        r"|一(?:[" + _CN + r"]|[万亿](?=[" + _CN + r"]))+"
        r"|一(?=[万亿])"
        r"|[万亿](?=[多余])"
        r"|一(?=名)"
        r"|一(?=(?:" + _UNIT_RX + r")(?:[，。；;、,）)\s为]|$)))")
QUANTITY_RX = re.compile(
    r"(?<![0-9A-Za-z.\-/:])(?:(?P<pre>将近|大约|超过|近|约|逾|超))?(?P<num>" + _NUM + r")"
    r"(?P<more1>多|余)?(?P<mult>[万亿千])?(?P<more2>多|余)?"
    r"(?P<unit>" + _UNIT_RX + r")(?P<alt>" + _BRACKETED_UNIT + r")?(?P<post>左右)?"
)


def find_quantities(text: str) -> list[tuple[int, int]]:
    """[start, end) of every numeric claim candidate in normalised (simplified, half-width) text."""
    return [m.span() for m in QUANTITY_RX.finditer(text)]


HEDGES = ("pre", "more1", "more2", "post")  # the approximators of QUANTITY_RX: 约/近/超过 …, 多/余, 左右


def find_approximators(text: str) -> list[tuple[int, int]]:
    """[start, end) of the approximator that opens a numeric claim candidate (`约`, `将近`, `超过` …).

    Only these: the tagger's training claims hold them rarely (7 of 838 train spans) but `多`/`余` after
    the number often (69), so a reader that leaves approximators out (`govfacts.infer.windows.skip_tokens`)
    leaves out these alone."""
    return _opening_approximators(QUANTITY_RX.finditer(text))


def _opening_approximators(matches) -> list[tuple[int, int]]:
    return [m.span("pre") for m in matches if m.group("pre")]


def unit_key(unit: str) -> str:
    """The classifier of a grammar unit, a multiplier written inside it dropped (`万次` → `次`): the form the
    label contract lists units in."""
    return unit[1:] if unit[:1] in "万亿" and len(unit) > 1 else unit


def view_quantity_units(view) -> list[str]:
    """`unit_key` of each of `view_quantities(view)`, in the same order."""
    view_quantities(view)
    return view.memo["quantity_units"]


# A rate written out in words (`百分之九十八`, `百分之百`, `百分之九十九点五`): the view writes it `98%`.
PERCENT_WORDS_RX = re.compile(r"百分之(?P<num>[零〇一二两三四五六七八九十百]+(?:点[零〇一二三四五六七八九]+)?)")


def _digits(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.6f}".rstrip("0")


def arabic_numerals(text: str) -> list[tuple[int, int, str]]:
    """[start, end) and Arabic digits of every whole Chinese numeral that begins a quantity
    (`二万四千七百四十五人次` → 24745, `两起` → 2), and of every rate written in words (`百分之九十八` → `98%`):
    the text view shows these as digits, so the rules and the tagger read one form of a count whatever form
    the report wrote."""
    out = []
    for m in PERCENT_WORDS_RX.finditer(text):
        value = parse_number(m.group("num"))
        if value is not None:
            out.append((m.start(), m.end(), _digits(value) + "%"))
    taken = [(a, b) for a, b, _ in out]
    for m in QUANTITY_RX.finditer(text):
        a, b = m.span("num")
        if text[a].isdigit() or any(x < b and a < y for x, y in taken):
            continue
        value = parse_number(text[a:b])
        if value is None or value != int(value) or (b - a > 1 and len(str(int(value))) == 1):
            continue  # a fraction, or one digit for several characters (offsets could not cover them all)
        out.append((a, b, str(int(value))))
    return sorted(out)


def view_quantities(view) -> list[tuple[int, int]]:
    """`find_quantities` of a TextView's text, computed once per view (hints and decoding share it); the
    units of the same matches are kept for `view_quantity_units`."""
    if "quantities" not in view.memo:
        found = list(QUANTITY_RX.finditer(view.text))
        view.memo["quantities"] = [m.span() for m in found]
        view.memo["quantity_units"] = [unit_key(m.group("unit")) for m in found]
        view.memo["approximators"] = _opening_approximators(found)
    return view.memo["quantities"]


def view_approximators(view) -> list[tuple[int, int]]:
    """`find_approximators` of a TextView's text, from the same matches as `view_quantities(view)`."""
    view_quantities(view)
    return view.memo["approximators"]


def _clean(text: str) -> str:
    t = to_halfwidth(to_simplified(text))
    t = re.sub(r"\s+", "", t)
    return t.replace("，", ",").replace("．", ".").replace("％", "%")


@lru_cache(maxsize=4096)
def _cn_number(s: str) -> Optional[float]:
    import cn2an

    s = s.replace("两", "二").replace("〇", "零")
    try:
        return float(cn2an.cn2an(s, "smart"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def parse_number(num: str) -> Optional[float]:
    if re.fullmatch(r"[0-9,]+(\.[0-9]+)?", num):
        return float(num.replace(",", ""))
    if num in _MULT:  # 逾千条, 近万次: a bare multiplier means one of it
        return _MULT[num]
    return _cn_number(num)


def parse_quantity(text: str) -> Optional[Quantity]:
    """Normalise a numeric span; None when the span holds no number (e.g. a zero-claim noun phrase)."""
    t = _clean(text)
    if t in ("零", "为零"):
        return Quantity(0.0, "", "exact")
    words = PERCENT_WORDS_RX.fullmatch(t)
    if words:
        value = parse_number(words.group("num"))
        return Quantity(value, "%", "exact") if value is not None else None
    m = _RX.match(t)
    if not m:
        return None
    value = parse_number(m.group("num"))
    if value is None:
        return None
    for ch in m.group("mult"):
        value *= _MULT[ch]
    unit = m.group("unit")
    # A multiplier written inside the unit (万元, 万份, 亿次) goes into the value.
    while unit[:1] in _MULT and len(unit) > 1:
        value *= _MULT[unit[0]]
        unit = unit[1:]
    if unit[:1] in ("多", "余"):
        unit = unit[1:]
        more = True
    else:
        more = bool(m.group("more1") or m.group("more2"))
    qualifier = "exact"
    if m.group("pre"):
        qualifier = APPROX_BEFORE[m.group("pre")]
    elif more:
        qualifier = "more_than"
    elif m.group("post"):
        qualifier = "approx"
    if m.group("post") and qualifier == "exact":
        qualifier = "approx"
    if value == int(value):
        value = float(int(value))
    return Quantity(round(value, 6), unit, qualifier)
