"""Recipe selection by grouped k-fold cross-validation over agencies.

One dev split of a few dozen documents cannot tell two fine-tuning recipes apart, and the hidden
evaluation holds agencies govfacts has never seen. So the labelled documents of the pooled splits
(train and dev; the test split is never read) are grouped by the agency that published them
(annotations/MANIFEST.tsv), the groups dealt into k folds balanced by gold spans, and every recipe is
fine-tuned k times per seed: on the other folds, with an inner dev group for epoch selection and
calibration, and scored on the held-out fold with the rules beside it. Per-document fact counts and
the predicted spans are kept (for error analysis and for scoring combinations later), so the summary gives each recipe's mean ± sd over folds×seeds, its pooled F1 and a paired
bootstrap against the rules and against the other recipes. Each (recipe, fold, seed) result is
written as soon as it is done and skipped when present: a long run resumes.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from fnmatch import fnmatchcase
import re
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import yaml

from govfacts.annotations import AnnotatedDoc, load_corpus
from govfacts.atomic import write_text_atomic
from govfacts.infer.api import extract_documents
from govfacts.infer.loader import InferSettings, load, taggers_in
from govfacts.infer.tagger import TaggerOptions
from govfacts.paths import CONFIGS, resolve
from govfacts.records import Document, Span
from govfacts.scoring import doc_counts, f1_of_counts, label_counts, match_facts, paired_bootstrap_counts
from govfacts.settings import load_settings
from govfacts.splits import split_members
from govfacts.train.calibrate import calibrate
from govfacts.train.finetune import finetune

_YEAR = re.compile(r"^(?P<head>.+?)-(19|20)\d\d[a-z]?(?P<tail>-.+)?$")


@dataclass(frozen=True)
class CrossvalSettings:
    """configs/crossval.yaml."""

    annotations: str
    splits: str
    pool: list  # splits whose documents are dealt into folds (never `test`)
    train_only: list  # doc-id patterns always trained on, never scored (sentences without claims)
    folds: int
    seeds: list
    inner_dev_share: float  # share of a fold run's training spans held out (whole groups) for epoch selection
    recipes: dict  # name → finetune overrides
    calibrate: bool  # fit temperature / threshold / confidence map on the inner dev, as the shipped model is
    out_dir: str
    keep_models: bool
    only_folds: Optional[list] = None  # run just these folds (a first look at a recipe where a fold shows its
                                       # problem); the summary then calls the recipe incomplete
    doc_groups: dict = dataclasses.field(default_factory=dict)  # name → doc-id patterns: scored apart as well


def load_cv_settings(path: str | Path | None = None, overrides: Optional[dict] = None) -> CrossvalSettings:
    s = load_settings(CrossvalSettings, path or CONFIGS / "crossval.yaml", overrides)
    if "test" in s.pool:
        raise ValueError("crossval: the test split is never pooled (it is held out for the final report)")
    if s.folds < 2:
        raise ValueError("crossval: folds must be >= 2")
    if s.only_folds is not None and (not s.only_folds or not all(
            isinstance(f, int) and 0 <= f < s.folds for f in s.only_folds)):
        raise ValueError(f"crossval: only_folds must list fold numbers from 0 to {s.folds - 1}; got {s.only_folds!r}")
    return s


def agency_of(doc_id: str, manifest: dict[str, dict]) -> str:
    """The agency that published a document: MANIFEST's agency, else its source's host, else its doc id
    without the year (gov-pingtan-2013 and gov-pingtan-2024 are one agency; gov-pingtan-2013-tax another)."""
    row = manifest.get(doc_id, {})
    if row.get("agency"):
        return row["agency"]
    m = _YEAR.match(doc_id)
    if m:
        return m.group("head") + (m.group("tail") or "")
    src = row.get("source", "")
    host = re.match(r"https?://([^/]+)", src)
    return host.group(1) if host else doc_id


def read_manifest(path: Path) -> dict[str, dict]:
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return {r["doc_id"]: r for r in csv.DictReader(lines, delimiter="\t")}


def make_folds(groups: dict[str, list[AnnotatedDoc]], k: int) -> list[list[str]]:
    """Groups dealt into `k` folds: largest first (by gold spans, then name), each to the fold with the
    fewest spans so far; deterministic."""
    folds: list[list[str]] = [[] for _ in range(k)]
    load_ = [0] * k
    for g in sorted(groups, key=lambda g: (-sum(len(d.spans) for d in groups[g]), g)):
        i = min(range(k), key=lambda j: (load_[j], j))
        folds[i].append(g)
        load_[i] += sum(len(d.spans) for d in groups[g])
    return folds


def inner_dev(groups: dict[str, list[AnnotatedDoc]], train_groups: list[str], share: float, seed: int) -> list[str]:
    """Whole groups of the training folds holding about `share` of their spans, drawn with `seed`."""
    import random

    order = sorted(train_groups)
    random.Random(seed).shuffle(order)
    total = sum(len(d.spans) for g in train_groups for d in groups[g])
    out, got = [], 0
    for g in order:
        if got >= share * total:
            break
        n = sum(len(d.spans) for d in groups[g])
        if n == 0 or (out and got + n > 2 * share * total):
            continue
        out.append(g)
        got += n
    return out


@dataclass
class Plan:
    groups: dict[str, list[AnnotatedDoc]]
    folds: list[list[str]]
    always: list[str]  # train-only doc ids


def plan(cfg: CrossvalSettings) -> Plan:
    ann = resolve(cfg.annotations)
    corpus = load_corpus(ann)
    members = split_members(resolve(cfg.splits), corpus)
    pooled = [d for sp in cfg.pool for d in members.get(sp, [])]
    always = [d for d in pooled if any(fnmatchcase(d, p) for p in cfg.train_only)]
    manifest = read_manifest(ann / "MANIFEST.tsv") if (ann / "MANIFEST.tsv").exists() else {}
    groups: dict[str, list[AnnotatedDoc]] = {}
    for d in pooled:
        if d not in always:
            groups.setdefault(agency_of(d, manifest), []).append(corpus[d])
    if len(groups) < cfg.folds:
        raise ValueError(f"crossval: {len(groups)} agencies cannot fill {cfg.folds} folds")
    return Plan(groups=groups, folds=make_folds(groups, cfg.folds), always=always)


def fold_recipe(recipe: dict, fold: int, seed: int) -> dict:
    """A recipe's fine-tuning overrides for one (fold, seed): a distillation teacher or a fine-tuned base is
    named per fold, as `…/base-f{fold}-s{seed}/model` (the fold models a run kept), since neither may have seen
    the held-out agencies."""
    out = dict(recipe)
    for key in ("teacher", "base_model"):
        if out.get(key):
            out[key] = str(out[key]).format(fold=fold, seed=seed)
    return out


def run_one(cfg: CrossvalSettings, p: Plan, recipe: str, fold: int, seed: int, out: Path) -> dict:
    """Fine-tune `recipe` without fold `fold`, calibrate on the inner dev, score tagger and rules on the fold."""
    held = p.folds[fold]
    train_groups = [g for i, f in enumerate(p.folds) if i != fold for g in f]
    dev_groups = inner_dev(p.groups, train_groups, cfg.inner_dev_share, seed)
    ids = lambda gs: [d.doc_id for g in gs for d in p.groups[g]]  # noqa: E731
    run_dir = out / f"{recipe}-f{fold}-s{seed}"
    splits = run_dir / "splits.yaml"
    run_dir.mkdir(parents=True, exist_ok=True)
    train_ids = ids([g for g in train_groups if g not in dev_groups]) + p.always
    splits.write_text(yaml.safe_dump({"train": train_ids, "dev": ids(dev_groups), "test": []}, allow_unicode=True),
                      encoding="utf-8")
    model_dir = run_dir / "model"
    over = {**fold_recipe(cfg.recipes[recipe] or {}, fold, seed), "annotations": str(resolve(cfg.annotations)),
            "splits": str(splits), "output_dir": str(model_dir), "seed": int(seed), "progress": False}
    finetune(None, over)
    if cfg.calibrate:
        calibrate(model_dir, resolve(cfg.annotations), splits, "dev", run_dir / "calibration", int8=False)
    docs = [d for g in held for d in p.groups[g]]
    doc_ids = [d.doc_id for d in docs]
    result = {"recipe": recipe, "fold": fold, "seed": seed, "held_out": held, "inner_dev": dev_groups,
              "docs": doc_ids, "spans": sum(len(d.spans) for d in docs)}
    for name, spec in (("tagger", str(model_dir)), ("rules", "rules")):
        result[name] = score_fold(spec, docs)
    if not cfg.keep_models:
        shutil.rmtree(model_dir, ignore_errors=True)
    return result


def score_fold(spec: str, docs: list[AnnotatedDoc], reading: Optional[dict] = None) -> dict:
    """Fact F1, per-document (tp, predicted, gold) counts and facts of one extractor on held-out documents,
    run as extract runs it but in float (no runtime measured per fold); `reading` replaces tagger options
    (`TaggerOptions` fields such as `unhedged` or `focus`) of the loaded model."""
    ex = load(spec, InferSettings.load(runtime="torch", quantize=False))
    if reading:
        for tagger in taggers_in(ex):
            tagger.options = dataclasses.replace(tagger.options, **reading)
    doc_ids = [d.doc_id for d in docs]
    facts = extract_documents(ex, [Document(d.doc_id, d.doc_id, d.text) for d in docs], tables=False)
    matches = [m for d, fs in zip(docs, facts) for m in match_facts(d, [f.to_span() for f in fs])]
    counts = doc_counts(matches, doc_ids)
    spans = {d: [[f.start, f.end, f.metric, f.confidence] for f in fs] for d, fs in zip(doc_ids, facts)}
    return {"f1": f1_of_counts(counts), "counts": counts, "spans": spans}


def check_reading(reading: dict) -> dict:
    """`reading` keys must be tagger reading options (`TaggerOptions` fields); lists become tuples."""
    names = {f.name for f in dataclasses.fields(TaggerOptions)}
    bad = sorted(set(reading) - names)
    if bad or not reading:
        raise ValueError(f"crossval reread: {', '.join(bad) or 'nothing'} to set; tagger options are {', '.join(sorted(names))}")
    reading = dict(reading)
    focus = reading.get("focus")
    if focus is not None:
        parts = focus.strip("[]() ").split(",") if isinstance(focus, str) else focus  # `focus=96,32,48` as typed
        try:
            values = [int(x) for x in parts]
        except (TypeError, ValueError):
            values = []
        if len(values) != 3:
            raise ValueError(f"crossval reread: focus must be three whole numbers (before, after, after a cue), "
                             f"e.g. focus=[96,32,48]; got {focus!r}")
        reading["focus"] = values
    return {k: tuple(v) if isinstance(v, list) else v for k, v in reading.items()}


def reread(cfg: CrossvalSettings, reading: dict, progress: Callable[[str], None] = print) -> dict:
    """Every kept fold model (`keep_models: true`) read again with other tagger options on its held-out
    agencies, paired with its stored result: the same weights, documents and calibration, so the difference
    is the reading's alone, with none of the noise between training runs at other commits or on other machines
    (the same recipe and seed moved a fold by two points between two such runs). Written to
    OUT_DIR/reread-KEYS.{json,md}."""
    reading = check_reading(reading)
    out = resolve(cfg.out_dir)
    p = plan(cfg)
    runs = []
    for recipe in cfg.recipes:
        for seed in cfg.seeds:
            for fold in range(cfg.folds):
                name = f"{recipe}-f{fold}-s{seed}"
                path, model_dir = out / "results" / f"{name}.json", out / name / "model"
                if not path.exists() or not model_dir.is_dir():
                    progress(f"{name}: no kept model and result, skipped")
                    continue
                stored = json.loads(path.read_text(encoding="utf-8"))
                docs = [d for g in p.folds[fold] for d in p.groups[g]]
                if [d.doc_id for d in docs] != stored["docs"]:
                    raise ValueError(f"crossval reread: {name} was scored on other documents than the folds give now")
                again = score_fold(str(model_dir), docs, reading)
                runs.append({"run": name, "recipe": recipe, "before": stored["tagger"]["f1"], "after": again["f1"],
                             "rules": stored["rules"]["f1"], "counts_before": stored["tagger"]["counts"],
                             "counts_after": again["counts"], "counts_rules": stored["rules"]["counts"]})
                progress(f"{name}: {stored['tagger']['f1']:.4f} → {again['f1']:.4f}")
    if not runs:
        raise ValueError(f"crossval reread: no kept fold model in {out} (run with keep_models: true)")
    stack = lambda key: [row for r in runs for row in r[key]]  # noqa: E731
    summary = {"reading": {k: list(v) if isinstance(v, tuple) else v for k, v in reading.items()}, "runs": runs,
               "pooled_before": f1_of_counts(stack("counts_before")), "pooled_after": f1_of_counts(stack("counts_after")),
               "after_vs_before": paired_bootstrap_counts(stack("counts_after"), stack("counts_before")),
               "after_vs_rules": paired_bootstrap_counts(stack("counts_after"), stack("counts_rules"))}
    tag = re.sub(r"[^A-Za-z0-9_.=,-]+", "", ",".join(f"{k}={v}" for k, v in sorted(summary["reading"].items())))
    write_text_atomic(out / f"reread-{tag}.json", json.dumps(summary, ensure_ascii=False, indent=1))
    write_text_atomic(out / f"reread-{tag}.md", reread_markdown(summary))
    return summary


def reread_markdown(s: dict) -> str:
    a, r = s["after_vs_before"], s["after_vs_rules"]
    lines = [f"# Kept fold models read again with {s['reading']}", "",
             "| run | stored (as trained and read) | read again | rules |", "|---|---|---|---|"]
    lines += [f"| {x['run']} | {x['before']:.4f} | {x['after']:.4f} | {x['rules']:.4f} |" for x in s["runs"]]
    lines += ["", f"Pooled: {s['pooled_before']:.4f} → {s['pooled_after']:.4f}; read again − stored "
              f"{a['diff']:+.4f} [{a['low']:+.4f}, {a['high']:+.4f}] {_verdict(a)}; read again − rules "
              f"{r['diff']:+.4f} [{r['low']:+.4f}, {r['high']:+.4f}] {_verdict(r)} (paired bootstrap over documents, 95 %)."]
    return "\n".join(lines) + "\n"


def run(cfg: CrossvalSettings, progress: Callable[[str], None] = print) -> dict:
    """Every (recipe, fold, seed) not yet done, then the summary (cv.json, cv.md) in `out_dir`."""
    out = resolve(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = plan(cfg)
    write_text_atomic(out / "folds.json", json.dumps({"folds": p.folds, "train_only": len(p.always),
                                                      "docs_per_fold": [[d.doc_id for g in f for d in p.groups[g]]
                                                                        for f in p.folds]},
                                                     ensure_ascii=False, indent=1))
    jobs = [(r, f, s) for r in cfg.recipes for s in cfg.seeds for f in range(cfg.folds)
            if cfg.only_folds is None or f in cfg.only_folds]
    for i, (recipe, fold, seed) in enumerate(jobs, 1):
        path = out / "results" / f"{recipe}-f{fold}-s{seed}.json"
        if path.exists():
            progress(f"[{i}/{len(jobs)}] {recipe} fold {fold} seed {seed}: done before")
            continue
        progress(f"[{i}/{len(jobs)}] {recipe} fold {fold} seed {seed}: fine-tuning …")
        res = run_one(cfg, p, recipe, fold, seed, out)
        write_text_atomic(path, json.dumps(res, ensure_ascii=False, indent=1))
        progress(f"[{i}/{len(jobs)}] {recipe} fold {fold} seed {seed}: tagger {res['tagger']['f1']:.3f}, "
                 f"rules {res['rules']['f1']:.3f}")
    summary = summarize(out, list(cfg.recipes), cfg, {d.doc_id: d for g in p.groups.values() for d in g})
    write_text_atomic(out / "cv.json", json.dumps(summary, ensure_ascii=False, indent=1))
    write_text_atomic(out / "cv.md", markdown(summary))
    return summary


def summarize(out: Path, recipes: list[str], cfg: CrossvalSettings,
              docs: Optional[dict[str, AnnotatedDoc]] = None) -> dict:
    """Per recipe: fact F1 mean ± sd over (fold, seed) runs and pooled over all held-out documents, the
    rules on the same documents, paired bootstraps (recipe − rules, recipe − other recipe) per seed, pooled;
    with the gold `docs`, the same per label (`label_scores`)."""
    res = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "results").glob("*.json"))]
    by = {r: [x for x in res if x["recipe"] == r] for r in recipes}
    summary: dict = {"folds": cfg.folds, "seeds": list(cfg.seeds), "recipes": {}, "pairs": []}

    def stacked(runs, who, patterns=None):  # documents of every fold, seed after seed: one row per (seed, document)
        return [row for x in sorted(runs, key=lambda x: (x["seed"], x["fold"]))
                for doc, row in zip(x["docs"], x[who]["counts"])
                if patterns is None or any(fnmatchcase(doc, p) for p in patterns)]

    for r, runs in by.items():
        if not runs:
            continue
        f1s = [x["tagger"]["f1"] for x in runs]
        rules = [x["rules"]["f1"] for x in runs]
        summary["recipes"][r] = {
            "runs": len(runs), "complete": len(runs) == cfg.folds * len(cfg.seeds),
            "mean": statistics.mean(f1s), "sd": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
            "rules_mean": statistics.mean(rules), "rules_sd": statistics.stdev(rules) if len(rules) > 1 else 0.0,
            **(_group_scores(stacked(runs, "tagger"), stacked(runs, "rules")) or {}),
            "groups": {g: _group_scores(stacked(runs, "tagger", pats), stacked(runs, "rules", pats))
                       for g, pats in cfg.doc_groups.items()},
            "labels": label_scores(runs, docs) if docs else None,
        }
    names = [r for r in recipes if r in summary["recipes"]]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            keys = {(x["fold"], x["seed"]) for x in by[a]} & {(x["fold"], x["seed"]) for x in by[b]}
            if not keys:
                continue
            both = lambda r: [x for x in by[r] if (x["fold"], x["seed"]) in keys]  # noqa: E731
            summary["pairs"].append({"a": a, "b": b, "runs": len(keys),
                                     "complete": summary["recipes"][a]["complete"] and summary["recipes"][b]["complete"],
                                     **paired_bootstrap_counts(stacked(both(a), "tagger"), stacked(both(b), "tagger"))})
    return summary


def _group_scores(tagger: list, rules: list) -> Optional[dict]:
    """Pooled tagger and rules F1 on held-out documents (a recipe's all, or one group's) and their paired
    bootstrap (None: no such document was held out)."""
    if not tagger:
        return None
    return {"docs": len(tagger), "gold": sum(row[2] for row in tagger), "pooled": f1_of_counts(tagger),
            "rules_pooled": f1_of_counts(rules), "vs_rules": paired_bootstrap_counts(tagger, rules)}


def label_scores(runs: list[dict], docs: dict[str, AnnotatedDoc]) -> Optional[dict]:
    """Per gold or predicted label, pooled over the runs: the tagger's and the rules' fact F1 on the held-out
    documents, re-matched from the spans each run stored, and their paired bootstrap over (run, document) rows:
    which labels the lead over the rules comes from. None where a run stored no spans or a document is unknown."""
    if not all("spans" in x[w] for x in runs for w in ("tagger", "rules")) or \
            any(d not in docs for x in runs for d in x["docs"]):
        return None
    rows: dict[str, dict[str, list]] = {}
    for x in runs:
        for doc_id in x["docs"]:
            doc = docs[doc_id]
            per = {who: label_counts(match_facts(doc, [Span(int(s), int(e), lab, doc.text[int(s):int(e)], float(c))
                                                      for s, e, lab, c in x[who]["spans"].get(doc_id, [])]))
                   for who in ("tagger", "rules")}
            for label in set(per["tagger"]) | set(per["rules"]):
                for who in ("tagger", "rules"):
                    rows.setdefault(label, {"tagger": [], "rules": []})[who].append(per[who].get(label, [0, 0, 0]))
    out = {}
    for label in sorted(rows):
        t, r = rows[label]["tagger"], rows[label]["rules"]
        out[label] = {"gold": sum(row[2] for row in t), "tagger_pred": sum(row[1] for row in t),
                      "rules_pred": sum(row[1] for row in r), "tagger": f1_of_counts(t), "rules": f1_of_counts(r),
                      "vs_rules": paired_bootstrap_counts(t, r)}
    return out


def _pair_scope(p: dict) -> str:
    """Where a recipe is incomplete, its pair is scored on the (fold, seed) runs both recipes have."""
    return "" if p.get("complete", True) else f" (on the {p['runs']} runs both have)"


def _verdict(d: dict) -> str:
    return "A better" if d["a_better"] else "B better" if d["b_better"] else "no difference shown"


def markdown(s: dict) -> str:
    lines = [f"# Grouped {s['folds']}-fold cross-validation over agencies, seeds {s['seeds']}", "",
             "Fact F1 on held-out agencies (mean ± sd over fold × seed runs; pooled over all held-out documents). "
             "Paired bootstrap over documents, 95 %.", "",
             "| recipe | runs | tagger mean ± sd | rules mean ± sd | tagger pooled | rules pooled | tagger − rules [95 % CI] |",
             "|---|---|---|---|---|---|---|"]
    for r, x in s["recipes"].items():
        v = x["vs_rules"]
        lines.append(f"| {r} | {x['runs']}{'' if x['complete'] else ' (incomplete)'} | {x['mean']:.3f} ± {x['sd']:.3f} | "
                     f"{x['rules_mean']:.3f} ± {x['rules_sd']:.3f} | {x['pooled']:.3f} | {x['rules_pooled']:.3f} | "
                     f"{v['diff']:+.3f} [{v['low']:+.3f}, {v['high']:+.3f}] {_verdict(v)} |")
    groups = [(r, g, v) for r, x in s["recipes"].items() for g, v in x.get("groups", {}).items() if v]
    if groups:
        lines += ["", "Documents of a group alone (pooled over the runs, (seed, document) rows):", "",
                  "| recipe | group | rows | gold spans | tagger | rules | tagger − rules [95 % CI] |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r} | {g} | {v['docs']} | {v['gold']} | {v['pooled']:.3f} | {v['rules_pooled']:.3f} | "
                  f"{v['vs_rules']['diff']:+.3f} [{v['vs_rules']['low']:+.3f}, {v['vs_rules']['high']:+.3f}] "
                  f"{_verdict(v['vs_rules'])} |" for r, g, v in groups]
    labels = [(r, lab, v) for r, x in s["recipes"].items() for lab, v in (x.get("labels") or {}).items()]
    if labels:
        lines += ["", "Per label (pooled over the runs; a label's rows are the held-out documents where it is gold or "
                  "predicted by either):", "",
                  "| recipe | label | gold | tagger facts | rules facts | tagger F1 | rules F1 | tagger − rules [95 % CI] |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r} | {lab} | {v['gold']} | {v['tagger_pred']} | {v['rules_pred']} | {v['tagger']:.3f} | "
                  f"{v['rules']:.3f} | {v['vs_rules']['diff']:+.3f} [{v['vs_rules']['low']:+.3f}, "
                  f"{v['vs_rules']['high']:+.3f}] {_verdict(v['vs_rules'])} |" for r, lab, v in labels]
    if s["pairs"]:
        lines += ["", "| A | B | A − B [95 % CI] |", "|---|---|---|"]
        lines += [f"| {p['a']} | {p['b']} | {p['diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] {_verdict(p)}"
                  f"{_pair_scope(p)} |" for p in s["pairs"]]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m govfacts.train.crossval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, help="default: configs/crossval.yaml")
    a = ap.parse_args(argv)
    s = run(load_cv_settings(a.config))
    print(markdown(s))


if __name__ == "__main__":
    main()

