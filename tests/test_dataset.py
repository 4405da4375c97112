"""Training examples from the real annotated corpus: gold tags, token alignment, augmentation (train/dataset.py)."""
from pathlib import Path

from govfacts.labels import default_labels
from govfacts.records import Span
from govfacts.annotations import AnnotatedDoc
from govfacts.textview import build_view
from govfacts.annotations import load_split
from govfacts.infer.windows import encode_window
from govfacts.tags import view_spans
from govfacts.train.dataset import IGNORE_INDEX, align_labels, build_dataset, chars_and_tags, doc_examples, doc_view_tags
from tests.conftest import corpus_docs

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "annotations"
SPLITS = ANN / "splits.yaml"
LABELS = default_labels()


# -- documents and splits -------------------------------------------------------------------------


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


# -- windows --------------------------------------------------------------------------------------


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


def test_hedged_copies_keep_value_and_label_and_span_the_hedge():
    import random

    from govfacts.numforms import hedge_forms
    from govfacts.quantity import parse_quantity
    from govfacts.train.dataset import rewrite_window

    assert hedge_forms("32条") == ["约32条", "近32条", "逾32条", "超过32条", "将近32条", "大约32条", "32余条",
                                  "32多条", "32条左右"]
    assert "3余名" not in hedge_forms("3名") and "2.2万余次" in hedge_forms("2.2万次")
    assert hedge_forms("约32条") == [] and hedge_forms("一百条") == []
    doc = corpus_docs()["hr-dongguan-2015"]
    view, tags = doc_view_tags(doc)
    rng = random.Random(5)
    hedged = 0
    for _ in range(10):
        text, new_tags = rewrite_window(view.text, tags, rng, forms=hedge_forms)
        old, new = view_spans(tags), view_spans(new_tags)
        assert [lab for _, _, lab in old] == [lab for _, _, lab in new] and len(new_tags) == len(text)
        for (a, b, _), (c, d, _) in zip(old, new):
            q0, q1 = parse_quantity(view.text[a:b]), parse_quantity(text[c:d])
            assert (q0 is None) == (q1 is None) and (q0 is None or q0.value == q1.value)
            if text[c:d] != view.text[a:b]:
                hedged += 1
                assert q1.qualifier != "exact"  # the hedge is inside the span, as the label contract has it
    assert hedged >= 10


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


def test_mention_swaps_keep_claims_and_never_touch_zero_claims_or_list_items():
    import random

    from govfacts.infer.rules import cue_words
    from govfacts.train.dataset import mention_bank, metric_phrase, swap_mentions

    docs = list(corpus_docs().values())
    bank = mention_bank(docs, cue_words())
    assert "网站主动发布信息" in bank["POSTS_PUBLISHED"] and "座席" in bank["HOTLINE_SEATS"]
    text = "全年没有发生行政诉讼。网站主动发布信息1100多条、区级28条，接听咨询电话22.4万余次。"
    tags = ["O"] * len(text)
    for claim, label in (("行政诉讼", "LAWSUITS"), ("1100多条", "POSTS_PUBLISHED"), ("28条", "POSTS_PUBLISHED"),
                         ("22.4万余次", "CALLS_ANSWERED")):
        a = text.index(claim)
        tags[a:a + len(claim)] = [f"B-{label}"] + [f"I-{label}"] * (len(claim) - 1)
    assert metric_phrase(text, tags, text.index("28条")) is None  # a list item has no phrase of its own
    seen = set()
    for seed in range(30):
        new, new_tags = swap_mentions(text, tags, bank, random.Random(seed), share=1.0)
        got = [(new[a:b], label) for a, b, label in view_spans(new_tags)]
        assert got == [("行政诉讼", "LAWSUITS"), ("1100多条", "POSTS_PUBLISHED"), ("28条", "POSTS_PUBLISHED"),
                       ("22.4万余次", "CALLS_ANSWERED")]
        assert new.startswith("全年没有发生行政诉讼。") and "、区级28条，" in new
        phrase = new[new.index("，") + 1:new.index("22.4")]
        assert phrase in bank["CALLS_ANSWERED"] and phrase != "接听咨询电话"
        seen.add(phrase)
    assert len(seen) > 3


def test_mention_swap_copies_are_labelled_like_their_window(char_tok):
    from govfacts.infer.rules import RuleExtractor
    from govfacts.train.dataset import HintSpec

    docs = corpus_docs()
    doc = docs["hr-dongguan-2015"]
    hints = HintSpec(RuleExtractor(), quantities=True)
    plain = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, hints=hints)
    from govfacts.infer.rules import cue_words
    from govfacts.train.dataset import mention_bank

    more = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, hints=hints, mention_swaps=1,
                        bank=mention_bank(docs.values(), cue_words()))
    extra = [r for r in more if r["copy"] >= 1]
    assert extra and len(more) == len(plain) + len(extra)
    b_ids = {LABELS.label2id[f"B-{n}"] for n in LABELS.names}
    for r in extra:
        assert any(x in b_ids for x in r["labels"]) and len(r["token_type_ids"]) == len(r["input_ids"])


def _breakdown_units() -> list[str]:
    """The part names a fine-tuning run with `breakdowns` reads (configs/breakdown_units.yaml)."""
    from govfacts.train.finetune import breakdown_units, load_config

    return breakdown_units(load_config(overrides={"breakdowns": 1}))


def test_a_breakdown_lists_parts_that_add_up_to_the_claim_under_its_label():
    import random
    import re

    from govfacts.train.dataset import add_breakdown

    units = _breakdown_units()
    text = "全年共受理政府信息公开申请120件，办结率100%，网站发布信息约30条。"
    tags = ["O"] * len(text)
    for claim, label in (("120件", "APPLICATIONS_RECEIVED"), ("100%", "RESPONSE_RATE"), ("约30条", "POSTS_PUBLISHED")):
        a = text.index(claim)
        tags[a:a + len(claim)] = [f"B-{label}"] + [f"I-{label}"] * (len(claim) - 1)
    styles = set()
    for seed in range(40):
        new, new_tags = add_breakdown(text, tags, units, random.Random(seed))
        assert len(new) == len(new_tags)
        spans = [(new[a:b], label) for a, b, label in view_spans(new_tags)]
        # only the plain whole-number claim takes a breakdown: not the rate, not the hedged claim
        assert spans[0] == ("120件", "APPLICATIONS_RECEIVED") and spans[-2:] == [("100%", "RESPONSE_RATE"),
                                                                                ("约30条", "POSTS_PUBLISHED")]
        parts = spans[1:-2]
        assert 2 <= len(parts) <= 5 and all(label == "APPLICATIONS_RECEIVED" for _, label in parts)
        assert sum(int(q[:-1]) for q, _ in parts) == 120 and all(int(q[:-1]) >= 1 for q, _ in parts)
        # the list sits at the end of the claim's clause; the rest of the text is unchanged
        assert new.startswith("全年共受理政府信息公开申请120件") and new.endswith("，办结率100%，网站发布信息约30条。")
        inserted = new[len("全年共受理政府信息公开申请120件"):-len("，办结率100%，网站发布信息约30条。")]
        names = re.split(r"\d+件", inserted.strip("（）").removeprefix("，").removeprefix("其中").removeprefix("，"))
        assert all(n.strip("、，") in units for n in names if n.strip("、，")), inserted
        styles.add(inserted[:3])
    assert len(styles) >= 3
    only_rate = ["O"] * len(text)
    a = text.index("100%")
    only_rate[a:a + 4] = ["B-RESPONSE_RATE"] + ["I-RESPONSE_RATE"] * 3
    assert add_breakdown(text, only_rate, units, random.Random(0)) is None


def test_breakdown_copies_are_labelled_and_hinted_like_their_window(char_tok):
    from govfacts.infer.rules import RuleExtractor
    from govfacts.train.dataset import HintSpec

    units = _breakdown_units()
    doc = corpus_docs()["hr-dongguan-2015"]
    hints = HintSpec(RuleExtractor(), quantities=True)
    plain = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, hints=hints)
    more = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, hints=hints, breakdowns=1, units=units)
    extra = [r for r in more if r["copy"] >= 1]
    assert extra and len(more) == len(plain) + len(extra)
    b_ids = {LABELS.label2id[f"B-{n}"] for n in LABELS.names}
    for r in extra:
        assert sum(x in b_ids for x in r["labels"]) >= 3 and len(r["token_type_ids"]) == len(r["input_ids"])


def test_focus_windows_lie_around_candidates_and_keep_every_gold_span(char_tok):
    from govfacts.claims import focus_segments
    from govfacts.quantity import view_quantities

    for doc_id in ("hr-dongguan-2015", "gov-pingtan-2013"):
        doc = corpus_docs()[doc_id]
        view, tags = doc_view_tags(doc)
        ranges = focus_segments(view.text, view_quantities(view), 64, 24, 40)
        every = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, skip_plain=True)
        rows = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, skip_plain=True, focus=(64, 24, 40))
        assert sum(len(r["input_ids"]) for r in rows) < sum(len(r["input_ids"]) for r in every)
        assert all(any(a <= r["start"] and r["end"] <= b for a, b in ranges) for r in rows)
        for a, b, _ in view_spans(tags):
            assert any(r["start"] <= a and b <= r["end"] for r in rows), (doc_id, view.text[a:b])


def test_unhedged_training_windows_hold_no_approximator_and_begin_its_claim_on_the_number(char_tok):
    """`unhedged`: a gold claim that opens with an approximator (`近1100篇`) is learnt from a window without
    it, its first token (the number, stretched over the approximator) labelled B; every copy alike."""
    import random

    from govfacts.quantity import find_approximators

    for doc_id, claim in (("extra-019", "近1100篇"), ("extra-530", "近50人次")):
        doc = corpus_docs()[doc_id]
        view, _ = doc_view_tags(doc)
        a = view.text.index(claim)
        plain = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, skip_plain=True)
        rows = doc_examples(doc, char_tok, LABELS.label2id, 128, 32, augment=2, skip_plain=True, unhedged=True,
                            rng=random.Random(0))
        first = [r for r in rows if r["copy"] == 0]
        assert sum(map(len, (r["input_ids"] for r in first))) < sum(map(len, (r["input_ids"] for r in plain)))
        near = char_tok.convert_tokens_to_ids("近")
        for r in rows:
            text = view.text[r["start"]:r["end"]]
            if r["copy"] == 0 and r["start"] <= a < r["end"]:
                ids = r["input_ids"][1:-1]
                assert len(ids) == len(text) - len(find_approximators(text))
                k = 1 + (a - r["start"]) - sum(1 for p, _ in find_approximators(text) if p < a - r["start"])
                assert r["labels"][k] == LABELS.label2id[next(f"B-{s.label}" for s in doc.spans if s.text == claim)]
                assert ids[k - 1] != near
            if r["copy"] > 0 and r["start"] <= a < r["end"]:  # digits replaced, approximator still unread
                assert len(r["input_ids"]) < len(text) + 2
