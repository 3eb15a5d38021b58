"""Item texts (cleaning, fallbacks, counts) and item vectors with the content-hash cache.

One real encoder (``minilm-int8``, about a second to load) is shared by the whole session; a thin
wrapper records which texts reach it so the tests can see exactly what the cache re-encodes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from shoprec.data.frames import dataset_from_frames
from shoprec.errors import ShoprecError
from shoprec.text.encoders import Encoder, load_encoder
from shoprec.text.itemtext import PLACEHOLDER, clean_text, item_texts, truncate
from shoprec.text.vectors import VectorCache, encoder_version, item_vectors

TITLES = ["Red ceramic mug", "Blue wool socks", "Wireless headphones", "Soy wax candle", "Garden trowel"]


@pytest.fixture(scope="session")
def int8() -> Encoder:
    return load_encoder("minilm-int8")


class Recording(Encoder):
    """Delegates to a real encoder and records every text it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.seen: list[str] = []

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner._encode_batch(texts)


def shop(items: dict[str, list], reviews: pd.DataFrame | None = None):
    """A dataset from item columns; every item gets one purchase so it is a valid catalogue."""
    catalog = pd.DataFrame(items)
    events = pd.DataFrame({"user_id": "u", "item_id": catalog["item_id"], "timestamp": range(len(catalog))})
    return dataset_from_frames(catalog, events, reviews=reviews, name="tiny")


def plain(titles: list[str] = TITLES):
    return shop({"item_id": [f"i{k}" for k in range(len(titles))], "title": titles})


# ---------------------------------------------------------------------------------------- texts
def test_html_tags_and_entities_are_stripped_and_counted():
    ds = shop(
        {
            "item_id": ["a", "b"],
            "title": ["<b>Red</b> mug &amp; saucer", "Plain mug"],
            "description": ["<p>Line one<br/>line&nbsp;two</p><script>track()</script><!-- x -->", "No html < here"],
        }
    )
    texts = item_texts(ds)
    assert texts.texts[0] == "Red mug & saucer. Line one line two"
    assert texts.texts[1] == "Plain mug. No html < here"
    assert texts.report["html_stripped"] == 1


def test_whitespace_is_normalised():
    assert clean_text("  Blue\n\tcup \u3000 with\u200b lid ") == ("Blue cup with lid", False)


def test_long_text_is_truncated_at_a_word_and_counted():
    words = " ".join(f"word{k}" for k in range(500))
    ds = shop({"item_id": ["long", "short"], "title": ["Big lamp", "Small lamp"], "description": [words, "tiny"]})
    texts = item_texts(ds, max_chars=200)
    assert texts.report["truncated"] == 1
    assert len(texts.texts[0]) <= 200 and texts.texts[0].split()[-1] in words.split()
    assert texts.texts[1] == "Small lamp. tiny"
    assert truncate("abcdefghij", 4) == "abcd"  # no space to cut at (for example Chinese): hard cut


def test_empty_title_and_description_fall_back_to_category_and_brand():
    ds = shop(
        {
            "item_id": ["SKU-991", "SKU-992", "SKU-993"],
            "title": ["", None, "Teapot"],
            "description": [None, "", ""],
            "category": ["Home > Kitchen > Mugs", "", "Home > Kitchen > Tea"],
            "brand": ["Acme", "", "Acme"],
        }
    )
    texts = item_texts(ds)
    assert texts.texts == ["Home > Kitchen > Mugs. Acme", PLACEHOLDER, "Teapot. Home > Kitchen > Tea. Acme"]
    assert texts.report["empty_text_fallback"] == 1
    assert texts.report["placeholder"] == 1
    assert texts.report["missing_title"] == 2 and texts.report["missing_description"] == 3
    assert "SKU" not in texts.texts[1]


def test_brand_already_in_title_is_not_repeated():
    ds = shop({"item_id": ["a"], "title": ["Acme steel kettle"], "brand": ["ACME"]})
    assert item_texts(ds).texts == ["Acme steel kettle"]


def test_mixed_languages_and_emoji_pass_through():
    title = "有机绿茶 Organic green tea 🍵"
    description = "Ça va très bien — ☕️ Grüße, 한국어 OK"
    ds = shop({"item_id": ["t"], "title": [title], "description": [description]})
    texts = item_texts(ds)
    assert texts.texts == [f"{title}. {description}"]
    assert texts.report["with_emoji"] == 1 and texts.report["html_stripped"] == 0


def test_review_digest_is_bounded_and_most_helpful_then_recent_first():
    reviews = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3", "u4"],
            "item_id": ["a", "a", "a", "b"],
            "text": ["Old review.", "New review.", "Helpful <i>one</i>.", ""],
            "timestamp": [100, 300, 50, 10],
            "helpful_votes": [0, 0, 7, 0],
        }
    )
    ds = shop({"item_id": ["a", "b"], "title": ["Mug", "Bowl"]}, reviews=reviews)
    texts = item_texts(ds, review_chars=30)
    assert texts.texts[0] == "Mug. Helpful one. New review."
    assert texts.texts[1] == "Bowl"
    assert texts.report["with_reviews"] == 1 and texts.report["reviews_used"] == 2
    assert texts.report["review_html_stripped"] == 1
    assert item_texts(ds, review_chars=0).texts == ["Mug", "Bowl"]


def test_demo_shop_texts_keep_chinese_items():
    from shoprec.data.demo import generate_demo_shop

    demo = generate_demo_shop(seed=3, n_items=123, n_users=20, days=28)
    ds = dataset_from_frames(demo.items, demo.interactions, name="demo")  # tiny shops may have no reviews
    texts = item_texts(ds)
    zh = np.flatnonzero(ds.items["language"].to_numpy() == "zh")
    assert len(zh) and all(ds.items["title"].iloc[i] in texts.texts[i] for i in zh)
    assert texts.report["placeholder"] == 0 and len(texts) == ds.n_items


# ------------------------------------------------------------------------------------- vectors
def test_without_cache_it_just_encodes(int8):
    ds = plain()
    vectors = item_vectors(ds, int8)
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors, int8.encode(item_texts(ds).texts))


def test_changed_title_reencodes_exactly_one_text(int8, tmp_path):
    encoder = Recording(int8)
    cache = VectorCache(tmp_path, encoder.name)
    first = item_vectors(plain(), encoder, cache_dir=cache)
    assert cache.last_stats["misses"] == 5 and len(encoder.seen) == 5

    encoder.seen.clear()
    again = item_vectors(plain(), encoder, cache_dir=cache)
    assert encoder.seen == [] and cache.last_stats["hits"] == 5
    np.testing.assert_array_equal(again, first)

    changed = [*TITLES[:2], "Noise cancelling headphones", *TITLES[3:]]
    third = item_vectors(plain(changed), encoder, cache_dir=cache)
    assert encoder.seen == ["Noise cancelling headphones"]
    assert cache.last_stats["hits"] == 4 and cache.last_stats["misses"] == 1
    keep = [0, 1, 3, 4]
    np.testing.assert_array_equal(third[keep], first[keep])
    np.testing.assert_allclose(third[2], int8.encode(["Noise cancelling headphones"])[0], atol=1e-6)
    assert not np.allclose(third[2], first[2])


def test_cache_path_argument_and_duplicate_texts(int8, tmp_path):
    encoder = Recording(int8)
    ds = plain(["Mug", "Mug", "Cup"])
    vectors = item_vectors(ds, encoder, cache_dir=tmp_path)
    assert sorted(encoder.seen) == ["Cup", "Mug"]  # a repeated text is encoded once
    np.testing.assert_array_equal(vectors[0], vectors[1])
    assert (tmp_path / "minilm-int8" / "vectors.npy").exists()


def test_cache_files_hold_no_pickle(int8, tmp_path):
    cache = VectorCache(tmp_path, int8.name)
    vectors = item_vectors(plain(), int8, cache_dir=cache)
    stored = np.load(cache.vectors_path, allow_pickle=False)
    assert stored.dtype == np.float32 and stored.shape == (5, 384)
    keys = pd.read_parquet(cache.keys_path)
    assert list(keys.columns) == ["key", "row"]
    expected = hashlib.sha256(f"minilm-int8\x1f\x1f{item_texts(plain()).texts[0]}".encode()).hexdigest()
    row = int(keys.loc[keys["key"] == expected, "row"].iloc[0])
    np.testing.assert_array_equal(stored[row], vectors[0])


def test_corrupt_cache_is_rebuilt_with_a_warning(int8, tmp_path):
    cache = VectorCache(tmp_path, int8.name)
    first = item_vectors(plain(), int8, cache_dir=cache)
    cache.vectors_path.write_bytes(b"not a numpy file")
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        again = item_vectors(plain(), int8, cache_dir=cache)
    assert cache.last_stats["rebuilt"] == 1 and cache.last_stats["misses"] == 5
    np.testing.assert_allclose(again, first, atol=1e-6)
    item_vectors(plain(), int8, cache_dir=cache)
    assert cache.last_stats["hits"] == 5 and cache.last_stats["rebuilt"] == 0


def test_vectors_swapped_under_the_keys_are_caught_by_the_checksum(int8, tmp_path):
    cache = VectorCache(tmp_path, int8.name)
    first = item_vectors(plain(), int8, cache_dir=cache)
    np.save(cache.vectors_path, np.zeros_like(first))  # a valid file of the right shape, wrong content
    with pytest.warns(RuntimeWarning, match="checksum"):
        again = item_vectors(plain(), int8, cache_dir=cache)
    np.testing.assert_allclose(again, first, atol=1e-6)


def test_folder_encoders_key_on_a_fingerprint_of_their_weights(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights v1")
    fake = type("Fake", (), {"name": "my-model", "path": model})()
    before = encoder_version(fake)
    (model / "model.safetensors").write_bytes(b"weights v2, retrained")
    assert before and encoder_version(fake) != before
    assert encoder_version(type("Builtin", (), {"name": "minilm-int8", "path": model})()) == ""


def test_cache_of_another_dimension_is_rebuilt(int8, tmp_path):
    cache = VectorCache(tmp_path, int8.name)
    texts = item_texts(plain()).texts
    cache.save([cache.key(t) for t in texts], np.ones((5, 8), dtype=np.float32))
    with pytest.warns(RuntimeWarning, match="dim 384"):
        vectors = item_vectors(plain(), int8, cache_dir=cache)
    assert vectors.shape == (5, 384) and cache.last_stats["misses"] == 5


def test_cache_refuses_another_encoder(int8, tmp_path):
    with pytest.raises(ShoprecError, match="belongs to encoder 'minilm'"):
        item_vectors(plain(), int8, cache_dir=VectorCache(tmp_path, "minilm"))


def test_length_sorted_batches_come_back_in_input_order(int8):
    texts = ["a short one", "a much longer product description about a ceramic mug " * 3, "", "mid length text"]
    together = int8.encode(texts, batch_size=2)
    one_by_one = np.vstack([int8.encode([t]) for t in texts])
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)
