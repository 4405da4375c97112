"""Ablation of the tagger: rules vs tagger from random init vs tagger from our pretrained base, and the
explicit tagger+rules ensemble. Fine-tunes the variants (configs/finetune.yaml settings), scores each on
the dev and test splits and writes runs/ablation/ablation.json + ablation.md.

    .venv/bin/python bench/ablation.py [--skip-train] [--set KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from govfacts.paths import ANNOTATIONS, MODELS, ROOT

RUNS = ROOT / "runs" / "ablation"


def random_base(base: Path, out: Path, seed: int = 0) -> Path:
    """The pretrained base's architecture and tokenizer with freshly initialised weights."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, BertForMaskedLM

    torch.manual_seed(seed)
    model = BertForMaskedLM(AutoConfig.from_pretrained(base))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def main() -> None:
    from govfacts.infer.ensemble import EnsembleExtractor
    from govfacts.infer.rules import RuleExtractor
    from govfacts.infer.tagger import Tagger
    from govfacts.train.evaluate import evaluate_predictions, load_gold, predict
    from govfacts.train.finetune import finetune

    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    over = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    RUNS.mkdir(parents=True, exist_ok=True)
    base = MODELS / "govfacts-base-zh"
    variants = {"tagger-random-init": RUNS / "random-base", "tagger-pretrained": base}
    timing = {}
    if not args.skip_train:
        random_base(base, RUNS / "random-base")
        for name, b in variants.items():
            t0 = time.time()
            finetune(None, {**over, "base_model": str(b), "output_dir": str(RUNS / name)})
            timing[name] = round(time.time() - t0, 1)
    rules = RuleExtractor()
    extractors = {"rules": rules}
    for name in variants:
        tg = Tagger.from_pretrained(RUNS / name)
        extractors[name] = tg
        extractors[f"{name}+rules-ensemble"] = EnsembleExtractor(tg, rules)
    results = {"timing_seconds": timing, "splits": {}}
    for split in ("dev", "test"):
        docs, _ = load_gold([ANNOTATIONS], split)
        results["splits"][split] = {}
        for name, ex in extractors.items():
            r = evaluate_predictions(docs, predict(ex, docs))
            results["splits"][split][name] = {
                "entity_micro_f1": r["entity"]["micro avg"]["f1-score"],
                "entity_macro_f1": r["entity"]["macro avg"]["f1-score"],
                "fact_precision": r["fact"]["precision"], "fact_recall": r["fact"]["recall"], "fact_f1": r["fact"]["f1"],
                "ece": r["calibration"]["ece"],
                "per_label_entity_f1": {k: v["f1-score"] for k, v in r["entity"].items() if k.isupper()},
                "support": {k: v["support"] for k, v in r["entity"].items() if k.isupper()}}
    (RUNS / "ablation.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = ["| variant | dev entity F1 | dev fact F1 | test entity F1 (micro) | test entity F1 (macro) | test fact P | "
             "test fact R | test fact F1 |", "|---|---|---|---|---|---|---|---|"]
    for name in extractors:
        d, t = results["splits"]["dev"][name], results["splits"]["test"][name]
        lines.append(f"| {name} | {d['entity_micro_f1']:.3f} | {d['fact_f1']:.3f} | {t['entity_micro_f1']:.3f} | "
                     f"{t['entity_macro_f1']:.3f} | {t['fact_precision']:.3f} | {t['fact_recall']:.3f} | {t['fact_f1']:.3f} |")
    labels = sorted(results["splits"]["test"]["rules"]["per_label_entity_f1"])
    lines += ["", "Test entity F1 per label (seqeval strict):", "",
              "| label | support | " + " | ".join(extractors) + " |", "|---|---|" + "---|" * len(extractors)]
    for lab in labels:
        sup = int(results["splits"]["test"]["rules"]["support"].get(lab, 0))
        lines.append(f"| {lab} | {sup} | " + " | ".join(
            f"{results['splits']['test'][n]['per_label_entity_f1'].get(lab, 0):.3f}" for n in extractors) + " |")
    (RUNS / "ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
