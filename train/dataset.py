"""Annotated documents → character IOB2 tags on the normalised view → windowed token datasets.

The tagger reads the same normalised view as the rules (`govfacts.textview.build_view`), so gold
spans (raw offsets) are projected onto view characters (`govfacts.tags`) and windows are cut and
encoded exactly as at inference (`govfacts.infer.windows`). Characters inside `ignore` regions
(out-of-scope tables) get the tag None: they become label -100 (no loss).

Token alignment always goes through the tokenizer's offset_mapping, so any fast Hugging Face
tokenizer works (one char per token, WordPiece merging several chars, tokenizers that drop
whitespace, byte-level tokenizers with several tokens per char).
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

from govfacts.annotations import AnnotatedDoc
from govfacts.claims import focus_segments
from govfacts.infer.hints import corrupt_hints, hint_type_ids, hint_vocab, quantity_hints, rule_hint_tags
from govfacts.infer.rules import cue_words
from govfacts.infer.windows import encode_window, read_encoded_windows, skip_tokens
from govfacts.labels import LabelSet, default_labels
from govfacts.numforms import REWRITES, hedge_forms
from govfacts.quantity import NUMERAL_RX, find_approximators, find_quantities, view_approximators, view_quantities
from govfacts.tags import spans_to_view_tags, view_spans
from govfacts.textview import TextView, build_view

IGNORE_INDEX = -100


def doc_view_tags(doc: AnnotatedDoc, view: Optional[TextView] = None) -> tuple[TextView, list[Optional[str]]]:
    view = view or build_view(doc.text)
    return view, spans_to_view_tags(view, doc.spans, doc.ignore)


def chars_and_tags(doc: AnnotatedDoc) -> tuple[list[str], list[Optional[str]]]:
    """View characters of a document and their gold tags (None = ignored region)."""
    view, tags = doc_view_tags(doc)
    return list(view.text), tags


# -- token alignment ------------------------------------------------------------------------------
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
    """Rule hints for training (govfacts.infer.hints): the rule extractor and how to corrupt its spans."""
    rules: object
    drop: float = 0.0
    swap: float = 0.0
    quantities: bool = False  # B-QTY/I-QTY on candidates the rules left unlabelled (govfacts.infer.hints)
    vetoes: bool = False  # B-VETO/I-VETO on quantities the rules' out-of-scope cues veto (with quantities)


# Number forms a tagger meets in the normalised view (full-width digits, traditional script and PDF spaces
# are normalised away before it reads).
TRAIN_FORMS = ("chinese_numerals", "thousands_separator", "wan_unit", "hedge")


def train_forms(claim: str) -> list[str]:
    """The claim in each of the `TRAIN_FORMS` that applies to it."""
    return [x for x in (r.fn(claim) for r in REWRITES if r.name in TRAIN_FORMS) if x]


def rewrite_window(text: str, tags: Sequence[Optional[str]], rng, share: float = 0.8,
                   forms: Callable[[str], list[str]] = train_forms) -> Optional[tuple[str, list[Optional[str]]]]:
    """`text` with its claims written in other forms (`forms` of a claim: by default the number forms of
    `govfacts.numforms`, or its hedged forms; each claim, with probability `share`, in a form drawn among
    those that apply to it) and the tags moved with them; None when no claim changed. The value of every
    claim stays the same."""
    parts: list[str] = []
    new_tags: list[Optional[str]] = []
    last, changed = 0, False
    for a, b, label in view_spans(tags):
        claim = text[a:b]
        options = forms(claim)
        new = rng.choice(options) if options and rng.random() < share else None
        parts.append(text[last:a])
        new_tags += list(tags[last:a])
        if new is None:
            parts.append(claim)
            new_tags += list(tags[a:b])
        else:
            changed = True
            parts.append(new)
            new_tags += [f"B-{label}"] + [f"I-{label}"] * (len(new) - 1)
        last = b
    if not changed:
        return None
    parts.append(text[last:])
    new_tags += list(tags[last:])
    return "".join(parts), new_tags


# A claim's metric phrase runs back from the claim to the nearest clause mark; `、` is left out of the
# marks on purpose: a list item (`市级47期、区级28期`) has no phrase of its own and is not swapped.
PHRASE_MARKS = "。！？；!?;\n，,：:（(）)"
PHRASE_LEN = (2, 24)
_TIME_LEAD = re.compile(r"(?:(?:19|20)\d\d年度?|\d{1,2}月份?|至今|以来|[，,])+")  # `2014年`: kept, not swapped
_QUOTES = re.compile(r"[《》“”\"「」]")


def metric_phrase(text: str, tags: Sequence[Optional[str]], start: int) -> Optional[tuple[int, int]]:
    """[a, start): the words of the clause before the claim at `start` (`网站主动发布信息`, `接听咨询电话`),
    or None where that clause is too short or long, holds another quantity or another span, or is a
    list item."""
    a = start
    while a > 0 and text[a - 1] not in PHRASE_MARKS and start - a <= PHRASE_LEN[1]:
        if text[a - 1] == "、":
            return None
        a -= 1
    if a > 0 and text[a - 1] not in PHRASE_MARKS:
        return None
    lead = _TIME_LEAD.match(text, a, start)
    a = lead.end() if lead else a
    if not PHRASE_LEN[0] <= start - a <= PHRASE_LEN[1]:
        return None
    if NUMERAL_RX.search(text[a:start]) or _QUOTES.search(text[a:start]) or any(t and t != "O" for t in tags[a:start]):
        return None
    return a, start


def _is_quantity(claim: str) -> bool:
    """Zero claims (`没有…收费`) hold their negation in the phrase before them: never swapped."""
    return bool(NUMERAL_RX.search(claim))


def mention_bank(docs: Iterable[AnnotatedDoc], cues: Optional[dict[str, list[str]]] = None) -> dict[str, list[str]]:
    """Per label, the distinct metric phrases its quantity claims follow in `docs` (the training
    documents) and the label's `cues` (the rules' lexicon, `cue_words`): the phrasings `swap_mentions`
    draws from."""
    bank: dict[str, set[str]] = {k: set(v) for k, v in (cues or {}).items()}
    for doc in docs:
        view, tags = doc_view_tags(doc)
        for a, b, label in view_spans(tags):
            ph = metric_phrase(view.text, tags, a) if _is_quantity(view.text[a:b]) else None
            if ph:
                bank.setdefault(label, set()).add(view.text[ph[0]:ph[1]])
    return {k: sorted(v) for k, v in bank.items()}


def swap_mentions(text: str, tags: Sequence[Optional[str]], bank: dict[str, list[str]], rng, share: float = 0.8
                  ) -> Optional[tuple[str, list[Optional[str]]]]:
    """Mention replacement (Dai & Adel 2020) for claims: each claim's metric phrase, with probability
    `share`, replaced by another phrase of the same label from `bank`; claims and their values stay,
    the tags move with them. None when nothing changed."""
    parts: list[str] = []
    new_tags: list[Optional[str]] = []
    last, changed = 0, False
    for a, b, label in view_spans(tags):
        ph = metric_phrase(text, tags, a) if a >= last and _is_quantity(text[a:b]) else None
        options = [p for p in bank.get(label, ()) if ph and p != text[ph[0]:ph[1]]]
        if not ph or ph[0] < last or not options or rng.random() >= share:
            continue
        new = rng.choice(options)
        parts.append(text[last:ph[0]])
        new_tags += list(tags[last:ph[0]])
        parts.append(new)
        new_tags += ["O"] * len(new)
        last, changed = ph[1], True
    if not changed:
        return None
    parts.append(text[last:])
    new_tags += list(tags[last:])
    return "".join(parts), new_tags


# Breakdown lists: a claim's total followed by its parts (`申请120件（市政府30件、宿城区50件、沭阳县40件）`,
# `119期政策简明问答，其中，市级47期、宿城区28期`). The label contract gives every part the total's label; a
# tagger that has seen few such lists reads their parts as unlabelled numbers although the rules hint them.
_PLAIN_INT = re.compile(r"(\d{1,7})(人次|件次|条次|[件条期次篇宗项个场人名份册元户家起批])")  # no rates, no hedges
_BREAKDOWN_STYLES = ("（{}）", "（其中{}）", "，其中{}", "，其中，{}")
BREAKDOWN_MARKS = "，,。；;\n"
BREAKDOWN_GAP = 24


def _parts(total: int, k: int, rng) -> list[int]:
    """`total` (≥ `k`) split into `k` whole parts of at least 1, largest first as reports list them about half the time."""
    cuts = sorted(rng.sample(range(1, total), k - 1))
    parts = [b - a for a, b in zip([0] + cuts, cuts + [total])]
    return sorted(parts, reverse=True) if rng.random() < 0.5 else parts


def add_breakdown(text: str, tags: Sequence[Optional[str]], units: Sequence[str], rng
                  ) -> Optional[tuple[str, list[Optional[str]]]]:
    """`text` with one of its plain whole-number claims (`120件`) followed, at the end of its clause, by a list of
    2-5 parts under names drawn from `units` (`市本级`, `宿城区`, `市公安局` …), each part tagged with the claim's
    label and all of them adding up to it; None where no claim can take one."""
    options = []
    for a, b, label in view_spans(tags):
        m = _PLAIN_INT.fullmatch(text[a:b])
        if not m or int(m.group(1)) < 3:
            continue
        end = next((i for i in range(b, min(len(text), b + BREAKDOWN_GAP)) if text[i] in BREAKDOWN_MARKS), None)
        if end is None or any(t and t != "O" for t in tags[b:end]):
            continue
        options.append((end, int(m.group(1)), m.group(2), label))
    if not options or not units:
        return None
    end, total, unit, label = rng.choice(options)
    k = rng.randint(2, min(5, total, len(units)))
    names = rng.sample(list(units), k)
    quantities = [f"{value}{unit}" for value in _parts(total, k, rng)]
    head, tail = rng.choice(_BREAKDOWN_STYLES).split("{}")
    sep = "、" if rng.random() < 0.8 else "，"
    inserted = head + sep.join(name + q for name, q in zip(names, quantities)) + tail
    inserted_tags: list[Optional[str]] = ["O"] * len(inserted)
    at = len(head)
    for name, q in zip(names, quantities):
        at += len(name)
        inserted_tags[at:at + len(q)] = [f"B-{label}"] + [f"I-{label}"] * (len(q) - 1)
        at += len(q) + len(sep)
    return text[:end] + inserted + text[end:], list(tags[:end]) + inserted_tags + list(tags[end:])


def text_hint_tags(text: str, rules) -> list[str]:
    """The rules' IOB2 tag per char of a text that is already a normalised view (a rewritten window)."""
    return spans_to_view_tags(TextView(text, text, list(range(len(text)))), rules.spans(text))


def doc_examples(doc: AnnotatedDoc, tokenizer, label2id: dict[str, int], max_len: int = 256,
                 stride: int = 64, augment: int = 0, rng=None, skip_plain: bool = False,
                 hints: Optional[HintSpec] = None, number_forms: int = 0, mention_swaps: int = 0,
                 bank: Optional[dict[str, list[str]]] = None, hedges: int = 0,
                 focus: Optional[Sequence[int]] = None, unhedged: bool = False, breakdowns: int = 0,
                 units: Sequence[str] = ()) -> list[dict]:
    """Training examples (one per window) of one annotated document, plus `augment` copies with
    perturbed claim values of every window that holds a span, `number_forms` copies with its claims
    written in other number forms (`rewrite_window`), `hedges` copies with its claims hedged (`约32条`,
    `32余条`, `32条左右`: `govfacts.numforms.hedge_forms`) and `mention_swaps` copies with their metric
    phrases swapped for others of the same label (`swap_mentions` over `bank`), and `breakdowns` copies with one
    claim broken down into named parts (`add_breakdown` over `units`). With `skip_plain`, windows are cut from the claim
    segments only, as the tagger reads them then (govfacts.claims), and with `focus` (before, after, after a
    cue) only from the ranges around their quantity candidates and negation cues
    (`govfacts.claims.focus_segments`). With `unhedged`, no window's encoding holds the approximators of
    its quantity candidates (`govfacts.infer.windows.skip_tokens`), as the tagger then reads. With `hints`, every example also
    gets token_type_ids from the rules' spans, corrupted anew for each copy; a rewritten copy gets the
    rules' tags of its own text."""
    rng = rng or random.Random(0)
    view, tags = doc_view_tags(doc)
    hint_tags = rule_hint_tags(view, hints.rules) if hints else None
    candidates = view_quantities(view) if hints and hints.quantities else []
    vetoed = hints.rules.vetoed(view) if hints and hints.quantities and hints.vetoes else []
    vocab = hint_vocab(list(label2id), bool(hints and hints.quantities), bool(hints and hints.vetoes))
    names = sorted({t[2:] for t in label2id if t != "O"})
    out = []
    segments = focus_segments(view.text, view_quantities(view), *focus) if focus else None
    unread = view_approximators(view) if unhedged else ()
    for s, e, first in read_encoded_windows(view.text, tokenizer, max_len, stride, skip_plain, segments=segments,
                                            unread=unread):
        win_tags = tags[s:e]
        if all(t is None for t in win_tags):
            continue  # a window wholly inside an ignored table teaches nothing
        texts = [view.text[s:e]]
        has_claim = any(t and t != "O" for t in win_tags)
        if augment and has_claim:
            texts += [perturb_numbers(texts[0], win_tags, rng) for _ in range(augment)]
        for k, text in enumerate(texts):
            enc = first if k == 0 else _encode(tokenizer, text, max_len, unhedged)
            labels = align_labels(enc["offsets"], win_tags, label2id)
            row = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels,
                   "doc_id": doc.doc_id, "start": s, "end": e, "copy": k}
            if hints:
                win_hints = corrupt_hints(hint_tags[s:e], rng, hints.drop, hints.swap, names)
                win_hints = quantity_hints(win_hints, [c for c in candidates if c[0] < e and s < c[1]],
                                           [c for c in vetoed if c[0] < e and s < c[1]], s)
                row["token_type_ids"] = hint_type_ids(enc["offsets"], win_hints, vocab)
            out.append(row)
        rewrites = [lambda: rewrite_window(texts[0], win_tags, rng)] * number_forms
        rewrites += [lambda: rewrite_window(texts[0], win_tags, rng, forms=hedge_forms)] * hedges
        rewrites += [lambda: swap_mentions(texts[0], win_tags, bank or {}, rng)] * mention_swaps
        rewrites += [lambda: add_breakdown(texts[0], win_tags, units, rng)] * breakdowns
        for k, rewrite in enumerate(rewrites if has_claim else []):
            rewritten = rewrite()
            if rewritten is None:
                continue
            text, new_tags = rewritten
            enc = _encode(tokenizer, text, max_len, unhedged)
            row = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                   "labels": align_labels(enc["offsets"], new_tags, label2id), "doc_id": doc.doc_id,
                   "start": s, "end": e, "copy": len(texts) + k}
            if hints:
                win_hints = corrupt_hints(text_hint_tags(text, hints.rules), rng, hints.drop, hints.swap, names)
                if hints.quantities:
                    own = TextView(text, text, list(range(len(text))))
                    win_hints = quantity_hints(win_hints, find_quantities(text),
                                               hints.rules.vetoed(own) if hints.vetoes else [])
                row["token_type_ids"] = hint_type_ids(enc["offsets"], win_hints, vocab)
            out.append(row)
    return out


def _encode(tokenizer, text: str, max_len: int, unhedged: bool) -> dict:
    """One rewritten window encoded as `read_encoded_windows` would: without its approximators when `unhedged`."""
    enc = encode_window(tokenizer, text, max_len)
    return skip_tokens(enc, find_approximators(text)) if unhedged else enc


def build_dataset(docs: Iterable[AnnotatedDoc], tokenizer, labels: LabelSet | None = None, max_len: int = 256,
                  stride: int = 64, augment: int = 0, seed: int = 0, skip_plain: bool = False,
                  hints: Optional[HintSpec] = None, number_forms: int = 0, mention_swaps: int = 0,
                  hedges: int = 0, focus: Optional[Sequence[int]] = None, unhedged: bool = False,
                  breakdowns: int = 0, units: Sequence[str] = ()):
    """A `datasets.Dataset` of windows (input_ids, attention_mask, labels, doc_id, start, end, copy,
    and token_type_ids with `hints`); copy > 0 marks an augmented window (see `perturb_numbers`).
    Mention swaps draw from the metric phrases of `docs` themselves and the rules' cue words
    (`mention_bank`)."""
    from datasets import Dataset  # heavy: imported only when a dataset is built

    docs = list(docs)
    label2id = (labels or default_labels()).label2id
    rng = random.Random(seed)
    bank = mention_bank(docs, cue_words()) if mention_swaps else None
    rows = [ex for doc in docs for ex in doc_examples(doc, tokenizer, label2id, max_len, stride, augment, rng,
                                                      skip_plain, hints, number_forms, mention_swaps, bank,
                                                      hedges, focus, unhedged, breakdowns, units)]
    cols = ["input_ids", "attention_mask", "labels", "doc_id", "start", "end", "copy"]
    if hints:
        cols.append("token_type_ids")
    return Dataset.from_dict({c: [r[c] for r in rows] for c in cols})
