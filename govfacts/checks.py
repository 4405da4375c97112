"""`govfacts check`: the template's own arithmetic (勾稽关系) as an audit of each report's facts.

Findings are data about a report — a row total that is not the sum of its columns, a table that does
not balance, a prose claim that contradicts the same report's table — not errors of govfacts. A check
runs only where every cell it needs was read (an ambiguous row is never guessed into a finding).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Optional

from govfacts.records import Fact
from govfacts.tables import TOTAL_CELLS, load_spec

CHECKS = ("row_total", "balance", "outcomes_total", "appeal_total", "prose_vs_table")
_EDGE = ("new", "carried_in", "total_handled", "carried_out")
# Outcome rows of each template: the requests rows that add up to total_handled.
_OUTCOMES_2019 = 19
_OUTCOMES_2021 = 21
# A prose claim about the whole year's total (not a part of it): a cue before it in its clause.
_WHOLE = re.compile(r"(共|全年|总计|合计|累计|总数)[^，,；;。：:]{0,25}$")
_PART = re.compile(r"其中|分别|网上|信函|当面|传真|电子邮件|现场")
# Fees are left out: prose states them in 元, the table in 万元.
PROSE_TO_CELLS = {k: v for k, v in TOTAL_CELLS.items() if k != "FEES"}


@dataclass
class Finding:
    doc_id: str
    check: str
    cells: list[str]
    expected: Optional[float]
    found: Optional[float]
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def _num(x: float) -> str:
    return f"{x:g}"


def check_document(doc_id: str, facts: list[Fact], text: Optional[str] = None) -> list[Finding]:
    """Every finding of one report's facts; `text` (the document text) lets prose claims be read in context."""
    cells = {f.cell: f.value for f in facts if f.source == "table" and f.cell and f.value is not None}
    return check_cells(doc_id, cells) + _prose_vs_table(doc_id, facts, cells, text)


def check_cells(doc_id: str, cells: dict[str, float]) -> list[Finding]:
    """The findings of one report's template tables alone (cell key → value): what a facts file tells
    without the report's text (`govfacts summarize` reads the cells column by column)."""
    spec = load_spec()
    cols = spec["requests_columns"]
    out: list[Finding] = []
    rows = sorted({k.rsplit(".", 1)[0] for k in cells if k.startswith("requests.")})
    for row in rows:  # 1. row total = the sum of the six applicant columns
        keys = [f"{row}.{c}" for c in cols]
        if all(k in cells for k in keys):
            parts = sum(cells[k] for k in keys[:-1])
            if abs(parts - cells[keys[-1]]) > 1e-6:
                out.append(Finding(doc_id, "row_total", keys, parts, cells[keys[-1]],
                                   f"{row}: the columns add up to {_num(parts)}, the total cell says "
                                   f"{_num(cells[keys[-1]])}"))
    outcome_rows = [r for r in rows if r.split(".", 1)[1] not in _EDGE]
    for c in cols:  # 2. new + carried_in = total_handled + carried_out; 3. total_handled = sum of outcomes
        k = {e: f"requests.{e}.{c}" for e in _EDGE}
        if all(v in cells for v in k.values()):
            lhs, rhs = cells[k["new"]] + cells[k["carried_in"]], cells[k["total_handled"]] + cells[k["carried_out"]]
            if abs(lhs - rhs) > 1e-6:
                out.append(Finding(doc_id, "balance", list(k.values()), lhs, rhs,
                                   f"column {c}: new + carried in = {_num(lhs)}, handled + carried out = {_num(rhs)}"))
        keys = [f"{r}.{c}" for r in outcome_rows]
        tot = f"requests.total_handled.{c}"
        if len(outcome_rows) in (_OUTCOMES_2019, _OUTCOMES_2021) and tot in cells and all(x in cells for x in keys):
            s = sum(cells[x] for x in keys)
            if abs(s - cells[tot]) > 1e-6:
                out.append(Finding(doc_id, "outcomes_total", [tot, *keys], s, cells[tot],
                                   f"column {c}: the outcome rows add up to {_num(s)}, the handled total says "
                                   f"{_num(cells[tot])}"))
    for g in spec["appeals_groups"]:  # 4. an appeal group's total = the sum of its results
        keys = [f"{g}.{c}" for c in spec["appeals_columns"]]
        if all(k in cells for k in keys):
            s = sum(cells[k] for k in keys[:-1])
            if abs(s - cells[keys[-1]]) > 1e-6:
                out.append(Finding(doc_id, "appeal_total", keys, s, cells[keys[-1]],
                                   f"{g}: the results add up to {_num(s)}, the total cell says {_num(cells[keys[-1]])}"))
    return out


def _prose_vs_table(doc_id: str, facts: list[Fact], cells: dict, text: Optional[str]) -> list[Finding]:
    """A prose claim of the year's total that differs from the same report's table total. Only claims
    with a whole-year cue (共/全年/总计 …) in their clause and no part cue (其中/网上 …) count: a claim
    about one channel or one office is not a claim about the table's total."""
    out = []
    if text is None:
        return out
    for f in facts:
        keys = PROSE_TO_CELLS.get(f.metric)
        if f.source != "prose" or not keys or f.value is None or f.qualifier != "exact" \
                or not all(k in cells for k in keys):
            continue
        before = text[max(0, f.start - 40):f.start]
        clause = re.split(r"[，,；;。：:\n]", before)[-1]
        if not _WHOLE.search(before) or _PART.search(clause):
            continue
        table = sum(cells[k] for k in keys)
        if abs(table - f.value) > 1e-6:
            out.append(Finding(doc_id, "prose_vs_table", keys, table, f.value,
                               f"prose says {f.text!r} ({f.metric} {_num(f.value)}) at {f.start}, the table says "
                               f"{_num(table)}"))
    return out


def check_facts(facts: Iterable[Fact], read_text=None) -> list[Finding]:
    """Findings of every document of a facts file; `read_text(path)` gives a document's text (or None)."""
    by_doc: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        by_doc[f.doc_id].append(f)
    out = []
    for doc_id, fs in by_doc.items():
        text = read_text(fs[0].path) if read_text and fs[0].path and Path(fs[0].path).exists() else None
        out += check_document(doc_id, fs, text)
    return out
