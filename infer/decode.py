"""Constrained IOB2 decoding of per-character tag probabilities, and spans from the decoded tags.

Independent per-char argmax can produce I-X without a preceding B-X/I-X (or a label switch in
the middle of a quantity); Viterbi with hard transition constraints returns the most probable
*valid* tag sequence instead. All functions are pure (numpy in, Python out).

Span score = MIN of the chosen tags' probabilities (not the mean). A span is right only if every
one of its chars is right (strict entity match), so its weakest char bounds its correctness; the
usual error is one uncertain boundary char (is "多"/"余"/"左右" inside?), which a mean over a long
span would dilute into a confident-looking score.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

from govfacts.claims import NEGATION, SENT_ENDS
from govfacts.quantity import HEDGES, QUANTITY_RX
from govfacts.tags import view_spans

_DIGIT_RX = re.compile(r"[0-9]")
ZERO_REACH = 40  # chars before a zero claim where its negation cue must be (all annotated ones: yes)

NEG = -1e9  # "forbidden" in log space; finite so that all-forbidden rows never produce NaN


def parse_tag(tag: str) -> tuple[str, str]:
    """'B-X' → ('B', 'X'); 'O' → ('O', '')."""
    if tag == "O":
        return "O", ""
    kind, _, label = tag.partition("-")
    if kind not in ("B", "I") or not label:
        raise ValueError(f"not an IOB2 tag: {tag!r}")
    return kind, label


def allowed_transitions(tags: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start[T], trans[T, T]) log-space masks: 0 allowed, NEG forbidden.

    I-X may only follow B-X or I-X and may not start a sequence; everything else is allowed.
    """
    parsed = [parse_tag(t) for t in tags]
    n = len(tags)
    trans = np.zeros((n, n), dtype=np.float64)
    start = np.zeros(n, dtype=np.float64)
    for j, (kj, lj) in enumerate(parsed):
        if kj != "I":
            continue
        start[j] = NEG
        for i, (ki, li) in enumerate(parsed):
            if not (ki in ("B", "I") and li == lj):
                trans[i, j] = NEG
    return start, trans


def transition_structure(trans: np.ndarray):
    """IOB2 transitions as index arrays: (free columns, constrained columns, their two allowed
    predecessors (lower index first)), or None when the mask has another shape.

    With it a Viterbi step costs O(n_tags) instead of O(n_tags^2): a free column (allowed after
    every tag) takes the best previous score; a constrained one (I-X) the better of B-X and I-X.
    Paths through forbidden transitions score ~1e9 below any allowed path (log-probs are clipped
    at log(1e-12) > -28 per char), so they never win for documents under ~3.5e7 chars and ignoring
    them gives the same tag ids as the full max over all predecessors.
    """
    allowed = trans == 0
    free = np.flatnonzero(allowed.all(axis=0))
    cont = np.flatnonzero(~allowed.all(axis=0))
    pa, pb = [], []
    for j in cont:
        prev = np.flatnonzero(allowed[:, j])
        if not 1 <= len(prev) <= 2:
            return None
        pa.append(prev[0])
        pb.append(prev[-1])
    return free, cont, np.asarray(pa, dtype=np.int64), np.asarray(pb, dtype=np.int64)


def viterbi_many(view_probs: Sequence, tags: Sequence[str], chunk: int = 2048, log_space: bool = False
                 ) -> list[list[int]]:
    """The constrained Viterbi path of several sequences at once: the one decoder of govfacts.

    `view_probs` holds (probs, covered) pairs (log-probabilities from `char_log_probs`), or with
    `log_space` ready log-probability arrays [n, n_tags].

    The sequences are sorted by length; step t advances the k sequences longer than t together
    (the same element-wise float64 operations as the single-sequence Viterbi, hence the same tag
    ids). Log-probabilities are built `chunk` steps at a time and backpointers kept as int8/int16,
    so a long document costs ~n_tags bytes per char instead of 16x that.
    """
    n_tags = len(tags)
    out: list[list[int]] = [[] for _ in view_probs]
    def first(i):
        return view_probs[i] if log_space else view_probs[i][0]

    def lp_of(i, a, b):
        if log_space:
            return view_probs[i][a:b]
        return char_log_probs(view_probs[i][0][a:b], view_probs[i][1][a:b], tags)

    order = sorted((i for i in range(len(view_probs)) if len(first(i))), key=lambda i: -len(first(i)))
    if not order:
        return out
    start, trans = allowed_transitions(tags)
    fast = transition_structure(trans)
    if fast is not None:
        free, cont, pa, pb = fast
        rows = np.arange(len(order))
    lens = [len(first(i)) for i in order]
    bdtype = np.int8 if n_tags < 128 else np.int16 if n_tags < 32768 else np.int64
    backs = [np.zeros((n, n_tags), dtype=bdtype) for n in lens]
    score = np.stack([lp_of(i, 0, 1)[0] + start for i in order])
    t0 = 1
    while t0 < lens[0]:
        t1 = min(t0 + chunk, lens[0])
        k = sum(1 for n in lens if n > t0)  # sequences still running at t0 (a prefix: sorted by length)
        lp = np.zeros((k, t1 - t0, n_tags), dtype=np.float64)
        for r in range(k):
            i = order[r]
            m = min(t1, lens[r])
            lp[r, :m - t0] = lp_of(i, t0, m)
        bk = np.zeros((k, t1 - t0, n_tags), dtype=bdtype)
        for t in range(t0, t1):
            while k and lens[k - 1] <= t:
                k -= 1
            sc = score[:k]
            if fast is None:
                cand = sc[:, :, None] + trans  # [seq, prev, cur]
                bk[:k, t - t0] = cand.argmax(axis=1)
                score[:k] = cand.max(axis=1) + lp[:k, t - t0]
                continue
            # Columns open to every predecessor (O, B-X) all take the row maximum; I-X chooses
            # between its two allowed predecessors (B-X, I-X), the lower index winning ties.
            am = sc.argmax(axis=1)
            m = sc[rows[:k], am]
            a, b = sc[:, pa], sc[:, pb]
            take_b = b > a
            bk[:k, t - t0, free] = am[:, None]
            bk[:k, t - t0, cont] = np.where(take_b, pb, pa)
            new = np.empty_like(sc)
            new[:, free] = m[:, None]
            new[:, cont] = np.where(take_b, b, a)
            score[:k] = new + lp[:k, t - t0]
        for r in range(len(lens)):
            if lens[r] > t0:
                m = min(t1, lens[r])
                backs[r][t0:m] = bk[r, :m - t0]
        t0 = t1
    for r, i in enumerate(order):
        back = backs[r]
        path = [int(score[r].argmax())]
        for t in range(lens[r] - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        out[i] = path[::-1]
    return out


def viterbi_split(view_probs: Sequence, tags: Sequence[str], budget: int = 1 << 18) -> list[list[int]]:
    """`viterbi_many` over (probs, covered) pairs, each cut at its certain-O chars.

    A covered char whose O probability is exactly 1 (a sentence the tagger did not read, or a saturated
    softmax) is O on the best path: any tag may precede O and O may precede any start tag, so the path
    splits there into independent pieces with the same tags. The pieces of all sequences advance
    together: Viterbi's Python steps follow the longest read run, not the longest document.

    A tagger whose O is certain between most claims cuts a batch into tens of thousands of short pieces,
    and one dense step array [pieces, longest piece, tags] would take a gigabyte; so the log-probs of all
    pieces are built in one call, and the pieces (longest first) are decoded in groups of at most `budget`
    padded chars each. Every piece is independent, so the tags are the same.
    """
    o = list(tags).index("O")
    pieces, where = [], []  # (probs, covered) of each piece; (sequence index, start)
    out: list[list[int]] = []
    for i, (probs, covered) in enumerate(view_probs):
        n = len(probs)
        out.append([o] * n)
        if not n:
            continue
        cov = np.asarray(covered, dtype=bool)
        certain = cov & (probs[:, o] == 1.0)
        edges = np.flatnonzero(np.diff(np.concatenate(([1], certain.view(np.int8), [1]))))
        for a, b in zip(edges[::2], edges[1::2]):  # runs of not-certain chars
            pieces.append((probs[a:b], cov[a:b]))
            where.append((i, int(a)))
    if not pieces:
        return out
    lens = np.array([len(p) for p, _ in pieces])
    cut = np.concatenate(([0], np.cumsum(lens)))
    lp = char_log_probs(np.concatenate([p for p, _ in pieces]), np.concatenate([c for _, c in pieces]), tags)
    groups: list[list[int]] = []  # piece indices, longest first; a group's padded size is its first piece's
    for j in sorted(range(len(pieces)), key=lambda j: -lens[j]):
        if not groups or (len(groups[-1]) + 1) * lens[groups[-1][0]] > budget:
            groups.append([])
        groups[-1].append(j)
    for group in groups:
        for g, path in zip(group, viterbi_many([lp[cut[g]:cut[g + 1]] for g in group], tags, log_space=True)):
            i, a = where[g]
            out[i][a:a + len(path)] = path
    return out


def continuation_matrix(tags: Sequence[str]) -> np.ndarray:
    """M [T, T] with p_cont = p @ M: B-X and I-X mass → I-X, O → O.

    Used for a char that is not the first char of its token (WordPiece '2023' as one token): it can
    only continue whatever its token started.
    """
    parsed = [parse_tag(t) for t in tags]
    index = {t: i for i, t in enumerate(tags)}
    m = np.zeros((len(tags), len(tags)))
    for i, (k, lab) in enumerate(parsed):
        j = i if k == "O" else index.get(f"I-{lab}", i)
        m[i, j] = 1.0
    return m


def char_log_probs(probs: np.ndarray, covered: np.ndarray, tags: Sequence[str], eps: float = 1e-12) -> np.ndarray:
    """Log-probs for Viterbi; chars no token covers (dropped whitespace) are 'transparent'.

    An uncovered char may be O or continue any span (log-prob 0) but never begin one, so a span
    runs through a dropped space when the next token continues it and stops otherwise.
    """
    lp = np.log(np.clip(np.asarray(probs, dtype=np.float64), eps, 1.0))
    covered = np.asarray(covered, dtype=bool)
    if not covered.all():
        begins = np.array([parse_tag(t)[0] == "B" for t in tags])
        lp[~covered] = np.where(begins, NEG, 0.0)
    return lp


def spans_from_tags(tag_ids: Sequence[int], tags: Sequence[str], probs: Optional[np.ndarray] = None,
                    covered: Optional[np.ndarray] = None, how: str = "min") -> list[tuple[int, int, str, float]]:
    """(start, end, label, score) spans of a decoded sequence.

    A stray I-X opens a span (never produced by `viterbi`). Uncovered chars are trimmed from span
    edges and left out of the score. Score = min (default) or mean of the chosen tags' probabilities.
    """
    n = len(tag_ids)
    cov = np.ones(n, dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    out = []
    for s, e, lab in _tag_id_spans(tag_ids, tags):
        while s < e and not cov[s]:
            s += 1
        while e > s and not cov[e - 1]:
            e -= 1
        if s >= e:
            continue
        if probs is None:
            score = 1.0
        else:
            chosen = [float(probs[i, tag_ids[i]]) for i in range(s, e) if cov[i]]
            score = span_score(chosen, how)
        out.append((s, e, lab, score))
    return out


def _tag_id_spans(tag_ids: Sequence[int], tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """`view_spans` of tag ids, reading only the runs of non-O tags (an O ends every span, so each run
    is decoded alone): a document is mostly O."""
    if "O" not in tags:
        return view_spans([tags[i] for i in tag_ids])
    ids = np.asarray(tag_ids, dtype=np.int64)
    busy = np.concatenate(([False], ids != list(tags).index("O"), [False]))
    edges = np.flatnonzero(busy[1:] != busy[:-1])
    out = []
    for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()):
        out += [(a + s, a + e, lab) for s, e, lab in view_spans([tags[i] for i in ids[a:b].tolist()])]
    return out


def span_score(chosen: Sequence[float], how: str = "min") -> float:
    """Aggregate the chosen tags' probabilities of one span into a score in [0, 1]."""
    if not chosen:
        return 0.0
    if how == "min":
        v = min(chosen)
    elif how == "mean":
        v = sum(chosen) / len(chosen)
    else:
        raise ValueError(f"unknown span score {how!r} (min | mean)")
    return float(min(1.0, max(0.0, v)))


def quantity_core(text: str, start: int, end: int) -> list[int]:
    """Positions of a quantity candidate's number, multiplier and unit: the label contract spans a claim
    with its approximators (`约`/`近`/`逾`/`超过`/`将近`/`大约` before, `多`/`余` after the number, `左右` after
    the unit), but they say nothing about which metric it counts, so the tagger's evidence is read
    without them: a hedged claim is decided as the same claim written plainly. The approximators are the
    groups of the quantity grammar that found the candidate (`govfacts.quantity.QUANTITY_RX`); all
    positions when the text is not given, the grammar does not read the candidate whole, or nothing else
    is left."""
    m = QUANTITY_RX.match(text, start, end) if text else None
    if m is None or m.end() != end:
        return list(range(start, end))
    hedged = {i for g in HEDGES if m.group(g) for i in range(*m.span(g))}
    return [i for i in range(start, end) if i not in hedged] or list(range(start, end))


def anchor_spans(found: Sequence[tuple[int, int, str, float]], probs: np.ndarray, covered: np.ndarray,
                 tags: Sequence[str], candidates: Sequence[tuple[int, int]], threshold: float = 0.5,
                 text: str = "", hinted: Sequence[tuple[int, int]] = (), hint_threshold: Optional[float] = None,
                 refused: Sequence[frozenset[str]] = ()) -> list[tuple[int, int, str, float]]:
    """Quantity-anchored decoding: numeric claims take their boundaries from the quantity grammar.

    A small tagger is good at telling WHICH metric a number counts but unsure WHERE a long number
    expression ends (it splits `22.4万余次` into pieces). Each candidate expression is therefore
    decided as a whole: it is a span when its chars' mean entity probability (1 − p(O)) reaches
    `threshold`, labelled with the label of the highest mean B-/I- mass; its score is that mass's
    minimum over the chars (with `text`, the chars of its `quantity_core`: approximators left out). Decoded spans that overlap a candidate give way to it; the others
    (zero claims such as `没有发生[行政复议]`) are kept where, when `text` is given, a zero claim can
    be (`is_zero_claim_site`). A candidate the rules labelled (`hinted`, view ranges) needs only
    `hint_threshold` (fitted on dev): the rules' vote is evidence the tagger weighs, not a tie-breaker.
    `refused[i]` (when given, one per candidate) holds the labels candidate i may not take because the
    label contract does not count in its unit: their mass counts as `O`, so `12.78亿元` is never a rate.
    """
    probs = np.asarray(probs, dtype=np.float64)
    cov = np.asarray(covered, dtype=bool)
    parsed = [parse_tag(t) for t in tags]
    labels = sorted({lab for _, lab in parsed if lab})
    mass = np.zeros((len(tags), len(labels)))
    o_col = None
    for j, (kind, lab) in enumerate(parsed):
        if kind == "O":
            o_col = j
        else:
            mass[j, labels.index(lab)] = 1.0
    out: list[tuple[int, int, str, float]] = []
    for ci, (s, e) in enumerate(candidates):
        idx = [i for i in quantity_core(text, s, e) if i < len(probs) and cov[i]]
        if not idx:
            continue
        p = probs[idx]
        per_label = p @ mass  # [chars, labels]
        if refused and refused[ci]:
            per_label[:, [k for k, lab in enumerate(labels) if lab in refused[ci]]] = 0.0
            p_ent = float(per_label.sum(axis=1).mean())
        else:
            p_ent = 1.0 - float(p[:, o_col].mean()) if o_col is not None else 1.0
        need = threshold
        if hint_threshold is not None and any(a < e and s < b for a, b in hinted):
            need = hint_threshold
        if p_ent < need:
            continue
        k = int(per_label.mean(axis=0).argmax())
        out.append((s, e, labels[k], float(min(1.0, max(0.0, per_label[:, k].min())))))
    cand_mask = np.zeros(len(probs), dtype=bool)
    for s, e in candidates:
        cand_mask[s:e] = True
    for s, e, lab, score in found:
        if not cand_mask[s:e].any() and (not text or is_zero_claim_site(text, s, e)):
            out.append((s, e, lab, score))
    return sorted(out)


def is_zero_claim_site(text: str, start: int, end: int, reach: int = ZERO_REACH) -> bool:
    """Can text[start:end] be a zero claim? It holds no digit (a number the quantity grammar rejects
    is a year, a date or a phone number) and a negation cue precedes it within `reach` chars of its
    sentence, as for every annotated zero claim (label contract, span convention 2)."""
    if _DIGIT_RX.search(text[start:end]):
        return False
    a = start
    while a > 0 and start - a < reach and text[a - 1] not in SENT_ENDS:
        a -= 1
    return bool(NEGATION.search(text[a:start]))
