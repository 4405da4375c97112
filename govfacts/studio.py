"""The annotator loop against a real Label Studio: set up the project, push reports with the model's
pre-annotations, pull the annotators' work back into annotations/, retrain and promote.

Label Studio is reached through `label_studio_sdk.LabelStudio` (SDK 2.x) with the URL and API key of
the environment variables LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, and nothing else (no token is
ever read from a file of the repository). Every failure to reach or use the server becomes a
`StudioError` with a one-line message naming the URL and the cause; nothing is written after one.

Uncertainty order: a pushed task's prediction `score` is the LOWEST confidence of its predicted spans
(0.0 when the model found no span at all: a report without a single fact is the most suspicious).
Sorting by prediction score ascending in Label Studio — or the project's "Uncertainty sampling"
queue that `setup` switches on — therefore shows the most uncertain documents first.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from govfacts.records import Span
from govfacts.studio_io import AnnotatedDoc, TaskProblem, doc_to_task, read_tasks, region, write_tasks

ENV_URL = "LABEL_STUDIO_URL"
ENV_KEY = "LABEL_STUDIO_API_KEY"
DEFAULT_TITLE = "govfacts annual reports"
UNCERTAIN_VIEW = "Most uncertain first"
BACKEND_TITLE = "govfacts"


class StudioError(Exception):
    """A one-line, user-facing failure (server unreachable, key rejected, bad export ...)."""


# -- connection -----------------------------------------------------------------------------------
def studio_settings(env: Optional[dict] = None) -> tuple[str, str]:
    """(url, api key) from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY; a missing one is named."""
    env = os.environ if env is None else env
    url, key = (env.get(ENV_URL) or "").strip(), (env.get(ENV_KEY) or "").strip()
    missing = [n for n, v in ((ENV_URL, url), (ENV_KEY, key)) if not v]
    if missing:
        raise StudioError(f"environment variable {' and '.join(missing)} not set: export {ENV_URL}=http://127.0.0.1:8080 "
                          f"and {ENV_KEY}=<your Label Studio access token> (Account & Settings in Label Studio)")
    if not re.match(r"^https?://", url):
        raise StudioError(f"{ENV_URL}={url!r} is not an http:// or https:// URL")
    return url.rstrip("/"), key


def _detail(body) -> str:
    if isinstance(body, dict):
        for k in ("validation_errors", "detail", "error", "message"):
            if body.get(k):
                v = body[k]
                return json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
        return json.dumps(body, ensure_ascii=False)[:300]
    return str(body)[:300]


class Studio:
    """A connected Label Studio: thin, error-translating wrappers around the SDK calls govfacts needs."""

    def __init__(self, url: str, api_key: str, timeout: float = 300.0):
        from label_studio_sdk import LabelStudio

        self.url = url.rstrip("/")
        self.client = LabelStudio(base_url=self.url, api_key=api_key, timeout=timeout)

    @classmethod
    def from_env(cls, check: bool = True) -> "Studio":
        studio = cls(*studio_settings())
        if check:
            studio.check()
        return studio

    def call(self, what: str, fn: Callable, *args, **kwargs):
        """Run one SDK call; connection errors and HTTP errors become a one-line StudioError."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn(*args, **kwargs)
        except ApiError as e:
            code = e.status_code
            if code in (401, 403):
                raise StudioError(f"Label Studio at {self.url} rejected the API key (HTTP {code}) while trying to {what}: "
                                  f"check {ENV_KEY} (a legacy token needs LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true "
                                  f"on the server)") from None
            raise StudioError(f"Label Studio at {self.url} answered HTTP {code} while trying to {what}: "
                              f"{_detail(e.body)}") from None
        except httpx.ConnectError as e:
            raise StudioError(f"cannot reach Label Studio at {self.url} ({e or 'connection refused'}): is it running? "
                              f"(scripts/start-label-studio.sh)") from None
        except httpx.TimeoutException as e:
            raise StudioError(f"Label Studio at {self.url} did not answer in time while trying to {what} "
                              f"({type(e).__name__})") from None
        except httpx.HTTPError as e:
            raise StudioError(f"cannot talk to Label Studio at {self.url} while trying to {what}: "
                              f"{type(e).__name__}: {e}") from None
        except ValueError as e:  # a non-JSON answer (e.g. a proxy's HTML page) where JSON was expected
            raise StudioError(f"Label Studio at {self.url} sent an unexpected answer while trying to {what}: {e}") from None

    def check(self) -> str:
        """The e-mail of the key's user; raises StudioError when unreachable or the key is rejected."""
        me = self.call("check the API key", self.client.users.whoami)
        return str(getattr(me, "email", "") or getattr(me, "username", "") or "?")

    # -- projects ---------------------------------------------------------------------------------
    def find_project(self, title: str):
        pager = self.call("list projects", self.client.projects.list, title=title, page_size=100)
        return next((p for p in self.call("list projects", list, pager) if p.title == title), None)

    def require_project(self, title: str):
        project = self.find_project(title)
        if project is None:
            raise StudioError(f"no project titled {title!r} in Label Studio at {self.url}: run `govfacts studio setup"
                              f"{'' if title == DEFAULT_TITLE else f' --title {title!r}'}` first")
        return project

    def ensure_project(self, title: str, label_config: str) -> tuple[object, str]:
        """The project titled `title` with this labeling config: (project, created|updated|unchanged)."""
        project = self.find_project(title)
        if project is None:
            project = self.call("create the project", self.client.projects.create, title=title,
                                label_config=label_config, sampling="Uncertainty sampling",
                                show_collab_predictions=True,
                                description="govfacts: quantity facts of government information-disclosure reports")
            self.ensure_uncertainty_view(project.id)
            return project, "created"
        full = self.call("read the project", self.client.projects.get, project.id)
        if _norm_xml(getattr(full, "label_config", "") or "") != _norm_xml(label_config):
            self.call("update the labeling config", self.client.projects.update, project.id, label_config=label_config)
            self.ensure_uncertainty_view(project.id)
            return project, "updated"
        self.ensure_uncertainty_view(project.id)
        return project, "unchanged"

    def ensure_uncertainty_view(self, project_id: int) -> None:
        """A Data Manager tab sorted by prediction score ascending (most uncertain first)."""
        views = self.call("list the Data Manager tabs", self.client.views.list, project=project_id)
        if any((getattr(v, "data", None) or {}).get("title") == UNCERTAIN_VIEW for v in views or []):
            return
        self.call("create the 'most uncertain first' tab", self.client.views.create, project=project_id,
                  data={"title": UNCERTAIN_VIEW, "ordering": ["tasks:predictions_score"]})

    def set_model_version(self, project_id: int, model_version: str) -> None:
        """Which predictions Label Studio shows as pre-annotations (and uses for uncertainty sampling)."""
        self.call("set the project's model version", self.client.projects.update, project_id,
                  model_version=model_version)

    # -- ML backend -------------------------------------------------------------------------------
    def connect_backend(self, project_id: int, backend_url: str) -> tuple[object, bool]:
        """Register the ML backend URL with the project (Label Studio checks /health and /setup)."""
        backend_url = backend_url.rstrip("/")
        for ml in self.call("list ML backends", self.client.ml.list, project=project_id) or []:
            if (ml.url or "").rstrip("/") == backend_url:
                return ml, False
        ml = self.call(f"connect the ML backend {backend_url}", self.client.ml.create, project=project_id,
                       url=backend_url, title=BACKEND_TITLE, is_interactive=False)
        return ml, True

    # -- tasks ------------------------------------------------------------------------------------
    def task_doc_ids(self, project_id: int) -> dict[str, int]:
        """doc_id → task id of every task in the project."""
        pager = self.call("list tasks", self.client.tasks.list, project=project_id, page_size=100)
        out: dict[str, int] = {}
        for t in self.call("list tasks", list, pager):
            doc_id = (t.data or {}).get("doc_id")
            if doc_id is not None:
                out.setdefault(str(doc_id), t.id)
        return out

    def import_tasks(self, project_id: int, tasks: list[dict], chunk: int = 10) -> int:
        n = 0
        for i in range(0, len(tasks), chunk):
            part = tasks[i:i + chunk]
            # no automatic retry: a retried POST after a lost answer could import the same documents twice
            self.call("import tasks", self.client.projects.import_tasks, project_id, request=part,
                      request_options={"max_retries": 0})
            n += len(part)
        return n

    def export_raw(self, project_id: int) -> bytes:
        """The project's annotated tasks as Label Studio JSON (the bytes of the export)."""
        def fetch() -> bytes:
            return b"".join(self.client.projects.exports.download_sync(project_id, export_type="JSON",
                                                                        download_all_tasks=False))
        return self.call("export the annotations", fetch)


def _norm_xml(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


# -- predictions ----------------------------------------------------------------------------------
def task_score(spans: Iterable[Span]) -> float:
    """Uncertainty order of a task: the lowest span confidence; 0.0 when nothing was found."""
    scores = [float(s.score) for s in spans]
    return round(min(scores), 4) if scores else 0.0


def prediction_result(text: str, spans: list[Span], prefix: str = "r", from_name: str = "label",
                      to_name: str = "text") -> list[dict]:
    """Label Studio regions of the spans, one region per span (adjacent same-label spans stay apart)."""
    out = []
    for i, s in enumerate(sorted(spans, key=lambda s: (s.start, s.end))):
        r = region(s, text, f"{prefix}-{i}", s.score)
        r["from_name"], r["to_name"] = from_name, to_name
        out.append(r)
    return out


def prediction_task(doc: AnnotatedDoc, spans: list[Span], model_version: str) -> dict:
    """A task with the model's spans as a scored prediction (task score: see `task_score`)."""
    task = doc_to_task(AnnotatedDoc(doc.doc_id, doc.text, list(spans), list(doc.ignore), list(doc.not_tagged),
                                    meta=dict(doc.meta)), as_prediction=True, model_version=model_version)
    task["predictions"][0]["score"] = task_score(spans)
    return task


# -- the local corpus -----------------------------------------------------------------------------
@dataclass
class CorpusTask:
    file: Path
    index: int
    task: dict


def corpus_tasks(annotations_dir: Path) -> dict[str, CorpusTask]:
    """Every task of annotations/tasks/*.json by doc_id (where it is stored and its raw JSON)."""
    folder = Path(annotations_dir) / "tasks"
    out: dict[str, CorpusTask] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        if f.name.startswith("."):
            continue
        try:
            tasks = read_tasks(f)
        except (OSError, ValueError) as e:
            raise StudioError(f"cannot read the annotated corpus file {f}: {e}") from None
        for i, t in enumerate(tasks):
            data = t.get("data") or {}
            doc_id = str(data.get("doc_id") or t.get("id"))
            if doc_id in out:
                raise StudioError(f"{f}: doc_id {doc_id!r} is also in {out[doc_id].file}; fix the corpus first")
            out[doc_id] = CorpusTask(f, i, t)
    return out


# -- push -----------------------------------------------------------------------------------------
@dataclass
class PushResult:
    project_id: int
    model_version: str
    pushed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    skipped_types: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    spans: dict[str, int] = field(default_factory=dict)


def push(studio: Studio, paths: Iterable[str | Path], title: str = DEFAULT_TITLE, model: Optional[str] = None,
         annotations_dir: Optional[Path] = None, extractor=None, chunk: int = 8) -> PushResult:
    """Read the reports, predict spans and import the documents the project does not hold yet."""
    from govfacts.infer.batch import discover
    from govfacts.infer.extractor import extractor_id, load_extractor
    from govfacts.paths import ANNOTATIONS
    from govfacts.reader import ReadError, read_document

    project = studio.require_project(title)
    files, skipped = discover(paths)
    present = studio.task_doc_ids(project.id)
    if extractor is None:
        try:
            extractor = load_extractor(model)
        except (OSError, ValueError) as e:
            raise StudioError(f"cannot load model {model or '(default)'}: {e}") from None
    mv = extractor_id(extractor)
    res = PushResult(project.id, mv, skipped_types=skipped)
    corpus = corpus_tasks(Path(annotations_dir or ANNOTATIONS))
    docs: list[AnnotatedDoc] = []
    seen: set[str] = set()

    def flush() -> None:
        """Predict and import one chunk (an interrupted push resumes: imported docs are skipped next time)."""
        if not docs:
            return
        many = getattr(extractor, "spans_many", None)
        try:
            per_doc = many([d.text for d in docs]) if many else [extractor.spans(d.text) for d in docs]
        except Exception:  # noqa: BLE001 - find the document that breaks the chunk, report it, go on
            per_doc = []
            for d in docs:
                try:
                    per_doc.append(extractor.spans(d.text))
                except Exception as e:  # noqa: BLE001
                    per_doc.append(e)
        tasks = []
        for d, spans in zip(docs, per_doc):
            if isinstance(spans, Exception):
                res.failures.append((d.meta.get("source") or d.doc_id,
                                     f"extraction failed: {type(spans).__name__}: {spans}"))
                continue
            tasks.append(prediction_task(d, spans, mv))
            res.scores[d.doc_id] = task_score(spans)
            res.spans[d.doc_id] = len(spans)
        if tasks:
            studio.import_tasks(project.id, tasks)
            if not res.pushed:
                studio.set_model_version(project.id, mv)
            res.pushed += [t["data"]["doc_id"] for t in tasks]
        docs.clear()

    for f in files:
        try:
            d = read_document(f)
        except ReadError as e:
            res.failures.append((str(f), e.reason))
            continue
        if d.doc_id in present or d.doc_id in seen:
            res.already.append(d.doc_id)
            continue
        seen.add(d.doc_id)
        ignore, not_tagged, meta = [], [], {"source": str(f)}
        known = corpus.get(d.doc_id)
        if known and (known.task.get("data") or {}).get("text") == d.text:
            data = known.task["data"]  # keep the reviewed table regions and not-tagged numbers
            ignore = [tuple(x) for x in data.get("ignore") or []]
            not_tagged = list(data.get("not_tagged") or [])
            meta = {k: v for k, v in data.items() if k not in ("text", "ignore", "not_tagged", "doc_id", "offset")}
        docs.append(AnnotatedDoc(d.doc_id, d.text, [], ignore, not_tagged, meta=meta))
        if len(docs) >= chunk:
            flush()
    flush()
    return res


# -- pull: export → validated docs → merge plan → atomic writes ------------------------------------
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
        data = [data]
    if not isinstance(data, list):
        raise StudioError(f"{source}: the export is not a list of Label Studio tasks; nothing was written")
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
        from govfacts.studio_io import task_to_doc

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
    import yaml

    from govfacts.splits import split_of
    from govfacts.factsio import atomic_path

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
    with atomic_path(splits_file) as tmp:
        Path(tmp).write_text(new_text, encoding="utf-8")
    return todo


def pull(studio: Optional[Studio], annotations_dir: Path, title: str = DEFAULT_TITLE, export_file: Optional[Path] = None,
         split: Optional[str] = "train", dry_run: bool = False) -> PullResult:
    """Fetch (or read) an export, validate it and merge it into `annotations_dir` by doc_id.

    Nothing is written when the export cannot be fetched or parsed. Invalid tasks are reported and
    skipped; every other document of the corpus is left exactly as it was.
    """
    from govfacts.validate import validate_exports

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
    res.changes, files = plan_merge(annotations_dir, docs)
    if dry_run:
        return res
    for path, content in files.items():
        write_tasks(path, content)
        res.written.append(path)
    new_ids = [c.doc_id for c in res.changes if c.status == "new"]
    if split and split != "none" and new_ids:
        res.split_added = add_to_split(annotations_dir / "splits.yaml", split, new_ids)
    return res


# -- retrain ----------------------------------------------------------------------------------------
@dataclass
class RetrainResult:
    candidate: Path
    current_name: str
    candidate_name: str
    current: dict
    new: dict
    promoted: bool
    reason: str
    report_dir: Optional[Path] = None
    model_dir: Optional[Path] = None


def headline(model_report: dict) -> dict:
    e = model_report["entity"].get("micro avg", {})
    return {"fact_f1": float(model_report["fact"]["f1"]), "fact_p": float(model_report["fact"]["precision"]),
            "fact_r": float(model_report["fact"]["recall"]), "entity_f1": float(e.get("f1-score", 0.0))}


def is_better(new: dict, old: dict) -> bool:
    """Fact F1 decides; entity F1 breaks a tie."""
    return (round(new["fact_f1"], 6), round(new["entity_f1"], 6)) > (round(old["fact_f1"], 6), round(old["entity_f1"], 6))


def promote(candidate: Path, model_dir: Path) -> None:
    """Replace `model_dir` by a copy of `candidate`: copy into a temp sibling, then rename it into place."""
    model_dir = Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_dir.with_name(f".{model_dir.name}.promote-{os.getpid()}")
    old = model_dir.with_name(f".{model_dir.name}.previous-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(candidate, tmp)
    if model_dir.exists():
        shutil.rmtree(old, ignore_errors=True)
        model_dir.rename(old)
        try:
            tmp.rename(model_dir)
        except OSError:
            old.rename(model_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(model_dir)


def retrain(annotations_dir: Path, model_dir: Path, config: Optional[Path] = None, overrides: Optional[dict] = None,
            candidate_dir: Optional[Path] = None, force: bool = False, runs_dir: Optional[Path] = None,
            log: Callable[[str], None] = lambda s: None) -> RetrainResult:
    """Fine-tune a candidate on the corpus, score it against the current model on the test split and
    promote it into `model_dir` only when it is better (or when forced)."""
    from govfacts.infer.extractor import extractor_id, load_extractor
    from govfacts.paths import ROOT
    from govfacts.train.evaluate import build_report, load_gold
    from govfacts.train.finetune import finetune
    from govfacts.train.report import write_report

    annotations_dir, model_dir = Path(annotations_dir).resolve(), Path(model_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if candidate_dir is None:
        base = Path(runs_dir or ROOT / "runs" / "studio-retrain") / stamp
        n = 1
        while base.exists():
            n += 1
            base = base.with_name(f"{stamp}-{n}")
        candidate_dir = base / "candidate"
    candidate_dir = Path(candidate_dir)
    ov = {"annotations": str(annotations_dir), "splits": str(annotations_dir / "splits.yaml"),
          **(overrides or {}), "output_dir": str(candidate_dir)}
    log(f"fine-tuning a candidate into {candidate_dir}")
    cand_path = finetune(config, ov)
    docs, problems = load_gold([annotations_dir / "tasks"], "test", annotations_dir / "splits.yaml")
    if not docs:
        raise StudioError(f"no test documents in {annotations_dir / 'splits.yaml'}: cannot compare models")
    current = load_extractor(str(model_dir)) if (model_dir / "config.json").exists() else load_extractor("rules")
    candidate = load_extractor(str(cand_path))
    cur_name, cand_name = f"current {extractor_id(current)}", f"candidate {extractor_id(candidate)}"
    if cur_name.split(" ", 1)[1] == cand_name.split(" ", 1)[1]:
        cand_name += " (new)"
    log(f"evaluating on the test split ({len(docs)} documents)")
    report = build_report(docs, {cur_name: current, cand_name: candidate}, f"{annotations_dir.name} [test]")
    report_dir = Path(cand_path).parent / "eval"
    write_report(report, report_dir)
    old, new = headline(report["models"][cur_name]), headline(report["models"][cand_name])
    better = is_better(new, old)
    if better or force:
        promote(Path(cand_path), model_dir)
        reason = "better on the test split" if better else "forced (--force) although not better"
    else:
        reason = "not better on the test split: the current model stays"
    return RetrainResult(Path(cand_path), cur_name, cand_name, old, new, better or force, reason, report_dir, model_dir)
