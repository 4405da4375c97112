"""Narrower feed-forward layers for a faster tagger: keep each layer's most important FFN neurons.

On a CPU without VNNI the two FFN matrices are most of the encoder's int8 work (bench/README.md), so a
student with half the FFN width reads markedly faster. The neurons kept are those whose input and output
weights carry the most mass (‖W_in[j]‖·‖W_out[:, j]‖), taken from the base before fine-tuning (the pretrained
encoder, or a fine-tuned tagger whose narrower student is wanted), so the narrowed encoder starts from trained
weights rather than from scratch. `narrow_hidden` does the same for the hidden state (`base_hidden`), where the
encoder's time goes once the feed-forward blocks are narrow.
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
            layer.intermediate.dense = _rows(layer.intermediate.dense, keep)
            layer.output.dense = _cols(layer.output.dense, keep)
    model.config.intermediate_size = int(size)
    return model


def hidden_importance(model) -> "torch.Tensor":
    """Per-dimension importance of the residual stream: after each LayerNorm, its gain on the dimension
    times the weight mass of everything that reads the dimension there (the next layer's Q/K/V, the FFN,
    the classifier)."""
    import torch

    bert = model.bert
    layers = list(bert.encoder.layer)

    def read_mass(*linears) -> torch.Tensor:
        return sum(lin.weight.pow(2).sum(dim=0) for lin in linears)

    def qkv(layer):
        s = layer.attention.self
        return (s.query, s.key, s.value)

    score = bert.embeddings.LayerNorm.weight.pow(2) * read_mass(*qkv(layers[0]))
    for i, layer in enumerate(layers):
        score = score + layer.attention.output.LayerNorm.weight.pow(2) * read_mass(layer.intermediate.dense)
        readers = qkv(layers[i + 1]) if i + 1 < len(layers) else (model.classifier,)
        score = score + layer.output.LayerNorm.weight.pow(2) * read_mass(*readers)
    return score


def _keep_in_heads(score: "torch.Tensor", heads: int, size: int) -> "torch.Tensor":
    """The `size` highest-scoring dimensions within each head's block, in order."""
    import torch

    blocks = score.view(heads, -1)
    width = blocks.shape[1]
    keep = [torch.topk(b, size).indices.sort().values + h * width for h, b in enumerate(blocks)]
    return torch.cat(keep)


def narrow_heads(layer, head_size: int) -> None:
    """Keep `head_size` dimensions in every attention head of one BERT layer, in place: query/key dims by
    ‖W_q[d]‖·‖W_k[d]‖, value dims (chosen apart from them) by ‖W_v[d]‖·‖W_o[:, d]‖. The query is rescaled so
    the scores keep their 1/√d scale under the narrower head."""
    import torch

    att, out = layer.attention.self, layer.attention.output.dense
    heads, old = att.num_attention_heads, att.attention_head_size
    if head_size == old:
        return
    with torch.no_grad():
        qk = _keep_in_heads(att.query.weight.norm(dim=1) * att.key.weight.norm(dim=1), heads, head_size)
        v = _keep_in_heads(att.value.weight.norm(dim=1) * out.weight.norm(dim=0), heads, head_size)
        rescale = (head_size / old) ** 0.5
        att.query = _rows(att.query, qk, rescale)
        att.key = _rows(att.key, qk)
        att.value = _rows(att.value, v)
        layer.attention.output.dense = _cols(out, v)
    att.attention_head_size = head_size
    att.all_head_size = heads * head_size
    att.scaling = head_size ** -0.5


def narrow_hidden(model, size: int):
    """Keep `size` dimensions of a BERT-style model's hidden state, in place: the residual stream's most
    important dimensions (`hidden_importance`) in the embeddings, every LayerNorm, every matrix that reads or
    writes the stream and the classifier, and `size / heads` dimensions of every attention head
    (`narrow_heads`), since the model ties the heads' total width to the hidden size. `config.hidden_size`
    follows, so the saved checkpoint loads as an ordinary smaller model; it is a starting point for
    distillation, not a finished tagger (the LayerNorms see fewer dimensions)."""
    import torch

    encoder = getattr(getattr(model, "bert", None), "encoder", None)
    if encoder is None or not hasattr(model, "classifier"):
        raise ValueError("base_hidden needs a BERT-style token classifier (model.bert.encoder.layer)")
    current, heads = int(model.config.hidden_size), int(model.config.num_attention_heads)
    if not 0 < size <= current or size % heads:
        raise ValueError(f"base_hidden {size} must be in 1..{current} and a multiple of the {heads} attention heads")
    if size == current:
        return model
    with torch.no_grad():
        keep = torch.topk(hidden_importance(model), size).indices.sort().values
        emb = model.bert.embeddings
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            table = getattr(emb, name)
            new = torch.nn.Embedding(table.num_embeddings, size, padding_idx=table.padding_idx)
            new.weight.copy_(table.weight[:, keep])
            setattr(emb, name, new)
        emb.LayerNorm = _norm(emb.LayerNorm, keep)
        for layer in encoder.layer:
            narrow_heads(layer, size // heads)
            att = layer.attention.self
            att.query, att.key, att.value = (_cols(att.query, keep), _cols(att.key, keep), _cols(att.value, keep))
            layer.attention.output.dense = _rows(layer.attention.output.dense, keep)
            layer.attention.output.LayerNorm = _norm(layer.attention.output.LayerNorm, keep)
            layer.intermediate.dense = _cols(layer.intermediate.dense, keep)
            layer.output.dense = _rows(layer.output.dense, keep)
            layer.output.LayerNorm = _norm(layer.output.LayerNorm, keep)
        model.classifier = _cols(model.classifier, keep)
    model.config.hidden_size = int(size)
    return model


def _rows(lin, keep, scale: float = 1.0):
    """A Linear with only the output features `keep` (weights and bias times `scale`)."""
    import torch

    new = torch.nn.Linear(lin.in_features, len(keep), bias=lin.bias is not None)
    new.weight.copy_(lin.weight[keep] * scale)
    if lin.bias is not None:
        new.bias.copy_(lin.bias[keep] * scale)
    return new


def _cols(lin, keep):
    """A Linear reading only the input features `keep`."""
    import torch

    new = torch.nn.Linear(len(keep), lin.out_features, bias=lin.bias is not None)
    new.weight.copy_(lin.weight[:, keep])
    if lin.bias is not None:
        new.bias.copy_(lin.bias)
    return new


def _norm(ln, keep):
    import torch

    new = torch.nn.LayerNorm(len(keep), eps=ln.eps)
    new.weight.copy_(ln.weight[keep])
    new.bias.copy_(ln.bias[keep])
    return new
