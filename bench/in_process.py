"""Set-up shared by the in-process side-by-side benchmarks (`tables_overhead.py`, `confidence_overhead.py`):
the bundled sample reports repeated, and an extractor loaded and warmed up on them."""
from __future__ import annotations

from govfacts.infer.api import extract_documents
from govfacts.infer.loader import load
from govfacts.paths import SAMPLES
from govfacts.reader import read_document


def sample_documents(copies: int) -> list:
    """The 17 bundled sample reports, `copies` times over."""
    return [read_document(p) for p in sorted(SAMPLES.glob("*.txt"))] * copies


def warmed_extractor(model, docs: list):
    """The extractor of `model` (None: configs/infer.yaml), run once on two documents so that loading the
    model, the ONNX session, jieba and OpenCC is not timed."""
    ex = load(model)
    extract_documents(ex, docs[:2])
    return ex
