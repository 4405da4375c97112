"""Where the repository's data folders live (configs, models, annotations, bundled samples).

govfacts is installed in editable mode from its repository, so data sits beside the code.
`GOVFACTS_HOME` overrides the root for installs that keep the data elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("GOVFACTS_HOME", Path(__file__).resolve().parents[1]))
CONFIGS = ROOT / "configs"
MODELS = ROOT / "models"
ANNOTATIONS = ROOT / "annotations"
SAMPLES = ROOT / "data" / "samples"
DEFAULT_TAGGER = MODELS / "govfacts-tagger-zh"


def cache_root() -> Path:
    """Where govfacts keeps what it makes once per machine (ONNX exports, the runtime choice, jieba's word
    table): `$GOVFACTS_CACHE`, else `~/.cache/govfacts`."""
    return Path(os.environ.get("GOVFACTS_CACHE") or Path.home() / ".cache" / "govfacts")


def resolve(path: str | Path) -> Path:
    """A path written in a config file: absolute as written, else relative to the repository root."""
    p = Path(path)
    return p if p.is_absolute() else ROOT / p


def resolve_model(spec: str | Path) -> str:
    """A model spec: an existing directory as given (absolute or from the working directory), else one
    under the repository root, else the string itself (a hub name)."""
    for cand in (Path(spec), ROOT / str(spec)):
        if cand.is_dir():
            return str(cand)
    return str(spec)
