"""Whole-process ratios to the naive pipeline, run by run, beside the targets (5x at 1x, 8x at 16x).

    .venv/bin/python bench/plot_ratios.py RESULT.json [RESULT.json ...] [--out bench/results/ratios.png]

Each RESULT is a `bench/whole_process.py --json` file; its `govfacts auto` rows (the default weights) are set
against the `naive` rows of the same size and run. Runs are grouped by CPU (model, family/model/stepping where
recorded, SIMD flags), so machines of the same kind that differ in speed are told apart; the table printed is
what the plot shows.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from govfacts.atomic import atomic_path  # noqa: E402
from govfacts.plots import figure, png  # noqa: E402

TARGETS = {1: 5.0, 16: 8.0}


def ratios(path: Path) -> dict:
    """{"cpu": label, "run": file stem, size: ratio} of one result file (sizes with both rows only)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    cpu = data.get("cpu", {})
    label = " ".join(x for x in (cpu.get("model", "?"), cpu.get("cpu_id", ""), f"({cpu.get('simd_flags', '')})") if x)
    out: dict = {"cpu": label, "run": path.stem}
    rows = data.get("results", [])
    for size in TARGETS:
        naive = next((r["seconds"] for r in rows if r.get("path") == "naive" and r.get("size") == size), None)
        ours = next((r["seconds"] for r in rows if r.get("path") == "govfacts auto" and r.get("size") == size), None)
        if naive and ours:
            out[size] = naive / ours
    return out


def plot(runs: list[dict]) -> bytes:
    fig, axes = figure((max(6.0, 0.9 * len(runs) + 2), 4.2))
    width = 0.38
    cpus = list(dict.fromkeys(r["cpu"] for r in runs))
    colours = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for k, size in enumerate(TARGETS):
        xs = [i + (k - 0.5) * width for i in range(len(runs))]
        ys = [r.get(size, 0.0) for r in runs]
        bars = axes.bar(xs, ys, width, color=[colours[cpus.index(r["cpu"]) % len(colours)] for r in runs],
                        alpha=0.55 if size == 1 else 0.95, edgecolor="black", linewidth=0.5)
        for b, y in zip(bars, ys):
            if y:
                axes.text(b.get_x() + b.get_width() / 2, y + 0.1, f"{size}x\n{y:.1f}", ha="center", fontsize=7)
        axes.axhline(TARGETS[size], linestyle="--" if size == 1 else "-", color="grey", linewidth=1,
                     label=f"target at {size}x: {TARGETS[size]:g}x")
    axes.set_xticks(range(len(runs)))
    seen: dict[str, int] = {}
    ticks = []
    for r in runs:
        seen[r["cpu"]] = seen.get(r["cpu"], 0) + 1
        ticks.append(f"CPU {cpus.index(r['cpu']) + 1}, run {seen[r['cpu']]}")
    axes.set_xticklabels(ticks, fontsize=7)
    axes.set_ylabel("govfacts extract vs naive pipeline (x faster)")
    axes.set_title("Whole process, default weights; colour = CPU", fontsize=9)
    for i, cpu in enumerate(cpus):
        axes.bar([0], [0], color=colours[i % len(colours)], label=f"CPU {i + 1}: {cpu}")
    axes.legend(fontsize=7, loc="upper left")
    top = max([r.get(s, 0.0) for r in runs for s in TARGETS] + [max(TARGETS.values())])
    axes.set_ylim(0, top * 1.35)
    return png(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("bench/results/ratios.png"))
    args = ap.parse_args()
    runs = [ratios(p) for p in args.results]
    print("| run | CPU | 1x ratio | 16x ratio |\n|---|---|---:|---:|")
    for r in runs:
        print(f"| {r['run']} | {r['cpu']} | " + " | ".join(f"{r[s]:.1f}x" if s in r else "–" for s in TARGETS) + " |")
    with atomic_path(args.out) as tmp:
        tmp.write_bytes(plot(runs))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
