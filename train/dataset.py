"""Annotated documents → character BIO tags on the normalised view → windowed token datasets.

The tagger reads the same normalised view as the rules (`govfacts.textview.build_view`), so gold
spans (raw offsets) are projected onto view characters here and predictions are projected back
with `tags_to_spans`. Characters inside `ignore` regions (out-of-scope tables) get the tag None:
they become label -100 (no loss) and are left out of evaluation.

Token alignment always goes through the tokenizer's offset_mapping, so any fast Hugging Face
tokenizer works (one char per token, WordPiece merging several chars, tokenizers that drop
whitespace, byte-level tokenizers with several tokens per char).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from govfacts.labels import LabelSet, default_labels
from govfacts.records import Span
from govfacts.splits import expand, is_pattern, load_splits
from govfacts.studio_io import AnnotatedDoc, iter_export_files, read_tasks, task_to_doc
from govfacts.textview import TextView, build_view

SENT_ENDS = "。；！？\n"
IGNORE_INDEX = -100


# -- documents ------------------------------------------------------------------------------------
def load_docs(annotations_dir: str | Path) -> dict[str, AnnotatedDoc]:
    """Every annotated document under `annotations_dir` (tasks/*.json or the folder itself), by doc_id."""
    root = Path(annotations_dir)
    folder = root / "tasks" if (root / "tasks").is_dir() else root
    docs: dict[str, AnnotatedDoc] = {}
    for f in iter_export_files([folder]):
        for task in read_tasks(f):
            doc = task_to_doc(task)
            if doc.doc_id in docs:
                raise ValueError(f"{f}: duplicate doc_id {doc.doc_id!r}")
            docs[doc.doc_id] = doc
    return docs


def resolve_splits(splits_yaml: str | Path, doc_ids: Iterable[str]) -> dict[str, list[str]]:
    """Doc ids of every split; entries may be shell-style patterns (`extra-*`).

    A literal id must exist; a pattern may match nothing (its sources are optional). A document that
    lands in two splits is an error, so a broad train pattern can never leak dev/test documents.
    """
    known = set(doc_ids)
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name, entries in load_splits(splits_yaml).items():
        ids: list[str] = []
        for entry in entries:
            if not is_pattern(entry) and entry not in known:
                raise KeyError(f"{splits_yaml}: split {name!r} names an unknown document {entry!r}")
            matched = expand(entry, known)
            for d in matched:
                if d in owner and owner[d] != name:
                    raise ValueError(f"{splits_yaml}: document {d!r} is in both {owner[d]!r} and {name!r}")
                if d not in ids:
                    owner[d] = name
                    ids.append(d)
        out[str(name)] = ids
    return out


def load_split(split: str, annotations_dir: str | Path, splits_yaml: str | Path) -> list[AnnotatedDoc]:
    """The documents of one split (train/dev/test) in the order splits.yaml lists them."""
    docs = load_docs(annotations_dir)
    splits = resolve_splits(splits_yaml, docs)
    if split not in splits:
        raise KeyError(f"{splits_yaml}: no split {split!r} (have {sorted(splits)})")
    return [docs[i] for i in splits[split]]


# -- spans <-> view tags --------------------------------------------------------------------------
def spans_to_view_tags(view: TextView, spans: Iterable[Span],
                       ignore: Sequence[tuple[int, int]] = ()) -> list[Optional[str]]:
    """IOB2 tag per view char: B-/I-LABEL when its raw index lies in a span, None inside `ignore`."""
    n = len(view.text)
    tags: list[Optional[str]] = ["O"] * n
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        vs, ve = view.from_raw(span.start, span.end)
        for i in range(vs, ve):
            tags[i] = ("B-" if i == vs else "I-") + span.label
    if ignore:
        for a, b in ignore:
            vs, ve = view.from_raw(a, b)
            for i in range(vs, ve):
                tags[i] = None
    return tags


def doc_view_tags(doc: AnnotatedDoc, view: Optional[TextView] = None) -> tuple[TextView, list[Optional[str]]]:
    view = view or build_view(doc.text)
    return view, spans_to_view_tags(view, doc.spans, doc.ignore)


def chars_and_tags(doc: AnnotatedDoc) -> tuple[list[str], list[Optional[str]]]:
    """View characters of a document and their gold tags (None = ignored region)."""
    view, tags = doc_view_tags(doc)
    return list(view.text), tags


def view_spans(tags: Sequence[Optional[str]]) -> list[tuple[int, int, str]]:
    """(start, end, label) view spans of a tag sequence; None counts as O.

    A stray I-X (after O or another label) opens a span, as conlleval does: predictions from the
    constrained decoder never contain one, and gold tags never do.
    """
    out: list[tuple[int, int, str]] = []
    start, label = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        tag = tag or "O"
        kind, _, lab = tag.partition("-")
        if start is not None and not (kind == "I" and lab == label):
            out.append((start, i, label))
            start, label = None, None
        if kind == "B" or (kind == "I" and start is None):
            start, label = i, lab
    return out


def tags_to_spans(view_tags: Sequence[Optional[str]], view: TextView) -> list[Span]:
    """The inverse of `spans_to_view_tags`: view tags → Spans with raw offsets and raw text."""
    out = []
    for s, e, label in view_spans(view_tags):
        rs, re_ = view.to_raw(s, e)
        out.append(Span(rs, re_, label, view.raw[rs:re_]))
    return out


# -- windows --------------------------------------------------------------------------------------
def make_windows(text: str, max_chars: int, stride: int, ends: str = SENT_ENDS) -> list[tuple[int, int]]:
    """Overlapping [start, end) windows of at most `max_chars` chars covering `text`.

    A window ends after the last sentence end in its second half when there is one (else it is cut
    hard); the next starts `stride` chars earlier, moved forward to a sentence start when one lies
    in the first half of the overlap, so most windows begin and end on sentence boundaries.
    """
    n = len(text)
    if max_chars < 1:
        raise ValueError("max_chars must be >= 1")
    stride = max(0, min(stride, max_chars // 2 - 1)) if max_chars > 2 else 0
    if n <= max_chars:
        return [(0, n)]
    windows = []
    start = 0
    while True:
        if n - start <= max_chars:
            windows.append((start, n))
            return windows
        limit = start + max_chars
        end = limit
        for i in range(limit - 1, start + max_chars // 2 - 1, -1):
            if text[i] in ends:
                end = i + 1
                break
        windows.append((start, end))
        nxt = end - stride
        for i in range(end - stride, end - stride // 2):
            if i > 0 and text[i - 1] in ends:
                nxt = i
                break
        start = max(nxt, start + 1)


def fit_windows(text: str, tokenizer, max_len: int, stride: int) -> list[tuple[int, int]]:
    """`make_windows` with max_len-2 chars ([CLS]/[SEP]: max_len minus the tokenizer's special
    tokens), re-split where a tokenizer needs > max_len tokens.

    Re-splitting is needed only for tokenizers that emit several tokens per char (byte-level BPE);
    char-level and WordPiece tokenizers give tokens <= chars and the first pass already fits.
    """
    out = []
    for s, e in make_windows(text, max(1, max_len - _n_special(tokenizer)), stride):
        out.extend(_fit(text, s, e, tokenizer, max_len, stride))
    return out


def read_encoded_windows(text: str, tokenizer, max_len: int, stride: int, skip_plain: bool = False):
    """The windows the tagger reads, with their `encode_window` encodings: yields (start, end, encoding).

    The windows are `fit_windows` over the whole text, or with `skip_plain` over each claim segment
    (govfacts.claims) alone; training and inference cut windows the same way. A window that fits is
    tokenised once, not once to check it fits and once to encode: the encoding with room for one token
    more than max_len is the untruncated one exactly when it fits."""
    from govfacts.claims import claim_segments

    segments = claim_segments(text) if skip_plain else [(0, len(text))]
    for a, b in segments:
        seg = text[a:b]
        for s, e in make_windows(seg, max(1, max_len - _n_special(tokenizer)), stride):
            enc = encode_window(tokenizer, seg[s:e], max_len + 1)
            if len(enc["input_ids"]) <= max_len or e - s <= 1:
                if len(enc["input_ids"]) > max_len:  # one char that needs more tokens: cut as fit_windows does
                    enc = encode_window(tokenizer, seg[s:e], max_len)
                yield a + s, a + e, enc
                continue
            for s2, e2 in _fit(seg, s, e, tokenizer, max_len, stride):
                yield a + s2, a + e2, encode_window(tokenizer, seg[s2:e2], max_len)


def _n_special(tokenizer) -> int:
    """Special tokens ([CLS]/[SEP] …) the tokenizer adds to one sequence."""
    return tokenizer.num_special_tokens_to_add(pair=False) if hasattr(tokenizer, "num_special_tokens_to_add") else 2


def _fit(text, s, e, tokenizer, max_len, stride):
    n_tok = len(tokenizer(text[s:e], add_special_tokens=True)["input_ids"])
    if n_tok <= max_len or e - s <= 1:
        return [(s, e)]
    chars = max(1, int((e - s) * max_len / n_tok * 0.9))
    out = []
    for a, b in make_windows(text[s:e], chars, min(stride, chars // 4)):
        out.extend(_fit(text, s + a, s + b, tokenizer, max_len, stride))
    return out


# -- token alignment ------------------------------------------------------------------------------
def encode_window(tokenizer, text: str, max_len: int) -> dict:
    """Tokenize one window; returns input_ids, attention_mask and per-token char offsets (None = special)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("the tagger needs a fast (Rust) tokenizer: offset_mapping is used to align chars")
    enc = tokenizer(text, add_special_tokens=True, truncation=True, max_length=max_len,
                    return_offsets_mapping=True, return_special_tokens_mask=True)
    offsets = []
    for (a, b), special in zip(enc["offset_mapping"], enc["special_tokens_mask"]):
        offsets.append(None if special or b <= a else (a, b))
    return {"input_ids": list(enc["input_ids"]), "attention_mask": list(enc["attention_mask"]), "offsets": offsets}


def align_labels(offsets: Sequence[Optional[tuple[int, int]]], char_tags: Sequence[Optional[str]],
                 label2id: dict[str, int]) -> list[int]:
    """Token labels: a token takes the tag of its first char; tokens starting on a char an earlier
    token already covers (byte-level BPE), special tokens and ignored chars get -100."""
    labels, seen = [], set()
    for off in offsets:
        if off is None or off[0] in seen or off[0] >= len(char_tags):
            labels.append(IGNORE_INDEX)
            continue
        seen.update(range(off[0], off[1]))  # as at inference: the first token covering a char speaks for it
        tag = char_tags[off[0]]
        labels.append(IGNORE_INDEX if tag is None else label2id[tag])
    return labels


def perturb_numbers(text: str, tags: Sequence[Optional[str]], rng) -> str:
    """`text` with the ASCII digits inside tagged spans replaced by random ones (same length, so tags
    still align; a run keeps a non-zero lead digit). Teaches that a claim's cue and unit, not its
    value, decide its label."""
    chars = list(text)
    prev_digit = False
    for i, (c, t) in enumerate(zip(chars, tags)):
        if "0" <= c <= "9" and t and t != "O":
            chars[i] = str(rng.randint(0 if prev_digit else 1, 9))
            prev_digit = True
        else:
            prev_digit = "0" <= c <= "9"
    return "".join(chars)


@dataclass(frozen=True)
class HintSpec:
    """Rule hints for training (govfacts.hints): the rule extractor and how to corrupt its spans."""
    rules: object
    drop: float = 0.0
    swap: float = 0.0
    quantities: bool = False  # B-QTY/I-QTY on candidates the rules left unlabelled (govfacts.hints)


def doc_examples(doc: AnnotatedDoc, tokenizer, label2id: dict[str, int], max_len: int = 256,
                 stride: int = 64, augment: int = 0, rng=None, skip_plain: bool = False,
                 hints: Optional[HintSpec] = None) -> list[dict]:
    """Training examples (one per window) of one annotated document, plus `augment` copies with
    perturbed claim values of every window that holds a span. With `skip_plain`, windows are cut
    from the claim segments only, as the tagger reads them then (govfacts.claims). With `hints`,
    every example also gets token_type_ids from the rules' spans, corrupted anew for each copy."""
    import random

    from govfacts.hints import corrupt_hints, hint_type_ids, hint_vocab, mark_quantities, rule_hint_tags
    from govfacts.quantity import view_quantities

    rng = rng or random.Random(0)
    view, tags = doc_view_tags(doc)
    hint_tags = rule_hint_tags(view, hints.rules) if hints else None
    candidates = view_quantities(view) if hints and hints.quantities else []
    vocab = hint_vocab(list(label2id), bool(hints and hints.quantities))
    names = sorted({t[2:] for t in label2id if t != "O"})
    out = []
    for s, e, first in read_encoded_windows(view.text, tokenizer, max_len, stride, skip_plain):
        win_tags = tags[s:e]
        if all(t is None for t in win_tags):
            continue  # a window wholly inside an ignored table teaches nothing
        texts = [view.text[s:e]]
        if augment and any(t and t != "O" for t in win_tags):
            texts += [perturb_numbers(texts[0], win_tags, rng) for _ in range(augment)]
        for k, text in enumerate(texts):
            enc = first if k == 0 else encode_window(tokenizer, text, max_len)
            labels = align_labels(enc["offsets"], win_tags, label2id)
            row = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels,
                   "doc_id": doc.doc_id, "start": s, "end": e, "copy": k}
            if hints:
                win_hints = corrupt_hints(hint_tags[s:e], rng, hints.drop, hints.swap, names)
                win_hints = mark_quantities(win_hints, [c for c in candidates if c[0] < e and s < c[1]], s)
                row["token_type_ids"] = hint_type_ids(enc["offsets"], win_hints, vocab)
            out.append(row)
    return out


def build_dataset(docs: Iterable[AnnotatedDoc], tokenizer, labels: LabelSet | None = None, max_len: int = 256,
                  stride: int = 64, augment: int = 0, seed: int = 0, skip_plain: bool = False,
                  hints: Optional[HintSpec] = None):
    """A `datasets.Dataset` of windows (input_ids, attention_mask, labels, doc_id, start, end, copy,
    and token_type_ids with `hints`); copy > 0 marks an augmented window (see `perturb_numbers`)."""
    import random

    from datasets import Dataset

    label2id = (labels or default_labels()).label2id
    rng = random.Random(seed)
    rows = [ex for doc in docs for ex in doc_examples(doc, tokenizer, label2id, max_len, stride, augment, rng,
                                                      skip_plain, hints)]
    cols = ["input_ids", "attention_mask", "labels", "doc_id", "start", "end", "copy"]
    if hints:
        cols.append("token_type_ids")
    return Dataset.from_dict({c: [r[c] for r in rows] for c in cols})
