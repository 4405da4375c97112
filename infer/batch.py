"""Batch extraction over files and folders: progress, per-file errors, atomic output, resume.

Each finished document is appended to a journal (`OUTPUT.journal.jsonl`, flushed and fsynced) before
the next starts. The final output is rebuilt from the journal and written atomically, then the journal
is removed. `resume=True` keeps the journal of an interrupted run, skips the documents it holds and
ignores a torn last line, so no document is lost or duplicated.

Files are taken in units of about `long_chars` characters. With `workers > 0` the units are read and
extracted in that many worker processes (each with its own extractor, made by `worker_setup()`), which
send every record here as soon as it exists: the journal is written only here, so resume works the same,
and a unit whose worker died is finished in this process. With workers, units shrink towards the end of
the batch (`units_of`), so the workers finish together, and groups and parts hold at most
`WORKER_LONG_CHARS` characters (several processes hold their work in memory at once).
"""
from __future__ import annotations

import json
import os
import sys
import time
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
    with open(path, "rb") as fh:  # bytes: a torn last line may end inside a character
        for line in fh:
            try:
                rec = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
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


Emit = Callable[[list[dict]], None]


def _size(f: Path) -> int:
    try:
        return f.stat().st_size
    except OSError:
        return 0


def units_of(files: list[Path], limit_bytes: int, workers: int = 0, min_bytes: int = 0) -> list[list[Path]]:
    """Files in order, in units of at most `limit_bytes` on disk (a bigger file is a unit of its own): what
    one process reads and extracts before the next unit, so work in flight stays small.

    With `workers`, units shrink towards the end (each at most 1/(2·workers) of the bytes still to
    come, never below `min_bytes`): the last units are short, so no worker idles long while another
    finishes a big one."""
    if not workers:
        return list(groups_by_size(files, limit_bytes, _size))
    sizes = {f: _size(f) for f in files}
    total = sum(sizes.values())

    def limit(done: int) -> int:  # of a unit starting after `done` bytes
        return max(min_bytes, min(limit_bytes, (total - done) // (2 * workers)))
    return list(groups_by_size(files, limit, sizes.__getitem__))


def process_unit(paths: list, fns: tuple, have: dict[str, dict[int, dict]], emit: Emit, long_chars: int) -> None:
    """Read and extract one unit of files, handing each journal record to `emit` as soon as it exists.

    `fns` = (extract, extract_many, extract_parts or None). Short documents are extracted and emitted in
    groups of at most `long_chars` characters; a longer one part by part (`extract_parts`, parts in `have`
    reused), each part emitted as it finishes, then its document record. The one path of the batch
    runner, in this process or in a worker."""
    extract, extract_many, extract_parts = fns
    read = _read_chunk([str(p) for p in paths])
    long = [r for r in read if not isinstance(r, dict) and len(r.text) > long_chars]
    short = [(str(f), r) for f, r in zip(paths, read) if not any(r is x for x in long)]
    for group in groups_by_size(short, long_chars, _chars):
        emit(chunk_records([f for f, _ in group], [r for _, r in group], extract, extract_many))
    for doc in long:
        if extract_parts is None:
            emit(chunk_records([doc.path], [doc], extract, extract_many))
        else:
            emit([_by_parts(emit, doc, have.get(doc.path, {}), extract_parts)])


_WORKER: Optional[tuple] = None  # (fns, queue) of a worker process


def _worker_init(setup: Callable, queue, parent: int) -> None:
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
    _WORKER = ((*setup(), None)[:3], queue)  # (extract, extract_many, extract_parts or None)


def _worker_unit(tid: int, paths: list[str], have: dict, long_chars: int) -> int:
    """A unit in a worker: every record goes to the parent through the queue as it exists; returns how
    many messages were sent, so the parent knows when it has them all."""
    fns, queue = _WORKER
    sent = 0

    def emit(recs):
        nonlocal sent
        queue.put((tid, recs))
        sent += 1

    process_unit(paths, fns, have, emit, long_chars)
    return sent


# After a worker died, a finished unit's records still missing this long are taken as lost with the pool.
LOST_RECORDS_SECONDS = 2.0


def _in_workers(units: list[list[Path]], workers: int, setup: Callable, fns: tuple, parts: dict, emit: Emit,
                done: dict, long_chars: int) -> None:
    """Units in `workers` processes (each with its own extractor from `setup()`), up to 2 each in flight.
    Records reach `emit` here, in this process, as each is made; a unit whose worker died is finished here."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # forkserver: the parent may hold torch/OpenMP threads, which fork does not copy safely
    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    q = ctx.Queue()
    got: dict[int, int] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                             initargs=(setup, q, os.getpid())) as pool:
        todo = iter(enumerate(units))
        pending: dict[int, tuple] = {}
        here: list[list[Path]] = []  # units no worker can take any more (the pool broke)

        def submit():
            while len(pending) < 2 * workers:
                nxt = next(todo, None)
                if nxt is None:
                    return
                tid, unit = nxt
                have = {str(p): parts[str(p)] for p in unit if str(p) in parts}
                try:
                    pending[tid] = (unit, pool.submit(_worker_unit, tid, [str(p) for p in unit], have, long_chars))
                except (BrokenProcessPool, RuntimeError):
                    here.append(unit)

        submit()
        broken_at: Optional[float] = None  # when a worker was first seen dead
        while pending:
            try:
                tid, recs = q.get(timeout=0.1)
                got[tid] = got.get(tid, 0) + 1
                emit(recs)
                continue
            except queue_mod.Empty:
                pass
            for tid, (unit, fut) in list(pending.items()):
                if not fut.done():
                    continue
                if fut.exception() is not None:  # a crashed worker (killed, out of memory): finish it here
                    broken_at = broken_at or time.monotonic()
                elif got.get(tid, 0) >= fut.result():  # every record of the unit arrived
                    del pending[tid]
                    continue
                elif broken_at is None or time.monotonic() - broken_at < LOST_RECORDS_SECONDS:
                    continue  # its last records are still on their way
                # (else: a dead worker breaks the pool, which stops the others, and records a finished unit
                # had queued but not yet sent are lost with them or wait on the queue lock the dying worker
                # held.) The unit's documents not yet journalled are extracted here.
                process_unit([p for p in unit if str(p) not in done], fns, parts, emit, long_chars)
                del pending[tid]
            submit()
    for unit in here:
        process_unit(unit, fns, parts, emit, long_chars)


def run_batch(paths: Iterable[str | Path], output: str | Path, extract: Callable[[object], list[Fact]],
              errors: Optional[str | Path] = None, resume: bool = False, progress: bool = True,
              extract_many: Optional[Callable[[list], list[list[Fact]]]] = None,
              workers: int | Callable[[int], int] = 0, worker_setup: Optional[Callable[[], tuple]] = None,
              extract_parts: Optional[Callable[[object, int], Iterable[tuple[int, int, list[Fact]]]]] = None,
              long_chars: int = 100_000) -> BatchResult:
    """Extract facts from every file under `paths` into `output`; bad files are recorded, never fatal.

    `worker_setup`: a picklable callable returning (extract, extract_many[, extract_parts]) inside a worker
    process; needed with `workers > 0`. `extract_parts(doc, first_part)`: facts of a long document part by
    part (`govfacts.infer.api.extract_parts`); with it, a document longer than `long_chars` is journalled
    after each part, so an interrupted run resumes inside it instead of starting it over. Shorter documents
    are extracted and journalled in groups of at most `long_chars` characters, in this process or in a
    worker alike: an interruption loses at most the groups and parts in flight. `workers` may be a
    callable given the characters still to extract (about: bytes on disk / 3) that returns the number.
    """
    output = Path(output)
    output_format(output)  # fail early on an unknown extension
    files, skipped = discover(paths)
    done, parts, jpath = open_journal(output, resume)
    result = BatchResult(output=output, skipped=skipped, resumed=len(done))
    todo = [f for f in files if str(f) not in done]
    pending = sum(map(_size, todo))
    if callable(workers):
        workers = int(workers(pending // UNIT_BYTES_PER_CHAR))
    if workers > 0 and worker_setup is None:
        raise ValueError("run_batch: workers > 0 needs a worker_setup that builds each worker's extractor")
    bar = tqdm(total=len(files), initial=len(files) - len(todo), unit="doc", desc="extract", file=sys.stderr,
               disable=not progress, dynamic_ncols=True)
    if workers > 0:  # several processes hold their work in memory at once: smaller groups and parts
        long_chars = min(long_chars, WORKER_LONG_CHARS)
    units = units_of(todo, UNIT_BYTES_PER_CHAR * long_chars, workers, MIN_UNIT_BYTES)
    fns = (extract, extract_many, extract_parts)
    with open(jpath, "a", encoding="utf-8") as journal:
        def emit(recs: list[dict]) -> None:
            append_records(journal, recs, done, parts)
            bar.update(sum("part" not in r for r in recs))

        if workers > 0:
            _in_workers(units, workers, worker_setup, fns, parts, emit, done, long_chars)
        else:
            for unit in units:
                process_unit(unit, fns, parts, emit, long_chars)
    bar.close()
    return finish_batch(result, files, done, errors, jpath)


UNIT_BYTES_PER_CHAR = 3  # a unit of files holds about `long_chars` characters of UTF-8 Chinese text
MIN_UNIT_BYTES = 30_000  # with workers: units no smaller (~10k characters, about a second of work)
WORKER_LONG_CHARS = 40_000  # with workers: groups and parts of at most this many characters (peak memory)


def _chars(item) -> int:
    """Characters of a (file, read result) pair: 0 for a file that could not be read."""
    return 0 if isinstance(item[1], dict) else len(item[1].text)


def _by_parts(emit: Emit, doc, have: dict[int, dict], extract_parts) -> dict:
    """The record of a long document, its parts emitted (to be journalled) as each finishes; parts an
    interrupted run journalled already are taken from `have` and not extracted again."""
    facts: dict[int, list] = {k: rec["facts"] for k, rec in have.items()}
    first = 0
    while first in facts:
        first += 1
    try:
        for k, n, fs in extract_parts(doc, first):
            rec = {"path": doc.path, "part": k, "parts": n, "facts": [x.to_dict() for x in fs]}
            emit([rec])
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


def append_records(journal, recs: list[dict], done: dict[str, dict],
                   parts: Optional[dict[str, dict[int, dict]]] = None) -> None:
    """Journal finished documents and parts of long ones (flushed and fsynced before anything else
    happens)."""
    _journal(journal, recs)
    for rec in recs:
        if "part" in rec:
            if parts is not None:
                parts.setdefault(rec["path"], {})[rec["part"]] = rec
            continue
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
