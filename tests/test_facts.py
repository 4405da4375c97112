"""Every fact carries its evidence: the whole sentence (prose) or table row (template tables) it came from."""
from pathlib import Path

from govfacts.claims import SENT_ENDS
from govfacts.infer.api import extract_documents
from govfacts.infer.loader import load
from govfacts.reader import read_document

ROOT = Path(__file__).resolve().parents[1]


def test_evidence_of_every_fact_of_the_samples():
    docs = [read_document(p) for p in sorted((ROOT / "data" / "samples").glob("*.txt"))]
    facts = [f for fs in extract_documents(load("rules"), docs) for f in fs]
    text = {d.doc_id: d.text for d in docs}
    assert {f.source for f in facts} == {"prose", "table"}
    for f in facts:
        t = text[f.doc_id]
        assert t[f.evidence_start:f.evidence_end] == f.evidence and f.evidence == f.evidence.strip()
        assert f.evidence_start <= f.start < f.end <= f.evidence_end
        if f.source == "prose":  # a whole sentence: it starts after a sentence end and ends on one (or the text's end)
            before = t[:f.evidence_start].rstrip(" \t\u3000\xa0")
            assert not before or before[-1] in SENT_ENDS, f.evidence
            inner = f.evidence[:-1]
            assert not any(c in "。！？；" for c in inner), f.evidence
        else:  # the row: its label and its numbers
            assert any(ch.isdigit() for ch in f.evidence) and len(f.evidence) >= len(f.text)
