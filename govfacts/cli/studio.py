"""`govfacts studio …`: the annotator loop against a running Label Studio.

    govfacts studio setup [--title T] [--connect-backend URL]
    govfacts studio push REPORTS... [--model SPEC]
    govfacts studio pull [--annotations DIR] [--export FILE]
    govfacts studio retrain [--force] [--config FILE] [--set key=value ...]
    govfacts studio serve [--host 127.0.0.1] [--port 9090] [--model SPEC] [--studio-config FILE]
    govfacts studio status [--annotations DIR]

Label Studio is found through LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (environment only).
Exit status 2: the server cannot be reached or used, a usage error, or a malformed export (nothing
is written then); 1: some report files could not be read (push) or some tasks were invalid (pull).
"""
from __future__ import annotations

import signal
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from govfacts.cli.train import overrides as _overrides
from govfacts.labels import default_labels
from govfacts.paths import ANNOTATIONS, DEFAULT_TAGGER
from govfacts.settings import SettingsError
from govfacts.studio.autorun import make_retrainer
from govfacts.studio.backend import Backend, serve_forever
from govfacts.studio.client import DEFAULT_TITLE, Studio, StudioError
from govfacts.studio.pull import last_pull, report_lines
from govfacts.studio.pull import pull as do_pull
from govfacts.studio.push import push as do_push
from govfacts.studio.records import BACKEND, RETRAIN, read_record
from govfacts.studio.retrain import retrain as do_retrain
from govfacts.studio.settings import load_studio_settings
from govfacts.studio.trainer import scores_text

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Label Studio loop: set up the project, push reports with pre-annotations, pull annotations, "
                       "retrain, serve the model as an ML backend.")
err = Console(stderr=True, width=160)
out = Console(width=160)

TITLE = typer.Option(DEFAULT_TITLE, "--title", help="Label Studio project title.")
STUDIO_CONFIG = typer.Option(None, "--studio-config", help="Settings of the loop (default configs/studio.yaml).")


def _fail(e: Exception, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
    raise typer.Exit(code)


def _studio():
    return Studio.from_env()


def _annotations(path: Optional[Path]) -> Path:
    return Path(path) if path else ANNOTATIONS


@app.command()
def setup(title: str = TITLE,
          connect_backend: Optional[str] = typer.Option(None, "--connect-backend", metavar="URL",
                                                        help="Register this ML backend (govfacts studio serve) "
                                                             "with the project, e.g. http://127.0.0.1:9090."),
          studio_config: Optional[Path] = STUDIO_CONFIG) -> None:
    """Create the project (idempotent, found by title) with the labeling config of configs/labels.yaml.
    With --connect-backend, Label Studio's training switch is set to the backend's train_after_tasks."""
    try:
        studio = _studio()
        project, status = studio.ensure_project(title, default_labels().studio_config())
        err.print(f"project {escape(title)!r} (id {project.id}) {status} at {studio.url}")
        if connect_backend:
            settings = load_studio_settings(studio_config)
            ml, created = studio.connect_backend(project.id, connect_backend)
            err.print(f"ML backend {escape(connect_backend)} {'connected' if created else 'already connected'} "
                      f"(id {ml.id}, state {getattr(ml, 'state', '?')})")
            studio.set_training_switch(project.id, settings.train_after_tasks)
            n = settings.train_after_tasks
            err.print(f"Start model training on annotation submission: {f'on, every {n} annotations' if n else 'off'} "
                      f"(train_after_tasks); the backend {settings.policy_text()}")
    except (StudioError, SettingsError) as e:
        _fail(e)
    typer.echo(project.id)


@app.command()
def push(paths: List[Path] = typer.Argument(..., help="Report files or folders (searched recursively)."),
         model: Optional[str] = typer.Option(None, "--model", "-m", help="Tagger directory / hub name, or 'rules'. "
                                             "Default: the bundled tagger (rules if none)."),
         title: str = TITLE,
         annotations: Optional[Path] = typer.Option(None, "--annotations", help="Annotated corpus whose reviewed table "
                                                    "regions / not-tagged numbers go along (default annotations/)."),
         allow_test: bool = typer.Option(False, "--allow-test", help="Also push documents of the test split.")
         ) -> None:
    """Import reports as tasks with the model's pre-annotations; documents already in the project are skipped.
    A document of the annotated corpus carries its gold spans as an annotation beside the prediction."""

    try:
        studio = _studio()
        res = do_push(studio, paths, title=title, model=model, annotations_dir=_annotations(annotations),
                      allow_test=allow_test)
    except StudioError as e:
        _fail(e)
    if res.pushed:
        err.print(f"{len(res.pushed)} tasks pushed to project {res.project_id} with predictions of "
                  f"{escape(res.model_version)}; task score = lowest span confidence (0 = no span found), "
                  "so sorting by prediction score ascending shows the most uncertain first")
        t = Table()
        t.add_column("doc_id")
        t.add_column("spans", justify="right")
        t.add_column("score", justify="right")
        for d in sorted(res.pushed, key=lambda d: res.scores[d]):
            t.add_row(d, str(res.spans[d]), f"{res.scores[d]:.3f}")
        err.print(t)
    else:
        err.print("no new documents to push")
    if res.already:
        err.print(f"skipped {len(res.already)} documents already in the project: {', '.join(res.already)}")
    if res.skipped_types:
        err.print(f"skipped {len(res.skipped_types)} files of other types in folders")
    for path, reason in res.failures:
        err.print(f"[red]failed:[/red] {escape(path)}: {escape(reason)}", soft_wrap=True)
    if res.failures:
        raise typer.Exit(1)


def print_pull(res, dry_run: bool = False) -> None:
    for line in report_lines(res, dry_run):
        typer.echo(line, err=True)


def print_last_pull(annotations: Path) -> None:
    """A pull the ML backend made since is shown in full: `pull` alone would find nothing left to change."""
    rec = last_pull(annotations)
    if rec is None:
        return
    typer.echo(f"last pull: {rec.get('time')} by {rec.get('by')} ({rec.get('new', 0)} new, {rec.get('updated', 0)} "
               "updated documents)", err=True)
    if rec.get("by") != "govfacts studio pull":
        for line in rec.get("lines") or []:
            typer.echo("  " + line, err=True)


@app.command()
def pull(annotations: Optional[Path] = typer.Option(None, "--annotations", help="Corpus folder to merge into "
                                                    "(default annotations/; new docs go to DIR/tasks/<doc_id>.json)."),
         title: str = TITLE,
         export: Optional[Path] = typer.Option(None, "--export", help="Merge this downloaded Label Studio JSON export "
                                               "instead of fetching one from the server."),
         split: str = typer.Option("train", "--split", help="Split of splits.yaml that new documents join "
                                   "(train, dev, test or none)."),
         dry_run: bool = typer.Option(False, "--dry-run", help="Only report what would change."),
         allow_test: bool = typer.Option(False, "--allow-test", help="Also change the gold of test-split documents.")
         ) -> None:
    """Export annotated tasks, validate them and merge them into the corpus by doc_id (atomic writes).
    Test-split documents are left as they are unless --allow-test is given."""

    try:
        studio = None if export else _studio()
        print_last_pull(_annotations(annotations))
        res = do_pull(studio, _annotations(annotations), title=title, export_file=export, split=split, dry_run=dry_run,
                      allow_test=allow_test)
    except StudioError as e:
        _fail(e)
    print_pull(res, dry_run)
    if res.problems:
        raise typer.Exit(1)


@app.command()
def retrain(force: bool = typer.Option(False, "--force", help="Promote the candidate even if it is not better."),
            config: Optional[Path] = typer.Option(None, "--config", help="Fine-tuning config "
                                                  "(default configs/finetune.yaml)."),
            sets: List[str] = typer.Option([], "--set", help="Override a fine-tuning setting, e.g. --set epochs=3 "
                                           "(repeatable)."),
            annotations: Optional[Path] = typer.Option(None, "--annotations", help="Corpus folder (default annotations/)."),
            model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="The default model to compare against "
                                                     "and to replace (default models/govfacts-tagger-zh)."),
            candidate_dir: Optional[Path] = typer.Option(None, "--candidate-dir", help="Where the candidate is trained "
                                                         "(default RUNS_DIR/<time>/candidate)."),
            runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Folder of the retrain runs (default "
                                                    "runs_dir of configs/studio.yaml)."),
            keep_candidates: Optional[int] = typer.Option(None, "--keep-candidates", help="Candidates kept under "
                                                          "RUNS_DIR (default keep_candidates of configs/studio.yaml)."),
            no_pull: bool = typer.Option(False, "--no-pull", help="Train on the corpus as it is (offline)."),
            studio_config: Optional[Path] = STUDIO_CONFIG,
            title: str = TITLE) -> None:
    """Pull, fine-tune a candidate, compare it with the current model on the test split as it was before the
    pull, promote if better. Ctrl-C (or SIGTERM) stops it and removes its candidate."""

    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    ann = _annotations(annotations)
    try:
        settings = load_studio_settings(studio_config)
        overrides = _overrides(sets)
        if not no_pull:
            print_last_pull(ann)
            res = do_pull(_studio(), ann, title=title)
            print_pull(res)
        r = do_retrain(ann, Path(model_dir or DEFAULT_TAGGER), config=config, overrides=overrides,
                       candidate_dir=candidate_dir, force=force, runs_dir=runs_dir or settings.runs_path,
                       keep_candidates=settings.keep_candidates if keep_candidates is None else keep_candidates,
                       log=lambda s: err.print(escape(s), soft_wrap=True))
    except KeyboardInterrupt:
        err.print("retrain interrupted: its candidate was removed; the model was not changed")
        raise typer.Exit(130)
    except (StudioError, SettingsError) as e:
        _fail(e)
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        _fail(f"fine-tuning failed: {type(e).__name__}: {e}")
    print_retrain(r)


def print_scores(current_name: str, candidate_name: str, current: dict, new: dict, title: str) -> None:
    t = Table(title=title)
    for h in ("", current_name, candidate_name):
        t.add_column(escape(h), justify="right" if h else "left")
    for key, name in (("fact_f1", "fact F1"), ("entity_f1", "entity F1 (micro)"), ("fact_p", "fact P"),
                      ("fact_r", "fact R")):
        t.add_row(name, f"{current[key]:.3f}", f"{new[key]:.3f}")
    out.print(t)


def print_retrain(r) -> None:
    err.print(escape(r.test_note), soft_wrap=True)
    print_scores(r.current_name, r.candidate_name, r.current, r.new, "test split: current vs candidate")
    if r.promoted:
        err.print(f"[green]promoted[/green]: {escape(r.reason)}; {r.model_dir} now holds {escape(r.candidate_name)}")
    else:
        err.print(f"not promoted: {escape(r.reason)}")
    err.print(f"candidate {'removed (keep_candidates)' if r.candidate_removed else f'kept in {r.candidate}'}; "
              f"evaluation report: {r.report_dir}/report.html")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: loopback only)."),
          port: int = typer.Option(9090, "--port"),
          model: Optional[str] = typer.Option(None, "--model", "-m", help="Tagger directory / hub name, or 'rules'. "
                                              "Default: the bundled tagger (rules if none)."),
          config: Optional[Path] = typer.Option(None, "--config", help="Fine-tuning config for webhook retraining."),
          sets: List[str] = typer.Option([], "--set", help="Fine-tuning override key=value (repeatable)."),
          annotations: Optional[Path] = typer.Option(None, "--annotations", help="Corpus folder (default annotations/)."),
          model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="Model dir retraining promotes into "
                                                   "(default: --model if it is a directory, else "
                                                   "models/govfacts-tagger-zh)."),
          runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where retraining candidates go "
                                                  "(default runs_dir of configs/studio.yaml)."),
          studio_config: Optional[Path] = STUDIO_CONFIG,
          title: str = TITLE) -> None:
    """Serve the extractor as a Label Studio ML backend (/health, /setup, /predict, /webhook); it retrains
    after train_after_tasks submitted tasks or train_after_minutes (configs/studio.yaml)."""

    ann = _annotations(annotations)
    try:
        settings = load_studio_settings(studio_config)
        _overrides(sets)  # a bad --set is a usage error now, not in the first retrain
    except (SettingsError, ValueError) as e:
        _fail(e)
    log = lambda s: err.print(escape(s), soft_wrap=True)  # noqa: E731
    try:
        backend = Backend(model, retrainer=make_retrainer(settings, model, model_dir=model_dir, annotations_dir=ann,
                                                          config=config, sets=sets, title=title, runs_dir=runs_dir,
                                                          log=lambda s: backend.log(s)),
                          settings=settings, annotations_dir=ann, log=log)
    except (OSError, ValueError) as e:
        _fail(f"cannot load model {model or '(default)'}: {e}")
    try:
        serve_forever(backend, host, port, log=log)
    except OSError as e:
        _fail(f"cannot serve on {host}:{port}: {e.strerror or e}")


@app.command()
def status(annotations: Optional[Path] = typer.Option(None, "--annotations", help="Corpus folder (default "
                                                       "annotations/).")) -> None:
    """What the loop did last: the ML backend's state, the last pull (with its change table) and the last
    retrain (scores, promoted or not and why), from the records beside the corpus."""
    ann = _annotations(annotations)
    b = read_record(ann, BACKEND)
    if b:
        out.print(f"ML backend (pid {b.get('pid')}, {b.get('time')}): serving {escape(str(b.get('model_version')))}; "
                  f"{escape(str(b.get('policy')))}")
        out.print(f"  {b.get('pending', 0)} submitted tasks waiting; next retrain: {escape(str(b.get('next_retrain')))}")
        for j in b.get("jobs") or []:
            line = f"  job {j['job']}: {j['status']}"
            if j.get("status") == "running":
                line += f" since {j.get('started')} (budget {j.get('budget_minutes'):g} min, until ~{j.get('deadline')})"
            if j.get("status") == "done":
                line += f" — {'promoted' if j.get('promoted') else 'not promoted'}: {j.get('reason')}"
            if j.get("error"):
                line += f" — {j['error']}"
            out.print(escape(line), soft_wrap=True)
    else:
        out.print("ML backend: no record (govfacts studio serve has not run on this corpus)")
    p = last_pull(ann)
    if p:
        out.print(f"last pull: {p.get('time')} by {escape(str(p.get('by')))} from {escape(str(p.get('source')))}")
        for line in p.get("lines") or []:
            out.print("  " + escape(line), soft_wrap=True)
    else:
        out.print("last pull: none recorded")
    r = read_record(ann, RETRAIN)
    if r:
        verdict = "promoted" if r.get("promoted") else "not promoted"
        out.print(f"last retrain: {r.get('time')} ({r.get('seconds', 0):.0f} s): {verdict}: {escape(str(r.get('reason')))}")
        out.print("  " + escape(scores_text(r)), soft_wrap=True)
        out.print("  " + escape(str(r.get("test_split"))), soft_wrap=True)
        out.print(f"  report: {r.get('report')}")
    else:
        out.print("last retrain: none recorded")
