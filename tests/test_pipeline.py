"""scripts/pipeline.py: a step runs when an input or output changed since it ran, and records its hashes."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("pipeline", ROOT / "scripts" / "pipeline.py")
pipeline = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pipeline)


def test_project_file_names_existing_inputs():
    steps = pipeline.load_project()
    assert list(steps) == ["pretrain", "crossval", "finetune", "calibrate", "evaluate", "bench"]
    for name, step in steps.items():
        missing = [d for d in step["deps"] if not (ROOT / d).exists()]
        assert not missing, (name, missing)


def test_staleness_follows_content(tmp_path):
    (tmp_path / "in.txt").write_text("a", encoding="utf-8")
    step = {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "outputs": ["out.txt"]}
    assert pipeline.why_stale("s", step, {}, tmp_path) == ["never ran"]
    (tmp_path / "out.txt").write_text("a", encoding="utf-8")
    lock = {"s": {"cmd": step["cmd"], "deps": pipeline.file_hashes(step["deps"], tmp_path),
                  "outputs": pipeline.file_hashes(step["outputs"], tmp_path)}}
    assert pipeline.why_stale("s", step, lock, tmp_path) == []
    (tmp_path / "in.txt").write_text("b", encoding="utf-8")
    assert pipeline.why_stale("s", step, lock, tmp_path) == ["dep changed: in.txt"]
    (tmp_path / "out.txt").unlink()
    assert "output changed: out.txt" in pipeline.why_stale("s", step, lock, tmp_path)
    assert "command changed" in pipeline.why_stale("s", {**step, "cmd": "true"}, lock, tmp_path)
    pipeline.write_lock(lock, tmp_path / "project.lock")
    assert json.loads((tmp_path / "project.lock").read_text(encoding="utf-8")) == lock
