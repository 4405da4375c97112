"""`govfacts studio retrain`: fine-tune a candidate on the corpus, compare it with the current model on
the test split (the one scorer, through `govfacts evaluate`'s report) and promote it only if better."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from govfacts.annotations import load_gold
from govfacts.atomic import replace_dir
from govfacts.evaluate.render import write_report
from govfacts.evaluate.report import build_report
from govfacts.infer.loader import extractor_id, load
from govfacts.paths import ROOT
from govfacts.studio.client import StudioError
from govfacts.train.finetune import finetune


@dataclass
class RetrainResult:
    candidate: Path
    current_name: str
    candidate_name: str
    current: dict
    new: dict
    promoted: bool
    reason: str
    report_dir: Optional[Path] = None
    model_dir: Optional[Path] = None


def headline(model_report: dict) -> dict:
    e = model_report["entity"].get("micro avg", {})
    return {"fact_f1": float(model_report["fact"]["f1"]), "fact_p": float(model_report["fact"]["precision"]),
            "fact_r": float(model_report["fact"]["recall"]), "entity_f1": float(e.get("f1-score", 0.0))}


def is_better(new: dict, old: dict) -> bool:
    """Fact F1 decides; entity F1 breaks a tie."""
    return (round(new["fact_f1"], 6), round(new["entity_f1"], 6)) > (round(old["fact_f1"], 6), round(old["entity_f1"], 6))


def promote(candidate: Path, model_dir: Path) -> None:
    """Replace `model_dir` by a copy of `candidate` (copied beside it, then swapped into place)."""
    replace_dir(model_dir, lambda tmp: shutil.copytree(candidate, tmp))


def retrain(annotations_dir: Path, model_dir: Path, config: Optional[Path] = None, overrides: Optional[dict] = None,
            candidate_dir: Optional[Path] = None, force: bool = False, runs_dir: Optional[Path] = None,
            log: Callable[[str], None] = lambda s: None) -> RetrainResult:
    """Fine-tune a candidate on the corpus, score it against the current model on the test split and
    promote it into `model_dir` only when it is better (or when forced)."""
    annotations_dir, model_dir = Path(annotations_dir).resolve(), Path(model_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if candidate_dir is None:
        base = Path(runs_dir or ROOT / "runs" / "studio-retrain") / stamp
        n = 1
        while base.exists():
            n += 1
            base = base.with_name(f"{stamp}-{n}")
        candidate_dir = base / "candidate"
    candidate_dir = Path(candidate_dir)
    ov = {"annotations": str(annotations_dir), "splits": str(annotations_dir / "splits.yaml"),
          **(overrides or {}), "output_dir": str(candidate_dir)}
    log(f"fine-tuning a candidate into {candidate_dir}")
    cand_path = finetune(config, ov)
    docs, problems = load_gold([annotations_dir / "tasks"], "test", annotations_dir / "splits.yaml")
    if not docs:
        raise StudioError(f"no test documents in {annotations_dir / 'splits.yaml'}: cannot compare models")
    current = load(str(model_dir)) if (model_dir / "config.json").exists() else load("rules")
    candidate = load(str(cand_path))
    cur_name, cand_name = f"current {extractor_id(current)}", f"candidate {extractor_id(candidate)}"
    if cur_name.split(" ", 1)[1] == cand_name.split(" ", 1)[1]:
        cand_name += " (new)"
    log(f"evaluating on the test split ({len(docs)} documents)")
    report = build_report(docs, {cur_name: current, cand_name: candidate}, f"{annotations_dir.name} [test]")
    report_dir = Path(cand_path).parent / "eval"
    write_report(report, report_dir)
    old, new = headline(report["models"][cur_name]), headline(report["models"][cand_name])
    better = is_better(new, old)
    if better or force:
        promote(Path(cand_path), model_dir)
        reason = "better on the test split" if better else "forced (--force) although not better"
    else:
        reason = "not better on the test split: the current model stays"
    return RetrainResult(Path(cand_path), cur_name, cand_name, old, new, better or force, reason, report_dir, model_dir)
