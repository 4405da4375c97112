"""The test split's gold as data: its hash, and the version models are compared on.

Models are judged on the test split, so a retrain compares the current model and the candidate on the
test split as it was before the pulls since the last retrain: the first pull after a retrain notes that
version (`.studio-test-baseline.json`), the retrain evaluates on it and then lets it go. A test-split
change pulled with --allow-test therefore counts from the next retrain on, and the retrain says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from govfacts.annotations import data_hash, task_to_doc
from govfacts.studio.records import BASELINE, now, read_record, remove_record, write_record
from govfacts.studio.tasks import corpus_tasks, test_split_ids


def gold_tasks(annotations_dir: Path) -> list[dict]:
    """The stored tasks of the test split, by doc_id."""
    corpus = corpus_tasks(annotations_dir)
    return [corpus[d].task for d in sorted(test_split_ids(annotations_dir, corpus))]


def tasks_hash(tasks: list[dict]) -> str:
    """A short hash of what the test gold is, read as every corpus reader reads a task (`task_to_doc`):
    the first digits of the data hash `govfacts evaluate` prints for the same documents."""
    return data_hash([task_to_doc(t) for t in tasks])[:12]


def split_hash(annotations_dir: Path) -> str:
    return tasks_hash(gold_tasks(annotations_dir))


@dataclass
class ComparisonSplit:
    tasks: list[dict]
    hash: str
    current_hash: str
    since: Optional[str] = None  # when the baseline was noted (None: no pull since the last retrain)

    @property
    def changed(self) -> bool:
        return self.hash != self.current_hash

    def note(self) -> str:
        """What the comparison is made on, in words (printed by retrain, kept in its record)."""
        where = (f"as it was before the pulls since {self.since}" if self.since else "as it is (no pull since the last "
                 "retrain)")
        text = f"models compared on the test split {where}: {len(self.tasks)} documents, hash {self.hash}"
        if self.changed:
            text += (f"; a pull changed the test split since (now hash {self.current_hash}): that gold counts from "
                     "the next retrain on")
        return text


def note_baseline(annotations_dir: Path) -> str:
    """Before a pull: keep the test split as it is unless a version since the last retrain is kept already;
    returns the test split's hash as it is now."""
    tasks = gold_tasks(annotations_dir)
    h = tasks_hash(tasks)
    if read_record(annotations_dir, BASELINE) is None:
        write_record(annotations_dir, BASELINE, {"hash": h, "since": now(), "tasks": tasks})
    return h


def comparison_split(annotations_dir: Path) -> ComparisonSplit:
    """The test split a retrain compares on: the noted baseline, else the test split as it is."""
    current = gold_tasks(annotations_dir)
    cur_hash = tasks_hash(current)
    rec = read_record(annotations_dir, BASELINE)
    if rec and isinstance(rec.get("tasks"), list) and tasks_hash(rec["tasks"]) == rec.get("hash"):
        return ComparisonSplit(rec["tasks"], rec["hash"], cur_hash, rec.get("since"))
    return ComparisonSplit(current, cur_hash, cur_hash)


def release_baseline(annotations_dir: Path) -> None:
    """After a retrain: the next pull notes the test split afresh."""
    remove_record(annotations_dir, BASELINE)
