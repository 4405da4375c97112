import pytest

from govfacts.quantity import parse_quantity

CASES = [
    # (span text, value, unit, qualifier) — forms met in real reports, incl. the contract's examples
    ("1100多条", 1100, "条", "more_than"), ("22.4万余次", 224000, "次", "more_than"), ("近6500件", 6500, "件", "nearly"),
    ("一千二百余条", 1200, "条", "more_than"), ("三十六次", 36, "次", "exact"), ("1,112件", 1112, "件", "exact"),
    ("１２３条", 123, "条", "exact"), ("5500 余条", 5500, "条", "more_than"), ("98.6%", 98.6, "%", "exact"),
    ("3.5万元", 35000, "元", "exact"), ("两场", 2, "场", "exact"), ("0件", 0, "件", "exact"),
    ("70个", 70, "个", "exact"), ("6327余条", 6327, "条", "more_than"), ("1.35亿次", 135000000, "次", "exact"),
    ("3次", 3, "次", "exact"), ("47次", 47, "次", "exact"), ("1100余件次", 1100, "件次", "more_than"),
    ("272条次", 272, "条次", "exact"), ("1200多条次", 1200, "条次", "more_than"), ("14宗", 14, "宗", "exact"),
    ("100%", 100, "%", "exact"), ("100％", 100, "%", "exact"), ("39件", 39, "件", "exact"),
    ("40多万份", 400000, "份", "more_than"), ("300多场次", 300, "场次", "more_than"), ("27篇", 27, "篇", "exact"),
    ("17场", 17, "场", "exact"), ("2400余条", 2400, "条", "more_than"), ("7起", 7, "起", "exact"),
    ("51项", 51, "项", "exact"), ("约4900人次", 4900, "人次", "approx"), ("1600人次", 1600, "人次", "exact"),
    ("3000多人次", 3000, "人次", "more_than"), ("1136 条", 1136, "条", "exact"), ("21 件", 21, "件", "exact"),
    ("0 元", 0, "元", "exact"), ("351\n件", 351, "件", "exact"), ("十余次", 10, "次", "more_than"),
    ("20余万份", 200000, "份", "more_than"), ("一万多份", 10000, "份", "more_than"), ("3次左右", 3, "次", "approx"),
    ("约3次", 3, "次", "approx"), ("大约200人", 200, "人", "approx"), ("将近300条", 300, "条", "nearly"),
    ("超过500条", 500, "条", "more_than"), ("逾千条", 1000, "条", "more_than"), ("超1万次", 10000, "次", "more_than"),
    ("近万次", 10000, "次", "nearly"), ("四份", 4, "份", "exact"), ("一名", 1, "名", "exact"),
    ("二十三件", 23, "件", "exact"), ("一百零五条", 105, "条", "exact"), ("9540370次", 9540370, "次", "exact"),
    ("3.5万份", 35000, "份", "exact"), ("18.8万份", 188000, "份", "exact"), ("14万余条", 140000, "条", "more_than"),
    ("3万余册", 30000, "册", "more_than"), ("2950元", 2950, "元", "exact"), ("7730.28万元", 77302800, "元", "exact"),
    ("1 万元", 10000, "元", "exact"), ("２２．４万次", 224000, "次", "exact"), ("一千二百條", 1200, "条", "exact"),
    ("１００％", 100, "%", "exact"), ("5 场", 5, "场", "exact"), ("200余场", 200, "场", "more_than"),
    ("60余项", 60, "项", "more_than"), ("12期", 12, "期", "exact"), ("0", 0, "", "exact"), ("零", 0, "", "exact"),
    ("为零", 0, "", "exact"), ("15564件", 15564, "件", "exact"), ("1万元", 10000, "元", "exact"),
    ("50多场", 50, "场", "more_than"), ("10 余篇", 10, "篇", "more_than"), ("三千余人次", 3000, "人次", "more_than"),
    ("723条(次)", 723, "条", "exact"), ("163人（次）", 163, "人", "exact"),
    ("百分之九十八", 98, "%", "exact"), ("百分之百", 100, "%", "exact"), ("百分之九十九点五", 99.5, "%", "exact"),
]


def test_enough_forms():
    assert len(CASES) >= 60


@pytest.mark.parametrize("text,value,unit,qualifier", CASES)
def test_parse_quantity(text, value, unit, qualifier):
    q = parse_quantity(text)
    assert q is not None, text
    assert q.value == pytest.approx(value), text
    assert (q.unit, q.qualifier) == (unit, qualifier), text


@pytest.mark.parametrize("text", ["行政复议", "政府信息公开申请", "费用", "收费", ""])
def test_noun_phrases_have_no_quantity(text):
    assert parse_quantity(text) is None


@pytest.mark.parametrize("n", [0, 1, 7, 10, 99, 1000, 12345, 987654])
@pytest.mark.parametrize("unit", ["条", "件", "次", "人次", "元"])
def test_arabic_and_fullwidth_agree(n, unit):
    full = "".join(chr(ord(c) + 0xFEE0) for c in str(n))
    a, b = parse_quantity(f"{n}{unit}"), parse_quantity(f"{full}{unit}")
    assert a == b and a.value == n and a.unit == unit


@pytest.mark.parametrize("n", [1, 2, 9, 10, 11, 20, 36, 99, 100, 105, 1200, 3456])
def test_chinese_numerals_agree_with_arabic(n):
    import cn2an

    cn = cn2an.an2cn(n)
    assert parse_quantity(f"{cn}件").value == n
    assert parse_quantity(f"{cn}余件").qualifier == "more_than"


def test_find_quantities_follows_the_span_convention():
    from govfacts.quantity import find_quantities

    text = "网站主动发布信息1100多条，接听咨询电话22.4万余次，近6500件，2023年，占24.43%，约3万元左右"
    found = [text[s:e] for s, e in find_quantities(text)]
    assert found == ["1100多条", "22.4万余次", "近6500件", "24.43%", "约3万元左右"]


def test_a_second_classifier_in_brackets_stays_in_the_quantity():
    from govfacts.quantity import find_quantities

    text = "发布信息723条(次)，接受咨询163人（次），共3件（其中1件已办结）"
    assert [text[s:e] for s, e in find_quantities(text)] == ["723条(次)", "163人（次）", "3件", "1件"]


@pytest.mark.parametrize("n", [24745, 196022, 980862, 7708682, 10000, 12000, 30000, 1, 2])
def test_find_quantities_reads_whole_chinese_numerals(n):
    """`二万四千七百四十五人次` is one claim (万 inside a numeral), not its tail `四千七百四十五人次`."""
    import cn2an

    from govfacts.quantity import find_quantities

    cn = cn2an.an2cn(n)
    text = f"专栏访问量达{cn}人次。"
    found = [text[s:e] for s, e in find_quantities(text)]
    assert found == [f"{cn}人次"]
    assert parse_quantity(found[0]).value == n


def test_a_lone_yi_is_a_count_only_where_its_classifier_ends_the_clause():
    from govfacts.quantity import find_quantities

    for text, want in [("共收到政府信息公开申请一件，均按时办结。", ["一件"]), ("一件为不予处理。", ["一件"]),
                       ("行政诉讼一起。", ["一起"]), ("接听一万余次。", ["一万余次"]),
                       ("构筑了一个良好的工作格局。", []), ("一次性告知。", []), ("一批重点项目", []),
                       ("安排一名干部专门负责网站管理", ["一名"])]:  # 名 counts people only
        assert [text[s:e] for s, e in find_quantities(text)] == want, text


def test_a_bare_wan_is_ten_thousand_where_duo_or_yu_follows():
    from govfacts.quantity import find_quantities, parse_quantity

    for text, want in [("发放资料万余份，依托媒体", "万余份"), ("参训万多人次。", "万多人次")]:
        found = [text[s:e] for s, e in find_quantities(text)]
        assert found == [want], text
        q = parse_quantity(want)
        assert (q.value, q.qualifier) == (10000, "more_than")
    for text in ("社保服务进万家", "万元户"):  # a bare 万 without 多/余 is no count
        assert find_quantities(text) == [], text


def test_each_view_quantity_has_its_unit_as_the_contract_writes_it():
    from govfacts.quantity import unit_key, view_quantities, view_quantity_units
    from govfacts.textview import build_view

    view = build_view("实现旅游收入约63亿元，累计阅读量263万次，回复率100%，收到申请两件。")
    spans = [view.text[s:e] for s, e in view_quantities(view)]
    assert spans == ["约63亿元", "263万次", "100%", "2件"]
    assert view_quantity_units(view) == ["元", "次", "%", "件"]
    assert unit_key("万份") == "份" and unit_key("万") == "万"
