"""Document-level splits: patterns, strict resolution, the corpus split as splits.yaml lists it."""
from pathlib import Path

import pytest

import yaml

from govfacts.annotations import load_split
from govfacts.splits import split_members as resolve_splits

ROOT = Path(__file__).resolve().parents[1]
ANN = ROOT / "annotations"
SPLITS = ANN / "splits.yaml"


def test_load_split_follows_splits_yaml(docs):
    splits = yaml.safe_load(SPLITS.read_text(encoding="utf-8"))
    seen = {}
    for name in ("train", "dev", "test"):
        got = [d.doc_id for d in load_split(name, ANN, SPLITS)]
        literal = [x for x in splits[name] if "*" not in x]
        assert got[:len(literal)] == literal  # listed order, patterns expanded after
        for d in got:
            assert seen.setdefault(d, name) == name  # no document in two splits
    assert set(seen) <= set(docs)
    with pytest.raises(KeyError):
        load_split("nope", ANN, SPLITS)


def test_split_patterns(tmp_path, docs):
    ids = sorted(docs)
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"train": ["gov-pingtan-201?", "nothing-*"], "dev": [ids[0]]}))
    got = resolve_splits(f, ids)
    assert got["train"] == sorted(d for d in ids if len(d) == len("gov-pingtan-2011") and d.startswith("gov-pingtan-201"))
    assert got["dev"] == [ids[0]]
    f.write_text(yaml.safe_dump({"train": ["gov-*"], "test": ["gov-pingtan-2022"]}))
    with pytest.raises(ValueError):
        resolve_splits(f, ids)
    f.write_text(yaml.safe_dump({"train": ["no-such-doc"]}))
    with pytest.raises(KeyError):
        resolve_splits(f, ids)
