"""UserProfiles: decayed weighted means with known answers, incremental update = rebuild, describe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shoprec.data.frames import dataset_from_frames
from shoprec.errors import DataError, ModelError
from shoprec.text.encoders import Encoder
from shoprec.text.profiles import UserProfiles
from shoprec.timeunits import DAY

T0 = 1_700_000_000
CATEGORIES = {
    "m": "Home & Kitchen > Kitchen > Mugs",
    "h": "Electronics > Audio > Headphones",
    "s": "Fashion > Basics > Socks",
}


def catalog() -> pd.DataFrame:
    """Three items per category: m0-m2 (mugs, price 5-7), h0-h2 (headphones, 50-70), s0-s2 (socks, 3-5)."""
    rows = []
    for prefix, path in CATEGORIES.items():
        base = {"m": 5.0, "h": 50.0, "s": 3.0}[prefix]
        for j in range(3):
            rows.append(
                {"item_id": f"{prefix}{j}", "title": f"{path} {j}", "category": path, "price": base * (1 + j / 5)}
            )
    return pd.DataFrame(rows)


def basis_vectors(rng: np.random.Generator, n_items: int = 9, dim: int = 8) -> np.ndarray:
    """Items of category c point near axis c (mugs 0, headphones 1, socks 2), with a little noise."""
    vectors = np.zeros((n_items, dim), dtype=np.float32)
    vectors[np.arange(n_items), np.arange(n_items) // 3] = 1.0
    vectors += 0.05 * rng.standard_normal((n_items, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp"])


def build(rows: list[tuple], vectors: np.ndarray, **settings) -> tuple[UserProfiles, object]:
    dataset = dataset_from_frames(catalog(), events_frame(rows))
    return UserProfiles.build(dataset, vectors, **settings), dataset


def random_events(rng: np.random.Generator, users: list[str], n: int) -> list[tuple]:
    items = catalog()["item_id"].tolist()
    kinds = ["view", "click", "cart", "purchase"]
    return [
        (str(rng.choice(users)), str(rng.choice(items)), str(rng.choice(kinds)), int(T0 + rng.integers(0, 90 * DAY)))
        for _ in range(n)
    ]


class KeywordEncoder(Encoder):
    """A fake 8-d encoder: texts mentioning mug/headphone/sock map to axis 0/1/2, others to axis 7."""

    name, dim = "keywords", 8

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            hits = [axis for axis, word in enumerate(("mug", "headphone", "sock")) if word in text.lower()]
            out[row, hits or [7]] = 1.0
        return out


def test_profile_is_the_decayed_event_weighted_mean(rng):
    vectors = basis_vectors(rng)
    rows = [("u", "m0", "purchase", T0 + 60 * DAY), ("u", "h0", "view", T0 + 30 * DAY), ("u", "s0", "click", T0)]
    profiles, data = build(rows, vectors, half_life_days=30)
    m0, h0, s0 = data.item_vocab.index(["m0", "h0", "s0"])
    weights = np.array([8.0, 1.0 * 0.5, 2.0 * 0.25])  # purchase now, view 1 half-life ago, click 2 half-lives ago
    expected = weights @ vectors[[m0, h0, s0]] / weights.sum()
    np.testing.assert_allclose(profiles.means()[0], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(profiles.vectors()[0], expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    assert profiles.vectors()[0] @ vectors[m0] > 0.95  # near what the user bought
    assert profiles.last_time[0] == T0 + 60 * DAY


def test_profile_vectors_point_at_the_users_main_category(rng):
    vectors = basis_vectors(rng)
    rows = random_events(rng, ["a", "b"], 30) + [("mugfan", f"m{j}", "purchase", T0 + j * DAY) for j in range(3)]
    rows += [("mugfan", "h1", "view", T0)]
    profiles, data = build(rows, vectors)
    row = profiles.index_of("mugfan")
    centroids = np.stack([vectors[data.item_vocab.index([f"{p}{j}" for j in range(3)])].mean(0) for p in "mhs"])
    assert np.argmax(centroids @ profiles.vectors()[row]) == 0
    np.testing.assert_allclose(np.linalg.norm(profiles.vectors(), axis=1), 1.0, rtol=1e-5)


def test_incremental_update_equals_rebuilding_from_scratch(rng):
    vectors = basis_vectors(rng)
    rows = random_events(rng, ["a", "b", "c", "d"], 80)
    cutoff = T0 + 60 * DAY
    old = [r for r in rows if r[3] < cutoff]
    new = [r for r in rows if r[3] >= cutoff] + [("newbie", "h2", "click", T0 + 70 * DAY), ("newbie", "h0", "view", T0)]
    profiles, _ = build(old, vectors, half_life_days=20)
    for user in sorted({r[0] for r in new}):
        mine = events_frame([r for r in new if r[0] == user]).drop(columns="user_id")
        for part in np.array_split(np.arange(len(mine)), 2):  # two calls, so a decay step lies between them
            if len(part):
                profiles.update(user, mine.iloc[part])
    rebuilt, _ = build(old + new, vectors, half_life_days=20)
    assert len(profiles) == len(rebuilt) == 5
    for user in ["a", "b", "c", "d", "newbie"]:
        mine, theirs = profiles.index_of(user), rebuilt.index_of(user)
        np.testing.assert_allclose(profiles.means()[mine], rebuilt.means()[theirs], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(profiles.vectors()[mine], rebuilt.vectors()[theirs], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(profiles.weights[mine], rebuilt.weights[theirs], rtol=1e-9)
        assert profiles.last_time[mine] == rebuilt.last_time[theirs]
        mine_top, their_top = profiles.top_categories(user), rebuilt.top_categories(user)
        assert [c for c, _ in mine_top] == [c for c, _ in their_top]
        np.testing.assert_allclose([s for _, s in mine_top], [s for _, s in their_top], rtol=1e-6)
        assert profiles.price_band(user) == pytest.approx(rebuilt.price_band(user))
    assert profiles.n_events[profiles.index_of("newbie")] == 2


def test_a_brand_new_user_with_one_click_gets_a_profile(rng):
    vectors = basis_vectors(rng)
    profiles, data = build(random_events(rng, ["a"], 10), vectors)
    row = profiles.update("visitor", pd.DataFrame({"item_id": ["s1"]}))
    s1 = data.item_vocab.index(["s1"])[0]
    np.testing.assert_allclose(profiles.vectors()[row], vectors[s1], rtol=1e-5, atol=1e-6)
    assert profiles.top_categories("visitor") == [(CATEGORIES["s"], 1.0)]
    assert "too little data" in profiles.describe("visitor").lower()
    assert "数据太少" in profiles.describe("visitor", lang="zh")
    with pytest.raises(DataError, match="unknown item_id 'nope'"):
        profiles.update("visitor", pd.DataFrame({"item_id": ["nope"]}))
    with pytest.raises(DataError, match="unknown event"):
        profiles.update("visitor", pd.DataFrame({"item_id": ["s1"], "event": ["wishlist"]}))
    with pytest.raises(ModelError, match="unknown user"):
        profiles.describe("ghost")


def test_describe_names_the_main_category_in_both_languages(rng):
    vectors = basis_vectors(rng)
    rows = [("u", "m0", "purchase", T0), ("u", "m1", "purchase", T0 + DAY), ("u", "m2", "cart", T0 + 2 * DAY)]
    rows += [("u", "h0", "view", T0), ("w", "h1", "view", T0), ("w", "h2", "view", T0), ("w", "h0", "click", T0)]
    profiles, _ = build(rows, vectors, currency="GBP")
    english = profiles.describe("u")
    assert english.startswith("Mostly buys mugs") and "GBP 5.2-5.8" in english and "headphones" not in english
    chinese = profiles.describe("u", lang="zh", labels={"Mugs": "马克杯"})
    assert chinese.startswith("主要购买马克杯") and "英镑" in chinese
    assert "Mugs" in profiles.describe("u", lang="zh")  # no label: the catalogue's own name
    assert profiles.describe("w").startswith("Mostly browses headphones")
    assert profiles.price_band("u") == pytest.approx((5.0 + 0.2 * 1.0, 5.0 + 0.8 * 1.0))  # bought m0, m1 only
    with pytest.raises(ModelError, match="lang"):
        profiles.describe("u", lang="fr")


def test_tags_are_weighted_like_categories(rng):
    vectors = basis_vectors(rng)
    tags = [
        ["ceramic"],
        ["ceramic", "blue"],
        ["enamel"],
        ["wireless"],
        ["wireless"],
        ["wireless"],
        ["wool"],
        [],
        ["wool"],
    ]
    rows = [("u", "m0", "purchase", T0), ("u", "m1", "purchase", T0), ("u", "h0", "view", T0)]
    dataset = dataset_from_frames(catalog(), events_frame(rows))
    profiles = UserProfiles.build(dataset, vectors, tags=tags)
    top = profiles.top_tags("u", 2)
    assert [t for t, _ in top] == ["ceramic", "blue"]
    assert top[0][1] == pytest.approx(16 / (16 + 8 + 1))
    assert "(ceramic, blue, wireless)" in profiles.describe("u")


def test_queries_pull_the_profile_towards_their_text(rng):
    vectors = basis_vectors(rng)
    inter = events_frame([("u", "m0", "view", T0), ("v", "m1", "view", T0)])
    queries = pd.DataFrame(
        {"user_id": ["u", "stranger"], "query": ["wireless headphones", "socks"], "timestamp": [T0 + 30 * DAY, T0]}
    )
    dataset = dataset_from_frames(catalog(), inter, queries=queries)
    encoder = KeywordEncoder()
    profiles = UserProfiles.build(dataset, vectors, encoder=encoder, query_weight=3.0)
    m0 = dataset.item_vocab.index(["m0"])[0]
    # the query came one half-life after the view, so the view counts 1 * 0.5 against the query's 3
    expected = (0.5 * vectors[m0] + 3.0 * np.eye(8, dtype=np.float32)[1]) / 3.5
    np.testing.assert_allclose(profiles.means()[profiles.index_of("u")], expected, rtol=1e-5, atol=1e-6)
    assert profiles.report == {"queries_used": 1, "queries_of_users_without_events": 1}
    profiles.update("v", queries=["sock drawer"])
    assert profiles.vectors()[profiles.index_of("v")][2] > 0.5
    without = UserProfiles.build(dataset, vectors)  # no encoder: queries are skipped and counted
    assert without.report == {"queries_skipped_no_encoder": 2}
    with pytest.raises(ModelError, match="encoder"):
        without.update("v", queries=["mug"])


def test_save_and_load_round_trip_keeps_updating(rng, tmp_path):
    vectors = basis_vectors(rng)
    profiles, _ = build(random_events(rng, ["a", "b", "c"], 40), vectors, currency="EUR")
    profiles.update("new", pd.DataFrame({"item_id": ["m1", "m2"], "event": ["cart", "purchase"]}))
    loaded = UserProfiles.load(profiles.save(tmp_path / "profiles"))
    assert loaded.user_ids == profiles.user_ids and loaded.settings == profiles.settings
    np.testing.assert_array_equal(loaded.vectors(), profiles.vectors())
    for user in ["a", "new"]:
        assert loaded.describe(user) == profiles.describe(user)
    later = pd.DataFrame({"item_id": ["h1"], "event": ["purchase"], "timestamp": [T0 + 100 * DAY]})
    profiles.update("a", later)
    loaded.update("a", later)
    np.testing.assert_allclose(loaded.means(), profiles.means(), rtol=1e-6)
    assert not list(tmp_path.rglob("*.pkl"))
    with np.load(tmp_path / "profiles" / "profiles.npz", allow_pickle=False) as npz:
        assert "sums" in npz.files and "touched.data" in npz.files


def test_a_user_without_events_in_a_subset_has_an_empty_profile(rng):
    vectors = basis_vectors(rng)
    dataset = dataset_from_frames(catalog(), events_frame(random_events(rng, ["a", "b"], 20)))
    train = dataset.subset(dataset.interactions["user"].to_numpy() != 0)
    profiles = UserProfiles.build(train, vectors)
    assert len(profiles) == 2 and profiles.n_events[0] == 0 and profiles.last_time[0] == 0
    np.testing.assert_array_equal(profiles.vectors()[0], 0.0)
    assert profiles.top_categories(0) == [] and profiles.price_band(0) is None
    assert "0 events" in profiles.describe(0)
