"""Evaluation reports: report.json (all numbers), report.md and a self-contained report.html with plots."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from govfacts.atomic import atomic_path
from govfacts.evaluate.tables import markdown as tables_markdown
from govfacts.plots import figure, png, reliability_png


def confusion_png(name: str, conf: dict) -> bytes:
    import numpy as np

    labels, m = conf["labels"], np.array(conf["matrix"])
    n = max(len(labels), 1)
    fig, ax = figure((0.45 * n + 3, 0.45 * n + 2.5))
    ax.imshow(np.log1p(m) if m.size else np.zeros((1, 1)), cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(f"Label confusion: {name}")
    return png(fig)


def f1_png(models: dict[str, dict]) -> bytes:

    labels = sorted({k for r in models.values() for k in r["entity"] if k.isupper()})
    fig, ax = figure((7, 0.3 * len(labels) + 1.5))
    width = 0.8 / max(len(models), 1)
    for i, (name, res) in enumerate(models.items()):
        vals = [res["entity"].get(lab, {}).get("f1-score", 0.0) for lab in labels]
        ax.barh([y + i * width for y in range(len(labels))], vals, height=width, label=name)
    ax.set_yticks([y + width * (len(models) - 1) / 2 for y in range(len(labels))], labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("entity F1 (seqeval strict)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Per-label entity F1")
    return png(fig)


def headline_rows(report: dict) -> list[list[str]]:
    rows = []
    for name, r in report["models"].items():
        e = r["entity"].get("micro avg", {})
        m = r["entity"].get("macro avg", {})
        f = r["fact"]
        ece = r["calibration"]["ece"]
        ece_ci = r["calibration"].get("interval") or {}
        ci = r.get("fact_interval") or {}
        interval = f"[{ci['low']:.3f}, {ci['high']:.3f}]" if ci.get("low") is not None else "-"
        rows.append([name, f"{e.get('precision', 0):.3f}", f"{e.get('recall', 0):.3f}", f"{e.get('f1-score', 0):.3f}",
                     f"{m.get('f1-score', 0):.3f}", f"{f['precision']:.3f}", f"{f['recall']:.3f}", f"{f['f1']:.3f}",
                     interval,
                     "-" if r["value_accuracy"] is None else f"{r['value_accuracy']:.3f}",
                     "-" if ece is None else f"{ece:.3f}",
                     f"[{ece_ci['low']:.3f}, {ece_ci['high']:.3f}]" if ece_ci.get("low") is not None else "-",
                     f"{ece_ci['calibrated_median']:.3f}, {ece_ci['calibrated_high']:.3f}"
                     if ece_ci.get("calibrated_high") is not None else "-"])
    return rows


HEAD = ["model", "entity P", "entity R", "entity F1 (micro)", "entity F1 (macro)", "fact P", "fact R", "fact F1",
        "fact F1 95 % CI", "value acc.", "ECE", "ECE 95 % CI", "ECE by chance if calibrated (median, 95 %)"]


def comparison_lines(report: dict) -> list[str]:
    """One sentence per comparison, claiming "A beats B" only where the interval says so."""
    out = []
    for c in report.get("comparisons", []):
        if c["diff"] is None:
            continue
        verdict = (f"{c['a']} beats {c['b']}" if c["a_better"] else f"{c['b']} beats {c['a']}" if c["b_better"]
                   else "no difference shown")
        out.append(f"fact F1 {c['a']} − {c['b']}: {c['diff']:+.3f} (95 % paired bootstrap over documents "
                   f"[{c['low']:+.3f}, {c['high']:+.3f}], A better in {c['p_a_better']:.0%} of samples): {verdict}")
        e = c.get("ece") or {}
        if e.get("diff") is not None:
            verdict = (f"{c['a']} is better calibrated" if e["a_better"] else
                       f"{c['b']} is better calibrated" if e["b_better"] else "no difference shown")
            out.append(f"ECE {c['a']} − {c['b']}: {e['diff']:+.3f} (95 % paired bootstrap over documents "
                       f"[{e['low']:+.3f}, {e['high']:+.3f}], A lower in {e['p_a_better']:.0%} of samples): {verdict}")
    return out


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] +
                     ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def per_label_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    names = list(report["models"])
    labels = sorted({k for r in report["models"].values() for k in r["entity"] if k.isupper()})
    head = ["label", "support"] + [f"{n} F1" for n in names] + [f"{n} fact F1" for n in names]
    rows = []
    for lab in labels:
        sup = max(int(r["entity"].get(lab, {}).get("support", 0)) for r in report["models"].values())
        rows.append([lab, str(sup)] + [f"{r['entity'].get(lab, {}).get('f1-score', 0):.3f}"
                                       for r in report["models"].values()]
                    + [f"{r['fact_per_label'].get(lab, {}).get('f1', 0):.3f}" for r in report["models"].values()])
    return head, rows


def render_markdown(report: dict) -> str:
    lines = [f"# govfacts evaluation — {report['gold']['name']}", "",
             f"{report['gold']['documents']} documents, {report['gold']['spans']} gold spans, data hash "
             f"`{report['gold']['hash'][:16]}`, {report['date']}.", "",
             "Entity scores: seqeval strict IOB2 over characters (out-of-scope table regions excluded). Fact scores:"
             " same label, overlapping span and same normalised value. ECE: calibration of fact confidences; its interval"
             " is over documents drawn with replacement, and 'by chance' is the ECE a perfectly calibrated extractor"
             " would still show with these confidences on this many facts, at the median and the 95th percentile (an ECE"
             " target below that median is one a calibrated extractor misses more often than not).", "",
             _md_table(HEAD, headline_rows(report)), "", *[f"- {x}" for x in comparison_lines(report)], "",
             "## Per label", ""]
    head, rows = per_label_rows(report)
    lines += [_md_table(head, rows), "", "![reliability](reliability.png)", "", "![per-label F1](f1.png)", ""]
    if report.get("tables"):
        lines += ["## Template tables: cells read back against the table gold", "", tables_markdown(report["tables"]), ""]
    for name, r in report["models"].items():
        lines += [f"## {name}: documents", "", _md_table(["document", "fact P", "fact R", "fact F1", "gold"], [
            [d["doc_id"], f"{d['precision']:.3f}", f"{d['recall']:.3f}", f"{d['f1']:.3f}", str(d["support"])]
            for d in r["documents"]]), "", f"## {name}: errors ({len(r['errors'])})", ""]
        for e in r["errors"]:
            lines.append(f"- {e['kind'].upper()} {e['confidence']:.2f} `{e['doc_id']}` {e['label']}: "
                         f"…{e['left']}**{e['text']}**{e['right']}…".replace("\n", "⏎"))
        lines.append("")
    return "\n".join(lines)


def img_tag(data: bytes, alt: str) -> str:
    """A PNG inlined as a data URI: the page needs no other file."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def html_table(head, rows, cls: str = "") -> str:
    """An HTML table of escaped cells (the evaluation report, the corpus summary)."""
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def render_html(report: dict, images: dict[str, bytes]) -> str:
    parts = [f"<h1>govfacts evaluation — {html.escape(report['gold']['name'])}</h1>",
             f"<p>{report['gold']['documents']} documents, {report['gold']['spans']} gold spans, data hash "
             f"<code>{report['gold']['hash'][:16]}</code>, {html.escape(report['date'])}.</p>",
             '<h2 id="headline">Headline</h2>', html_table(HEAD, headline_rows(report), "headline"),
             "".join(f"<p>{html.escape(x)}</p>" for x in comparison_lines(report)),
             '<h2>Per label</h2>', html_table(*per_label_rows(report)),
             '<div class="plots">', img_tag(images["reliability.png"], "reliability diagram"),
             img_tag(images["f1.png"], "per-label F1"), "</div>"]
    if report.get("tables"):
        parts += ["<h2>Template tables: cells read back against the table gold</h2>", html_table(
            ["report", "form", "cells", "read exactly", "not read (ambiguous)", "wrong"],
            [[r["doc_id"], r["form"], r.get("cells", "–"), r.get("exact", "–"), r.get("not_read", "–"),
              r.get("wrong", r.get("error", ""))] for r in report["tables"]])]
    for name, r in report["models"].items():
        parts += [f"<h2>{html.escape(name)}</h2>", img_tag(images[f"confusion-{_slug(name)}.png"], f"confusion {name}"),
                  "<h3>Documents</h3>", html_table(["document", "fact P", "fact R", "fact F1", "gold"], [
                      [d["doc_id"], f"{d['precision']:.3f}", f"{d['recall']:.3f}", f"{d['f1']:.3f}", d["support"]]
                      for d in r["documents"]]), f"<h3>Errors ({len(r['errors'])}), most confident first</h3><ul class='errors'>"]
        for e in r["errors"]:
            extra = f" (predicted here: {', '.join(e['predicted_here'])})" if e.get("predicted_here") else ""
            parts.append(f"<li><span class='{e['kind']}'>{e['kind'].upper()}</span> {e['confidence']:.2f} "
                         f"<code>{html.escape(e['doc_id'])}</code> <b>{e['label']}</b>{html.escape(extra)}: "
                         f"…{html.escape(e['left'])}<mark>{html.escape(e['text'])}</mark>{html.escape(e['right'])}…</li>")
        parts.append("</ul>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
             "mark{background:#ffe066}.fp{color:#c0392b;font-weight:bold}.fn{color:#2471a3;font-weight:bold}"
             ".plots img{max-width:48%;margin:0.5em}img{max-width:100%}")
    return (f"<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'><title>govfacts evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def write_report(report: dict, out_dir: str | Path) -> Path:
    """Write report.json, report.md, report.html and the PNG plots into `out_dir` (each file atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {"reliability.png": reliability_png(report["models"]), "f1.png": f1_png(report["models"])}
    for name, r in report["models"].items():
        images[f"confusion-{_slug(name)}.png"] = confusion_png(name, r["confusion"])
    for fname, data in images.items():
        with atomic_path(out / fname) as tmp:
            tmp.write_bytes(data)
    for fname, text in (("report.json", json.dumps(report, ensure_ascii=False, indent=1)),
                        ("report.md", render_markdown(report)), ("report.html", render_html(report, images))):
        with atomic_path(out / fname) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return out
