"""The `govfacts` command line: extract, text, labels, evaluate, and the annotations / studio / train groups."""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from govfacts.annotations import load_gold, load_split
from govfacts.atomic import write_text_atomic
from govfacts.cli.annotations import app as annotations_app
from govfacts.cli.studio import app as studio_app
from govfacts.cli.train import app as train_app
from govfacts.evaluate.render import write_report
from govfacts.evaluate.report import build_report, headline_table
from govfacts.evaluate.robustness import load_distractors
from govfacts.evaluate.robustness import markdown as robustness_markdown
from govfacts.evaluate.robustness import run as run_robustness
from govfacts.checks import check_document, check_facts
from govfacts.factsio import output_format, read_fact_table, read_facts
from govfacts.infer.api import WorkerSetup, extract_documents, extract_parts
from govfacts.infer.batch import discover, run_batch
from govfacts.infer.loader import InferSettings, extractor_id, load
from govfacts.infer.parallel import choose_workers, pinned_settings
from govfacts.infer.tagger import available_cpus
from govfacts.labels import default_labels
from govfacts.paths import ANNOTATIONS
from govfacts.present.show import write_pages
from govfacts.present.summarize import summarize as summarize_facts
from govfacts.present.summarize import write_summary
from govfacts.reader import ReadError, read_document
from govfacts.tables import table_cells_markdown

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
                                          "and extracting whole batches with CPUs/N threads (local default: "
                                          "configs/infer.yaml `workers`, auto = one per CPU for large corpora "
                                          "when no torch model is loaded; ray: actors, default 1 per tagger or "
                                          "1 per CPU for rules)."),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help="Tagger weights: dynamic int8 "
                                        "quantisation or float32 (default: see bench/README.md)."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Tagger encoder: auto (the fastest measured "
                                          "on this CPU), torch or onnx (ONNX Runtime); default: configs/infer.yaml."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Tagger windows per forward pass "
                                             "(default: configs/infer.yaml `batch_size`)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say which extractor and encoder runtime run, "
                                 "and why."),
) -> None:
    """Extract facts from reports; bad files are reported and skipped, the exit status says if any failed."""
    if engine not in ("local", "ray"):
        err.print(f"[red]error:[/red] --engine must be local or ray, not {engine!r}")
        raise typer.Exit(2)
    if address and engine != "ray":
        err.print("[red]error:[/red] --address needs --engine ray")
        raise typer.Exit(2)
    try:
        output_format(output)
        settings = InferSettings.load(quantize=int8, runtime=runtime, batch_size=batch_size)
        if engine == "ray":
            from govfacts.infer.ray_engine import run_ray  # optional: pip install 'govfacts[ray]'

            result, name = run_ray(paths, output, model, settings, errors=errors, resume=resume,
                                   progress=not quiet, address=address, workers=workers)
        else:
            extractor = load(model, settings)
            name = extractor_id(extractor)
            if verbose:
                _describe(extractor, settings)
    except (ValueError, OSError, ImportError) as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    if engine == "local":
        def how_many(pending_chars: int) -> int:
            choice = choose_workers(settings.workers if workers is None else workers, extractor, pending_chars,
                                    available_cpus(), settings.parallel_min_chars)
            if verbose:
                err.print(f"workers: {choice.workers} ({choice.reason})")
            setup.settings = pinned_settings(settings, extractor, choice.workers)
            return choice.workers

        setup = WorkerSetup(model, settings)
        result = run_batch(paths, output, lambda d: extract_documents(extractor, [d])[0], errors=errors,
                           resume=resume, progress=not quiet, workers=how_many, worker_setup=setup,
                           extract_many=lambda docs: extract_documents(extractor, docs),
                           extract_parts=lambda d, first: extract_parts(extractor, d, first))
    if not quiet:
        _summary(result, name)
    if result.failures:
        raise typer.Exit(1)


def _describe(extractor, settings: InferSettings) -> None:
    """The extractor, and for a tagger the encoder runtime it runs on and why (`runtime: auto` measures)."""
    err.print(f"extractor: {extractor_id(extractor)}")
    for member in (extractor, getattr(extractor, "primary", None), getattr(extractor, "secondary", None)):
        choice = getattr(member, "runtime_choice", None)
        if choice is not None:
            err.print(f"runtime: {choice.why()}")
        elif member is not None and hasattr(member, "runner"):
            how = "onnx" if member.runner is not None else "torch"
            err.print(f"runtime: {how}-{'int8' if member.quantized or getattr(member.runner, 'int8', False) else 'fp32'}"
                      f" (runtime: {settings.runtime} asked for)")


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
    try:
        doc = read_document(path)
    except ReadError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1)
    sys.stdout.write(doc.text)
    if not doc.text.endswith("\n"):
        sys.stdout.write("\n")


@app.command()
def labels(config: bool = typer.Option(False, "--studio-config", help="Print the Label Studio labeling config."),
           tables: bool = typer.Option(False, "--tables", help="Print the template-table cells: key, metric, unit.")
           ) -> None:
    """Show the label contract (configs/labels.yaml), or the template-table cells (configs/tables.yaml)."""
    if tables:
        sys.stdout.write(table_cells_markdown() + "\n")
        return
    ls = default_labels()
    sys.stdout.write((ls.studio_config() if config else ls.markdown_table()) + "\n")


def _gold_docs(paths: List[Path], split: Optional[str] = None, splits_file: Optional[Path] = None) -> list:
    """Gold documents of exports for evaluate and robustness; each invalid task is named and skipped."""
    docs, problems = load_gold(paths, split, splits_file)
    for p in problems:
        typer.echo(f"problem (task skipped): {p}", err=True)
    return docs


@app.command()
def evaluate(
    gold: List[Path] = typer.Option(..., "--gold", help="Label Studio export(s) or folder (e.g. annotations/)."),
    split: Optional[str] = typer.Option(None, "--split", help="Only documents of this split (annotations/splits.yaml)."),
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Model directory / hub name, 'rules' or "
                                              "'A+B'; repeat to compare. Default: the default extractor of "
                                              "configs/infer.yaml, as `govfacts extract` runs it."),
    out_dir: Path = typer.Option(Path("out/eval"), "--out", help="Folder for report.json/.md/.html and plots."),
    splits_file: Optional[Path] = typer.Option(None, "--splits", help="Default: annotations/splits.yaml."),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help="Tagger weights, as for extract."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Tagger encoder, as for extract."),
    tables: Optional[Path] = typer.Option(ANNOTATIONS / "tables", "--tables", help="Template-table gold "
                                          "(annotations/tables); its cells are read back from every stored form."),
) -> None:
    """Score models against held-out annotations: seqeval per label, fact-level, calibration, errors.

    Each model is loaded and run exactly as `govfacts extract` runs it with the same options."""
    docs = _gold_docs(gold, split, splits_file)
    if not docs:
        err.print("[red]error:[/red] no gold documents" + (f" in split {split!r}" if split else ""))
        raise typer.Exit(2)
    extractors = {}
    for spec in model or [None]:
        try:
            ex = load(spec, InferSettings.load(quantize=int8, runtime=runtime))
        except (OSError, ValueError) as e:
            err.print(f"[red]error:[/red] cannot load model {spec!r}: {e}")
            raise typer.Exit(2)
        extractors[extractor_id(ex)] = ex
    name = ", ".join(map(str, gold)) + (f" [{split}]" if split else "")
    report = build_report(docs, extractors, name, tables)
    write_report(report, out_dir)
    out.print(headline_table(report))
    err.print(f"report written to {out_dir}/report.html (+ report.md, report.json)")


@app.command()
def robustness(
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="As for evaluate; repeat to compare."),
    split: List[str] = typer.Option(["dev", "test"], "--split", help="Gold splits whose sentences are rewritten."),
    gold: Optional[List[Path]] = typer.Option(None, "--gold", help="Label Studio export(s) or folder whose "
                                              "sentences are rewritten instead of the splits' (e.g. annotations/heldout)."),
    out_dir: Path = typer.Option(Path("out/robustness"), "--out", help="Folder for robustness.json and .md."),
    int8: Optional[bool] = typer.Option(None, "--int8/--fp32", help="Tagger weights, as for extract."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="Tagger encoder, as for extract."),
) -> None:
    """Same claim, other number forms / hedges / script / PDF spacing: same fact? Real non-disclosure
    sentences: no fact? Fact F1 per transformation and the distractors' clean share."""
    source = ", ".join(map(str, gold or split))
    docs = _gold_docs(gold) if gold else [d for sp in split for d in load_split(sp)]
    if not docs:
        err.print(f"[red]error:[/red] no gold documents in {source}")
        raise typer.Exit(2)
    extractors = []
    for spec in model or [None]:
        try:
            extractors.append(load(spec, InferSettings.load(quantize=int8, runtime=runtime)))
        except (OSError, ValueError) as e:
            err.print(f"[red]error:[/red] cannot load model {spec!r}: {e}")
            raise typer.Exit(2)
    rep = run_robustness(extractors, docs, load_distractors())
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "robustness.json", json.dumps(asdict(rep), ensure_ascii=False, indent=1) + "\n")
    md = robustness_markdown(rep)
    write_text_atomic(out_dir / "robustness.md", f"# govfacts robustness ({source} sentences)\n\n{md}\n")
    out.print(md)
    err.print(f"written to {out_dir}/robustness.md (+ robustness.json)")


@app.command()
def check(
    facts: Path = typer.Argument(..., help="Facts file written by govfacts extract (.jsonl, .csv, .parquet)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="One JSON line per finding."),
) -> None:
    """Audit each report with the template's own arithmetic: row totals, the balance of the requests
    table, outcome totals, appeal totals, and prose claims that contradict the same report's table."""
    try:
        all_facts = read_facts(facts)
    except (OSError, ValueError) as e:
        err.print(f"[red]error:[/red] {facts}: {e}")
        raise typer.Exit(2)

    def text_of(path: str):
        try:
            return read_document(path).text
        except ReadError:
            return None

    findings = check_facts(all_facts, text_of)
    if output:
        write_text_atomic(output, "".join(json.dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in findings))
    docs = {f.doc_id for f in all_facts}
    with_tables = {f.doc_id for f in all_facts if f.source == "table"}
    for f in findings:
        out.print(f"{f.doc_id}: {f.check}: {escape(f.message)}")
    counts = Counter(f.check for f in findings)
    err.print(f"{len(findings)} findings in {len({f.doc_id for f in findings})} of {len(docs)} documents "
              f"({len(with_tables)} with template tables)" + (": " + ", ".join(f"{k} {v}" for k, v in counts.items())
                                                                  if counts else ""))


@app.command()
def show(
    paths: List[Path] = typer.Argument(..., help="Report files or folders."),
    out_dir: Path = typer.Option(Path("out/show"), "--out", help="Folder for one HTML page per report + index.html."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="As for extract (default: configs/infer.yaml)."),
) -> None:
    """One self-contained HTML page per report: the text with every fact highlighted in its label's colour,
    the template tables as recovered and the report's check findings."""
    files, _ = discover(paths)
    try:
        ex = load(model)
    except (OSError, ValueError) as e:
        err.print(f"[red]error:[/red] cannot load model {model!r}: {e}")
        raise typer.Exit(2)
    items, failed = [], 0
    for f in files:
        try:
            doc = read_document(f)
        except ReadError as e:
            err.print(f"[red]failed:[/red] {e}")
            failed += 1
            continue
        facts = extract_documents(ex, [doc])[0]
        items.append((doc, facts, check_document(doc.doc_id, facts, doc.text)))
    index = write_pages(items, out_dir)
    err.print(f"{len(items)} report pages written; open {index}")
    if failed:
        raise typer.Exit(1)


@app.command()
def summarize(
    facts: Path = typer.Argument(..., help="Facts file written by govfacts extract."),
    out_dir: Path = typer.Option(Path("out/summary"), "--out", help="Folder for facts_wide.csv/.parquet and summary.html."),
) -> None:
    """The corpus at a glance, from the facts file alone: one row per agency and year, plots over the years,
    the lowest-confidence facts to review next, and the findings of govfacts check."""
    problems: list[str] = []
    try:
        table = read_fact_table(facts, problems=problems)
    except (OSError, ValueError) as e:
        err.print(f"[red]error:[/red] {facts}: {e}")
        raise typer.Exit(2)
    for p in problems:
        err.print(f"[yellow]skipped:[/yellow] {escape(p)}")
    s = summarize_facts(table)
    page = write_summary(s, out_dir, progress=True)
    err.print(f"{len(s.wide)} reports, {table.num_rows} facts → {out_dir}/facts_wide.csv (+ .parquet), {page}"
              + (f"; {len(problems)} malformed lines skipped" if problems else ""))


app.add_typer(annotations_app, name="annotations")
app.add_typer(studio_app, name="studio")
app.add_typer(train_app, name="train")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
