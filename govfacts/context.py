"""Document context for facts: the reporting agency and the report year, read from the title lines."""
from __future__ import annotations

import re
from typing import Optional

from govfacts.textview import build_view

_TITLE = re.compile(
    r"(?P<year>(?:19|20)\d\d)年(?:度)?(?:的)?(?:政府|政务)?(?:信息)?(?:与政务|和政务)?(?:公开)(?:工作)?(?:情况)?(?:的)?"
    r"(?:年度)?(?:报告|总结)"
)
_AGENCY_END = r"(?:人民政府|政府|人力资源和社会保障局|人力资源和社会保障厅|人力资源社会保障局|人力资源社会保障厅|" \
              r"人力资源局|委员会|办公室|办公厅|实验区|地方税务局|税务局|局|厅|委|办|中心|院|署|管委会)"
_AGENCY = re.compile(r"([\u4e00-\u9fff]{2,30}?" + _AGENCY_END + r")$")


def detect_context(raw: str, head_chars: int = 1500) -> tuple[Optional[str], Optional[int]]:
    """(agency, year) from the report's title or first lines; None for what the text does not state."""
    t = build_view(raw[:head_chars], drop_spaces=False).text
    t = re.sub(r"(?<=\d)\s+(?=年)|(?<=年)\s+(?=度)", "", t)
    m = _TITLE.search(t)
    if not m:
        return None, None
    year = int(m.group("year"))
    before = t[:m.start()]
    before = re.split(r"[。；;！!？?\s]|首页|年报|>|》|：|:", before)[-1] if before else ""
    agency = None
    am = _AGENCY.search(before)
    if am:
        agency = am.group(1)
    else:
        # Title split over two lines (PDF): agency alone on the line before "2023年政府信息公开工作年度报告".
        lines = [ln.strip() for ln in raw[:head_chars].split("\n") if ln.strip()]
        for i, ln in enumerate(lines):
            if m.group("year") in ln and i > 0:
                am = _AGENCY.search(build_view(lines[i - 1], drop_spaces=False).text.strip())
                if am:
                    agency = am.group(1)
                break
    for prefix in ("现将", "现公布", "特向社会公布", "公布"):
        if agency and agency.startswith(prefix):
            agency = agency[len(prefix):]
    if agency and agency.startswith(("我", "本")):
        agency = None
    return agency, year
