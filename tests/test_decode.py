"""Constrained IOB2 decoding on hand-made probability arrays."""
import itertools

import numpy as np
import pytest

from govfacts.infer.decode import (allowed_transitions, anchor_spans, char_log_probs, continuation_matrix, parse_tag,
                                   span_score, spans_from_tags, viterbi_many, viterbi_split)
from govfacts.tags import view_spans


def viterbi(log_probs, tags):
    return viterbi_many([np.asarray(log_probs, dtype=np.float64)], tags, log_space=True)[0]


def decode(probs, tags, covered=None, how="min"):
    """Viterbi path and scored spans of one sequence, as the tagger decodes each view."""
    probs = np.asarray(probs, dtype=np.float64)
    cov = np.ones(len(probs), dtype=bool) if covered is None else np.asarray(covered, dtype=bool)
    ids = viterbi_many([(probs, cov)], tags)[0]
    return ids, spans_from_tags(ids, tags, probs, cov, how)


TAGS = ["O", "B-A", "I-A", "B-B", "I-B"]
O, BA, IA, BB, IB = range(5)


def rows(*dists):
    """Each arg: {tag id: prob}; the rest of the mass is spread evenly."""
    out = []
    for d in dists:
        rest = (1.0 - sum(d.values())) / (len(TAGS) - len(d))
        out.append([d.get(i, rest) for i in range(len(TAGS))])
    return np.array(out)


def valid(seq):
    prev = "O"
    for t in seq:
        kind, lab = parse_tag(TAGS[t])
        if kind == "I" and parse_tag(prev)[1] != lab:
            return False
        if kind == "I" and parse_tag(prev)[0] == "O":
            return False
        prev = TAGS[t]
    return True


def test_parse_tag():
    assert parse_tag("O") == ("O", "")
    assert parse_tag("B-FEES") == ("B", "FEES")
    assert parse_tag("I-RESPONSE_RATE") == ("I", "RESPONSE_RATE")
    with pytest.raises(ValueError):
        parse_tag("X-A")


def test_transitions_forbid_i_after_other():
    start, trans = allowed_transitions(TAGS)
    assert start[IA] < -1e8 and start[IB] < -1e8 and start[BA] == 0 and start[O] == 0
    assert trans[BA, IA] == 0 and trans[IA, IA] == 0
    for prev in (O, BB, IB):
        assert trans[prev, IA] < -1e8
    assert (trans[:, [O, BA, BB]] == 0).all()


def test_i_at_start_becomes_b():
    p = rows({IA: 0.6, BA: 0.3}, {IA: 0.9})
    ids, spans = decode(p, TAGS)
    assert [TAGS[i] for i in ids] == ["B-A", "I-A"]
    assert spans == [(0, 2, "A", pytest.approx(0.3))]


def test_label_switch_inside_span_is_repaired():
    # argmax would say B-A I-B I-B; the best valid path keeps one label throughout
    p = rows({BA: 0.9}, {IB: 0.5, IA: 0.4}, {IB: 0.5, IA: 0.4})
    ids = viterbi(np.log(p), TAGS)
    assert valid(ids)
    assert [TAGS[i] for i in ids] == ["B-A", "I-A", "I-A"]


def test_orphan_i_after_o():
    p = rows({O: 0.9}, {IA: 0.5, O: 0.45}, {O: 0.9})
    ids = viterbi(np.log(p), TAGS)
    assert ids == [O, O, O]


def test_viterbi_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(30):
        p = rng.dirichlet(np.ones(len(TAGS)) * 0.5, size=4)
        lp = np.log(p)
        best = max((s for s in itertools.product(range(len(TAGS)), repeat=4) if valid(s)),
                   key=lambda s: sum(lp[i, t] for i, t in enumerate(s)))
        assert tuple(viterbi(lp, TAGS)) == best


def test_split_at_certain_o_gives_the_whole_sequence_path():
    """Cutting sequences at chars that are O for certain (unread sentences) changes no tag."""
    rng = np.random.default_rng(1)
    seqs = []
    for n in (0, 1, 7, 40, 300):
        p = rng.dirichlet(np.ones(len(TAGS)) * 0.3, size=n)
        certain = rng.random(n) < 0.3
        certain[n // 2:n // 2 + 5] = True  # a run of unread chars
        p[certain] = 0.0
        p[certain, O] = 1.0
        cov = rng.random(n) > 0.1  # some chars no token covers
        cov[certain] = True
        seqs.append((p, cov))
    assert viterbi_split(seqs, TAGS) == viterbi_many(seqs, TAGS)
    assert any(t != O for path in viterbi_split(seqs, TAGS) for t in path)
    # decoded in groups of a few padded chars each (one piece per group at the smallest budget)
    assert viterbi_split(seqs, TAGS, budget=1) == viterbi_many(seqs, TAGS)
    assert viterbi_split(seqs, TAGS, budget=64) == viterbi_many(seqs, TAGS)


def test_empty_and_single():
    assert viterbi(np.zeros((0, len(TAGS))), TAGS) == []
    assert decode(np.zeros((0, len(TAGS))), TAGS) == ([], [])
    assert decode(rows({BB: 0.8}), TAGS)[1] == [(0, 1, "B", pytest.approx(0.8))]


def test_spans_from_tags_and_scores():
    ids = [O, BA, IA, IA, BA, BB, IB, O, IA]
    p = np.full((len(ids), len(TAGS)), 0.1)
    for i, t in enumerate(ids):
        p[i, t] = 0.5 + 0.05 * i
    got = spans_from_tags(ids, TAGS, p)
    assert [(s, e, lab) for s, e, lab, _ in got] == [(1, 4, "A"), (4, 5, "A"), (5, 7, "B"), (8, 9, "A")]
    assert got[0][3] == pytest.approx(0.55)  # min of 0.55, 0.60, 0.65
    mean = spans_from_tags(ids, TAGS, p, how="mean")
    assert mean[0][3] == pytest.approx(0.60)
    assert spans_from_tags(ids, TAGS)[0][3] == 1.0


def test_spans_of_tag_ids_equal_the_spans_of_their_tags():
    """Reading only the non-O runs of a decoded sequence gives every span that reading all its tags does,
    stray I-X (which open a span, as conlleval does) and label switches included."""
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 7, 40):
        for _ in range(200):
            ids = rng.choice(len(TAGS), size=n, p=[0.5, 0.15, 0.15, 0.1, 0.1]).tolist()
            want = view_spans([TAGS[i] for i in ids])
            assert [(s, e, lab) for s, e, lab, _ in spans_from_tags(ids, TAGS)] == want


def test_span_score_bounds():
    assert span_score([0.2, 0.9]) == pytest.approx(0.2)
    assert span_score([0.2, 0.9], "mean") == pytest.approx(0.55)
    assert span_score([]) == 0.0
    assert 0.0 <= span_score([1.0000001]) <= 1.0
    with pytest.raises(ValueError):
        span_score([0.5], "max")


def test_continuation_matrix():
    m = continuation_matrix(TAGS)
    p = np.array([0.1, 0.5, 0.1, 0.2, 0.1])
    q = p @ m
    assert q == pytest.approx([0.1, 0.0, 0.6, 0.0, 0.3])


def test_uncovered_chars_are_transparent():
    # "1 136条": the space is dropped by the tokenizer; the span must run through it
    p = rows({BA: 0.9}, {}, {IA: 0.9}, {IA: 0.9}, {O: 0.9})
    covered = np.array([True, False, True, True, True])
    ids, spans = decode(p, TAGS, covered)
    assert [TAGS[i] for i in ids[:4]] == ["B-A", "I-A", "I-A", "I-A"]
    assert spans == [(0, 4, "A", pytest.approx(0.9))]  # uncovered char left out of the score
    # a dropped char after a span followed by O is not part of the span
    p = rows({BA: 0.9}, {IA: 0.9}, {}, {O: 0.9})
    ids, spans = decode(p, TAGS, np.array([True, True, False, True]))
    assert spans == [(0, 2, "A", pytest.approx(0.9))]
    # an uncovered char can never begin a span
    lp = char_log_probs(rows({BA: 0.9}), np.array([False]), TAGS)
    assert lp[0, BA] < -1e8 and lp[0, O] == 0


def test_trailing_uncovered_trimmed():
    ids = [BA, IA, IA]
    got = spans_from_tags(ids, TAGS, covered=np.array([True, True, False]))
    assert got == [(0, 2, "A", 1.0)]


def test_anchor_joins_a_split_number_into_one_span():
    # "近22.4万次": the tagger breaks the expression after "2." but every char leans to label A
    probs = rows({O: .1}, {BA: .6}, {IA: .6}, {IA: .5}, {BA: .5}, {IA: .6}, {IA: .4, IB: .3}, {IA: .6}, {O: .9})
    found = spans_from_tags(viterbi(char_log_probs(probs, np.ones(9, bool), TAGS), TAGS), TAGS, probs)
    assert [(s, e) for s, e, *_ in found] != [(0, 8)]  # Viterbi alone does not give the whole expression
    out = anchor_spans(found, probs, np.ones(9, bool), TAGS, [(0, 8)])
    assert [(s, e, lab) for s, e, lab, _ in out] == [(0, 8, "A")]
    # score = the weakest char's label mass (char 6: B-A + I-A = 0 + .4)
    assert out[0][3] == pytest.approx(min(r[BA] + r[IA] for r in probs[:8]))


def test_anchor_drops_a_candidate_the_model_calls_outside():
    probs = rows({O: .9}, {O: .8}, {O: .7}, {BB: .5}, {IB: .6})
    found = [(3, 5, "B", 0.5)]
    out = anchor_spans(found, probs, np.ones(5, bool), TAGS, [(0, 3)])
    assert [(s, e, lab) for s, e, lab, _ in out] == [(3, 5, "B")]  # no candidate there: kept as decoded


def test_anchor_replaces_overlapping_spans_and_picks_label_by_mass():
    probs = rows({BB: .7}, {IB: .4, IA: .3}, {IA: .5}, {IA: .6}, {O: .9})
    found = [(0, 2, "B", .4), (2, 4, "A", .5)]
    out = anchor_spans(found, probs, np.ones(5, bool), TAGS, [(0, 4)])
    assert [(s, e, lab) for s, e, lab, _ in out] == [(0, 4, "A")]


def test_a_candidate_the_rules_labelled_needs_only_the_hint_threshold():
    probs = rows({O: .7, BA: .3}, {O: .7, IA: .3}, {O: .9}, {O: .7, BA: .3}, {O: .7, IA: .3})
    cands = [(0, 2), (3, 5)]
    assert anchor_spans([], probs, np.ones(5, bool), TAGS, cands) == []  # entity mass .3 < .5
    out = anchor_spans([], probs, np.ones(5, bool), TAGS, cands, hinted=[(3, 5)], hint_threshold=0.25)
    assert [(s, e, lab) for s, e, lab, _ in out] == [(3, 5, "A")]  # only the hinted one, at .3 >= .25
    assert anchor_spans([], probs, np.ones(5, bool), TAGS, cands, hinted=[(3, 5)]) == []  # no threshold: as any


def test_a_hedged_candidate_is_decided_by_its_number_and_unit():
    from govfacts.infer.decode import quantity_core

    text = "约32条"
    assert [text[i] for i in quantity_core(text, 0, 4)] == list("32条")
    assert "".join("22.4万余次左右"[i] for i in quantity_core("22.4万余次左右", 0, 9)) == "22.4万次"
    assert quantity_core("约", 0, 1) == [0] and quantity_core("", 0, 3) == [0, 1, 2]
    # the tagger calls the approximator O (it rarely saw one inside a span) and the claim A
    probs = rows({O: .95}, {BA: .8}, {IA: .8}, {IA: .7})
    whole = anchor_spans([], probs, np.ones(4, bool), TAGS, [(0, 4)])
    assert whole[0][3] < .05  # over every char the score is the approximator's (a min_score drops it) ...
    out = anchor_spans([], probs, np.ones(4, bool), TAGS, [(0, 4)], text=text)
    assert [(s, e, lab) for s, e, lab, _ in out] == [(0, 4, "A")]  # ... over its core, the claim's; the span keeps 约
    assert out[0][3] == pytest.approx(min(r[BA] + r[IA] for r in probs[1:]))


def test_anchor_uses_only_covered_chars():
    probs = rows({BA: .8}, {O: .99}, {IA: .8})
    out = anchor_spans([], probs, np.array([True, False, True]), TAGS, [(0, 3)])
    assert [(s, e, lab) for s, e, lab, _ in out] == [(0, 3, "A")]


def test_zero_claim_fragments_snap_to_whole_words():
    from govfacts.infer.words import snap_free_spans, snap_to_words

    t = "未收到有关政府信息公开的申请，收到1份行政复议申请。没有发生行政复议和诉讼。"
    frag = t.index("政府信息公开的申")
    assert t.__getitem__(slice(*snap_to_words(t, frag, frag + 8))) == "政府信息公开的申请"
    i = t.rindex("行政复议")
    found = [(i, i + 1, "RECONSIDERATIONS", 0.3), (i + 1, i + 4, "RECONSIDERATIONS", 0.6),
             (t.index("诉讼"), t.index("诉讼") + 1, "LAWSUITS", 0.5), (t.index("1份"), t.index("1份") + 1, "X", 0.9)]
    out = snap_free_spans(t, found, [(t.index("1份"), t.index("1份") + 2)])
    assert [(t[s:e], lab, sc) for s, e, lab, sc in out] == [
        ("1", "X", 0.9), ("行政复议", "RECONSIDERATIONS", 0.6), ("诉讼", "LAWSUITS", 0.5)]
    # a span never grows across a sentence end
    s, e = snap_to_words("复议。诉讼", 3, 4)
    assert (s, e) == (3, 5)


def test_free_spans_need_a_zero_claim_site():
    from govfacts.infer.decode import is_zero_claim_site

    t = "2019年新增信息。没有发生行政复议。行政复议案件另行办理。"
    year, zero, plain = (0, 4), (t.index("行政复议"), t.index("行政复议") + 4), (t.rindex("行政复议"), t.rindex("行政复议") + 4)
    assert not is_zero_claim_site(t, *year)  # digits the quantity grammar rejects: a year
    assert is_zero_claim_site(t, *zero)  # 没有发生[行政复议]
    assert not is_zero_claim_site(t, *plain)  # no negation in its sentence
    probs = rows(*([{O: .9}] * len(t)))
    found = [(*year, "A", .6), (*zero, "B", .7), (*plain, "B", .7)]
    out = anchor_spans(found, probs, np.ones(len(t), bool), TAGS, [], text=t)
    assert [(s, e) for s, e, *_ in out] == [zero]
    assert len(anchor_spans(found, probs, np.ones(len(t), bool), TAGS, [])) == 3  # without text: all kept


def test_jieba_over_its_table_on_disk_gives_jiebas_own_words(samples):
    """Snapping reads jieba's word table from a SQLite copy instead of loading it: the same words as jieba
    with its dictionary in memory, on every sentence of real reports; the copy is made once."""
    import jieba

    import govfacts.infer.words as words

    tok = words._jieba()
    assert isinstance(tok.FREQ, words.DiskFreq) and tok is words._jieba()
    path = words.table_file()
    made = path.stat().st_mtime_ns
    jieba.initialize()
    assert tok.total == jieba.dt.total
    sentences = [s for f in sorted(samples.glob("*.txt"))[:4] for s in f.read_text(encoding="utf-8").split("。")]
    assert len(sentences) > 100
    for s in sentences:
        assert [w[1:] for w in tok.tokenize(s)] == [w[1:] for w in jieba.dt.tokenize(s)], s
    t = "没有发生行政复议和诉讼。"
    assert t.__getitem__(slice(*words.snap_to_words(t, 5, 7))) == "行政复议"
    assert "行政复议" in tok.FREQ and tok.FREQ["行政"] > 0 and tok.FREQ.get("复议和诉讼") is None
    with pytest.raises(KeyError):
        tok.FREQ["复议和诉讼"]
    assert words.table_file().stat().st_mtime_ns == made


def test_a_label_the_unit_refuses_counts_as_outside():
    probs = rows({BA: .6, BB: .3}, {IA: .6, IB: .3}, {O: .9}, {BA: .7}, {IA: .7})
    cands = [(0, 2), (3, 5)]
    assert [lab for _, _, lab, _ in anchor_spans([], probs, np.ones(5, bool), TAGS, cands)] == ["A", "A"]
    # A refused on the first candidate: B has the mass left (.3 < .5), so it is no span ...
    out = anchor_spans([], probs, np.ones(5, bool), TAGS, cands, refused=[frozenset({"A"}), frozenset()])
    assert [(s, e, lab) for s, e, lab, _ in out] == [(3, 5, "A")]
    # ... unless a lower threshold admits B's mass; then it is B, scored by B's mass
    out = anchor_spans([], probs, np.ones(5, bool), TAGS, cands, threshold=0.25,
                       refused=[frozenset({"A"}), frozenset()])
    assert [(s, e, lab) for s, e, lab, _ in out] == [(0, 2, "B"), (3, 5, "A")]
    assert out[0][3] == pytest.approx(min(r[BB] + r[IB] for r in probs[:2]))


def test_a_span_on_a_rules_phrase_is_not_snapped_to_words(monkeypatch):
    import govfacts.infer.words as words

    t = "全年未收到政府信息公开申请，也无不予公开政府信息情况。"
    phrase = (t.index("政府信息公开申请"), t.index("政府信息公开申请") + 8)
    fragment = (phrase[0] + 2, phrase[1] - 1, "APPLICATIONS_RECEIVED", .6)  # `信息公开申`
    free = (t.index("予公开"), t.index("予公开") + 3, "APPLICATIONS_ANSWERED", .7)
    snapped = words.snap_free_spans(t, [fragment, free], [], [phrase])
    assert snapped[0] == fragment  # left for snap_to_phrases, which gives it the phrase's bounds
    assert t[snapped[1][0]:snapped[1][1]] in ("不予公开", "不予公开政府信息")  # widened to jieba words

    def no_jieba(*_):
        raise AssertionError("jieba needed for a span on a phrase")

    monkeypatch.setattr(words, "snap_to_words", no_jieba)
    assert words.snap_free_spans(t, [fragment], [], [phrase]) == [fragment]


def test_a_short_read_whose_zero_claims_are_rules_phrases_never_loads_jieba(samples):
    """Start-up: jieba is imported only when a zero-claim span lies off the rules' phrases; one short report
    does not need it (fresh process)."""
    import subprocess
    import sys

    code = ("import sys\nfrom govfacts.infer.api import Extractor\n"
            "ex = Extractor.from_pretrained(runtime='torch', quantize=False)\n"  # no ONNX export in the test cache
            "facts = ex.extract(open(sys.argv[1], encoding='utf-8').read())\n"
            "print(len(facts), 'jieba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(samples / "hrss-zhengzhou-2017.txt")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) > 0 and out[1] == "False"


def test_a_fragment_no_negation_precedes_is_not_snapped(monkeypatch):
    """Decoding drops a free span with no negation cue before it in its sentence, whatever its bounds, so it
    is not widened to words (which would load jieba for nothing)."""
    import govfacts.infer.words as words
    from govfacts.infer.decode import is_zero_claim_site

    t = "行政诉讼案7起，维持具体行政行为或者驳回原告诉讼请求5起。没有发生行政复议。"
    frag = (t.index("行为"), t.index("行为") + 1, "LAWSUITS", .4)  # `行` of `行政行为`
    zero = (t.index("政复议"), t.index("政复议") + 3, "RECONSIDERATIONS", .7)  # `政复议` after 没有发生
    assert not words.may_be_zero_claim(t, *frag[:2]) and words.may_be_zero_claim(t, *zero[:2])
    assert not any(is_zero_claim_site(t, s, e) for s in range(0, frag[0] + 1) for e in range(frag[1], t.index("。")))
    calls = []
    monkeypatch.setattr(words, "snap_to_words", lambda text, s, e: calls.append((s, e)) or (s - 1, e))
    assert words.snap_free_spans(t, [frag, zero], [], []) == [frag, (zero[0] - 1, zero[1], *zero[2:])]
    assert calls == [zero[:2]]
