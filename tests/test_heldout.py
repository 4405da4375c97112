"""The held-out passages of unseen agencies (annotations/heldout): valid, fully reviewed, cited, and apart from
the corpus in documents, agencies, text and splits, so a score on them is a score on agencies never seen."""
import re

import pytest

from govfacts.annotations import validate_exports
from govfacts.consistency import uncovered_numbers
from govfacts.paths import ANNOTATIONS
from govfacts.scoring import match_spans, prf_of
from govfacts.splits import load_splits, split_of
from govfacts.train.crossval import read_manifest


@pytest.fixture(scope="module")
def held():
    docs, problems = validate_exports([ANNOTATIONS / "heldout"])
    assert problems == []
    return docs


def test_heldout_passages_are_valid_cited_and_apart_from_the_corpus(docs, held):
    assert len(held) >= 130 and sum(len(d.spans) for d in held) >= 600
    assert [u for d in held for u in uncovered_numbers(d)] == []
    ids = {d.doc_id for d in held}
    assert not ids & set(docs)
    assert not ids & set(split_of(load_splits(), sorted(ids)))  # no split entry reaches them

    manifest = read_manifest(ANNOTATIONS / "MANIFEST.tsv")
    rows = {d: r for d, r in manifest.items() if r["kind"] == "heldout"}
    assert set(rows) == ids and all(r["source"] and r["agency"] for r in rows.values())
    corpus_rows = [r for r in manifest.values() if r["kind"] != "heldout"]
    assert len({r["agency"] for r in rows.values()}) >= 75
    assert not {r["agency"] for r in rows.values()} & {r["agency"] for r in corpus_rows}
    # a corpus row may name no agency (whole reports, early passages): its page is then no held-out source
    corpus_sources = {r["source"] for r in corpus_rows}
    assert [d for d, r in rows.items() if r["source"] in corpus_sources] == []

    def key(text: str) -> str:
        return re.sub(r"\s+", "", text)[:40]

    corpus_text = "\n".join(re.sub(r"\s+", "", d.text) for d in docs.values())
    assert [d.doc_id for d in held if key(d.text) in corpus_text] == []


@pytest.mark.parametrize("round_, prefixes", [("8", ("extra-8k", "extra-8l", "extra-8m", "extra-8n", "extra-8p")),
                                              ("9", ("extra-9",))])
def test_a_second_annotation_of_the_heldout_passages_agrees(docs, held, round_, prefixes):
    """The held-out gold is only as good as its annotation: a blind second one of each round (round 8, held out
    before this one, is training data now) agrees at fact F1 ≥ 0.95."""
    first = {i: d for i, d in [*docs.items(), *((d.doc_id, d) for d in held)] if i.startswith(prefixes)}
    second, problems = validate_exports([ANNOTATIONS / "agreement" / f"extra-passages-{round_}-second.json"])
    assert problems == [] and {d.doc_id for d in second} == set(first)
    assert all(first[d.doc_id].text == d.text for d in second)
    matches = [m for d in second for m in match_spans(d.doc_id, first[d.doc_id].spans, d.spans, "fact")]
    assert prf_of(matches)["f1"] >= 0.95
