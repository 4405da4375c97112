"""Rule hints: the rule baseline's spans fed to the tagger as an extra input per token.

With ~700 labelled spans a small encoder cannot learn the cue lexicon the rules encode, and the
rules cannot learn from data. A hinted tagger gets both: every token carries the IOB2 tag the rules
give its first character, through BERT's token-type embeddings (one type per tag, type 0 = O, so a
pretrained base's type-0 vector stays the "no hint" vector), and quantity-grammar candidates the
rules left unlabelled carry B-QTY/I-QTY (B-VETO/I-VETO where an out-of-scope cue of the rules vetoed
them, for models trained so). The model learns when to keep, relabel,
drop or add a span. In training the hints are corrupted at random (spans dropped or relabelled) so
the model also learns to find and label claims the rules miss or get wrong.
"""
from __future__ import annotations

import random
from typing import Optional, Sequence

from govfacts.tags import spans_to_view_tags
from govfacts.textview import TextView


def rule_spans(view: TextView, rules) -> list:
    """The rule extractor's spans of `view`, computed once per view and rule set (hints and phrases
    share them); the memo is keyed by the rules' content hash."""
    key = ("rule_spans", rules.fingerprint)
    if key not in view.memo:
        view.memo[key] = rules.spans_of_view(view)
    return view.memo[key]


def rule_hint_tags(view: TextView, rules) -> list[str]:
    """IOB2 tag per view char from the rule extractor's spans (O outside them), projected onto the view
    as gold spans are (`spans_to_view_tags`)."""
    return spans_to_view_tags(view, rule_spans(view, rules))


def rule_view_spans(view: TextView, rules) -> list[tuple[int, int]]:
    """View [start, end) of the rule extractor's spans."""
    return [view.from_raw(s.start, s.end) for s in rule_spans(view, rules)]


def zero_claim_phrases(view: TextView, rules) -> list[tuple[int, int]]:
    """View [start, end) of the noun phrases the rules take as zero claims (`没有发生[行政复议案件]`)."""
    out = []
    for span in rule_spans(view, rules):
        vs, ve = view.from_raw(span.start, span.end)
        if not any(c.isdigit() for c in view.text[vs:ve]):
            out.append((vs, ve))
    return out


def snap_to_phrases(found, phrases: Sequence[tuple[int, int]]) -> list:
    """Decoded spans (start, end, label, score) that overlap a zero-claim phrase take its boundaries
    (the model keeps the say on whether and which label): a small tagger often stops a long noun
    phrase early (`[政府]信息公开的申请`). Spans merged into one phrase keep the best-scored label."""
    out: dict[tuple[int, int], tuple] = {}
    rest = []
    for s, e, lab, score in found:
        hit = next(((a, b) for a, b in phrases if a < e and s < b), None)
        if hit is None:
            rest.append((s, e, lab, score))
        elif hit not in out or out[hit][3] < score:
            out[hit] = (hit[0], hit[1], lab, score)
    kept = [f for f in rest if not any(a < f[1] and f[0] < b for a, b in out)]
    return sorted(kept + list(out.values()))


QTY_TAGS = ("B-QTY", "I-QTY")  # a quantity-grammar candidate the rules gave no label
VETO_TAGS = ("B-VETO", "I-VETO")  # a quantity the rules' out-of-scope cues veto (`RuleExtractor.vetoed`)


def hint_vocab(tags: Sequence[str], quantities: bool, vetoes: bool = False) -> dict[str, int]:
    """Hint tag -> token type id: the model's IOB2 tags (O = 0), then, with `quantities`, B-QTY/I-QTY, then,
    with `vetoes` too, B-VETO/I-VETO."""
    vocab = {t: i for i, t in enumerate(tags)}
    if quantities:
        vocab.update({t: len(tags) + k for k, t in enumerate(QTY_TAGS)})
        if vetoes:
            vocab.update({t: len(tags) + len(QTY_TAGS) + k for k, t in enumerate(VETO_TAGS)})
    return vocab


def mark_quantities(tags: Sequence[str], candidates: Sequence[tuple[int, int]], offset: int = 0,
                    marks: tuple[str, str] = QTY_TAGS) -> list[str]:
    """`tags` with every quantity candidate (view offsets, shifted by -`offset`) that no hinted span
    touches marked B-QTY/I-QTY (or `marks`): the model then knows the rules looked at that number and left
    it out."""
    out = list(tags)
    n = len(out)
    for s, e in candidates:
        s, e = max(0, s - offset), min(n, e - offset)
        if s < e and all(t == "O" for t in out[s:e]):
            out[s:e] = [marks[0]] + [marks[1]] * (e - s - 1)
    return out


def quantity_hints(tags: Sequence[str], candidates: Sequence[tuple[int, int]], vetoed: Sequence[tuple[int, int]],
                   offset: int = 0) -> list[str]:
    """Rule tags with the vetoed quantities marked B-VETO/I-VETO, then the other unlabelled candidates
    B-QTY/I-QTY (`vetoed` empty: quantity hints only)."""
    return mark_quantities(mark_quantities(tags, vetoed, offset, VETO_TAGS), candidates, offset)


def corrupt_hints(tags: Sequence[str], rng: random.Random, drop: float, swap: float,
                  names: Sequence[str]) -> list[str]:
    """`tags` with each hinted span dropped (prob `drop`) or given another random label (prob `swap`)."""
    out = list(tags)
    i, n = 0, len(out)
    while i < n:
        if not out[i].startswith("B-") or out[i] in QTY_TAGS or out[i] in VETO_TAGS:
            i += 1
            continue
        j = i + 1
        while j < n and out[j] == "I-" + out[i][2:]:
            j += 1
        r = rng.random()
        if r < drop:
            out[i:j] = ["O"] * (j - i)
        elif r < drop + swap:
            new = rng.choice([x for x in names if x != out[i][2:]] or list(names))
            out[i:j] = ["B-" + new] + ["I-" + new] * (j - i - 1)
        i = j
    return out


def hint_type_ids(offsets: Sequence[Optional[tuple[int, int]]], hint_tags: Sequence[str],
                  vocab: dict[str, int]) -> list[int]:
    """token_type_ids of one window: the hint type (`hint_vocab`) of each token's first char (0 = O for
    special tokens and chars past the window)."""
    n, get = len(hint_tags), vocab.get
    return [0 if off is None or off[0] >= n else get(hint_tags[off[0]], 0) for off in offsets]


def uses_quantity_hints(cfg) -> bool:
    """A hinted model (its config) with more token types than tags was trained with B-QTY/I-QTY hints."""
    return int(getattr(cfg, "type_vocab_size", 0)) > int(cfg.num_labels)


def uses_veto_hints(cfg) -> bool:
    """... and with two more, with B-VETO/I-VETO hints too."""
    return int(getattr(cfg, "type_vocab_size", 0)) > int(cfg.num_labels) + len(QTY_TAGS)


def enable_hints(model, n_types: int) -> None:
    """Give `model` one token-type embedding per hint tag (the old type 0 row kept, new rows copies
    of it plus small noise) and mark its config, so `from_pretrained` rebuilds the same shape."""
    import torch

    emb = getattr(getattr(model, "base_model", None), "embeddings", None)
    old = getattr(emb, "token_type_embeddings", None)
    if old is None:
        raise ValueError(f"{type(model).__name__}: rule hints need token-type embeddings (a BERT-style encoder)")
    if old.num_embeddings != n_types:
        new = torch.nn.Embedding(n_types, old.embedding_dim)
        with torch.no_grad():
            new.weight.copy_(old.weight[0].expand(n_types, -1))
            new.weight[1:] += torch.randn(n_types - 1, old.embedding_dim) * 0.02
        emb.token_type_embeddings = new
    model.config.type_vocab_size = n_types
    model.config.govfacts_rule_hints = True
