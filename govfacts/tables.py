"""The national template's statistics tables read from a report's text: every cell with its key.

The template (configs/tables.yaml, spec shared/spec/tables.md) fixes the rows, their Chinese labels and
their order, so a row is found by its label and its cells are the numbers that follow it. One reader
serves every form a table reaches us in, because each becomes text first (`govfacts.reader`): HTML
tables (cells separated by spaces, one row per line), PDF text (the same, with wrapped labels) and web
text whose cells run together (`一、本年新收政府信息公开申请数量801000081`). A row with as many numbers
as columns is read as written; a run of digits is split by the template's own arithmetic (a requests
row's total is the sum of its columns; the columns balance across rows; an appeal group's total is the
sum of its results). A run that more than one split satisfies yields no cell: it is listed as
ambiguous, never guessed.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from govfacts.paths import CONFIGS
from govfacts.settings import read_yaml
from govfacts.textview import TextView, build_view

REGION_GAP = 200  # characters of headers between two rows of one template table
MAX_COMBINATIONS = 20_000  # split candidates tried per table before a row is given up as ambiguous


@dataclass(frozen=True)
class Cell:
    """One template cell: its key, value and where its number stands in the raw text."""

    key: str
    value: float
    text: str
    start: int
    end: int
    how: str  # separated: cells apart as printed; split: a run split by its row's arithmetic; settled: by the
    # whole table's column rules; layout: a PDF number line given to the row left without numbers
    metric: str = ""
    unit: str = ""
    row_start: int = -1  # raw span of the cell's row: its label and its numbers (the evidence of a table fact)
    row_end: int = -1


@dataclass
class TableRead:
    """The tables of one document: the cells read, and the rows whose numbers could not be read one way."""

    template: Optional[str] = None
    cells: list[Cell] = field(default_factory=list)
    ambiguous: list[dict] = field(default_factory=list)  # {row, run, start, end, splits}

    def values(self) -> dict[str, float]:
        return {c.key: c.value for c in self.cells}

    def regions(self, gap: int = REGION_GAP) -> list[tuple[int, int]]:
        """Raw [start, end) of the template tables: the rows read (cells and ambiguous runs), rows less than
        `gap` characters apart joined. Their numbers are table facts, never prose claims."""
        rows = sorted({(c.row_start, c.row_end) for c in self.cells if c.row_start >= 0}
                      | {(a["start"], a["end"]) for a in self.ambiguous})
        out: list[list[int]] = []
        for a, b in rows:
            if out and a - out[-1][1] <= gap:
                out[-1][1] = max(out[-1][1], b)
            else:
                out.append([a, b])
        return [(a, b) for a, b in out]


@lru_cache(maxsize=4)
def load_spec(path: Optional[str] = None) -> dict:
    return read_yaml(path or CONFIGS / "tables.yaml")


# The cell(s) holding a label's yearly total in the template tables (the summary's number per report, and
# what a prose claim of the year's total is checked against).
TOTAL_CELLS = {"APPLICATIONS_RECEIVED": ["requests.new.total"],
               "APPLICATIONS_ANSWERED": ["requests.total_handled.total"],
               "RECONSIDERATIONS": ["review.total"],
               "LAWSUITS": ["litigation_direct.total", "litigation_after_review.total"],
               "FEES": ["proactive.fees.amount"]}

# how sure a cell is, by how it was read
CONFIDENCE = {"separated": 0.99, "split": 0.95, "settled": 0.9, "layout": 0.9}
TABLES_ID = "tables@1"  # the `extractor` of table facts: the reader and configs/tables.yaml version


def cell_metric(key: str, spec: dict) -> tuple[str, str]:
    """(metric, unit) of a cell key: the first of the spec's metrics whose prefix the key starts with
    (remembered per spec: a report's tables hold a hundred cells, a batch thousands of reports)."""
    memo = _METRIC_MEMO.get(id(spec))
    if memo is None or memo[0] is not spec:
        memo = _METRIC_MEMO[id(spec)] = (spec, {})
    found = memo[1].get(key)
    if found is None:
        found = memo[1][key] = _cell_metric(key, spec)
    return found


_METRIC_MEMO: dict[int, tuple[dict, dict[str, tuple[str, str]]]] = {}


def _cell_metric(key: str, spec: dict) -> tuple[str, str]:
    for m in spec["metrics"]:
        if key == m["prefix"] or key.startswith(m["prefix"] + ".") or key.startswith(m["prefix"] + "_"):
            return m["metric"], m["unit"]
    return "TABLE_OTHER", ""


def cell_keys(spec: Optional[dict] = None) -> list[str]:
    """Every cell key of both templates, in template order (duplicates once)."""
    spec = spec or load_spec()
    keys: list[str] = []
    for t in ("2021", "2019"):
        tmpl = spec["templates"][t]
        keys += [f"proactive.{r['row']}.{c}" for r in tmpl["proactive"] for c in r["columns"]]
        for r in spec["requests"]:
            rows = tmpl["requests_other"] if r["row"] == "OTHER" else [r]
            keys += [f"requests.{x['row']}.{c}" for x in rows for c in spec["requests_columns"]]
    keys += [f"{g}.{c}" for g in spec["appeals_groups"] for c in spec["appeals_columns"]]
    return list(dict.fromkeys(keys))


def table_cells_markdown() -> str:
    spec = load_spec()
    rows = ["| cell | metric | unit |", "|---|---|---|"]
    rows += [f"| {k} | {m} | {u} |" for k in cell_keys(spec) for m, u in [cell_metric(k, spec)]]
    return "\n".join(rows)


# -- the text as the reader sees it ------------------------------------------------------------------
_NON_SPACE = re.compile(r"\S+")


class _Squeezed:
    """The simplified, half-width view without whitespace (labels wrap and gain spaces in PDF text),
    with the map back to view and raw offsets."""

    def __init__(self, raw: str):
        self.view: TextView = build_view(raw, join_lines=False, drop_spaces=False)
        runs = [m.span() for m in _NON_SPACE.finditer(self.view.text)]  # `\S` is `not str.isspace()`
        self.text = "".join(self.view.text[a:b] for a, b in runs)
        self.to_view = list(itertools.chain.from_iterable(range(a, b) for a, b in runs))

    def raw_span(self, s: int, e: int) -> tuple[int, int]:
        return self.view.to_raw(self.to_view[s], self.to_view[e - 1] + 1)

    def view_pos(self, s: int) -> int:
        return self.to_view[s] if s < len(self.to_view) else len(self.view.text)


_NUM = re.compile(r"\d+(?:\.\d+)?")


def _numbers_after(sq: _Squeezed, pos: int, stop: int, skip_text: bool = False) -> tuple[str, int, int]:
    """The run of numbers (digits, '.', whitespace) that starts at squeezed `pos` (with `skip_text`:
    at the first digit after it), up to `stop`: (its view text, view start, view end)."""
    v = sq.view.text
    a = sq.view_pos(pos)
    limit = sq.view_pos(stop)
    while a < limit and v[a].isspace():
        a += 1
    if skip_text:
        while a < limit and not v[a].isdigit():
            a += 1
    b = a
    while b < limit and (v[b].isdigit() or v[b] in " \t\n.,"):
        b += 1
    while b > a and not v[b - 1].isdigit():
        b -= 1
    if b < len(v) and v[b] == "." and not v[b + 1:b + 2].isdigit():  # `5.要求…`: the number of the next label
        b = a + len(v[a:b].rstrip("0123456789"))
        while b > a and not v[b - 1].isdigit():
            b -= 1
    return v[a:b], a, b


# -- splitting runs by arithmetic ---------------------------------------------------------------------
def compositions(digits: str, k: int, decimal_last: bool = False) -> list[list[str]]:
    """Every way to cut `digits` into `k` numbers written without leading zeros ('0' itself allowed);
    with `decimal_last` the last part may hold the one '.'."""
    n = len(digits)
    out = []
    if k <= 0 or n < k:
        return out
    for cuts in itertools.combinations(range(1, n), k - 1):
        parts = [digits[a:b] for a, b in zip((0, *cuts), (*cuts, n))]
        ok = True
        for i, p in enumerate(parts):
            if "." in p and not (decimal_last and i == k - 1 and not p.startswith(".") and not p.endswith(".")):
                ok = False
                break
            whole = p.split(".")[0]
            if len(whole) > 1 and whole[0] == "0":
                ok = False
                break
        if ok:
            out.append(parts)
        if len(out) > MAX_COMBINATIONS:
            break
    return out


def _sum_rule(parts: list[str], groups: int = 1) -> bool:
    """Each group of parts: the last is the sum of the others."""
    size = len(parts) // groups
    vals = [float(p) for p in parts]
    return all(abs(sum(vals[g * size:(g + 1) * size - 1]) - vals[(g + 1) * size - 1]) < 1e-6 for g in range(groups))


@dataclass
class _Row:
    key: str  # e.g. requests.new
    columns: list[str]
    run: str  # view text of the numbers
    start: int  # view offsets
    end: int
    candidates: list[list[str]]  # possible cell texts
    how: str
    label: tuple[int, int] = (-1, -1)  # view span of the row's label (none for the appeals row)


def _candidates(run: str, ncols: int, rule, decimal: bool) -> tuple[list[list[str]], str]:
    tokens = run.split()
    if len(tokens) == ncols and all(_NUM.fullmatch(t) for t in tokens):
        return [tokens], "separated"
    digits = "".join(tokens)
    if not re.fullmatch(r"[0-9.]+", digits):
        return [], "split"
    cands = compositions(digits, ncols, decimal_last=decimal)
    if rule is not None:
        cands = [c for c in cands if rule(c)]
    return cands, "split"


def _cells_of(row: _Row, parts: list[str], sq: _Squeezed, spec: dict) -> list[Cell]:
    """Cells with raw offsets: each part located in the run, left to right."""
    out, pos = [], row.start
    view = sq.view
    a = min(row.start, row.label[0]) if row.label[0] >= 0 else row.start
    b = max(row.end, row.label[1])
    row_start, row_end = view.to_raw(a, b)
    for col, part in zip(row.columns, parts):
        digits_seen, s = "", None
        i = pos
        while i < row.end and len(digits_seen) < len(part):
            if not view.text[i].isspace():
                if s is None:
                    s = i
                digits_seen += view.text[i]
            i += 1
        s = pos if s is None else s
        rs, re_ = view.to_raw(s, i)
        key = f"{row.key}.{col}" if row.key else col
        metric, unit = cell_metric(key, spec)
        out.append(Cell(key, float(part), view.raw[rs:re_], rs, re_, row.how, metric, unit, row_start, row_end))
        pos = i
    return out


# -- the three tables -----------------------------------------------------------------------------------
def _find(sq: _Squeezed, pattern: str, start: int, end: int) -> Optional[re.Match]:
    return re.compile(pattern).search(sq.text, start, end)


def read_tables(raw: str, spec: Optional[dict] = None) -> TableRead:
    """The template tables of a report text (none for reports without them)."""
    spec = spec or load_spec()
    sq = _Squeezed(raw)
    out = TableRead()
    req = _find(sq, spec["requests"][0]["label"], 0, len(sq.text))
    if req is None:
        return out
    t2019 = spec["templates"]["2019"]
    out.template = "2019" if _find(sq, t2019["proactive_header"], 0, req.start()) else "2021"
    tmpl = spec["templates"][out.template]
    rows: list[_Row] = []
    _proactive_rows(sq, tmpl, req.start(), rows)
    end_req = _requests_rows(sq, spec, tmpl, req, rows)
    _appeals_row(sq, spec, end_req, rows)
    _resolve(sq, spec, rows, out)
    return out


def _row_at(sq, key, columns, label: re.Match, stop, rule, decimal) -> Optional[_Row]:
    run, a, b = _numbers_after(sq, label.end(), stop)
    if not run.strip():
        return None
    cands, how = _candidates(run, len(columns), rule, decimal)
    return _Row(key, columns, run, a, b, cands, how, _view_span(sq, label))


def _view_span(sq: _Squeezed, m: re.Match) -> tuple[int, int]:
    return sq.view_pos(m.start()), sq.to_view[m.end() - 1] + 1


def _proactive_rows(sq: _Squeezed, tmpl: dict, end: int, rows: list[_Row]) -> None:
    header = _find(sq, tmpl["proactive_header"], 0, end)
    if header is None:
        return
    cursor = header.end()
    specs = tmpl["proactive"]
    found = []
    for r in specs:
        m = _find(sq, r["label"] + r"(?=[0-9\-])", cursor, end)
        if m is None:
            continue
        found.append((r, m))
        cursor = m.end()
    for i, (r, m) in enumerate(found):
        stop = found[i + 1][1].start() if i + 1 < len(found) else end
        row = _row_at(sq, f"proactive.{r['row']}", r["columns"], m, stop, None, bool(r.get("decimal")))
        if row:
            rows.append(row)


def _requests_rows(sq: _Squeezed, spec: dict, tmpl: dict, first: re.Match, rows: list[_Row]) -> int:
    """The rows of the requests table. In PDF text a row's numbers may stand on a line of their own
    before or inside a wrapped label: such lines are given to the rows left without numbers, in order,
    only when there are as many of each and the table then balances (rules 2 and 3)."""
    cols = spec["requests_columns"]
    order = []
    for r in spec["requests"]:
        order += tmpl["requests_other"] if r["row"] == "OTHER" else [r]
    found, cursor = [], first.start()
    limit = min(len(sq.text), first.start() + 6000)
    for r in order:
        m = _find(sq, r["label"], cursor, limit)
        if m is None:
            continue
        found.append((r, m))
        cursor = m.end()
    if not found:
        return cursor
    n = len(cols)
    v = sq.view.text
    used: list[tuple[int, int]] = []
    mine, empty = [], []
    for i, (r, m) in enumerate(found):
        stop = found[i + 1][1].start() if i + 1 < len(found) else limit
        key = f"requests.{r['row']}"
        run, a, b = _numbers_after(sq, m.end(), stop)
        lines = [ln.split() for ln in run.split("\n") if ln.strip()]
        if len(run.split()) > n and len(lines[0]) == n and all(len(ln) == n for ln in lines):
            b = a + run.index("\n")  # the label's own line; the lines after it are numbers of other rows
            run = v[a:b]
        if not run.strip():
            empty.append((key, m))
            continue
        cands, how = _candidates(run, n, _sum_rule, False)
        mine.append(_Row(key, cols, run, a, b, cands, how, _view_span(sq, m)))
        used.append((a, b))
    rows.extend(mine)
    if empty:
        rows.extend(_orphans(sq, found, used, empty, cols, limit, mine))
    return cursor


_NUMBER_LINE = re.compile(r"(?m)^[ \t]*\d+(?:[ \t]+\d+)*[ \t]*$")


def _orphans(sq, found, used, empty, cols, limit, mine) -> list[_Row]:
    """Lines of exactly len(cols) numbers inside the table that no label took, matched to the rows
    without numbers in document order; kept only if the whole table then satisfies the column rules."""
    v = sq.view.text
    a0, b0 = sq.view_pos(found[0][1].start()), sq.view_pos(limit)
    lines = []
    for m in _NUMBER_LINE.finditer(v, a0, b0):
        if len(m.group().split()) == len(cols) and not any(a <= m.start() < b for a, b in used):
            s = m.start() + len(m.group()) - len(m.group().lstrip())
            lines.append((s, m.end()))
    if len(lines) != len(empty):
        return []
    rows = [_Row(key, cols, v[a:b].strip(), a, a + len(v[a:b].rstrip()), [v[a:b].split()], "layout",
                 _view_span(sq, m)) for (key, m), (a, b) in zip(empty, lines)]
    vals = {}
    for r in mine + rows:
        if len(r.candidates) == 1:
            vals.update({f"{r.key}.{c}": float(p) for c, p in zip(cols, r.candidates[0])})
    return rows if _column_rules(vals, cols) else []


def _appeals_row(sq: _Squeezed, spec: dict, start: int, rows: list[_Row]) -> None:
    anchor = _find(sq, spec["appeals_anchor"], start, len(sq.text))
    if anchor is None:
        return
    cols = [f"{g}.{c}" for g in spec["appeals_groups"] for c in spec["appeals_columns"]]
    # the first run of numbers after the column headers (which end with 总计)
    heads = list(re.finditer("总计", sq.text[anchor.end():anchor.end() + 400]))
    if not heads:
        return
    pos = anchor.end() + heads[-1].end()
    run, a, b = _numbers_after(sq, pos, min(len(sq.text), pos + 200), skip_text=True)
    if not run.strip():
        return
    cands, how = _candidates(run, 15, lambda p: _sum_rule(p, groups=3), False)
    rows.append(_Row("", cols, run, a, b, cands, how))


def _column_rules(vals: dict[str, float], cols: list[str]) -> bool:
    """tables.md rules 2 and 3 per column, where the rows are present."""
    outcome_rows = [k for k in {key.rsplit(".", 1)[0] for key in vals}
                    if k.startswith("requests.") and k not in ("requests.new", "requests.carried_in",
                                                               "requests.total_handled", "requests.carried_out")]
    for c in cols:
        get = lambda row: vals.get(f"{row}.{c}")  # noqa: E731
        new, cin, tot, cout = get("requests.new"), get("requests.carried_in"), get("requests.total_handled"), \
            get("requests.carried_out")
        if None not in (new, cin, tot, cout) and abs(new + cin - tot - cout) > 1e-6:
            return False
        outs = [get(r) for r in outcome_rows]
        if tot is not None and outs and None not in outs and abs(sum(outs) - tot) > 1e-6:
            return False
    return True


def _resolve(sq: _Squeezed, spec: dict, rows: list[_Row], out: TableRead) -> None:
    """Rows with one candidate become cells; rows of the requests table with several are settled by the
    column rules when exactly one combination satisfies them; the rest are ambiguous."""
    cols = spec["requests_columns"]
    fixed: dict[str, float] = {}
    open_rows = []
    for row in rows:
        if len(row.candidates) == 1:
            for cell in _cells_of(row, row.candidates[0], sq, spec):
                fixed[cell.key] = cell.value
        elif row.candidates and row.key.startswith("requests."):
            open_rows.append(row)
    settled: dict[int, list[str]] = {}
    if open_rows:
        sizes = [len(r.candidates) for r in open_rows]
        total = 1
        for s in sizes:
            total *= s
        if total <= MAX_COMBINATIONS:
            good = []
            for combo in itertools.product(*[r.candidates for r in open_rows]):
                vals = dict(fixed)
                for r, parts in zip(open_rows, combo):
                    vals.update({f"{r.key}.{c}": float(p) for c, p in zip(r.columns, parts)})
                if _column_rules(vals, cols):
                    good.append(combo)
                    if len(good) > 1:
                        break
            if len(good) == 1:
                settled = {id(r): parts for r, parts in zip(open_rows, good[0])}
    for row in rows:
        parts = row.candidates[0] if len(row.candidates) == 1 else settled.get(id(row))
        if parts is not None:
            if id(row) in settled:
                row.how = "settled"
            out.cells.extend(_cells_of(row, parts, sq, spec))
        else:
            rs, re_ = sq.view.to_raw(row.start, row.end)
            out.ambiguous.append({"row": row.key or "review_and_litigation", "run": row.run, "start": rs,
                                  "end": re_, "splits": len(row.candidates)})
