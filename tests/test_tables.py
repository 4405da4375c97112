"""Template tables read from every form a report reaches us in, scored cell by cell against the gold of
annotations/tables (real reports: HTML pages, web text whose cells run together, PDF text)."""
from pathlib import Path

import pytest
import yaml

from govfacts.reader import read_document
from govfacts.tables import _Squeezed, cell_metric, compositions, load_spec, read_tables

ROOT = Path(__file__).resolve().parents[1]
GOLD = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "annotations" / "tables").glob("*.yaml"))}
FORMS = [(d, "text", ROOT / "data" / "samples" / f"{d}.txt") for d in GOLD] + \
        [(d, "html", ROOT / "data" / "html" / f"{d}.html") for d in GOLD if (ROOT / "data" / "html" / f"{d}.html").exists()]
# runs the template's arithmetic cannot split one way (annotations/tables/README.md): reported, never guessed
AMBIGUOUS = {("gov-pingtan-2019", "text"): {"proactive.normative_documents", "proactive.licensing",
                                            "proactive.other_services", "proactive.penalties", "proactive.coercion",
                                            "proactive.fees", "proactive.procurement"},
             ("gov-pingtan-2021", "text"): {"proactive.normative_documents"},
             ("gov-pingtan-2022", "text"): {"proactive.normative_documents"},
             ("gov-pingtan-2024", "text"): {"proactive.normative_documents"}}


@pytest.mark.parametrize("doc_id,form,path", FORMS, ids=[f"{d}-{f}" for d, f, _ in FORMS])
def test_every_cell_is_read_exactly_or_reported_ambiguous(doc_id, form, path):
    doc = read_document(path)
    read = read_tables(doc.text)
    gold = {k: v for k, v in GOLD[doc_id]["cells"].items() if v is not None}
    got = read.values()
    assert read.template == str(GOLD[doc_id]["template"])
    wrong = {k: (got[k], v) for k, v in gold.items() if k in got and got[k] != pytest.approx(float(v))}
    assert not wrong  # never a wrong number
    assert set(got) <= set(gold)
    ambiguous = {a["row"] for a in read.ambiguous}
    assert ambiguous == AMBIGUOUS.get((doc_id, form), set())
    missing = {k.rsplit(".", 1)[0] for k in gold if k not in got}
    assert missing == ambiguous  # every cell not read belongs to a row reported ambiguous
    for c in read.cells:  # offsets into the document text, and the number as printed
        assert doc.text[c.start:c.end] == c.text
        assert float("".join(ch for ch in c.text if ch.isdigit() or ch == ".")) == c.value


def test_a_run_is_split_by_the_row_arithmetic():
    from govfacts.tables import _sum_rule

    runs = [p for p in compositions("801000081", 7) if _sum_rule(p)]
    assert runs == [["80", "1", "0", "0", "0", "0", "81"]]
    assert compositions("000", 3) == [["0", "0", "0"]]
    assert len(compositions("693665", 3)) > 1  # no arithmetic for the proactive rows: ambiguous
    assert compositions("24252.311082", 1, decimal_last=True) == [["24252.311082"]]
    assert all(not any(len(x) > 1 and x[0] == "0" for x in p) for p in compositions("100200", 4))


def test_traditional_script_and_spacing_do_not_change_the_cells():
    import opencc

    text = read_document(ROOT / "data" / "html" / "gov-pingtan-2024.html").text
    trad = opencc.OpenCC("s2t").convert(text).replace("申请数量", "申 请 数 量")
    assert read_tables(trad).values() == read_tables(text).values()


def test_pdf_table(tmp_path):
    """A 2021-template requests table drawn into a PDF (space-separated cells, a wrapped label whose
    numbers stand on the line before it), read back through the PDF text layer."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    lines = ["三、收到和处理政府信息公开申请情况", "自然人 商业企业 科研机构 社会公益组织 法律服务机构 其他 总计",
             "一、本年新收政府信息公开申请数量 12 1 0 0 0 2 15", "二、上年结转政府信息公开申请数量 1 0 0 0 0 0 1",
             "（一）予以公开 8 1 0 0 0 1 10", "3 0 0 0 0 0 3", "（二）部分公开（区分处理的，只计这一情形，",
             "不计其他情形）", "1.本机关不掌握相关政府信息 2 0 0 0 0 1 3", "（七）总计 13 1 0 0 0 2 16",
             "四、结转下年度继续办理 0 0 0 0 0 0 0", "四、政府信息公开行政复议、行政诉讼情况",
             "结果维持 结果纠正 其他结果 尚未审结 总计", "1 0 0 0 1 0 0 0 1 1 0 0 0 0 0"]
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pdf = tmp_path / "report.pdf"
    c = canvas.Canvas(str(pdf))
    c.setFont("STSong-Light", 9)
    for i, line in enumerate(lines):
        c.drawString(30, 800 - 16 * i, line)
    c.save()
    doc = read_document(pdf)
    got = read_tables(doc.text).values()
    assert got["requests.new.total"] == 15 and got["requests.new.other_org"] == 2
    assert got["requests.partly_granted.total"] == 3  # the number line before its wrapped label
    assert got["requests.unavailable.not_held.total"] == 3 and got["requests.total_handled.total"] == 16
    assert got["review.upheld"] == 1 and got["litigation_direct.total"] == 1 and got["litigation_after_review.total"] == 0


def test_table_regions_hold_every_row_and_prose_spans_inside_are_dropped(samples):
    from govfacts.infer.facts import facts_from_spans
    from govfacts.records import Document, Span

    text = (samples / "gov-pingtan-2021.txt").read_text(encoding="utf-8")
    read = read_tables(text)
    regions = read.regions()
    assert 1 <= len(regions) <= 3 and read.cells
    assert all(any(a <= c.row_start and c.row_end <= b for a, b in regions) for c in read.cells)
    inside = text.index("行政许可", regions[0][0])  # a row label of the proactive table
    outside = text.index("2021")  # the report's prose, before the tables
    assert not any(a <= outside < b for a, b in regions)
    doc = Document("gov-pingtan-2021", "gov-pingtan-2021.txt", text)
    spans = [Span(inside, inside + 4, "POSTS_PUBLISHED", text[inside:inside + 4]),
             Span(outside, outside + 4, "POSTS_PUBLISHED", text[outside:outside + 4])]
    facts = facts_from_spans(doc, spans, "test", tables=True)
    prose = [f for f in facts if f.source == "prose"]
    assert [f.start for f in prose] == [outside] and any(f.source == "table" for f in facts)


def test_the_squeezed_text_drops_exactly_the_whitespace_str_isspace_sees():
    """`_Squeezed` cuts whitespace runs with a regex; every kind of space (ideographic, no-break, line
    and paragraph separators, tabs) goes, every other char stays, and the map points at the kept chars."""
    raw = "一、 总体情况\u3000\u3000本机关\xa0共受理\t申请 12\u2028件，\u2029答复 3 件。\n\n\r表 "
    sq = _Squeezed(raw)
    view = sq.view.text
    assert sq.text == "".join(c for c in view if not c.isspace())
    assert [view[i] for i in sq.to_view] == list(sq.text)
    assert sq.to_view == [i for i, c in enumerate(view) if not c.isspace()]


def test_cell_metric_is_the_first_matching_prefix_of_the_spec_it_is_given():
    """Remembered per spec object: two specs with different metrics for one key each keep their own."""
    spec = load_spec()
    other = {"metrics": [{"prefix": "requests", "metric": "OTHER_METRIC", "unit": "次"}]}
    key = "requests.new.total"
    first = next(m for m in spec["metrics"] if key == m["prefix"] or key.startswith(m["prefix"] + ".")
                 or key.startswith(m["prefix"] + "_"))
    assert cell_metric(key, spec) == (first["metric"], first["unit"])
    assert cell_metric(key, other) == ("OTHER_METRIC", "次")
    assert cell_metric(key, spec) == (first["metric"], first["unit"])
    assert cell_metric("no.such.cell", other) == ("TABLE_OTHER", "")
