"""`govfacts studio …`: the annotator loop against a running Label Studio.

    govfacts studio setup [--title T] [--connect-backend URL]
    govfacts studio push REPORTS... [--model SPEC]
    govfacts studio pull [--annotations DIR] [--export FILE]
    govfacts studio retrain [--force] [--config FILE] [--set key=value ...]
    govfacts studio serve [--host 127.0.0.1] [--port 9090] [--model SPEC]

Label Studio is found through LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (environment only).
Exit status 2: the server cannot be reached or used, a usage error, or a malformed export (nothing
is written then); 1: some report files could not be read (push) or some tasks were invalid (pull).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from govfacts.cli.train import overrides as _overrides
from govfacts.labels import default_labels
from govfacts.paths import ANNOTATIONS, DEFAULT_TAGGER
from govfacts.studio.backend import Backend, make_retrainer, serve_forever
from govfacts.studio.client import DEFAULT_TITLE, Studio, StudioError
from govfacts.studio.pull import pull as do_pull
from govfacts.studio.push import push as do_push
from govfacts.studio.retrain import retrain as do_retrain

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Label Studio loop: set up the project, push reports with pre-annotations, pull annotations, "
                       "retrain, serve the model as an ML backend.")
err = Console(stderr=True, width=160)
out = Console(width=160)

TITLE = typer.Option(DEFAULT_TITLE, "--title", help="Label Studio project title.")


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
                                                             "with the project, e.g. http://127.0.0.1:9090.")) -> None:
    """Create the project (idempotent, found by title) with the labeling config of configs/labels.yaml."""
    try:
        studio = _studio()
        project, status = studio.ensure_project(title, default_labels().studio_config())
        err.print(f"project {escape(title)!r} (id {project.id}) {status} at {studio.url}")
        if connect_backend:
            ml, created = studio.connect_backend(project.id, connect_backend)
            err.print(f"ML backend {escape(connect_backend)} {'connected' if created else 'already connected'} "
                      f"(id {ml.id}, state {getattr(ml, 'state', '?')})")
    except StudioError as e:
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
    for p in res.problems:
        typer.echo(f"problem (task skipped): {p}", err=True)
    if res.skipped:
        err.print(f"{len(res.skipped)} exported tasks have no submitted annotation (skipped)")
    err.print("changes per label (an edit counts under the label the span has now):")
    t = Table()
    for h in ("label", "added", "edited", "removed"):
        t.add_column(h, justify="left" if h == "label" else "right")
    per = res.per_label()
    for lab, c in per.items():
        t.add_row(lab, str(c["added"]), str(c["edited"]), str(c["removed"]))
    tot = [sum(c[k] for c in per.values()) for k in ("added", "edited", "removed")]
    t.add_row("all", *map(str, tot))
    err.print(t)
    for c in res.changes:
        if c.status == "unchanged":
            continue
        err.print(f"{c.status}: {c.doc_id} → {c.file}  (+{len(c.added)} ~{len(c.edited)} -{len(c.removed)})")
        for old, new in c.edited:
            err.print(f"   edited [{old.start}:{old.end}] {escape(old.text)} {old.label} → "
                      f"[{new.start}:{new.end}] {escape(new.text)} {new.label}")
        for note in c.notes:
            err.print(f"   note: {escape(note)}")
    n = {k: sum(c.status == k for c in res.changes) for k in ("new", "updated", "unchanged")}
    err.print(f"{n['new']} new, {n['updated']} updated, {n['unchanged']} unchanged documents; "
              + ("(dry run: nothing written)" if dry_run else f"{len(res.written)} files written"))
    if res.split_added:
        err.print(f"added to split {res.split!r} of splits.yaml: {', '.join(res.split_added)}")


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
                                                         "(default runs/studio-retrain/<time>/candidate)."),
            no_pull: bool = typer.Option(False, "--no-pull", help="Train on the corpus as it is (offline)."),
            title: str = TITLE) -> None:
    """Pull, fine-tune a candidate, compare it with the current model on the test split, promote if better."""

    ann = _annotations(annotations)
    try:
        overrides = _overrides(sets)
        if not no_pull:
            res = do_pull(_studio(), ann, title=title)
            print_pull(res)
        r = do_retrain(ann, Path(model_dir or DEFAULT_TAGGER), config=config, overrides=overrides,
                       candidate_dir=candidate_dir, force=force, log=lambda s: err.print(escape(s)))
    except StudioError as e:
        _fail(e)
    except (OSError, ValueError, KeyError, NotImplementedError) as e:
        _fail(f"fine-tuning failed: {type(e).__name__}: {e}")
    print_retrain(r)


def print_retrain(r) -> None:
    t = Table(title="test split: current vs candidate")
    for h in ("", r.current_name, r.candidate_name):
        t.add_column(escape(h), justify="right" if h else "left")
    for key, name in (("fact_f1", "fact F1"), ("entity_f1", "entity F1 (micro)"), ("fact_p", "fact P"),
                      ("fact_r", "fact R")):
        t.add_row(name, f"{r.current[key]:.3f}", f"{r.new[key]:.3f}")
    out.print(t)
    if r.promoted:
        err.print(f"[green]promoted[/green]: {escape(r.reason)}; {r.model_dir} now holds {escape(r.candidate_name)}")
    else:
        err.print(f"not promoted: {escape(r.reason)} (candidate kept in {r.candidate})")
    err.print(f"evaluation report: {r.report_dir}/report.html")


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (default: loopback only)."),
          port: int = typer.Option(9090, "--port"),
          model: Optional[str] = typer.Option(None, "--model", "-m", help="Tagger directory / hub name, or 'rules'. "
                                              "Default: the bundled tagger (rules if none)."),
          train_every: int = typer.Option(1, "--train-every", help="Retrain after this many ANNOTATION_CREATED/UPDATED "
                                          "events (START_TRAINING always trains; 0 = only on START_TRAINING)."),
          config: Optional[Path] = typer.Option(None, "--config", help="Fine-tuning config for webhook retraining."),
          sets: List[str] = typer.Option([], "--set", help="Fine-tuning override key=value (repeatable)."),
          annotations: Optional[Path] = typer.Option(None, "--annotations", help="Corpus folder (default annotations/)."),
          model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="Model dir retraining promotes into "
                                                   "(default: --model if it is a directory, else "
                                                   "models/govfacts-tagger-zh)."),
          runs_dir: Optional[Path] = typer.Option(None, "--runs-dir", help="Where retraining candidates go "
                                                  "(default runs/studio-retrain)."),
          title: str = TITLE) -> None:
    """Serve the extractor as a Label Studio ML backend (/health, /setup, /predict, /webhook)."""

    try:
        overrides = _overrides(sets)
        backend = Backend(model, retrainer=make_retrainer(model, model_dir=model_dir,
                                                          annotations_dir=_annotations(annotations), config=config,
                                                          overrides=overrides, title=title, runs_dir=runs_dir),
                          train_every=train_every)
    except (OSError, ValueError) as e:
        _fail(f"cannot load model {model or '(default)'}: {e}")
    try:
        serve_forever(backend, host, port, log=lambda s: err.print(escape(s)))
    except OSError as e:
        _fail(f"cannot serve on {host}:{port}: {e.strerror or e}")
