"""Batch extraction over files and folders: progress, per-file errors, atomic output, resume.

Each finished document is appended to a journal (`OUTPUT.journal.jsonl`, flushed and fsynced) before
the next starts. The final output is rebuilt from the journal and written atomically, then the journal
is removed. `resume=True` keeps the journal of an interrupted run, skips the documents it holds and
ignores a torn last line, so no document is lost or duplicated.

With `workers > 0` and a `worker_setup`, chunks of files are read and extracted in that many worker
processes (each with its own extractor, made by `worker_setup()`), a few chunks ahead; with workers
but no setup, only reading happens there. Either way the journal is written here, in file order, so
resume works the same; a chunk whose worker died is redone in this process.
"""
from __future__ import annotations

import json
import os
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from tqdm import tqdm

from govfacts.factsio import atomic_path, output_format, write_facts
from govfacts.infer.api import groups_by_size
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


def _load_journal(path: Path) -> tuple[dict[str, dict], dict[str, dict[int, dict]]]:
    """(finished documents, journalled parts of unfinished long documents) of a journal."""
    done: dict[str, dict] = {}
    parts: dict[str, dict[int, dict]] = {}
    if not path.exists():
        return done, parts
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                break  # a torn last line from a killed run: that document (or part) is redone
            if "part" in rec:
                parts.setdefault(rec["path"], {})[int(rec["part"])] = rec
            else:
                done[rec["path"]] = rec
    return done, {k: v for k, v in parts.items() if k not in done}


def read_record(path: str | Path):
    """A `Document`, or the journal record of a file that cannot be read (never raises)."""
    try:
        return read_document(path)
    except ReadError as e:
        return {"path": str(path), "error": e.reason}
    except Exception as e:  # noqa: BLE001 - a reader bug on one strange file must not end the run
        return {"path": str(path), "error": f"read failed: {type(e).__name__}: {e}"}


def _read_chunk(paths: list[str]) -> list:
    return [read_record(p) for p in paths]


_WORKER: Optional[tuple] = None  # (extract, extract_many) of a worker process


def _worker_init(setup: Optional[Callable], parent: int) -> None:
    global _WORKER
    import threading
    import time

    def watch():  # a worker outlives a SIGKILLed parent otherwise (blocked on its task queue)
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass

    threading.Thread(target=watch, daemon=True).start()
    _WORKER = setup() if setup is not None else None


def _worker_chunk(paths: list[str]):
    read = _read_chunk(paths)
    if _WORKER is None:
        return read
    return chunk_records(paths, read, *_WORKER)


def _chunk_results(chunks: list[list[Path]], workers: int, setup: Optional[Callable], extract, extract_many):
    """Journal records of each chunk, in order; worker processes run up to 2 chunks each ahead."""
    if workers <= 0:
        for chunk in chunks:
            yield chunk, chunk_records(chunk, _read_chunk(chunk), extract, extract_many)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: the parent may hold torch/OpenMP threads, which fork does not copy safely
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(setup, os.getpid())) as pool:
        pending: deque = deque()
        it = iter(chunks)
        for chunk in it:
            pending.append((chunk, pool.submit(_worker_chunk, [str(f) for f in chunk])))
            if len(pending) >= 2 * workers:
                break
        while pending:
            chunk, fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(_worker_chunk, [str(f) for f in nxt])))
            try:
                res = fut.result()
            except Exception:  # noqa: BLE001 - a crashed worker (killed, out of memory): redo it here
                res = _read_chunk(chunk)
            if any(not isinstance(r, dict) for r in res):  # documents read, not yet extracted
                res = chunk_records(chunk, res, extract, extract_many)
            yield chunk, res


def run_batch(paths: Iterable[str | Path], output: str | Path, extract: Callable[[object], list[Fact]],
              errors: Optional[str | Path] = None, resume: bool = False, progress: bool = True,
              extract_many: Optional[Callable[[list], list[list[Fact]]]] = None, batch_docs: int = 8,
              workers: int = 0, worker_setup: Optional[Callable[[], tuple]] = None,
              extract_parts: Optional[Callable[[object, int], Iterable[tuple[int, int, list[Fact]]]]] = None,
              long_chars: int = 100_000) -> BatchResult:
    """Extract facts from every file under `paths` into `output`; bad files are recorded, never fatal.

    `worker_setup`: a picklable callable returning (extract, extract_many) inside a worker process.
    `extract_parts(doc, first_part)`: facts of a long document part by part (`govfacts.infer.api.extract_parts`);
    with it, a document longer than `long_chars` is journalled after each part, so an interrupted run resumes
    inside it instead of starting it over, and shorter documents are extracted and journalled in groups of at
    most `long_chars` characters (in this process; worker processes journal whole chunks).
    """
    output = Path(output)
    output_format(output)  # fail early on an unknown extension
    files, skipped = discover(paths)
    done, parts, jpath = open_journal(output, resume)
    result = BatchResult(output=output, skipped=skipped, resumed=len(done))
    todo = [f for f in files if str(f) not in done]
    bar = tqdm(total=len(files), initial=len(files) - len(todo), unit="doc", desc="extract", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    chunks = [todo[i:i + batch_docs] for i in range(0, len(todo), batch_docs)]
    with open(jpath, "a", encoding="utf-8") as journal:
        if extract_parts is not None and workers <= 0:
            for chunk in chunks:
                read = _read_chunk(chunk)
                long = [r for r in read if not isinstance(r, dict) and len(r.text) > long_chars]
                short = [(f, r) for f, r in zip(chunk, read) if not any(r is x for x in long)]
                # the short documents first, a few seconds' worth at a time: what is extracted together is
                # journalled together, so an interruption loses at most one group
                for group in groups_by_size(short, long_chars, _chars):
                    append_records(journal, chunk_records([f for f, _ in group], [r for _, r in group], extract,
                                                          extract_many), done)
                    bar.update(len(group))
                for doc in long:
                    append_records(journal, [_by_parts(journal, doc, parts.get(doc.path, {}), extract_parts)], done)
                    bar.update(1)
        else:
            for chunk, recs in _chunk_results(chunks, workers, worker_setup, extract, extract_many):
                append_records(journal, recs, done)
                bar.update(len(chunk))
    bar.close()
    return finish_batch(result, files, done, errors, jpath)


def _chars(item) -> int:
    """Characters of a (file, read result) pair: 0 for a file that could not be read."""
    return 0 if isinstance(item[1], dict) else len(item[1].text)


def _by_parts(journal, doc, have: dict[int, dict], extract_parts) -> dict:
    """The record of a long document, its parts journalled (flushed, fsynced) as each finishes; parts an
    interrupted run journalled already are taken from `have` and not extracted again."""
    facts: dict[int, list] = {k: rec["facts"] for k, rec in have.items()}
    first = 0
    while first in facts:
        first += 1
    try:
        for k, n, fs in extract_parts(doc, first):
            rec = {"path": doc.path, "part": k, "parts": n, "facts": [x.to_dict() for x in fs]}
            _journal(journal, [rec])
            facts[k] = rec["facts"]
    except Exception as e:  # noqa: BLE001 - one bad document must not end the run
        return {"path": doc.path, "error": f"extraction failed: {type(e).__name__}: {e}"}
    return {"path": doc.path, "facts": [x for k in sorted(facts) for x in facts[k]]}


def open_journal(output: Path, resume: bool) -> tuple[dict[str, dict], dict[str, dict[int, dict]], Path]:
    """The records (and the parts of unfinished long documents) of an interrupted run (resume), or none;
    the journal is rewritten without a torn tail."""
    jpath = journal_path(output)
    if not resume and jpath.exists():
        jpath.unlink()
    done, parts = _load_journal(jpath) if resume else ({}, {})
    jpath.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(jpath) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in [*done.values(), *(r for recs in parts.values() for r in recs.values())]:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return done, parts, jpath


def chunk_records(chunk: list, read: list, extract: Callable[[object], list[Fact]],
                  extract_many: Optional[Callable[[list], list[list[Fact]]]] = None) -> list[dict]:
    """Journal records (`{"path", "facts"}` or `{"path", "error"}`) of one chunk of files, in chunk order.

    `read` holds `read_record` results. The documents are extracted together; if that fails, one
    by one, so a document that breaks the extractor is recorded as failed and the others go on.
    """
    docs, recs = [], {}
    for f, r in zip(chunk, read):
        if isinstance(r, dict):
            recs[str(f)] = r
        else:
            docs.append(r)
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
    return [recs[str(f)] for f in chunk]


def append_records(journal, recs: list[dict], done: dict[str, dict]) -> None:
    """Journal finished documents (flushed and fsynced before anything else happens)."""
    _journal(journal, recs)
    for rec in recs:
        done[rec["path"]] = rec
        if "error" in rec:
            tqdm.write(f"error: {rec['path']}: {rec['error']}", file=sys.stderr)


def _journal(journal, recs: list[dict]) -> None:
    for rec in recs:
        journal.write(json.dumps(rec, ensure_ascii=False) + "\n")
    journal.flush()
    os.fsync(journal.fileno())


def finish_batch(result: BatchResult, files: list[Path], done: dict[str, dict], errors: Optional[str | Path],
                 jpath: Path) -> BatchResult:
    """Facts and failures in file order; output and errors written atomically; journal removed."""
    for f in files:
        rec = done.get(str(f))
        if rec is None:
            continue
        if "error" in rec:
            result.failures.append(ReadFailure(str(f), rec["error"]))
        else:
            result.documents += 1
            result.facts.extend(Fact.from_dict(x) for x in rec["facts"])
    write_facts(result.output, result.facts)
    if errors:
        with atomic_path(errors) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                for fail in result.failures:
                    fh.write(json.dumps({"path": fail.path, "reason": fail.reason}, ensure_ascii=False) + "\n")
    jpath.unlink(missing_ok=True)
    return result
