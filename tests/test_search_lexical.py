"""Lexical search: BM25 with stemming and Chinese segmentation; upserts and removals searchable at once."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.search.lexical import LexicalIndex
from shoprec.search.products import Product, ProductTable
from shoprec.search.tokenize import tokenize

PRODUCTS = [
    Product(
        "p1",
        "Cordless drill with two batteries",
        "18 V drill for wood and metal",
        "Tools > Power Tools > Drills",
        "Boschly",
        89.0,
    ),
    Product("p2", "Hammer drill, corded", "Drills concrete", "Tools > Power Tools > Drills", "Makito", 120.0),
    Product("p3", "不粘锅 平底锅 28厘米", "家用不粘炒锅", "Home > Kitchen > Pans", "Nordhaus", 35.0),
    Product("p4", "Ceramic coffee mug", "Dishwasher safe mug, 350 ml", "Home > Kitchen > Mugs", "Nordhaus", 9.0),
    Product("p5", "Running shoes, lightweight", "Trail running shoes", "Sports > Running > Shoes", "Peakline", 60.0),
]


def search(index: LexicalIndex, table: ProductTable, text: str, k: int = 5) -> list[str]:
    positions, _ = index.search(tokenize(text), k, table.alive.copy())
    return [table.products[p].item_id for p in positions]


@pytest.fixture
def built() -> tuple[LexicalIndex, ProductTable]:
    table = ProductTable(PRODUCTS)
    return LexicalIndex(compact_min=3, compact_share=0.0).build(table), table


def test_stemming_and_fields(built):
    index, table = built
    assert sorted(search(index, table, "drills")) == ["p1", "p2"]  # stemmed: drill, drills, Drills
    assert search(index, table, "cordless drilling")[0] == "p1"
    assert search(index, table, "peakline") == ["p5"]  # brand field
    assert sorted(search(index, table, "kitchen")) == ["p3", "p4"]  # category path


def test_chinese_words_are_segmented(built):
    index, table = built
    assert tokenize("不粘锅")[0] == "不粘锅"
    assert search(index, table, "平底锅") == ["p3"]
    assert search(index, table, "平底") == ["p3"]  # search mode also yields the shorter dictionary word


def test_matched_words_name_the_query_terms_found(built):
    index, table = built
    assert index.matched(table.position("p1"), tokenize("cordless drill for tiles")) == ["cordless", "drill"]


def test_upsert_is_searchable_at_once_and_old_text_is_gone(built):
    index, table = built
    positions = table.upsert([Product("p4", "Espresso cup, porcelain", brand="Nordhaus", price=12.0)])
    index.upsert(table, positions)
    assert index.delta_size == 1
    assert "p4" not in search(index, table, "mug")
    assert search(index, table, "espresso porcelain") == ["p4"]
    new = table.upsert([Product("n1", "Zorblax quantum kettle", brand="Zorblax", price=10.0)])
    index.upsert(table, new)
    assert search(index, table, "zorblax") == ["n1"]


def test_removed_products_are_never_returned(built):
    index, table = built
    index.upsert(table, table.upsert([Product("n1", "Cordless drill, compact")]))
    index.remove(table.remove(["p1", "n1"]))
    assert search(index, table, "cordless drill") == ["p2"]


def test_delta_scores_equal_the_main_index_for_unchanged_text(built):
    index, table = built
    query = tokenize("cordless drill wood")
    before = index.scores(query, len(table))
    index.upsert(table, table.upsert([PRODUCTS[0]]))  # same text, now served from the delta
    after = index.scores(query, len(table))
    assert index.delta_size == 1
    np.testing.assert_allclose(after, before, rtol=1e-5)


def test_delta_is_compacted_into_a_rebuilt_main_index(built):
    index, table = built
    for i in range(4):
        index.upsert(table, table.upsert([Product(f"n{i}", f"Garden hose {i}m", brand="Hoselux")]))
    assert index.delta_size < 4  # passed compact_min=3: rebuilt
    assert sorted(search(index, table, "hoselux hose", k=10)) == ["n0", "n1", "n2", "n3"]


def test_an_empty_catalogue_builds_and_its_first_upserts_are_found():
    table = ProductTable([])
    index = LexicalIndex().build(table)
    assert index.search(tokenize("kettle"), 5, table.alive.copy())[0].tolist() == []
    index.upsert(table, table.upsert([Product("a", "Steel kettle"), Product("b", "Glass teapot")]))
    assert search(index, table, "kettle") == ["a"]
