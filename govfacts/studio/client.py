"""The connection to a real Label Studio, through `label_studio_sdk.LabelStudio` (SDK 2.x).

Label Studio is reached through `label_studio_sdk.LabelStudio` (SDK 2.x) with the URL and API key of
the environment variables LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, and nothing else (no token is
ever read from a file of the repository). Every failure to reach or use the server becomes a
`StudioError` with a one-line message naming the URL and the cause; nothing is written after one.
"""
from __future__ import annotations

import json
import os
import re
from typing import Callable, Optional

ENV_URL = "LABEL_STUDIO_URL"
ENV_KEY = "LABEL_STUDIO_API_KEY"
DEFAULT_TITLE = "govfacts annual reports"
UNCERTAIN_VIEW = "Most uncertain first"
# The tab shows doc_id, text and prediction score; every other column Label Studio knows is hidden
# (its task columns, label_studio/data_manager/functions.py, and the other data keys govfacts writes).
VIEW_SHOWN = ["tasks:data.doc_id", "tasks:data.text", "tasks:predictions_score"]
_TASK_COLUMNS = ["id", "inner_id", "completed_at", "total_annotations", "cancelled_annotations", "total_predictions",
                 "annotators", "annotations_results", "annotations_ids", "predictions_score",
                 "predictions_model_versions", "predictions_results", "file_upload", "storage_filename", "created_at",
                 "updated_at", "updated_by", "avg_lead_time", "draft_exists", "allow_skip"]
_DATA_KEYS = ["doc_id", "text", "offset", "ignore", "not_tagged", "source", "agency", "year", "kind"]
VIEW_HIDDEN = [c for c in [f"tasks:{k}" for k in _TASK_COLUMNS] + [f"tasks:data.{k}" for k in _DATA_KEYS]
               if c not in VIEW_SHOWN]
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
        raise StudioError(f"environment variable {' and '.join(missing)} not set: export {ENV_URL}=http://127.0.0.1:$LS_PORT "
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
        """A Data Manager tab sorted by prediction score ascending (most uncertain first) that shows the
        doc_id, the text and the score; an older version of the tab is brought up to date."""
        data = {"title": UNCERTAIN_VIEW, "ordering": ["tasks:predictions_score"],
                "hiddenColumns": {"explore": VIEW_HIDDEN, "labeling": VIEW_HIDDEN},
                "columnsDisplayType": {"tasks:predictions_score": "Number"}}
        views = self.call("list the Data Manager tabs", self.client.views.list, project=project_id)
        view = next((v for v in views or [] if (getattr(v, "data", None) or {}).get("title") == UNCERTAIN_VIEW), None)
        if view is None:
            self.call("create the 'most uncertain first' tab", self.client.views.create, project=project_id, data=data)
        elif {k: (view.data or {}).get(k) for k in data} != data:
            self.call("update the 'most uncertain first' tab", self.client.views.update, str(view.id),
                      project=project_id, data={**(view.data or {}), **data})

    def set_training_switch(self, project_id: int, after_tasks: int) -> None:
        """Label Studio's "Start model training on annotation submission" as the backend retrains: on, every
        `after_tasks` annotations, when it retrains by count; off (0) when it does not."""
        self.call("set the project's training switch", self.client.projects.update, project_id,
                  min_annotations_to_start_training=max(0, int(after_tasks)))

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
