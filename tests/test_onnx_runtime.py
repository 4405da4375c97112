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
    hinted = []
    for (b1, l1), (b2, l2) in zip(ref.window_logits(views), onnx.window_logits(views)):
        assert [it[:3] for it in b1] == [it[:3] for it in b2]
        assert [it[3]["token_type_ids"] for it in b1] == [it[3]["token_type_ids"] for it in b2]
        hinted.append(any(any(it[3]["token_type_ids"]) for it in b1))
        np.testing.assert_allclose(l1, l2, atol=1e-4)
    assert any(hinted)  # hints are fed to both
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


def test_auto_runtime_measures_once_and_then_starts_without_torch(tiny_dir, tmp_path, monkeypatch):
    """`runtime: auto` times every candidate on the probe windows, keeps the fastest with the float
    model's spans, caches the choice; the next process reads the cache and, on ONNX Runtime, never
    imports torch or transformers, and gives the float model's spans."""
    import json
    import shutil
    import subprocess
    import sys

    from govfacts.infer.loader import InferSettings, load
    from govfacts.infer.runtime import cache_file
    from govfacts.infer.tagger import Tagger

    monkeypatch.setenv("GOVFACTS_CACHE", str(tmp_path / "cache"))
    first = load(str(tiny_dir), InferSettings.load(runtime="auto", quantize=None))
    choice = first.runtime_choice
    assert not choice.cached and set(choice.seconds) == {"torch-fp32", "onnx-fp32"}  # no govfacts_quantize: float only
    assert all(v > 0 for v in choice.seconds.values()) and choice.same_spans["torch-fp32"]
    best = min((k for k in choice.seconds if choice.same_spans[k]), key=choice.seconds.get)
    assert choice.name == best and best in choice.why() and "measured now" in choice.why()
    stored = json.loads(cache_file().read_text(encoding="utf-8"))
    assert len(stored) == 1 and next(iter(stored.values()))["runtime"] == choice.runtime
    forced = load(str(tiny_dir), InferSettings.load(runtime="auto", quantize=True)).runtime_choice
    assert set(forced.seconds) == {"torch-int8", "onnx-int8"} and forced.int8  # asked for: int8 whatever its spans
    again = load(str(tiny_dir), InferSettings.load(runtime="auto", quantize=None)).runtime_choice
    assert again.cached and again.name == choice.name and "cached" in again.why()

    # a model whose calibration allows int8: int8 competes, but is taken only with the float spans
    gated = tmp_path / "gated"
    shutil.copytree(tiny_dir, gated)
    conf = json.loads((gated / "config.json").read_text(encoding="utf-8"))
    (gated / "config.json").write_text(json.dumps({**conf, "govfacts_quantize": True}), encoding="utf-8")
    c = load(str(gated), InferSettings.load(runtime="auto", quantize=None)).runtime_choice
    assert set(c.seconds) == {"torch-fp32", "torch-int8", "onnx-fp32", "onnx-int8"} and c.same_spans[c.name]

    # pin the cached choice to ONNX Runtime float, as a machine where it measured fastest would have
    stored = json.loads(cache_file().read_text(encoding="utf-8"))
    key = next(k for k in stored if k.startswith(Tagger.from_pretrained(tiny_dir).weights_key()) and "fp32" in k
               and "int8" not in k.rsplit("|", 1)[1])
    stored[key].update(runtime="onnx", int8=False)
    cache_file().write_text(json.dumps(stored), encoding="utf-8")
    code = ("import sys, json; from govfacts.infer.loader import InferSettings, load; "
            f"t = load({str(tiny_dir)!r}, InferSettings.load(runtime='auto', quantize=None)); "
            f"s = t.spans_many({_texts()!r}); "
            "print(json.dumps({'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules, "
            "'runtime': t.runtime_choice.name, 'spans': [[(x.start, x.end, x.label) for x in y] for y in s]}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"] == "onnx-fp32" and not got["torch"] and not got["transformers"]
    ref = Tagger.from_pretrained(tiny_dir, num_threads=1).spans_many(_texts())
    assert got["spans"] == [[[x.start, x.end, x.label] for x in y] for y in ref]


def test_file_tokenizer_encodes_as_transformers_does(tiny_dir):
    """The tokenizer read from tokenizer.json alone gives transformers' ids, offsets and special-token
    masks, on real reports and on text holding special-token strings, for the bundled model's
    tokenizer and a test one."""
    from transformers import AutoTokenizer

    from govfacts.infer.checkpoint import FileTokenizer
    from govfacts.infer.windows import encode_window

    texts = [d.text[:4000] for d in list(corpus_docs().values())[:6]] + \
        ["申请[CLS]公开 [SEP] 12 333件，行政復議０件 ，约 1,100 多条", ""]
    for d in (ROOT / "models" / "govfacts-tagger-zh", tiny_dir):
        if not (Path(d) / "tokenizer.json").exists():
            continue
        hf, ft = AutoTokenizer.from_pretrained(str(d)), FileTokenizer(d)
        assert ft.num_special_tokens_to_add() == hf.num_special_tokens_to_add(pair=False)
        assert ft.pad_token_id == hf.pad_token_id
        for t in texts:
            for n in (16, 130):
                assert encode_window(ft, t, n) == encode_window(hf, t, n)
            assert ft(t)["input_ids"] == hf(t)["input_ids"]
