"""The Python API: typed facts from text with the rules or a tagger model.

    from govfacts.infer.api import Extractor

    ex = Extractor.from_pretrained("models/govfacts-tagger-zh")   # or "rules", "DIR+rules", a hub name
    facts = ex.extract("2023年共受理政府信息公开申请1136件。", doc_id="demo")
    facts[0].metric, facts[0].value, facts[0].unit, facts[0].start, facts[0].end, facts[0].confidence
    ex.extract_many([text1, text2])        # one list of facts per text, windows batched together

It is a thin layer over the same code `govfacts extract` runs (`govfacts.infer.loader.load`,
`facts_from_spans`): `extract_documents` below is what the batch runner, the Ray engine, the
evaluation and this class call, so all give the same facts for the same text.

Very long documents (more than `MAX_SEGMENT_CHARS` characters, e.g. a 10 MB text dump) are
processed in paragraph-aligned segments of at most that size, whose spans are shifted back to
document offsets; a normal report (5k-60k characters) is one segment. This bounds the tagger's
memory (~200 bytes per character in flight) and keeps the rules linear in the document length.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from govfacts.infer.facts import facts_from_spans
from govfacts.infer.loader import InferSettings, extractor_id, load
from govfacts.reader import read_document
from govfacts.records import Document, Fact, Span
from govfacts.tables import read_tables

MAX_SEGMENT_CHARS = 100_000  # longer documents are cut at paragraph ends into segments of at most this
GROUP_CHARS = 400_000  # characters handed to one spans_many call (memory bound for the tagger)
PART_CHARS = 100_000  # characters of one journalled part of a long document (a few seconds of tagger work)


class Extractor:
    """Facts from Chinese report text; wraps a span extractor (rules, tagger or ensemble)."""

    def __init__(self, extractor):
        self.extractor = extractor

    @classmethod
    def from_pretrained(cls, path_or_name: str | Path | None = None, *, quantize: Optional[bool] = None,
                        num_threads: Optional[int] = None, batch_size: Optional[int] = None,
                        runtime: Optional[str] = None) -> "Extractor":
        """`"rules"` → the rule baseline; `"ensemble:DIR"` → tagger + rules; a model directory or hub
        name → the tagger; None → the bundled tagger if present, else the rules.

        quantize: dynamic int8 for the tagger (None: the model's recorded verdict); num_threads /
        batch_size: threads and windows per forward pass; runtime: `auto`, `torch` or `onnx` (ONNX
        Runtime). None takes the value of configs/infer.yaml (`InferSettings`).
        """
        settings = InferSettings.load(quantize=quantize, num_threads=num_threads, batch_size=batch_size,
                                      runtime=runtime)
        return cls(load(path_or_name, settings))

    # -- identity ---------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.extractor.name

    @property
    def version(self) -> str:
        return self.extractor.version

    @property
    def id(self) -> str:
        """`name@version`, the `extractor` field of every fact."""
        return extractor_id(self.extractor)

    def __repr__(self) -> str:
        return f"Extractor({self.id})"

    # -- extraction -------------------------------------------------------------------------------
    def extract(self, text: str, doc_id: Optional[str] = None, path: str = "") -> list[Fact]:
        """Facts of one text; offsets (`start`, `end`) index `text` itself."""
        return self.extract_many([text], None if doc_id is None else [doc_id], [path])[0]

    def extract_many(self, texts: Sequence[str], doc_ids: Optional[Sequence[Optional[str]]] = None,
                     paths: Optional[Sequence[str]] = None) -> list[list[Fact]]:
        """Facts of several texts (one list per text, in order); the tagger batches them together.

        A text without a doc id gets `text-<first 12 hex of its sha1>` as `doc_id`.
        """
        texts = list(texts)
        ids = list(doc_ids) if doc_ids is not None else [None] * len(texts)
        ps = list(paths) if paths is not None else [""] * len(texts)
        if len(ids) != len(texts) or len(ps) != len(texts):
            raise ValueError("doc_ids and paths must have one entry per text")
        docs = [Document(doc_id=i if i is not None else _text_id(t), path=p or "", text=t)
                for t, i, p in zip(texts, ids, ps)]
        return extract_documents(self.extractor, docs)

    def extract_documents(self, docs: Sequence[Document]) -> list[list[Fact]]:
        """Facts of `Document`s (as `govfacts.reader.read_document` returns them)."""
        return extract_documents(self.extractor, docs)

    def extract_file(self, path: str | Path) -> list[Fact]:
        """Facts of one report file (.txt/.html/.pdf); raises `govfacts.reader.ReadError` for a bad file."""
        return extract_documents(self.extractor, [read_document(path)])[0]


def _text_id(text: str) -> str:
    return "text-" + hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def batch_functions(spec: str | Path | None, settings: InferSettings):
    """(extract, extract_many, extract_parts) for `run_batch` with a freshly loaded extractor; picklable
    through functools.partial, it is how worker processes (`govfacts extract --workers N`) get theirs."""
    ex = load(spec, settings)
    return ((lambda d: extract_documents(ex, [d])[0]), (lambda docs: extract_documents(ex, docs)),
            (lambda d, first: extract_parts(ex, d, first)))


@dataclass
class WorkerSetup:
    """`batch_functions(spec, settings)` as a picklable callable: what each worker process of a batch
    calls once; `settings` may be set after the number of workers is chosen (their thread share)."""

    spec: Optional[str]
    settings: InferSettings

    def __call__(self):
        return batch_functions(self.spec, self.settings)


# -- the one extraction path (batch runner, Ray engine, API) ------------------------------------------
def extract_documents(extractor, docs: Sequence[Document], tables: bool = True) -> list[list[Fact]]:
    """Facts of each document: the extractor's prose facts, then (with `tables`) the template-table
    cells (`govfacts.tables`), whatever the extractor.

    Long documents are cut into segments (`MAX_SEGMENT_CHARS`); segments are handed to the
    extractor in groups of about `GROUP_CHARS` characters, so a tagger batches the windows of many
    short documents together while a huge one never holds more than a group in memory.
    """
    units = [(di, off, seg) for di, d in enumerate(docs) for off, seg in segments(d.text)]
    spans: list[list[Span]] = [[] for _ in docs]
    for group in groups_by_size(units, GROUP_CHARS):
        _group_spans(extractor, group, spans)
    eid = extractor_id(extractor)
    return [facts_from_spans(d, ss, eid, tables) for d, ss in zip(docs, spans)]


def extract_parts(extractor, doc: Document, first: int = 0, tables: bool = True):
    """Facts of one document part by part — (part index, number of parts, facts) per group of its segments
    of about `PART_CHARS` characters, from part `first` on — so a batch can journal a long document as it
    goes and an interruption loses seconds of work, not the document. The parts' facts, in order, are
    exactly `extract_documents(extractor, [doc])[0]`; the table facts come with the last part."""
    units = [(0, off, seg) for off, seg in segments(doc.text)]
    groups = list(groups_by_size(units, PART_CHARS))
    eid = extractor_id(extractor)
    read = read_tables(doc.text)
    for k, group in enumerate(groups):
        if k < first:
            continue
        spans: list[list[Span]] = [[]]
        _group_spans(extractor, group, spans)
        yield k, len(groups), facts_from_spans(doc, spans[0], eid, tables=tables and k == len(groups) - 1, read=read)


def _group_spans(extractor, group: list, spans: list[list[Span]]) -> None:
    """Run the extractor over one group of (document index, offset, segment) units and add each
    segment's spans, shifted to document offsets, to `spans[document index]`."""
    for (di, off, _), ss in zip(group, spans_of(extractor, [seg for _, _, seg in group])):
        spans[di].extend(ss if not off else (_shift(s, off) for s in ss))


def spans_of(extractor, texts: Sequence[str]) -> list[list[Span]]:
    """Spans of several texts: every extractor has `spans_many` (the tagger batches the windows)."""
    return extractor.spans_many(list(texts))


def _shift(s: Span, off: int) -> Span:
    return Span(s.start + off, s.end + off, s.label, s.text, s.score)


def groups_by_size(items: Iterable, limit: int | Callable[[int], int],
                   size: Callable[[object], int] = lambda u: len(u[2])) -> Iterable[list]:
    """`items` in order, in groups of at most `limit` total `size` (at least one item each): what is handed
    to the extractor together (segments: their characters) and what a batch journals together. `limit`
    may be a callable given the size already grouped, asked as each group starts (shrinking groups)."""
    group, total, done, cap = [], 0, 0, 0
    for u in items:
        n = size(u)
        if group and total + n > cap:
            yield group
            done += total
            group, total = [], 0
        if not group:
            cap = limit(done) if callable(limit) else limit
        group.append(u)
        total += n
    if group:
        yield group


_PARA_END = "。！？；!?;"


def segments(text: str, limit: int = MAX_SEGMENT_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) of `text` cut into pieces of at most `limit` chars.

    Cuts go after a line break that ends a paragraph (the line before ends a sentence or is empty),
    else after any line break, else after a sentence end, else hard at the limit; a cut is only
    searched in the second half of a piece so pieces stay large. Text shorter than `limit` is one piece.
    """
    if len(text) <= limit:
        return [(0, text)]
    out, start, n = [], 0, len(text)
    while n - start > limit:
        hi, lo = start + limit, start + limit // 2
        cut = _last_cut(text, lo, hi)
        out.append((start, text[start:cut]))
        start = cut
    out.append((start, text[start:]))
    return out


def _last_cut(text: str, lo: int, hi: int) -> int:
    i = text.rfind("\n", lo, hi)
    first_nl = i
    while i > lo:
        before = text[i - 1]
        if before in _PARA_END or before == "\n":
            return i + 1
        i = text.rfind("\n", lo, i)
    if first_nl > lo:
        return first_nl + 1
    best = max(text.rfind(c, lo, hi) for c in _PARA_END)
    return best + 1 if best > lo else hi
