from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def sample_text(doc_id: str) -> str:
    return (SAMPLES / f"{doc_id}.txt").read_text(encoding="utf-8")
