"""`govfacts studio retrain`: fine-tune a candidate on the corpus, compare it with the current model on
the test split as it was before the pulls since the last retrain (the one scorer, through `govfacts
evaluate`'s report) and promote it only if better; the outcome goes to the retrain record."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from govfacts.annotations import load_gold, write_tasks
from govfacts.atomic import replace_dir
from govfacts.evaluate.render import write_report
from govfacts.evaluate.report import build_report
from govfacts.infer.loader import extractor_id, load
from govfacts.paths import ROOT
from govfacts.studio.client import StudioError
from govfacts.studio.records import RETRAIN, now, write_record
from govfacts.studio.testsplit import comparison_split, release_baseline
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
    test_note: str = ""
    test_hash: str = ""
    candidate_removed: bool = False
    seconds: float = 0.0

    def record(self) -> dict:
        """The retrain record (`studio status`, the ML backend's /health and log)."""
        return {"time": now(), "current_name": self.current_name, "candidate_name": self.candidate_name,
                "current": self.current, "new": self.new, "promoted": self.promoted, "reason": self.reason,
                "test_split": self.test_note, "test_hash": self.test_hash, "model_dir": str(self.model_dir),
                "candidate": None if self.candidate_removed else str(self.candidate),
                "report": str(self.report_dir / "report.html") if self.report_dir else None, "seconds": self.seconds}


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


def prune_candidates(runs_base: Path, keep: int) -> list[Path]:
    """Remove the candidate models of all runs under `runs_base` but the newest `keep` (their evaluation
    reports stay): a candidate is a copy of a whole model, and one is made by every retrain."""
    cands = sorted((p for p in Path(runs_base).glob("*/candidate") if p.is_dir()), key=lambda p: p.parent.name)
    gone = cands[:max(0, len(cands) - max(0, keep))]
    for c in gone:
        shutil.rmtree(c, ignore_errors=True)
    return gone


def _run_dir(runs_dir: Optional[Path]) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir or ROOT / "runs" / "studio-retrain") / stamp
    n = 1
    while base.exists():
        n += 1
        base = base.with_name(f"{stamp}-{n}")
    return base


def retrain(annotations_dir: Path, model_dir: Path, config: Optional[Path] = None, overrides: Optional[dict] = None,
            candidate_dir: Optional[Path] = None, force: bool = False, runs_dir: Optional[Path] = None,
            keep_candidates: Optional[int] = None, log: Callable[[str], None] = lambda s: None) -> RetrainResult:
    """Fine-tune a candidate on the corpus, score it against the current model on the test split as it was
    before the pulls since the last retrain (testsplit) and promote it into `model_dir` only when it is
    better (or when forced). With an automatic candidate folder (under `runs_dir`), only the newest
    `keep_candidates` candidates are kept, and an interrupted run removes its own."""
    t0 = time.monotonic()
    annotations_dir, model_dir = Path(annotations_dir).resolve(), Path(model_dir)
    auto = candidate_dir is None
    candidate_dir = Path(candidate_dir) if candidate_dir else _run_dir(runs_dir) / "candidate"
    split = comparison_split(annotations_dir)
    if not split.tasks:
        raise StudioError(f"no test documents in {annotations_dir / 'splits.yaml'}: cannot compare models")
    ov = {"annotations": str(annotations_dir), "splits": str(annotations_dir / "splits.yaml"),
          **(overrides or {}), "output_dir": str(candidate_dir)}
    try:
        log(f"fine-tuning a candidate into {candidate_dir}")
        cand_path = finetune(config, ov)
        with tempfile.TemporaryDirectory(prefix="govfacts-test-split-") as tmp:
            gold_file = Path(tmp) / "test.json"
            write_tasks(gold_file, split.tasks)
            docs, _ = load_gold([gold_file])
        current = load(str(model_dir)) if (model_dir / "config.json").exists() else load("rules")
        candidate = load(str(cand_path))
        cur_name, cand_name = f"current {extractor_id(current)}", f"candidate {extractor_id(candidate)}"
        if cur_name.split(" ", 1)[1] == cand_name.split(" ", 1)[1]:
            cand_name += " (new)"
        log(split.note())
        report = build_report(docs, {cur_name: current, cand_name: candidate}, f"{annotations_dir.name} [test]")
        report_dir = Path(cand_path).parent / "eval"
        write_report(report, report_dir)
    except BaseException:  # interrupted or failed: a half-made candidate is no use to anyone
        if auto:
            shutil.rmtree(candidate_dir, ignore_errors=True)
        raise
    old, new = headline(report["models"][cur_name]), headline(report["models"][cand_name])
    better = is_better(new, old)
    if better or force:
        promote(Path(cand_path), model_dir)
        reason = "better on the test split" if better else "forced (--force) although not better"
    else:
        reason = "not better on the test split: the current model stays"
    res = RetrainResult(Path(cand_path), cur_name, cand_name, old, new, better or force, reason, report_dir, model_dir,
                        test_note=split.note(), test_hash=split.hash)
    if auto and keep_candidates is not None:
        res.candidate_removed = Path(cand_path) in prune_candidates(candidate_dir.parent.parent, keep_candidates)
    release_baseline(annotations_dir)
    res.seconds = round(time.monotonic() - t0, 1)
    write_record(annotations_dir, RETRAIN, res.record())
    return res
