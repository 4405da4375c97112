"""MLM pretraining: whole-word masking and tiny end-to-end runs on real reports (seconds each)."""
import json
import math
import random

import pytest

from govfacts.train.pretrain import (corpus_files, corpus_weights, excluded_doc_ids, is_number_word, load_config, pretrain,
                                     whole_word_mask, word_spans, word_weights)

from .conftest import ROOT, SAMPLES

TEXT = "2023年，本机关共收到政府信息公开申请1136件，同比增长15.2%，其中网上申请三百二十件。\n  办结率100%。"
MASK_ID, RANDOM_RANGE = 4, (5, 50)
FILES = [str(SAMPLES / f"{d}.txt") for d in ("gov-pingtan-2011", "gov-pingtan-2015", "hr-dongguan-2015",
                                              "gov-pingtan-2013")]  # the last one is in the test split
TINY = {
    "corpus": FILES,
    "model": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
              "max_position_embeddings": 128},
    "max_len": 64, "batch_size": 8, "lr": 3e-3, "warmup_steps": 2, "max_steps": 20,
    "log_every": 5, "checkpoint_every": 5, "max_minutes": 5, "progress": False,
}


def _mask(seed, boost=3.0, text=TEXT, mask_prob=0.15):
    spans = word_spans(text)
    ids = [100 + i for i in range(len(text))]
    inputs, labels = whole_word_mask(ids, spans, word_weights(text, spans, boost), random.Random(seed),
                                     mask_prob, MASK_ID, RANDOM_RANGE)
    return spans, ids, inputs, labels


def test_word_spans_cover_text():
    spans = word_spans(TEXT)
    assert spans[0][0] == 0 and spans[-1][1] == len(TEXT)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert "1136" in [TEXT[s:e] for s, e in spans]


def test_whole_words_are_masked_together():
    for seed in range(300):
        spans, ids, inputs, labels = _mask(seed)
        assert any(lab != -100 for lab in labels)
        for s, e in spans:
            chosen = [labels[i] != -100 for i in range(s, e)]
            assert all(chosen) or not any(chosen), (seed, TEXT[s:e])
            if all(chosen):
                assert labels[s:e] == ids[s:e]
                masked = [inputs[i] == MASK_ID for i in range(s, e)]
                assert all(masked) or not any(masked)  # the 80/10/10 choice is per word
            else:
                assert inputs[s:e] == ids[s:e]
            if not TEXT[s:e].strip():
                assert not any(chosen)  # whitespace is never a target


def test_mask_rate_and_replacement_mix():
    n_chars = sum(1 for c in TEXT if not c.isspace())
    selected, masked, same = 0, 0, 0
    for seed in range(400):
        _, ids, inputs, labels = _mask(seed)
        sel = [i for i, lab in enumerate(labels) if lab != -100]
        selected += len(sel)
        masked += sum(inputs[i] == MASK_ID for i in sel)
        same += sum(inputs[i] == ids[i] for i in sel)
        assert all(inputs[i] == ids[i] or inputs[i] == MASK_ID or RANDOM_RANGE[0] <= inputs[i] < RANDOM_RANGE[1]
                   for i in sel)
    assert 0.08 < selected / (400 * n_chars) < 0.2
    assert 0.65 < masked / selected < 0.92 and 0.03 < same / selected < 0.2


def test_numbers_and_units_are_favoured():
    assert is_number_word("1136") and is_number_word("三百二十") and is_number_word("15.2")
    assert not is_number_word("政府") and not is_number_word("申请")
    spans = word_spans(TEXT)
    w = dict(zip([TEXT[s:e] for s, e in spans], word_weights(TEXT, spans, 5.0)))
    assert w["1136"] == w["件"] == w["同比"] == 5.0 and w["政府"] == 1.0
    prose = ("本机关认真贯彻落实条例要求，不断完善政府信息公开制度，主动公开政府信息1136条，"
             "进一步提升政务公开质量和水平，切实保障人民群众知情权参与权监督权。")
    pos = prose.index("1136")

    def rate(boost):
        return sum(_mask(seed, boost, prose)[3][pos] != -100 for seed in range(300)) / 300

    assert rate(5.0) > rate(1.0) + 0.1


def test_config_layers_and_test_split_exclusion():
    cfg = load_config(None, {"model": {"hidden_size": 32}, "max_steps": 7})
    assert cfg.model["hidden_size"] == 32 and cfg.model["num_hidden_layers"] == 4
    assert cfg.max_steps == 7 and cfg.max_len <= cfg.model["max_position_embeddings"]
    assert cfg.output_dir == "models/govfacts-base-zh" and cfg.exclude_split == "test"
    test_ids = excluded_doc_ids(cfg, ["gov-pingtan-2013", "gov-pingtan-2016", "gov-pingtan-2022",
                                       "hrss-zhengzhou-2017", "extra-001"])
    assert {"gov-pingtan-2013", "gov-pingtan-2016", "gov-pingtan-2022", "hrss-zhengzhou-2017"} == test_ids
    # exclusions may be patterns, expanded against the corpus files' doc ids
    pat = load_config(None, {"exclude_doc_ids": ["extra-*"], "exclude_split": None})
    assert excluded_doc_ids(pat, ["extra-001", "extra-102", "gov-pingtan-2011"]) == {"extra-001", "extra-102"}


def test_unknown_or_missing_setting_is_a_clear_error(tmp_path):
    from govfacts.settings import SettingsError

    with pytest.raises(SettingsError, match="unknown setting.*seq_len"):
        load_config(None, {"seq_len": 64})
    bad = tmp_path / "pretrain.yaml"
    bad.write_text("max_len: 64\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=f"{bad}: missing setting"):
        load_config(bad)
    with pytest.raises(SettingsError, match="'max_steps' = 'many' is not a int"):
        load_config(None, {"max_steps": "many"})


def _log(out):
    return json.loads((out / "pretrain_log.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return pretrain(None, {**TINY, "output_dir": str(out)})


def test_tiny_pretraining_writes_model_tokenizer_and_log(full_run):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    names = {p.name for p in full_run.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretrain_log.json",
            "mlm_loss.png"} <= names
    assert "checkpoint" not in names and not any(n.endswith((".bin", ".pt")) for n in names)
    log = _log(full_run)
    assert log["step"] == 20 and log["finished"] and log["stopped_by"] == "max_steps"
    assert "gov-pingtan-2013" in log["excluded"] and "gov-pingtan-2013" not in log["corpus"]
    assert [h["step"] for h in log["history"]] == [5, 10, 15, 20]
    losses = [h["loss"] for h in log["history"]]
    assert all(math.isfinite(x) for x in losses) and losses[-1] < losses[0]
    assert all(0 <= h["mlm_acc"] <= 1 for h in log["history"])
    tok = AutoTokenizer.from_pretrained(str(full_run))
    model = AutoModelForMaskedLM.from_pretrained(str(full_run), use_safetensors=True)
    assert model.config.vocab_size == len(tok) and model.config.hidden_size == 32
    text = "共收到申请1136件"
    enc = tok(text, return_tensors="pt")
    assert model(**enc).logits.shape == (1, len(text) + 2, len(tok))


def test_interrupted_run_resumes_exactly(full_run, tmp_path):
    import safetensors.torch as st

    out = tmp_path / "resumed"
    pretrain(None, {**TINY, "output_dir": str(out), "stop_at_step": 10})
    state = json.loads((out / "checkpoint" / "state.json").read_text(encoding="utf-8"))
    assert state["step"] == 10 and _log(out)["stopped_by"] == "stop_at_step"
    assert (out / "model.safetensors").exists()  # a paused run still leaves a usable model
    pretrain(None, {**TINY, "output_dir": str(out)})
    log = _log(out)
    assert log["step"] == 20 and not (out / "checkpoint").exists()
    assert log["history"] == [{**h, "elapsed": g["elapsed"]} for h, g in zip(_log(full_run)["history"],
                                                                              log["history"])]
    a, b = st.load_file(str(full_run / "model.safetensors")), st.load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max() < 1e-5 for k in a)


def test_smaller_then_larger_max_steps_continues(tmp_path):
    out = tmp_path / "grow"
    pretrain(None, {**TINY, "output_dir": str(out), "max_steps": 10, "keep_checkpoint": True})
    assert json.loads((out / "checkpoint" / "state.json").read_text(encoding="utf-8"))["step"] == 10
    pretrain(None, {**TINY, "output_dir": str(out), "max_steps": 15})
    steps = [h["step"] for h in _log(out)["history"]]
    assert steps == [5, 10, 15] and not (out / "checkpoint").exists()
    pretrain(None, {**TINY, "output_dir": str(out), "max_steps": 5}, resume=False)  # fresh start
    assert [h["step"] for h in _log(out)["history"]] == [5]


def test_continued_pretraining_starts_from_the_given_encoder(full_run, tmp_path):
    """`init_from` keeps the encoder's weights, vocabulary and config and trains on (another) corpus."""
    import safetensors.torch as st

    out = tmp_path / "continued"
    small = {**TINY, "model": {**TINY["model"], "hidden_size": 64}}  # ignored: the init's config wins
    pretrain(None, {**small, "output_dir": str(out), "init_from": str(full_run), "max_steps": 5,
                    "corpus": [str(SAMPLES / "hr-dongguan-2015.txt")]})
    log = _log(out)
    assert log["step"] == 5 and log["corpus"] == ["hr-dongguan-2015"]
    assert (out / "tokenizer.json").read_text(encoding="utf-8") == (full_run / "tokenizer.json").read_text(
        encoding="utf-8")
    a, b = st.load_file(str(full_run / "model.safetensors")), st.load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
    moved = [k for k in a if (a[k] - b[k]).abs().max() > 0]
    assert moved and log["history"][0]["loss"] < _log(full_run)["history"][0]["loss"]
    with pytest.raises(ValueError, match="max_position_embeddings"):  # windows longer than the init's positions
        pretrain(None, {**TINY, "output_dir": str(tmp_path / "long"), "init_from": str(full_run), "max_len": 256})


def test_time_budget_stops_cleanly(tmp_path):
    out = pretrain(None, {**TINY, "output_dir": str(tmp_path / "t"), "max_minutes": 1e-9})
    log = _log(out)
    assert log["stopped_by"] == "max_minutes" and log["step"] == 0 and not log["finished"]
    assert (out / "model.safetensors").exists() and (out / "checkpoint" / "state.json").exists()


def test_default_config_file_is_valid():
    cfg = load_config(ROOT / "configs" / "pretrain.yaml")
    m = cfg.model
    assert (m["hidden_size"], m["num_hidden_layers"], m["num_attention_heads"], m["intermediate_size"],
            m["max_position_embeddings"]) == (256, 4, 4, 1024, 512)
    assert cfg.max_len == 256 and cfg.mask_prob == 0.15 and cfg.max_minutes <= 60
    assert cfg.corpus == ["data/samples/*.txt", "data/unlabeled/*.txt"]
    # the news variant: reports weighted 5x beside People's Daily, written outside models/
    news = load_config(ROOT / "configs" / "pretrain-news.yaml")
    assert news.model == cfg.model and not news.output_dir.startswith("models/")
    weights = corpus_weights(news)
    assert {f.parent.name for f in weights} == {"samples", "unlabeled", "pretrain"}
    assert all(w == (1.0 if f.parent.name == "pretrain" else 5.0) for f, w in weights.items())
    files, left_out = corpus_files(news)
    assert "peoples-daily-199801" in {f.stem for f in files} and "hrss-zhengzhou-2017" in left_out


def test_sample_weight_draws_windows_in_proportion():
    from govfacts.train.pretrain import Doc, WindowSampler

    class Tok:
        cls_token_id, sep_token_id, pad_token_id, mask_token_id = 1, 2, 0, 3

        def __len__(self):
            return 50

    docs = [Doc(name, "字" * 100, [10] * 100, [0], [(0, 100)], [1.0], w) for name, w in (("a", 1.0), ("b", 4.0))]
    sampler = WindowSampler(docs, 34, Tok(), 0.15, random.Random(0))
    hits = {"a": 0, "b": 0}
    for _ in range(2000):
        hits[sampler.pick().doc_id] += 1
    assert 3.2 < hits["b"] / hits["a"] < 4.8
    assert len(sampler.window()[0]) == 34


def test_peoples_daily_corpus_is_plain_text_as_the_manifest_says():
    from govfacts.train.corpora import untag

    assert untag("迈向/v  充满/v  [中央/n  人民/n  广播/vn  电台/n]nt  １/m  张/q") == "迈向充满中央人民广播电台１张"
    path = ROOT / "data" / "pretrain" / "peoples-daily-199801.txt"
    text = path.read_text(encoding="utf-8")
    manifest = (ROOT / "data" / "pretrain" / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    row = next(line.split("\t") for line in manifest if line.startswith(path.name))
    assert len(text.rstrip("\n")) == int(row[1])
    assert "/v" not in text[:5000] and "江泽民" in text[:2000]


def test_government_prose_corpus_is_cited_and_never_an_annual_report():
    """data/pretrain/pingtan*: every file cited with its archive path and length; none is an annual disclosure
    report (held out), a page the annotations were drawn from, or a page of the other batch."""
    annotated = (ROOT / "annotations" / "MANIFEST.tsv").read_text(encoding="utf-8")
    paths = []
    for batch in ("pingtan", "pingtan-2"):
        folder = ROOT / "data" / "pretrain" / batch
        rows = [line.split("\t") for line in (folder / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith(("#", "file\t"))]
        assert {r[0] for r in rows} == {p.name for p in folder.glob("*.txt")} and len(rows) >= 40
        for name, chars, repo, path, commit, _title in rows:
            assert len((folder / name).read_text(encoding="utf-8")) == int(chars), name
            assert repo == "changwu/pingtan-gov-zwgk-archive" and len(commit) == 40
            assert "zfxxgknb" not in path and path not in annotated, path
            paths.append(path)
    assert len(paths) == len(set(paths))
    cfg = load_config(ROOT / "configs" / "pretrain-gov.yaml")
    assert cfg.init_from == "models/govfacts-base-zh" and not cfg.output_dir.startswith("models/")
    files, left_out = corpus_files(cfg)
    assert {f.parent.name for f in files} == {"samples", "unlabeled", "pingtan"} and "hrss-zhengzhou-2017" in left_out
    stage2 = load_config(ROOT / "configs" / "pretrain-gov2.yaml")
    assert stage2.init_from == cfg.output_dir and {f.parent.name for f in corpus_files(stage2)[0]} == {
        "samples", "unlabeled", "pingtan", "pingtan-2"}
