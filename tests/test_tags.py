"""Gold spans ⇄ IOB2 tags on the normalised view (govfacts/tags.py), on every real annotated document."""
from govfacts.records import Span
from govfacts.tags import spans_to_view_tags, tags_to_spans, view_spans
from govfacts.textview import build_view
from govfacts.train.dataset import doc_view_tags


def test_round_trip_every_real_doc(docs):
    """doc → view tags → spans gives back the gold spans (none lies in an ignore region)."""
    n = 0
    for doc in docs.values():
        view, tags = doc_view_tags(doc)
        got = [(s.start, s.end, s.label, s.text) for s in tags_to_spans(tags, view)]
        want = [(s.start, s.end, s.label, s.text) for s in doc.spans
                if not any(a < s.end and s.start < b for a, b in doc.ignore)]
        assert got == want, doc.doc_id
        n += len(want)
    assert n > 300


def test_view_drops_and_adjacent_spans():
    raw = "收到申请 1 136 件（其中网上\n申请10件）。"  # view drops CJK-adjacent spaces and the soft line break
    spans = [Span(5, 12, "APPLICATIONS_RECEIVED", "1 136 件"), Span(12, 13, "NONE_X", "（")]
    view = build_view(raw)
    tags = spans_to_view_tags(view, spans)
    back = tags_to_spans(tags, view)
    assert [(s.start, s.end, s.label, s.text) for s in back] == [(s.start, s.end, s.label, s.text) for s in spans]
    assert view_spans(["B-A", "I-A", "B-A", "I-B", None, "O"]) == [(0, 2, "A"), (2, 3, "A"), (3, 4, "B")]
