"""The tagger's encoder on ONNX Runtime gives the torch encoder's outputs (tiny models built here)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from govfacts.labels import default_labels
from govfacts.textview import build_view
from tests.conftest import corpus_docs

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
LABELS = default_labels()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny, randomly initialised hinted token classifier with the char tokenizer of two reports."""
    from transformers import BertConfig, BertForTokenClassification

    from govfacts.infer.hints import enable_hints, hint_vocab
    from govfacts.train.vocab import build_tokenizer

    d = tmp_path_factory.mktemp("tiny")
    docs = corpus_docs()
    tok = build_tokenizer([docs["gov-pingtan-2024"].text, docs["hr-dongguan-2015"].text], d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=len(LABELS.bio_tags),
                     id2label=LABELS.id2label, label2id=LABELS.label2id)
    model = BertForTokenClassification(cfg)
    with torch.no_grad():
        model.classifier.bias[0] -= 1.0  # a few spans from a random head
    enable_hints(model, len(hint_vocab(LABELS.bio_tags, True)))
    model.config.govfacts_max_len = 64
    model.config.govfacts_stride = 16
    model.save_pretrained(d)
    return d


def _texts():
    docs = corpus_docs()
    return [docs["gov-pingtan-2021"].text[:3000], "全年主动公开政府信息1100多条，没有发生行政复议。", ""]


def test_onnx_logits_and_spans_match_torch(tiny_dir, tmp_path, monkeypatch):
    from govfacts.infer.tagger import Tagger

    monkeypatch.setenv("GOVFACTS_CACHE", str(tmp_path / "cache"))
    ref = Tagger.from_pretrained(tiny_dir, num_threads=1)
    onnx = Tagger.from_pretrained(tiny_dir, num_threads=1).use_onnx()
    assert onnx.version == ref.version  # float ONNX: the same model version
    assert onnx.runner.path.exists() and onnx.runner.path.parent == tmp_path / "cache" / "onnx"
    views = [build_view(t) for t in _texts()]
    for (b1, l1), (b2, l2) in zip(ref.window_logits(views), onnx.window_logits(views)):
        assert [it[:3] for it in b1] == [it[:3] for it in b2]
        assert any(any(it[3]["token_type_ids"]) for it in b1)  # hints are fed to both
        np.testing.assert_allclose(l1.numpy(), l2.numpy(), atol=1e-4)
    a, b = ref.spans_many(_texts()), onnx.spans_many(_texts())
    assert [[(s.start, s.end, s.label) for s in x] for x in a] == [[(s.start, s.end, s.label) for s in x] for x in b]
    assert any(a)
    # a second tagger reuses the cached export
    mtime = onnx.runner.path.stat().st_mtime_ns
    again = Tagger.from_pretrained(tiny_dir, num_threads=1).use_onnx()
    assert again.runner.path == onnx.runner.path and again.runner.path.stat().st_mtime_ns == mtime


def test_onnx_int8_and_configure(tiny_dir, tmp_path, monkeypatch):
    from govfacts.infer.loader import InferSettings, load
    from govfacts.infer.tagger import Tagger
    from govfacts.settings import SettingsError

    monkeypatch.setenv("GOVFACTS_CACHE", str(tmp_path / "cache"))
    q = load(str(tiny_dir), InferSettings.load(quantize=True, runtime="onnx"))
    assert q.version.endswith("+onnx-int8") and q.runner.int8 and q.runner.path.name.endswith("-int8.onnx")
    spans = q.spans_many(_texts())
    assert all(s.label in LABELS.names and 0 <= s.score <= 1 for x in spans for s in x)
    with pytest.raises(SettingsError, match="runtime"):
        InferSettings.load(runtime="tensorrt")
    with pytest.raises(ValueError, match="float model"):
        Tagger.from_pretrained(tiny_dir).quantize().use_onnx()
    assert load("rules", InferSettings.load(runtime="onnx")).name == "rules"  # no-op for the rules
