"""govfacts summarize: one number per report and metric, from the table total or the label's rule.

The summary is computed column by column (govfacts/present/corpus.py); `per_fact_wide` below applies the
same rules fact by fact, as written in the module docstring, and the two must agree on real facts."""
import dataclasses
import json
from collections import Counter, defaultdict

import pytest

from govfacts.checks import check_facts
from govfacts.factsio import fact_table, read_fact_table, write_facts
from govfacts.labels import Label, LabelSet, default_labels
from govfacts.present import corpus
from govfacts.present.summarize import LOW_CONFIDENCE, summarize
from govfacts.records import Fact
from govfacts.tables import TOTAL_CELLS


def _f(metric, value, conf=0.9, source="prose", cell=None, doc="d", year=2021, agency="某局"):
    return Fact(doc_id=doc, path="", metric=metric, value=value, unit="件", qualifier="exact", text=str(value),
                start=0, end=1, confidence=conf, agency=agency, year=year, source=source, cell=cell)


def per_fact_number(facts, metric, aggregate):
    cells = {f.cell: f.value for f in facts if f.source == "table" and f.value is not None}
    keys = TOTAL_CELLS.get(metric)
    if keys and all(k in cells for k in keys):
        return float(sum(cells[k] for k in keys))
    prose = [f for f in facts if f.source == "prose" and f.metric == metric and f.value is not None]
    if not prose:
        return None
    if aggregate == "sum":
        return float(sum(f.value for f in prose))
    return float(max(prose, key=lambda f: (f.confidence, f.value)).value)


def per_fact_wide(facts, labels):
    by_doc = defaultdict(list)
    for f in facts:
        by_doc[f.doc_id].append(f)
    rows = []
    for doc_id, fs in sorted(by_doc.items()):
        row = {"agency": next((f.agency for f in fs if f.agency), None) or f"({doc_id})",
               "year": next((f.year for f in fs if f.year), None), "doc_id": doc_id}
        row.update({lab.name: per_fact_number(fs, lab.name, lab.aggregate) for lab in labels.labels})
        rows.append(row)
    return rows


def test_table_total_wins_else_the_most_confident_claim_else_none():
    facts = [_f("APPLICATIONS_RECEIVED", 81, 0.95), _f("APPLICATIONS_RECEIVED", 10, 0.99),
             _f("APPLICATIONS_RECEIVED", 80, 0.99, "table", "requests.new.total")]
    assert summarize(facts).wide[0]["APPLICATIONS_RECEIVED"] == 80
    assert summarize(facts[:2]).wide[0]["APPLICATIONS_RECEIVED"] == 10
    assert summarize(facts).wide[0]["LAWSUITS"] is None


def test_ties_go_to_the_larger_value_then_the_first_and_sums_add_in_file_order():
    facts = [_f("STAFF", 3, 0.9), _f("STAFF", 5, 0.9), _f("STAFF", 5, 0.9, doc="e"), _f("STAFF", 2, 0.8, doc="e"),
             _f("LAWSUITS", 0.1), _f("LAWSUITS", 0.2), _f("LAWSUITS", 0.3)]
    labels = LabelSet("t", (Label("STAFF", "", ()), Label("LAWSUITS", "", (), "sum")))
    t = fact_table(facts)
    got = corpus.prose_numbers(t, corpus.reports(t), labels)
    assert got["STAFF"] == [5.0, 5.0] and got["LAWSUITS"] == [0.1 + 0.2 + 0.3, None]
    assert got["LAWSUITS"][0] == per_fact_number(facts, "LAWSUITS", "sum")


def test_summary_rows_per_agency_and_year():
    facts = [_f("POSTS_PUBLISHED", 100, doc="a", year=2020), _f("POSTS_PUBLISHED", 120, doc="b", year=2021),
             _f("STAFF", 3, 0.2, doc="b", year=2021)]
    s = summarize(facts)
    assert [(r["doc_id"], r["year"], r["POSTS_PUBLISHED"]) for r in s.wide] == [("a", 2020, 100), ("b", 2021, 120)]
    assert s.lowest[0].metric == "STAFF" and s.per_label["POSTS_PUBLISHED"] == 2


@pytest.fixture(scope="module")
def sample_facts(samples, tmp_path_factory):
    """The samples' facts (rules extractor, template tables included), each report twice more under other
    doc_ids and years, in a shuffled order of reports, with a repeated table cell and an equal-confidence tie."""
    from govfacts.infer.api import extract_documents
    from govfacts.infer.loader import load
    from govfacts.reader import read_document

    docs = [read_document(p) for p in sorted(samples.glob("*.txt"))]
    facts = [f for fs in extract_documents(load("rules"), docs) for f in fs]
    out = list(facts)
    for k in (1, 2):
        out += [dataclasses.replace(f, doc_id=f"{f.doc_id}-{k}", year=f.year + k if f.year else None) for f in facts]
    out = out[len(out) // 2:] + out[:len(out) // 2]  # reports do not appear in doc_id order
    table_fact = next(f for f in out if f.source == "table" and f.cell == "requests.new.total")
    prose_fact = next(f for f in out if f.source == "prose" and f.value)
    out += [dataclasses.replace(table_fact, value=table_fact.value + 1),  # the later cell counts
            dataclasses.replace(prose_fact, value=prose_fact.value * 2)]  # same confidence, larger value wins
    path = tmp_path_factory.mktemp("facts") / "facts.jsonl"
    write_facts(path, out)
    return path


def test_column_summary_equals_the_fact_by_fact_rules_on_real_facts(sample_facts):
    facts = [Fact.from_dict(json.loads(line)) for line in sample_facts.read_text(encoding="utf-8").splitlines()]
    assert any(f.source == "table" for f in facts) and any(f.source == "prose" for f in facts)
    s = summarize(read_fact_table(sample_facts))
    assert s.wide == per_fact_wide(facts, default_labels())
    assert sum(1 for r in s.wide for m in s.metrics if r[m] is not None) > 50
    assert [f.to_dict() for f in s.findings] == [f.to_dict() for f in check_facts(facts)]
    assert list(s.per_label.most_common()) == list(Counter(f.metric for f in facts).most_common())
    prose = [f for f in facts if f.source == "prose"]
    assert s.per_report == dict(sorted(Counter(f.doc_id for f in facts).items()))
    assert s.confidences == [f.confidence for f in prose]
    assert s.lowest == sorted(prose, key=lambda f: f.confidence)[:LOW_CONFIDENCE]
