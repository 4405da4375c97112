import random

from govfacts.textview import build_view, to_halfwidth, to_simplified


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


def test_digits_separated_by_spaces_stay_apart():
    assert build_view("行政规范性文件 0 5 5").text == "行政规范性文件0 5 5"


def test_view_index_property_on_real_and_random_text(samples):
    rng = random.Random(0)
    texts = [p.read_text(encoding="utf-8") for p in sorted(samples.glob("*.txt"))]
    alphabet = "政府信息公開１２３ 　\n，。条件多余万0123456789abc"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(200)]
    for raw in texts:
        v = build_view(raw)
        assert len(v.text) == len(v.index)
        assert all(a < b for a, b in zip(v.index, v.index[1:]))
        conv = to_halfwidth(to_simplified(raw))
        assert all(v.text[i] == conv[j] for i, j in enumerate(v.index))
        dropped = set(range(len(raw))) - set(v.index)
        assert all(raw[j] in " \t\u3000\xa0\n" for j in dropped)
