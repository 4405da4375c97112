"""Other ways reports write the same quantity: Chinese numerals (`一千一百三十六件`, `两起`, `百分之九十八`), thousands
separators (`2,300余人次`), full-width digits, 万/千 units (`2.24万次`), a hedge (`约81件`) and PDF spacing
(`1136 件`). Each rewrite keeps the quantity's value (`govfacts.quantity.parse_quantity` reads the same
number back), so a claim rewritten is the same fact: the robustness suite checks extractors with these
rewrites and fine-tuning trains on them (`number_forms` in configs/finetune.yaml).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass
class Rewrite:
    """A claim rewritten: the new claim text, or None when the transformation does not apply."""

    name: str
    fn: Callable[[str], Optional[str]]
    whole_sentence: bool = False  # the sentence is rewritten as a whole (script, spacing)


def _int_of(claim: str) -> Optional[tuple[re.Match, int]]:
    m = _NUMBER.search(claim)
    if not m or "." in m.group() or m.start() > 2:
        return None
    return m, int(m.group())


def _chinese(claim: str) -> Optional[str]:
    got = _int_of(claim)
    if not got or got[1] > 99_999_999:
        return None
    m, n = got
    import cn2an

    if claim[m.end():] == "%" and m.start() == 0:  # a rate is written out whole: 百分之九十八, 百分之百
        return "百分之" + ("百" if n == 100 else cn2an.an2cn(n))
    cn = "两" if n == 2 else cn2an.an2cn(n)
    return claim[:m.start()] + cn + claim[m.end():]


def _thousands(claim: str) -> Optional[str]:
    got = _int_of(claim)
    if not got or got[1] < 1000:
        return None
    m, n = got
    return claim[:m.start()] + f"{n:,}" + claim[m.end():]


def _fullwidth(claim: str) -> Optional[str]:
    if not _NUMBER.search(claim):
        return None
    return claim.translate(str.maketrans("0123456789.%", "０１２３４５６７８９．％"))


def _wan(claim: str) -> Optional[str]:
    """`22400次` → `2.24万次`, `3000份` → `3千份` (mixed forms; only where they are exact)."""
    got = _int_of(claim)
    if not got or got[1] < 1000 or got[1] % 100 or "万" in claim or "千" in claim:
        return None
    m, n = got
    mixed = f"{n / 10_000:g}万" if n >= 10_000 else f"{n / 1000:g}千"
    return claim[:m.start()] + mixed + claim[m.end():]


# Approximators the label contract keeps inside a span (../shared/spec/labels.md): before the number,
# attached to it (after a multiplier), or after the unit.
HEDGES_BEFORE = ("约", "近", "逾", "超过", "将近", "大约")
HEDGES_ATTACHED = ("余", "多")
HEDGES_AFTER = ("左右",)
_HEDGE_WORDS = ("约", "近", "余", "多", "左右", "超", "逾")


def hedge_forms(claim: str) -> list[str]:
    """Every hedged form of an unhedged claim that starts with its number (`32条` → `约32条`, `近32条`, …,
    `32余条`, `32多条`, `32条左右`); none for a claim already hedged or not led by digits. The robustness
    suite's `hedge` rewrite is the first (`约`); fine-tuning draws among all (`hedges` in configs/finetune.yaml)."""
    m = _NUMBER.match(claim)
    if not m or any(w in claim for w in _HEDGE_WORDS):
        return []
    out = [w + claim for w in HEDGES_BEFORE]
    end = m.end() + (claim[m.end():m.end() + 1] in ("万", "千", "亿"))
    unit = claim[end:]
    if unit and not unit.startswith("%"):
        if end > m.end() or ("." not in m.group() and int(m.group()) >= 10):  # `30余条`, `2.2万余次`; not `3余名`
            out += [claim[:end] + w + unit for w in HEDGES_ATTACHED]
        out += [claim + w for w in HEDGES_AFTER]
    return out


def _hedge(claim: str) -> Optional[str]:
    forms = hedge_forms(claim)
    return forms[0] if forms else None


def _pdf_spacing(claim: str) -> Optional[str]:
    m = _NUMBER.search(claim)
    if not m or m.end() >= len(claim):
        return None
    return claim[:m.end()] + " " + claim[m.end():]


REWRITES = [Rewrite("chinese_numerals", _chinese), Rewrite("thousands_separator", _thousands),
            Rewrite("fullwidth_digits", _fullwidth), Rewrite("wan_unit", _wan), Rewrite("hedge", _hedge),
            Rewrite("pdf_spacing", _pdf_spacing), Rewrite("traditional", lambda c: None, whole_sentence=True)]
