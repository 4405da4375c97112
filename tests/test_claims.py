"""Claim segments: the sentences a fact can be in (numeric or zero claims), checked on the real corpus."""
from govfacts.claims import claim_segments, may_hold_claim
from govfacts.train.dataset import doc_view_tags
from tests.conftest import corpus_docs

from .conftest import ROOT


def test_sentences_with_numbers_or_negations_may_hold_claims():
    assert may_hold_claim("网站主动发布信息1100多条。")
    assert may_hold_claim("共设置七十个座席；")
    assert may_hold_claim("没有发生行政复议和诉讼。")
    assert may_hold_claim("暂不收费。") and may_hold_claim("本年度無收費。")
    assert may_hold_claim("发布信息１２条。")  # full-width digits
    assert not may_hold_claim("进一步加强政府信息公开工作。")
    assert not may_hold_claim("深入推进政务公开标准化规范化建设。")


def test_segments_merge_neighbouring_sentences_and_skip_plain_ones():
    text = "加强组织领导。发布信息12条。没有发生行政复议。完善制度建设。健全机制。接听电话3万次。"
    got = [text[a:b] for a, b in claim_segments(text)]
    assert got == ["发布信息12条。没有发生行政复议。", "接听电话3万次。"]
    assert claim_segments("") == [] and claim_segments("加强学习") == []
    assert claim_segments("收到申请5件") == [(0, 6)]  # no final stop


def test_every_gold_span_lies_in_a_claim_segment():
    docs = corpus_docs()
    for doc in docs.values():
        view, _ = doc_view_tags(doc)
        inside = [False] * len(view.text)
        for a, b in claim_segments(view.text):
            inside[a:b] = [True] * (b - a)
        for span in doc.spans:
            vs, ve = view.from_raw(span.start, span.end)
            assert all(inside[vs:ve]), (doc.doc_id, span)


def test_focus_segments_hold_every_candidate_and_cue_inside_claim_segments():
    from govfacts.claims import NEGATION, focus_segments
    from govfacts.quantity import view_quantities

    text = ("加强组织领导，深入推进政务公开标准化规范化建设。全年网站主动发布信息1100多条，其中政策解读12篇。"
            "完善制度建设。本年度没有发生行政复议和行政诉讼。")
    got = [text[a:b] for a, b in focus_segments(text, [(34, 40), (47, 50)], 6, 2, 6)]
    # the two candidates' ranges touch and merge, clipped to their sentence; the cue 没有 reads 6 after it
    assert got == ["主动发布信息1100多条，其中政策解读12篇。", "本年度没有发生行政复议"]
    assert [text[a:b] for a, b in focus_segments(text, [(34, 40), (47, 50)], 2, 2, 6)][:2] == [
        "信息1100多条，其", "解读12篇。"]  # 2 before and 2 after each: apart
    for doc in list(corpus_docs().values())[:40]:
        view, _ = doc_view_tags(doc)
        cands = view_quantities(view)
        segs, focus = claim_segments(view.text), focus_segments(view.text, cands, 64, 24, 40)
        assert all(a < b for a, b in focus) and all(b <= c for (_, b), (c, _) in zip(focus, focus[1:]))
        assert all(any(a <= s and e <= b for a, b in segs) for s, e in focus)
        for s, e in cands + [m.span() for m in NEGATION.finditer(view.text)]:
            if any(a <= s < b for a, b in segs):
                assert any(a <= s and e <= b for a, b in focus) or any(a < e and s < b for a, b in focus)
