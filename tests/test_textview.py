import random
from pathlib import Path

import pytest

from govfacts.quantity import CN_DIGITS, view_quantities
from govfacts.textview import build_view, to_halfwidth, to_simplified

ROOT = Path(__file__).resolve().parents[1]


def test_traditional_fullwidth_view_maps_back_to_raw():
    raw = "網站主動發佈資訊１２３條，沒有收到政府信息公開申請。"
    v = build_view(raw)
    assert v.text == "网站主动发布资讯123条，没有收到政府信息公开申请。"
    s = v.text.index("123条")
    assert v.to_raw(s, s + 4) == (raw.index("１２３條"), raw.index("１２３條") + 4)


def test_hard_wrapped_pdf_lines_are_joined_and_spaces_dropped():
    raw = "2023 年，我区在政府网站平台主动公开政府信息 1136\n条。\n一、总体情况\n"
    v = build_view(raw)
    assert "2023年，我区在政府网站平台主动公开政府信息1136条。" in v.text
    assert "\n一、总体情况" in v.text  # a sentence end keeps its line break
    s = v.text.index("1136条")
    rs, re_ = v.to_raw(s, s + 5)
    assert raw[rs:re_] == "1136\n条"


def _quantities_as_written(raw: str) -> list[tuple[str, str]]:
    """(view text, raw text) of every quantity candidate of raw's view."""
    v = build_view(raw)
    return [(v.text[a:b], raw[slice(*v.to_raw(a, b))]) for a, b in view_quantities(v)]


def test_a_space_before_a_percent_sign_is_dropped_so_the_rate_is_one_quantity():
    found = _quantities_as_written("答复依申请公开2 个,按时答复率100 %。办结率 99.5 ％")
    assert [view for view, _ in found] == ["2个", "100%", "99.5%"]
    assert found[1][1] == "100 %"


def test_a_rate_written_in_words_is_read_as_a_percentage_over_its_whole_raw_text():
    found = _quantities_as_written("答复率百分之百，满意率達百分之九十九點五。")
    assert [view for view, _ in found] == ["100%", "99.5%"]
    assert all(raw in ("百分之百", "百分之九十九點五") for _, raw in found)


def test_digits_separated_by_spaces_stay_apart():
    assert build_view("行政规范性文件 0 5 5").text == "行政规范性文件0 5 5"


def test_view_index_property_on_real_and_random_text(samples):
    rng = random.Random(0)
    texts = [p.read_text(encoding="utf-8") for p in sorted(samples.glob("*.txt"))]
    alphabet = "政府信息公開１２３ 　\n，。条件多余万0123456789abc"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(200)]
    for raw in texts:
        v = build_view(raw, arabic=False)
        assert len(v.text) == len(v.index)
        assert all(a < b for a, b in zip(v.index, v.index[1:]))
        conv = to_halfwidth(to_simplified(raw))
        assert all(v.text[i] == conv[j] for i, j in enumerate(v.index))
        dropped = set(range(len(raw))) - set(v.index)
        assert all(raw[j] in " \t\u3000\xa0\n" for j in dropped)
        a = build_view(raw)  # Chinese numerals as digits: each digit maps into the numeral, in order
        assert len(a.text) == len(a.index) and all(x <= y for x, y in zip(a.index, a.index[1:]))
        assert set(a.index) <= set(v.index)
        assert all(a.text[i] == conv[j] or a.text[i].isdigit() and conv[j] in CN_DIGITS for i, j in enumerate(a.index))


def test_chinese_numerals_of_quantities_read_as_digits():
    raw = "访问量达二萬四千七百四十五人次，收到申请一件，行政诉讼两起。“十三五”规划，第一条。"
    v = build_view(raw)
    assert v.text == "访问量达24745人次,收到申请1件,行政诉讼2起。“十三五”规划,第1条。".replace(",", "，")
    s = v.text.index("24745")
    assert raw[slice(*v.to_raw(s, s + 7))] == "二萬四千七百四十五人次"
    assert v.from_raw(raw.index("二萬"), raw.index("人次") + 2) == (s, s + 7)


GLOSSES = {"復": "fù", "議": "yì", "規": "guī", "範": "fàn", "數": "shù", "據": "jù", "開": "kai", "請": "qing",
           "訴": "sù", "訟": "sòng", "政": "zheng", "府": "fu", "申": "shen"}


def _glossed(text: str, toned: bool) -> str:
    """Text as web copies in traditional script carry it: a pinyin gloss after some characters."""
    out = []
    for ch in text:
        out.append(ch)
        if ch in GLOSSES:
            g = GLOSSES[ch]
            out.append(f"({g})" if toned else f"({g.translate(str.maketrans('āáǎàēéěèīíǐìōóǒòūúǔù', 'aaaaeeeeiiiioooouuuu'))})")
    return "".join(out)


@pytest.mark.parametrize("toned", [True, False])
def test_pinyin_glosses_are_dropped_and_facts_map_to_raw_text(toned):
    """A real report in traditional script with glosses gives the facts of the plain report."""
    import opencc

    from govfacts.infer.rules import RuleExtractor

    plain = (ROOT / "data" / "samples" / "hr-dongguan-2015.txt").read_text(encoding="utf-8")
    trad = opencc.OpenCC("s2t").convert(plain)
    raw = _glossed(trad, toned)
    assert raw.count("(") > 20
    view = build_view(raw)
    assert view.text == build_view(trad).text
    rules = RuleExtractor()
    want = [(s.label, s.text) for s in rules.spans(trad)]
    got = rules.spans(raw)
    assert len(want) > 5
    # the same claims; a span's raw text is the claim with its glosses, and starts and ends on the claim
    assert [s.label for s in got] == [lab for lab, _ in want]
    for s, (_, text) in zip(got, want):
        assert raw[s.start:s.end] == s.text and "(" not in s.text[-1:] and s.text[0] == text[0]
        assert build_view(s.text).text == build_view(text).text


def test_brackets_that_are_not_pinyin_stay():
    for text in ("网站(PDF)版", "收到申请(xyz)3件", "附件(2)", "（含申请人主动撤回申请）"):
        assert build_view(text).text == text


def test_the_view_of_a_document_is_built_once_and_the_cache_stays_bounded(samples, monkeypatch):
    import govfacts.textview as tv

    raw = (samples / "gov-pingtan-2016.txt").read_text(encoding="utf-8")
    v = build_view(raw)
    assert build_view(raw) is v  # the tagger, the rules and the fact builder share one view and its memo
    assert build_view(raw, join_lines=False) is not v  # other options, another view
    assert build_view(raw, drop_spaces=False).text != v.text  # the raw text has spaces the view drops
    monkeypatch.setattr(tv, "VIEW_CACHE_CHARS", 3 * len(raw))
    for k in range(6):
        build_view(f"{k}" + raw)
    assert tv._recent_chars <= 3 * len(raw) and len(tv._recent) <= 3
    assert build_view(raw).text == v.text  # evicted and rebuilt alike
