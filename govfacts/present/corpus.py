"""A fact table grouped by report, a column at a time: what `govfacts summarize` computes per report.

A corpus of 10,000 reports holds most of a million facts; a Python object and a loop per fact and label
take tens of seconds where whole-column operations take a fraction of one. The rules are those of the
summary (govfacts/present/summarize.py) and give the same numbers as applying them fact by fact:
ties go to the first fact in file order, sums add in file order, a repeated table cell keeps its last value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from govfacts.labels import LabelSet
from govfacts.records import Fact
from govfacts.tables import TOTAL_CELLS


@dataclass(frozen=True)
class Reports:
    """The reports of a fact table: `code[i]` is the report of fact i, `names[c]` its doc_id; codes
    follow the order in which reports first appear in the file."""

    code: np.ndarray
    names: list[str]

    @property
    def by_doc_id(self) -> list[int]:
        """Report codes in doc_id order (the rows of the wide table)."""
        return sorted(range(len(self.names)), key=self.names.__getitem__)


def reports(table: pa.Table) -> Reports:
    enc = pc.dictionary_encode(table["doc_id"]).combine_chunks()
    return Reports(enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist())


def _np(mask) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _first(r: Reports, col: pa.ChunkedArray, mask: np.ndarray, last: bool = False) -> list:
    """Per report, the value of `col` at its first (or last) fact where `mask` holds; None where none does."""
    idx = np.flatnonzero(mask)
    if last:
        idx = idx[::-1]
    codes, pos = np.unique(r.code[idx], return_index=True)
    out: list = [None] * len(r.names)
    for c, v in zip(codes.tolist(), col.take(pa.array(idx[pos])).to_pylist()):
        out[c] = v
    return out


def agency_year(table: pa.Table, r: Reports) -> tuple[list[Optional[str]], list[Optional[int]]]:
    """A report's agency and year: those of its first fact that names one."""
    a, y = table["agency"], table["year"]
    return (_first(r, a, _np(pc.not_equal(a, ""))), _first(r, y, _np(pc.not_equal(y, 0))))


def table_totals(table: pa.Table, r: Reports, metrics: list[str]) -> dict[str, list[Optional[float]]]:
    """Per metric with template total cells, per report the sum of those cells where it has them all."""
    base = _np(pc.and_(pc.equal(table["source"], "table"), pc.is_valid(table["value"])))
    out = {}
    for m in metrics:
        keys = TOTAL_CELLS.get(m)
        if not keys:
            continue
        total, have = np.zeros(len(r.names)), np.ones(len(r.names), dtype=bool)
        for k in keys:
            v = _first(r, table["value"], base & _np(pc.equal(table["cell"], k)), last=True)
            have &= np.array([x is not None for x in v], dtype=bool)
            total += np.array([np.nan if x is None else x for x in v], dtype=float)
        out[m] = [float(t) if h else None for t, h in zip(total.tolist(), have.tolist())]
    return out


def prose_numbers(table: pa.Table, r: Reports, labels: LabelSet) -> dict[str, list[Optional[float]]]:
    """Per label, per report the number its prose facts give by the label's rule: the value of the most
    confident claim (then the larger value, then the first), or the sum of the claims."""
    n = len(r.names)
    out: dict[str, list[Optional[float]]] = {lab.name: [None] * n for lab in labels.labels}
    idx = np.flatnonzero(_np(pc.and_(pc.equal(table["source"], "prose"), pc.is_valid(table["value"]))))
    metric = pc.dictionary_encode(table["metric"].take(pa.array(idx))).combine_chunks()
    names = metric.dictionary.to_pylist()
    m = metric.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    d = r.code[idx]
    conf = table["confidence"].to_numpy()[idx]
    value = table["value"].to_numpy()[idx]
    order = np.lexsort((idx, -value, -conf, m, d))  # per (report, metric) the winner first
    key = d[order] * len(names) + m[order]
    first = order[np.r_[True, key[1:] != key[:-1]]] if len(order) else order
    rule = {lab.name: lab.aggregate for lab in labels.labels}
    for i in first.tolist():
        name = names[m[i]]
        if rule.get(name) == "top":
            out[name][d[i]] = float(value[i])
    summed = [j for j, name in enumerate(names) if rule.get(name) == "sum"]
    if summed:
        sel = np.flatnonzero(np.isin(m, summed))
        acc: dict[tuple[int, int], float] = {}
        for dd, mm, v in zip(d[sel].tolist(), m[sel].tolist(), value[sel].tolist()):  # file order, as sum() adds
            acc[dd, mm] = acc.get((dd, mm), 0) + v
        for (dd, mm), v in acc.items():
            out[names[mm]][dd] = float(v)
    return out


def wide_rows(table: pa.Table, r: Reports, labels: LabelSet) -> list[dict]:
    """One row per report in doc_id order: agency, year, doc_id and one number per label (the template
    table's total where the report has it, else the label's rule over its prose facts)."""
    agency, year = agency_year(table, r)
    prose = prose_numbers(table, r, labels)
    totals = table_totals(table, r, labels.names)
    rows = []
    for c in r.by_doc_id:
        row = {"agency": agency[c] or f"({r.names[c]})", "year": year[c], "doc_id": r.names[c]}
        for name in labels.names:
            t = totals.get(name)
            row[name] = t[c] if t is not None and t[c] is not None else prose[name][c]
        rows.append(row)
    return rows


def cells_by_report(table: pa.Table, r: Reports) -> dict[int, dict[str, float]]:
    """Per report code (in file order) its template cells, key → value (a repeated cell keeps its last value)."""
    cell = table["cell"]
    idx = np.flatnonzero(_np(pc.and_(pc.and_(pc.equal(table["source"], "table"), pc.not_equal(cell, "")),
                                     pc.is_valid(table["value"]))))
    sel = pa.array(idx)
    out: dict[int, dict[str, float]] = {}
    for c, k, v in zip(r.code[idx].tolist(), cell.take(sel).to_pylist(), table["value"].take(sel).to_pylist()):
        out.setdefault(c, {})[k] = v
    return dict(sorted(out.items()))


def lowest_prose(table: pa.Table, n: int) -> tuple[list[float], list[Fact]]:
    """The confidences of all prose facts (file order) and the `n` least confident of them (ties in file order)."""
    idx = np.flatnonzero(_np(pc.equal(table["source"], "prose")))
    conf = table["confidence"].to_numpy()[idx]
    low = idx[np.argsort(conf, kind="stable")[:n]]
    return conf.tolist(), [Fact(**row) for row in table.take(pa.array(low)).to_pylist()]
