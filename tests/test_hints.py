"""Rule hints: the rules' tags as token types of a tiny BERT, trained and read back (CPU, seconds)."""
import json
import random
from pathlib import Path

import pytest
import torch
import yaml

from govfacts.infer.hints import corrupt_hints, enable_hints, hint_type_ids, rule_hint_tags
from govfacts.infer.rules import RuleExtractor
from govfacts.labels import default_labels
from govfacts.textview import build_view
from govfacts.train.dataset import HintSpec, build_dataset
from tests.conftest import corpus_docs

ROOT = Path(__file__).resolve().parents[1]
LABELS = default_labels()
TEXT = "全年主动公开政府信息1100多条。收到政府信息公开申请7件，没有发生行政复议和诉讼。"


def test_rule_hint_tags_follow_the_rule_spans():
    view = build_view(TEXT)
    rules = RuleExtractor()
    tags = rule_hint_tags(view, rules)
    assert len(tags) == len(view.text)
    spans = rules.spans(TEXT)
    assert spans, "the rules find claims in the sample sentence"
    for s in spans:
        vs, ve = view.from_raw(s.start, s.end)
        assert tags[vs] == f"B-{s.label}" and all(t == f"I-{s.label}" for t in tags[vs + 1:ve])
    inside = {i for s in spans for i in range(*view.from_raw(s.start, s.end))}
    assert all(t == "O" for i, t in enumerate(tags) if i not in inside)


def test_rule_hint_tags_on_a_traditional_hard_wrapped_view():
    raw = "全年主動公開政府信息 1100 條，\n收到政府信息公開申請7件。"
    view = build_view(raw)
    tags = rule_hint_tags(view, RuleExtractor())
    begins = [t[2:] for t in tags if t.startswith("B-")]
    assert begins == [s.label for s in RuleExtractor().spans(raw)] and begins


def test_corrupt_hints_drops_and_swaps_whole_spans():
    tags = ["O", "B-FEES", "I-FEES", "O", "B-LAWSUITS", "O"]
    names = LABELS.names
    rng = random.Random(0)
    assert corrupt_hints(tags, rng, 0.0, 0.0, names) == tags
    assert corrupt_hints(tags, rng, 1.0, 0.0, names) == ["O"] * 6
    swapped = corrupt_hints(tags, rng, 0.0, 1.0, names)
    assert swapped[0] == swapped[3] == swapped[5] == "O"
    assert swapped[1].startswith("B-") and swapped[2] == "I-" + swapped[1][2:] and swapped[1] != "B-FEES"
    assert swapped[4].startswith("B-") and swapped[4] != "B-LAWSUITS"
    # about `drop` of the spans vanish over many draws
    kept = sum(corrupt_hints(tags, rng, 0.3, 0.0, names)[1] == "B-FEES" for _ in range(2000))
    assert 1250 < kept < 1550


def test_hint_type_ids_align_to_first_chars():
    l2i = LABELS.label2id
    hints = ["O", "B-FEES", "I-FEES", "O"]
    offsets = [None, (0, 1), (1, 3), (3, 4), None, (5, 6)]  # [CLS], chars, a 2-char token, [SEP], past the end
    assert hint_type_ids(offsets, hints, l2i) == [0, 0, l2i["B-FEES"], 0, 0, 0]


def _tiny_model(vocab: int = 64):
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64, num_labels=len(LABELS.bio_tags))
    return BertForTokenClassification(cfg)


def test_enable_hints_keeps_type0_and_round_trips(tmp_path):
    from transformers import AutoModelForTokenClassification

    model = _tiny_model()
    type0 = model.bert.embeddings.token_type_embeddings.weight[0].detach().clone()
    enable_hints(model, len(LABELS.bio_tags))
    emb = model.bert.embeddings.token_type_embeddings
    assert emb.num_embeddings == len(LABELS.bio_tags) == model.config.type_vocab_size
    assert torch.equal(emb.weight[0], type0)
    assert model.config.govfacts_rule_hints is True
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    hinted = model(input_ids=ids, token_type_ids=torch.tensor([[0, 1, 2, 0, 0]])).logits
    plain = model(input_ids=ids).logits
    assert not torch.allclose(hinted, plain)  # the hints reach the encoder
    model.save_pretrained(tmp_path)
    back = AutoModelForTokenClassification.from_pretrained(tmp_path, use_safetensors=True)
    assert back.bert.embeddings.token_type_embeddings.num_embeddings == len(LABELS.bio_tags)
    model.eval(), back.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=ids, token_type_ids=torch.tensor([[0, 1, 2, 0, 0]])).logits,
                              back(input_ids=ids, token_type_ids=torch.tensor([[0, 1, 2, 0, 0]])).logits)


def test_enable_hints_needs_token_types():
    from transformers import DistilBertConfig, DistilBertForTokenClassification

    model = DistilBertForTokenClassification(DistilBertConfig(vocab_size=32, dim=16, n_layers=1, n_heads=2,
                                                              hidden_dim=32, max_position_embeddings=32))
    with pytest.raises(ValueError, match="token-type embeddings"):
        enable_hints(model, 47)


def test_dataset_rows_carry_hints_of_the_real_rules(tmp_path):
    from govfacts.train.vocab import build_tokenizer

    docs = corpus_docs()
    doc = docs["gov-pingtan-2024"]
    tok = build_tokenizer([doc.text], tmp_path / "tok")
    clean = build_dataset([doc], tok, LABELS, 128, 32, skip_plain=True, hints=HintSpec(RuleExtractor()))
    plain = build_dataset([doc], tok, LABELS, 128, 32, skip_plain=True)
    assert "token_type_ids" in clean.column_names and "token_type_ids" not in plain.column_names
    assert clean["input_ids"] == plain["input_ids"]
    hinted = [t for row in clean["token_type_ids"] for t in row if t]
    assert hinted and all(0 < t < len(LABELS.bio_tags) for t in hinted)
    dropped = build_dataset([doc], tok, LABELS, 128, 32, skip_plain=True, hints=HintSpec(RuleExtractor(), drop=1.0))
    assert all(t == 0 for row in dropped["token_type_ids"] for t in row)
    # with quantity hints, dropped rule spans that are grammar candidates come back as B-QTY/I-QTY
    qty = build_dataset([doc], tok, LABELS, 128, 32, skip_plain=True,
                        hints=HintSpec(RuleExtractor(), drop=1.0, quantities=True))
    n = len(LABELS.bio_tags)
    assert {t for row in qty["token_type_ids"] for t in row} == {0, n, n + 1}


def test_mark_quantities_and_vocab():
    from govfacts.infer.hints import hint_vocab, mark_quantities

    vocab = hint_vocab(LABELS.bio_tags, True)
    assert vocab["O"] == 0 and vocab["B-QTY"] == len(LABELS.bio_tags) and len(vocab) == len(LABELS.bio_tags) + 2
    assert len(hint_vocab(LABELS.bio_tags, False)) == len(LABELS.bio_tags)
    tags = ["O", "B-FEES", "I-FEES", "O", "O", "O"]
    # candidates: one under the FEES hint (left alone), one free (marked), one cut by the window end
    out = mark_quantities(tags, [(11, 13), (13, 15), (15, 18)], offset=10)
    assert out == ["O", "B-FEES", "I-FEES", "B-QTY", "I-QTY", "B-QTY"]


def test_veto_hints_mark_what_an_out_of_scope_cue_vetoes():
    from govfacts.infer.hints import VETO_TAGS, hint_vocab, quantity_hints
    from govfacts.infer.rules import RuleExtractor
    from govfacts.quantity import view_quantities

    text = "报告共五个部分组成。处置网络舆情70多件，网站主动发布信息1100多条。"
    view = build_view(text)
    rules = RuleExtractor()
    vetoed = [text[slice(*view.to_raw(s, e))] for s, e in rules.vetoed(view)]
    assert vetoed == ["五个", "70多件"]
    hints = quantity_hints(rule_hint_tags(view, rules), view_quantities(view), rules.vetoed(view))
    at = {view.text[i]: hints[i] for i in range(len(hints)) if hints[i] != "O"}
    assert hints[text.index("五")] == "B-VETO" and hints[text.index("70")] == "B-VETO"
    assert hints[text.index("1100")] == "B-POSTS_PUBLISHED" and "I-VETO" in at.values()
    vocab = hint_vocab(LABELS.bio_tags, True, True)
    assert [vocab[t] for t in VETO_TAGS] == [len(LABELS.bio_tags) + 2, len(LABELS.bio_tags) + 3]
    assert len(hint_vocab(LABELS.bio_tags, True, False)) == len(LABELS.bio_tags) + 2


def test_hinted_finetune_and_tagger(tmp_path):
    """A tiny hinted tagger trains, saves its hint types and reads the rules' tags at inference."""
    from govfacts.infer.tagger import Tagger
    from govfacts.train.finetune import finetune
    from govfacts.train.vocab import build_tokenizer
    from transformers import BertConfig, BertForMaskedLM

    docs = corpus_docs()
    train, dev = ["gov-pingtan-2024", "hrss-jilin-province-2014"], ["gov-pingtan-2013a"]
    tok = build_tokenizer([docs[i].text for i in train + dev], tmp_path / "base")
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=256)).save_pretrained(tmp_path / "base")
    (tmp_path / "splits.yaml").write_text(yaml.safe_dump({"train": train, "dev": dev, "test": []}), encoding="utf-8")
    out = finetune(ROOT / "configs" / "finetune.yaml", {
        "base_model": str(tmp_path / "base"), "annotations": str(ROOT / "annotations"),
        "splits": str(tmp_path / "splits.yaml"), "output_dir": str(tmp_path / "tagger"), "epochs": 1,
        "max_steps": 4, "batch_size": 8, "num_threads": 1, "progress": False, "augment": 0,
        "rule_hints": True, "hint_drop": 0.3, "hint_swap": 0.1, "hint_quantities": True, "hint_vetoes": True})
    conf = json.loads((out / "config.json").read_text(encoding="utf-8"))
    from govfacts.infer.hints import hint_vocab

    # the run's hint_quantities and hint_vetoes: true → the 47 tags plus B-QTY/I-QTY and B-VETO/I-VETO
    assert conf["govfacts_rule_hints"] is True
    assert conf["type_vocab_size"] == len(hint_vocab(LABELS.bio_tags, True, True)) == len(LABELS.bio_tags) + 4
    counts = json.loads((out / "train_log.json").read_text(encoding="utf-8"))["span_counts"]
    assert set(counts) == set(LABELS.names)
    assert sum(c["gold"] for c in counts.values()) == sum(len(docs[i].spans) for i in train)
    assert all(c["windows"] >= c["gold"] for c in counts.values())  # every gold span is read, some twice
    tagger = Tagger.from_pretrained(out, num_threads=1)
    assert tagger.rules is not None
    batches = list(tagger.window_logits([build_view(TEXT + "处置网络舆情70多件。")]))
    seen = [it[3]["token_type_ids"] for batch, _ in batches for it in batch]
    assert any(t for row in seen for t in row)
    assert {len(LABELS.bio_tags) + 2, len(LABELS.bio_tags) + 3} <= {t for row in seen for t in row}
    spans = tagger.spans(docs["gov-pingtan-2021"].text)
    assert all(s.label in LABELS.names and 0 <= s.score <= 1 for s in spans)
    # the confidence map reads whether the rules found a span's label there too
    from govfacts.infer.confidence import ConfidenceMap

    text = docs["gov-pingtan-2021"].text
    view = build_view(text)
    scored = tagger.scored_spans([view], tagger.view_probs([view]))[0]
    ruled = tagger.rules.spans(text)
    assert scored
    assert [agree for _, agree in scored] == [
        any(r.label == s.label and r.start < s.end and s.start < r.end for r in ruled) for s, _ in scored]
    tagger.options.confidence = cmap = ConfidenceMap("beta-rules", (0.5, 0.5, 0.0, 2.0))
    mapped = tagger.spans(text)
    assert [(s.start, s.end, s.label) for s in mapped] == [(s.start, s.end, s.label) for s, _ in scored]
    assert [s.score for s in mapped] == [round(cmap(s.score, agree), 4) for s, agree in scored]


def test_zero_claim_phrases_and_snapping():
    from govfacts.infer.hints import snap_to_phrases, zero_claim_phrases

    text = "2019年未收到相关政府信息公开的申请，网站发布信息12条。"
    view = build_view(text)
    phrases = zero_claim_phrases(view, RuleExtractor())
    assert [view.text[a:b] for a, b in phrases] == ["政府信息公开的申请"]
    a, b = phrases[0]
    found = [(a, a + 2, "APPLICATIONS_RECEIVED", 0.8), (a + 3, a + 5, "LAWSUITS", 0.3), (25, 28, "POSTS_PUBLISHED", 0.9)]
    out = snap_to_phrases(found, phrases)
    assert out == [(a, b, "APPLICATIONS_RECEIVED", 0.8), (25, 28, "POSTS_PUBLISHED", 0.9)]
    assert snap_to_phrases([], phrases) == [] and snap_to_phrases(found[2:], []) == found[2:]


def test_rule_spans_are_computed_once_per_view():
    from govfacts.infer.hints import rule_spans

    class Counting(RuleExtractor):
        calls = 0

        def spans_of_view(self, view):
            Counting.calls += 1
            return super().spans_of_view(view)

    text = TEXT + "\n（本测试专用）"  # a text no other test has built a view of (views are cached)
    rules, view = Counting(), build_view(text)
    assert rule_spans(view, rules) == rule_spans(view, rules) == rules.spans(text)
    assert Counting.calls == 2  # one for the two cached look-ups, one for rules.spans
