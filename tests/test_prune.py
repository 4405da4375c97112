"""A narrower feed-forward block (`base_ffn`) is the same encoder with its least important neurons removed."""
import pytest


def _tiny(seed: int = 0):
    import torch
    from transformers import BertConfig, BertForTokenClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32, num_labels=3)
    return BertForTokenClassification(cfg).eval()


def test_narrowing_equals_zeroing_the_dropped_neurons(tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification

    from govfacts.train.prune import ffn_importance, narrow_ffn

    model, ref = _tiny(), _tiny()
    with torch.no_grad():
        for layer in ref.bert.encoder.layer:
            imp = ffn_importance(layer)
            keep = torch.topk(imp, 12).indices
            assert imp[keep].min() >= imp[[i for i in range(32) if i not in set(keep.tolist())]].max()
            dropped = torch.ones(32, dtype=torch.bool)
            dropped[keep] = False
            layer.output.dense.weight[:, dropped] = 0.0  # a neuron without output weights adds nothing
    narrow_ffn(model, 12)
    assert model.config.intermediate_size == 12
    assert all(L.intermediate.dense.out_features == 12 and L.output.dense.in_features == 12
               for L in model.bert.encoder.layer)
    ids = torch.randint(1, 40, (3, 10))
    with torch.no_grad():
        got, want = model(input_ids=ids).logits, ref(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    model.save_pretrained(tmp_path / "m")
    again = AutoModelForTokenClassification.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        assert torch.allclose(again(input_ids=ids).logits, got, atol=1e-6)


def test_a_width_outside_the_base_is_an_error():
    from govfacts.train.prune import narrow_ffn

    with pytest.raises(ValueError, match="base_ffn 64 must be in 1..32"):
        narrow_ffn(_tiny(), 64)
    assert narrow_ffn(_tiny(), 32).config.intermediate_size == 32


def test_narrower_heads_equal_zeroing_the_dropped_head_dimensions():
    """`narrow_heads` keeps each head's most important query/key and value dimensions and rescales the query,
    so the layer computes what it did with the dropped dimensions zeroed."""
    import torch

    from govfacts.train.prune import narrow_heads

    model, ref = _tiny(), _tiny()  # 2 heads of 8
    ids = torch.randint(1, 40, (3, 10))
    with torch.no_grad():
        for layer, rl in zip(model.bert.encoder.layer, ref.bert.encoder.layer):
            narrow_heads(layer, 5)
            att, r = layer.attention.self, rl.attention.self
            assert att.query.out_features == att.value.out_features == 10 and att.attention_head_size == 5
            for kept_from, rows in ((att.key, r.key), (att.value, r.value)):
                kept = [int((rows.weight == w).all(dim=1).nonzero()[0]) for w in kept_from.weight]
                assert [k // 8 for k in kept] == [0] * 5 + [1] * 5  # five from each head, in order
                dropped = torch.ones(16, dtype=torch.bool)
                dropped[kept] = False
                if rows is r.key:
                    r.query.weight[dropped], r.query.bias[dropped] = 0.0, 0.0
                else:
                    rl.attention.output.dense.weight[:, dropped] = 0.0
        got, want = model(input_ids=ids).logits, ref(input_ids=ids).logits
    assert torch.allclose(got, want, atol=1e-5)


def test_a_narrower_hidden_state_saves_and_loads_as_an_ordinary_smaller_model(tmp_path):
    import torch
    from transformers import AutoModelForTokenClassification

    from govfacts.train.prune import hidden_importance, narrow_hidden

    model, ref = _tiny(), _tiny()
    keep = torch.topk(hidden_importance(ref), 10).indices.sort().values
    narrow_hidden(model, 10)
    assert model.config.hidden_size == 10
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, ref.bert.embeddings.word_embeddings.weight[:, keep])
    assert torch.equal(model.classifier.weight, ref.classifier.weight[:, keep])
    layer = model.bert.encoder.layer[1]
    assert layer.attention.self.query.weight.shape == (10, 10) and layer.intermediate.dense.weight.shape == (32, 10)
    assert layer.output.LayerNorm.weight.shape == (10,)
    ids = torch.randint(1, 40, (3, 10))
    with torch.no_grad():
        got = model(input_ids=ids).logits
    assert got.shape == (3, 10, 3) and torch.isfinite(got).all()
    model.save_pretrained(tmp_path / "m")
    again = AutoModelForTokenClassification.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        assert torch.allclose(again(input_ids=ids).logits, got, atol=1e-6)
    with pytest.raises(ValueError, match="base_hidden 9 must be in 1..16 and a multiple of the 2 attention heads"):
        narrow_hidden(_tiny(), 9)
    assert narrow_hidden(_tiny(), 16).config.hidden_size == 16
