"""Template-table cells read back against the table gold (annotations/tables/*.yaml), per report and
per form the report is stored in (HTML page, web or PDF text): cells read exactly, cells left out
because their row was ambiguous, and cells read wrong."""
from __future__ import annotations

from pathlib import Path

from govfacts.paths import ANNOTATIONS, ROOT
from govfacts.reader import ReadError, read_document
from govfacts.settings import read_yaml
from govfacts.tables import read_tables

FORMS = {".txt": "text", ".html": "html", ".htm": "html", ".pdf": "pdf"}


def table_accuracy(gold_dir: Path = ANNOTATIONS / "tables") -> list[dict]:
    """One row per (report, form) of the gold's `sources`."""
    rows = []
    for f in sorted(Path(gold_dir).glob("*.yaml")):
        gold = read_yaml(f)
        cells = {k: float(v) for k, v in (gold.get("cells") or {}).items() if v is not None}
        for src in gold.get("sources") or []:
            path = ROOT / src
            form = FORMS.get(path.suffix.lower(), path.suffix)
            try:
                got = read_tables(read_document(path).text).values()
            except ReadError as e:
                rows.append({"doc_id": gold["doc_id"], "form": form, "error": str(e)})
                continue
            exact = sum(1 for k, v in cells.items() if k in got and abs(got[k] - v) < 1e-6)
            wrong = sorted(k for k, v in cells.items() if k in got and abs(got[k] - v) >= 1e-6)
            rows.append({"doc_id": gold["doc_id"], "form": form, "cells": len(cells), "exact": exact,
                         "not_read": len(cells) - exact - len(wrong), "wrong": len(wrong), "wrong_cells": wrong,
                         "accuracy": exact / len(cells) if cells else None})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| report | form | cells | read exactly | not read (ambiguous) | wrong |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['doc_id']} | {r['form']} | – | – | – | {r['error']} |")
        else:
            lines.append(f"| {r['doc_id']} | {r['form']} | {r['cells']} | {r['exact']} | {r['not_read']} | {r['wrong']} |")
    return "\n".join(lines)
