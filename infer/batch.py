"""Batch extraction over files and folders: progress, per-file errors, atomic output, resume.

Each finished document is appended to a journal (`OUTPUT.journal.jsonl`, flushed and fsynced) before
the next starts. The final output is rebuilt from the journal and written atomically, then the journal
is removed. `resume=True` keeps the journal of an interrupted run, skips the documents it holds and
ignores a torn last line, so no document is lost or duplicated.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from tqdm import tqdm

from govfacts.factsio import atomic_path, output_format, write_facts
from govfacts.reader import SUPPORTED_SUFFIXES, ReadError, read_document
from govfacts.records import Fact, ReadFailure


@dataclass
class BatchResult:
    output: Path
    documents: int = 0
    facts: list[Fact] = field(default_factory=list)
    failures: list[ReadFailure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # files in folders with an unsupported suffix
    resumed: int = 0


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files to process (folders walked recursively, sorted) and folder files skipped for their type.

    A file named explicitly is always attempted; inside folders only report types are taken
    (.txt/.html/.htm/.pdf …) so that manifests and images beside the reports are not misread.
    """
    files: list[Path] = []
    skipped: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if not f.is_file() or any(part.startswith(".") for part in f.relative_to(p).parts):
                    continue
                (files.append(f) if f.suffix.lower() in SUPPORTED_SUFFIXES else skipped.append(str(f)))
        else:
            files.append(p)
    seen, unique = set(), []
    for f in files:
        key = str(f.resolve()) if f.exists() else str(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, skipped


def journal_path(output: Path) -> Path:
    return output.with_name(output.name + ".journal.jsonl")


def _load_journal(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line from a killed run: that document is redone
            done[rec["path"]] = rec
    return done


def run_batch(paths: Iterable[str | Path], output: str | Path, extract: Callable[[object], list[Fact]],
              errors: Optional[str | Path] = None, resume: bool = False, progress: bool = True,
              extract_many: Optional[Callable[[list], list[list[Fact]]]] = None, batch_docs: int = 8) -> BatchResult:
    """Extract facts from every file under `paths` into `output`; bad files are recorded, never fatal."""
    output = Path(output)
    output_format(output)  # fail early on an unknown extension
    files, skipped = discover(paths)
    jpath = journal_path(output)
    if not resume and jpath.exists():
        jpath.unlink()
    done = _load_journal(jpath) if resume else {}
    result = BatchResult(output=output, skipped=skipped, resumed=len(done))
    todo = [f for f in files if str(f) not in done]
    jpath.parent.mkdir(parents=True, exist_ok=True)
    # Rewrite the journal without a torn tail before appending to it.
    with atomic_path(jpath) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in done.values():
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    bar = tqdm(total=len(files), initial=len(files) - len(todo), unit="doc", desc="extract", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    with open(jpath, "a", encoding="utf-8") as journal:
        for i in range(0, len(todo), batch_docs):
            chunk = todo[i:i + batch_docs]
            docs, recs = [], {}
            for f in chunk:
                try:
                    docs.append(read_document(f))
                except ReadError as e:
                    recs[str(f)] = {"path": str(f), "error": e.reason}
            try:
                per_doc = extract_many(docs) if extract_many else [extract(d) for d in docs]
            except Exception:
                per_doc = []
                for d in docs:  # isolate the document that breaks the batch
                    try:
                        per_doc.append(extract(d))
                    except Exception as e:  # noqa: BLE001 - one bad document must not end the run
                        per_doc.append(e)
            for d, facts in zip(docs, per_doc):
                if isinstance(facts, Exception):
                    recs[d.path] = {"path": d.path, "error": f"extraction failed: {type(facts).__name__}: {facts}"}
                else:
                    recs[d.path] = {"path": d.path, "facts": [x.to_dict() for x in facts]}
            for f in chunk:
                rec = recs[str(f)]
                journal.write(json.dumps(rec, ensure_ascii=False) + "\n")
                done[str(f)] = rec
                if "error" in rec:
                    tqdm.write(f"error: {f}: {rec['error']}", file=sys.stderr)
            journal.flush()
            os.fsync(journal.fileno())
            bar.update(len(chunk))
    bar.close()
    for f in files:
        rec = done.get(str(f))
        if rec is None:
            continue
        if "error" in rec:
            result.failures.append(ReadFailure(str(f), rec["error"]))
        else:
            result.documents += 1
            result.facts.extend(Fact.from_dict(x) for x in rec["facts"])
    write_facts(output, result.facts)
    if errors:
        with atomic_path(errors) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for fail in result.failures:
                    fh.write(json.dumps({"path": fail.path, "reason": fail.reason}, ensure_ascii=False) + "\n")
    jpath.unlink(missing_ok=True)
    return result
