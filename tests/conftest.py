from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def sample_text(doc_id: str) -> str:
    return (SAMPLES / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """ONNX exports of the test models go to a temporary cache, not the user's ~/.cache/govfacts
    (set in the environment, so CLI subprocesses and Ray workers see it too)."""
    import os

    old = os.environ.get("GOVFACTS_CACHE")
    os.environ["GOVFACTS_CACHE"] = str(tmp_path_factory.mktemp("govfacts-cache"))
    yield
    if old is None:
        os.environ.pop("GOVFACTS_CACHE", None)
    else:
        os.environ["GOVFACTS_CACHE"] = old
