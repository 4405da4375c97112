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
