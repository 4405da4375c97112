"""Plots as PNG bytes, drawn on matplotlib's object-oriented Figure: no pyplot state and no global
backend switch, so importing or calling these never changes how a host program draws."""
from __future__ import annotations

import io


def figure(size: tuple[float, float]):
    """(figure, axes) of a new off-screen figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.add_subplot()


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def reliability_png(models: dict[str, dict]) -> bytes:
    fig, ax = figure((5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    for name, res in models.items():
        pts = [(b["confidence"], b["accuracy"], b["count"]) for b in res["calibration"]["bins"] if b["count"]]
        if pts:
            ece = res["calibration"]["ece"]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("share of facts that are right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Reliability diagram")
    ax.legend(loc="lower right", fontsize=8)
    return png(fig)
