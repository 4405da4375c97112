from govfacts.infer.ensemble import EnsembleExtractor
from govfacts.records import Span


def test_tagger_wins_overlaps_and_rules_fill_gaps():
    model = [Span(0, 4, "POSTS_PUBLISHED", "1100", 0.9), Span(10, 13, "CALLS_ANSWERED", "22次", 0.7)]
    rules = [Span(1, 5, "ONLINE_INQUIRIES", "100多", 0.8), Span(20, 23, "LAWSUITS", "7起", 0.8)]
    merged = EnsembleExtractor.merge(model, rules, secondary_weight=0.5)
    assert [(s.start, s.label, s.score) for s in merged] == [
        (0, "POSTS_PUBLISHED", 0.9), (10, "CALLS_ANSWERED", 0.7), (20, "LAWSUITS", 0.4)]
