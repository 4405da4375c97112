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


CLAUSE_CUES = [  # phrasings of the corpus's passages the lexicon reads by the quantity's own clause
    # the channel the clause names decides, not one named in an earlier clause
    ("全年通过局官方网站发布各类信息2082条,通过微信公众号推送信息270条,内容涵盖政策文件。",
     {("POSTS_PUBLISHED", "2082条"), ("SOCIAL_MEDIA_POSTS", "270条")}),
    ("“海淀窗口”微信公众号主动公开信息499条,在海淀区公共资源交易信息网主动公开信息1048条。",
     {("SOCIAL_MEDIA_POSTS", "499条"), ("POSTS_PUBLISHED", "1048条")}),
    # a list item with its own cue keeps it instead of taking the item before's label
    ("门户网站访问量197560次,被中央、省级媒体报道或转发61次。",
     {("WEBSITE_VISITS", "197560次"), ("MEDIA_COVERAGE", "61次")}),
    ("本年度发布原创文章超过230条,累计阅读量263万次。", {("POSTS_PUBLISHED", "超过230条"), ("WEBSITE_VISITS", "263万次")}),
    ("2019年共召开新闻发布(通气)会6场,刊(播)发新闻近1100篇。",
     {("PRESS_CONFERENCES", "6场"), ("MEDIA_COVERAGE", "近1100篇")}),
    # trainees or sessions of a training the clause names after the number
    ("依托执法应急讲堂，组织300余人次开展执法能力、应急技能等各类培训。", {("TRAININGS", "300余人次")}),
    # in-person consultations at an event are visitors received, not online inquiries
    ("当天，各个窗口累计接受群众咨询3000多人次,发放宣传资料1000多份。",
     {("VISITORS_RECEIVED", "3000多人次"), ("MATERIALS_DISTRIBUTED", "1000多份")}),
    ("12333接听咨询热线共受理来电44790起。", {("CALLS_ANSWERED", "44790起")}),
    ("网站受理36件;微信受理210件。", {("ONLINE_INQUIRIES", "36件"), ("ONLINE_INQUIRIES", "210件")}),
    ("2022年我局按期办结政府信息公开申请89件。", {("APPLICATIONS_ANSWERED", "89件")}),
]


@pytest.mark.parametrize("text,expected", CLAUSE_CUES)
def test_the_quantitys_own_clause_decides_its_label(rules, text, expected):
    assert _found(rules, text) == expected


def test_a_website_cue_needs_a_publishing_verb_or_to_stand_before_the_number(rules):
    # 网站 before a count of attacks is not a website publishing posts
    assert _found(rules, "抓取网络安全威胁事件397万次，拦截网站攻击事件25万次。") == set()
    assert _found(rules, "其中通过区政府门户网站20条、襄城就业微信公众号24条。") == {
        ("POSTS_PUBLISHED", "20条"), ("SOCIAL_MEDIA_POSTS", "24条")}


def test_full_and_part_time_staff_are_staff(rules):
    spans = rules.spans("为此,专门配备了2名全职工作人员、2名兼职工作人员。由4名同志具体处理信息公开日常事宜。")
    assert [(s.label, s.text) for s in spans] == [("STAFF", "2名")] * 2 + [("STAFF", "4名")]


def test_regular_expression_cues_are_not_offered_as_words():
    from govfacts.infer.rules import cue_words, load_rules
    words = cue_words()
    assert all(not w.startswith("re:") for ws in words.values() for w in ws)
    media = [c for c in load_rules()[0] if c.label == "MEDIA_COVERAGE" and "媒体" in c.rx.pattern]
    assert media and not media[0].rx.search("新媒体") and media[0].rx.search("省级以上媒体")


OUT_OF_SCOPE = [  # real sentences of training negatives (annotations/tasks/negatives.json): no claim
    "开展中心组学习12次，交流研讨9次。",
    "成立宣传贯彻党的二十大精神宣讲团，局领导带头深入基层，上党课20次；",
    "全年接待旅游人数约700万人次，同比增长2.3%。",
    "丰富群众文化体验，举办各类文化活动261场次。",
    "组织开展宣传活动、安全培训、应急演练等41场次，广泛开展森林防火宣传教育。",
    "针对景区景点周边占道摆摊问题，开展集中整治200多次。",
    "严格行政执法人员资格管理，全局持证执法人员达188名；",
    "发放社区居家养老服务卡约3300张。",
]


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_quantities_of_other_domains_are_vetoed(rules, text):
    assert _found(rules, text) == set()


def test_the_domain_vetoes_leave_disclosure_claims_beside_them(rules):
    assert _found(rules, "开展政务公开宣传活动5场，发放宣传资料2000余份。") == {
        ("PUBLICITY_EVENTS", "5场"), ("MATERIALS_DISTRIBUTED", "2000余份")}
    assert _found(rules, "共发布了25期安全生产信息简报。") == {("POSTS_PUBLISHED", "25期")}


def test_cues_are_skipped_only_where_they_cannot_match(samples):
    """A cue runs only on text holding one of its first characters: on every sample report each cue's
    matches begin with one of them, and the rules' hits equal those of running every cue."""
    import re

    import govfacts.textview as tv
    from govfacts.infer.rules import first_chars

    fresh = RuleExtractor()
    every = RuleExtractor()
    every.cues_for = lambda text: every.cues
    plain = [c for c in fresh.cues if first_chars(c.rx) is not None]
    assert len(plain) > 0.9 * len(fresh.cues)
    assert first_chars(re.compile("(?:网站|门户)发布")) == frozenset("网门")
    assert first_chars(re.compile("(?<!新)媒体")) is None and first_chars(re.compile("x?y")) is None
    assert first_chars(re.compile("[一-龥]+")) is None and first_chars(re.compile("(?i)app")) is None
    texts = [f.read_text(encoding="utf-8") for f in sorted(samples.glob("*.txt"))]
    for cue in plain:
        firsts = first_chars(cue.rx)
        assert all(t[m.start()] in firsts for t in texts for m in cue.rx.finditer(t) if m.end() > m.start())
    for t in texts:
        view = tv.build_view(t)
        assert fresh._find_hits(view) == every._find_hits(view)


def test_an_application_named_as_the_cause_of_a_denied_case_is_not_a_zero_claim(rules):
    from govfacts.annotations import load_corpus
    doc = load_corpus()["extra-7e24"]
    sentence = "全年未收到政府信息公开申请,也未发生因政府信息公开申请引发的行政复议或行政诉讼。"
    assert sentence in doc.text
    assert sorted(_found(rules, sentence)) == [("APPLICATIONS_RECEIVED", "政府信息公开申请"),
                                               ("LAWSUITS", "行政诉讼"), ("RECONSIDERATIONS", "行政复议")]
    assert [s.start for s in rules.spans(sentence) if s.label == "APPLICATIONS_RECEIVED"] == [sentence.index("政府")]
