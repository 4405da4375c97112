"""Temperature scaling of the tagger, fitted on the dev split, so that fact confidence is a probability.

The tagger divides its logits by a temperature T before the softmax (`govfacts_temperature` in the
model's config.json); every character's probabilities, the constrained decoding and the span score
(min of the chosen tags' probabilities) follow from them. The fit asks what inference will do at
each T: the dev documents are run through the model ONCE (`Tagger.window_logits`), then for every T
on a log grid the same outputs are merged (`Tagger.merge_windows`) and decoded (`decode_views`)
exactly as at inference. A predicted span is right when a gold span has the same start, end and
label (raw offsets; predictions in ignored regions are not counted). T is chosen to minimise the
negative log-likelihood of span correctness under the span scores, among the T whose expected
calibration error (10 equal-width bins, as `govfacts evaluate` reports it) and exact-span F1 are no
worse than at the current T; so the fit never makes dev ECE or dev F1 worse.

    .venv/bin/python -m govfacts.train.calibrate models/govfacts-tagger-zh [--out out/calibration]
        [--map-gold annotations/heldout]

A confidence map of the span scores follows (`fit_confidence`, `govfacts.infer.confidence`); `--map-gold` adds
annotated documents outside every split to the dev spans it is fitted on, since ~160 dev spans hold too few
errors to fix its slope. Everything is fitted on facts as `govfacts evaluate` scores them.

writes `govfacts_temperature` (and a `govfacts_calibration` summary) into config.json atomically
and, with --out, calibration.json and reliability.png (before/after). It then compares the dev F1
of the int8-quantised tagger with fp32 at that temperature and records `govfacts_quantize` (int8 by
default only if it keeps dev F1; see `check_int8`).
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from govfacts.annotations import load_gold, load_split
from govfacts.atomic import write_text_atomic
from govfacts.infer.confidence import FORMS, ConfidenceMap, feature_rows
from govfacts.infer.loader import InferSettings, load
from govfacts.infer.tagger import Tagger
from govfacts.paths import ANNOTATIONS
from govfacts.plots import reliability_png
from govfacts.scoring import calibration, calibration_of, in_scope, match_spans
from govfacts.splits import load_splits, split_of
from govfacts.textview import build_view
from govfacts.train.finetune import evaluate

DEFAULT_GRID = tuple(float(t) for t in np.round(np.geomspace(0.25, 8.0, 31), 4))


@dataclass
class TemperatureFit:
    """The fitted temperature with dev scores before (current T) and after; float(fit) is T."""

    temperature: float
    previous: float
    ece_before: Optional[float]
    ece_after: Optional[float]
    nll_before: Optional[float]
    nll_after: Optional[float]
    f1_before: float
    f1_after: float
    spans_before: int
    spans_after: int
    dev_docs: list[str] = field(default_factory=list)
    calibration_before: dict = field(default_factory=dict)  # govfacts.scoring.calibration() tables
    calibration_after: dict = field(default_factory=dict)
    grid: list[dict] = field(default_factory=list)
    config: Optional[str] = None  # the config.json written, if any
    int8: Optional[dict] = None  # check_int8() result, when run
    min_score: Optional[dict] = None  # fit_min_score() result, when run
    hint_threshold: Optional[dict] = None  # fit_hint_threshold() result, when run
    confidence: Optional[dict] = None  # fit_confidence() result, when run

    def __float__(self) -> float:
        return float(self.temperature)

    def summary(self) -> dict:
        d = asdict(self)
        for k in ("calibration_before", "calibration_after", "grid"):
            d.pop(k)
        for k in ("min_score", "hint_threshold"):
            if d.get(k):
                d[k] = {key: v for key, v in d[k].items() if key != "grid"}
        if d.get("confidence"):
            d["confidence"] = {k: v for k, v in d["confidence"].items() if not k.startswith("calibration")}
        return d


def score_at(tagger, views, batches, docs, temperature: float, raw: bool = False) -> dict:
    """Predicted spans at `temperature` (decoded as at inference) against gold, matched as `govfacts
    evaluate` matches facts (same label and value, overlapping span; `govfacts.scoring`): NLL, ECE, F1.
    With `raw`, the scores are the model's, unrounded and before the confidence map, and `agree` says for
    each whether the rules found it too: the numbers the map reads at inference."""
    merged = tagger.merge_windows(views, batches, temperature)
    if raw:
        scored = tagger.scored_spans(views, merged)
        preds = [[sp for sp, _ in found] for found in scored]
        agreed = {id(sp): agree for found in scored for sp, agree in found}
    else:
        preds, agreed = tagger.decode_views(views, merged), {}
    matches, n_gold, where = [], 0, []
    for i, (doc, spans) in enumerate(zip(docs, preds)):
        n_gold += len(doc.spans)
        found = [m for m in match_spans(doc.doc_id, doc.spans, in_scope(doc, spans), "fact") if m.pred]
        matches += found
        where += [i] * len(found)
    conf = np.array([m.pred.score for m in matches], dtype=np.float64)
    ok = np.array([m.kind == "tp" for m in matches], dtype=np.float64)
    agree = np.array([agreed.get(id(m.pred), False) for m in matches], dtype=bool)
    tp = float(ok.sum())
    p = tp / len(matches) if matches else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"temperature": temperature, "nll": span_nll(conf, ok), "calibration": calibration(matches),
            "f1": 2 * p * r / (p + r) if p + r else 0.0, "spans": len(matches), "conf": conf, "ok": ok,
            "agree": agree, "n_gold": n_gold, "doc": np.array(where, dtype=np.int64)}


def span_nll(conf: np.ndarray, ok: np.ndarray) -> Optional[float]:
    """Mean negative log-likelihood of span correctness under the span scores (None without spans)."""
    if not len(conf):
        return None
    c = np.clip(conf, 1e-6, 1 - 1e-6)
    return float(-(ok * np.log(c) + (1 - ok) * np.log(1 - c)).mean())


def dev_outputs(tagger, dev_docs: Sequence) -> tuple[list, list]:
    """(views, window logits) of the dev documents: the model runs once, and every fit re-merges
    and re-decodes these at its own temperature / map / threshold."""
    views = [build_view(d.text) for d in dev_docs]
    return views, list(tagger.window_logits(views))


def _target(tagger, model_dir: Optional[str | Path]) -> Optional[Path]:
    """The model directory whose config.json a fit writes: `model_dir`, else where the tagger came from."""
    target = Path(model_dir) if model_dir else (Path(tagger.source) if getattr(tagger, "source", None) else None)
    return target if target is not None and (target / "config.json").exists() else None


def update_config(model_dir: str | Path, values: dict) -> Path:
    """Set `values` in model_dir/config.json, atomically; a None value removes its key."""
    path = Path(model_dir) / "config.json"
    conf = json.loads(path.read_text(encoding="utf-8"))
    conf.update(values)
    for key in [k for k, v in values.items() if v is None]:
        del conf[key]
    return write_text_atomic(path, json.dumps(conf, ensure_ascii=False, indent=2) + "\n")


def best_min_score(conf: np.ndarray, ok: np.ndarray, n_gold: int,
                   grid: Sequence[float] = tuple(np.round(np.arange(0.0, 0.91, 0.05), 2))) -> dict:
    """The score threshold that maximises the fact F1 of the kept spans (the lowest on ties)."""
    rows = []
    for t in grid:
        keep = conf >= t
        tp, n = float(ok[keep].sum()), int(keep.sum())
        p = tp / n if n else 0.0
        r = tp / n_gold if n_gold else 0.0
        rows.append({"min_score": float(t), "f1": 2 * p * r / (p + r) if p + r else 0.0, "spans": n})
    best = max(rows, key=lambda r: (round(r["f1"], 9), -r["min_score"]))
    return {**best, "grid": rows}


def fit_map(form: str, scores: Sequence[float], agrees: Sequence[bool], ok: Sequence[float], l2: float = 1e-2,
            iters: int = 50) -> ConfidenceMap:
    """The `form` map (`infer.confidence.FORMS`) of P(right) by damped Newton on the log-likelihood, with a
    small pull towards the identity (p = score) so that a few spans cannot produce wild maps."""
    X = feature_rows(FORMS[form], scores, agrees)
    y = np.asarray(ok, dtype=np.float64)
    prior = np.array(ConfidenceMap.identity(form).weights)
    w = prior.copy()
    n = max(len(y), 1)

    def loss(w):
        z = X @ w
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * l2 * n * np.sum((w - prior) ** 2))

    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -700, 700)))
        grad = X.T @ (p - y) + l2 * n * (w - prior)
        hess = (X * (p * (1 - p))[:, None]).T @ X + l2 * n * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        # halve the step until the objective goes down (scores at 0/1 make plain Newton overshoot)
        cur, t = loss(w), 1.0
        while t > 1e-6 and loss(w - t * step) > cur:
            t /= 2
        w = w - t * step
        if np.abs(t * step).max() < 1e-8:
            break
    return ConfidenceMap(form, tuple(float(x) for x in w))


def map_forms(tagger) -> tuple[str, ...]:
    """The map forms calibration compares: `beta-rules` only for a tagger that reads the rules."""
    return tuple(f for f in FORMS if tagger.rules is not None or "rules_agree" not in FORMS[f])


def fit_confidence(tagger, dev_docs: Sequence, write: bool = True, model_dir: Optional[str | Path] = None,
                   outputs: Optional[tuple[list, list]] = None, extra_docs: Sequence = (),
                   extra_outputs: Optional[tuple[list, list]] = None, forms: Optional[Sequence[str]] = None) -> dict:
    """Fit the confidence map (`govfacts_confidence_map` in config.json) on dev at the tagger's temperature.

    Temperature scaling moves every character's distribution alike; a span score (the weakest
    character's label mass) is then still over- or under-confident as a whole. A logistic map of a few
    span features, fitted on the facts of annotated documents, corrects that without changing which spans
    are found. Every form of `forms` (default `map_forms`) is fitted; the one kept is the form whose maps,
    fitted on some agencies, give the lowest log-loss on agencies they were not fitted on (`crossfit`), so a
    form with more weights wins only where it predicts unseen agencies better.

    `extra_docs` (annotated documents the model was not trained on, e.g. a held-out round) join the dev
    spans for this map only: ~160 dev spans hold too few errors to fix a slope. Since the map changes no
    span, their F1 stays a clean measurement; their ECE does not, so the cross-fit halves their agencies
    (dev always in the fit), and without them it halves dev's."""
    views, batches = outputs or dev_outputs(tagger, dev_docs)
    forms = tuple(forms or map_forms(tagger))
    old = (tagger.options.min_score, tagger.options.confidence)
    tagger.options.min_score, tagger.options.confidence = 0.0, None
    t = float(tagger.options.temperature)
    try:
        raw = score_at(tagger, views, batches, dev_docs, t, raw=True)
        parts = [raw]
        if extra_docs:
            ev, eb = extra_outputs or dev_outputs(tagger, extra_docs)
            extra = score_at(tagger, ev, eb, extra_docs, t, raw=True)
            parts.append(extra)
        cols = {k: np.concatenate([r[k] for r in parts]) for k in ("conf", "agree", "ok")}
        maps = {f: fit_map(f, cols["conf"], cols["agree"], cols["ok"]) for f in forms}
        # halve the extra documents' agencies with dev always in the fit; without them, halve dev's
        fixed, halved, halved_docs = (raw, extra, extra_docs) if extra_docs else (None, raw, dev_docs)
        groups = [str(d.meta.get("agency") or d.doc_id) for d in halved_docs]
        cf = crossfit(forms, fixed, halved, [groups[i] for i in halved["doc"]])
        chosen = min(forms, key=lambda f: cf[f]["nll"]) if cf.get("repeats") else forms[0]
        cmap = maps[chosen]
        tagger.options.confidence = cmap
        after = score_at(tagger, views, batches, dev_docs, t)
        extra_after = score_at(tagger, ev, eb, extra_docs, t) if extra_docs else None
    finally:
        tagger.options.min_score = old[0]
    out = {"form": chosen, "weights": list(cmap.weights), "forms": {f: list(m.weights) for f, m in maps.items()},
           "matching": "fact", "crossfit": cf, "ece_before": raw["calibration"]["ece"],
           "ece_after": after["calibration"]["ece"], "spans": raw["spans"],
           "calibration_before": raw["calibration"], "calibration_after": after["calibration"]}
    out["nll_before"], out["nll_after"] = span_nll(cols["conf"], cols["ok"]), span_nll(
        cmap.many(cols["conf"], cols["agree"]), cols["ok"])
    out["by_rules_agreement"] = {name: agreement_table(part) for name, part in zip(("dev", "extra"), parts)}
    if extra_docs:
        out.update({"extra_docs": [d.doc_id for d in extra_docs], "extra_spans": extra["spans"],
                    "extra_ece_before": extra["calibration"]["ece"], "extra_ece_after": extra_after["calibration"]["ece"]})
    if out["nll_after"] is None or out["nll_before"] is None or out["nll_after"] > out["nll_before"]:
        tagger.options.confidence = old[1]
        out["kept"] = False
        return out
    out["kept"] = True
    target = _target(tagger, model_dir)
    if write and target is not None:
        update_config(target, {"govfacts_confidence_map": cmap.to_config(), "govfacts_platt": None})
    return out


def agreement_table(rows: dict) -> dict:
    """Facts and the share right, where the rules found the same label there (`agree`) and where not (`alone`)."""
    out = {}
    for name, mask in (("agree", rows["agree"]), ("alone", ~rows["agree"])):
        n = int(mask.sum())
        out[name] = {"facts": n, "right": float(rows["ok"][mask].mean()) if n else None}
    return out


def crossfit(forms: Sequence[str], fixed: Optional[dict], halved: dict, groups: Sequence[str],
             repeats: int = 20, seed: int = 0) -> dict:
    """How each map form does on agencies it was not fitted on: the agencies (`groups`, one per span of
    `halved`) are halved at random `repeats` times; a map fitted on `fixed` (if any) plus one half is scored
    on the other half: ECE and mean log-loss per form, each form's log-loss paired with the first form's on
    the same halves, and, with `fixed`, the ECE of the map fitted on `fixed` alone (`ece_fixed_only`)."""
    names = sorted(set(groups))
    if len(names) < 2:
        return {"repeats": 0}
    g = np.array([names.index(x) for x in groups])
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(repeats):
        half = np.isin(g, rng.permutation(len(names))[: len(names) // 2])
        halves += [half, ~half]

    def take(rows, mask):
        return {k: rows[k][mask] for k in ("conf", "agree", "ok")}

    def ece(p, ok):
        return calibration_of(list(zip(p.tolist(), ok.astype(bool).tolist())))["ece"]

    def joined(mask):
        part = take(halved, mask)
        if fixed is None:
            return part
        return {k: np.concatenate([fixed[k], part[k]]) for k in part}

    out: dict = {"repeats": repeats, "groups": len(names)}
    per_half: dict = {}
    for form in forms:
        eces, nlls, only = [], [], []
        alone = fit_map(form, fixed["conf"], fixed["agree"], fixed["ok"]) if fixed is not None else None
        for fit_mask in halves:
            fit_rows, held = joined(fit_mask), take(halved, ~fit_mask)
            cmap = fit_map(form, fit_rows["conf"], fit_rows["agree"], fit_rows["ok"])
            p = cmap.many(held["conf"], held["agree"])
            eces.append(ece(p, held["ok"]))
            nlls.append(span_nll(p, held["ok"]))
            if alone is not None:
                only.append(ece(alone.many(held["conf"], held["agree"]), held["ok"]))
        out[form] = {"ece": float(np.mean(eces)), "ece_sd": float(np.std(eces)), "nll": float(np.mean(nlls)),
                     "nll_sd": float(np.std(nlls))}
        if only:
            out[form].update({"ece_fixed_only": float(np.mean(only)), "ece_fixed_only_sd": float(np.std(only))})
        per_half[form] = np.array(nlls)
        if form != forms[0]:  # paired with the first form on the same halves
            diff = per_half[form] - per_half[forms[0]]
            out[form][f"nll_minus_{forms[0]}"] = float(diff.mean())
            out[form][f"nll_below_{forms[0]}_share"] = float(np.mean(diff < 0))
    return out


HINT_GRID = (0.5, 0.4, 0.3, 0.2, 0.1)


def pick_hint_threshold(rows: Sequence[dict], tolerance: float) -> dict:
    """The grid row with the highest `hint_threshold` among those whose dev F1 is within `tolerance` of the best."""
    top = max(r["f1"] for r in rows)
    return max((r for r in rows if r["f1"] >= top - tolerance - 1e-9), key=lambda r: r["hint_threshold"])


def fit_hint_threshold(tagger, dev_docs: Sequence, grid: Sequence[float] = HINT_GRID, write: bool = True,
                       model_dir: Optional[str | Path] = None, outputs: Optional[tuple] = None) -> Optional[dict]:
    """Choose `govfacts_hint_threshold` on dev: the entity mass a candidate the rules labelled needs to be
    kept (0.5 = as any other; lower keeps more of the rules' claims the tagger doubts). The highest value whose
    dev F1 is within one gold span of the best (1 / gold spans) wins: a lower threshold that gains less than
    one dev span is noise, and it lets through more of the rules' claims on text that holds none. None for a
    tagger without rule hints or anchored decoding."""
    if tagger.rules is None or not tagger.options.anchor:
        return None
    views, batches = outputs or dev_outputs(tagger, dev_docs)
    rows = []
    for t in grid:
        tagger.options.hint_threshold = float(t)
        r = score_at(tagger, views, batches, dev_docs, tagger.options.temperature)
        rows.append({"hint_threshold": float(t), "f1": r["f1"], "spans": r["spans"]})
    tol = 1.0 / max(1, sum(len(d.spans) for d in dev_docs))
    best = pick_hint_threshold(rows, tol)
    tagger.options.hint_threshold = best["hint_threshold"]
    target = _target(tagger, model_dir)
    if write and target:
        update_config(target, {"govfacts_hint_threshold": best["hint_threshold"]})
    return {**best, "grid": rows, "tolerance": tol}


def fit_min_score(tagger, dev_docs: Sequence, write: bool = True, model_dir: Optional[str | Path] = None,
                  outputs: Optional[tuple[list, list]] = None, fixed: Optional[float] = None) -> dict:
    """Choose `govfacts_min_score` on dev at the tagger's current temperature; set it on the tagger
    and, with `write`, in config.json. Spans below it are more often wrong than worth keeping.

    `fixed` sets that value instead (the dev grid is still recorded): a threshold picked among 19 on a
    dev split of ~160 spans often fits a few spans, and cross-validation found a fixed 0 no worse."""
    views, batches = outputs or dev_outputs(tagger, dev_docs)
    old, tagger.options.min_score = tagger.options.min_score, 0.0
    try:
        row = score_at(tagger, views, batches, dev_docs, float(tagger.options.temperature))
    finally:
        tagger.options.min_score = old
    best = best_min_score(row["conf"], row["ok"], row["n_gold"])
    best["f1_without"] = row["f1"]
    if fixed is not None:
        at = best_min_score(row["conf"], row["ok"], row["n_gold"], grid=(float(fixed),))
        best.update({"min_score": float(fixed), "fixed": True, "dev_best": best["min_score"], "dev_best_f1": best["f1"],
                     "f1": at["f1"], "spans": at["spans"]})
    tagger.options.min_score = best["min_score"]
    target = _target(tagger, model_dir)
    if write and target is not None:
        update_config(target, {"govfacts_min_score": best["min_score"]})
    return best


def fit_temperature(tagger, dev_docs: Sequence, grid: Sequence[float] = DEFAULT_GRID, write: bool = True,
                    model_dir: Optional[str | Path] = None, outputs: Optional[tuple[list, list]] = None
                    ) -> TemperatureFit:
    """Fit T on annotated dev documents (`AnnotatedDoc`s); set it on `tagger` and, with `write`,
    in `model_dir`/config.json (default: the directory the tagger was loaded from, when local).

    Returns a `TemperatureFit` (float(fit) is T) with dev ECE/NLL/F1 before and after.
    """
    if not dev_docs:
        raise ValueError("no dev documents to fit a temperature on")
    views, batches = outputs or dev_outputs(tagger, dev_docs)  # the model runs once; every T re-merges these
    current = float(tagger.options.temperature)
    kept_min_score, tagger.options.min_score = tagger.options.min_score, 0.0  # T is fitted on every decoded span
    kept_map, tagger.options.confidence = tagger.options.confidence, None  # ... and on the raw span scores
    base = score_at(tagger, views, batches, dev_docs, current)
    rows = [base]
    for t in sorted(set(grid) - {current}):
        rows.append(score_at(tagger, views, batches, dev_docs, float(t)))
    best = _choose(rows, base)
    # refine between the grid neighbours of the best T
    ts = sorted(r["temperature"] for r in rows)
    i = ts.index(best["temperature"])
    lo, hi = ts[max(0, i - 1)], ts[min(len(ts) - 1, i + 1)]
    for t in np.geomspace(lo, hi, 9)[1:-1]:
        t = float(round(t, 4))
        if all(abs(t - r["temperature"]) > 1e-9 for r in rows):
            rows.append(score_at(tagger, views, batches, dev_docs, t))
    best = _choose(rows, base)
    fit = TemperatureFit(
        temperature=best["temperature"], previous=current,
        ece_before=base["calibration"]["ece"], ece_after=best["calibration"]["ece"],
        nll_before=base["nll"], nll_after=best["nll"], f1_before=base["f1"], f1_after=best["f1"],
        spans_before=base["spans"], spans_after=best["spans"], dev_docs=[d.doc_id for d in dev_docs],
        calibration_before=base["calibration"], calibration_after=best["calibration"],
        grid=[{k: r[k] for k in ("temperature", "nll", "f1", "spans")} | {"ece": r["calibration"]["ece"]}
              for r in sorted(rows, key=lambda r: r["temperature"])])
    tagger.options.temperature = fit.temperature
    tagger.options.min_score = kept_min_score
    tagger.options.confidence = kept_map
    target = _target(tagger, model_dir)
    if write and target is not None:
        write_temperature(target, fit)
        fit.config = str(target / "config.json")
    return fit


def _choose(rows: list[dict], base: dict) -> dict:
    """Lowest NLL among the temperatures no worse than the current one in ECE and F1 (base qualifies)."""
    def ok(r):
        if r["nll"] is None or r["calibration"]["ece"] is None:
            return False
        if base["calibration"]["ece"] is not None and r["calibration"]["ece"] > base["calibration"]["ece"] + 1e-12:
            return False
        return r["f1"] >= base["f1"] - 1e-12
    cands = [r for r in rows if ok(r)]
    if not cands:
        return base
    return min(cands, key=lambda r: (r["nll"], abs(math.log(r["temperature"]))))


def write_temperature(model_dir: str | Path, fit: TemperatureFit) -> Path:
    """Set `govfacts_temperature` (and a `govfacts_calibration` summary) in config.json, atomically."""
    return update_config(model_dir, {"govfacts_temperature": float(fit.temperature),
                                      "govfacts_calibration": {k: v for k, v in fit.summary().items() if k != "config"}})


def check_int8(model_dir: str | Path, dev_docs: Sequence, write: bool = True) -> dict:
    """Dev strict entity F1 (`govfacts.train.finetune.evaluate`) of the fp32 and the dynamic-int8 tagger
    on the default runtime (configs/infer.yaml: torch or ONNX Runtime).

    With `write`, records `govfacts_quantize` = (int8 F1 >= fp32 F1) in config.json (atomically):
    `govfacts extract` / `Extractor.from_pretrained` use int8 by default only for a model whose dev
    F1 it keeps (int8 is ~2x faster on CPU; see bench/README.md). --int8/--fp32 override it.
    """
    out: dict = {"runtime": InferSettings.load().runtime}
    for name, q in (("fp32", False), ("int8", True)):
        tagger = load(str(model_dir), InferSettings.load(quantize=q))
        ev = evaluate(tagger, dev_docs)
        out[name] = {k: round(float(ev[k]), 4) for k in ("precision", "recall", "f1")}
        out[name]["runtime"] = f"{'onnx' if tagger.runner is not None else 'torch'}-{name}"
    out["quantize"] = out["int8"]["f1"] >= out["fp32"]["f1"]
    if write:
        update_config(model_dir, {"govfacts_quantize": bool(out["quantize"]),
                                  "govfacts_int8_check": {"dev_docs": [d.doc_id for d in dev_docs], **out}})
    return out


def reliability(fit: TemperatureFit) -> bytes:
    """Reliability diagram (PNG) of dev span confidence before and after the fit."""
    curves = {f"T={fit.previous:g} (before)": {"calibration": fit.calibration_before},
              f"T={fit.temperature:g} (fitted)": {"calibration": fit.calibration_after}}
    if fit.confidence and fit.confidence.get("kept"):
        curves[f"T={fit.temperature:g} + {fit.confidence['form']} map"] = {"calibration": fit.confidence["calibration_after"]}
    return reliability_png(curves)


def map_documents(paths: Sequence[str | Path], splits_yaml: str | Path) -> list:
    """The annotated documents of `paths` (exports or folders) for the confidence map; a document that
    splits.yaml places in any split is refused, since the model may have trained on it or it is scored."""
    docs, problems = load_gold(paths)
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in the confidence-map documents, e.g. {problems[0]} "
                         "(govfacts annotations validate lists them all)")
    placed = split_of(load_splits(splits_yaml), [d.doc_id for d in docs])
    inside = sorted(d.doc_id for d in docs if d.doc_id in placed)
    if inside:
        raise ValueError(f"{', '.join(map(str, paths))}: {len(inside)} document(s) belong to a split of "
                         f"{splits_yaml} ({', '.join(inside[:5])}); the confidence map takes only documents outside them")
    return docs


def calibrate(model_dir: str | Path, annotations: Optional[str | Path] = None, splits: Optional[str | Path] = None,
              split: str = "dev", out_dir: Optional[str | Path] = None, int8: bool = True,
              min_score: Optional[float] = None, map_gold: Sequence[str | Path] = ()) -> TemperatureFit:
    """Load the tagger in `model_dir`, fit T on the `split` documents and write it into its config;
    with `int8`, also decide `govfacts_quantize` on the same documents (`check_int8`); `min_score`
    fixes the score threshold instead of fitting it (`fit_min_score`); the documents of `map_gold`
    join the split's for the confidence map only (`fit_confidence`)."""
    ann = Path(annotations) if annotations else ANNOTATIONS
    splits_yaml = Path(splits) if splits else ann / "splits.yaml"
    docs = load_split(split, ann, splits_yaml)
    extra = map_documents(map_gold, splits_yaml) if map_gold else []
    tagger = Tagger.from_pretrained(model_dir)
    outputs = dev_outputs(tagger, docs)
    fit = fit_temperature(tagger, docs, model_dir=model_dir, outputs=outputs)
    fit.hint_threshold = fit_hint_threshold(tagger, docs, model_dir=model_dir, outputs=outputs)
    fit.confidence = fit_confidence(tagger, docs, model_dir=model_dir, outputs=outputs, extra_docs=extra)
    fit.min_score = fit_min_score(tagger, docs, model_dir=model_dir, outputs=outputs, fixed=min_score)
    if int8:
        fit.int8 = check_int8(model_dir, docs)  # at the fitted temperature, now in config.json
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "calibration.json").write_text(json.dumps(asdict(fit), ensure_ascii=False, indent=1, default=str)
                                              + "\n", encoding="utf-8")
        (out / "reliability.png").write_bytes(reliability(fit))
    return fit


def main(argv: Optional[list[str]] = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m govfacts.train.calibrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--annotations", default=None, help="default: annotations/")
    ap.add_argument("--splits", default=None, help="default: ANNOTATIONS/splits.yaml")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--out", default=None, help="folder for calibration.json and reliability.png")
    ap.add_argument("--no-int8-check", action="store_true", help="do not decide govfacts_quantize")
    ap.add_argument("--min-score", type=float, default=None,
                    help="set govfacts_min_score to this instead of fitting it on the split (e.g. 0)")
    ap.add_argument("--map-gold", "--platt-gold", dest="map_gold", action="append", default=[], metavar="PATH",
                    help="annotated exports or folders outside every split (e.g. annotations/heldout) whose "
                         "spans join the split's for the confidence map only; repeatable")
    a = ap.parse_args(argv)
    fit = calibrate(a.model_dir, a.annotations, a.splits, a.split, a.out, int8=not a.no_int8_check,
                    min_score=a.min_score, map_gold=a.map_gold)
    json.dump(fit.summary(), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
