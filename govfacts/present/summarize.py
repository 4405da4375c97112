"""`govfacts summarize`: a corpus of facts at a glance, read from the facts file alone (not the reports).

* `facts_wide.csv` / `.parquet`: one row per (agency, year), one column per metric. A report's number for
  a metric is its template table's total cell where it has one (`govfacts.tables.TOTAL_CELLS`), else from its prose
  facts by the label's `aggregate` rule (configs/labels.yaml: the highest-confidence claim, or a sum).
* `summary.html`: facts per label and per report, each metric over the years for every agency with at
  least two reports, the distribution of confidences, the lowest-confidence facts with their evidence
  (what to send to annotators next, with the `govfacts studio push` line to do it), and the findings of
  `govfacts check`.
"""
from __future__ import annotations

import html
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from govfacts.atomic import atomic_path, write_text_atomic
from govfacts.checks import Finding, check_cells
from govfacts.factsio import fact_table
from govfacts.evaluate.render import html_table, img_tag
from govfacts.labels import default_labels
from govfacts.plots import figure, png
from govfacts.present import corpus
from govfacts.records import Fact

LOW_CONFIDENCE = 30  # facts listed for review
HTML_ROWS = 200  # rows of the page's per-report tables (all rows are in facts_wide.csv)
TREND_AGENCIES = 10  # agencies drawn per metric plot (those with the most reports; all are in facts_wide.csv)


@dataclass
class Summary:
    wide: list[dict] = field(default_factory=list)  # one row per (agency, year)
    metrics: list[str] = field(default_factory=list)
    per_label: Counter = field(default_factory=Counter)
    per_report: dict[str, int] = field(default_factory=dict)
    confidences: list[float] = field(default_factory=list)
    lowest: list[Fact] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    documents: int = 0


def summarize(facts: pa.Table | Iterable[Fact]) -> Summary:
    """The summary of a fact table (`govfacts.factsio.read_fact_table`) or of facts in memory; the findings
    are those of the template tables' arithmetic (`govfacts check` without the reports' text)."""
    table = facts if isinstance(facts, pa.Table) else fact_table(facts)
    labels = default_labels()
    r = corpus.reports(table)
    s = Summary(metrics=labels.names, documents=len(r.names))
    s.wide = corpus.wide_rows(table, r, labels)
    s.findings = [f for c, cells in corpus.cells_by_report(table, r).items() for f in check_cells(r.names[c], cells)]
    counts = pc.value_counts(table["metric"])  # labels in the order they first appear, as a Counter counts them
    s.per_label = Counter(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
    per_doc = np.bincount(r.code, minlength=len(r.names))
    s.per_report = {r.names[c]: int(per_doc[c]) for c in r.by_doc_id}
    s.confidences, s.lowest = corpus.lowest_prose(table, LOW_CONFIDENCE)
    return s


def write_wide(s: Summary, out_dir: Path) -> None:
    import csv

    cols = ["agency", "year", "doc_id", *s.metrics]
    with atomic_path(out_dir / "facts_wide.csv") as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            w.writerows(s.wide)
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(out_dir / "facts_wide.parquet") as tmp:
        pq.write_table(pa.table({c: [r.get(c) for r in s.wide] for c in cols}), tmp)


def _trend_plots(s: Summary, progress: bool = False) -> list[str]:
    """One plot per metric: its value over the years for each agency with >= 2 reports (drawing them is
    most of the time a large corpus takes, hence the progress bar)."""
    by_agency: dict[str, list[dict]] = defaultdict(list)
    for r in s.wide:
        if r["year"] is not None:
            by_agency[r["agency"]].append(r)
    ranked = sorted((a for a, rs in by_agency.items() if len(rs) >= 2), key=lambda a: (-len(by_agency[a]), a))
    many = {a: sorted(by_agency[a], key=lambda r: r["year"]) for a in ranked[:TREND_AGENCIES]}
    keys = {a: f"A{i + 1}" for i, a in enumerate(many)}  # plot legends without CJK fonts; named below the plots
    colour = {a: f"C{i % 10}" for i, a in enumerate(many)}  # one colour per agency in every plot
    out = []
    for m in tqdm(s.metrics, desc="plots", unit="metric", file=sys.stderr, disable=not progress, dynamic_ncols=True):
        series = {a: [(r["year"], r[m]) for r in rs if r[m] is not None] for a, rs in many.items()}
        series = {a: pts for a, pts in series.items() if len(pts) >= 2}
        if not series:
            continue
        fig, ax = figure((5, 3))
        for a, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=keys[a], color=colour[a])
        ax.set_title(m)
        ax.set_xlabel("year")
        ax.legend(fontsize=7)
        out.append(img_tag(png(fig), f"{m} over the years"))
    if out:
        more = f" (the {TREND_AGENCIES} of {len(ranked)} agencies with the most reports; all are in facts_wide.csv)" \
            if len(ranked) > TREND_AGENCIES else ""
        out.append("<p>" + "; ".join(f"{k}: {html.escape(a)}" for a, k in keys.items()) + more + "</p>")
    return out


def _confidence_plot(s: Summary) -> str:
    fig, ax = figure((5, 3))
    # an array, not the list: matplotlib inspects a list item by item (seconds for a large corpus)
    ax.hist(np.asarray(s.confidences or [0], dtype=float), bins=20, range=(0, 1))
    ax.set_xlabel("confidence of prose facts")
    ax.set_ylabel("facts")
    return img_tag(png(fig), "confidence distribution")


def _more(n: int) -> str:
    return f"<p>first {HTML_ROWS} of {n} rows; all are in facts_wide.csv</p>" if n > HTML_ROWS else ""


def render_html(s: Summary, progress: bool = False) -> str:
    low_docs = list(dict.fromkeys(f.path for f in s.lowest if f.path))[:10]
    used = [m for m in s.metrics if any(r[m] is not None for r in s.wide)]
    hint = "govfacts studio push " + " ".join(low_docs) if low_docs else ""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>govfacts summary</title><style>",
             "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}.plots img{margin:4px}"
             "code{background:#f4f4f4;padding:2px 4px}",
             "</style></head><body>",
             f"<h1>govfacts summary</h1><p id='counts'>{sum(s.per_report.values())} facts from {s.documents} reports, "
             f"{len(s.findings)} findings of <code>govfacts check</code>.</p>",
             "<h2>Facts per label</h2>", html_table(["label", "facts"], s.per_label.most_common()),
             "<h2>Facts per report</h2>", html_table(["report", "facts"], list(s.per_report.items())[:HTML_ROWS]),
             _more(len(s.per_report)),
             "<h2>Each metric over the years</h2><div class='plots'>", *_trend_plots(s, progress), "</div>",
             "<h2>Confidence</h2>", _confidence_plot(s),
             "<h2 id='lowest'>Lowest-confidence facts: send these to annotators next</h2>",
             html_table(["report", "metric", "value", "confidence", "evidence"],
                   [[f.doc_id, f.metric, f"{f.value:g} {f.unit}" if f.value is not None else "", f"{f.confidence:.2f}",
                     f.evidence] for f in s.lowest])]
    if hint:
        parts.append(f"<p>To review them in Label Studio: <code>{html.escape(hint)}</code></p>")
    parts += ["<h2 id='findings'>Findings of govfacts check</h2>",
              html_table(["report", "check", "message"], [[f.doc_id, f.check, f.message] for f in s.findings])
              if s.findings else "<p>none</p>",
              "<h2>Facts by agency and year</h2>",
              html_table(["agency", "year", *used], [[r["agency"], r["year"], *[("" if r[m] is None else f"{r[m]:g}")
                                                                          for m in used]] for r in s.wide[:HTML_ROWS]]),
              _more(len(s.wide)),
              "</body></html>"]
    return "\n".join(parts)


def write_summary(s: Summary, out_dir: Path, progress: bool = False) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_wide(s, out_dir)
    return write_text_atomic(out_dir / "summary.html", render_html(s, progress))
