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
