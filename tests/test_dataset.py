"""Gold spans ↔ view BIO tags, windows and token alignment on the real annotated corpus."""
from pathlib import Path

import pytest
import yaml

from govfacts.labels import default_labels
from govfacts.records import Span
from govfacts.annotations import AnnotatedDoc
from govfacts.textview import build_view
from govfacts.annotations import load_split
from govfacts.claims import WINDOW_ENDS as SENT_ENDS
from govfacts.infer.windows import _fit, _n_special, encode_window, make_windows
from govfacts.splits import split_members as resolve_splits
from govfacts.tags import spans_to_view_tags, tags_to_spans, view_spans
from govfacts.train.dataset import IGNORE_INDEX, align_labels, build_dataset, chars_and_tags, doc_examples, doc_view_tags
from tests.conftest import corpus_docs

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "annotations"
SPLITS = ANN / "splits.yaml"
LABELS = default_labels()


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


@pytest.fixture(scope="module")
def docs():
    return corpus_docs()


@pytest.fixture(scope="module")
def char_tok(tmp_path_factory, docs):
    from govfacts.train.vocab import build_tokenizer

    return build_tokenizer([d.text for d in list(docs.values())[:3]], tmp_path_factory.mktemp("chartok"))


@pytest.fixture(scope="module")
def wordpiece_tok():
    """A plain BERT WordPiece tokenizer: merges digits, drops whitespace, lowercases, has [UNK]s."""
    from transformers import BertTokenizerFast

    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "共", "受", "理", "申", "请", "宗", "，", "。", "其", "中",
            "网", "上", "年", "14", "10", "##0", "##5", "2015", "%"]
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(toks)})


@pytest.fixture(scope="module")
def byte_tok():
    """A byte-level BPE without merges: three tokens per Chinese char, all with the same offsets."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["共受理申请14宗"], trainers.BpeTrainer(
        vocab_size=259, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


# -- documents and splits -------------------------------------------------------------------------
def test_load_split_follows_splits_yaml(docs):
    splits = yaml.safe_load(SPLITS.read_text(encoding="utf-8"))
    seen = {}
    for name in ("train", "dev", "test"):
        got = [d.doc_id for d in load_split(name, ANN, SPLITS)]
        literal = [x for x in splits[name] if "*" not in x]
        assert got[:len(literal)] == literal  # listed order, patterns expanded after
        for d in got:
            assert seen.setdefault(d, name) == name  # no document in two splits
    assert set(seen) <= set(docs)
    with pytest.raises(KeyError):
        load_split("nope", ANN, SPLITS)


def test_split_patterns(tmp_path, docs):
    ids = sorted(docs)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"train": ["gov-pingtan-201?", "nothing-*"], "dev": [ids[0]]}))
    got = resolve_splits(f, ids)
    assert got["train"] == sorted(d for d in ids if len(d) == len("gov-pingtan-2011") and d.startswith("gov-pingtan-201"))
    assert got["dev"] == [ids[0]]
    f.write_text(yaml.safe_dump({"train": ["gov-*"], "test": ["gov-pingtan-2022"]}))
    with pytest.raises(ValueError):
        resolve_splits(f, ids)
    f.write_text(yaml.safe_dump({"train": ["no-such-doc"]}))
    with pytest.raises(KeyError):
        resolve_splits(f, ids)


def test_round_trip_every_real_doc(docs):
    """doc → view tags → spans gives back the gold spans (none lies in an ignore region)."""
    n = 0
    for doc in docs.values():
        view, tags = doc_view_tags(doc)
        got = [(s.start, s.end, s.label, s.text) for s in tags_to_spans(tags, view)]
        want = [(s.start, s.end, s.label, s.text) for s in doc.spans
                if not any(a < s.end and s.start < b for a, b in doc.ignore)]
        assert got == want, doc.doc_id
        n += len(want)
    assert n > 300


def test_chars_and_tags_is_iob2_with_ignored_regions(docs):
    for doc in docs.values():
        chars, tags = chars_and_tags(doc)
        view = build_view(doc.text)
        assert "".join(chars) == view.text and len(tags) == len(chars)
        prev = "O"
        for t in tags:
            assert t is None or t in LABELS.label2id
            if t and t.startswith("I-"):
                assert prev in ("B-" + t[2:], t)
            prev = t or "O"
        for a, b in doc.ignore:
            vs, ve = view.from_raw(a, b)
            assert ve > vs and all(tags[i] is None for i in range(vs, ve))
        outside = {view.index[i] for i, t in enumerate(tags) if t is None}
        assert all(any(a <= r < b for a, b in doc.ignore) for r in outside)


def test_view_drops_and_adjacent_spans():
    raw = "收到申请 1 136 件（其中网上\n申请10件）。"  # view drops CJK-adjacent spaces and the soft line break
    spans = [Span(5, 12, "APPLICATIONS_RECEIVED", "1 136 件"), Span(12, 13, "NONE_X", "（")]
    view = build_view(raw)
    tags = spans_to_view_tags(view, spans)
    back = tags_to_spans(tags, view)
    assert [(s.start, s.end, s.label, s.text) for s in back] == [(s.start, s.end, s.label, s.text) for s in spans]
    assert view_spans(["B-A", "I-A", "B-A", "I-B", None, "O"]) == [(0, 2, "A"), (2, 3, "A"), (3, 4, "B")]


# -- windows --------------------------------------------------------------------------------------
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


# -- token alignment ------------------------------------------------------------------------------
def _doc(text, spans, ignore=()):
    return AnnotatedDoc("t", text, [Span(s, e, lab, text[s:e]) for s, e, lab in spans], list(ignore))


def test_char_tokenizer_one_label_per_char(docs, char_tok):
    doc = docs["hrss-jilin-province-2014"]
    _, tags = doc_view_tags(doc)
    exs = doc_examples(doc, char_tok, LABELS.label2id, max_len=128, stride=32)
    assert len(exs) > 10
    for ex in exs:
        assert len(ex["input_ids"]) == ex["end"] - ex["start"] + 2 <= 128
        assert ex["labels"][0] == ex["labels"][-1] == IGNORE_INDEX
        want = [IGNORE_INDEX if t is None else LABELS.label2id[t] for t in tags[ex["start"]:ex["end"]]]
        assert ex["labels"][1:-1] == want
    # every gold span start is a B- label in some window
    n_b = sum(1 for ex in exs for lab in ex["labels"] if lab > 0 and LABELS.id2label[lab].startswith("B-"))
    assert n_b >= len(doc.spans)


def test_ignored_chars_get_minus_100(char_tok):
    text = "共受理申请14宗。表格12345。"
    doc = _doc(text, [(5, 8, "APPLICATIONS_RECEIVED")], ignore=[(9, 16)])
    (ex,) = doc_examples(doc, char_tok, LABELS.label2id)
    labels = ex["labels"][1:-1]
    assert all(lab == IGNORE_INDEX for lab in labels[9:16])
    assert LABELS.id2label[labels[5]] == "B-APPLICATIONS_RECEIVED" and labels[8] == 0


def test_wordpiece_alignment(wordpiece_tok):
    text = "共受理申请145宗，其中 2015年 网上申请10宗。"
    tags = ["O"] * len(text)
    for s, e in ((5, 9), (23, 26)):  # 145宗, 10宗 (char tags given directly: this text is no view)
        tags[s:e] = ["B-APPLICATIONS_RECEIVED"] + ["I-APPLICATIONS_RECEIVED"] * (e - s - 1)
    enc = encode_window(wordpiece_tok, text, 64)
    labels = align_labels(enc["offsets"], tags, LABELS.label2id)
    by_start = {off[0]: (off, LABELS.id2label.get(lab)) for off, lab in zip(enc["offsets"], labels) if off}
    assert by_start[5] == ((5, 7), "B-APPLICATIONS_RECEIVED")  # "14" covers two chars, takes the first one's tag
    assert by_start[7] == ((7, 8), "I-APPLICATIONS_RECEIVED")  # "##5"
    assert by_start[23] == ((23, 25), "B-APPLICATIONS_RECEIVED")  # "10"
    assert by_start[13] == ((13, 17), "O")  # "2015"
    assert 12 not in by_start and text[12] == " "  # whitespace is dropped by BERT pre-tokenisation
    assert labels[0] == labels[-1] == IGNORE_INDEX and enc["offsets"][0] is None


def test_byte_level_alignment(byte_tok):
    text = "共受理申请14宗"
    doc = _doc(text, [(5, 8, "APPLICATIONS_RECEIVED")])
    _, tags = doc_view_tags(doc)
    enc = encode_window(byte_tok, text, 64)
    labels = align_labels(enc["offsets"], tags, LABELS.label2id)
    real = [(off, lab) for off, lab in zip(enc["offsets"], labels) if off]
    assert len(real) > len(text)  # several byte tokens per Chinese char
    firsts = {}
    for off, lab in real:
        if lab != IGNORE_INDEX:
            assert off[0] not in firsts
            firsts[off[0]] = LABELS.id2label[lab]
    assert firsts == {i: t for i, t in enumerate(tags)}


def test_build_dataset(docs, char_tok, wordpiece_tok):
    train = load_split("train", ANN, SPLITS)[:2]
    for tok in (char_tok, wordpiece_tok):
        ds = build_dataset(train, tok, LABELS, max_len=96, stride=24)
        assert {"input_ids", "attention_mask", "labels"} <= set(ds.column_names)
        assert len(ds) > 20
        for row in ds:
            assert len(row["input_ids"]) == len(row["labels"]) == len(row["attention_mask"]) <= 96
            assert all(lab == IGNORE_INDEX or 0 <= lab < len(LABELS.bio_tags) for lab in row["labels"])


def test_perturb_numbers_changes_only_span_digits():
    import random

    from govfacts.train.dataset import perturb_numbers

    text = "2023年发布信息1100多条，12333热线"
    tags = ["O"] * len(text)
    s = text.index("1100")
    for i in range(s, s + 6):
        tags[i] = ("B-" if i == s else "I-") + "POSTS_PUBLISHED"
    rng = random.Random(3)
    outs = {perturb_numbers(text, tags, rng) for _ in range(20)}
    assert len(outs) > 10
    for out in outs:
        assert len(out) == len(text)
        assert out[:s] == text[:s] and out[s + 4:] == text[s + 4:]
        assert out[s:s + 4].isdigit() and out[s] != "0"


def test_augmented_windows_keep_their_labels(char_tok):
    doc = load_split("train", ANN, SPLITS)[0]
    plain = doc_examples(doc, char_tok, LABELS.label2id, max_len=128, stride=32)
    aug = doc_examples(doc, char_tok, LABELS.label2id, max_len=128, stride=32, augment=2)
    with_spans = [ex for ex in plain if any(lab > 0 for lab in ex["labels"])]
    assert len(aug) == len(plain) + 2 * len(with_spans)
    originals = {(ex["start"], ex["end"]): ex for ex in plain}
    changed = []
    for ex in aug:
        orig = originals[(ex["start"], ex["end"])]
        assert ex["labels"] == orig["labels"] and len(ex["input_ids"]) == len(orig["input_ids"])
        if ex["copy"]:
            changed.append(ex["input_ids"] != orig["input_ids"])
    assert sum(changed) >= 0.6 * len(changed)  # windows whose claims have no Arabic digits stay as they are


def test_oversample_rare_labels():
    from govfacts.train.finetune import oversample_rare

    b = LABELS.label2id
    common = {"labels": [b["O"], b["B-POSTS_PUBLISHED"], b["I-POSTS_PUBLISHED"]]}
    rare = {"labels": [b["B-HOTLINE_SEATS"], b["O"]]}
    rows = [common] * 40 + [rare]
    extra = oversample_rare(rows, LABELS, 5)
    assert extra == [rare] * 4  # 1 span → 4 more copies reach 5 per epoch
    assert oversample_rare(rows, LABELS, 0) == []


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


def test_rewrite_window_keeps_every_claim_value_and_label():
    import random

    from govfacts.quantity import parse_quantity
    from govfacts.train.dataset import rewrite_window

    doc = corpus_docs()["hr-dongguan-2015"]
    view, tags = doc_view_tags(doc)
    rng = random.Random(3)
    seen = set()
    for _ in range(20):
        got = rewrite_window(view.text, tags, rng)
        assert got is not None
        text, new_tags = got
        old, new = view_spans(tags), view_spans(new_tags)
        assert [lab for _, _, lab in old] == [lab for _, _, lab in new] and len(new_tags) == len(text)
        for (a, b, _), (c, d, _) in zip(old, new):
            q0, q1 = parse_quantity(view.text[a:b]), parse_quantity(text[c:d])
            assert (q0 is None) == (q1 is None) and (q0 is None or q0.value == q1.value)
            seen.add(text[c:d][:1])
    assert {"约", "一"} & seen  # hedges and Chinese numerals both drawn


def test_number_form_copies_are_labelled_like_their_window(char_tok):
    from govfacts.infer.rules import RuleExtractor
    from govfacts.train.dataset import HintSpec

    doc = corpus_docs()["hr-dongguan-2015"]
    plain = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, hints=HintSpec(RuleExtractor(), quantities=True))
    more = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, hints=HintSpec(RuleExtractor(), quantities=True),
                        number_forms=1)
    extra = [r for r in more if r["copy"] >= 1]
    assert extra and len(more) == len(plain) + len(extra)
    b_ids = {LABELS.label2id[f"B-{n}"] for n in LABELS.names}
    for r in extra:
        assert any(x in b_ids for x in r["labels"]) and len(r["token_type_ids"]) == len(r["input_ids"])
