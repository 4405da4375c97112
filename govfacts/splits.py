"""Document-level splits (annotations/splits.yaml): one reader, one way to expand its entries, and the
resolver everything uses (`split_members` strictly for training and evaluation, `split_of` leniently
for documents not yet in the corpus).

An entry is a doc_id or a shell-style pattern (`extra-*`) matched against the documents at hand.
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Iterable

import yaml

from govfacts.paths import ANNOTATIONS


def load_splits(path: str | Path | None = None) -> dict[str, list[str]]:
    """Entries per split, as written in splits.yaml."""
    data = yaml.safe_load(Path(path or ANNOTATIONS / "splits.yaml").read_text(encoding="utf-8")) or {}
    return {str(k): [str(e) for e in v or []] for k, v in data.items()}


def is_pattern(entry: str) -> bool:
    return any(c in entry for c in "*?[")


def expand(entry: str, doc_ids: Iterable[str]) -> list[str]:
    """The documents a pattern entry matches (sorted); a literal entry stands for itself."""
    if is_pattern(entry):
        return sorted(d for d in set(doc_ids) if fnmatchcase(d, entry))
    return [entry]


def split_of(splits: dict[str, list[str]], doc_ids: Iterable[str] | None = None) -> dict[str, str]:
    """doc_id → split name. Lenient: a literal is taken as written, a pattern never overrides an assignment."""
    ids = list(doc_ids or [])
    out: dict[str, str] = {}
    for name, entries in splits.items():
        for entry in entries:
            if is_pattern(entry):
                out.update({d: name for d in expand(entry, ids) if d not in out})
            else:
                out[entry] = name
    return out


def split_members(splits_yaml: str | Path | None, doc_ids: Iterable[str]) -> dict[str, list[str]]:
    """Doc ids of every split, strictly: a literal id must be one of `doc_ids` (a pattern may match
    nothing: its sources are optional), and a document that lands in two splits is an error, so a
    broad train pattern can never leak dev/test documents."""
    known = set(doc_ids)
    where = splits_yaml or ANNOTATIONS / "splits.yaml"
    out: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for name, entries in load_splits(where).items():
        ids: list[str] = []
        for entry in entries:
            if not is_pattern(entry) and entry not in known:
                raise KeyError(f"{where}: split {name!r} names an unknown document {entry!r}")
            for d in expand(entry, known):
                if d in owner and owner[d] != name:
                    raise ValueError(f"{where}: document {d!r} is in both {owner[d]!r} and {name!r}")
                if d not in ids:
                    owner[d] = name
                    ids.append(d)
        out[str(name)] = ids
    return out
