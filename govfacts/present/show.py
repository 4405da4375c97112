"""`govfacts show`: one self-contained HTML page per report — its text with every fact highlighted in its
label's colour (value, unit, qualifier and confidence on hover, low-confidence facts marked), the template
tables as recovered, and the report's `govfacts check` findings at the top — plus an index page. The pages
need no network (no CDN, no script) and open in any browser."""
from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from govfacts.atomic import write_text_atomic
from govfacts.checks import Finding
from govfacts.labels import default_labels
from govfacts.records import Document, Fact

LOW = 0.5  # facts below this confidence are marked for review

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px;line-height:1.7}
.text{white-space:pre-wrap;border:1px solid #ddd;padding:1em;font-size:15px}
mark.fact{padding:1px 2px;border-radius:3px;color:#000}
mark.fact.low{outline:2px dashed #c00}
mark.fact sub{font-size:9px;margin-left:2px;color:#333}
.finding{background:#fff3cd;border:1px solid #e0c36b;padding:4px 8px;margin:4px 0}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}
.legend span{display:inline-block;margin:2px 6px;padding:0 4px;border-radius:3px;font-size:12px}"""


def _tip(f: Fact) -> str:
    value = "" if f.value is None else f"{f.value:g}"
    return f"{f.metric}: {value} {f.unit} ({f.qualifier}), confidence {f.confidence:.2f}, {f.extractor}"


def render_report(doc: Document, facts: Sequence[Fact], findings: Sequence[Finding] = ()) -> str:
    colours = default_labels().colours()
    prose = sorted((f for f in facts if f.source == "prose"), key=lambda f: (f.start, -f.end))
    parts, pos = [], 0
    for f in prose:
        if f.start < pos:  # overlapping facts of an ensemble: the first one is shown
            continue
        parts.append(html.escape(doc.text[pos:f.start]))
        cls = "fact low" if f.confidence < LOW else "fact"
        colour = colours.get(f.metric, "#ddd")
        parts.append(f'<mark class="{cls}" style="background:{colour}55" title="{html.escape(_tip(f))}" '
                     f'data-metric="{f.metric}" data-value="{"" if f.value is None else f"{f.value:g}"}" '
                     f'data-confidence="{f.confidence:.4f}" data-start="{f.start}" data-end="{f.end}">'
                     f'{html.escape(doc.text[f.start:f.end])}<sub>{f.metric}</sub></mark>')
        pos = f.end
    parts.append(html.escape(doc.text[pos:]))
    rows: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        if f.source == "table" and f.cell:
            rows[f.cell.rsplit(".", 1)[0]].append(f)
    table = ""
    if rows:
        body = "".join(f"<tr><th>{html.escape(r)}</th>" + "".join(
            f'<td class="cell" title="{html.escape(_tip(c))}">{html.escape(c.cell.rsplit(".", 1)[1])}: '
            f'{c.value:g}</td>' for c in cs) + "</tr>" for r, cs in rows.items())
        table = f"<h2>Template tables as recovered ({sum(map(len, rows.values()))} cells)</h2><table>{body}</table>"
    legend = "".join(f'<span style="background:{colours[m]}55">{m}</span>'
                     for m in dict.fromkeys(f.metric for f in prose))
    finds = "".join(f'<div class="finding"><b>{html.escape(x.check)}</b>: {html.escape(x.message)}</div>'
                    for x in findings)
    n_low = sum(f.confidence < LOW for f in prose)
    return "\n".join([
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(doc.doc_id)} — govfacts</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(doc.doc_id)}</h1>",
        f"<p id='counts'>{len(prose)} prose facts ({n_low} below confidence {LOW}, outlined), "
        f"{sum(map(len, rows.values()))} table cells. <a href='index.html'>all reports</a></p>",
        f"<h2>Findings of govfacts check ({len(findings)})</h2>" + (finds or "<p>none</p>"),
        f"<div class='legend'>{legend}</div>",
        f"<div class='text'>{''.join(parts)}</div>", table, "</body></html>"])


def render_index(entries: Sequence[tuple[str, str, int, int]]) -> str:
    """entries: (doc_id, page file, facts, findings)."""
    rows = "".join(f"<tr><td><a href='{html.escape(p)}'>{html.escape(d)}</a></td><td>{n}</td><td>{k}</td></tr>"
                   for d, p, n, k in entries)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>govfacts reports</title>"
            f"<style>{_STYLE}</style></head><body><h1>govfacts: {len(entries)} reports</h1>"
            f"<table><tr><th>report</th><th>facts</th><th>findings</th></tr>{rows}</table></body></html>")


def write_pages(items: Sequence[tuple[Document, list[Fact], list[Finding]]], out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, used = [], set()
    for doc, facts, findings in items:
        name = f"{doc.doc_id}.html"
        n = 2
        while name in used:
            name = f"{doc.doc_id}-{n}.html"
            n += 1
        used.add(name)
        write_text_atomic(out_dir / name, render_report(doc, facts, findings))
        entries.append((doc.doc_id, name, len(facts), len(findings)))
    return write_text_atomic(out_dir / "index.html", render_index(entries))
