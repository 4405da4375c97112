"""Narrower feed-forward layers for a faster tagger: keep each layer's most important FFN neurons.

On a CPU without VNNI the two FFN matrices are most of the encoder's int8 work (bench/README.md), so a
student with half the FFN width reads markedly faster. The neurons kept are those whose input and output
weights carry the most mass (‖W_in[j]‖·‖W_out[:, j]‖), taken from the base before fine-tuning (the pretrained
encoder, or a fine-tuned tagger whose narrower student is wanted), so the narrowed encoder starts from trained
weights rather than from scratch.
"""
from __future__ import annotations


def ffn_importance(layer) -> "torch.Tensor":
    """Per-neuron importance of one BERT layer's feed-forward block (weight mass in and out)."""
    w_in = layer.intermediate.dense.weight  # (ffn, hidden)
    w_out = layer.output.dense.weight      # (hidden, ffn)
    return w_in.norm(dim=1) * w_out.norm(dim=0)


def narrow_ffn(model, size: int):
    """Keep the `size` most important FFN neurons of every encoder layer of a BERT-style model, in place;
    `config.intermediate_size` follows, so the saved checkpoint loads as an ordinary narrower model."""
    import torch

    encoder = getattr(getattr(model, "bert", None), "encoder", None)
    if encoder is None:
        raise ValueError("base_ffn needs a BERT-style model (model.bert.encoder.layer)")
    current = int(model.config.intermediate_size)
    if not 0 < size <= current:
        raise ValueError(f"base_ffn {size} must be in 1..{current} (the base's intermediate_size)")
    if size == current:
        return model
    with torch.no_grad():
        for layer in encoder.layer:
            keep = torch.topk(ffn_importance(layer), size).indices.sort().values
            w_in, w_out = layer.intermediate.dense, layer.output.dense
            new_in = torch.nn.Linear(w_in.in_features, size)
            new_in.weight.copy_(w_in.weight[keep])
            new_in.bias.copy_(w_in.bias[keep])
            new_out = torch.nn.Linear(size, w_out.out_features)
            new_out.weight.copy_(w_out.weight[:, keep])
            new_out.bias.copy_(w_out.bias)
            layer.intermediate.dense, layer.output.dense = new_in, new_out
    model.config.intermediate_size = int(size)
    return model
