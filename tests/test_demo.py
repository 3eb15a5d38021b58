"""The demo shop generator: deterministic, schema-clean, and its planted structure is really there."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shoprec.data.demo import PRESETS, DemoShop, generate_demo_shop, generate_preset
from shoprec.data.demo.words import LEAVES
from shoprec.data.io import load_folder
from shoprec.timeunits import DAY

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def small() -> DemoShop:
    return generate_preset("small", seed=3)


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    """The default-size shop, generated once for the module (about a second)."""
    return generate_demo_shop(seed=7)


@pytest.fixture(scope="module")
def dataset(shop):
    return shop.to_dataset()


def _category(shop: DemoShop) -> pd.Series:
    return pd.Series(shop.items["category"].to_numpy(), index=shop.items["item_id"])


def _frames_equal(a: DemoShop, b: DemoShop) -> None:
    for name, frame in a.frames().items():
        pd.testing.assert_frame_equal(frame, b.frames()[name])
    assert a.truth == b.truth


def test_same_seed_gives_identical_shop_and_other_seed_differs(small):
    _frames_equal(small, generate_preset("small", seed=3))
    other = generate_preset("small", seed=4)
    assert not other.interactions.equals(small.interactions)
    assert not other.items["title"].equals(small.items["title"])


def test_bad_sizes_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="n_items must be at least"):
        generate_demo_shop(n_items=10)
    with pytest.raises(ValueError, match="days must be at least"):
        generate_demo_shop(n_items=300, n_users=10, days=5)
    with pytest.raises(ValueError, match="unknown demo shop size"):
        generate_preset("huge")


def test_small_preset_is_fast_and_complete():
    began = time.perf_counter()
    small = generate_preset("small", seed=11)
    assert time.perf_counter() - began < 2.0  # measured about 0.1 s
    assert len(small.items) == PRESETS["small"]["n_items"]
    assert small.interactions["user_id"].nunique() == PRESETS["small"]["n_users"]  # every shopper shows up
    assert 3_000 < len(small.interactions) < 30_000
    assert len(small.queries) > 50 and len(small.reviews) > 10


def test_to_dataset_keeps_every_row_and_reports_clean(shop, dataset):
    report = dataset.report
    assert report.dropped_total() == 0
    for table, frame in shop.frames().items():
        assert report.rows_read[table] == len(frame)
        assert report.rows_kept[table] == len(frame)
    assert dataset.n_items == len(shop.items) == 3000
    assert dataset.n_users == 2000
    assert set(dataset.items["language"]) == {"en", "zh"}
    assert dataset.interactions["session_id"].notna().all()


def test_default_size_counts_are_in_range(shop, dataset):
    facts = dataset.describe()
    assert 100_000 <= facts["interactions"] <= 250_000
    assert facts["items_with_events"] > 0.95 * facts["items"]
    assert facts["baskets"] > 3_000
    per_user = dataset.sequences().lengths()
    assert per_user.max() > 10 * np.median(per_user)  # heavy-tailed activity
    per_item = np.bincount(dataset.interactions["item"], minlength=dataset.n_items)
    top = np.sort(per_item)[::-1]
    assert top[: len(top) // 10].sum() > 0.35 * top.sum()  # long-tailed popularity: top 10% of items


def test_funnel_narrows_and_every_purchase_was_carted(shop):
    events = shop.interactions
    counts = events["event"].value_counts()
    assert counts["view"] > counts["click"] > counts["cart"] > counts["purchase"] > 0
    buys = events[events["event"] == "purchase"]
    carts = events[events["event"] == "cart"].groupby(["user_id", "item_id"])["timestamp"].min()
    first_cart = carts.reindex(pd.MultiIndex.from_frame(buys[["user_id", "item_id"]])).to_numpy()
    assert not np.isnan(first_cart).any()
    assert (first_cart <= buys["timestamp"].to_numpy()).all()


def test_sessions_and_orders_are_labelled(shop):
    events = shop.interactions
    is_buy = events["event"] == "purchase"
    assert events.loc[is_buy, "session_id"].str.startswith("O").all()
    assert events.loc[~is_buy, "session_id"].str.startswith("S").all()
    assert (events.groupby("session_id")["user_id"].nunique() == 1).all()  # a session or order has one shopper
    assert events["timestamp"].is_monotonic_increasing


def test_about_a_quarter_of_items_are_chinese_and_written_in_chinese(shop):
    items = shop.items
    zh = items["language"] == "zh"
    assert 0.2 < zh.mean() < 0.3
    assert items.loc[zh, "title"].str.contains(CJK).all()
    assert items.loc[zh, "description"].str.contains(CJK).all()
    assert not items.loc[~zh, "title"].str.contains(CJK).any()


def test_titles_name_their_leaf_and_same_leaf_titles_are_alike(shop):
    items = shop.items
    leaf_of = {leaf.path: leaf for leaf in LEAVES}
    for title, category, language in items[["title", "category", "language"]].itertuples(index=False):
        nouns = getattr(leaf_of[category], language).nouns
        assert any(noun.lower() in title.lower() for noun in nouns), title
    assert items["title"].nunique() > 0.95 * len(items)
    en = items[items["language"] == "en"]
    words = [set(re.findall(r"[a-z]{3,}", t.lower())) for t in en["title"]]
    leaf = en["category"].to_numpy()
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, len(en), (2, 4000))
    jaccard = np.array([len(words[i] & words[j]) / len(words[i] | words[j]) for i, j in zip(a, b, strict=True)])
    same = leaf[a] == leaf[b]
    assert jaccard[same & (a != b)].mean() > 3 * jaccard[~same].mean()


def test_prices_follow_their_leaf(shop):
    items = shop.items
    median = items.groupby("category")["price"].median()
    assert median["Electronics > Cameras > Digital Cameras"] > 10 * median["Electronics > Accessories > Batteries"]
    assert (items["price"] > 0).all()


def _basket_matrix(dataset) -> sp.csr_matrix:
    baskets = dataset.baskets()
    rows = np.repeat(np.arange(len(baskets)), baskets.sizes())
    return sp.csr_matrix((np.ones(len(rows)), (rows, baskets.items)), shape=(len(baskets), dataset.n_items))


def test_complement_groups_are_bought_together_far_above_chance(shop, dataset):
    groups = [dataset.item_vocab.index(g) for g in shop.truth["complement_groups"]]
    assert 60 <= len(groups) <= 150
    assert all(2 <= len(g) <= 4 for g in groups)
    baskets = _basket_matrix(dataset)
    co = (baskets.T @ baskets).tocsr()
    bought = np.asarray(baskets.sum(axis=0)).ravel()
    n = baskets.shape[0]

    def lift(a: np.ndarray, b: np.ndarray) -> float:
        observed = np.asarray(co[a, b]).ravel().sum()
        return observed / (bought[a] * bought[b] / n).sum()

    pairs = np.array([(g[i], g[j]) for g in groups for i in range(len(g)) for j in range(i + 1, len(g))])
    assert lift(pairs[:, 0], pairs[:, 1]) > 30
    together = [co[g[0], g[1:]].sum() > 0 for g in groups]
    assert np.mean(together) > 0.8
    # Control: random pairs of bought items co-occur about as chance says.
    rng = np.random.default_rng(1)
    pool = np.flatnonzero(bought > 0)
    a, b = rng.choice(pool, 5000), rng.choice(pool, 5000)
    assert lift(a[a != b], b[a != b]) < 5


def test_complement_groups_span_different_categories(shop):
    category = _category(shop)
    leaves = [category[g].tolist() for g in shop.truth["complement_groups"]]
    assert all(len(set(c)) == len(c) for c in leaves)
    tops = [{path.split(" > ")[0] for path in c} for c in leaves]
    assert np.mean([len(t) > 1 for t in tops]) > 0.4
    assert shop.truth["complement_categories"] == leaves


def test_purchases_concentrate_in_each_shoppers_taste(shop):
    tastes = shop.truth["user_tastes"]
    buys = shop.interactions[shop.interactions["event"] == "purchase"]
    top = _category(shop)[buys["item_id"]].str.split(" > ").str[0].to_numpy()
    liked = np.array([t in tastes[u]["categories"] for u, t in zip(buys["user_id"], top, strict=True)])
    share_of_catalog = _category(shop).str.split(" > ").str[0].value_counts(normalize=True).to_dict()
    chance_of = {u: sum(share_of_catalog[c] for c in t["categories"]) for u, t in tastes.items()}
    chance = buys["user_id"].map(chance_of).to_numpy()
    assert liked.mean() > 0.65
    assert liked.mean() > chance.mean() + 0.3
    band = pd.Series(shop.truth["item_price_band"])[buys["item_id"]].to_numpy()
    own = np.array([tastes[u]["price_band"] for u in buys["user_id"]])
    assert (band == own).mean() > 0.45  # chance is a third


def test_consecutive_views_stay_in_a_leaf(shop):
    views = shop.interactions[shop.interactions["event"] == "view"]
    leaf = _category(shop)[views["item_id"]].to_numpy()
    session = views["session_id"].to_numpy()
    follows = session[1:] == session[:-1]
    same = (leaf[1:] == leaf[:-1])[follows].mean()
    chance = (pd.Series(leaf).value_counts(normalize=True) ** 2).sum()
    assert same > 0.6 > 4 * chance


def test_repeat_purchases_are_a_small_share_and_mostly_consumables(shop):
    buys = shop.interactions[shop.interactions["event"] == "purchase"]
    repeat = buys.duplicated(["user_id", "item_id"])
    assert 0.03 < repeat.mean() < 0.25
    consumables = set(shop.truth["consumable_categories"])
    assert _category(shop)[buys.loc[repeat, "item_id"]].isin(consumables).mean() > 0.7


def test_queries_describe_the_clicked_item(shop):
    queries = shop.queries.dropna(subset=["item_id"]).merge(shop.items[["item_id", "title"]], on="item_id")
    assert len(queries) > 0.85 * len(shop.queries.dropna(subset=["item_id"]))

    def matches(query: str, title: str) -> bool:
        title = title.lower()
        if CJK.search(query):
            return any(query[i : i + 2] in title for i in range(len(query) - 1))
        return any(word in title for word in query.split() if len(word) >= 3)

    hit = [matches(q, t) for q, t in zip(queries["query"], queries["title"], strict=True)]
    assert np.mean(hit) > 0.9
    clicks = shop.interactions[shop.interactions["event"] == "click"]
    clicked = pd.MultiIndex.from_frame(clicks[["user_id", "item_id"]])
    assert pd.MultiIndex.from_frame(queries[["user_id", "item_id"]]).isin(clicked).all()
    assert shop.queries["item_id"].isna().mean() < 0.2
    assert shop.queries["query"].str.contains(CJK).mean() > 0.1


def test_reviews_follow_purchases_in_the_items_language(shop):
    reviews = shop.reviews.merge(shop.items[["item_id", "language"]], on="item_id")
    assert reviews["rating"].between(1, 5).all()
    assert reviews["rating"].mean() > 3.5
    assert (reviews["text"].str.contains(CJK) == (reviews["language"] == "zh")).all()
    buys = shop.interactions[shop.interactions["event"] == "purchase"]
    first = buys.groupby(["user_id", "item_id"])["timestamp"].min()
    bought = first.reindex(pd.MultiIndex.from_frame(reviews[["user_id", "item_id"]])).to_numpy()
    assert (bought < reviews["timestamp"].to_numpy()).all()


def test_new_items_launch_late_and_nothing_happens_before_launch(shop):
    end = shop.truth["period"]["end"]
    created = pd.Series(shop.items["created_at"].to_numpy(), index=shop.items["item_id"])
    new = shop.truth["new_items"]
    assert 0.02 * len(created) < len(new) < 0.12 * len(created)
    assert (created[new] >= end - 14 * DAY).all()
    events = shop.interactions
    assert (events["timestamp"].to_numpy() >= created[events["item_id"]].to_numpy()).all()


def test_traffic_has_a_weekly_and_daily_rhythm(shop):
    when = pd.to_datetime(shop.interactions["timestamp"], unit="s")
    per_day = when.dt.floor("D").value_counts()
    weekend = per_day[per_day.index.day_of_week >= 5].mean()
    assert weekend > 1.1 * per_day[per_day.index.day_of_week < 5].mean()
    hours = when.dt.hour.value_counts()
    assert hours[[19, 20, 21]].sum() > 3 * hours[[2, 3, 4]].sum()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_write_round_trips_through_load_folder(small, tmp_path, fmt):
    folder = small.write(tmp_path / "shop", fmt=fmt)
    loaded = load_folder(folder)
    direct = small.to_dataset()
    assert loaded.report.dropped_total() == 0
    assert (loaded.n_users, loaded.n_items, len(loaded)) == (direct.n_users, direct.n_items, len(direct))
    assert loaded.fingerprint() == direct.fingerprint()
    assert len(loaded.queries) == len(small.queries) and len(loaded.reviews) == len(small.reviews)
    assert json.loads((folder / "truth.json").read_text()) == small.truth


@pytest.mark.benchmark
def test_default_size_generates_in_under_ten_seconds():
    began = time.perf_counter()
    generate_demo_shop(seed=1)
    assert time.perf_counter() - began < 10.0  # measured about 1 s on 2 cores


def _longest_noun(text: str, nouns: tuple[str, ...]) -> int:
    """Index of the longest noun of the leaf found in ``text`` (-1 when none is)."""
    found = [(len(noun), j) for j, noun in enumerate(nouns) if noun.lower() in text.lower()]
    return max(found)[1] if found else -1


@pytest.mark.parametrize("size", ["small", "default"])
def test_twins_pair_an_english_and_a_chinese_listing_of_one_product(size, small, shop):
    shop = small if size == "small" else shop
    twins = shop.truth["twins"]
    assert len(twins) == round(0.1 * len(shop.items))
    en_ids, zh_ids = zip(*twins, strict=True)
    assert len(set(en_ids) | set(zh_ids)) == 2 * len(twins)  # no item is in two pairs
    items = shop.items.set_index("item_id")
    en, zh = items.loc[list(en_ids)], items.loc[list(zh_ids)]
    assert (en["language"] == "en").all() and (zh["language"] == "zh").all()
    for column in ("category", "brand", "material"):
        assert (en[column].to_numpy() == zh[column].to_numpy()).all(), column
    assert (en["colour"].fillna("-").to_numpy() == zh["colour"].fillna("-").to_numpy()).all()
    ratio = zh["price"].to_numpy() / en["price"].to_numpy()
    assert ((ratio > 0.75) & (ratio < 1.33)).all()
    assert zh["title"].str.contains(CJK).all() and zh["description"].str.contains(CJK).all()


def test_twin_texts_are_translations_not_just_the_same_leaf(shop):
    items = shop.items.set_index("item_id")
    leaf_of = {leaf.path: leaf for leaf in LEAVES}

    def same_noun(en_id: str, zh_id: str) -> bool:
        leaf = leaf_of[items.at[en_id, "category"]]
        first_sentence = items.at[en_id, "description"].split(". ")[0]
        j = _longest_noun(first_sentence, leaf.en.nouns)
        return j >= 0 and j == _longest_noun(items.at[zh_id, "description"].split("。")[0], leaf.zh.nouns)

    twins = shop.truth["twins"]
    assert all(same_noun(en_id, zh_id) for en_id, zh_id in twins)
    # Control: the next twin pair's Chinese item (another product) usually names another noun or leaf.
    shifted = [(twins[i][0], twins[(i + 1) % len(twins)][1]) for i in range(len(twins))]
    assert np.mean([same_noun(en_id, zh_id) for en_id, zh_id in shifted]) < 0.2
    # Twins are real listings: most of them are browsed like any other item.
    seen = set(shop.interactions["item_id"])
    assert np.mean([zh_id in seen for _, zh_id in twins]) > 0.9


def test_planting_twins_changes_only_the_chinese_twins(small, monkeypatch):
    """Twins have their own random stream: without them every other listing is exactly the same."""
    import shoprec.data.demo.shop as shop_module

    monkeypatch.setattr(shop_module, "plant_twins", lambda rng, catalog: np.zeros((0, 2), dtype=np.int64))
    plain = generate_preset("small", seed=3)
    assert plain.truth["twins"] == []
    zh_twins = [zh_id for _, zh_id in small.truth["twins"]]
    with_twins, without = (s.items.set_index("item_id") for s in (small, plain))
    pd.testing.assert_frame_equal(with_twins.drop(index=zh_twins), without.drop(index=zh_twins))
    changed = (with_twins.loc[zh_twins, "title"] != without.loc[zh_twins, "title"]).mean()
    assert changed > 0.9
