"""Temperature scaling of a tiny tagger fitted on a dev split (CPU, seconds)."""
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from tests.conftest import DEV_IDS


@pytest.fixture(scope="module")
def tiny(tiny_tagger, tmp_path_factory):
    """A copy of the session's tiny tagger: calibration writes into its config.json."""
    out = tmp_path_factory.mktemp("calib") / "tagger"
    shutil.copytree(tiny_tagger, out)
    shutil.copy(tiny_tagger.parent / "splits.yaml", out.parent / "splits.yaml")
    return out


@pytest.fixture(scope="module")
def dev_docs():
    from tests.conftest import corpus_docs

    docs = corpus_docs()
    return [docs[i] for i in DEV_IDS]


def test_fit_temperature_reduces_dev_ece_and_writes_config(tiny, dev_docs, tmp_path):
    from govfacts.train.calibrate import fit_temperature, reliability
    from govfacts.infer.tagger import Tagger

    tagger = Tagger.from_pretrained(tiny, num_threads=1)
    assert tagger.options.temperature == 1.0
    fit = fit_temperature(tagger, dev_docs)
    assert fit.spans_before > 10, "the tiny tagger should predict spans on dev"
    assert float(fit) == fit.temperature > 0
    assert fit.ece_after <= fit.ece_before + 1e-12
    assert fit.f1_after >= fit.f1_before - 1e-12
    assert fit.nll_after <= fit.nll_before + 1e-12
    assert tagger.options.temperature == fit.temperature
    # the fitted value is in config.json, written atomically (no temp files left), and used on reload
    conf = json.loads((tiny / "config.json").read_text(encoding="utf-8"))
    assert conf["govfacts_temperature"] == fit.temperature
    assert conf["govfacts_calibration"]["ece_after"] == fit.ece_after
    assert fit.config == str(tiny / "config.json")
    assert not [p for p in tiny.iterdir() if p.name.startswith(".")]
    assert Tagger.from_pretrained(tiny).options.temperature == fit.temperature
    assert reliability(fit)[:8] == b"\x89PNG\r\n\x1a\n"


def test_overconfident_tagger_is_cooled_down(tiny, dev_docs):
    """A tagger made overconfident (T=0.2) gets a larger temperature and a clearly lower dev ECE."""
    from govfacts.train.calibrate import fit_temperature, score_at
    from govfacts.infer.tagger import Tagger
    from govfacts.textview import build_view

    tagger = Tagger.from_pretrained(tiny, num_threads=1, temperature=0.2)
    fit = fit_temperature(tagger, dev_docs, write=False)
    assert fit.previous == 0.2 and fit.temperature > 0.2
    assert fit.ece_after < fit.ece_before
    assert fit.config is None
    # the scores it reports are those of the tagger at that temperature, decoded as at inference
    views = [build_view(d.text) for d in dev_docs]
    again = score_at(tagger, views, list(tagger.window_logits(views)), dev_docs, fit.temperature)
    assert again["calibration"]["ece"] == pytest.approx(fit.ece_after)
    spans = tagger.spans_many([d.text for d in dev_docs])
    assert sum(len(s) for s in spans) >= again["spans"]  # in-scope predictions are a subset


def test_calibrate_command_writes_report(tiny, tmp_path):
    from govfacts.train.calibrate import main

    splits = tiny.parent / "splits.yaml"
    main([str(tiny), "--splits", str(splits), "--out", str(tmp_path / "cal")])
    rep = json.loads((tmp_path / "cal" / "calibration.json").read_text(encoding="utf-8"))
    assert rep["temperature"] > 0 and rep["dev_docs"] == DEV_IDS and len(rep["grid"]) >= 31
    assert (tmp_path / "cal" / "reliability.png").stat().st_size > 1000
    # the int8 verdict: quantised by default only if int8 keeps the dev F1
    conf = json.loads((tiny / "config.json").read_text(encoding="utf-8"))
    check = rep["int8"]
    assert conf["govfacts_quantize"] is check["quantize"] == (check["int8"]["f1"] >= check["fp32"]["f1"])
    from govfacts.infer.api import Extractor

    # runtime auto: each weight kind on whichever encoder measured fastest here
    assert check["runtime"] == "auto" and check["fp32"]["runtime"] in ("torch-fp32", "onnx-fp32")
    assert check["int8"]["runtime"] in ("torch-int8", "onnx-int8")

    def int8_in_use(t):
        return t.quantized or bool(t.runner is not None and t.runner.int8)

    ex = Extractor.from_pretrained(tiny).extractor
    assert int8_in_use(ex) is ex.runtime_choice.int8
    assert not ex.runtime_choice.int8 or (conf["govfacts_quantize"] and ex.runtime_choice.same_spans[ex.runtime_choice.name])
    assert not int8_in_use(Extractor.from_pretrained(tiny, quantize=False).extractor)
    assert Extractor.from_pretrained(tiny, runtime="onnx", quantize=True).extractor.runner.int8 is True
    assert Extractor.from_pretrained(tiny, quantize=True).version.endswith(("+int8", "+onnx-int8"))
    # the score threshold chosen on dev is in the config and the loaded tagger applies it
    assert conf["govfacts_min_score"] == rep["min_score"]["min_score"]
    cmap = rep["confidence"]
    assert cmap["kept"] is ("govfacts_confidence_map" in conf) and "govfacts_platt" not in conf
    if cmap["kept"]:
        assert cmap["nll_after"] <= cmap["nll_before"]
        assert conf["govfacts_confidence_map"] == {"form": cmap["form"], "weights": cmap["weights"]}
        # the form kept predicts the agencies it was not fitted on best
        assert cmap["crossfit"][cmap["form"]]["nll"] == min(cmap["crossfit"][f]["nll"] for f in cmap["forms"])
    assert rep["min_score"]["f1"] >= rep["min_score"]["f1_without"] - 1e-9
    # a rule-hinted, anchored tagger: the entity mass a rule-labelled candidate needs, fitted on dev
    if conf.get("govfacts_rule_hints") and conf.get("govfacts_anchor"):
        ht = rep["hint_threshold"]
        assert conf["govfacts_hint_threshold"] == ht["hint_threshold"] in [r["hint_threshold"] for r in ht["grid"]]
        top, tol = max(r["f1"] for r in ht["grid"]), ht["tolerance"]
        assert ht["f1"] >= top - tol - 1e-9 and 0 < tol <= 1  # within one dev gold span of the best, the highest
        assert ht["hint_threshold"] == max(r["hint_threshold"] for r in ht["grid"] if r["f1"] >= top - tol - 1e-9)
    from govfacts.infer.tagger import Tagger

    t = Tagger.from_pretrained(tiny)
    assert t.options.min_score == conf["govfacts_min_score"]
    text = (ROOT / "data" / "samples" / "gov-pingtan-2012.txt").read_text(encoding="utf-8")
    assert all(sp.score >= t.options.min_score for sp in t.spans(text))
    all_spans = Tagger.from_pretrained(tiny, min_score=0.0).spans(text)
    assert {(sp.start, sp.end) for sp in all_spans if sp.score >= t.options.min_score} == {(sp.start, sp.end) for sp in t.spans(text)}


def test_best_min_score_by_hand():
    import numpy as np

    from govfacts.train.calibrate import best_min_score

    conf = np.array([0.9, 0.8, 0.3, 0.2, 0.1])
    ok = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    # 4 gold: keep all → P 3/5 R 3/4 F1 .667; ≥.15 → 3/4, 3/4: .75; ≥.25 → 2/3, 2/4: .571; ≥.35 → 1, .5: .667
    best = best_min_score(conf, ok, 4, grid=(0.0, 0.15, 0.25, 0.35))
    assert best["min_score"] == 0.15 and abs(best["f1"] - 0.75) < 1e-9 and best["spans"] == 4


def test_a_fixed_min_score_is_set_and_the_dev_grid_still_recorded(tiny, dev_docs):
    from govfacts.infer.tagger import Tagger
    from govfacts.train.calibrate import fit_min_score

    tagger = Tagger.from_pretrained(tiny, num_threads=1)
    fitted = fit_min_score(tagger, dev_docs, write=False)
    fixed = fit_min_score(tagger, dev_docs, write=False, fixed=0.0)
    assert fixed["fixed"] is True and fixed["min_score"] == 0.0 == tagger.options.min_score
    assert fixed["dev_best"] == fitted["min_score"] and fixed["dev_best_f1"] == pytest.approx(fitted["f1"])
    assert fixed["f1"] == pytest.approx(fixed["f1_without"])  # a threshold of 0 keeps every span
    assert fixed["grid"] == fitted["grid"] and fixed["spans"] == fitted["grid"][0]["spans"]


def test_fit_map_recovers_a_known_map():
    import numpy as np

    from govfacts.infer.confidence import ConfidenceMap
    from govfacts.train.calibrate import fit_map

    rng = np.random.default_rng(0)
    conf = rng.uniform(0.05, 0.95, 4000)
    agree = rng.uniform(size=conf.size) < 0.7
    truth = ConfidenceMap("platt", (0.5, -0.7)).many(conf, agree)  # overconfident scores
    ok = (rng.uniform(size=conf.size) < truth).astype(float)
    a, b = fit_map("platt", conf, agree, ok, l2=0.0).weights
    assert abs(a - 0.5) < 0.1 and abs(b + 0.7) < 0.15
    # a score the rules agree with is right more often: beta-rules finds that, platt cannot
    truth = ConfidenceMap("beta-rules", (0.8, 0.6, -0.5, 1.2)).many(conf, agree)
    ok = (rng.uniform(size=conf.size) < truth).astype(float)
    w = fit_map("beta-rules", conf, agree, ok, l2=0.0).weights
    assert abs(w[0] - 0.8) < 0.2 and abs(w[1] - 0.6) < 0.2 and abs(w[3] - 1.2) < 0.25
    # each form is the identity at its prior weights
    for form in ("platt", "beta", "beta-rules"):
        assert ConfidenceMap.identity(form)(0.5) == pytest.approx(0.5)
        assert ConfidenceMap.identity(form)(0.9, True) == pytest.approx(0.9)
    assert ConfidenceMap("platt", (1.0, 0.0))(1.0) > 0.99


def test_rules_agree_needs_the_same_label_and_an_overlap():
    from govfacts.infer.confidence import rules_agree
    from govfacts.records import Span

    ruled = [Span(10, 14, "POSTS_PUBLISHED"), Span(20, 23, "LAWSUITS")]
    assert rules_agree(11, 13, "POSTS_PUBLISHED", ruled)
    assert not rules_agree(11, 13, "DOCUMENTS_ISSUED", ruled)  # another label
    assert not rules_agree(14, 18, "POSTS_PUBLISHED", ruled)  # touching is not overlapping
    assert rules_agree(22, 30, "LAWSUITS", ruled) and not rules_agree(0, 5, "LAWSUITS", [])


def test_a_confidence_map_reads_the_config_it_writes_and_the_older_platt_pair():
    from govfacts.infer.confidence import ConfidenceMap

    m = ConfidenceMap("beta-rules", (0.1, 0.25, 0.4, 0.5))
    assert ConfidenceMap.from_config(m.to_config()) == m
    assert ConfidenceMap.from_config([0.2, 0.9]) == ConfidenceMap("platt", (0.2, 0.9))
    assert ConfidenceMap.from_config(None) is None and ConfidenceMap.from_config([]) is None
    assert m(0.9, True) > m(0.9, False)
    with pytest.raises(ValueError, match="takes 3 weights"):
        ConfidenceMap("beta", (1.0, 1.0))
    with pytest.raises(ValueError, match="unknown confidence-map form"):
        ConfidenceMap.from_config({"form": "isotonic", "weights": [1.0]})


def test_fit_map_is_stable_with_scores_at_one():
    """Many spans scored 1.0 (a confident hinted tagger) once made plain Newton steps diverge."""
    import numpy as np

    from govfacts.infer.confidence import ConfidenceMap
    from govfacts.train.calibrate import fit_map, span_nll

    rng = np.random.default_rng(0)
    conf = np.r_[np.full(100, 1.0), rng.uniform(0.3, 1.0, 66)]
    ok = (rng.uniform(size=len(conf)) < np.minimum(conf, 0.9)).astype(float)
    agree = np.zeros(len(conf), dtype=bool)
    for form in ("platt", "beta"):
        m = fit_map(form, conf, agree, ok)
        assert all(abs(w) < 5 for w in m.weights)
        assert span_nll(m.many(conf, agree), ok) < span_nll(conf, ok)  # better than the raw scores
    assert isinstance(m, ConfidenceMap)


def test_a_lower_hint_threshold_must_gain_more_than_one_dev_span():
    from govfacts.train.calibrate import pick_hint_threshold

    grid = [{"hint_threshold": 0.5, "f1": 0.8820}, {"hint_threshold": 0.4, "f1": 0.8820},
            {"hint_threshold": 0.2, "f1": 0.8827}, {"hint_threshold": 0.1, "f1": 0.8773}]
    assert pick_hint_threshold(grid, 1 / 161)["hint_threshold"] == 0.5  # +0.0007: less than one of 161 spans
    assert pick_hint_threshold(grid, 0.0)["hint_threshold"] == 0.2       # no tolerance: the best F1
    grid[0]["f1"] = grid[1]["f1"] = 0.8700
    assert pick_hint_threshold(grid, 1 / 161)["hint_threshold"] == 0.2  # -0.0127 at 0.5: more than a span


def test_crossfit_scores_halves_it_was_not_fitted_on():
    """Extra spans from the same population as the held-out halves: a map fitted on dev plus one half
    is better calibrated on the other half than a map fitted on a differently behaved dev alone; a
    form with a feature that matters predicts the held-out halves better than one without it."""
    import numpy as np
    from govfacts.train.calibrate import crossfit

    rng = np.random.default_rng(1)

    def rows(n, ok_of):
        conf = rng.uniform(0.5, 1.0, n)
        agree = rng.uniform(size=n) < 0.6
        return {"conf": conf, "agree": agree, "ok": (rng.uniform(size=n) < ok_of(conf, agree)).astype(float)}

    dev = rows(150, lambda c, a: 0.75)  # dev: right 3 times in 4 whatever the score
    extra = rows(600, lambda c, a: np.where(a, c, c - 0.4))  # extra: calibrated where the rules agree
    groups = [f"agency-{i // 6}" for i in range(600)]
    out = crossfit(("platt", "beta-rules"), dev, extra, groups, repeats=5)
    assert out["repeats"] == 5 and out["groups"] == 100
    assert out["platt"]["ece"] < out["platt"]["ece_fixed_only"]
    assert out["beta-rules"]["nll"] < out["platt"]["nll"]
    assert crossfit(("platt",), dev, extra, ["one agency"] * 600) == {"repeats": 0}
    alone = crossfit(("platt",), None, extra, groups, repeats=2)  # no fixed rows: halves of extra only
    assert alone["repeats"] == 2 and "ece_fixed_only" not in alone["platt"]


def test_confidence_map_takes_documents_outside_the_splits(tiny_tagger, tmp_path):
    """`--map-gold`: annotated documents outside every split join dev for the confidence map only (the
    temperature, thresholds and spans stay those of dev); a document of a split is refused by name."""
    from govfacts.annotations import doc_to_task, write_tasks
    from govfacts.train.calibrate import main
    from tests.conftest import corpus_docs

    model = tmp_path / "tagger"
    shutil.copytree(tiny_tagger, model)
    splits = tiny_tagger.parent / "splits.yaml"
    docs = corpus_docs()
    extra = tmp_path / "extra.json"
    write_tasks(extra, [doc_to_task(docs[i]) for i in ("gov-pingtan-2016", "gov-pingtan-2013", "gov-pingtan-2019")])
    main([str(model), "--splits", str(splits), "--out", str(tmp_path / "cal"), "--no-int8-check",
          "--map-gold", str(extra)])
    rep = json.loads((tmp_path / "cal" / "calibration.json").read_text(encoding="utf-8"))
    platt = rep["confidence"]
    assert rep["dev_docs"] == DEV_IDS
    assert platt["extra_docs"] == ["gov-pingtan-2016", "gov-pingtan-2013", "gov-pingtan-2019"]
    assert platt["extra_spans"] > 0 and platt["extra_ece_before"] is not None
    assert platt["crossfit"]["repeats"] == 20 and platt["crossfit"]["groups"] == 3
    table = platt["by_rules_agreement"]["extra"]
    assert table["agree"]["facts"] + table["alone"]["facts"] == platt["extra_spans"]
    conf = json.loads((model / "config.json").read_text(encoding="utf-8"))
    assert ("govfacts_confidence_map" in conf) is platt["kept"]

    bad = tmp_path / "bad.json"
    write_tasks(bad, [doc_to_task(docs[DEV_IDS[0]])])
    with pytest.raises(ValueError, match=f"{DEV_IDS[0]}.*outside"):
        main([str(model), "--splits", str(splits), "--no-int8-check", "--map-gold", str(bad)])
