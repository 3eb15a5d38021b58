"""Search facets: counts by category (top level and leaf), brand and price bucket over the result set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.search.facets import PRICE_EDGES, facets, price_bucket, price_bucket_labels
from shoprec.search.hybrid import SearchEngine
from shoprec.search.products import Product, ProductTable

SHOP = [
    Product("a", "Steel kettle", category="Home > Kitchen > Boilers", brand="Nordhaus", price=45.0),
    Product("b", "Glass kettle", category="Home > Kitchen > Boilers", brand="Nordhaus", price=50.0),
    Product("c", "Kettle descaler", category="Home>Cleaning", brand="Cleanly", price=4.5),
    Product("d", "Travel kettle", category="", brand="", price=float("nan")),
    Product("e", "Camping kettle", category="Sports > Outdoor", brand="TrailMark", price=10000.0),
    Product("f", "Cordless drill", category="Tools > Drills", brand="Makito", price=89.0),
]


def test_facets_count_the_whole_matched_set_not_the_page():
    engine = SearchEngine(ProductTable(SHOP))
    result = engine.search("kettle", k=2)
    assert len(result.hits) == 2 and result.total == 5
    assert result.facets["category"] == [("Home", 3), ("(none)", 1), ("Sports", 1)]
    assert result.facets["category_leaf"] == [
        ("Home > Kitchen > Boilers", 2),
        ("(none)", 1),
        ("Home > Cleaning", 1),  # spacing around '>' normalised
        ("Sports > Outdoor", 1),
    ]
    assert result.facets["brand"] == [("Nordhaus", 2), ("(none)", 1), ("Cleanly", 1), ("TrailMark", 1)]
    assert result.facets["price"] == [("0-10", 1), ("25-50", 1), ("50-100", 1), ("10000+", 1), ("(unknown)", 1)]
    for counts in result.facets.values():  # every facet adds up to the total: nothing dropped uncounted
        assert sum(n for _, n in counts) == result.total
    # a constraint narrows the facets with the results
    assert engine.search("nordhaus kettle").facets["brand"] == [("Nordhaus", 2)]


@settings(max_examples=200, deadline=None)
@given(price=st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_each_price_falls_in_the_half_open_bucket_that_holds_it(price):
    label = price_bucket(price)
    if price >= PRICE_EDGES[-1]:
        assert label == f"{PRICE_EDGES[-1]:g}+"
    else:
        low, high = (float(x) for x in label.split("-"))
        assert low <= price < high
    table = ProductTable([Product("x", "x", price=price)])
    assert facets(table, np.array([0]))["price"] == [(label, 1)]


def test_bucket_labels_are_in_price_order():
    labels = price_bucket_labels()
    assert labels[0] == "0-10" and labels[-2] == "10000+" and labels[-1] == "(unknown)"
    assert price_bucket(float("nan")) == "(unknown)"
    assert facets(ProductTable(SHOP), np.zeros(0, dtype=np.int64)) == {
        "category": [],
        "category_leaf": [],
        "brand": [],
        "price": [],
    }


def test_facets_of_a_browse_count_every_allowed_product():
    engine = SearchEngine(ProductTable(SHOP))
    result = engine.search("under 100", k=1)
    assert result.total == 4 and sum(n for _, n in result.facets["brand"]) == 4
    assert ("Makito", 1) in result.facets["brand"]


def test_to_dict_lists_facets_as_pairs():
    out = SearchEngine(ProductTable(SHOP)).search("kettle").to_dict()
    assert out["facets"]["brand"][0] == ["Nordhaus", 2] and out["total"] == 5


@pytest.mark.parametrize("price", [-1.0, 0.0])
def test_zero_and_negative_prices_go_to_the_first_bucket(price):
    assert price_bucket(price) == "0-10"
