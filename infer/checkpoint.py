"""A tagger's model directory read without transformers: config, tokenizer, a key of its files.

Importing transformers (and the torch machinery it pulls in) costs seconds before the first
document; the ONNX Runtime encoder needs none of it. A local directory holding `config.json`,
`tokenizer.json` and safetensors weights is read here with `json` and the `tokenizers` library
alone; the torch model is built (through transformers) only when something asks for it. Hub names
and directories without `tokenizer.json` go through transformers as before.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Optional


class ModelConfig:
    """config.json as attributes, the subset of a transformers config the tagger reads."""

    def __init__(self, data: dict):
        self.__dict__.update(data)
        self.id2label = {int(k): v for k, v in (data.get("id2label") or {}).items()}
        self.label2id = dict(data.get("label2id") or {})

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @classmethod
    def from_dir(cls, directory: str | Path) -> "ModelConfig":
        return cls(json.loads((Path(directory) / "config.json").read_text(encoding="utf-8")))


class FileTokenizer:
    """A `tokenizer.json` behind the calls the window encoder makes on a transformers fast tokenizer:
    `tok(text, add_special_tokens, truncation, max_length, return_offsets_mapping,
    return_special_tokens_mask)`, `num_special_tokens_to_add`, `pad_token_id`; same ids and offsets
    (tests/test_onnx_runtime.py compares them on real reports)."""

    is_fast = True

    def __init__(self, directory: str | Path):
        from tokenizers import Tokenizer

        d = Path(directory)
        self._tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        cfg_path = d / "tokenizer_config.json"
        cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else {}
        self._tok.no_padding()
        self._tok.no_truncation()
        self._trunc: Optional[int] = None
        if hasattr(self._tok, "encode_special_tokens"):  # "[CLS]" written in a report is text, not a token
            self._tok.encode_special_tokens = bool(cfg.get("split_special_tokens", False))
        pad = cfg.get("pad_token", "[PAD]")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        self.pad_token_id = self._tok.token_to_id(pad) if pad else None
        tml = cfg.get("model_max_length")
        self.model_max_length = int(tml) if isinstance(tml, (int, float)) and tml < 1e9 else None
        self._n_special = len(self._tok.encode("", add_special_tokens=True).ids)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        if pair:
            raise ValueError("the tagger encodes single sequences")
        return self._n_special

    def __len__(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def __call__(self, text: str, add_special_tokens: bool = True, truncation: bool = False,
                 max_length: Optional[int] = None, return_offsets_mapping: bool = False,
                 return_special_tokens_mask: bool = False) -> dict:
        want = int(max_length) if truncation and max_length else None
        if want != self._trunc:
            if want is None:
                self._tok.no_truncation()
            else:
                self._tok.enable_truncation(want)
            self._trunc = want
        enc = self._tok.encode(text, add_special_tokens=add_special_tokens)
        out = {"input_ids": enc.ids, "token_type_ids": enc.type_ids, "attention_mask": enc.attention_mask}
        if return_offsets_mapping:
            out["offset_mapping"] = enc.offsets
        if return_special_tokens_mask:
            out["special_tokens_mask"] = enc.special_tokens_mask
        return out


def is_local_checkpoint(spec: str | Path) -> bool:
    """A directory the tagger can read without transformers."""
    d = Path(spec)
    return d.is_dir() and (d / "config.json").exists() and (d / "tokenizer.json").exists() and \
        any(d.glob("*.safetensors"))


def _weights_digest(directory: str | Path) -> str:
    """sha256 (hex) of a directory's safetensors files read in name order, '' when it has none. Read once
    per process and file state: loading a tagger asks for it up to three times (version, runtime choice,
    ONNX export), and each read is the whole weights file."""
    d = Path(directory)
    files = sorted(d.glob("*.safetensors")) if d.is_dir() else []
    state = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return _digest_of(state)


@lru_cache(maxsize=8)
def _digest_of(state: tuple) -> str:
    if not state:
        return ""
    h = hashlib.sha256()
    for path, _, _ in state:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def checkpoint_key(directory: str | Path) -> str:
    """First 16 hex digits of the sha256 of a directory's config.json and its weights' digest: names the
    ONNX export and the runtime choice of exactly this model ('' when it has no weights)."""
    weights = _weights_digest(directory)
    if not weights:
        return ""
    config = (Path(directory) / "config.json").read_bytes()
    return hashlib.sha256(config + weights.encode("ascii")).hexdigest()[:16]


def weights_hash(directory: str | Path) -> str:
    """First 12 hex digits of the sha256 of a local model's weight files: its version when config.json
    names none ('' for hub names)."""
    return _weights_digest(directory)[:12]


def load_torch_model(spec: str, device: str = "cpu"):
    """The token-classification model of a directory or hub name (safetensors only, never remote code)."""
    from transformers import AutoModelForTokenClassification
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar inside `govfacts extract -q`
    try:
        model = AutoModelForTokenClassification.from_pretrained(spec, use_safetensors=True, trust_remote_code=False)
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    return model.to(device).eval()


def load_hf_tokenizer(spec: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec, trust_remote_code=False)
