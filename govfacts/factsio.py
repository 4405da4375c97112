"""The one reader and writer of fact files (.jsonl, .csv, .parquet), always written atomically.

Files are read into an Arrow table (`read_fact_table`): a corpus of 10,000 reports is most of a million
facts, which Arrow's JSON parser reads in a second or two where a Python object per fact takes ten times
longer; `read_facts` turns the table into `Fact`s for the commands that work fact by fact. A malformed
line does not stop the reading of the others: it is named by file and line (see `read_fact_table`).
"""
from __future__ import annotations

import csv
import json
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Iterable, Optional

import pyarrow as pa

from govfacts.atomic import atomic_path
from govfacts.records import FACT_FIELDS, Fact

FORMATS = {".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_TYPES = {"str": pa.string(), "float": pa.float64(), "int": pa.int64()}
# The columns of a fact table: Fact's fields with their Arrow types (Optional[x] is a nullable x).
FACT_SCHEMA = pa.schema([(f.name, _TYPES[str(f.type).removeprefix("Optional[").rstrip("]")]) for f in fields(Fact)])
# Filled in where a file leaves a field out (older files have no evidence), as Fact's own defaults are.
DEFAULTS = {f.name: f.default for f in fields(Fact) if f.default is not MISSING and f.default is not None}
# Fields a fact cannot be without: a line that lacks one is malformed.
REQUIRED = tuple(f.name for f in fields(Fact) if f.default is MISSING and not str(f.type).startswith("Optional"))
_CHUNK_LINES = 8192  # lines parsed together once a file is known to hold a malformed line


def output_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: output must end in .jsonl, .csv or .parquet")
    return FORMATS[suffix]


def write_facts(path: str | Path, facts: Iterable[Fact]) -> int:
    fmt = output_format(path)
    rows = [f.to_dict() for f in facts]
    with atomic_path(path) as tmp:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as fh:
                for r in rows:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=FACT_FIELDS)
                w.writeheader()
                w.writerows(rows)
        else:
            import pyarrow.parquet as pq

            cols = {k: [r[k] for r in rows] for k in FACT_FIELDS}
            pq.write_table(pa.table(cols), tmp)
    return len(rows)


def read_facts(path: str | Path, problems: Optional[list[str]] = None) -> list[Fact]:
    """The facts of a file as `Fact`s, in file order (`problems` as for `read_fact_table`)."""
    return [Fact(**r) for r in read_fact_table(path, problems=problems).to_pylist()]


def fact_table(facts: Iterable[Fact]) -> pa.Table:
    """Facts already in memory as a fact table."""
    return pa.Table.from_pylist([f.to_dict() for f in facts], schema=FACT_SCHEMA)


def read_fact_table(path: str | Path, columns: Optional[list[str]] = None,
                    problems: Optional[list[str]] = None) -> pa.Table:
    """The facts of a file as an Arrow table with `FACT_SCHEMA`'s columns (or only `columns`), in file order.

    A malformed line (not JSON, no object, a required field missing, a field of the wrong type) raises
    ValueError("FILE:LINE: reason"); given a `problems` list, the reason is appended there instead and the
    line is skipped, so one bad line does not cost the rest of the corpus."""
    fmt = output_format(path)
    schema = FACT_SCHEMA if columns is None else pa.schema([FACT_SCHEMA.field(c) for c in columns])
    if fmt == "jsonl":
        table = _read_jsonl(Path(path), schema, problems)
    elif fmt == "csv":
        table = _csv_table(Path(path), schema, problems)
    else:
        import pyarrow.parquet as pq

        have = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[c for c in schema.names if c in have])
        table = pa.table({c: table[c] if c in table.column_names else
                          pa.nulls(table.num_rows, schema.field(c).type) for c in schema.names})
        table = _with_defaults(table.cast(schema))
    return table


def _read_jsonl(path: Path, schema: pa.Schema, problems: Optional[list[str]]) -> pa.Table:
    """Arrow's parser over the whole file; where that fails (a malformed line), chunk by chunk, and a
    chunk that fails line by line, so every malformed line is found and named."""
    import pyarrow.json as pj

    opts = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        table = pj.read_json(path, read_options=pj.ReadOptions(block_size=4 << 20), parse_options=opts)
        if _complete(table):
            return _with_defaults(table)
    except pa.ArrowInvalid:
        pass
    found: list[str] = []
    tables = []
    with open(path, "rb") as fh:
        start, chunk = 1, []
        for line in fh:
            chunk.append(line)
            if len(chunk) == _CHUNK_LINES:
                tables.append(_read_chunk(chunk, start, path, schema, opts, found))
                start, chunk = start + len(chunk), []
        if chunk:
            tables.append(_read_chunk(chunk, start, path, schema, opts, found))
    _report(found, problems)
    return _with_defaults(pa.concat_tables(tables) if tables else schema.empty_table())


def _read_chunk(lines: list[bytes], first: int, path: Path, schema: pa.Schema, opts,
                found: list[str]) -> pa.Table:
    import io

    import pyarrow.json as pj

    try:
        table = pj.read_json(io.BytesIO(b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines)),
                             parse_options=opts)
        if _complete(table):
            return table
    except pa.ArrowInvalid:
        pass
    rows = []
    for n, line in enumerate(lines, first):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except ValueError as e:
            found.append(f"{path}:{n}: malformed JSON line: {e.msg}")
    return _rows_table(rows, schema, path, found)


def _rows_table(rows: list[tuple[int, object]], schema: pa.Schema, path: Path, found: list[str]) -> pa.Table:
    """A table of (line, parsed row) pairs; the rows that are not facts are named in `found` and left out."""
    good = []
    for n, d in rows:
        reason = _invalid(d)
        if reason:
            found.append(f"{path}:{n}: {reason}")
        else:
            good.append((n, d))
    try:
        return _table([d for _, d in good], schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    ok = []
    for n, d in good:  # which row has a field of the wrong type
        try:
            pa.Table.from_pylist([d], schema=schema)
            ok.append(d)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
            found.append(f"{path}:{n}: a field of the wrong type ({e})")
    return _table(ok, schema)


def _invalid(d) -> Optional[str]:
    """Why a parsed line is not a fact (None if it may be one; field types are left to Arrow)."""
    if not isinstance(d, dict):
        return "not a JSON object"
    missing = [k for k in REQUIRED if d.get(k) is None]
    return f"no {', '.join(missing)}" if missing else None


def _csv_table(path: Path, schema: pa.Schema, problems: Optional[list[str]]) -> pa.Table:
    found: list[str] = []
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        for r in reader:
            try:
                for k in ("value", "confidence"):
                    r[k] = float(r[k]) if r.get(k) not in ("", None) else None
                for k in ("start", "end", "evidence_start", "evidence_end"):
                    if k in r:
                        r[k] = int(r[k]) if r[k] not in ("", None) else -1
                r["year"] = int(r["year"]) if r.get("year") else None
            except ValueError as e:
                found.append(f"{path}:{reader.line_num}: a field of the wrong type ({e})")
                continue
            r["agency"] = r.get("agency") or None
            r["cell"] = r.get("cell") or None
            r["source"] = r.get("source") or "prose"
            rows.append((reader.line_num, r))
    table = _rows_table(rows, schema, path, found)
    _report(found, problems)
    return table


def _table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return _with_defaults(pa.Table.from_pylist(rows, schema=schema))


def _complete(table: pa.Table) -> bool:
    """No required field is missing (Arrow reads an absent field as null)."""
    return all(table[k].null_count == 0 for k in REQUIRED if k in table.column_names)


def _with_defaults(table: pa.Table) -> pa.Table:
    for k, v in DEFAULTS.items():
        if k in table.column_names and table[k].null_count:
            i = table.column_names.index(k)
            table = table.set_column(i, k, table[k].fill_null(v))
    return table


def _report(found: list[str], problems: Optional[list[str]]) -> None:
    if found and problems is None:
        raise ValueError(found[0] + (f" (and {len(found) - 1} more malformed lines)" if len(found) > 1 else ""))
    if problems is not None:
        problems.extend(found)
