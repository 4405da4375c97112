"""The BERT token-classifier span extractor (same interface as the rules: name, version, spans()).

A document is read on its normalised view, cut into overlapping windows on sentence boundaries,
and every window is classified. Each view char then takes ONE probability vector: from the window
where it lies farthest from an artificial cut (more context on both sides), and within that window
from the token covering it (first char of a token: the token's distribution; later chars of a
multi-char token: its continuation, B-X/I-X → I-X). Constrained Viterbi decodes valid IOB2 tags;
spans go back to raw offsets through the view.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from govfacts.records import Span
from govfacts.textview import TextView, build_view
from govfacts.infer.decode import continuation_matrix, decode

DEFAULT_STRIDE = 64


class Tagger:
    """Wraps a loaded token-classification model and its (fast) tokenizer."""

    def __init__(self, model, tokenizer, name: str = "tagger", version: str = "", max_len: Optional[int] = None,
                 stride: Optional[int] = None, temperature: Optional[float] = None, batch_size: int = 16,
                 num_threads: Optional[int] = None, score: str = "min"):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("the tagger needs a fast tokenizer (offset_mapping aligns tokens to chars)")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.version = version
        cfg = model.config
        n = cfg.num_labels
        self.tags = [str(cfg.id2label.get(i, cfg.id2label.get(str(i)))) for i in range(n)]
        self.max_len = int(max_len or getattr(cfg, "govfacts_max_len", None) or self._default_max_len())
        self.stride = int(stride if stride is not None else getattr(cfg, "govfacts_stride", DEFAULT_STRIDE))
        self.temperature = float(temperature or getattr(cfg, "govfacts_temperature", None) or 1.0)
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.score = score
        try:
            self._cont = continuation_matrix(self.tags).astype(np.float32)
        except ValueError as e:
            raise ValueError(f"{name}: the model's labels are not IOB2 tags ({e}); fine-tune it with "
                             "govfacts.train.finetune first") from None

    def _default_max_len(self) -> int:
        limits = [512, getattr(self.model.config, "max_position_embeddings", 512) or 512]
        tml = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tml, int) and 0 < tml < 100_000:
            limits.append(tml)
        return min(limits)

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_name: str | Path, device: str = "cpu", **kwargs) -> "Tagger":
        """Load a model directory or hub name (safetensors only, never remote code)."""
        from transformers import AutoModelForTokenClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        spec = str(path_or_name)
        tokenizer = AutoTokenizer.from_pretrained(spec, trust_remote_code=False)
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar inside `govfacts extract -q`
        try:
            model = AutoModelForTokenClassification.from_pretrained(spec, use_safetensors=True, trust_remote_code=False)
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        model.to(device)
        name = Path(spec.rstrip("/")).name or spec
        version = str(getattr(model.config, "govfacts_version", "") or "") or _weights_hash(spec) or \
            str(getattr(model.config, "_commit_hash", "") or "unknown")
        return cls(model, tokenizer, name=name, version=version, **kwargs)

    # -- public API -------------------------------------------------------------------------------
    def spans(self, raw: str) -> list[Span]:
        """Labelled spans with offsets into `raw`, non-overlapping, sorted."""
        return self.spans_many([raw])[0]

    def spans_many(self, texts: Sequence[str]) -> list[list[Span]]:
        """Spans of several texts; windows of all texts are batched together."""
        views = [build_view(t) for t in texts]
        return [self.decode_view(v, p, c) for v, (p, c) in zip(views, self.view_probs(views))]

    def extract_documents(self, docs: Sequence) -> list[list]:
        """Facts of several `Document`s at once (the batch runner's `extract_many`)."""
        from govfacts.infer.extractor import extractor_id
        from govfacts.infer.facts import facts_from_spans

        per_doc = self.spans_many([d.text for d in docs])
        return [facts_from_spans(d, spans, extractor_id(self)) for d, spans in zip(docs, per_doc)]

    # -- internals --------------------------------------------------------------------------------
    def decode_view(self, view: TextView, probs: np.ndarray, covered: np.ndarray) -> list[Span]:
        """Merged per-char probabilities of a view → raw Spans (whitespace trimmed from edges)."""
        _, found = decode(probs, self.tags, covered, how=self.score)
        out = []
        for s, e, label, score in found:
            while s < e and view.text[s].isspace():
                s += 1
            while e > s and view.text[e - 1].isspace():
                e -= 1
            if s >= e:
                continue
            rs, re_ = view.to_raw(s, e)
            out.append(Span(rs, re_, label, view.raw[rs:re_], round(score, 4)))
        return out

    def view_probs(self, views: Sequence[TextView]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per view: (probs [n_chars, n_tags], covered [n_chars]) merged over windows."""
        import torch

        from govfacts.train.dataset import encode_window, fit_windows

        items = []  # (view index, start, end, encoding)
        for vi, view in enumerate(views):
            if not view.text:
                continue
            for s, e in fit_windows(view.text, self.tokenizer, self.max_len, self.stride):
                items.append((vi, s, e, encode_window(self.tokenizer, view.text[s:e], self.max_len)))
        n_tags = len(self.tags)
        probs = [np.zeros((len(v.text), n_tags), dtype=np.float32) for v in views]
        best = [np.full(len(v.text), -1, dtype=np.int64) for v in views]
        order = sorted(range(len(items)), key=lambda i: len(items[i][3]["input_ids"]), reverse=True)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads or available_cpus())
        try:
            with torch.inference_mode():
                for b in range(0, len(order), self.batch_size):
                    batch = [items[i] for i in order[b:b + self.batch_size]]
                    width = max(len(it[3]["input_ids"]) for it in batch)
                    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                    mask = torch.zeros((len(batch), width), dtype=torch.long)
                    for r, it in enumerate(batch):
                        k = len(it[3]["input_ids"])
                        ids[r, :k] = torch.tensor(it[3]["input_ids"])
                        mask[r, :k] = torch.tensor(it[3]["attention_mask"])
                    logits = self.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                    p = torch.softmax(logits.float() / self.temperature, dim=-1).cpu().numpy()
                    for r, (vi, s, e, enc) in enumerate(batch):
                        self._merge(probs[vi], best[vi], p[r], enc["offsets"], s, e, len(views[vi].text))
        finally:
            torch.set_num_threads(prev_threads)
        return [(pr, bs >= 0) for pr, bs in zip(probs, best)]

    def _merge(self, probs: np.ndarray, best: np.ndarray, tok_probs: np.ndarray, offsets, s: int, e: int,
               n: int) -> None:
        """Write one window's per-char vectors where this window gives the char more context."""
        big = n + 1  # a true document edge is no cut: never penalised
        done = set()
        for t, off in enumerate(offsets):
            if off is None:
                continue
            a, b = off
            for c in range(a, min(b, e - s)):
                if c in done:
                    continue  # an earlier token already covers this char
                done.add(c)
                pos = s + c
                dist = min(c if s > 0 else big, (e - 1 - pos) if e < n else big)
                key = dist * (n + 1) + (n - s)  # equal distance: the earlier window wins, whatever the batch order
                if key <= best[pos]:
                    continue
                best[pos] = key
                probs[pos] = tok_probs[t] if c == a else tok_probs[t] @ self._cont


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def _weights_hash(spec: str) -> str:
    """First 12 hex digits of the sha256 of a local model's weight files ('' for hub names)."""
    d = Path(spec)
    files = sorted(d.glob("*.safetensors")) if d.is_dir() else []
    if not files:
        return ""
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]
