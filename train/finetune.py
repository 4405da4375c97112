"""Fine-tune a token classifier for the 23 span labels on the annotated reports.

Plain torch loop (small data, CPU): windows of the train split, AdamW with linear warm-up/decay,
and after EVERY epoch a seqeval strict IOB2 entity F1 on the dev split computed on whole documents
through `Tagger` — the same windowing, merging and constrained decoding as at inference, so the
selected checkpoint is the one that extracts best, not the one with the best window loss. The best
epoch (dev F1, ties broken by dev loss) is kept in memory and written once at the end, with the
tokenizer and `train_log.json`, into a fresh directory that replaces `output_dir` atomically.

    .venv/bin/python -m govfacts.train.finetune [configs/finetune.yaml] [key=value ...]
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import yaml

from govfacts.annotations import load_split
from govfacts.atomic import replace_dir
from govfacts.infer.checkpoint import load_torch_model
from govfacts.infer.hints import enable_hints, hint_vocab
from govfacts.infer.rules import RuleExtractor
from govfacts.infer.tagger import Tagger, available_cpus
from govfacts.labels import default_labels
from govfacts.paths import CONFIGS, resolve, resolve_model
from govfacts.scoring import score
from govfacts.settings import load_settings
from govfacts.textview import build_view
from govfacts.train.dataset import IGNORE_INDEX, HintSpec, build_dataset, doc_view_tags
from govfacts.train.prune import narrow_ffn, narrow_hidden

@dataclass
class FinetuneSettings:
    """configs/finetune.yaml (every default lives there; the file documents each key)."""

    base_model: str
    base_layers: Optional[int]
    annotations: str
    splits: str
    output_dir: str
    max_len: int
    stride: int
    epochs: int
    batch_size: int
    lr: float
    head_lr: Optional[float]
    weight_decay: float
    warmup_ratio: float
    max_grad_norm: Optional[float]
    seed: int
    max_minutes: Optional[float]
    max_steps: Optional[int]
    eval_batch_size: int
    num_threads: Optional[int]
    progress: bool
    augment: int
    number_forms: int
    hedges: int
    focus: Optional[list[int]]
    unhedged: bool
    mention_swaps: int
    o_weight: float
    rare_label_min: int
    eval_every: int
    anchor: bool
    skip_plain: bool
    rule_hints: bool
    hint_drop: float
    hint_swap: float
    hint_quantities: bool
    hint_vetoes: bool
    select_from_epoch: int
    teacher: Optional[str] = None
    base_ffn: Optional[int] = None
    base_hidden: Optional[int] = None
    kd_alpha: float = 0.9
    kd_temperature: float = 1.0
    breakdowns: int = 0
    breakdown_units: str = "configs/breakdown_units.yaml"
    empty_o_weight: Optional[float] = None


def load_config(config_path: str | Path | None = None, overrides: Optional[dict] = None) -> FinetuneSettings:
    """configs/finetune.yaml (or `config_path`) with `overrides`; unknown or missing keys are an error."""
    return load_settings(FinetuneSettings, config_path or CONFIGS / "finetune.yaml", overrides)


def breakdown_units(cfg: FinetuneSettings) -> list[str]:
    """The part names `breakdowns` draws from (`breakdown_units`, a YAML file with a `units` list); none without it."""
    if not int(cfg.breakdowns):
        return []
    path = resolve(cfg.breakdown_units)
    units = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("units") or []
    if not units or not all(isinstance(u, str) and u.strip() for u in units):
        raise ValueError(f"{path}: `units` must be a non-empty list of names (breakdown parts)")
    return [u.strip() for u in units]


# -- evaluation -----------------------------------------------------------------------------------
def evaluate(tagger, docs: Sequence) -> dict:
    """Dev scores of `tagger` on whole annotated documents, read and decoded exactly as at inference:
    strict entity P/R/F1 and fact F1 from the one scorer (`govfacts.scoring`), per-label entity
    scores, and the loss: the mean NLL of the gold tag under the merged per-char probabilities."""
    views = [build_view(d.text) for d in docs]
    probs = tagger.view_probs(views)
    preds = tagger.decode_views(views, probs)
    nll, n_chars = 0.0, 0
    label2id = {t: i for i, t in enumerate(tagger.tags)}
    for doc, view, (p, covered) in zip(docs, views, probs):
        _, gold = doc_view_tags(doc, view)
        for i, g in enumerate(gold):
            if g is not None and covered[i]:
                nll -= math.log(max(float(p[i, label2id[g]]), 1e-12))
                n_chars += 1
    s = score(list(docs), {d.doc_id: spans for d, spans in zip(docs, preds)})
    micro = s.entity.get("micro avg", {})
    return {"precision": float(micro.get("precision", 0.0)), "recall": float(micro.get("recall", 0.0)),
            "f1": float(micro.get("f1-score", 0.0)), "fact_f1": float(s.fact["f1"]),
            "loss": nll / max(1, n_chars),
            "per_label": {k: v for k, v in s.entity.items() if not k.endswith(" avg")}}


# -- training -------------------------------------------------------------------------------------
def span_counts(docs, window_labels: list[list[int]], copies: list[int], extra_labels: list[list[int]],
                labels) -> dict[str, dict[str, int]]:
    """Per label, what an epoch trains on: `gold` spans of the training documents (real), B- tags in the
    windows cut from them (`windows`; overlapping windows repeat a span), in augmented copies
    (`augmented`: perturbed digits, number forms, mention swaps) and in the rare-label repeats
    (`oversampled`). The model card lists them."""
    b_ids = {labels.label2id[f"B-{name}"]: name for name in labels.names}
    out = {name: {"gold": 0, "windows": 0, "augmented": 0, "oversampled": 0} for name in labels.names}
    for d in docs:
        for sp in d.spans:
            if sp.label in out:
                out[sp.label]["gold"] += 1
    for labs, copy in zip(window_labels, copies):
        for x in labs:
            if x in b_ids:
                out[b_ids[x]]["augmented" if copy else "windows"] += 1
    for labs in extra_labels:
        for x in labs:
            if x in b_ids:
                out[b_ids[x]]["oversampled"] += 1
    return out


def oversample_rare(rows: list[dict], labels, min_spans: int) -> list[dict]:
    """Extra copies of the windows holding a label with fewer than `min_spans` B- tags in `rows`,
    so that every label is seen about `min_spans` times per epoch (rare metrics otherwise drown in
    POSTS_PUBLISHED)."""
    if min_spans <= 0:
        return []
    b_ids = {labels.label2id[f"B-{name}"]: name for name in labels.names}
    counts: dict[str, int] = {}
    holders: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        for lab in set(r["labels"]):
            if lab in b_ids:
                counts[b_ids[lab]] = counts.get(b_ids[lab], 0) + r["labels"].count(lab)
                holders.setdefault(b_ids[lab], []).append(i)
    extra: list[dict] = []
    for name, n in sorted(counts.items()):
        if 0 < n < min_spans:
            reps = min(8, -(-min_spans // n) - 1)
            extra += [rows[i] for i in holders[name] for _ in range(reps)]
    return extra


def _collate(rows: list[dict], pad_id: int):
    import torch

    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    types = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    for i, r in enumerate(rows):
        k = len(r["input_ids"])
        ids[i, :k] = torch.tensor(r["input_ids"])
        mask[i, :k] = torch.tensor(r["attention_mask"])
        labels[i, :k] = torch.tensor(r["labels"])
        if "token_type_ids" in r:
            types[i, :k] = torch.tensor(r["token_type_ids"])
    return ids, mask, types, labels


def _teacher_logits(teacher, rows: list[dict], pad_id: int, batch_size: int = 64) -> list:
    """The teacher's logits of every training window, computed once (float16, one [tokens, tags] array per
    row): the windows and their hints are fixed for the whole run, so the teacher need not run every epoch."""
    import torch

    out: list = [None] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            ids, mask, types, _ = _collate([rows[i] for i in idx], pad_id)
            logits = teacher(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float().numpy()
            for j, i in enumerate(idx):
                out[i] = logits[j, :len(rows[i]["input_ids"])].astype(np.float16)
    return out


def _padded(arrays: list, width: int):
    import torch

    t = torch.zeros((len(arrays), width, arrays[0].shape[-1]), dtype=torch.float32)
    for i, a in enumerate(arrays):
        t[i, :len(a)] = torch.from_numpy(a.astype(np.float32))
    return t


def tag_loss(logits, labels, class_weight, o_id: int, row_o_weight=None):
    """Weighted cross-entropy over the labelled tokens, a weighted mean as `cross_entropy(weight=...)` takes it.
    `row_o_weight` ([batch]) replaces the O weight row by row: windows without a claim (negatives, claim-free
    stretches of reports) can weigh their O tags more, so that a rule hint on a non-disclosure quantity costs
    as much to keep as a claim costs to miss."""
    import torch

    flat = logits.reshape(-1, logits.shape[-1])
    if row_o_weight is None:
        return torch.nn.functional.cross_entropy(flat, labels.reshape(-1), weight=class_weight,
                                                 ignore_index=IGNORE_INDEX)
    nll = torch.nn.functional.cross_entropy(flat, labels.reshape(-1), ignore_index=IGNORE_INDEX,
                                            reduction="none").view(labels.shape)
    keep = labels != IGNORE_INDEX
    w = class_weight[labels.clamp(min=0)]
    w = torch.where(labels == o_id, row_o_weight[:, None].expand_as(w), w) * keep
    return (nll * w).sum() / w.sum().clamp(min=1e-12)


def distillation_loss(student, teacher, labels, temperature: float):
    """KL(teacher ‖ student) of the tag distributions softened by `temperature`, times T², over the tokens
    that carry a label: the student learns how sure the teacher is between tags, not only its argmax."""
    import torch

    keep = labels.reshape(-1) != IGNORE_INDEX
    s = torch.log_softmax(student.reshape(-1, student.shape[-1])[keep] / temperature, dim=-1)
    t = torch.log_softmax(teacher.reshape(-1, teacher.shape[-1])[keep] / temperature, dim=-1)
    if s.shape[0] == 0:
        return student.sum() * 0.0
    return torch.nn.functional.kl_div(s, t, log_target=True, reduction="batchmean") * temperature ** 2


def load_teacher(spec: str, labels, type_vocab: Optional[int]):
    """A fine-tuned tagger (directory) whose logits the student learns besides the gold tags; it must tag
    with the same labels and read the same hint types."""
    teacher = load_torch_model(str(resolve_model(spec)))
    if dict(teacher.config.id2label) != {int(k): v for k, v in labels.id2label.items()}:
        raise ValueError(f"teacher {spec}: its labels differ from configs/labels.yaml")
    if type_vocab is not None and teacher.config.type_vocab_size != type_vocab:
        raise ValueError(f"teacher {spec}: it reads {teacher.config.type_vocab_size} hint types, the student "
                         f"{type_vocab}")
    return teacher


def _param_groups(model, cfg: dict) -> list[dict]:
    """No weight decay on biases and norms; the new head may get its own (higher) learning rate."""
    prefix = getattr(model, "base_model_prefix", "") + "."
    groups: dict[tuple, list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        head = not name.startswith(prefix)
        no_decay = name.endswith("bias") or "norm" in name.lower()
        groups.setdefault((head, no_decay), []).append(p)
    out = []
    for (head, no_decay), params in groups.items():
        lr = cfg.head_lr if head and cfg.head_lr else cfg.lr
        out.append({"params": params, "lr": float(lr), "weight_decay": 0.0 if no_decay else float(cfg.weight_decay)})
    return out


def _load_base(spec: str, labels, layers: Optional[int] = None):
    """The base checkpoint with a fresh token-classification head (a fine-tuned tagger of the same labels keeps
    its own); `layers`: keep only its first N encoder layers (a smaller, faster tagger from the same pretraining)."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(spec, trust_remote_code=False)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{spec}: the tagger needs a fast tokenizer (offset_mapping)")
    base_cfg = AutoConfig.from_pretrained(spec, trust_remote_code=False)
    old = {int(k): v for k, v in (getattr(base_cfg, "id2label", None) or {}).items()}
    if len(old) == len(labels.bio_tags) and old != labels.id2label and \
            not all(v == f"LABEL_{k}" for k, v in old.items()):
        warnings.warn(f"{spec}: its classifier head has other labels of the same count; it is reused as is")
    model = AutoModelForTokenClassification.from_pretrained(
        spec, num_labels=len(labels.bio_tags), id2label=labels.id2label, label2id=labels.label2id,
        ignore_mismatched_sizes=True, trust_remote_code=False,
        **({"num_hidden_layers": int(layers)} if layers else {}))
    for key in [k for k in vars(model.config) if k.startswith("govfacts_")]:
        delattr(model.config, key)  # a fine-tuned tagger as base lends its weights, not its reading or calibration
    return model, tokenizer


def finetune(config_path: str | Path | None = None, overrides: Optional[dict] = None) -> Path:
    """Train, select the best epoch by dev F1 and save it; returns the output directory."""
    import torch
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup, set_seed

    cfg = load_config(config_path, overrides)
    t0 = time.monotonic()
    set_seed(int(cfg.seed))
    torch.set_num_threads(int(cfg.num_threads or available_cpus()))
    labels = default_labels()
    base = resolve_model(str(cfg.base_model))
    out_dir = resolve(cfg.output_dir)
    ann, splits = resolve(cfg.annotations), resolve(cfg.splits)
    train_docs = load_split("train", ann, splits)
    dev_docs = load_split("dev", ann, splits)

    model, tokenizer = _load_base(base, labels, cfg.base_layers)
    if cfg.base_ffn:
        narrow_ffn(model, int(cfg.base_ffn))
    if cfg.base_hidden:
        narrow_hidden(model, int(cfg.base_hidden))
    max_len, stride = int(cfg.max_len), int(cfg.stride)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos and max_len > max_pos:
        raise ValueError(f"max_len {max_len} exceeds the model's {max_pos} positions")
    for k, v in {"govfacts_max_len": max_len, "govfacts_stride": stride, "govfacts_labels_version": labels.version,
                 "govfacts_base_model": str(cfg.base_model), "govfacts_temperature": 1.0,
                 "govfacts_anchor": bool(cfg.anchor), "govfacts_skip_plain": bool(cfg.skip_plain),
                 "govfacts_focus": [int(x) for x in cfg.focus] if cfg.focus else None,
                 "govfacts_unhedged": bool(cfg.unhedged)}.items():
        setattr(model.config, k, v)
    hints = None
    if cfg.rule_hints:
        hints = HintSpec(RuleExtractor(labels), float(cfg.hint_drop), float(cfg.hint_swap),
                         bool(cfg.hint_quantities), bool(cfg.hint_quantities and cfg.hint_vetoes))
        enable_hints(model, len(hint_vocab(labels.bio_tags, hints.quantities, hints.vetoes)))

    data = build_dataset(train_docs, tokenizer, labels, max_len, stride, augment=int(cfg.augment),
                         number_forms=int(cfg.number_forms), mention_swaps=int(cfg.mention_swaps),
                         hedges=int(cfg.hedges), focus=cfg.focus, unhedged=bool(cfg.unhedged),
                         seed=int(cfg.seed), skip_plain=bool(cfg.skip_plain), hints=hints,
                         breakdowns=int(cfg.breakdowns), units=breakdown_units(cfg))
    if len(data) == 0:
        raise ValueError("the train split yields no training windows")
    cols = [c for c in ("input_ids", "attention_mask", "labels", "token_type_ids") if c in data.column_names]
    rows = [{c: r[c] for c in cols} for r in data]
    extra = oversample_rare(rows, labels, int(cfg.rare_label_min))
    counts = span_counts(train_docs, [r["labels"] for r in rows], list(data["copy"]), [r["labels"] for r in extra],
                         labels)
    rows += extra
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    soft = None
    if cfg.teacher:
        teacher = load_teacher(str(cfg.teacher), labels, model.config.type_vocab_size if hints else None)
        soft = _teacher_logits(teacher, rows, pad_id, int(cfg.eval_batch_size))
        del teacher
    o_id = labels.label2id["O"]
    class_weight = torch.ones(len(labels.bio_tags))
    class_weight[o_id] = float(cfg.o_weight)
    empty = [all(t in (o_id, IGNORE_INDEX) for t in r["labels"]) for r in rows]  # windows without a claim
    row_o = None if cfg.empty_o_weight is None else torch.tensor(
        [float(cfg.empty_o_weight) if e else float(cfg.o_weight) for e in empty])
    bs = int(cfg.batch_size)
    steps_per_epoch = math.ceil(len(rows) / bs)
    total = int(cfg.epochs) * steps_per_epoch
    if cfg.max_steps:
        total = min(total, int(cfg.max_steps))
    optim = torch.optim.AdamW(_param_groups(model, cfg))
    sched = get_linear_schedule_with_warmup(optim, int(float(cfg.warmup_ratio) * total), max(1, total))
    gen = torch.Generator().manual_seed(int(cfg.seed))
    tagger = Tagger(model, tokenizer, name=out_dir.name, max_len=max_len, stride=stride,
                    batch_size=int(cfg.eval_batch_size), num_threads=cfg.num_threads)

    log: dict[str, Any] = {"base_model": str(cfg.base_model), "config": dataclasses.asdict(cfg), "labels_version": labels.version,
                           "train_docs": [d.doc_id for d in train_docs], "dev_docs": [d.doc_id for d in dev_docs],
                           "train_windows": len(rows), "empty_windows": sum(empty), "span_counts": counts, "epochs": []}
    best_key, best_state, best_epoch, best_eval = None, None, None, None
    step, stopped = 0, "completed"
    deadline = t0 + 60 * float(cfg.max_minutes) if cfg.max_minutes else None
    for epoch in range(1, int(cfg.epochs) + 1):
        model.train()
        order = torch.randperm(len(rows), generator=gen).tolist()
        losses = []
        bar = tqdm(range(0, len(order), bs), desc=f"epoch {epoch}", unit="batch", file=sys.stderr,
                   disable=not cfg.progress, dynamic_ncols=True, leave=False)
        for b in bar:
            batch = order[b:b + bs]
            ids, mask, types, lab = _collate([rows[i] for i in batch], pad_id)
            logits = model(input_ids=ids, attention_mask=mask, **({"token_type_ids": types} if hints else {})).logits
            loss = tag_loss(logits, lab, class_weight, o_id, None if row_o is None else row_o[batch])
            if soft is not None:
                a = float(cfg.kd_alpha)
                loss = (1 - a) * loss + a * distillation_loss(logits, _padded([soft[i] for i in batch], ids.shape[1]),
                                                              lab, float(cfg.kd_temperature))
            loss.backward()
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(cfg.max_grad_norm))
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            losses.append(loss.item())
            step += 1
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
            if step >= total:
                stopped = "max_steps" if step < int(cfg.epochs) * steps_per_epoch else "completed"
                break
            if deadline and time.monotonic() > deadline:
                stopped = "max_minutes"
                break
        bar.close()
        last = stopped != "completed" or step >= total or epoch == int(cfg.epochs)
        if not last and epoch % max(1, int(cfg.eval_every)):
            continue
        model.eval()
        ev = evaluate(tagger, dev_docs) if dev_docs else {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                           "loss": 0.0, "per_label": {}}
        rec = {"epoch": epoch, "steps": step, "train_loss": float(np.mean(losses)) if losses else None,
               "dev_precision": ev["precision"], "dev_recall": ev["recall"], "dev_f1": ev["f1"],
               "dev_loss": ev["loss"], "seconds": round(time.monotonic() - t0, 1)}
        log["epochs"].append(rec)
        tqdm.write(f"epoch {epoch}: loss {rec['train_loss']:.4f}  dev P {ev['precision']:.3f} R {ev['recall']:.3f} "
                   f"F1 {ev['f1']:.3f}  dev loss {ev['loss']:.4f}", file=sys.stderr)
        key = (ev["f1"], -ev["loss"])
        eligible = epoch >= int(cfg.select_from_epoch) or last  # not a checkpoint taken at a high learning rate
        if eligible and (best_key is None or key > best_key):
            best_key, best_epoch, best_eval = key, epoch, ev
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if stopped != "completed" or step >= total:
            break

    model.load_state_dict(best_state)
    log.update({"best_epoch": best_epoch, "best_dev_f1": best_eval["f1"], "best_dev_per_label": best_eval["per_label"],
                "stopped": stopped, "seconds": round(time.monotonic() - t0, 1)})
    _save(model, tokenizer, out_dir, log)
    return out_dir


TRUNCATION_KEYS = ("max_length", "stride", "truncation_side", "truncation_strategy")  # a base's used tokenizer


def _save(model, tokenizer, out_dir: Path, log: dict) -> None:
    """Write model (safetensors), tokenizer and log into a fresh directory that replaces `out_dir`."""
    import inspect

    def fill(tmp: Path) -> None:
        kw = {"safe_serialization": True} if "safe_serialization" in inspect.signature(model.save_pretrained).parameters else {}
        model.save_pretrained(tmp, **kw)  # transformers 5 always writes safetensors
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # windows truncate per call; a saved state would cut other users' inputs short
            backend.no_truncation()
            backend.no_padding()
        tokenizer.save_pretrained(tmp)
        tok_cfg = tmp / "tokenizer_config.json"
        if tok_cfg.exists():
            conf = json.loads(tok_cfg.read_text(encoding="utf-8"))
            if any(k in conf for k in TRUNCATION_KEYS):
                tok_cfg.write_text(json.dumps({k: v for k, v in conf.items() if k not in TRUNCATION_KEYS},
                                              ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        weights = sorted(tmp.glob("*.safetensors"))
        if not weights:
            raise RuntimeError("no safetensors weights were written")
        h = hashlib.sha256()
        for f in weights:
            h.update(f.read_bytes())
        version = h.hexdigest()[:12]
        cfg_path = tmp / "config.json"
        conf = json.loads(cfg_path.read_text(encoding="utf-8"))
        conf["govfacts_version"] = version
        cfg_path.write_text(json.dumps(conf, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        log["version"] = version
        (tmp / "train_log.json").write_text(json.dumps(log, ensure_ascii=False, indent=1, default=str) + "\n",
                                            encoding="utf-8")

    replace_dir(out_dir, fill)


def main(argv: Optional[list[str]] = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    config = argv.pop(0) if argv and "=" not in argv[0] else None
    overrides = {}
    for a in argv:
        k, _, v = a.partition("=")
        overrides[k] = yaml.safe_load(v)
    print(finetune(config, overrides))


if __name__ == "__main__":
    main()
