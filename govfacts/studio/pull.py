"""`govfacts studio pull`: the annotators' work merged back into annotations/ by doc_id.

Export → validated documents → merge plan → atomic writes; nothing is written when the export cannot
be fetched or parsed, and every other document of the corpus is left exactly as it was.
"""
from __future__ import annotations

import json
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from govfacts.annotations import AnnotatedDoc, TaskProblem, doc_to_task, read_tasks, task_to_doc, validate_exports, write_tasks
from govfacts.atomic import write_text_atomic
from govfacts.records import Span
from govfacts.splits import split_of
from govfacts.studio.client import DEFAULT_TITLE, Studio, StudioError
from govfacts.studio.records import PULL, now, read_record, write_record
from govfacts.studio.tasks import corpus_tasks, test_split_ids
from govfacts.studio.testsplit import note_baseline, split_hash


def parse_export(raw: bytes | str, source: str) -> list[dict]:
    """Tasks of a Label Studio JSON export; a malformed export is a StudioError (nothing is merged)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise StudioError(f"{source}: the export is not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as e:
        raise StudioError(f"{source}: the export is not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); "
                          "nothing was written") from None
    if isinstance(data, dict):
        raise StudioError(f"{source}: the export is one JSON object, not a list of Label Studio tasks: export the "
                          "project as JSON (not JSON-MIN); nothing was written")
    if not isinstance(data, list):
        raise StudioError(f"{source}: the export is not a list of Label Studio tasks; nothing was written")
    if data and all(isinstance(t, dict) and "data" not in t for t in data) \
            and any({"annotation_id", "annotator", "label"} & set(t) for t in data):
        raise StudioError(f"{source}: this is a JSON-MIN export (tasks without data and annotations): export the "
                          "project as JSON (not JSON-MIN); nothing was written")
    return data


def _submitted(task: dict) -> bool:
    return any(isinstance(a, dict) and not a.get("was_cancelled") for a in task.get("annotations") or [])


@dataclass
class DocChange:
    doc_id: str
    status: str  # new | updated | unchanged
    added: list[Span] = field(default_factory=list)
    removed: list[Span] = field(default_factory=list)
    edited: list[tuple[Span, Span]] = field(default_factory=list)  # (old, new)
    file: Optional[Path] = None
    notes: list[str] = field(default_factory=list)


@dataclass
class PullResult:
    changes: list[DocChange] = field(default_factory=list)
    problems: list[TaskProblem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # tasks without a submitted annotation
    written: list[Path] = field(default_factory=list)
    split_added: list[str] = field(default_factory=list)
    split: Optional[str] = None
    test_before: Optional[str] = None  # hash of the test split's gold before / after the merge
    test_after: Optional[str] = None

    def per_label(self) -> dict[str, Counter]:
        """label → Counter(added, edited, removed); an edit counts under the label the span has now."""
        out: dict[str, Counter] = {}
        for c in self.changes:
            for s in c.added:
                out.setdefault(s.label, Counter())["added"] += 1
            for s in c.removed:
                out.setdefault(s.label, Counter())["removed"] += 1
            for _, new in c.edited:
                out.setdefault(new.label, Counter())["edited"] += 1
        return dict(sorted(out.items()))

    def counts(self) -> dict[str, int]:
        return {k: sum(c.status == k for c in self.changes) for k in ("new", "updated", "unchanged")}


def report_lines(res: PullResult, dry_run: bool = False) -> list[str]:
    """The pull's problems, change table per label and changed documents as plain lines: what `studio pull`
    prints, the ML backend logs after its automatic pull and the pull record keeps."""
    lines = [f"problem (task skipped): {p}" for p in res.problems]
    if res.skipped:
        lines.append(f"{len(res.skipped)} exported tasks have no submitted annotation (skipped)")
    lines.append("changes per label (an edit counts under the label the span has now):")
    per = res.per_label()
    rows = [(lab, c["added"], c["edited"], c["removed"]) for lab, c in per.items()]
    rows.append(("all", *(sum(c[k] for c in per.values()) for k in ("added", "edited", "removed"))))
    width = max(len(r[0]) for r in rows)
    lines.append(f"  {'label':<{width}}  added  edited  removed")
    lines += [f"  {lab:<{width}}  {a:>5}  {e:>6}  {r:>7}" for lab, a, e, r in rows]
    for c in res.changes:
        if c.status == "unchanged":
            continue
        lines.append(f"{c.status}: {c.doc_id} → {c.file}  (+{len(c.added)} ~{len(c.edited)} -{len(c.removed)})")
        lines += [f"   edited [{o.start}:{o.end}] {o.text} {o.label} → [{n.start}:{n.end}] {n.text} {n.label}"
                  for o, n in c.edited]
        lines += [f"   note: {note}" for note in c.notes]
    n = res.counts()
    lines.append(f"{n['new']} new, {n['updated']} updated, {n['unchanged']} unchanged documents; "
                 + ("(dry run: nothing written)" if dry_run else f"{len(res.written)} files written"))
    if res.split_added:
        lines.append(f"added to split {res.split!r} of splits.yaml: {', '.join(res.split_added)}")
    if res.test_before and res.test_after:
        lines.append(f"test split: {'unchanged' if res.test_before == res.test_after else 'changed'} (hash "
                     + (res.test_before if res.test_before == res.test_after else f"{res.test_before} → {res.test_after}")
                     + ")")
    return lines


def write_pull_record(annotations_dir: Path, res: PullResult, by: str, source: str) -> dict:
    """The pull record (`studio pull` and `studio status` show it)."""
    rec = {"time": now(), "by": by, "source": source, **res.counts(),
           "per_label": {k: dict(v) for k, v in res.per_label().items()},
           "changed": [c.doc_id for c in res.changes if c.status != "unchanged"],
           "problems": [str(p) for p in res.problems], "skipped": len(res.skipped),
           "written": [str(p) for p in res.written], "split_added": res.split_added,
           "test_split": {"before": res.test_before, "after": res.test_after},
           "lines": report_lines(res)}
    write_record(annotations_dir, PULL, rec)
    return rec


def last_pull(annotations_dir: Path) -> Optional[dict]:
    return read_record(annotations_dir, PULL)


def span_changes(old: list[Span], new: list[Span]) -> tuple[list[Span], list[tuple[Span, Span]], list[Span]]:
    """(added, edited, removed): identical spans are unchanged; an overlapping pair with another label
    or other boundaries is an edit (largest overlap first, one-to-one); the rest are added / removed."""
    key = lambda s: (s.start, s.end, s.label)  # noqa: E731
    old_keys, new_keys = Counter(map(key, old)), Counter(map(key, new))
    common = old_keys & new_keys
    rest_old, rest_new = [], []
    c1, c2 = Counter(common), Counter(common)
    for s in old:
        if c1[key(s)]:
            c1[key(s)] -= 1
        else:
            rest_old.append(s)
    for s in new:
        if c2[key(s)]:
            c2[key(s)] -= 1
        else:
            rest_new.append(s)
    pairs = sorted(((min(a.end, b.end) - max(a.start, b.start), i, j) for i, a in enumerate(rest_old)
                    for j, b in enumerate(rest_new) if min(a.end, b.end) > max(a.start, b.start)), reverse=True)
    used_o, used_n, edited = set(), set(), []
    for _, i, j in pairs:
        if i in used_o or j in used_n:
            continue
        used_o.add(i)
        used_n.add(j)
        edited.append((rest_old[i], rest_new[j]))
    edited.sort(key=lambda p: p[1].start)
    added = [s for j, s in enumerate(rest_new) if j not in used_n]
    removed = [s for i, s in enumerate(rest_old) if i not in used_o]
    return added, edited, removed


def _safe_name(doc_id: str) -> str:
    name = re.sub(r"[^\w.\-]+", "_", doc_id, flags=re.UNICODE).strip("._") or "doc"
    return name[:150]


def _merged_task(doc: AnnotatedDoc, old: Optional[dict], change: DocChange) -> dict:
    """The corpus task of a pulled document: Label Studio's spans; the reviewed `ignore` / `not_tagged`
    of the stored task are kept when the text is the same (not-tagged numbers now tagged are dropped)."""
    data = dict(doc.meta)
    ignore, not_tagged = list(doc.ignore), list(doc.not_tagged)
    if old is not None:
        od = old.get("data") or {}
        if od.get("text") == doc.text:
            data = {**{k: v for k, v in od.items() if k not in ("text", "ignore", "not_tagged")}, **data}
            ignore = ignore or [tuple(x) for x in od.get("ignore") or []]
            not_tagged = not_tagged or list(od.get("not_tagged") or [])
        else:
            change.notes.append("the document text differs from the stored one: the stored task is replaced whole")
    kept = []
    for nt in not_tagged:
        s, e = int(nt.get("start", -1)), int(nt.get("end", -1))
        if any(min(e, sp.end) > max(s, sp.start) for sp in doc.spans):
            change.notes.append(f"not-tagged entry [{s}:{e}] dropped: that number is tagged now")
        else:
            kept.append(nt)
    data.pop("id", None)
    task = doc_to_task(AnnotatedDoc(doc.doc_id, doc.text, doc.spans, ignore, kept, meta=data))
    if old is not None:  # keep the stored key order: a merge changes only what changed
        order = list((old.get("data") or {}).keys())
        d = task["data"]
        task["data"] = {**{k: d[k] for k in order if k in d}, **{k: v for k, v in d.items() if k not in order}}
    return task


def plan_merge(annotations_dir: Path, docs: list[AnnotatedDoc]) -> tuple[list[DocChange], dict[Path, list[dict]]]:
    """What a merge changes, and the complete new content of every file to (re)write."""
    corpus = corpus_tasks(annotations_dir)
    files: dict[Path, list[dict]] = {}
    changes: list[DocChange] = []
    taken = {c.file.name for c in corpus.values()}
    for doc in docs:
        known = corpus.get(doc.doc_id)
        if known is None:
            ch = DocChange(doc.doc_id, "new", added=list(doc.spans))
            name = _safe_name(doc.doc_id) + ".json"
            n = 2
            while name in taken:
                name = f"{_safe_name(doc.doc_id)}-{n}.json"
                n += 1
            taken.add(name)
            ch.file = Path(annotations_dir) / "tasks" / name
            files[ch.file] = [_merged_task(doc, None, ch)]
            changes.append(ch)
            continue
        old_doc = task_to_doc(known.task)
        added, edited, removed = span_changes(old_doc.spans, doc.spans)
        ch = DocChange(doc.doc_id, "updated", added, removed, edited, known.file)
        new_task = _merged_task(doc, known.task, ch)
        if not (added or edited or removed) and new_task.get("data") == known.task.get("data"):
            ch.status, ch.notes = "unchanged", []
            changes.append(ch)
            continue
        if known.file not in files:
            files[known.file] = read_tasks(known.file)
        files[known.file][known.index] = new_task
        changes.append(ch)
    return changes, files


def add_to_split(splits_file: Path, split: str, doc_ids: list[str]) -> list[str]:
    """Append doc ids to one split of splits.yaml, keeping its comments; returns the ids added.

    Ids that a split already names (literally or by pattern) are left alone. The new text is
    checked by parsing it before it replaces the file atomically.
    """
    text = splits_file.read_text(encoding="utf-8") if splits_file.exists() else ""
    before = {k: list(v or []) for k, v in (yaml.safe_load(text) or {}).items()}
    where = split_of(before, doc_ids)
    todo = [d for d in doc_ids if d not in where]
    if not todo:
        return []
    lines = text.splitlines()
    head = next((i for i, l in enumerate(lines) if re.match(rf"^{re.escape(split)}:\s*(#.*)?$", l)), None)
    new_items = [f"  - {json.dumps(d, ensure_ascii=False)}" for d in todo]
    if head is None:
        lines += ([""] if lines and lines[-1].strip() else []) + [f"{split}:"] + new_items
    else:
        end = head + 1
        last_item = head
        while end < len(lines) and (not lines[end].strip() or lines[end][0] in " \t#"):
            if lines[end].lstrip().startswith("- "):
                last_item = end
            end += 1
        lines[last_item + 1:last_item + 1] = new_items
    new_text = "\n".join(lines) + "\n"
    after = {k: list(v or []) for k, v in (yaml.safe_load(new_text) or {}).items()}
    expected = {k: list(v) for k, v in before.items()}
    expected.setdefault(split, [])
    expected[split] = expected[split] + todo
    if after != expected:
        raise StudioError(f"{splits_file}: could not add {todo} to split {split!r} safely; add them by hand")
    write_text_atomic(splits_file, new_text)
    return todo


def pull(studio: Optional[Studio], annotations_dir: Path, title: str = DEFAULT_TITLE, export_file: Optional[Path] = None,
         split: Optional[str] = "train", dry_run: bool = False, allow_test: bool = False,
         by: str = "govfacts studio pull") -> PullResult:
    """Fetch (or read) an export, validate it and merge it into `annotations_dir` by doc_id.

    Nothing is written when the export cannot be fetched or parsed. Invalid tasks are reported and
    skipped; every other document of the corpus is left exactly as it was. A pull that writes notes the
    test split as it was first (see testsplit) and leaves a pull record naming `by`.
    """
    annotations_dir = Path(annotations_dir)
    if export_file is not None:
        source = str(export_file)
        try:
            raw = Path(export_file).read_bytes()
        except OSError as e:
            raise StudioError(f"cannot read the export {export_file}: {e.strerror or e}") from None
    else:
        if studio is None:
            raise StudioError("no Label Studio connection and no export file")
        project = studio.require_project(title)
        source = f"{studio.url} project {project.id}"
        raw = studio.export_raw(project.id)
    tasks = parse_export(raw, source)
    res = PullResult(split=split)
    keep = []
    for i, t in enumerate(tasks):
        if isinstance(t, dict) and not _submitted(t):
            res.skipped.append(str(t.get("id", f"#{i}")))
        else:
            keep.append(t)
    with tempfile.TemporaryDirectory(prefix="govfacts-pull-") as tmp:
        f = Path(tmp) / "export.json"
        f.write_text(json.dumps(keep, ensure_ascii=False), encoding="utf-8")
        docs, problems = validate_exports([f])
    res.problems = [TaskProblem(source, p.task, p.start, p.end, p.reason) for p in problems]
    dup = [d for d, n in Counter(d.doc_id for d in docs).items() if n > 1]
    if dup:  # several tasks of one document: the newest annotation wins, like task_regions
        res.problems += [TaskProblem(source, d, None, None, "several tasks with this doc_id: the last one is used")
                         for d in dup]
        docs = list({d.doc_id: d for d in docs}.values())
    if not allow_test:  # the test split's gold is what models are judged on: changed only on purpose
        test_ids = test_split_ids(annotations_dir, corpus_tasks(annotations_dir))
        held = [d for d in docs if d.doc_id in test_ids]
        res.problems += [TaskProblem(source, d.doc_id, None, None, "in the test split: not merged (pull with "
                                     "--allow-test to change test gold)") for d in held]
        docs = [d for d in docs if d.doc_id not in test_ids]
    res.changes, files = plan_merge(annotations_dir, docs)
    if dry_run:
        return res
    res.test_before = note_baseline(annotations_dir)
    for path, content in files.items():
        write_tasks(path, content)
        res.written.append(path)
    new_ids = [c.doc_id for c in res.changes if c.status == "new"]
    if split and split != "none" and new_ids:
        res.split_added = add_to_split(annotations_dir / "splits.yaml", split, new_ids)
    res.test_after = split_hash(annotations_dir)
    write_pull_record(annotations_dir, res, by, source)
    return res
