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
    assert index.wait_for_compaction(timeout=30)
    assert index.compactions == 1 and index.delta_size == 0  # passed compact_min=3: rebuilt in the background
    assert sorted(search(index, table, "hoselux hose", k=10)) == ["n0", "n1", "n2", "n3"]
    fresh = LexicalIndex().build(table)
    query = tokenize("hoselux garden hose drill")
    np.testing.assert_allclose(index.scores(query, len(table)), fresh.scores(query, len(table)), rtol=1e-6)


def test_without_background_the_upsert_that_passes_the_threshold_rebuilds():
    table = ProductTable(PRODUCTS)
    index = LexicalIndex(compact_min=1, compact_share=0.0, background=False).build(table)
    index.upsert(table, table.upsert([Product("n0", "Garden hose")]))
    assert index.delta_size == 1 and index.compactions == 0
    index.upsert(table, table.upsert([Product("n1", "Garden hose, long")]))
    assert index.delta_size == 0 and search(index, table, "hose") == ["n0", "n1"]


def test_delta_scores_match_a_main_index_built_with_dead_rows():
    table = ProductTable(PRODUCTS)
    table.remove(["p2"])  # indexed as an empty document: it counts in the average length as bm25s counts it
    index = LexicalIndex().build(table)
    query = tokenize("cordless drill mug")
    before = index.scores(query, len(table))
    index.upsert(table, table.upsert([PRODUCTS[0], PRODUCTS[3]]))
    np.testing.assert_allclose(index.scores(query, len(table)), before, rtol=1e-6)


def test_searches_during_a_background_rebuild_see_one_consistent_index(monkeypatch):
    """A rebuild held at its end: searches meanwhile answer from the old index and its delta; a reader
    searching in a loop across the swap always gets the whole answer of one index or the other, never a
    mix; a change made during the rebuild survives the swap."""
    import threading

    products = [Product(f"h{i}", f"Garden hose {i} m", brand="Hoselux", description="rubber") for i in range(30)]
    table = ProductTable(PRODUCTS + products)
    index = LexicalIndex(compact_min=3, compact_share=0.0).build(table)
    release, building = threading.Event(), threading.Event()
    real_build = index._build_main

    def held_build(*args):
        main = real_build(*args)
        building.set()
        assert release.wait(30)
        return main

    monkeypatch.setattr(index, "_build_main", held_build)
    query = tokenize("hoselux hose")
    index.upsert(table, table.upsert([Product(f"h{i}", f"Garden hose {i} m", brand="Hoselux") for i in range(4)]))
    expected = search_scores(index, table, query)
    assert building.wait(30) and index.delta_size == 4  # the rebuild has its new index, not yet swapped in
    assert search_scores(index, table, query) == expected
    index.upsert(table, table.upsert([Product("p1", "Cordless screwdriver", brand="Boschly")]))  # after the snapshot
    # p1 is one more document: the delta's idf counts it, the old main index's stored weights do not, so
    # the hose scores move slightly at the swap (both orders are right); a reader sees one or the other
    before = sorted(search_scores(index, table, query))
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            seen.append(search_scores(index, table, query))

    thread = threading.Thread(target=reader)
    thread.start()
    release.set()
    assert index.wait_for_compaction(timeout=30) and index.compactions == 1
    stop.set()
    thread.join()
    after = sorted(search_scores(index, table, query))
    assert [item for item, _ in after] == [item for item, _ in before] == [item for item, _ in sorted(expected)]
    assert seen and all(sorted(s) in (before, after) for s in seen)  # never a mix of two indexes
    assert index.delta_size == 1  # only the change made during the rebuild
    assert search(index, table, "screwdriver") == ["p1"] and "p1" not in search(index, table, "drill batteries")


def search_scores(index: LexicalIndex, table: ProductTable, query: list[str]) -> list[tuple[str, float]]:
    positions, scores = index.search(query, 50, table.alive.copy())
    return [(table.products[p].item_id, round(float(s), 4)) for p, s in zip(positions, scores, strict=True)]


def test_an_empty_catalogue_builds_and_its_first_upserts_are_found():
    table = ProductTable([])
    index = LexicalIndex().build(table)
    assert index.search(tokenize("kettle"), 5, table.alive.copy())[0].tolist() == []
    index.upsert(table, table.upsert([Product("a", "Steel kettle"), Product("b", "Glass teapot")]))
    assert search(index, table, "kettle") == ["a"]
