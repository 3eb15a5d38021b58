"""ContentRecommender: cold items from text alone, item-to-item, new visitors, multilingual search, saving.

Real encoders, loaded once per test session (the model module shares built-in encoders within a
process): ``minilm-int8`` for English, ``use-multilingual`` for the Chinese query. Catalogues are
tiny and hand-made, so the right answers are plain.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shoprec.text.vectors
from shoprec.data.frames import dataset_from_frames
from shoprec.errors import ModelError
from shoprec.models import Recommender, create_model
from shoprec.models import content as content_module
from shoprec.models.content import ContentRecommender, shared_encoder

T0 = 1_700_000_000
TITLES = {
    "mug-white": "White porcelain coffee mug, 300 ml",
    "mug-blue": "Blue stoneware coffee mug with handle",
    "mug-travel": "Insulated travel coffee mug",
    "mug-new": "Red ceramic coffee mug",  # listed today: no interactions at all
    "hp-over": "Wireless over-ear headphones with noise cancelling",
    "hp-buds": "Bluetooth in-ear earbuds with charging case",
    "sock-wool": "Merino wool hiking socks, pack of 3",
    "sock-cotton": "Cotton ankle socks for running",
    "cand-soy": "Scented soy wax candle, vanilla",
    "cand-pillar": "Unscented pillar candle, white",
}
BILINGUAL = [
    ("hp-en1", "Wireless Bluetooth over-ear headphones"),
    ("hp-en2", "Noise cancelling Bluetooth earbuds"),
    ("hp-zh1", "无线蓝牙头戴式耳机"),
    ("hp-zh2", "降噪入耳式蓝牙耳机"),
    ("mug-en", "Ceramic coffee mug 350 ml"),
    ("mug-zh", "陶瓷咖啡杯 350毫升"),
    ("sock-en", "Merino wool socks, pack of 3"),
    ("sock-zh", "羊毛袜 三双装"),
    ("cand-en", "Scented soy candle, vanilla"),
    ("cand-zh", "香薰蜡烛 香草味"),
    ("mat-en", "Yoga mat non-slip"),
    ("mat-zh", "防滑瑜伽垫"),
]


def shop_events() -> list[tuple]:
    """mugfan bought two mugs; audiophile bought headphones; walker bought socks; others browse."""
    rows = [
        ("mugfan", "mug-white", "purchase"),
        ("mugfan", "mug-blue", "purchase"),
        ("audiophile", "hp-over", "purchase"),
        ("audiophile", "hp-buds", "view"),
        ("walker", "sock-wool", "purchase"),
        ("walker", "sock-cotton", "cart"),
        ("browser", "mug-travel", "view"),
        ("browser", "cand-soy", "view"),
        ("browser", "cand-pillar", "click"),
    ]
    return [(u, i, e, T0 + n * 3600) for n, (u, i, e) in enumerate(rows)]


@pytest.fixture(scope="module")
def shop():
    items = pd.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    inter = pd.DataFrame(shop_events(), columns=["user_id", "item_id", "event", "timestamp"])
    return dataset_from_frames(items, inter, name="mugs")


@pytest.fixture(scope="module")
def model(shop) -> ContentRecommender:
    return create_model("content", encoder="minilm-int8").fit(shop)


def index_of(dataset, *ids: str) -> list[int]:
    return dataset.item_vocab.index(list(ids)).tolist()


def test_a_new_item_without_interactions_is_recommended_to_a_mug_buyer(model, shop):
    (new,) = index_of(shop, "mug-new")
    assert shop.matrix()[:, new].nnz == 0
    user = shop.user_vocab.index(["mugfan"])[0]
    items, scores = model.recommend([user], k=3)
    mugs = set(index_of(shop, "mug-new", "mug-travel"))
    assert set(items[0, :2]) == mugs, "the two unseen mugs must come before anything else"
    assert not set(items[0]) & set(index_of(shop, "mug-white", "mug-blue")), "seen items are excluded"
    assert np.isfinite(model.score(np.array([user]))[0, new])


def test_similar_items_of_a_mug_include_the_new_mug_but_not_itself(model, shop):
    white, blue, sock = index_of(shop, "mug-white", "mug-blue", "sock-wool")
    items, scores = model.similar_items([white, sock], k=3)
    assert white not in items[0] and sock not in items[1]
    assert set(items[0]) <= set(index_of(shop, "mug-new", "mug-blue", "mug-travel"))
    assert index_of(shop, "sock-cotton")[0] == items[1, 0]
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_new_visitors_by_clicks_and_by_text(model, shop):
    (buds,) = index_of(shop, "hp-buds")
    items, _ = model.recommend_for_items([[buds]], k=1)
    assert items[0, 0] == index_of(shop, "hp-over")[0]
    items, _ = model.recommend_for_text(["candles for the living room"], k=2)
    assert set(items[0]) == set(index_of(shop, "cand-soy", "cand-pillar"))
    with pytest.raises(ModelError, match="list of query texts"):
        model.recommend_for_text("a mug", k=2)
    with pytest.raises(ModelError, match="0..9"):
        model.similar_items([10], k=2)


def test_chinese_query_finds_headphones_in_english_and_chinese():
    items = pd.DataFrame({"item_id": [i for i, _ in BILINGUAL], "title": [t for _, t in BILINGUAL]})
    inter = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["mug-en", "sock-zh"], "timestamp": [T0, T0]})
    dataset = dataset_from_frames(items, inter)
    model = create_model("content").fit(dataset)  # auto: the Chinese titles select the multilingual encoder
    assert model.encoder_name == "use-multilingual"
    found, _ = model.recommend_for_text(["蓝牙耳机"], k=4)
    assert set(found[0]) == set(index_of(dataset, "hp-en1", "hp-en2", "hp-zh1", "hp-zh2"))


def test_save_and_load_need_no_re_encoding(model, shop, tmp_path, monkeypatch):
    users = np.arange(shop.n_users)
    before = model.recommend(users, k=4)
    path = model.save(tmp_path / "content")

    def refuse(*args, **kwargs):
        raise AssertionError("loading must not re-encode the catalogue")

    monkeypatch.setattr(shoprec.text.vectors, "item_vectors", refuse)
    loaded = Recommender.load(path)
    assert isinstance(loaded, ContentRecommender) and loaded.encoder_name == "minilm-int8"
    after = loaded.recommend(users, k=4)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(loaded.similar_items([0], k=3)[0], model.similar_items([0], k=3)[0])
    np.testing.assert_array_equal(loaded.recommend_for_text(["mug"], k=2)[0], model.recommend_for_text(["mug"], k=2)[0])
    assert loaded.profiles.describe("mugfan") == model.profiles.describe("mugfan")
    assert not list(tmp_path.rglob("*.pkl"))


def test_given_vectors_are_used_without_loading_an_encoder(shop, monkeypatch, rng):
    vectors = rng.standard_normal((shop.n_items, 6)).astype(np.float32)

    def refuse(*args, **kwargs):
        raise AssertionError("no encoder may be loaded when vectors are given")

    monkeypatch.setattr(content_module, "shared_encoder", refuse)
    model = ContentRecommender().set_item_vectors(vectors).fit(shop)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_vectors, unit, rtol=1e-6)
    user = 2
    np.testing.assert_allclose(model.score(np.array([user]))[0], model.user_vectors[user] @ unit.T, rtol=1e-5)
    with pytest.raises(ModelError, match="without an encoder"):
        model.recommend_for_text(["mug"], k=2)
    with pytest.raises(ModelError, match="one vector per item"):
        ContentRecommender().set_item_vectors(vectors[:3]).fit(shop)


def test_hnsw_index_gives_the_same_neighbours_on_a_tiny_catalogue(model, shop):
    hnsw = ContentRecommender(encoder="minilm-int8", exact_threshold=0).set_item_vectors(
        model.item_vectors, shared_encoder("minilm-int8")
    )
    hnsw.fit(shop)
    assert hnsw.index.kind == "hnsw" and model.index.kind == "exact"
    np.testing.assert_array_equal(hnsw.similar_items(np.arange(4), k=3)[0], model.similar_items(np.arange(4), k=3)[0])


@pytest.mark.parametrize(
    ("setting", "value"), [("half_life_days", 0.0), ("query_weight", -1.0), ("exact_threshold", -5), ("encoder", "")]
)
def test_bad_settings_are_errors(setting, value):
    with pytest.raises(ModelError, match=setting if setting != "encoder" else "encoder must be"):
        create_model("content", **{setting: value})
