"""Other ways reports write the same quantity: Chinese numerals (`一千一百三十六件`, `两起`), thousands
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
    return claim.translate(str.maketrans("0123456789.", "０１２３４５６７８９．"))


def _wan(claim: str) -> Optional[str]:
    """`22400次` → `2.24万次`, `3000份` → `3千份` (mixed forms; only where they are exact)."""
    got = _int_of(claim)
    if not got or got[1] < 1000 or got[1] % 100 or "万" in claim or "千" in claim:
        return None
    m, n = got
    mixed = f"{n / 10_000:g}万" if n >= 10_000 else f"{n / 1000:g}千"
    return claim[:m.start()] + mixed + claim[m.end():]


def _hedge(claim: str) -> Optional[str]:
    if not _NUMBER.match(claim) or any(w in claim for w in ("约", "近", "余", "多", "左右", "超过", "逾")):
        return None
    return "约" + claim


def _pdf_spacing(claim: str) -> Optional[str]:
    m = _NUMBER.search(claim)
    if not m or m.end() >= len(claim):
        return None
    return claim[:m.end()] + " " + claim[m.end():]


REWRITES = [Rewrite("chinese_numerals", _chinese), Rewrite("thousands_separator", _thousands),
            Rewrite("fullwidth_digits", _fullwidth), Rewrite("wan_unit", _wan), Rewrite("hedge", _hedge),
            Rewrite("pdf_spacing", _pdf_spacing), Rewrite("traditional", lambda c: None, whole_sentence=True)]
