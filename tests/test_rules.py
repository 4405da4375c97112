"""The rule baseline on real sentences of the bundled reports."""
import pytest

from govfacts.infer.rules import RuleExtractor
from tests.conftest import sample_text


@pytest.fixture(scope="module")
def rules():
    return RuleExtractor()


def _loose(text):
    return text.translate(str.maketrans("，：；（）", ",:;()", "\n \xa0"))


def _found(rules, text):
    return {(s.label, s.text) for s in rules.spans(text)}


REAL = [  # (doc, sentence from it, expected (label, span text))
    ("hrss-jilin-province-2014", "2014年网站主动发布信息1100多条，回复在线留言6327余条，年度总访问量达1.35亿次。",
     {("POSTS_PUBLISHED", "1100多条"), ("ONLINE_INQUIRIES", "6327余条"), ("WEBSITE_VISITS", "1.35亿次")}),
    ("hrss-jilin-province-2014", "目前，全省共设置70个人工座席，2014年接听咨询电话22.4万余次。",
     {("HOTLINE_SEATS", "70个"), ("CALLS_ANSWERED", "22.4万余次")}),
    ("hrss-jilin-province-2014", "2014年前三季度共召开新闻发布会3次，与国家及省内多家主流媒体合作开展宣传活动47次。",
     {("PRESS_CONFERENCES", "3次"), ("PUBLICITY_EVENTS", "47次")}),
    ("hrss-jilin-province-2014", "2014年度没有发生行政复议和诉讼情况。",
     {("RECONSIDERATIONS", "行政复议"), ("LAWSUITS", "诉讼")}),
    ("hr-dongguan-2015", "办理人大建议、政协提案39件，答复率100%。",
     {("PROPOSALS_HANDLED", "39件"), ("RESPONSE_RATE", "100%")}),
    ("hr-dongguan-2015", "2015年，主动发布新闻通稿27篇，书面采访报道50篇，推出8篇专题特刊报道",
     {("MEDIA_COVERAGE", "27篇"), ("MEDIA_COVERAGE", "50篇"), ("MEDIA_COVERAGE", "8篇")}),
    ("hr-dongguan-2015", "2015年我局共受理政府信息公开申请14宗，其中网上申请10宗，信函申请4宗，回复率100%。",
     {("APPLICATIONS_RECEIVED", "14宗"), ("APPLICATIONS_RECEIVED", "10宗"), ("APPLICATIONS_RECEIVED", "4宗"),
      ("RESPONSE_RATE", "100%")}),
    ("hr-dongguan-2015", "2015年在依申请公开政府信息中，没有收取申请人任何费用。", {("FEES", "费用")}),
    ("hr-dongguan-2015", "编制派发《务工须知》、《用工须知》等40多万份资料。", {("MATERIALS_DISTRIBUTED", "40多万份")}),
    ("hrss-zhengzhou-2017", "2017年发布政务动态信息2400余条，更新信息公开目录信息270余条。",
     {("POSTS_PUBLISHED", "2400余条"), ("POSTS_PUBLISHED", "270余条")}),
    ("hrss-zhengzhou-2017", "针对我局有关政府信息公开事务的行政诉讼案7起，维持具体行政行为或者驳回原告诉讼请求5起，未结案件2起。",
     {("LAWSUITS", "7起"), ("LAWSUITS", "5起"), ("LAWSUITS", "2起")}),
    ("gov-huaian-hongze-2023", "2023 年全区受理政府信息公开申请 21 件，\n均在法定期限答复。",
     {("APPLICATIONS_RECEIVED", "21 件")}),
]


@pytest.mark.parametrize("doc,sentence,expected", REAL)
def test_real_sentences(rules, doc, sentence, expected):
    assert _loose(sentence) in _loose(sample_text(doc))  # a real sentence of that report
    assert expected <= _found(rules, sentence)


def test_not_tagged_numbers(rules):
    text = ("根据《关于2014年全省政府信息公开工作情况进行督查的通知》(吉政办明电〔2014〕103号)，政务动态类信息691条，"
            "占24.43%，较上年度减少1件，同比增长15%，电话：0769—22836661，邮编：523888，一是公开了厅机构设置。")
    found = rules.spans(text)
    assert {s.text for s in found} == {"691条"}


def test_spans_map_to_raw_offsets_in_traditional_pdf_text(rules):
    raw = "網站主動發佈資訊 1100\n多條，沒有收到政府信息公開申請。"
    spans = rules.spans(raw)
    assert [(s.label, raw[s.start:s.end]) for s in spans] == [
        ("POSTS_PUBLISHED", "1100\n多條"), ("APPLICATIONS_RECEIVED", "政府信息公開申請")]
    assert all(s.text == raw[s.start:s.end] for s in spans)


def test_spans_are_sorted_and_disjoint_on_every_report(rules, samples):
    for path in samples.glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        spans = rules.spans(text)
        assert spans, path
        assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))
        assert all(text[s.start:s.end] == s.text and 0 < s.score <= 1 for s in spans)


def test_chinese_numeral_claims_are_whole_and_lone_yi_counts(rules):
    """The same claims as Arabic digits give the same facts written in Chinese numerals."""
    text = ("2012年政府信息公开专栏访问量达二万四千七百四十五人次。2025年，共收到政府信息公开申请一件，均依法按时办结。"
            "全区共有行政诉讼案件一件、行政复议案件两件。为政务公开工作构筑了一个良好的工作格局。")
    got = {(s.label, s.text) for s in rules.spans(text)}
    assert got == {("WEBSITE_VISITS", "二万四千七百四十五人次"), ("APPLICATIONS_RECEIVED", "一件"),
                   ("LAWSUITS", "一件"), ("RECONSIDERATIONS", "两件")}
