"""Windows the tagger reads: overlapping cuts of a text on sentence ends, tokenised once.

Training (`govfacts.train.dataset`) and inference (`govfacts.infer.tagger`) cut and encode windows
with these functions only, so a model sees at inference exactly the kind of window it was trained on.
Token alignment goes through the tokenizer's offset_mapping, so any fast Hugging Face tokenizer works
(one char per token, WordPiece merging several chars, byte-level BPE with several tokens per char).
"""
from __future__ import annotations

import bisect
from typing import Callable, Optional, Sequence

from govfacts.claims import WINDOW_ENDS, claim_segments


# -- windows --------------------------------------------------------------------------------------
def make_windows(text: str, max_chars: int, stride: int, ends: str = WINDOW_ENDS) -> list[tuple[int, int]]:
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


def read_encoded_windows(text: str, tokenizer, max_len: int, stride: int, skip_plain: bool = False,
                         keep_segment: Optional[Callable[[int, int], bool]] = None,
                         segments: Optional[Sequence[tuple[int, int]]] = None,
                         unread: Sequence[tuple[int, int]] = ()):
    """The windows the tagger reads, with their `encode_window` encodings: yields (start, end, encoding).

    The windows are `make_windows` (re-split by `_fit` where a tokenizer needs more tokens than max_len) over the whole text, or with `skip_plain` over each claim segment
    (govfacts.claims) alone; training and inference cut windows the same way. `keep_segment(start, end)`
    (with `skip_plain`) passes over claim segments it rejects whole, so the windows of the others are the
    same as without it. `segments` (`govfacts.claims.focus_segments`) replaces the claim segments: the
    windows are cut from these ranges only. A window that fits is
    tokenised once, not once to check it fits and once to encode: the encoding with room for one token
    more than max_len is the untruncated one exactly when it fits. `unread` (sorted, non-overlapping
    ranges of `text`, e.g. the approximators of quantity candidates) is passed to `skip_tokens` for every
    window."""
    for s, e, enc in _encoded_windows(text, tokenizer, max_len, stride, skip_plain, keep_segment, segments):
        yield s, e, skip_tokens(enc, _within(unread, s, e)) if unread else enc


def _within(ranges: Sequence[tuple[int, int]], s: int, e: int) -> list[tuple[int, int]]:
    """`ranges` inside [s, e), relative to s."""
    i = bisect.bisect_left(ranges, (s, s))
    out = []
    while i < len(ranges) and ranges[i][0] < e:
        a, b = ranges[i]
        if b <= e:
            out.append((a - s, b - s))
        i += 1
    return out


def skip_tokens(enc: dict, ranges: Sequence[tuple[int, int]]) -> dict:
    """The encoding without the tokens of each range of window chars, the token that follows a range
    stretched back over it: the encoder does not read those chars, and they take that token's tags (the
    first char its distribution, the rest the continuation), as a token of several chars does.

    Used for the approximator that opens a quantity candidate (`约12万个`, `将近3000人次`;
    `govfacts.quantity.find_approximators`): the label contract spans it, but it says nothing about which
    metric the number counts, and training claims rarely hold one, so a hedged claim is read as the same
    claim written plainly. A range whose tokens do not line up with it, or that no
    token of the window follows (outside another range), is read as it is."""
    offsets = enc["offsets"]
    if not ranges:
        return enc
    starts = {off[0]: t for t, off in enumerate(offsets) if off is not None}
    inside = {c for a, b in ranges for c in range(a, b)}
    drop: set[int] = set()
    stretch: dict[int, int] = {}
    for a, b in ranges:
        toks, c = [], a
        while c < b and c in starts and offsets[starts[c]][1] <= b:
            toks.append(starts[c])
            c = offsets[starts[c]][1]
        nxt = starts.get(b)
        if c != b or not toks or nxt is None or b in inside:
            continue
        drop.update(toks)
        stretch[nxt] = a
    if not drop:
        return enc
    keep = [t for t in range(len(offsets)) if t not in drop]
    out = {k: [v[t] for t in keep] for k, v in enc.items() if k != "offsets" and isinstance(v, list)}
    out["offsets"] = [offsets[t] if t not in stretch else (stretch[t], offsets[t][1]) for t in keep]
    return out


def _encoded_windows(text, tokenizer, max_len, stride, skip_plain, keep_segment, segments):
    if segments is None:
        segments = claim_segments(text) if skip_plain else [(0, len(text))]
    for a, b in segments:
        if keep_segment is not None and skip_plain and not keep_segment(a, b):
            continue
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
