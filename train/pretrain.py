"""Masked-language-model pretraining of a small character BERT on the report corpus.

The tagger needs an encoder that has seen this genre (tables of counts, units, cue words) and that
uses our one-token-per-character vocabulary, so it is pretrained here from scratch on CPU. Whole
words (jieba) are masked together and number words plus their neighbours are favoured, because
quantities are what the tagger has to read. The run is resumable and bounded by a time budget.

    .venv/bin/python -m govfacts.train.pretrain [configs/pretrain.yaml] [--fresh]
"""
from __future__ import annotations

import bisect
import dataclasses
import glob
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from govfacts.paths import CONFIGS, resolve
from govfacts.settings import load_settings
from govfacts.splits import expand, load_splits
from govfacts.textview import build_view
from govfacts.train.vocab import SPECIALS, build_tokenizer, load_tokenizer

log = logging.getLogger(__name__)

@dataclass
class PretrainSettings:
    """configs/pretrain.yaml (every default lives there; the file documents each key)."""

    corpus: list
    exclude_split: Optional[str]
    splits_file: str
    exclude_doc_ids: list
    output_dir: str
    tokenizer_dir: Optional[str]
    init_from: Optional[str]
    model: dict
    max_len: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_steps: int
    max_steps: int
    max_minutes: Optional[float]
    max_grad_norm: Optional[float]
    checkpoint_every: int
    log_every: int
    seed: int
    mask_prob: float
    number_boost: float
    stop_at_step: Optional[int]
    keep_checkpoint: bool
    progress: bool


CN_NUMERALS = set("零〇一二三四五六七八九十百千万亿两")
# Units and cue words that carry a quantity's meaning; boosted wherever they occur.
UNITS = {"条", "件", "次", "人次", "万", "亿", "%", "％", "个百分点", "百分点", "万元", "元", "人", "户",
         "倍", "个", "份", "篇", "项", "期", "场", "场次", "件次", "条次", "批", "宗", "部", "名", "起",
         "本", "册", "套", "张", "余", "多"}
# ("公开", "发布" are left out: they occur in nearly every sentence of these reports.)
CUES = {"共", "共计", "累计", "合计", "总计", "收到", "受理", "办结", "同比", "增长", "下降", "增加", "减少",
        "其中", "全年", "新增", "达", "达到", "约"}


# ---------------------------------------------------------------- whole-word masking

def word_spans(text: str) -> list[tuple[int, int]]:
    """jieba words as [start, end) character spans covering `text` exactly."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    spans, pos = [], 0
    for w in jieba.lcut(text):
        spans.append((pos, pos + len(w)))
        pos += len(w)
    if pos != len(text):  # jieba never drops characters; guard anyway so spans stay aligned
        spans = [(i, i + 1) for i in range(len(text))]
    return spans


def is_number_word(word: str) -> bool:
    return any(c.isdigit() for c in word) or (bool(word) and all(c in CN_NUMERALS or c == "点" for c in word))


def word_weights(text: str, spans: Sequence[tuple[int, int]], number_boost: float) -> list[float]:
    """Selection weight per word: 0 for whitespace, `number_boost` for numbers, their neighbours,
    units and cue words, 1 otherwise."""
    words = [text[s:e] for s, e in spans]
    numeric = [is_number_word(w) for w in words]
    out = []
    for i, w in enumerate(words):
        if not w.strip():
            out.append(0.0)
            continue
        near = (i > 0 and numeric[i - 1]) or (i + 1 < len(words) and numeric[i + 1])
        boosted = numeric[i] or near or w in UNITS or w in CUES
        out.append(float(number_boost) if boosted else 1.0)
    return out


def whole_word_mask(ids: Sequence[int], spans: Sequence[tuple[int, int]], weights: Sequence[float],
                    rng: random.Random, mask_prob: float, mask_id: int, random_range: tuple[int, int],
                    ) -> tuple[list[int], list[int]]:
    """Mask whole words until ~mask_prob of the maskable characters are covered.

    Words are drawn without replacement with probability ∝ weight (Efraimidis–Spirakis keys); each
    chosen word is, as a unit, replaced by [MASK] (80%), random tokens (10%) or left as is (10%).
    Returns (input_ids, labels) with labels -100 outside chosen words.
    """
    inputs, labels = list(ids), [-100] * len(ids)
    cands = [(rng.random() ** (1.0 / w), s, e) for (s, e), w in zip(spans, weights) if w > 0 and e > s]
    if not cands:
        return inputs, labels
    budget = max(1, round(mask_prob * sum(e - s for _, s, e in cands)))
    cands.sort(reverse=True)
    chosen, covered = [], 0
    for _, s, e in cands:
        if covered + (e - s) <= budget:
            chosen.append((s, e))
            covered += e - s
            if covered >= budget:
                break
    if not chosen:  # every word is longer than the budget: take the top-ranked one
        chosen = [cands[0][1:]]
    lo, hi = random_range
    for s, e in chosen:
        r = rng.random()
        for i in range(s, e):
            labels[i] = ids[i]
            if r < 0.8:
                inputs[i] = mask_id
            elif r < 0.9:
                inputs[i] = rng.randrange(lo, hi)
    return inputs, labels


# ---------------------------------------------------------------- corpus windows

@dataclass
class Doc:
    doc_id: str
    text: str
    ids: list[int]             # one token id per character
    starts: list[int]          # word start offsets (sorted)
    spans: list[tuple[int, int]]
    weights: list[float]
    sample_weight: float = 1.0  # windows are drawn in proportion to length × sample_weight


class WindowSampler:
    """Random windows of max_len tokens over the documents, so a small corpus still yields varied batches."""

    def __init__(self, docs: list[Doc], seq_len: int, tok, mask_prob: float, rng: random.Random):
        self.docs, self.rng, self.mask_prob = docs, rng, mask_prob
        self.width = seq_len - 2
        self.seq_len = seq_len
        self.cum = []
        total = 0
        for d in docs:
            total += max(1, round(len(d.text) * d.sample_weight))
            self.cum.append(total)
        self.cls, self.sep, self.pad, self.mask = (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id,
                                                   tok.mask_token_id)
        self.random_range = (len(SPECIALS), len(tok))

    def pick(self) -> Doc:
        """A document, drawn in proportion to length × sample_weight."""
        return self.docs[bisect.bisect_right(self.cum, self.rng.randrange(self.cum[-1]))]

    def window(self) -> tuple[list[int], list[int]]:
        d = self.pick()
        off = self.rng.randint(0, max(0, len(d.text) - self.width))
        end = min(len(d.text), off + self.width)
        first = max(0, bisect.bisect_right(d.starts, off) - 1)
        spans, weights = [], []
        for k in range(first, len(d.spans)):
            s, e = d.spans[k]
            if s >= end:
                break
            spans.append((max(s, off) - off, min(e, end) - off))
            weights.append(d.weights[k])
        inputs, labels = whole_word_mask(d.ids[off:end], spans, weights, self.rng, self.mask_prob,
                                         self.mask, self.random_range)
        return [self.cls, *inputs, self.sep], [-100, *labels, -100]

    def batch(self, size: int) -> dict[str, torch.Tensor]:
        rows = [self.window() for _ in range(size)]
        n = self.seq_len
        ids = torch.full((size, n), self.pad, dtype=torch.long)
        labels = torch.full((size, n), -100, dtype=torch.long)
        att = torch.zeros((size, n), dtype=torch.long)
        for i, (x, y) in enumerate(rows):
            ids[i, :len(x)] = torch.tensor(x)
            labels[i, :len(y)] = torch.tensor(y)
            att[i, :len(x)] = 1
        return {"input_ids": ids, "attention_mask": att, "labels": labels}


# ---------------------------------------------------------------- config and corpus

def load_config(config_path: str | Path | None = None, overrides: dict | None = None) -> PretrainSettings:
    """The YAML file ← overrides (nested dicts merge, so tests can shrink a run)."""
    return load_settings(PretrainSettings, config_path or CONFIGS / "pretrain.yaml", overrides)


def excluded_doc_ids(cfg: PretrainSettings, doc_ids: Sequence[str] = ()) -> set[str]:
    """Explicit exclusions (ids or patterns) plus the held-out split, which must never leak into
    pretraining; patterns are matched against `doc_ids` (the corpus files' stems)."""
    ids = {d for e in cfg.exclude_doc_ids for d in expand(str(e), doc_ids)}
    if cfg.exclude_split:
        splits = load_splits(resolve(cfg.splits_file))
        if cfg.exclude_split not in splits:
            raise ValueError(f"split {cfg.exclude_split!r} not found in {cfg.splits_file}")
        ids |= {d for e in splits[cfg.exclude_split] for d in expand(e, doc_ids)}
    return ids


def corpus_entries(cfg: PretrainSettings) -> list[tuple[str, float]]:
    """(glob, sample weight) per corpus entry: a plain glob, or {path: glob, weight: w} to draw a
    source's windows more (w > 1) or less often than its length alone would."""
    out = []
    for entry in cfg.corpus:
        if isinstance(entry, dict):
            out.append((str(entry["path"]), float(entry.get("weight", 1.0))))
        else:
            out.append((str(entry), 1.0))
    return out


def corpus_weights(cfg: PretrainSettings) -> dict[Path, float]:
    """Sample weight per corpus file (the last entry naming a file wins)."""
    return {Path(f): w for pattern, w in corpus_entries(cfg) for f in glob.glob(str(resolve(pattern)))}


def corpus_files(cfg: PretrainSettings) -> tuple[list[Path], list[str]]:
    """(files to train on, doc ids left out); the doc id is the file stem."""
    files = sorted(corpus_weights(cfg))
    skip = excluded_doc_ids(cfg, [f.stem for f in files])
    keep = [f for f in files if f.stem not in skip]
    if not keep:
        raise ValueError(f"no corpus files left from {cfg.corpus} after excluding {sorted(skip)}")
    return keep, sorted(f.stem for f in files if f.stem in skip)


def _make_docs(files: list[Path], tok, number_boost: float, sample_weights: dict | None = None) -> list[Doc]:
    docs = []
    for f in files:
        text = build_view(f.read_text(encoding="utf-8-sig")).text
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == len(text), f"tokenizer is not one-token-per-character on {f.name}"
        spans = word_spans(text)
        docs.append(Doc(f.stem, text, ids, [s for s, _ in spans], spans,
                        word_weights(text, spans, number_boost), (sample_weights or {}).get(f, 1.0)))
    return docs


# ---------------------------------------------------------------- checkpoints

def _lr_at(step: int, cfg: PretrainSettings) -> float:
    """Linear warmup then linear decay to 0 at max_steps; a pure function of step, so resuming
    with a larger max_steps just stretches the decay."""
    warm, total = max(1, cfg.warmup_steps), max(1, cfg.max_steps)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * max(0.0, (total - step) / max(1, total - warm))


def _save_checkpoint(ckpt: Path, model, optimizer, tok, state: dict, rng: random.Random) -> None:
    """Write to a temp folder and swap it in, so an interrupted save never leaves a broken checkpoint."""
    from safetensors.torch import save_file, save_model

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
    tok.save_pretrained(tmp / "tokenizer")
    v, internal, gauss = rng.getstate()
    (tmp / "state.json").write_text(json.dumps({**state, "py_rng": [v, list(internal), gauss]}),
                                    encoding="utf-8")
    old = ckpt.with_name(ckpt.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(ckpt: Path, model, optimizer, rng: random.Random) -> dict:
    from safetensors.torch import load_file, load_model

    load_model(model, str(ckpt / "model.safetensors"))
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    torch.set_rng_state(load_file(str(ckpt / "rng.safetensors"))["torch_rng"])
    state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
    v, internal, gauss = state.pop("py_rng")
    rng.setstate((v, tuple(internal), gauss))
    return state


def _plot(history: list[dict], path: Path) -> None:
    """Loss (and masked accuracy) curve; the Agg canvas avoids touching any global backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["loss"] for h in history], color="tab:blue", label="MLM loss")
    ax.set_xlabel("step")
    ax.set_ylabel("MLM loss", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["mlm_acc"] for h in history], color="tab:orange", label="masked accuracy")
    ax2.set_ylabel("masked-token accuracy", color="tab:orange")
    ax2.set_ylim(0, 1)
    ax.set_title("govfacts character BERT pretraining")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# ---------------------------------------------------------------- training

def _model_config(cfg: PretrainSettings, tok):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tok), pad_token_id=tok.pad_token_id, type_vocab_size=2, **cfg.model)


def pretrain(config_path: str | Path | None = None, overrides: dict | None = None, resume: bool = True) -> Path:
    """Pretrain (or resume pretraining) and return the output folder holding model + tokenizer.

    Stops at max_steps (checkpoint removed), at stop_at_step or after max_minutes (checkpoint kept
    so a later call resumes). The final model is written in every case.
    """
    from tqdm import tqdm
    from transformers import BertForMaskedLM

    if isinstance(overrides, bool):
        raise TypeError("pass resume as a keyword: pretrain(config_path, resume=...)")
    t0 = time.monotonic()
    cfg = load_config(config_path, overrides)
    torch.set_num_threads(2)
    out = resolve(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint"
    if not resume:
        shutil.rmtree(ckpt, ignore_errors=True)
    resuming = (ckpt / "state.json").exists()

    files, left_out = corpus_files(cfg)
    init = resolve(cfg.init_from) if cfg.init_from else None
    if resuming:  # the vocabulary must be the checkpoint's, even if the corpus changed since
        tok = load_tokenizer(ckpt / "tokenizer")
    elif init is not None:  # continued pretraining keeps the encoder's vocabulary
        tok = load_tokenizer(init)
    else:
        texts = [build_view(f.read_text(encoding="utf-8-sig")).text for f in files]
        tok = build_tokenizer(texts, resolve(cfg.tokenizer_dir or out))
    docs = _make_docs(files, tok, cfg.number_boost, corpus_weights(cfg))

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    model = (BertForMaskedLM.from_pretrained(str(init), use_safetensors=True) if init is not None
             else BertForMaskedLM(_model_config(cfg, tok)))
    if cfg.max_len > model.config.max_position_embeddings:  # the config's model or the one continued from
        raise ValueError("max_len exceeds max_position_embeddings")
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)

    step, elapsed_before, history = 0, 0.0, []
    if resuming:
        state = _load_checkpoint(ckpt, model, optimizer, rng)
        if state["model_config"] != json.loads(json.dumps(model.config.to_diff_dict())):
            raise ValueError(f"{ckpt} was written for another model config; pass resume=False to restart")
        step, elapsed_before, history = state["step"], state["elapsed"], state["history"]
        log.info("resuming from step %d", step)
    sampler = WindowSampler(docs, cfg.max_len, tok, cfg.mask_prob, rng)

    def checkpoint():
        _save_checkpoint(ckpt, model, optimizer, tok, {
            "step": step, "elapsed": elapsed_before + time.monotonic() - t_train,
            "history": history, "model_config": model.config.to_diff_dict()}, rng)

    max_steps = cfg.max_steps
    stop_at = min(max_steps, cfg.stop_at_step or max_steps)
    budget = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    reason = "max_steps"
    acc_loss, acc_hit, acc_n, acc_steps = 0.0, 0, 0, 0
    t_train = time.monotonic()
    model.train()
    bar = tqdm(total=max_steps, initial=step, desc="pretrain", disable=not cfg.progress, dynamic_ncols=True)
    try:
        while step < stop_at:
            if time.monotonic() - t0 >= budget:
                reason = "max_minutes"
                break
            for g in optimizer.param_groups:
                g["lr"] = _lr_at(step, cfg)
            b = sampler.batch(cfg.batch_size)
            hidden = model.bert(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
            sel = b["labels"] != -100
            logits = model.cls(hidden[sel])  # vocabulary logits only where a label exists: far cheaper
            target = b["labels"][sel]
            loss = F.cross_entropy(logits, target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            step += 1
            acc_loss += loss.item()
            acc_hit += int((logits.argmax(-1) == target).sum())
            acc_n += int(target.numel())
            acc_steps += 1
            bar.update(1)
            if step % cfg.log_every == 0 or step == stop_at:
                history.append({"step": step, "loss": acc_loss / acc_steps, "mlm_acc": acc_hit / max(1, acc_n),
                                "lr": _lr_at(step - 1, cfg),
                                "elapsed": round(elapsed_before + time.monotonic() - t_train, 2)})
                bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", acc=f"{history[-1]['mlm_acc']:.3f}")
                acc_loss, acc_hit, acc_n, acc_steps = 0.0, 0, 0, 0
            if step % cfg.checkpoint_every == 0 and step < max_steps:
                checkpoint()
        else:
            reason = "max_steps" if step >= max_steps else "stop_at_step"
    except KeyboardInterrupt:
        checkpoint()
        bar.close()
        raise
    bar.close()
    if acc_steps:  # a partial logging interval before a time stop
        history.append({"step": step, "loss": acc_loss / acc_steps, "mlm_acc": acc_hit / max(1, acc_n),
                        "lr": _lr_at(step - 1, cfg), "elapsed": round(elapsed_before + time.monotonic() - t_train, 2)})

    done = step >= max_steps
    if not done or cfg.keep_checkpoint:
        checkpoint()
    model.save_pretrained(out)  # transformers 5 always writes model.safetensors
    tok.save_pretrained(out)
    run_seconds = time.monotonic() - t_train
    (out / "pretrain_log.json").write_text(json.dumps({
        "step": step, "max_steps": max_steps, "stopped_by": reason, "finished": done,
        "elapsed": round(elapsed_before + run_seconds, 2),
        "corpus": [f.stem for f in files], "excluded": left_out,
        "corpus_chars": sum(len(d.text) for d in docs), "vocab_size": len(tok),
        "parameters": sum(p.numel() for p in model.parameters()),
        "config": dataclasses.asdict(cfg), "history": history,
    }, ensure_ascii=False, indent=1), encoding="utf-8")
    if history:
        _plot(history, out / "mlm_loss.png")
    if done and not cfg.keep_checkpoint:
        shutil.rmtree(ckpt, ignore_errors=True)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", nargs="?", default=str(CONFIGS / "pretrain.yaml"))
    ap.add_argument("--fresh", action="store_true", help="ignore and delete an existing checkpoint")
    ap.add_argument("--max-minutes", type=float)
    ap.add_argument("--max-steps", type=int)
    a = ap.parse_args(argv)
    over = {k: v for k, v in {"max_minutes": a.max_minutes, "max_steps": a.max_steps}.items() if v is not None}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(pretrain(a.config, over, resume=not a.fresh))


if __name__ == "__main__":
    main()
