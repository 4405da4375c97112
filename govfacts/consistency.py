"""Numbers in a labelled report that no span covers and no 'not tagged' rule of the contract explains.

The contract leaves years, dates, document numbers, addresses, phone numbers, postcodes, ordinals,
section numbers, shares and growth rates untagged; those are explained here automatically. Any other
uncovered number must be a reviewed `data.not_tagged` entry (with a reason) or lie in an out-of-scope
table region — otherwise it is listed for review.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from govfacts.annotations import AnnotatedDoc

CLASSIFIERS = "条次件个人篇场期项份名起宗余多万亿千元户家通席"
NUMBER_RX = re.compile(r"[0-9０-９][0-9０-９,，.．]*|(?<![0-9０-９.．])[零〇一二两三四五六七八九十百千万亿]+(?=[" + CLASSIFIERS + "])")


@dataclass
class Uncovered:
    doc_id: str
    start: int
    end: int
    number: str
    context: str


def explain(text: str, s: int, e: int) -> Optional[str]:
    """Why the number text[s:e] needs no span under the contract's 'not tagged' list, or None."""
    tok = text[s:e].rstrip(",，.．")
    before, after = text[max(0, s - 6):s], text[e:e + 4]
    digits = re.sub(r"[^0-9０-９]", "", tok)
    if text[e - 1:e] in ".．" and re.match(r"[.．]\s*[^0-9]", text[e - 1:e + 2]) and len(digits) <= 2 \
            and (s == 0 or not text[s - 1].isdigit()):
        return "section number"
    if re.fullmatch(r"(19|20)\d\d", digits) and (after[:1] in "年-/.．—–至" or before[-1:] in "〔[【(（"
                                                 or re.match(r"\s*年", after)):
        return "year"
    if re.match(r"\s*[月日时:：]", after) or (before.endswith(("月", ":", "：")) and len(digits) <= 2):
        return "date/time"
    if before[-1:] in "〔[" or re.match(r"\s*号", after):
        return "document number"
    if "第" in before[-2:]:
        return "ordinal"
    if (re.match(r"\s*[、）)．]", after) and len(digits) <= 2) or (before[-1:] in "（(" and re.match(r"\s*[）)]", after)):
        return "section number"
    if re.search(r"(电话|传真|邮编|邮箱|地址)[:：]\s*$|(路|号楼)\s*$", before) or \
            re.search(r"[A-Za-z@._-]", text[s - 1:s] + text[e:e + 1]):
        return "phone/postcode/address/url"
    if digits in ("12333", "12345", "110", "12315", "12366", "12348"):
        return "hotline name"
    if re.search(r"(占|增长|下降|减少|增加|提高|提升|同比|环比|比例)[了为达约]?\s*$", before):
        return "share or change"
    if len(digits) >= 5 and not re.match(r"\s*[" + CLASSIFIERS + "]", after):
        return "phone/postcode/address/url"
    if re.fullmatch(r"\s*-\s*", before[-3:]) and re.match(r"\s*-", after):
        return "page number"
    return None


def uncovered_numbers(doc: AnnotatedDoc) -> list[Uncovered]:
    """Numbers of `doc` outside spans, table regions and reviewed not-tagged entries, and not explained."""
    covered = [(s.start, s.end) for s in doc.spans] + list(doc.ignore) + \
        [(int(n["start"]), int(n["end"])) for n in doc.not_tagged]
    out = []
    for m in NUMBER_RX.finditer(doc.text):
        if any(a <= m.start() < b for a, b in covered) or explain(doc.text, m.start(), m.end()):
            continue
        ctx = doc.text[max(0, m.start() - 15):m.start()] + "【" + m.group() + "】" + doc.text[m.end():m.end() + 12]
        out.append(Uncovered(doc.doc_id, m.start(), m.end(), m.group(), ctx.replace("\n", "⏎")))
    return out
