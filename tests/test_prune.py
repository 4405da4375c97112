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
