import codecs

import pytest

from govfacts.reader import ReadError, read_document
from tests.conftest import sample_text

PROSE = "2014年网站主动发布信息1100多条，回复在线留言6327余条，接听咨询电话22.4万余次。没有发生行政复议和诉讼情况。"


def _traditional(text: str) -> str:
    import opencc

    return opencc.OpenCC("s2t").convert(text)


@pytest.mark.parametrize("encoding,bom", [
    ("utf-8", b""), ("utf-8", codecs.BOM_UTF8), ("gb18030", b""), ("gbk", b""), ("gb2312", b""),
    ("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE), ("utf-16-le", b""),
])
def test_txt_encodings_are_detected(tmp_path, encoding, bom):
    text = sample_text("hrss-jilin-province-2014")[:1500]
    text = text.encode("gb2312", "ignore").decode("gb2312")  # keep to characters every codec can hold
    f = tmp_path / f"report-{encoding}.txt"
    f.write_bytes(bom + text.encode(encoding))
    doc = read_document(f)
    assert doc.text == text.replace("\r\n", "\n")
    assert doc.doc_id == f"report-{encoding}" and doc.format == "txt"


def test_big5_traditional_report(tmp_path):
    text = _traditional(PROSE)
    f = tmp_path / "trad.txt"
    f.write_bytes(text.encode("big5"))
    doc = read_document(f)
    assert doc.text == text and doc.encoding == "big5"


def test_crlf_becomes_lf(tmp_path):
    f = tmp_path / "crlf.txt"
    f.write_bytes("第一行\r\n第二行\r\n".encode("utf-8"))
    assert read_document(f).text == "第一行\n第二行\n"


def test_html_keeps_visible_paragraphs_and_drops_chrome(tmp_path):
    html = f"""<!DOCTYPE html><html><head><meta charset="gbk"><title>年报</title>
    <style>.x{{color:red}}</style><script>var a = "1234条";</script></head><body>
    <div class="nav-bar"><a href="/">首页</a> &gt; <a>政务公开</a></div>
    <div id="breadcrumb">当前位置：首页</div>
    <div class="content"><h1>某市人力资源和社会保障局2020年政府信息公开工作年度报告</h1>
    <p>{PROSE}</p><p>第二段：<span>共设置</span>70个人工座席。</p>
    <table><tr><td>指标</td><td>数量</td></tr></table></div>
    <div class="footer">版权所有 电话：0371-1234567</div></body></html>"""
    f = tmp_path / "page.html"
    f.write_bytes(html.encode("gbk"))
    doc = read_document(f)
    assert doc.format == "html" and doc.encoding == "gbk"
    lines = doc.text.split("\n")
    assert PROSE in lines
    assert "第二段：共设置70个人工座席。" in lines
    for junk in ("var a", "color:red", "首页", "版权所有", "当前位置"):
        assert junk not in doc.text


def test_pdf_text_layer(tmp_path):
    pdf = _make_pdf(tmp_path / "r.pdf", ["2014年网站主动发布信息1100多条，", "接听咨询电话22.4万余次。"])
    doc = read_document(pdf)
    assert doc.format == "pdf"
    assert doc.text == "2014年网站主动发布信息1100多条，\n接听咨询电话22.4万余次。"


def test_pdf_without_text_layer_is_an_error(tmp_path):
    pdf = _make_pdf(tmp_path / "scan.pdf", [])
    with pytest.raises(ReadError, match="no text layer"):
        read_document(pdf)


def test_broken_pdf_is_an_error(tmp_path):
    good = _make_pdf(tmp_path / "good.pdf", ["信息1100多条"])
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(good.read_bytes()[:300])
    with pytest.raises(ReadError, match="broken PDF") as e:
        read_document(bad)
    assert "broken.pdf" in str(e.value)


@pytest.mark.parametrize("name,data,reason", [
    ("empty.txt", b"", "empty file"),
    ("blank.txt", b"  \n\n ", "empty file"),
    ("image.txt", bytes(range(256)) * 20, "binary"),
    ("latin1.txt", "café naïve résumé déjà vu, à la carte".encode("latin-1"), "undecodable"),
])
def test_bad_text_files(tmp_path, name, data, reason):
    f = tmp_path / name
    f.write_bytes(data)
    with pytest.raises(ReadError, match=reason) as e:
        read_document(f)
    assert e.value.path == str(f)


def test_missing_file(tmp_path):
    with pytest.raises(ReadError, match="cannot open"):
        read_document(tmp_path / "nope.txt")


def _make_pdf(path, lines):
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    c.setFont("STSong-Light", 12)
    for i, line in enumerate(lines):
        c.drawString(50, 800 - 20 * i, line)
    if not lines:
        c.rect(10, 10, 100, 100, fill=1)
    c.showPage()
    c.save()
    return path
