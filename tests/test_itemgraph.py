"""Item relation graph: planted complements found, text neighbours as substitutes, types kept apart."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.data.demo import generate_demo_shop
from shoprec.errors import ModelError
from shoprec.models.itemgraph import EDGE_TYPES, ItemGraph
from shoprec.models.textside import TextVectors
from tinydata import make_dataset


@pytest.fixture(scope="module")
def shop():
    return generate_demo_shop(seed=1, n_items=300, n_users=200, days=60)


@pytest.fixture(scope="module")
def shop_vectors(shop) -> np.ndarray:
    return TextVectors("minilm-int8").vectors(shop.to_dataset())


@pytest.fixture
def tiny():
    """One order {a, b}, one order {c, d}; user u1 views a, b, c in a row (plus a repeat of c).

    Categories: a and c are mugs, b is coffee, d has no category.
    """
    events = [
        ("u0", "a", 10, "purchase", "O1"),
        ("u0", "b", 10, "purchase", "O1"),
        ("u0", "c", 50, "purchase", "O2"),
        ("u0", "d", 50, "purchase", "O2"),
        ("u1", "a", 100, "view", "S1"),
        ("u1", "b", 101, "view", "S1"),
        ("u1", "c", 102, "view", "S1"),
        ("u1", "c", 103, "cart", "S1"),
    ]
    categories = ["Home > Mugs", "Food > Coffee", "Home > Mugs", ""]
    return make_dataset(events, items=["a", "b", "c", "d"], category=categories)


def test_co_basket_complements_recover_the_planted_groups(shop):
    data = shop.to_dataset()
    graph = ItemGraph.build(data, consecutive=False)
    groups = [data.item_vocab.index(np.array(g, dtype=object)) for g in shop.truth["complement_groups"]]
    hits = total = 0
    for group in groups:
        for item in group:
            mates = set(group.tolist()) - {int(item)}
            found, weights = graph.complements(int(item), k=len(mates))
            assert (np.diff(weights) <= 0).all()
            hits += len(mates & set(found.tolist()))
            total += len(mates)
    precision = hits / total
    chance = np.mean([len(g) - 1 for g in groups]) / data.n_items  # a random other item is a group mate
    assert total >= 15, "the shop must plant enough groups for the check to mean something"
    assert precision >= 0.75, f"top co-basket complements are group mates only {precision:.0%} of the time"
    assert precision > 50 * chance


def test_text_neighbours_are_mostly_same_category_substitutes(shop, shop_vectors):
    data = shop.to_dataset()
    graph = ItemGraph.build(data, shop_vectors, co_basket=False, consecutive=False, text_neighbors=5)
    share = np.mean([graph.same_category(i, graph.neighbors(i, "text", k=5)[0]).mean() for i in range(data.n_items)])
    leaf_share = np.bincount(graph.leaf) / data.n_items
    chance = float((leaf_share**2).sum())  # two random items share a leaf
    assert share >= 0.5 and share > 10 * chance, f"text neighbours share a leaf {share:.0%} of the time"
    for item in range(0, data.n_items, 7):
        found, weights = graph.substitutes(item, k=5)
        assert graph.same_category(item, found).all() and (weights > 0).all()


def test_edge_types_stay_separate_with_known_counts(tiny):
    a, b, c, d = range(4)
    graph = ItemGraph.build(tiny, weighting="count")
    assert graph.types == ["co_basket", "consecutive"]
    basket = graph.edges("co_basket").toarray()
    expected = np.zeros((4, 4))
    expected[a, b] = expected[b, a] = expected[c, d] = expected[d, c] = 1
    np.testing.assert_array_equal(basket, expected)
    steps = graph.edges("consecutive").toarray()
    expected = np.zeros((4, 4))
    # u0: a b c d (time order; a, b share a timestamp), u1: a b c (the cart of c collapses)
    for x, y, n in ((a, b, 2), (b, c, 2), (c, d, 1)):
        expected[x, y] = expected[y, x] = n
    np.testing.assert_array_equal(steps, expected)
    combined = graph.combined({"co_basket": 2.0, "consecutive": 0.5}).toarray()
    np.testing.assert_allclose(combined, 2.0 * basket + 0.5 * steps)
    np.testing.assert_allclose(graph.combined().toarray(), basket + steps)


def test_consecutive_events_further_apart_than_max_gap_are_not_linked(tiny):
    graph = ItemGraph.build(tiny, co_basket=False, weighting="count", max_gap_days=30 / 86_400)
    steps = graph.edges("consecutive")
    assert steps[1, 2] == 1  # u0's b (t=10) -> c (t=50) is 40 s apart; u1's b -> c is 1 s apart
    assert steps[0, 1] == 2 and graph.info["transitions_beyond_gap"] == 1


def test_cosine_weighting_divides_by_occurrences(tiny):
    graph = ItemGraph.build(tiny, co_basket=False)  # consecutive only, cosine
    # occurrences after collapsing repeats: a 2, b 2, c 2, d 1
    steps = graph.edges("consecutive")
    assert steps[0, 1] == pytest.approx(2 / 2) and steps[2, 3] == pytest.approx(1 / np.sqrt(2))
    for m in (steps, ItemGraph.build(tiny).edges("co_basket")):
        assert (m != m.T).nnz == 0 and m.diagonal().sum() == 0


def test_complements_need_another_known_category(tiny):
    graph = ItemGraph.build(tiny, weighting="count")
    a, b, c, _ = range(4)
    assert graph.complements(a, k=5)[0].tolist() == [b]  # b is coffee: a complement of mug a
    assert graph.complements(c, k=5)[0].tolist() == []  # d has no category: cannot tell
    assert graph.same_category(a, np.array([b, c, 3])).tolist() == [False, True, False]


def test_text_edges_are_symmetric_top_k_neighbours(rng):
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    data = make_dataset([("u", f"i{j}", j) for j in range(30)], items=[f"i{j}" for j in range(30)])
    graph = ItemGraph.build(data, vectors, co_basket=False, consecutive=False, text_neighbors=3)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    for item in range(30):
        found, weights = graph.neighbors(item, "text", k=3)
        best = np.argsort(-sims[item])[:3]
        best = best[sims[item, best] > 0]
        assert found.tolist() == best.tolist()
        np.testing.assert_allclose(weights, sims[item, best], rtol=1e-5)
    text = graph.edges("text")
    assert (abs(text - text.T) > 1e-6).nnz == 0


def test_large_baskets_are_skipped_and_counted():
    events = [("u0", f"i{j}", 0, "purchase", "O1") for j in range(6)] + [
        ("u1", "i0", 5, "purchase", "O2"),
        ("u1", "i1", 5, "purchase", "O2"),
    ]
    data = make_dataset(events, items=[f"i{j}" for j in range(6)])
    graph = ItemGraph.build(data, consecutive=False, weighting="count", max_basket=5)
    assert graph.info["baskets_too_large"] == 1 and graph.info["baskets"] == 2
    assert graph.edges("co_basket").nnz == 2  # only i0-i1, from the small order


def test_save_and_load_round_trip(tiny, tmp_path, rng):
    vectors = rng.normal(size=(tiny.n_items, 5)).astype(np.float32)
    graph = ItemGraph.build(tiny, vectors, text_neighbors=2)
    loaded = ItemGraph.load(graph.save(tmp_path / "graph"))
    assert loaded.types == graph.types == list(EDGE_TYPES)
    for edge_type in graph.types:
        assert (loaded.edges(edge_type) != graph.edges(edge_type)).nnz == 0
    np.testing.assert_array_equal(loaded.leaf, graph.leaf)
    assert loaded.leaves == graph.leaves and loaded.info == graph.info
    assert {p.name for p in (tmp_path / "graph").iterdir()} == {"item_graph.npz", "item_graph.json"}
    with np.load(tmp_path / "graph" / "item_graph.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_bad_input_is_a_clear_error(tiny, tmp_path):
    empty = tiny.subset(np.zeros(len(tiny), dtype=bool))
    with pytest.raises(ModelError, match="no interactions"):
        ItemGraph.build(empty)
    with pytest.raises(ModelError, match="no edge type selected"):
        ItemGraph.build(tiny, co_basket=False, consecutive=False)
    with pytest.raises(ModelError, match=r"text_vectors must have shape \(4, dim\)"):
        ItemGraph.build(tiny, np.zeros((3, 5)))
    with pytest.raises(ModelError, match="max_basket"):
        ItemGraph.build(tiny, max_basket=1)
    graph = ItemGraph.build(tiny)
    with pytest.raises(ModelError, match="no 'text' edges were built"):
        graph.substitutes(0)
    with pytest.raises(ModelError, match="unknown edge type 'bought'"):
        graph.edges("bought")
    with pytest.raises(ModelError, match=r"item must be an index in 0\.\.3"):
        graph.neighbors(4, "co_basket")
    with pytest.raises(ModelError, match="weight of 'co_basket'"):
        graph.combined({"co_basket": -1.0})
    with pytest.raises(ModelError, match="unknown edge type 'cobasket'"):
        graph.combined({"cobasket": 0.0})
    with pytest.raises(ModelError, match="max_gap_days"):
        ItemGraph.build(tiny, max_gap_days=0)
    with pytest.raises(ModelError, match="not a saved item graph"):
        ItemGraph.load(tmp_path)
