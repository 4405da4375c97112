"""govfacts summarize: one number per report and metric, from the table total or the label's rule."""
from govfacts.present.summarize import report_number, summarize
from govfacts.records import Fact


def _f(metric, value, conf=0.9, source="prose", cell=None, doc="d", year=2021, agency="某局"):
    return Fact(doc_id=doc, path="", metric=metric, value=value, unit="件", qualifier="exact", text=str(value),
                start=0, end=1, confidence=conf, agency=agency, year=year, source=source, cell=cell)


def test_table_total_wins_else_the_most_confident_claim_else_a_sum():
    facts = [_f("APPLICATIONS_RECEIVED", 81, 0.95), _f("APPLICATIONS_RECEIVED", 10, 0.99),
             _f("APPLICATIONS_RECEIVED", 80, 0.99, "table", "requests.new.total")]
    assert report_number(facts, "APPLICATIONS_RECEIVED", "top") == 80
    assert report_number(facts[:2], "APPLICATIONS_RECEIVED", "top") == 10
    assert report_number(facts[:2], "APPLICATIONS_RECEIVED", "sum") == 91
    assert report_number(facts, "LAWSUITS", "top") is None


def test_summary_rows_per_agency_and_year():
    facts = [_f("POSTS_PUBLISHED", 100, doc="a", year=2020), _f("POSTS_PUBLISHED", 120, doc="b", year=2021),
             _f("STAFF", 3, 0.2, doc="b", year=2021)]
    s = summarize(facts)
    assert [(r["doc_id"], r["year"], r["POSTS_PUBLISHED"]) for r in s.wide] == [("a", 2020, 100), ("b", 2021, 120)]
    assert s.lowest[0].metric == "STAFF" and s.per_label["POSTS_PUBLISHED"] == 2
