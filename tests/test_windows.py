"""Windows cut on sentence ends and encoded once, as training and inference read them (infer/windows.py)."""
import dataclasses

import pytest

from govfacts.claims import WINDOW_ENDS as SENT_ENDS
from govfacts.infer.windows import _fit, _n_special, encode_window, make_windows
from govfacts.textview import build_view


def fit_windows(text: str, tokenizer, max_len: int, stride: int) -> list[tuple[int, int]]:
    """Reference windowing for the one-pass reader: `make_windows` with max_len-2 chars ([CLS]/[SEP]: max_len minus the tokenizer's special
    tokens), re-split where a tokenizer needs > max_len tokens.

    Re-splitting is needed only for tokenizers that emit several tokens per char (byte-level BPE);
    char-level and WordPiece tokenizers give tokens <= chars and the first pass already fits.
    """
    out = []
    for s, e in make_windows(text, max(1, max_len - _n_special(tokenizer)), stride):
        out.extend(_fit(text, s, e, tokenizer, max_len, stride))
    return out


@pytest.mark.parametrize("max_chars,stride", [(254, 64), (126, 32), (60, 0)])
def test_windows_cover_overlap_and_prefer_sentence_ends(docs, max_chars, stride):
    for doc in docs.values():
        text = build_view(doc.text).text
        wins = make_windows(text, max_chars, stride)
        assert wins[0][0] == 0 and wins[-1][1] == len(text)
        assert all(0 < e - s <= max_chars for s, e in wins)
        for (s1, e1), (s2, e2) in zip(wins, wins[1:]):
            assert s1 < s2 <= e1 and e1 - s2 <= stride  # contiguous coverage, at most `stride` overlap
            if any(c in SENT_ENDS for c in text[s1 + max_chars // 2:e1]):
                assert text[e1 - 1] in SENT_ENDS  # cut after a sentence end when the window has one
    assert make_windows("短文本。", 10, 4) == [(0, 4)]
    assert make_windows("", 10, 4) == [(0, 0)]


def test_fit_windows_respects_token_budget(docs, byte_tok):
    text = build_view(docs["gov-pingtan-2024"].text).text[:900]
    wins = fit_windows(text, byte_tok, 64, 16)
    assert wins[0][0] == 0 and wins[-1][1] == len(text)
    for (s, e), (s2, _) in zip(wins, wins[1:] + [(len(text), None)]):
        assert len(byte_tok(text[s:e])["input_ids"]) <= 64
        assert s2 <= e


@pytest.mark.parametrize("skip_plain", [False, True])
def test_encoded_windows_equal_windows_then_encoding(docs, byte_tok, char_tok, wordpiece_tok, skip_plain):
    """The one-pass window reader gives fit_windows' windows (over claim segments with skip_plain) with
    encode_window's encodings."""
    from govfacts.claims import claim_segments
    from govfacts.infer.windows import read_encoded_windows

    text = build_view(docs["gov-pingtan-2021"].text).text[:6000]
    segments = claim_segments(text) if skip_plain else [(0, len(text))]
    for tok, max_len, stride in ((char_tok, 128, 32), (byte_tok, 64, 16), (char_tok, 16, 4), (wordpiece_tok, 48, 8)):
        windows = [(s + a, e + a) for a, b in segments for s, e in fit_windows(text[a:b], tok, max_len, stride)]
        want = [(s, e, encode_window(tok, text[s:e], max_len)) for s, e in windows]
        got = list(read_encoded_windows(text, tok, max_len, stride, skip_plain))
        assert [(s, e) for s, e, _ in got] == [(s, e) for s, e, _ in want]
        assert [enc for *_, enc in got] == [enc for *_, enc in want]
        assert all(len(enc["input_ids"]) <= max_len for *_, enc in got)


def test_segments_that_cannot_give_a_span_are_not_encoded_and_spans_stay_the_same(samples):
    """With anchored decoding a span is a quantity candidate or a zero claim after a negation cue, so a
    claim segment with neither (a date, a document number) is not read; the spans are those of a read of
    every segment."""
    from govfacts.claims import NEGATION, claim_segments
    from govfacts.infer.loader import InferSettings, load, taggers_in
    from govfacts.infer.windows import read_encoded_windows
    from govfacts.quantity import view_quantities

    tagger = taggers_in(load(None, InferSettings.load()))[0]
    assert tagger.options.anchor
    texts = [f.read_text(encoding="utf-8") for f in sorted(samples.glob("*.txt"))[:3]]
    skipped = 0
    for raw in texts:
        view = build_view(raw)
        keep = tagger._may_yield(view)
        cands = view_quantities(view)
        for a, b in claim_segments(view.text):
            can = any(s < b and a < e for s, e in cands) or NEGATION.search(view.text[a:b])
            assert keep(a, b) == bool(can)
            skipped += not can
        opts = tagger.options
        every = list(read_encoded_windows(view.text, tagger.tokenizer, opts.max_len, opts.stride, True))
        read = list(read_encoded_windows(view.text, tagger.tokenizer, opts.max_len, opts.stride, True, keep))
        assert [w[:2] for w in read] == [w[:2] for w in every if keep(*_segment_of(view.text, w[0]))]
    assert skipped > 0
    fast = tagger.spans_many(texts)
    tagger._may_yield = lambda view: None  # read every claim segment
    slow = tagger.spans_many(texts)
    assert [[(s.start, s.end, s.label) for s in d] for d in fast] == [[(s.start, s.end, s.label) for s in d] for d in slow]
    assert all(abs(a.score - b.score) < 0.02 for d, e in zip(fast, slow) for a, b in zip(d, e))  # int8: per-batch scales


def _segment_of(text: str, pos: int) -> tuple[int, int]:
    from govfacts.claims import claim_segments

    return next((a, b) for a, b in claim_segments(text) if a <= pos < b)


def test_focus_reads_only_around_candidates(samples):
    """`focus` (configs/finetune.yaml, recorded as govfacts_focus) cuts windows from the ranges around
    quantity candidates and negation cues only: fewer tokens, every window inside one range."""
    from govfacts.claims import focus_segments
    from govfacts.infer.loader import InferSettings, load, taggers_in
    from govfacts.quantity import view_quantities

    tagger = taggers_in(load(None, InferSettings.load()))[0]
    tagger.options = dataclasses.replace(tagger.options, focus=None)  # whole claim segments
    views = [build_view(f.read_text(encoding="utf-8")) for f in sorted(samples.glob("*.txt"))[:3]]
    full = sum(int(mask.sum()) for _, _, mask, _ in tagger.window_batches(views))
    tagger.options = dataclasses.replace(tagger.options, focus=(64, 24, 40))
    batches = list(tagger.window_batches(views))
    assert sum(int(mask.sum()) for _, _, mask, _ in batches) < 0.85 * full
    ranges = [focus_segments(v.text, view_quantities(v), 64, 24, 40) for v in views]
    for batch, *_ in batches:
        for vi, s, e, _ in batch:
            assert any(a <= s and e <= b for a, b in ranges[vi])


def test_skip_tokens_drops_an_approximator_and_stretches_the_number_over_it(char_tok, wordpiece_tok):
    """`skip_tokens`: the approximator's tokens leave the encoding, the next token starts where it
    started; a range the tokens do not line up with, or that ends the window, is read as it is."""
    from govfacts.infer.windows import skip_tokens
    from govfacts.quantity import find_approximators

    text = "接听咨询电话约11万个，将近3000人次，60多人次，3万份左右。"
    ranges = find_approximators(text)
    assert [text[a:b] for a, b in ranges] == ["约", "将近"]  # `多`/`余`/`左右` after the number are read
    enc = encode_window(char_tok, text, 64)
    got = skip_tokens(enc, ranges)
    assert len(got["input_ids"]) == len(enc["input_ids"]) - 3
    assert len(got["attention_mask"]) == len(got["offsets"]) == len(got["input_ids"])
    starts = [o for o in got["offsets"] if o is not None]
    assert {(6, 8), (12, 15)} <= set(starts)  # `约1`, `将近3` read as `1`, `3`
    after = skip_tokens(enc, [(23, 24), (30, 32)])  # any range: `多` and `左右` go to `人` and `。`
    assert len(after["input_ids"]) == len(enc["input_ids"]) - 3 and {(23, 25), (30, 33)} <= set(after["offsets"])
    ids = {char_tok.convert_tokens_to_ids(c) for c in "约将近"}
    assert not ids & set(got["input_ids"])
    assert skip_tokens(enc, [(len(text) - 1, len(text))]) == enc  # nothing follows the last char
    # WordPiece merges digits (`14`): a range inside a token is left alone
    wp = encode_window(wordpiece_tok, "受理14宗", 16)
    assert skip_tokens(wp, [(2, 3)]) == wp


def test_unhedged_tagger_reads_hedged_claims_as_plain_ones(samples):
    """With `unhedged` (configs/finetune.yaml, recorded as govfacts_unhedged) the encoder reads a window
    with its candidates' approximators taken out, so `约32条` reads as `32条`; the approximator's char
    takes the number's tag, so the span still holds it."""
    from govfacts.infer.loader import InferSettings, load, taggers_in

    tagger = taggers_in(load(None, InferSettings.load()))[0]
    sentence = "全年通过门户网站主动公开政府信息{}32条,占8.83%;"
    hedged, plain = build_view(sentence.format("约")), build_view(sentence.format(""))
    tagger.options = dataclasses.replace(tagger.options, unhedged=True)
    (_, ids_h, _, types_h), = tagger.window_batches([hedged])
    (_, ids_p, _, types_p), = tagger.window_batches([plain])
    assert ids_h.tolist() == ids_p.tolist() and types_h.tolist() == types_p.tolist()
    probs_h, _ = tagger.view_probs([hedged])[0]
    probs_p, _ = tagger.view_probs([plain])[0]
    at = hedged.raw.index("约")
    assert probs_h[at].tolist() == probs_p[at].tolist()  # `约` takes the distribution `3` has written plainly
    found_h, found_p = tagger.spans(hedged.raw), tagger.spans(plain.raw)
    assert found_p and [(s.label, s.text, s.score) for s in found_h] == \
        [(s.label, "约" + s.text, s.score) for s in found_p]
