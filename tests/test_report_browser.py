"""The evaluation report opened in a real headless browser (Debian's chromium)."""
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from govfacts.cli import app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test.sh")
def test_report_renders_in_chromium(tmp_path):
    out = tmp_path / "eval"
    res = CliRunner().invoke(app, ["evaluate", "--gold", "annotations", "--split", "test", "--model", "rules",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    url = (out / "report.html").resolve().as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table class="headline">' in dom.stdout and "rules@" in dom.stdout
    shot = tmp_path / "report.png"
    r = subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1280,1600", url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 1600)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page
    dark = sum(n for n, (r_, g, b) in colours if r_ + g + b < 300)
    assert dark > 2000  # a page with text on it


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by scripts/test.sh")
def test_report_pages_and_summary_render_in_chromium(tmp_path):
    """`govfacts show` and `govfacts summarize` pages, opened offline in a real browser."""
    import re

    from govfacts.factsio import read_facts

    samples = "data/samples"
    runner = CliRunner()
    res = runner.invoke(app, ["show", f"{samples}/gov-pingtan-2021.txt", f"{samples}/gov-huaian-hongze-2023.txt",
                              "--out", str(tmp_path / "show"), "-m", "rules"])
    assert res.exit_code == 0, res.output
    facts = tmp_path / "facts.jsonl"
    assert runner.invoke(app, ["extract", samples, "-o", str(facts), "-m", "rules", "-q"]).exit_code == 0
    res = runner.invoke(app, ["summarize", str(facts), "--out", str(tmp_path / "summary")])
    assert res.exit_code == 0, res.output
    want = [f for f in read_facts(facts) if f.doc_id == "gov-huaian-hongze-2023"]
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    for page, check in ((tmp_path / "show" / "gov-huaian-hongze-2023.html", "page"),
                        (tmp_path / "show" / "index.html", "index"), (tmp_path / "summary" / "summary.html", "summary")):
        dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", page.resolve().as_uri()], capture_output=True,
                             text=True, timeout=120)
        assert dom.returncode == 0, dom.stderr[-2000:]
        if check == "page":  # every prose fact highlighted with its metric; the check findings on top
            marks = re.findall(r'<mark class="fact[^"]*"[^>]*data-metric="([A-Z_]+)"', dom.stdout)
            assert marks == [f.metric for f in sorted(want, key=lambda f: f.start) if f.source == "prose"]
            assert "appeal_total" in dom.stdout and "Template tables as recovered (179 cells)" in dom.stdout
        elif check == "index":
            assert "gov-pingtan-2021.html" in dom.stdout
        else:
            assert "17 reports" in dom.stdout and "studio push" in dom.stdout and "<img" in dom.stdout
            assert (tmp_path / "summary" / "facts_wide.csv").read_text(encoding="utf-8").count("\n") == 18
    shot = tmp_path / "page.png"
    r = subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}", "--window-size=1280,1200",
                        (tmp_path / "show" / "gov-pingtan-2021.html").resolve().as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000
