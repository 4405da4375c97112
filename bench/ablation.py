"""Ablation of the tagger, every variant fine-tuned with configs/finetune.yaml and calibrated on dev
(temperature, confidence map and score threshold, infer/calibrate.py) the same way, then scored on dev and test:

* rules (baseline);
* tagger with rule hints (configs/finetune.yaml as is) and without (`rule_hints: false`), from each
  pretrained base given with --base NAME=DIR (default: models/govfacts-base-zh), and with hints from a
  randomly initialised encoder (same architecture and tokenizer as the first base);
* decoding ablations of the first hinted variant: without quantity anchoring, reading every sentence;
* explicit ensembles of the unhinted tagger with the rules in both orders (`A+B`: A decides, B fills gaps).

    .venv/bin/python bench/ablation.py [--base NAME=DIR ...] [--skip-train] [--set KEY=VALUE ...]

Writes runs/ablation/ablation.json and ablation.md (a markdown table for the model card).
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


def scores(docs, extractor) -> dict:
    from govfacts.evaluate.report import evaluate_predictions, predict

    r = evaluate_predictions(docs, predict(extractor, docs))
    return {"entity_micro_f1": r["entity"]["micro avg"]["f1-score"],
            "entity_macro_f1": r["entity"]["macro avg"]["f1-score"],
            "fact_precision": r["fact"]["precision"], "fact_recall": r["fact"]["recall"], "fact_f1": r["fact"]["f1"],
            "ece": r["calibration"]["ece"],
            "per_label_entity_f1": {k: v["f1-score"] for k, v in r["entity"].items() if k.isupper()},
            "support": {k: v["support"] for k, v in r["entity"].items() if k.isupper()}}


def main() -> None:
    from govfacts.train.calibrate import calibrate
    from govfacts.infer.ensemble import EnsembleExtractor
    from govfacts.infer.rules import RuleExtractor
    from govfacts.infer.tagger import Tagger
    from govfacts.annotations import load_gold
    from govfacts.train.finetune import finetune

    ap = argparse.ArgumentParser()
    ap.add_argument("--base", action="append", default=[], help="NAME=DIR of a pretrained base (repeatable)")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    over = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    RUNS.mkdir(parents=True, exist_ok=True)
    bases = dict(b.split("=", 1) for b in args.base) or {"pretrained": str(MODELS / "govfacts-base-zh")}
    first = next(iter(bases.values()))
    runs: dict[str, tuple[Path, dict]] = {}  # run dir name -> (base, overrides)
    for name, b in bases.items():
        runs[f"tagger-{name}-hints"] = (Path(b), {"rule_hints": True})
        runs[f"tagger-{name}"] = (Path(b), {"rule_hints": False})
    runs["tagger-random-init-hints"] = (RUNS / "random-base", {"rule_hints": True})
    timing = {}
    if not args.skip_train:
        random_base(Path(first), RUNS / "random-base")
        for name, (b, o) in runs.items():
            t0 = time.time()
            finetune(None, {**over, **o, "base_model": str(b), "output_dir": str(RUNS / name)})
            calibrate(RUNS / name, int8=False)
            timing[name] = round(time.time() - t0, 1)
    rules = RuleExtractor()
    extractors = {"rules": rules}
    main_name = next(iter(runs))
    for name in runs:
        tg = Tagger.from_pretrained(RUNS / name)
        extractors[name] = tg
        if name == main_name:
            extractors[f"{name}, no anchoring"] = Tagger.from_pretrained(RUNS / name, anchor=False)
            extractors[f"{name}, every sentence read"] = Tagger.from_pretrained(RUNS / name, skip_plain=False)
        if not name.endswith("-hints"):
            extractors[f"{name}+rules"] = EnsembleExtractor(tg, rules)
            extractors[f"rules+{name}"] = EnsembleExtractor(rules, tg)
    variants = runs
    results = {"timing_seconds": timing, "splits": {}}
    for split in ("dev", "test"):
        docs, _ = load_gold([ANNOTATIONS], split)
        results["splits"][split] = {name: scores(docs, ex) for name, ex in extractors.items()}
    (RUNS / "ablation.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = ["| variant | dev fact F1 | test entity F1 (micro) | test entity F1 (macro) | test fact P | "
             "test fact R | test fact F1 | test ECE |", "|---|---|---|---|---|---|---|---|"]
    for name in extractors:
        d, t = results["splits"]["dev"][name], results["splits"]["test"][name]
        ece = "–" if t["ece"] is None else f"{t['ece']:.3f}"
        lines.append(f"| {name} | {d['fact_f1']:.3f} | {t['entity_micro_f1']:.3f} | {t['entity_macro_f1']:.3f} | "
                     f"{t['fact_precision']:.3f} | {t['fact_recall']:.3f} | {t['fact_f1']:.3f} | {ece} |")
    cols = ["rules", *variants]
    labels = sorted(set().union(*(results["splits"]["test"][n]["support"] for n in cols)))
    lines += ["", "Test entity F1 per label (seqeval strict):", "",
              "| label | support | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for lab in labels:
        sup = int(results["splits"]["test"]["rules"]["support"].get(lab, 0))
        lines.append(f"| {lab} | {sup} | " + " | ".join(
            f"{results['splits']['test'][n]['per_label_entity_f1'].get(lab, 0):.3f}" for n in cols) + " |")
    (RUNS / "ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
