"""Query understanding: prices, brands and category words parsed exactly; bad input explained."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.errors import ShoprecError
from shoprec.search.prices import extract_prices
from shoprec.search.products import Product, ProductTable
from shoprec.search.query import MAX_QUERY_CHARS, QueryParser, detect_language

PRODUCTS = [
    Product("k1", "Nordhaus steel kettle", category="Home > Kitchen > Kettles", brand="Nordhaus", price=45.0),
    Product("k2", "Linen Lane aviator sunglasses", category="Fashion > Accessories > Sunglasses", brand="Linen Lane"),
    Product("k3", "TrailMark water bottle", category="Sports > Outdoor > Water Bottles", brand="TrailMark"),
]


@pytest.fixture(scope="module")
def parser() -> QueryParser:
    return QueryParser.from_products(ProductTable(PRODUCTS))


prices = st.one_of(
    st.integers(min_value=0, max_value=99_999).map(float),
    st.integers(min_value=0, max_value=9_999_999).map(lambda c: c / 100),
)
MAX_STRICT = ["under {a}", "below ${a}", "less than {a}", "cheaper than {a} dollars", "低于{a}元", "少于{a}块"]
MAX_INCL = ["up to {a}", "at most ${a}", "{a}元以下", "{a}元以内", "{a}以下", "不超过{a}元"]
MIN_STRICT = ["over {a}", "above ${a}", "more than {a}", "高于{a}元", "超过{a}元"]
MIN_INCL = ["at least {a}", "from ${a}", "{a}元以上", "至少{a}元"]
RANGES = [
    "between {a} and {b}",
    "{a}-{b}",
    "${a} - ${b}",
    "from {a} to {b} dollars",
    "{a}到{b}元",
    "{a}元到{b}元",
    "{a}至{b}元",
]


def fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


@settings(max_examples=150, deadline=None)
@given(value=prices, template=st.sampled_from(MAX_STRICT + MAX_INCL), before=st.sampled_from(["mug ", "", "红色 "]))
def test_upper_bounds_are_parsed_exactly(value, template, before):
    found = extract_prices(before + template.format(a=fmt(value)))
    assert found.low is None
    assert found.high.value == value
    assert found.high.inclusive == (template in MAX_INCL)


@settings(max_examples=150, deadline=None)
@given(value=prices, template=st.sampled_from(MIN_STRICT + MIN_INCL))
def test_lower_bounds_are_parsed_exactly(value, template):
    found = extract_prices("tent " + template.format(a=fmt(value)))
    assert found.high is None
    assert found.low.value == value
    assert found.low.inclusive == (template in MIN_INCL)


@settings(max_examples=150, deadline=None)
@given(a=prices, b=prices, template=st.sampled_from(RANGES))
def test_ranges_are_parsed_exactly_in_either_order(a, b, template):
    found = extract_prices("drill " + template.format(a=fmt(a), b=fmt(b)) + " cordless")
    assert (found.low.value, found.high.value) == (min(a, b), max(a, b))
    assert found.low.inclusive and found.high.inclusive
    assert "drill" in found.rest and "cordless" in found.rest


@pytest.mark.parametrize("text", ["drill 4-6 mm", "aa batteries 4-pack", "mug 350 ml", "tent for 2-3 people"])
def test_sizes_and_counts_are_not_prices(text):
    found = extract_prices(text)
    if text == "tent for 2-3 people":  # a bare range with no unit reads as a price: say so, and pin it
        assert (found.low.value, found.high.value) == (2.0, 3.0)
    else:
        assert found.low is None and found.high is None


def test_brand_category_and_price_are_separated_from_the_words(parser):
    parsed = parser.parse("nordhaus steel kettle under 50")
    assert parsed.brands == ("Nordhaus",)
    assert parsed.categories == ("Home > Kitchen > Kettles",)
    assert parsed.max_price.value == 50 and not parsed.max_price.inclusive
    assert parsed.terms == ("steel",)
    assert parsed.describe() == "brand: Nordhaus, category: Home > Kitchen > Kettles, max price: 50"
    assert parsed.describe("zh") == "品牌：Nordhaus，类目：Home > Kitchen > Kettles，最高价格：50"


def test_multi_word_brand_and_plural_category_match_by_stem(parser):
    parsed = parser.parse("Linen Lane water bottle 20到40元")
    assert parsed.brands == ("Linen Lane",)
    assert parsed.categories == ("Sports > Outdoor > Water Bottles",)
    assert (parsed.min_price.value, parsed.max_price.value) == (20, 40)
    assert parsed.language == "zh" and parsed.mixed  # any ideograph makes it zh


def test_language_is_detected_by_script():
    assert detect_language("不粘锅") == ("zh", False)
    assert detect_language("cordless drill") == ("en", False)
    assert detect_language("Nordhaus 水壶") == ("zh", True)
    assert detect_language("123 !!") == ("unknown", False)


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_empty_query_is_a_clear_error(parser, query):
    with pytest.raises(ShoprecError, match="query is empty"):
        parser.parse(query)


def test_long_query_is_cut_with_a_note(parser):
    parsed = parser.parse("kettle " * 2000)
    assert len(parsed.text) <= MAX_QUERY_CHARS
    assert "cut to" in parsed.notes[0] and "13999" in parsed.notes[0]  # stripped of its last space


@pytest.mark.parametrize("query", ["!!! ???", "😀🎉", "…—·", "<>"])
def test_punctuation_or_emoji_only_gives_no_terms_and_a_note(parser, query):
    parsed = parser.parse(query)
    assert parsed.terms == () and not parsed.has_constraints
    assert "no words" in parsed.notes[0]


def test_html_or_sql_looking_text_is_just_words(parser):
    parsed = parser.parse("<b>steel</b>'; DROP TABLE items; --")
    assert {"steel", "drop", "tabl", "item"} <= set(parsed.terms)


# ---------------------------------------------------------------------- colour and size
WEAR = [
    Product("t1", "Cotton tee", category="Fashion > Tops", brand="Linen Lane", price=15.0, colour="Red", size="XL"),
    Product("t2", "Cotton tee", category="Fashion > Tops", brand="Linen Lane", price=15.0, colour="grey", size="L"),
    Product("t3", "Wool socks", category="Fashion > Socks", brand="Red Fox", price=9.0, colour="navy", size="42"),
    Product("b1", "L bracket", category="Tools > Hardware", brand="Fixit", price=3.0),
]


@pytest.fixture(scope="module")
def wear() -> QueryParser:
    return QueryParser.from_products(ProductTable(WEAR))


@pytest.mark.parametrize(
    ("query", "colours", "sizes", "terms"),
    [
        ("red cotton tee", ("Red",), (), ("cotton", "tee")),
        ("RED tee xl", ("Red",), ("XL",), ("tee",)),
        ("gray tee", ("grey",), (), ("tee",)),  # an English variant of a catalogue colour
        ("灰色 tee", ("grey",), (), ("tee",)),  # its Chinese name
        ("藏青色 socks size 42", ("navy",), ("42",), ()),  # a number is a size after "size"
        ("wool socks 42", (), (), ("wool", "42")),  # ... and not on its own
        ("l bracket", (), (), ("l", "bracket")),  # a one-letter size only after "size"
        ("tee size l", (), ("L",), ("tee",)),
        ("blue tee", (), (), ("blue", "tee")),  # the catalogue sells nothing blue: just a word
    ],
)
def test_colour_and_size_words_the_catalogue_has_are_constraints(wear, query, colours, sizes, terms):
    parsed = wear.parse(query)
    assert parsed.colours == colours and parsed.sizes == sizes
    assert parsed.terms == terms


def test_a_brand_wins_over_a_colour_and_describe_names_colour_and_size(wear):
    parsed = wear.parse("red fox socks")
    assert parsed.brands == ("Red Fox",) and parsed.colours == ()
    parsed = wear.parse("red tee size xl under 20")
    assert parsed.describe() == "colour: Red, size: XL, max price: 20"
    assert parsed.describe("zh") == "颜色：Red，尺码：XL，最高价格：20"
    assert parsed.has("colour") and parsed.has("size") and not parsed.without("colour").has("colour")
    with pytest.raises(ShoprecError, match="unknown constraint 'weight'"):
        parsed.has("weight")


def test_colour_and_size_are_read_from_the_attributes_json():
    import pandas as pd

    from shoprec.search.products import _colour_and_size

    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "attributes": ['{"colour": "red", "size": "M"}', '{"color": "Blue"}', "{}"]}
    )
    assert _colour_and_size(items) == (["red", "Blue", ""], ["M", "", ""])
    bad = pd.DataFrame({"item_id": ["a"], "attributes": ["{colour: red"]})
    with pytest.raises(ShoprecError, match="item 'a' .row 1.: attributes are not JSON"):
        _colour_and_size(bad)
