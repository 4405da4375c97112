"""A tiny version of the whole model pipeline through the CLI: vocab → pretrain → fine-tune → extract."""
import json

import pytest
from typer.testing import CliRunner

from govfacts.cli import app
from govfacts.factsio import read_facts

runner = CliRunner()
TINY = "{hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 64, max_position_embeddings: 256}"


@pytest.mark.slow
def test_pretrain_finetune_extract(tmp_path, samples):
    base, tagger = tmp_path / "base", tmp_path / "tagger"
    res = runner.invoke(app, ["train", "pretrain", "--set", f"output_dir={base}", "--set", f"model={TINY}",
                              "--set", "max_len=64", "--set", "batch_size=4", "--set", "max_steps=8",
                              "--set", "checkpoint_every=4", "--set", "progress=false", "--fresh"])
    assert res.exit_code == 0, res.output
    assert (base / "model.safetensors").exists() and (base / "tokenizer.json").exists()
    log = json.loads((base / "pretrain_log.json").read_text(encoding="utf-8"))
    assert log  # the loss history the model card reports

    splits = tmp_path / "splits.yaml"
    splits.write_text("train: [hr-dongguan-2015, hrss-jilin-province-2014]\ndev: [gov-pingtan-2024]\n"
                      "test: [hrss-zhengzhou-2017]\n", encoding="utf-8")
    res = runner.invoke(app, ["train", "finetune", "--base", str(base), "--set", f"output_dir={tagger}",
                              "--set", f"splits={splits}", "--set", "epochs=1", "--set", "max_steps=6",
                              "--set", "max_len=64", "--set", "stride=16", "--set", "progress=false",
                              "--set", "num_threads=1"])
    assert res.exit_code == 0, res.output
    assert (tagger / "model.safetensors").exists()
    cfg = json.loads((tagger / "config.json").read_text(encoding="utf-8"))
    assert len(cfg["id2label"]) == 47

    out = tmp_path / "facts.jsonl"
    res = runner.invoke(app, ["extract", str(samples / "hr-dongguan-2015.txt"), str(samples / "gov-pingtan-2024.txt"),
                              "-o", str(out), "--model", str(tagger), "-q"])
    assert res.exit_code == 0, res.output
    text = (samples / "hr-dongguan-2015.txt").read_text(encoding="utf-8")
    for f in (f for f in read_facts(out) if f.source == "prose"):
        assert f.extractor.startswith("tagger@") and 0 <= f.confidence <= 1
        if f.doc_id == "hr-dongguan-2015":
            assert text[f.start:f.end] == f.text
