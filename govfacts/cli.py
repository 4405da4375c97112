"""The `govfacts` command line."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Facts from Chinese government "
                  "information-disclosure annual reports.")
err = Console(stderr=True, width=160)
out = Console(width=200)


@app.command()
def extract(
    paths: List[Path] = typer.Argument(..., help="Report files or folders (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", help="Facts file: .jsonl, .csv or .parquet."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Tagger directory / hub name, or 'rules'. "
                                        "Default: the bundled tagger (rules if none is bundled)."),
    errors: Optional[Path] = typer.Option(None, "--errors", help="Write one JSON line per failed file here."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run into the same output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    engine: str = typer.Option("local", "--engine", help="local: this process; ray: Ray Data actors "
                               "(pip install 'govfacts[ray]')."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (--engine ray); "
                                          "default: a local Ray instance."),
    workers: Optional[int] = typer.Option(None, "--workers", min=0, help="Extractor processes, each reading "
                                          "and extracting whole batches with CPUs/N threads (local default 0: "
                                          "this process; ray: actors, default 1 per tagger or 1 per CPU for rules)."),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help="Tagger weights: dynamic int8 "
                                        "quantisation or float32 (default: see bench/README.md)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Tagger encoder: auto, torch or onnx "
                                          "(ONNX Runtime); default: configs/infer.yaml."),
) -> None:
    """Extract facts from reports; bad files are reported and skipped, the exit status says if any failed."""
    from govfacts.infer.api import extract_documents, load
    from govfacts.infer.batch import run_batch
    from govfacts.infer.extractor import extractor_id

    if engine not in ("local", "ray"):
        err.print(f"[red]error:[/red] --engine must be local or ray, not {engine!r}")
        raise typer.Exit(2)
    if address and engine != "ray":
        err.print("[red]error:[/red] --address needs --engine ray")
        raise typer.Exit(2)
    try:
        from govfacts.factsio import output_format

        output_format(output)
        if engine == "ray":
            from govfacts.infer.ray_engine import run_ray

            result, name = run_ray(paths, output, model, errors=errors, resume=resume, progress=not quiet,
                                   address=address, workers=workers, quantize=int8, runtime=runtime)
        else:
            extractor = load(model, quantize=int8, runtime=runtime)
            name = extractor_id(extractor)
    except (ValueError, OSError, ImportError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    if engine == "local":
        from functools import partial

        from govfacts.infer.api import batch_functions
        from govfacts.infer.tagger import available_cpus

        setup = partial(batch_functions, model, int8, max(1, available_cpus() // workers),
                        runtime=runtime) if workers else None
        result = run_batch(paths, output, lambda d: extract_documents(extractor, [d])[0], errors=errors,
                           resume=resume, progress=not quiet, workers=workers or 0, worker_setup=setup,
                           extract_many=lambda docs: extract_documents(extractor, docs))
    if not quiet:
        _summary(result, name)
    if result.failures:
        raise typer.Exit(1)


def _summary(result, extractor: str) -> None:
    counts = Counter(f.metric for f in result.facts)
    table = Table(title=f"{len(result.facts)} facts from {result.documents} documents ({extractor})")
    table.add_column("metric")
    table.add_column("facts", justify="right")
    table.add_column("documents", justify="right")
    docs = {m: len({f.doc_id for f in result.facts if f.metric == m}) for m in counts}
    for metric, n in counts.most_common():
        table.add_row(metric, str(n), str(docs[metric]))
    err.print(table)
    err.print(f"facts written to [bold]{result.output}[/bold]")
    if result.resumed:
        err.print(f"resumed: {result.resumed} documents taken from the interrupted run")
    if result.skipped:
        err.print(f"skipped {len(result.skipped)} files of other types in folders (e.g. {result.skipped[0]})")
    for fail in result.failures:
        err.print(f"[red]failed:[/red] {fail.path}: {fail.reason}")


@app.command()
def text(path: Path = typer.Argument(..., help="A report file.")) -> None:
    """Print the document text that all fact offsets refer to."""
    from govfacts.reader import ReadError, read_document

    try:
        doc = read_document(path)
    except ReadError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1)
    sys.stdout.write(doc.text)
    if not doc.text.endswith("\n"):
        sys.stdout.write("\n")


@app.command()
def labels(config: bool = typer.Option(False, "--studio-config", help="Print the Label Studio labeling config.")) -> None:
    """Show the label contract (configs/labels.yaml)."""
    from govfacts.labels import default_labels

    ls = default_labels()
    sys.stdout.write((ls.studio_config() if config else ls.markdown_table()) + "\n")


@app.command()
def evaluate(
    gold: List[Path] = typer.Option(..., "--gold", help="Label Studio export(s) or folder (e.g. annotations/)."),
    split: Optional[str] = typer.Option(None, "--split", help="Only documents of this split (annotations/splits.yaml)."),
    model: List[str] = typer.Option(["rules"], "--model", "-m", help="Model directory / hub name or 'rules'; repeat "
                                    "to compare."),
    out_dir: Path = typer.Option(Path("out/eval"), "--out", help="Folder for report.json/.md/.html and plots."),
    splits_file: Optional[Path] = typer.Option(None, "--splits", help="Default: annotations/splits.yaml."),
) -> None:
    """Score models against held-out annotations: seqeval per label, fact-level, calibration, errors."""
    from govfacts.infer.extractor import extractor_id, load_extractor
    from govfacts.train.evaluate import build_report, headline_table, load_gold
    from govfacts.train.report import write_report

    docs, problems = load_gold(gold, split, splits_file)
    for p in problems:
        typer.echo(f"problem (task skipped): {p}", err=True)
    if not docs:
        err.print("[red]error:[/red] no gold documents" + (f" in split {split!r}" if split else ""))
        raise typer.Exit(2)
    extractors = {}
    for spec in model:
        try:
            ex = load_extractor(spec)
        except (OSError, ValueError) as e:
            err.print(f"[red]error:[/red] cannot load model {spec!r}: {e}")
            raise typer.Exit(2)
        extractors[extractor_id(ex)] = ex
    name = ", ".join(map(str, gold)) + (f" [{split}]" if split else "")
    report = build_report(docs, extractors, name)
    write_report(report, out_dir)
    out.print(headline_table(report))
    err.print(f"report written to {out_dir}/report.html (+ report.md, report.json)")


def _register() -> None:
    from govfacts.cli_annotations import app as annotations_app

    from govfacts.cli_train import app as train_app

    app.add_typer(annotations_app, name="annotations")
    from govfacts.cli_studio import app as studio_app

    app.add_typer(studio_app, name="studio")
    app.add_typer(train_app, name="train")


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
