"""The BERT token-classifier span extractor (same interface as the rules: name, version, spans()).

A document is read on its normalised view, cut into overlapping windows on sentence boundaries,
and every window is classified. Each view char then takes ONE probability vector: from the window
where it lies farthest from an artificial cut (more context on both sides), and within that window
from the token covering it (first char of a token: the token's distribution; later chars of a
multi-char token: its continuation, B-X/I-X → I-X). Constrained Viterbi decodes valid IOB2 tags;
spans go back to raw offsets through the view.
"""
from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from govfacts.claims import NEGATION, focus_segments
from govfacts.infer.checkpoint import (FileTokenizer, ModelConfig, checkpoint_key, is_local_checkpoint,
                                       load_hf_tokenizer, load_torch_model, weights_hash)
from govfacts.infer.confidence import ConfidenceMap, rules_agree
from govfacts.infer.decode import anchor_spans, continuation_matrix, spans_from_tags, viterbi_split
from govfacts.infer.hints import (hint_type_ids, hint_vocab, quantity_hints, rule_hint_tags, rule_spans, rule_view_spans,
                                  snap_to_phrases, uses_quantity_hints, uses_veto_hints, zero_claim_phrases)
from govfacts.infer.onnx_runtime import OnnxRunner, model_file
from govfacts.infer.rules import RuleExtractor, follows_no_claim_word
from govfacts.infer.windows import read_encoded_windows
from govfacts.infer.words import snap_free_spans
from govfacts.labels import default_labels
from govfacts.quantity import NUMERAL_RX, view_approximators, view_quantities, view_quantity_units
from govfacts.records import Span
from govfacts.textview import TextView, build_view

DEFAULT_STRIDE = 64


@dataclass
class TaggerOptions:
    """How a tagger reads and decodes. Fine-tuning and calibration record these in the model's
    config.json (`govfacts_*` keys), so a saved model decodes as it was selected and calibrated;
    `Tagger.from_pretrained(dir, **overrides)` changes them for one run."""

    max_len: int  # tokens per window incl. special tokens
    stride: int  # chars of overlap between neighbouring windows
    temperature: float = 1.0  # logits / T before the softmax (fitted on dev)
    batch_size: int = 16  # windows per forward pass
    num_threads: Optional[int] = None  # None: all CPUs this process may use
    score: str = "min"  # span score: min or mean of its chars' chosen-tag probabilities
    anchor: bool = False  # quantity-anchored decoding (decode.anchor_spans)
    min_score: float = 0.0  # spans whose calibrated score is below this are dropped (fitted on dev)
    confidence: Optional[ConfidenceMap] = None  # span score → P(fact right) (infer.confidence; fitted by calibration)
    skip_plain: bool = False  # read only sentences that may hold a claim (govfacts.claims)
    hint_threshold: Optional[float] = None  # entity mass a rule-labelled candidate needs (None: as any; dev-fitted)
    units: bool = True  # a numeric claim takes only labels the contract counts in its unit (decode.anchor_spans)
    focus: Optional[tuple[int, int, int]] = None  # read only around candidates (govfacts.claims.focus_segments)
    unhedged: bool = False  # the encoder does not read a candidate's approximator (windows.skip_tokens)

    @classmethod
    def from_config(cls, cfg, default_max_len: int, **overrides) -> "TaggerOptions":
        def get(key, default):
            v = getattr(cfg, f"govfacts_{key}", None)
            return default if v is None else v

        opts = cls(max_len=int(get("max_len", default_max_len)), stride=int(get("stride", DEFAULT_STRIDE)),
                   temperature=float(get("temperature", 1.0) or 1.0), anchor=bool(get("anchor", False)),
                   min_score=float(get("min_score", 0.0)),
                   confidence=ConfidenceMap.from_config(get("confidence_map", None) or get("platt", None)),
                   skip_plain=bool(get("skip_plain", False)), units=bool(get("units", True)),
                   focus=tuple(int(x) for x in get("focus", ())) or None, unhedged=bool(get("unhedged", False)),
                   hint_threshold=None if get("hint_threshold", None) is None else float(get("hint_threshold", 0.5)))
        return dataclasses.replace(opts, **{k: v for k, v in overrides.items() if v is not None})

    def calibration_key(self) -> str:
        """8 hex digits naming what calibration fits (temperature, hint threshold, confidence map, score
        threshold): the same weights calibrated otherwise give other confidences, so another extractor id."""
        fitted = {"temperature": round(float(self.temperature), 6), "min_score": round(float(self.min_score), 6),
                  "hint_threshold": self.hint_threshold,
                  "confidence": self.confidence.to_config() if self.confidence is not None else None}
        return hashlib.sha1(json.dumps(fitted, sort_keys=True).encode("utf-8")).hexdigest()[:8]


class Tagger:
    """Wraps a token-classification model and its (fast) tokenizer.

    The torch model may be absent (`model=None` with `config` and `source`): a tagger read from a local
    directory builds it only when asked (`.model`), so the ONNX Runtime encoder starts without torch.
    """

    def __init__(self, model, tokenizer, name: str = "tagger", version: str = "",
                 options: Optional[TaggerOptions] = None, config=None, source: Optional[str] = None,
                 **overrides):
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("the tagger needs a fast tokenizer (offset_mapping aligns tokens to chars)")
        if model is None and (config is None or source is None):
            raise ValueError("a tagger without a loaded model needs its config and source directory")
        self._model = model.eval() if model is not None else None
        self.tokenizer = tokenizer
        self.name = name
        self.config = cfg = config if config is not None else model.config
        n = cfg.num_labels
        self.tags = [str(cfg.id2label.get(i, cfg.id2label.get(str(i)))) for i in range(n)]
        self.options = options or TaggerOptions.from_config(cfg, self._default_max_len(), **overrides)
        self._contract = default_labels()  # the units each label is counted in (TaggerOptions.units)
        # rule hints (govfacts.infer.hints): the rules' tags go in as token types, when the model was trained so
        self.rules = None
        if getattr(cfg, "govfacts_rule_hints", False):
            self.rules = RuleExtractor()
            if version:  # the rules are part of the model's input: their content is part of its id
                version = f"{version}+rules-{self.rules.fingerprint}"
        if version:  # ... and the calibration is part of how its spans and confidences come out
            version = f"{version}+cal-{self.options.calibration_key()}"
        self.version = version
        self.source: Optional[str] = source  # the directory / hub name it was loaded from
        self.quantized = False
        self._local = False  # read from a directory whose files name its weights (`weights_key`)
        self.runtime_choice = None  # what `runtime: auto` measured and took (govfacts.infer.runtime)
        self.runner = None  # an OnnxRunner when the encoder runs on ONNX Runtime (`use_onnx`)
        try:
            self._cont = continuation_matrix(self.tags).astype(np.float32)
        except ValueError as e:
            raise ValueError(f"{name}: the model's labels are not IOB2 tags ({e}); fine-tune it with "
                             "govfacts.train.finetune first") from None

    @property
    def model(self):
        """The torch model, built from `source` on first use."""
        if self._model is None:
            self._model = load_torch_model(self.source)
        return self._model

    @model.setter
    def model(self, model) -> None:
        self._model = model
        self._local = False  # other weights than the directory's

    def _default_max_len(self) -> int:
        limits = [512, getattr(self.config, "max_position_embeddings", 512) or 512]
        tml = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tml, int) and 0 < tml < 100_000:
            limits.append(tml)
        return min(limits)

    def quantize(self) -> "Tagger":
        """Dynamic int8 quantisation of the model's Linear layers (CPU; weights int8, activations
        quantised per batch). About 2x faster on AVX-512/VNNI CPUs; outputs differ from fp32 by
        rounding only (see bench/README.md for the measured speed and dev F1)."""
        if self.quantized:
            return self
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao deprecation notice (eager-mode API still supported)
            self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.quantized = True
        if self.version and not self.version.endswith("+int8"):
            self.version = f"{self.version}+int8"
        return self

    def use_onnx(self, int8: bool = False) -> "Tagger":
        """Run the encoder on ONNX Runtime (exported once per weights, cached; `int8`: ONNX Runtime's
        dynamic quantisation). The decoding stays the same; bench/README.md has the measured speed."""
        if self.quantized:
            raise ValueError(f"{self.name}: use_onnx needs the float model, not the torch-int8 one")
        key = self.weights_key()
        path = model_file(key, int8, lambda: self.model)
        self.runner = OnnxRunner(path, int8, self.options.num_threads or available_cpus())
        # float ONNX gives the torch outputs to ~1e-5 (tested): the same model version; int8 is not
        if int8 and self.version and not self.version.endswith("+onnx-int8"):
            self.version = f"{self.version}+onnx-int8"
        return self

    def weights_key(self) -> str:
        """Names exactly these float weights (ONNX export cache, runtime choice): the hash of the model
        directory's files when it was read from one and not changed since, else of the parameters."""
        return checkpoint_key(self.source) if self._local else _params_hash(self.model)

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_name: str | Path, device: str = "cpu", **kwargs) -> "Tagger":
        """Load a model directory or hub name (safetensors only, never remote code). A local directory
        with tokenizer.json is read without transformers; its torch model is built on first use."""
        spec = str(path_or_name)
        local = device == "cpu" and is_local_checkpoint(spec)
        if local:
            model, config, tokenizer = None, ModelConfig.from_dir(spec), FileTokenizer(spec)
        else:
            tokenizer, model = load_hf_tokenizer(spec), load_torch_model(spec, device)
            config = model.config
        name = Path(spec.rstrip("/")).name or spec
        version = str(getattr(config, "govfacts_version", "") or "") or weights_hash(spec) or \
            str(getattr(config, "_commit_hash", "") or "unknown")
        tagger = cls(model, tokenizer, name=name, version=version, config=config, source=spec, **kwargs)
        tagger._local = local
        return tagger

    # -- public API -------------------------------------------------------------------------------
    def spans(self, raw: str) -> list[Span]:
        """Labelled spans with offsets into `raw`, non-overlapping, sorted."""
        return self.spans_many([raw])[0]

    def spans_many(self, texts: Sequence[str]) -> list[list[Span]]:
        """Spans of several texts; their windows are encoded in batches of one text each, and decoding of
        all texts is batched together."""
        views = [build_view(t) for t in texts]
        return self.decode_views(views, self.view_probs(views))

    # -- internals --------------------------------------------------------------------------------
    def decode_views(self, views: Sequence[TextView], view_probs: Sequence[tuple[np.ndarray, np.ndarray]]
                     ) -> list[list[Span]]:
        """Merged per-char probabilities of several views → raw Spans per view (whitespace trimmed from
        edges), scored by the confidence map and thresholded at `min_score`."""
        return [self._finished(found) for found in self.scored_spans(views, view_probs)]

    def scored_spans(self, views: Sequence[TextView], view_probs: Sequence[tuple[np.ndarray, np.ndarray]]
                     ) -> list[list[tuple[Span, bool]]]:
        """Per view: (raw Span with its model score, unrounded and before the confidence map; does a rules
        span of its label overlap it) — what the map reads, so calibration fits it on the very numbers
        inference maps. One batched Viterbi (`decode.viterbi_split`) advances the read runs of all views."""
        lps = [(p, c) for p, c in view_probs]
        ids = viterbi_split(lps, self.tags)
        out = []
        for view, (probs, covered), tag_ids in zip(views, lps, ids):
            found = spans_from_tags(tag_ids, self.tags, probs, covered, how=self.options.score)
            spans = self._spans_of(view, self._postprocess(view, probs, covered, found))
            by_rules = rule_spans(view, self.rules) if self.rules is not None else []
            out.append([(sp, rules_agree(sp.start, sp.end, sp.label, by_rules)) for sp in spans])
        return out

    def _finished(self, found: Sequence[tuple[Span, bool]]) -> list[Span]:
        opts = self.options
        scores = [sp.score for sp, _ in found]
        if opts.confidence is not None and found:
            scores = opts.confidence.many(scores, [agree for _, agree in found])
        return [dataclasses.replace(sp, score=round(float(c), 4)) for (sp, _), c in zip(found, scores)
                if c >= opts.min_score]

    def _postprocess(self, view: TextView, probs: np.ndarray, covered: np.ndarray, found):
        opts = self.options
        if opts.anchor:
            candidates = view_quantities(view)
            phrases = zero_claim_phrases(view, self.rules) if self.rules is not None else []
            found = snap_to_phrases(snap_free_spans(view.text, found, candidates, phrases), phrases)
            hinted = rule_view_spans(view, self.rules) if self.rules is not None and opts.hint_threshold is not None else []
            refused = [self._contract.refusing(u) for u in view_quantity_units(view)] if opts.units else []
            found = anchor_spans(found, probs, covered, self.tags, candidates, text=view.text, hinted=hinted,
                                 hint_threshold=opts.hint_threshold, refused=refused)
        return [f for f in found if not (NUMERAL_RX.search(view.text[f[0]:f[1]])
                                         and follows_no_claim_word(view.text, f[0]))]

    @staticmethod
    def _spans_of(view: TextView, found) -> list[Span]:
        out = []
        for s, e, label, score in found:
            while s < e and view.text[s].isspace():
                s += 1
            while e > s and view.text[e - 1].isspace():
                e -= 1
            if s >= e:
                continue
            rs, re_ = view.to_raw(s, e)
            out.append(Span(rs, re_, label, view.raw[rs:re_], float(score)))
        return out

    def view_probs(self, views: Sequence[TextView]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per view: (probs [n_chars, n_tags], covered [n_chars]) merged over windows.

        Each view's windows are sorted by token length and batched (little padding; `window_batches`)
        and run on the chosen encoder with `num_threads` threads.
        """
        return self.merge_windows(views, self.window_logits(views))

    def window_logits(self, views: Sequence[TextView]):
        """Yield (batch of windows, logits [batch, width, n_tags] numpy float32); a window is
        (view index, start, end, encoding). A list of these lets `merge_windows` re-merge the same
        model outputs at other temperatures (calibration) without running the model again."""
        for batch, ids, mask, types in self.window_batches(views):
            yield batch, self.encode(ids, mask, types)

    def encode(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        """Logits of one padded batch on the chosen encoder (ONNX Runtime or torch)."""
        if self.runner is not None:
            return self.runner(ids, mask, types)
        return self._torch_logits(ids, mask, types if self.rules is not None else None)

    def window_batches(self, views: Sequence[TextView]):
        """Yield (batch of windows, input_ids, attention_mask, token_type_ids): the padded int64 arrays
        the encoder reads, each view's windows sorted by token length so batches need little padding.

        A batch never mixes two views: int8 encoders scale their activations per forward pass, so a
        document's facts must not depend on which other documents share its run (a resumed run, a
        subfolder, the same report in another corpus give the same facts)."""
        opts = self.options
        quantities = self.rules is not None and uses_quantity_hints(self.config)
        vetoes = quantities and uses_veto_hints(self.config)
        tag_ids = hint_vocab(self.tags, quantities, vetoes)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for vi, view in enumerate(views):
            if not view.text:
                continue
            items = []  # (view index, start, end, encoding)
            hints = rule_hint_tags(view, self.rules) if self.rules is not None else None
            if quantities:
                hints = quantity_hints(hints, view_quantities(view), self.rules.vetoed(view) if vetoes else [])
            segments = focus_segments(view.text, view_quantities(view), *opts.focus) if opts.focus else None
            unread = view_approximators(view) if opts.unhedged else ()
            for s, e, enc in read_encoded_windows(view.text, self.tokenizer, opts.max_len, opts.stride,
                                                  opts.skip_plain, self._may_yield(view), segments, unread):
                if hints is not None:
                    enc["token_type_ids"] = hint_type_ids(enc["offsets"], hints[s:e], tag_ids)
                items.append((vi, s, e, enc))
            yield from self._padded(items, pad_id)

    def _padded(self, items: list, pad_id: int):
        """`items` longest first in batches of at most `batch_size`, each padded to its first (longest)
        window; a window shorter than PAD_SHARE of that width starts the next batch, so one document's
        windows, whose lengths vary, waste little on padding (a smaller batch costs little more per window)."""
        batch_size = self.options.batch_size
        items = sorted(items, key=lambda it: len(it[3]["input_ids"]), reverse=True)
        batches: list[list] = []
        for it in items:
            if not batches or len(batches[-1]) >= batch_size or \
                    len(it[3]["input_ids"]) < PAD_SHARE * len(batches[-1][0][3]["input_ids"]):
                batches.append([])
            batches[-1].append(it)
        for batch in batches:
            width = len(batch[0][3]["input_ids"])
            ids = np.full((len(batch), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            types = np.zeros((len(batch), width), dtype=np.int64)
            for r, it in enumerate(batch):
                k = len(it[3]["input_ids"])
                ids[r, :k] = it[3]["input_ids"]
                mask[r, :k] = it[3]["attention_mask"]
                if "token_type_ids" in it[3]:
                    types[r, :k] = it[3]["token_type_ids"]
            yield batch, ids, mask, types

    def _may_yield(self, view: TextView):
        """With quantity-anchored decoding a span is a quantity candidate or a zero claim after a negation
        cue of its sentence (`anchor_spans`), so a claim segment holding neither cannot give one: it is
        not encoded (a sentence with only a date or a document number in it). The facts stay the same."""
        if not self.options.anchor:
            return None
        text, cands = view.text, view_quantities(view)
        starts = [s for s, _ in cands]

        def keep(a: int, b: int) -> bool:
            i = bisect.bisect_left(starts, b)  # candidates starting before b; sorted and non-overlapping
            return (i > 0 and cands[i - 1][1] > a) or NEGATION.search(text, a, b) is not None
        return keep

    def _torch_logits(self, ids: np.ndarray, mask: np.ndarray, types: Optional[np.ndarray]) -> np.ndarray:
        import torch

        device = next(self.model.parameters(), torch.empty(0)).device
        extra = {"token_type_ids": torch.from_numpy(types).to(device)} if types is not None else {}
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(self.options.num_threads or available_cpus())
        try:
            with torch.inference_mode():
                logits = self.model(input_ids=torch.from_numpy(ids).to(device),
                                    attention_mask=torch.from_numpy(mask).to(device), **extra).logits
        finally:
            torch.set_num_threads(prev_threads)
        return logits.float().cpu().numpy()

    def merge_windows(self, views: Sequence[TextView], batches, temperature: Optional[float] = None
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Merge window outputs (`window_logits`) into per-char probabilities at `temperature`
        (default: the tagger's)."""
        temp = float(temperature or self.options.temperature)
        n_tags = len(self.tags)
        probs = [np.zeros((len(v.text), n_tags), dtype=np.float32) for v in views]
        best = [np.full(len(v.text), -1, dtype=np.int64) for v in views]
        unread = [np.ones(len(v.text), dtype=bool) for v in views]
        for batch, logits in batches:
            p = _softmax(np.asarray(logits, dtype=np.float32) / np.float32(temp))
            for r, (vi, s, e, enc) in enumerate(batch):
                self._merge(probs[vi], best[vi], p[r], enc["offsets"], s, e, len(views[vi].text))
                unread[vi][s:e] = False
        if self.options.skip_plain:  # unread sentences are O for certain, not "unknown": no span runs through them
            o = self.tags.index("O")
            for pr, bs, skip in zip(probs, best, unread):
                pr[skip] = 0.0
                pr[skip, o] = 1.0
                bs[skip] = 0
        return [(pr, bs >= 0) for pr, bs in zip(probs, best)]

    def _merge(self, probs: np.ndarray, best: np.ndarray, tok_probs: np.ndarray, offsets, s: int, e: int,
               n: int) -> None:
        """Write one window's per-char vectors where this window gives the char more context.

        Each window char is taken from the first token covering it: that token's distribution for
        the token's first char, its continuation (B-X/I-X → I-X) for later chars. A char keeps the
        window where it lies farthest from an artificial cut (a true document edge is no cut);
        at equal distance the earlier window wins, whatever the batch order.
        """
        chars, toks, first = _first_cover(offsets, e - s)
        if not len(chars):
            return
        big = n + 1
        pos = chars + s
        left = chars if s > 0 else np.full(len(chars), big, dtype=np.int64)
        right = (e - 1 - pos) if e < n else np.full(len(chars), big, dtype=np.int64)
        key = np.minimum(left, right) * (n + 1) + (n - s)
        upd = key > best[pos]
        if not upd.any():
            return
        pos, toks, first = pos[upd], toks[upd], first[upd]
        best[pos] = key[upd]
        rows = tok_probs[toks]
        if not first.all():
            later = ~first
            rows[later] = rows[later] @ self._cont
        probs[pos] = rows


PAD_SHARE = 0.9  # a batch's windows are at least this share of its longest one's tokens (`Tagger._padded`)


def _first_cover(offsets, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(chars, token index, is the token's first char) for every window char below `limit`, taken
    from the first token (in token order) that covers it."""
    chars, toks, first = [], [], []
    done = set()
    simple = True  # one char per token, increasing: the char tokenizer's case, no set needed
    last = -1
    for t, off in enumerate(offsets):
        if off is None:
            continue
        a, b = off
        if simple and b == a + 1 and a > last:
            last = a
            if a < limit:
                chars.append(a)
                toks.append(t)
                first.append(True)
            continue
        if simple:
            simple = False
            done.update(chars)
        for c in range(a, min(b, limit)):
            if c in done:
                continue
            done.add(c)
            chars.append(c)
            toks.append(t)
            first.append(c == a)
    return (np.asarray(chars, dtype=np.int64), np.asarray(toks, dtype=np.int64), np.asarray(first, dtype=bool))


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def _params_hash(model) -> str:
    """First 16 hex digits of the sha256 of a model's config and parameters (the ONNX cache key)."""
    import torch

    h = hashlib.sha256(model.config.to_json_string().encode("utf-8"))
    with torch.no_grad():
        for name, p in sorted(model.state_dict().items()):
            h.update(name.encode("utf-8"))
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
