"""Personal search features: shoppers with different histories order the same candidates differently,
an empty history changes nothing, every feature stays in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.errors import ShoprecError
from shoprec.search.personal import FEATURES, FeatureWeights, SearchProfile, recency_weights, relative_prices
from shoprec.search.products import Product, ProductTable

CATALOGUE = [
    Product("k1", "Steel kettle", category="Home > Kitchen > Kettles", brand="Nordhaus", price=45.0),
    Product("k2", "Glass kettle", category="Home > Kitchen > Kettles", brand="Brewly", price=20.0),
    Product("k3", "Copper kettle", category="Home > Kitchen > Kettles", brand="Nordhaus", price=90.0),
    Product("m1", "Ceramic mug", category="Home > Kitchen > Mugs", brand="Nordhaus", price=9.0),
    Product("m2", "Travel mug", category="Home > Kitchen > Mugs", brand="Brewly", price=15.0),
    Product("t1", "Plush dinosaur", category="Toys > Plush > Animals", brand="Playwell", price=15.0),
    Product("t2", "Plush bear", category="Toys > Plush > Animals", brand="Playwell", price=25.0),
    Product("c1", "Two-person tent", category="Sports > Camping > Tents", brand="Trailhead", price=120.0),
    Product("c2", "Camping lantern", category="Sports > Camping > Lanterns", brand="Trailhead", price=30.0),
    Product("x1", "Mystery box", category="", brand="", price=float("nan")),
]
POS = {p.item_id: i for i, p in enumerate(CATALOGUE)}


@pytest.fixture
def table() -> ProductTable:
    return ProductTable(CATALOGUE)


def at(*ids: str) -> list[int]:
    return [POS[i] for i in ids]


def order(profile: SearchProfile, table: ProductTable, candidates: list[int], vectors=None) -> list[str]:
    scores = profile.score(profile.features(table, np.asarray(candidates), vectors))
    return [CATALOGUE[candidates[i]].item_id for i in np.lexsort((candidates, -scores))]


def test_two_shoppers_with_different_histories_order_the_same_candidates_differently(table):
    candidates = at("k1", "m1", "t1", "t2", "c2")  # what a vague query ("gift") might bring
    kitchen = SearchProfile.from_history(table, at("k2", "m2", "k1"))
    toys = SearchProfile.from_history(table, at("t2", "t1"))
    kitchen_order, toys_order = order(kitchen, table, candidates), order(toys, table, candidates)
    assert kitchen_order != toys_order
    assert set(kitchen_order[:2]) == {"k1", "m1"}
    assert set(toys_order[:2]) == {"t1", "t2"}


def test_empty_history_changes_nothing(table):
    empty = SearchProfile.from_history(table, [])
    assert empty.empty and empty.weight == 0.0
    features = empty.features(table, np.arange(len(table)), None)
    assert set(features) == set(FEATURES)
    assert all(not v.any() for v in features.values())
    assert np.array_equal(empty.score(features), np.zeros(len(table)))
    assert empty.describe()["top_categories"] == [] and empty.describe()["price_band"] is None


def test_recent_items_weigh_more(table):
    w = recency_weights(21, half_life=10)
    assert w.sum() == pytest.approx(1.0) and w[-1] == pytest.approx(2 * w[-11]) and w[-1] == pytest.approx(4 * w[0])
    toys_then_camping = SearchProfile.from_history(table, at("t1", "t2", "c1", "c2"), half_life=1)
    f = toys_then_camping.features(table, np.asarray(at("t1", "c1")), None)
    assert f["personal_category"][1] > f["personal_category"][0]
    assert toys_then_camping.describe()["top_categories"][0]["name"].startswith("Sports > Camping")


def test_category_affinity_credits_shared_levels(table):
    profile = SearchProfile.from_history(table, at("k1", "k2"))
    f = profile.features(table, np.asarray(at("k3", "m1", "t1", "x1")), None)["personal_category"]
    assert f[0] == pytest.approx(1.0)  # same leaf
    assert f[1] == pytest.approx(2 / 3)  # Home > Kitchen shared, leaf not
    assert f[2] == 0.0 and f[3] == 0.0  # another tree; no category


def test_price_band_carries_to_categories_never_bought(table):
    """A shopper who buys the cheap end prefers the cheap end elsewhere too (price relative to its category)."""
    budget = SearchProfile.from_history(table, at("k2", "m1"))  # cheapest kettle, cheapest mug
    premium = SearchProfile.from_history(table, at("k3", "m2"))
    assert budget.describe()["price_band"]["band"] == "budget"
    assert premium.describe()["price_band"]["band"] == "premium"
    toys = np.asarray(at("t1", "t2"))  # 15 and 25: the cheap and the dear plush animal
    assert np.argmax(budget.features(table, toys, None)["personal_price"]) == 0
    assert np.argmax(premium.features(table, toys, None)["personal_price"]) == 1
    assert budget.features(table, np.asarray(at("x1")), None)["personal_price"][0] == 0.5  # no price: neutral


def test_relative_prices_follow_upserts(table):
    rel = relative_prices(table)
    assert rel[POS["k2"]] == pytest.approx(0.5 / 3) and rel[POS["k3"]] == pytest.approx(2.5 / 3)
    assert np.isnan(rel[POS["x1"]])
    table.upsert([Product("k2", "Glass kettle", category="Home > Kitchen > Kettles", brand="Brewly", price=200.0)])
    assert relative_prices(table)[POS["k2"]] == pytest.approx(2.5 / 3)
    table.upsert([Product("k2", "Glass kettle", category="Home > Kitchen > Glass", brand="Brewly", price=200.0)])
    assert relative_prices(table)[POS["k2"]] == pytest.approx(0.5)  # alone in its new category
    assert relative_prices(table)[POS["k3"]] == pytest.approx(1.5 / 2)


def test_brand_and_text_vector_features(table, rng):
    vectors = rng.normal(size=(len(table), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    profile = SearchProfile.from_history(table, at("m1", "k1"), vectors)
    f = profile.features(table, np.asarray(at("k3", "k2", "m1")), vectors)
    assert f["personal_brand"].tolist() == [1.0, 0.0, 1.0]  # Nordhaus is the only brand bought
    mean = vectors[at("m1", "k1")].T @ recency_weights(2)
    expected = np.clip(vectors[at("k3", "k2", "m1")] @ (mean / np.linalg.norm(mean)), 0, 1)
    assert f["personal_vector"] == pytest.approx(expected, abs=1e-6)
    assert "personal_vector" in profile.active()
    without = profile.features(table, np.asarray(at("k3", "k2", "m1")), None)
    assert not without["personal_vector"].any()


def test_past_queries_shape_the_profile(table):
    """Searched for tents: camping products gain, with no history item at all."""
    profile = SearchProfile.from_history(table, [], queries=["two person tents", "camping lantern"])
    assert not profile.empty and profile.weight > 0
    f = profile.features(table, np.asarray(at("c1", "c2", "k1")), None)["personal_query"]
    assert f[0] > 0 and f[1] > 0 and f[2] == 0
    assert order(profile, table, at("k1", "c1"))[0] == "c1"


@pytest.mark.parametrize("positions", [[0, 99], [-1], [0.5]])
def test_bad_positions_are_clear_errors(table, positions):
    with pytest.raises(ShoprecError, match="positions"):
        SearchProfile.from_history(table, positions)


def test_bad_weight_is_a_clear_error(table):
    with pytest.raises(ShoprecError, match="weight must be in"):
        SearchProfile.from_history(table, [0], weight=1.5)
    profile = SearchProfile.from_history(table, [0])
    with pytest.raises(ShoprecError, match="one value per candidate"):
        profile.score({"personal_category": np.zeros(2), "personal_brand": np.zeros(3)})


@settings(max_examples=60, deadline=None)
@given(
    history=st.lists(st.integers(0, len(CATALOGUE) - 1), max_size=25),
    candidates=st.lists(st.integers(0, len(CATALOGUE) - 1), max_size=15),
    queries=st.lists(st.sampled_from(["tent", "kettle", "", "毛绒玩具", "nordhaus mug", "!!"]), max_size=4),
    seed=st.integers(0, 2**16),
    with_vectors=st.booleans(),
)
def test_features_and_scores_stay_in_unit_interval(history, candidates, queries, seed, with_vectors):
    table = ProductTable(CATALOGUE)
    vectors = np.random.default_rng(seed).normal(size=(len(table), 4)).astype(np.float32) if with_vectors else None
    profile = SearchProfile.from_history(table, history, vectors, queries)
    features = profile.features(table, np.asarray(candidates, dtype=np.int64), vectors)
    assert set(features) == set(FEATURES)
    for values in features.values():
        assert values.shape == (len(candidates),)
        assert np.all((values >= 0) & (values <= 1))
    score = profile.score(features)
    assert score.shape == (len(candidates),) and np.all((score >= 0) & (score <= 1))
    if not history and not any(q.strip("! ") for q in queries):
        assert profile.weight == 0 and not score.any()


def test_items_seen_before_and_feature_weights(table):
    profile = SearchProfile.from_history(table, at("k1", "m1", "k1"))
    f = profile.features(table, np.asarray(at("k1", "m1", "k2")), None)
    assert f["personal_item"][0] == pytest.approx(1.0) and 0 < f["personal_item"][1] < 1 and f["personal_item"][2] == 0
    assert "personal_item" not in {k for k, w in profile.active().items() if w > 0}  # off by default
    only_items = SearchProfile.from_history(
        table, at("k1", "m1", "k1"), weights=FeatureWeights(category=0, brand=0, price=0, vector=0, query=0, item=1)
    )
    assert only_items.score(f) == pytest.approx(f["personal_item"])
    with pytest.raises(ShoprecError, match="feature weights"):
        FeatureWeights(category=-1)


def test_the_engine_orders_one_query_differently_for_two_shoppers(table):
    from shoprec.search.hybrid import SearchEngine

    engine = SearchEngine(table)
    anonymous = [h.item_id for h in engine.search("kettle", k=3).hits]
    budget = SearchProfile.from_history(table, at("k2", "m1", "k2"))  # the cheapest kettle and mug, Brewly
    premium = SearchProfile.from_history(table, at("k3", "m2", "k3"))  # the dearest kettle and mug
    budget_order = [h.item_id for h in engine.search("kettle", k=3, profile=budget).hits]
    premium_order = [h.item_id for h in engine.search("kettle", k=3, profile=premium).hits]
    assert set(budget_order) == set(premium_order) == {"k1", "k2", "k3"}
    assert budget_order != premium_order
    assert budget_order[0] == "k2" and premium_order[0] == "k3"
    empty = SearchProfile.from_history(table, [])
    assert [h.item_id for h in engine.search("kettle", k=3, profile=empty).hits] == anonymous
