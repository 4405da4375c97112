"""Fact files: the three formats read back the facts written, a malformed line is named by file and line
(and skipped when the caller collects problems), older files without evidence get the defaults."""
import json

import pytest
from typer.testing import CliRunner

from govfacts.cli.main import app
from govfacts.factsio import read_fact_table, read_facts, write_facts
from govfacts.records import Fact


def _facts(n=5):
    return [Fact(doc_id=f"d{i % 2}", path="r.txt", metric="STAFF", value=float(i), unit="人", qualifier="exact",
                 text=f"{i}人", start=i, end=i + 2, confidence=0.5 + i / 100, agency="某局" if i else None,
                 year=2020 + i % 2, source="table" if i == 3 else "prose", cell="x.total" if i == 3 else None,
                 evidence=f"共{i}人。\n") for i in range(n)]


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_round_trip(tmp_path, ext):
    facts = _facts()
    write_facts(tmp_path / f"f.{ext}", facts)
    assert read_facts(tmp_path / f"f.{ext}") == facts


def test_malformed_lines_are_named_and_skipped(tmp_path):
    path = tmp_path / "f.jsonl"
    write_facts(path, _facts())
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = '{"doc_id": "d1", oops'
    lines[2] = "[1, 2]"
    lines[3] = json.dumps(dict(json.loads(lines[3]), confidence=None))
    lines[4] = json.dumps(dict(json.loads(lines[4]), value="many"))
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    problems = []
    table = read_fact_table(path, problems=problems)
    assert table.num_rows == 1 and table["value"].to_pylist() == [0.0]
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (2, 3, 4, 5)]
    assert "malformed JSON" in problems[0] and "no confidence" in problems[2] and "wrong type" in problems[3]
    with pytest.raises(ValueError, match=f"{path}:2: .*and 3 more"):
        read_facts(path)
    res = CliRunner().invoke(app, ["summarize", str(path), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0 and (tmp_path / "s" / "facts_wide.csv").exists()
    assert "4 malformed lines skipped" in res.output and f"{path}:2" in res.output.replace("\n", "")


def test_a_file_without_evidence_gets_the_defaults(tmp_path):
    path = tmp_path / "old.jsonl"
    rows = [{k: v for k, v in f.to_dict().items() if not k.startswith(("evidence", "source", "extractor"))}
            for f in _facts(2)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    got = read_facts(path)
    assert [(f.evidence, f.evidence_start, f.source, f.extractor) for f in got] == [("", -1, "prose", "")] * 2
