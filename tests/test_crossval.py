"""Grouped cross-validation over agencies: folds never split an agency, every run is scored beside the
rules on its held-out agencies, results are kept per run and a second call resumes (tiny real training)."""
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import corpus_docs

ROOT = Path(__file__).resolve().parents[1]
POOL = ["hrss-jilin-province-2014", "hr-dongguan-2015", "gov-pingtan-2011", "gov-pingtan-2015", "gov-suqian-2023",
        "extra-001", "extra-002"]


def _tiny_base(out: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from govfacts.train.vocab import build_tokenizer

    docs = corpus_docs()
    tok = build_tokenizer([docs[i].text for i in POOL], out)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id or 0)
    BertForMaskedLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_grouped_crossval_runs_scores_and_resumes(tmp_path):
    from govfacts.train.crossval import agency_of, load_cv_settings, make_folds, plan, run

    assert agency_of("gov-pingtan-2013", {}) == agency_of("gov-pingtan-2024", {}) == "gov-pingtan"
    assert agency_of("gov-pingtan-2013-tax", {}) == "gov-pingtan-tax"
    assert agency_of("extra-001", {"extra-001": {"agency": "厦门市人力资源和社会保障局"}}) == "厦门市人力资源和社会保障局"

    splits = tmp_path / "splits.yaml"
    splits.write_text(yaml.safe_dump({"train": POOL[:5] + ["neg-0*"], "dev": POOL[5:], "test": ["gov-pingtan-2022"]}),
                      encoding="utf-8")
    base = _tiny_base(tmp_path / "base")
    tiny = {"base_model": str(base), "base_layers": 1, "epochs": 1, "max_steps": 2, "batch_size": 8,
            "num_threads": 1, "eval_every": 1, "max_minutes": 2, "augment": 0}
    conf = yaml.safe_load((ROOT / "configs" / "crossval.yaml").read_text(encoding="utf-8"))
    conf.update(splits=str(splits), folds=2, seeds=[0], recipes={"tiny": tiny}, out_dir=str(tmp_path / "cv"),
                inner_dev_share=0.2, calibrate=False)  # calibration has its own tests; here it is slow
    (tmp_path / "crossval.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    cfg = load_cv_settings(tmp_path / "crossval.yaml")
    assert list(cfg.recipes) == ["tiny"]
    p = plan(cfg)
    folded = [g for f in p.folds for g in f]
    assert sorted(folded) == sorted(p.groups) and len(folded) == len(set(folded))  # an agency is in one fold
    assert "gov-pingtan" in p.groups and len(p.groups["gov-pingtan"]) == 2
    assert p.always and all(d.startswith("neg-0") for d in p.always)  # trained on, never scored
    assert not any(d.doc_id == "gov-pingtan-2022" for g in p.groups.values() for d in g)  # test never pooled
    assert make_folds(p.groups, 2) == p.folds  # deterministic

    import dataclasses

    part = run(dataclasses.replace(cfg, only_folds=[1]), progress=lambda m: None)  # a first look at one fold
    assert [r.name for r in (tmp_path / "cv" / "results").glob("*.json")] == ["tiny-f1-s0.json"]
    assert part["recipes"]["tiny"]["runs"] == 1 and not part["recipes"]["tiny"]["complete"]
    s = run(cfg, progress=lambda m: None)  # the whole run takes the fold done before as it is
    results = sorted((tmp_path / "cv" / "results").glob("*.json"))
    assert [r.name for r in results] == ["tiny-f0-s0.json", "tiny-f1-s0.json"]
    scored = []
    for r in results:
        res = json.loads(r.read_text(encoding="utf-8"))
        train = yaml.safe_load((tmp_path / "cv" / f"tiny-f{res['fold']}-s0" / "splits.yaml").read_text("utf-8"))
        assert not set(res["docs"]) & set(train["train"] + train["dev"])  # held-out agencies never trained on
        assert len(res["tagger"]["counts"]) == len(res["docs"]) == len(res["rules"]["counts"])
        assert 0 <= res["tagger"]["f1"] <= 1 and res["rules"]["f1"] > 0.5  # the rules find these reports' facts
        assert not (tmp_path / "cv" / f"tiny-f{res['fold']}-s0" / "model").exists()  # deleted once scored
        scored += res["docs"]
    assert sorted(scored) == sorted(d.doc_id for g in p.groups.values() for d in g)
    x = s["recipes"]["tiny"]
    assert x["complete"] and x["runs"] == 2 and x["vs_rules"]["low"] <= x["vs_rules"]["diff"] <= x["vs_rules"]["high"]
    md = (tmp_path / "cv" / "cv.md").read_text(encoding="utf-8")
    assert "| tiny | 2 |" in md and "rules" in md

    mtimes = [r.stat().st_mtime_ns for r in results]
    seen = []
    run(cfg, progress=seen.append)  # resumes: nothing is trained again
    assert [r.stat().st_mtime_ns for r in results] == mtimes and all("done before" in m for m in seen)


def test_kept_fold_models_are_read_again_paired_with_their_stored_scores(tmp_path):
    """`reread`: kept fold models read with a tagger option changed, paired with the stored result; read
    as they were trained, they give the stored counts exactly; a key that is no reading option is refused."""
    from govfacts.train.crossval import load_cv_settings, reread, run

    splits = tmp_path / "splits.yaml"
    splits.write_text(yaml.safe_dump({"train": POOL[:5], "dev": POOL[5:], "test": []}), encoding="utf-8")
    tiny = {"base_model": str(_tiny_base(tmp_path / "base")), "epochs": 1, "max_steps": 2, "batch_size": 8,
            "num_threads": 1, "eval_every": 1, "max_minutes": 2, "augment": 0}
    conf = yaml.safe_load((ROOT / "configs" / "crossval.yaml").read_text(encoding="utf-8"))
    conf.update(splits=str(splits), folds=2, seeds=[0], recipes={"tiny": tiny}, out_dir=str(tmp_path / "cv"),
                inner_dev_share=0.2, calibrate=False, keep_models=True, train_only=[])
    (tmp_path / "crossval.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True), encoding="utf-8")
    cfg = load_cv_settings(tmp_path / "crossval.yaml")
    with pytest.raises(ValueError, match="no kept fold model"):
        reread(cfg, {"unhedged": True}, progress=lambda m: None)
    run(cfg, progress=lambda m: None)
    assert (tmp_path / "cv" / "tiny-f0-s0" / "model" / "model.safetensors").exists()
    same = reread(cfg, {"unhedged": False}, progress=lambda m: None)
    assert len(same["runs"]) == 2
    assert all(r["counts_after"] == r["counts_before"] for r in same["runs"]) and same["after_vs_before"]["diff"] == 0
    other = reread(cfg, {"focus": [8, 4, 8]}, progress=lambda m: None)
    assert other["reading"] == {"focus": [8, 4, 8]} and len(other["runs"]) == 2
    md = (tmp_path / "cv" / "reread-focus=8,4,8.md").read_text(encoding="utf-8")
    assert "| tiny-f0-s0 |" in md and "read again − stored" in md
    with pytest.raises(ValueError, match="tagger options are"):
        reread(cfg, {"epochs": 3}, progress=lambda m: None)


def test_base_layers_keeps_the_first_layers_of_the_base(tmp_path):
    """`base_layers: N` fine-tunes the first N encoder layers of the base, with their pretrained weights;
    `base_ffn: M` keeps M of each layer's feed-forward neurons, `base_hidden: H` H dimensions of the hidden state."""
    import torch
    from safetensors.torch import load_file

    from govfacts.train.finetune import finetune

    base = _tiny_base(tmp_path / "base")
    splits = tmp_path / "splits.yaml"
    splits.write_text(yaml.safe_dump({"train": POOL[:2], "dev": POOL[5:6], "test": []}), encoding="utf-8")
    out = finetune(None, {"base_model": str(base), "base_layers": 1, "base_ffn": 24, "base_hidden": 16, "annotations": str(ROOT / "annotations"),
                          "splits": str(splits), "output_dir": str(tmp_path / "t"), "epochs": 1, "max_steps": 1,
                          "num_threads": 1, "progress": False, "augment": 0})
    conf = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert conf["num_hidden_layers"] == 1 and conf["intermediate_size"] == 24 and conf["hidden_size"] == 16
    got, pre = load_file(str(out / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert not any(".layer.1." in k for k in got)
    assert got["bert.encoder.layer.0.intermediate.dense.weight"].shape == (24, 16)
    tok = json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["truncation"] is None and tok["padding"] is None  # saved as a tokenizer, not as the windows used it
    assert "max_length" not in json.loads((out / "tokenizer_config.json").read_text(encoding="utf-8"))
    key = "bert.embeddings.word_embeddings.weight"  # each kept dimension is one of the base's after one small step
    near = (got[key][:, :, None] - pre[key][:, None, :]).abs().amax(dim=0) < 5e-3
    assert near.any(dim=1).all() and near.any(dim=0).sum() == 16


def test_only_folds_must_name_folds_that_exist():
    from govfacts.train.crossval import load_cv_settings

    assert load_cv_settings(None, {"only_folds": [0, 4]}).only_folds == [0, 4]
    for bad in ([], [5], [-1], ["1"]):
        with pytest.raises(ValueError, match="only_folds must list fold numbers from 0 to 4"):
            load_cv_settings(None, {"only_folds": bad})


def test_recipes_are_paired_on_the_runs_both_have(tmp_path):
    """A recipe run on some folds only (`only_folds`) is compared with another on the (fold, seed) runs both have,
    and the summary says so; complete recipes are paired over all their runs, as before."""
    from govfacts.train.crossval import load_cv_settings, markdown, summarize

    def result(recipe, fold, tp):
        counts = [[tp, 10, 10], [tp, 10, 10]]  # (true positives, predicted, gold) per held-out document
        return {"recipe": recipe, "fold": fold, "seed": 7, "docs": [f"d{fold}a", f"d{fold}b"],
                "tagger": {"f1": tp / 10, "counts": counts}, "rules": {"f1": 0.8, "counts": [[8, 10, 10]] * 2}}

    (tmp_path / "results").mkdir()
    runs = [result("old", f, 7) for f in range(2)] + [result("new", 1, 9)]
    for x in runs:
        (tmp_path / "results" / f"{x['recipe']}-f{x['fold']}-s7.json").write_text(json.dumps(x), encoding="utf-8")
    cfg = load_cv_settings(None, {"folds": 2, "seeds": [7], "recipes": {"old": {}, "new": {}}})
    s = summarize(tmp_path, ["old", "new"], cfg)
    assert s["recipes"]["old"]["complete"] and not s["recipes"]["new"]["complete"]
    (pair,) = s["pairs"]
    assert pair["runs"] == 1 and not pair["complete"] and abs(pair["diff"] - (0.7 - 0.9)) < 1e-9  # fold 1 only
    assert "(on the 1 runs both have)" in markdown(s)
    x = result("new", 0, 9)
    (tmp_path / "results" / "new-f0-s7.json").write_text(json.dumps(x), encoding="utf-8")
    (pair,) = summarize(tmp_path, ["old", "new"], cfg)["pairs"]
    assert pair["runs"] == 2 and pair["complete"]


def test_a_group_of_documents_is_scored_apart(tmp_path):
    """`doc_groups`: the held-out documents matching a group's patterns are pooled on their own, tagger beside the
    rules; a group with no held-out document is None, and the whole recipe's scores are unchanged."""
    from govfacts.train.crossval import load_cv_settings, markdown, summarize

    (tmp_path / "results").mkdir()
    for fold in range(2):
        x = {"recipe": "r", "fold": fold, "seed": 7, "docs": [f"extra-7a0{fold}", f"gov-x-{fold}"],
             "tagger": {"f1": 0.0, "counts": [[9, 10, 10], [6, 10, 10]]},
             "rules": {"f1": 0.0, "counts": [[7, 10, 10], [8, 10, 10]]}}
        (tmp_path / "results" / f"r-f{fold}-s7.json").write_text(json.dumps(x), encoding="utf-8")
    cfg = load_cv_settings(None, {"folds": 2, "seeds": [7], "recipes": {"r": {}},
                                  "doc_groups": {"new": ["extra-7*"], "old": ["gov-*"], "none": ["zz-*"]}})
    s = summarize(tmp_path, ["r"], cfg)["recipes"]["r"]
    new, old = s["groups"]["new"], s["groups"]["old"]
    assert (new["docs"], new["gold"]) == (2, 20) and (new["pooled"], new["rules_pooled"]) == pytest.approx((0.9, 0.7))
    assert old["docs"] == 2 and (old["pooled"], old["rules_pooled"]) == pytest.approx((0.6, 0.8))
    assert abs(new["vs_rules"]["diff"] - 0.2) < 1e-9 and s["groups"]["none"] is None
    assert abs(s["pooled"] - 0.75) < 1e-9 and abs(s["rules_pooled"] - 0.75) < 1e-9
    md = markdown(summarize(tmp_path, ["r"], cfg))
    assert "| r | new | 2 | 20 | 0.900 | 0.700 | +0.200" in md and "| r | none |" not in md


def test_a_reading_is_checked_before_any_model_is_read():
    from govfacts.train.crossval import check_reading

    assert check_reading({"focus": "96,32,48"}) == {"focus": (96, 32, 48)}
    assert check_reading({"focus": [96, 32, 48], "stride": 16}) == {"focus": (96, 32, 48), "stride": 16}
    for bad in ("96,32", [96, "x", 48], 7):
        with pytest.raises(ValueError, match="focus must be three whole numbers"):
            check_reading({"focus": bad})


def test_a_distillation_teacher_is_named_per_fold_and_seed():
    from govfacts.train.crossval import fold_recipe

    recipe = {"base_layers": 2, "teacher": "runs/cv/base-f{fold}-s{seed}/model"}
    assert fold_recipe(recipe, 3, 21) == {"base_layers": 2, "teacher": "runs/cv/base-f3-s21/model"}
    assert recipe["teacher"] == "runs/cv/base-f{fold}-s{seed}/model"  # the recipe itself is left as it was
    assert fold_recipe({"focus": [64, 24, 40]}, 0, 7) == {"focus": [64, 24, 40]}
    assert fold_recipe({"base_model": "runs/cv/kd-f{fold}-s{seed}/model", "base_ffn": 512}, 1, 7) == \
        {"base_model": "runs/cv/kd-f1-s7/model", "base_ffn": 512}


def test_the_lead_over_the_rules_is_broken_down_by_label(tmp_path):
    """With the gold documents, the spans each run stored are matched again per label: the tagger's and the rules'
    F1 for every label either gives or the gold holds, paired over (run, document) rows; a run without stored
    spans gives no breakdown."""
    from govfacts.annotations import AnnotatedDoc
    from govfacts.records import Span
    from govfacts.train.crossval import load_cv_settings, markdown, summarize

    text = "网站发布信息120条，行政诉讼3起，接听电话500次。"
    gold = [Span(6, 10, "POSTS_PUBLISHED", "120条"), Span(15, 17, "LAWSUITS", "3起"), Span(22, 26, "CALLS_ANSWERED", "500次")]
    docs = {f"d{i}": AnnotatedDoc(f"d{i}", text, list(gold)) for i in range(2)}
    tagger = [[6, 10, "POSTS_PUBLISHED", 0.9], [22, 26, "ONLINE_INQUIRIES", 0.6]]  # a relabelled call count
    rules = [[15, 17, "LAWSUITS", 1.0], [22, 26, "CALLS_ANSWERED", 1.0]]       # the post count missed
    (tmp_path / "results").mkdir()
    for fold in range(2):
        d = f"d{fold}"
        x = {"recipe": "r", "fold": fold, "seed": 7, "docs": [d],
             "tagger": {"f1": 0.0, "counts": [[1, 2, 3]], "spans": {d: tagger}},
             "rules": {"f1": 0.0, "counts": [[2, 2, 3]], "spans": {d: rules}}}
        (tmp_path / "results" / f"r-f{fold}-s7.json").write_text(json.dumps(x), encoding="utf-8")
    cfg = load_cv_settings(None, {"folds": 2, "seeds": [7], "recipes": {"r": {}}, "doc_groups": {}})
    labels = summarize(tmp_path, ["r"], cfg, docs)["recipes"]["r"]["labels"]
    assert sorted(labels) == ["CALLS_ANSWERED", "LAWSUITS", "ONLINE_INQUIRIES", "POSTS_PUBLISHED"]
    posts, calls, inquiries = labels["POSTS_PUBLISHED"], labels["CALLS_ANSWERED"], labels["ONLINE_INQUIRIES"]
    assert (posts["gold"], posts["tagger_pred"], posts["rules_pred"]) == (2, 2, 0)
    assert (posts["tagger"], posts["rules"]) == (1.0, 0.0) and posts["vs_rules"]["diff"] == 1.0
    assert (calls["tagger"], calls["rules"]) == (0.0, 1.0) and calls["vs_rules"]["b_better"]
    assert (inquiries["gold"], inquiries["tagger_pred"], inquiries["tagger"]) == (0, 2, 0.0)
    assert "| r | LAWSUITS | 2 | 0 | 2 | 0.000 | 1.000 | -1.000" in markdown(summarize(tmp_path, ["r"], cfg, docs))
    assert summarize(tmp_path, ["r"], cfg)["recipes"]["r"]["labels"] is None  # no gold documents given
    for f in (tmp_path / "results").glob("*.json"):
        x = json.loads(f.read_text(encoding="utf-8"))
        del x["rules"]["spans"]
        f.write_text(json.dumps(x), encoding="utf-8")
    assert summarize(tmp_path, ["r"], cfg, docs)["recipes"]["r"]["labels"] is None
