"""Fine-tuning tiny BERTs on real annotated reports and tagging with the result (CPU, seconds each)."""
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from govfacts.labels import default_labels
from govfacts.records import Document, Span
from govfacts.annotations import AnnotatedDoc, doc_to_task
from govfacts.textview import build_view

ROOT = Path(__file__).resolve().parents[1]
LABELS = default_labels()
TRAIN_IDS = ["hrss-jilin-province-2014", "gov-pingtan-2024"]
DEV_IDS = ["gov-pingtan-2013a"]


def _tiny_bert(tokenizer, out_dir: Path, hidden: int = 32, max_pos: int = 256, seed: int = 0) -> Path:
    """A 1-layer, 2-head BERT MLM checkpoint (what pretraining produces) with its tokenizer."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=max_pos,
                     pad_token_id=tokenizer.pad_token_id or 0)
    BertForMaskedLM(cfg).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _wordpiece_tokenizer(texts):
    """A plain HF BERT WordPiece tokenizer over the chars of `texts` plus multi-digit pieces."""
    from transformers import BertTokenizerFast

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces += sorted({c for t in texts for c in t.lower() if not c.isspace()})
    pieces += [str(n) for n in range(10, 100)] + ["2015", "2024", "100%"] + [f"##{d}" for d in range(10)]
    return BertTokenizerFast(vocab={p: i for i, p in enumerate(dict.fromkeys(pieces))})


def _splits(path: Path, train, dev) -> Path:
    path.write_text(yaml.safe_dump({"train": list(train), "dev": list(dev), "test": []}), encoding="utf-8")
    return path


def _overrides(base: Path, splits: Path, out: Path, **kw) -> dict:
    o = {"base_model": str(base), "annotations": str(ROOT / "annotations"), "splits": str(splits),
         "output_dir": str(out), "epochs": 2, "max_steps": 6, "batch_size": 8, "lr": 1e-3, "max_len": 128,
         "stride": 32, "num_threads": 1, "progress": False, "max_minutes": 5, "eval_batch_size": 16}
    o.update(kw)
    return o


def _check_spans(spans, raw):
    prev_end = 0
    for s in spans:
        assert 0 <= s.start < s.end <= len(raw)
        assert raw[s.start:s.end] == s.text
        assert s.start >= prev_end  # sorted, non-overlapping
        assert s.label in LABELS.names
        assert 0.0 <= s.score <= 1.0
        prev_end = s.end


@pytest.fixture(scope="module")
def char_model(tmp_path_factory, docs):
    """Fine-tune a tiny char-tokenizer BERT a few steps on 2 real reports (dev: a third)."""
    from govfacts.train.finetune import finetune
    from govfacts.train.vocab import build_tokenizer

    tmp = tmp_path_factory.mktemp("char")
    tok = build_tokenizer([docs[i].text for i in TRAIN_IDS + DEV_IDS], tmp / "base")
    base = _tiny_bert(tok, tmp / "base")
    out = finetune(ROOT / "configs" / "finetune.yaml",
                   _overrides(base, _splits(tmp / "splits.yaml", TRAIN_IDS, DEV_IDS), tmp / "govfacts-tagger-test"))
    return out


def test_finetune_writes_checkpoint_and_log(char_model):
    names = {p.name for p in char_model.iterdir()}
    assert {"config.json", "model.safetensors", "train_log.json", "tokenizer.json"} <= names
    assert not any(n.endswith(".bin") for n in names)
    conf = json.loads((char_model / "config.json").read_text(encoding="utf-8"))
    assert {int(k): v for k, v in conf["id2label"].items()} == LABELS.id2label
    assert conf["label2id"] == LABELS.label2id
    assert conf["govfacts_max_len"] == 128 and conf["govfacts_stride"] == 32 and conf["govfacts_version"]
    log = json.loads((char_model / "train_log.json").read_text(encoding="utf-8"))
    assert log["train_docs"] == TRAIN_IDS and log["dev_docs"] == DEV_IDS
    assert len(log["epochs"]) >= 1 and log["epochs"][-1]["steps"] <= 6
    for ep in log["epochs"]:
        assert ep["train_loss"] > 0 and 0 <= ep["dev_f1"] <= 1 and 0 <= ep["dev_precision"] <= 1
        assert 0 <= ep["dev_recall"] <= 1
    assert log["best_epoch"] in [ep["epoch"] for ep in log["epochs"]]
    assert not list(char_model.parent.glob(f".{char_model.name}.*"))  # no temp dirs left behind


def test_tagger_from_pretrained_spans(char_model, docs):
    from govfacts.infer.tagger import Tagger

    tagger = Tagger.from_pretrained(char_model, num_threads=1)
    assert tagger.name == "govfacts-tagger-test"
    conf = json.loads((char_model / "config.json").read_text(encoding="utf-8"))
    # a rule-hinted model's id carries the rules' content hash: editing the lexicon changes its input
    key = tagger.options.calibration_key()
    assert tagger.version == f'{conf["govfacts_version"]}+rules-{tagger.rules.fingerprint}+cal-{key}'
    # ... and its calibration: the same weights with another confidence map are another extractor
    from govfacts.infer.confidence import ConfidenceMap

    other = Tagger.from_pretrained(char_model, num_threads=1, confidence=ConfidenceMap("platt", (0.5, 0.1)))
    assert other.version != tagger.version and other.version.startswith(f'{conf["govfacts_version"]}+rules-')
    assert Tagger.from_pretrained(char_model, num_threads=1).version == tagger.version
    assert tagger.tags == LABELS.bio_tags and tagger.options.max_len == 128 and tagger.options.stride == 32
    raw = docs["gov-pingtan-2021"].text  # unseen, with tables and PDF line breaks
    spans = tagger.spans(raw)
    _check_spans(spans, raw)
    assert tagger.spans("") == []
    # several documents batched together give the same spans as one by one
    texts = [raw, docs["hr-dongguan-2015"].text, "共受理申请14宗。"]
    many = tagger.spans_many(texts)
    assert many[0] == spans
    assert many[2] == tagger.spans(texts[2])


def test_extract_documents_and_load(char_model, docs):
    from govfacts.infer.api import extract_documents
    from govfacts.infer.loader import InferSettings, extractor_id, load

    tagger = load(str(char_model), InferSettings.load(num_threads=1, quantize=False))
    ds = [Document(doc_id=i, path=f"{i}.txt", text=docs[i].text) for i in ("gov-pingtan-2011", "hr-dongguan-2015")]
    facts = extract_documents(tagger, ds)
    assert len(facts) == 2
    for d, fs in zip(ds, facts):
        assert [(f.start, f.end, f.metric) for f in fs] == [(s.start, s.end, s.label) for s in tagger.spans(d.text)]
        assert all(f.extractor == extractor_id(tagger) and f.doc_id == d.doc_id for f in fs)
        assert all(d.text[f.start:f.end] == f.text and 0 <= f.confidence <= 1 for f in fs)
    assert [f.text for f in extract_documents(tagger, ds[:1])[0]] == [f.text for f in facts[0]]


def test_batching_and_padding_do_not_change_probabilities(char_model, docs):
    from govfacts.infer.tagger import Tagger

    views = [build_view(docs[i].text) for i in ("gov-pingtan-2024", "hrss-jilin-province-2014")]
    one = Tagger.from_pretrained(char_model, num_threads=1, batch_size=1, skip_plain=False).view_probs(views)
    big = Tagger.from_pretrained(char_model, num_threads=1, batch_size=64, skip_plain=False).view_probs(views)
    for (p1, c1), (p2, c2) in zip(one, big):
        assert c1.all() and (c1 == c2).all()
        np.testing.assert_allclose(p1, p2, atol=1e-5)
        np.testing.assert_allclose(p1.sum(axis=1), 1.0, atol=1e-4)


def test_skip_plain_reads_only_claim_segments(char_model, docs):
    from govfacts.claims import claim_segments
    from govfacts.infer.tagger import Tagger

    conf = json.loads((char_model / "config.json").read_text(encoding="utf-8"))
    assert conf["govfacts_skip_plain"] is True and conf["govfacts_anchor"] is True  # configs/finetune.yaml
    view = build_view(docs["gov-pingtan-2024"].text)
    segs = claim_segments(view.text)
    inside = np.zeros(len(view.text), dtype=bool)
    for a, b in segs:
        inside[a:b] = True
    assert 0.2 < inside.mean() < 0.95  # real prose: some sentences hold no claim
    tagger = Tagger.from_pretrained(char_model, num_threads=1, min_score=0.0)
    (probs, covered), = tagger.view_probs([view])
    o = tagger.tags.index("O")
    assert (probs[~inside, o] == 1.0).all()  # plain sentences are not read: O for certain
    assert covered[np.array([not c.isspace() for c in view.text])].all()
    windows = [(s, e) for batch, _ in tagger.window_logits([view]) for _, s, e, _ in batch]
    assert all(any(a <= s and e <= b for a, b in segs) for s, e in windows)  # no window crosses a plain sentence
    for span in tagger.spans(view.raw):
        vs, ve = view.from_raw(span.start, span.end)
        assert inside[vs:ve].all()


def test_temperature_flattens(char_model, docs):
    from govfacts.infer.tagger import Tagger

    view = build_view(docs["gov-pingtan-2024"].text[:500])
    t1 = Tagger.from_pretrained(char_model, num_threads=1)
    t1.model.config.govfacts_temperature = 3.0
    t3 = Tagger(t1.model, t1.tokenizer, num_threads=1)
    assert t3.options.temperature == 3.0 and t1.options.temperature == 1.0
    (p1, _), = t1.view_probs([view])
    (p3, _), = t3.view_probs([view])
    assert p3.max(axis=1).mean() < p1.max(axis=1).mean()


def test_max_minutes_stops_training(tmp_path, docs):
    from govfacts.train.finetune import finetune
    from govfacts.train.vocab import build_tokenizer

    tok = build_tokenizer([docs["gov-pingtan-2024"].text], tmp_path / "base")
    base = _tiny_bert(tok, tmp_path / "base")
    out = finetune(None, _overrides(base, _splits(tmp_path / "s.yaml", ["gov-pingtan-2024"], ["gov-pingtan-2012"]),
                                    tmp_path / "out", epochs=50, max_steps=None, max_minutes=1e-9))
    log = json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    assert log["stopped"] == "max_minutes" and len(log["epochs"]) == 1 and log["epochs"][0]["steps"] == 1


def test_epochs_before_select_from_epoch_are_never_chosen(tmp_path, docs):
    """Only evaluations from `select_from_epoch` on (or the last one) may be kept: here only the last."""
    from govfacts.train.finetune import finetune
    from govfacts.train.vocab import build_tokenizer

    tok = build_tokenizer([docs["gov-pingtan-2024"].text], tmp_path / "base")
    base = _tiny_bert(tok, tmp_path / "base")
    out = finetune(None, _overrides(base, _splits(tmp_path / "s.yaml", ["gov-pingtan-2024"], ["gov-pingtan-2012"]),
                                    tmp_path / "out", epochs=3, max_steps=None, eval_every=1, augment=0,
                                    rare_label_min=0, select_from_epoch=99))
    log = json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3] and log["best_epoch"] == 3


# -- any Hugging Face checkpoint: a WordPiece BERT ------------------------------------------------
def test_wordpiece_base_finetunes_and_tags(tmp_path, docs):
    from govfacts.infer.tagger import Tagger
    from govfacts.train.finetune import finetune

    tok = _wordpiece_tokenizer([docs[i].text for i in TRAIN_IDS])  # dev/test chars partly [UNK]
    base = _tiny_bert(tok, tmp_path / "wp-base")
    out = finetune(None, _overrides(base, _splits(tmp_path / "s.yaml", TRAIN_IDS, DEV_IDS), tmp_path / "wp-tagger"))
    tagger = Tagger.from_pretrained(out, num_threads=1)
    from transformers import AutoTokenizer

    from govfacts.infer.windows import encode_window

    hf = AutoTokenizer.from_pretrained(str(out))
    assert type(hf).__name__.startswith("Bert")  # a WordPiece checkpoint as transformers saves it
    for raw in (docs["gov-pingtan-2021"].text, "共受理申请 1 136 件, 其中 2015 年网上申请 ABC 10宗。\n"):
        view = build_view(raw)
        # the tagger reads tokenizer.json without transformers: the same ids, offsets and masks
        assert encode_window(tagger.tokenizer, view.text[:3000], 128) == encode_window(hf, view.text[:3000], 128)
        (probs, covered), = tagger.view_probs([view])
        assert not covered.all()  # WordPiece drops whitespace: those chars have no token
        spans = tagger.spans(raw)
        _check_spans(spans, raw)
        assert all(not s.text[0].isspace() and not s.text[-1].isspace() for s in spans)


# -- the tagger path itself, with a deterministic stand-in model ------------------------------------
class DigitRunModel(torch.nn.Module):
    """Tags ASCII digit runs as FEES using only the previous token: a window that cuts a number
    gets it wrong at its first char, so correct output proves the merge takes chars from the
    window where they have context."""

    def __init__(self, tokenizer, tags):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.config = SimpleNamespace(num_labels=len(tags), id2label=dict(enumerate(tags)),
                                      max_position_embeddings=512)
        self.digit = torch.zeros(len(tokenizer), dtype=torch.bool)
        for piece, i in tokenizer.get_vocab().items():
            self.digit[i] = bool(re.fullmatch(r"[0-9]", piece))
        self.b, self.i = tags.index("B-FEES"), tags.index("I-FEES")

    def forward(self, input_ids, attention_mask):
        d = self.digit[input_ids]
        prev = torch.zeros_like(d)
        prev[:, 1:] = d[:, :-1]
        logits = torch.zeros(*input_ids.shape, len(self.config.id2label))
        logits[..., 0] = 2.0
        logits[..., self.b] += 8.0 * (d & ~prev)
        logits[..., self.i] += 8.0 * (d & prev)
        return SimpleNamespace(logits=logits)


@pytest.mark.parametrize("max_len,stride,batch_size", [(32, 8, 1), (64, 16, 7), (256, 64, 32)])
def test_window_merge_recovers_every_number(docs, max_len, stride, batch_size, tmp_path_factory):
    from govfacts.infer.rules import follows_no_claim_word
    from govfacts.infer.tagger import Tagger
    from govfacts.train.vocab import build_tokenizer

    tok = build_tokenizer([], tmp_path_factory.mktemp("tok"))
    tagger = Tagger(DigitRunModel(tok, LABELS.bio_tags), tok, max_len=max_len, stride=stride,
                    batch_size=batch_size, num_threads=1)
    texts = [docs[i].text for i in ("gov-pingtan-2019", "gov-suqian-2023", "hr-dongguan-2015")]
    for raw, spans in zip(texts, tagger.spans_many(texts)):
        view = build_view(raw)
        want = []
        for m in re.finditer(r"[0-9]+", view.text):
            if follows_no_claim_word(view.text, m.start()):  # ordinals, shares, changes: never facts
                continue
            rs, re_ = view.to_raw(m.start(), m.end())
            want.append((rs, re_, "FEES", raw[rs:re_]))
        assert [(s.start, s.end, s.label, s.text) for s in spans] == want
        assert len(want) > 50


# -- overfitting one real paragraph ---------------------------------------------------------------
def test_overfit_one_paragraph(tmp_path, docs):
    """A tiny model trained on ONE short real paragraph must give back exactly its gold spans."""
    from govfacts.infer.tagger import Tagger
    from govfacts.train.finetune import finetune
    from govfacts.train.vocab import build_tokenizer

    src = docs["hr-dongguan-2015"]
    start = src.text.index("2015年我局共受理政府信息公开申请")
    end = src.text.index("\n", start)
    text = src.text[start:end]
    gold = [Span(s.start - start, s.end - start, s.label, s.text) for s in src.spans if start <= s.start < end]
    assert len(gold) == 5 and len({s.label for s in gold}) == 3
    ann = tmp_path / "ann"
    (ann / "tasks").mkdir(parents=True)
    tasks = [doc_to_task(AnnotatedDoc(i, text, gold)) for i in ("para", "para-dev")]  # a doc is in one split only
    (ann / "tasks" / "para.json").write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    tok = build_tokenizer([text], tmp_path / "base")
    base = _tiny_bert(tok, tmp_path / "base", max_pos=128)
    out = finetune(None, _overrides(base, _splits(tmp_path / "s.yaml", ["para"], ["para-dev"]), tmp_path / "out",
                                    annotations=str(ann), epochs=150, max_steps=None, lr=5e-3, warmup_ratio=0.05,
                                    weight_decay=0.0, eval_every=25, augment=0, rare_label_min=0))
    log = json.loads((out / "train_log.json").read_text(encoding="utf-8"))
    assert log["best_dev_f1"] == 1.0
    assert log["epochs"][-1]["train_loss"] < log["epochs"][0]["train_loss"] / 5
    spans = Tagger.from_pretrained(out, num_threads=1).spans(text)
    assert [(s.start, s.end, s.label, s.text) for s in spans] == [(s.start, s.end, s.label, s.text) for s in gold]
    assert min(s.score for s in spans) > 0.2


# -- distillation: a student learns a fine-tuned tagger's tag distributions --------------------------
def test_distillation_loss_is_zero_only_where_student_and_teacher_agree():
    from govfacts.train.dataset import IGNORE_INDEX
    from govfacts.train.finetune import distillation_loss

    torch.manual_seed(0)
    teacher = torch.randn(2, 5, 7)
    labels = torch.tensor([[0, 1, 2, IGNORE_INDEX, IGNORE_INDEX], [3, 4, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]])
    assert float(distillation_loss(teacher.clone(), teacher, labels, 2.0)) == pytest.approx(0.0, abs=1e-6)
    other = teacher.clone()
    other[:, :, 0] += 3.0
    assert float(distillation_loss(other, teacher, labels, 2.0)) > 0.1
    unlabelled = teacher.clone()
    unlabelled[0, 3:] += 5.0  # only where no label is: not counted
    assert float(distillation_loss(unlabelled, teacher, labels, 2.0)) == pytest.approx(0.0, abs=1e-6)


def _mean_kl(student_dir: Path, teacher_dir: Path, docs) -> float:
    """Mean KL(teacher ‖ student) of the tag distributions over the windows of a dev report."""
    from govfacts.infer.tagger import Tagger

    t, s = Tagger.from_pretrained(teacher_dir), Tagger.from_pretrained(student_dir)
    views = [build_view(docs["gov-pingtan-2013a"].text)]
    kl, n = 0.0, 0
    for (batch, ids, mask, types) in t.window_batches(views):
        pt = torch.log_softmax(torch.from_numpy(t.encode(ids, mask, types)), -1)
        ps = torch.log_softmax(torch.from_numpy(s.encode(ids, mask, types)), -1)
        m = torch.from_numpy(mask).bool()
        kl += float((pt.exp() * (pt - ps)).sum(-1)[m].sum())
        n += int(m.sum())
    return kl / n


def test_a_distilled_student_is_closer_to_its_teacher(char_model, tmp_path, docs):
    from govfacts.train.finetune import finetune

    base = char_model.parent / "base"
    splits = _splits(tmp_path / "s.yaml", TRAIN_IDS, DEV_IDS)
    common = dict(epochs=1, max_steps=40, augment=0, rare_label_min=0)
    plain = finetune(None, _overrides(base, splits, tmp_path / "plain", **common))
    student = finetune(None, _overrides(base, splits, tmp_path / "student", teacher=str(char_model), kd_alpha=1.0,
                                        **common))
    log = json.loads((student / "train_log.json").read_text(encoding="utf-8"))
    assert log["config"]["teacher"] == str(char_model)
    assert _mean_kl(student, char_model, docs) < 0.5 * _mean_kl(plain, char_model, docs)


def test_a_teacher_with_other_labels_is_refused(char_model, tmp_path):
    import shutil

    from govfacts.train.finetune import load_teacher

    other = tmp_path / "other"
    shutil.copytree(char_model, other)
    conf = json.loads((other / "config.json").read_text(encoding="utf-8"))
    conf["id2label"] = {k: conf["id2label"][str(len(conf["id2label"]) - 1 - int(k))] for k in conf["id2label"]}
    conf["label2id"] = {v: int(k) for k, v in conf["id2label"].items()}
    (other / "config.json").write_text(json.dumps(conf), encoding="utf-8")
    with pytest.raises(ValueError, match="labels differ"):
        load_teacher(str(other), LABELS, None)
    with pytest.raises(ValueError, match="hint types"):
        load_teacher(str(char_model), LABELS, 999)


def test_tag_loss_row_o_weights_reweigh_only_the_o_tags_of_their_rows():
    from govfacts.train.dataset import IGNORE_INDEX
    from govfacts.train.finetune import tag_loss

    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[0, 2, 0, IGNORE_INDEX], [0, 0, 0, IGNORE_INDEX]])  # O = 0; row 1 holds no claim
    cw = torch.tensor([0.3, 1.0, 1.0, 1.0, 1.0])
    plain = tag_loss(logits, labels, cw, 0)
    same = tag_loss(logits, labels, cw, 0, torch.tensor([0.3, 0.3]))
    assert float(same) == pytest.approx(float(plain), rel=1e-6)  # the O weight everywhere: cross_entropy(weight=)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1), ignore_index=IGNORE_INDEX,
                                            reduction="none").view(2, 4)
    heavy = tag_loss(logits, labels, cw, 0, torch.tensor([0.3, 1.0]))
    w = torch.tensor([[0.3, 1.0, 0.3, 0.0], [1.0, 1.0, 1.0, 0.0]])
    assert float(heavy) == pytest.approx(float((nll * w).sum() / w.sum()), rel=1e-6)
    assert float(heavy) != pytest.approx(float(plain), rel=1e-3)
