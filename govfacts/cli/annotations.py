"""`govfacts annotations …`: validate Label Studio exports, print the labeling config, corpus statistics."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from govfacts.annotations import AnnotatedDoc, doc_to_task, load_gold, validate_exports, write_tasks
from govfacts.consistency import uncovered_numbers
from govfacts.corrections import apply_decisions, read_decisions
from govfacts.factsio import read_facts
from govfacts.labels import default_labels
from govfacts.paths import ANNOTATIONS
from govfacts.reader import ReadError, read_document
from govfacts.splits import load_splits, split_of
from govfacts.train.dataset import chars_and_tags

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Annotated corpus tools (Label Studio JSON).")
console = Console(stderr=True)


@app.command()
def validate(exports: List[Path] = typer.Argument(..., help="Label Studio export files or folders."),
             output: Optional[Path] = typer.Option(None, "--output", "-o",
                                                   help="Write the valid tasks here (Label Studio JSON).")) -> None:
    """Check offsets, region texts, labels, overlaps and empty spans; report each problem, keep valid tasks."""
    docs, problems = validate_exports(exports)
    for p in problems:
        typer.echo(f"problem: {p}", err=True)
    console.print(f"{len(docs)} valid tasks, {sum(len(d.spans) for d in docs)} spans, {len(problems)} problems")
    if output:
        write_tasks(output, [doc_to_task(d) for d in docs])
        console.print(f"valid tasks written to {output}")
    if problems:
        raise typer.Exit(1)


@app.command()
def correct(table: Path = typer.Argument(..., help="Decisions table (TSV: doc_id, start, end, action, new_label, "
                                                   "new_start, new_end, reason), e.g. annotations/audit/*.tsv."),
            tasks: Path = typer.Option(ANNOTATIONS / "tasks", "--tasks", help="Task files to correct.")) -> None:
    """Apply reviewed corrections (relabel, remove, add) to the gold; a decision already in effect changes nothing."""
    try:
        counts = apply_decisions(tasks, read_decisions(table, set(default_labels().names)))
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1)
    console.print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to change: every decision is in effect")


@app.command()
def config() -> None:
    """Print the Label Studio labeling config generated from configs/labels.yaml."""
    typer.echo(default_labels().studio_config())


@app.command()
def stats(exports: List[Path] = typer.Argument(None, help="Exports (default: annotations/tasks)."),
          splits_file: Optional[Path] = typer.Option(None, "--splits", help="Default: annotations/splits.yaml."),
          check: bool = typer.Option(False, "--check", help="Exit 1 if any number is unexplained.")) -> None:
    """Spans per label and split, and the numbers in the prose that no span or 'not tagged' rule explains."""
    docs, problems = validate_exports(exports or [ANNOTATIONS / "tasks"])
    where = split_of(load_splits(splits_file), [d.doc_id for d in docs])
    names = sorted({where.get(d.doc_id, "unsplit") for d in docs}, key=["train", "dev", "test", "unsplit"].index)
    counts = {n: Counter() for n in names}
    ndocs = Counter(where.get(d.doc_id, "unsplit") for d in docs)
    for d in docs:
        counts[where.get(d.doc_id, "unsplit")].update(s.label for s in d.spans)
    table = Table(title=f"{sum(len(d.spans) for d in docs)} spans in {len(docs)} documents")
    table.add_column("label")
    for n in names:
        table.add_column(f"{n} ({ndocs[n]} docs)", justify="right")
    table.add_column("total", justify="right")
    for lab in default_labels().names:
        row = [counts[n][lab] for n in names]
        table.add_row(lab, *map(str, row), str(sum(row)))
    table.add_row("all", *[str(sum(counts[n].values())) for n in names], str(sum(len(d.spans) for d in docs)))
    Console().print(table)
    unexplained = [u for d in docs for u in uncovered_numbers(d)]
    typer.echo(f"{len(unexplained)} numbers in the prose not covered by a span, a table region, a reviewed "
               f"not-tagged entry or a contract rule", err=True)
    for u in unexplained:
        typer.echo(f"  {u.doc_id} [{u.start}:{u.end}] {u.context}", err=True)
    for p in problems:
        typer.echo(f"problem: {p}", err=True)
    if check and (unexplained or problems):
        raise typer.Exit(1)


@app.command("to-dataset")
def to_dataset(exports: List[Path] = typer.Argument(None, help="Exports (default: annotations/tasks)."),
               out_dir: Path = typer.Option(..., "--out", help="Folder for the saved datasets.Dataset."),
               split: Optional[str] = typer.Option(None, "--split", help="Only this split of splits.yaml."),
               splits_file: Optional[Path] = typer.Option(None, "--splits")) -> None:
    """Character tokens with IOB2 tags (on the normalised view; None inside out-of-scope tables)."""
    from datasets import Dataset  # heavy: only for this command

    docs, problems = load_gold(exports or [ANNOTATIONS / "tasks"], split, splits_file)
    for p in problems:
        typer.echo(f"problem (task skipped): {p}", err=True)
    rows = {"doc_id": [], "chars": [], "tags": []}
    for d in docs:
        chars, tags = chars_and_tags(d)
        rows["doc_id"].append(d.doc_id)
        rows["chars"].append(chars)
        rows["tags"].append(tags)
    Dataset.from_dict(rows).save_to_disk(str(out_dir))
    typer.echo(f"{len(docs)} documents → {out_dir}", err=True)


@app.command("from-facts")
def from_facts(facts: Path = typer.Argument(..., help="Facts file written by govfacts extract."),
               output: Path = typer.Option(..., "--output", "-o", help="Label Studio tasks with predictions.")) -> None:
    """Facts → Label Studio tasks with scored predictions (one task per document, text read again)."""
    by_path: dict[str, list] = {}
    for f in read_facts(facts):
        by_path.setdefault(f.path, []).append(f)
    tasks = []
    for path, fs in by_path.items():
        try:
            doc = read_document(path)
        except ReadError as e:
            typer.echo(f"skipped: {e}", err=True)
            continue
        spans = [f.to_span() for f in sorted(fs, key=lambda f: f.start)]
        tasks.append(doc_to_task(AnnotatedDoc(doc.doc_id, doc.text, spans), as_prediction=True,
                                 model_version=fs[0].extractor))
    write_tasks(output, tasks)
    typer.echo(f"{len(tasks)} tasks → {output}", err=True)
