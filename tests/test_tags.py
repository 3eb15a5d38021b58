"""Item tags: candidate phrases, MMR ranking, and relevance on the smallest demo shop.

One real encoder (``minilm-int8``) and one tagged demo shop are shared by the whole session.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from shoprec.cli.main import main
from shoprec.data.dataset import Dataset
from shoprec.data.demo import generate_demo_shop
from shoprec.data.frames import dataset_from_frames
from shoprec.errors import ShoprecError
from shoprec.text.encoders import Encoder, load_encoder
from shoprec.text.tags import (
    STOPWORDS,
    candidate_phrases,
    corpus_candidates,
    extract_tags,
    item_tags,
    mmr,
    source_texts,
    tags_frame,
    with_tags,
)
from shoprec.text.vectors import item_vectors

TOP_N = 4


@pytest.fixture(scope="session")
def int8() -> Encoder:
    return load_encoder("minilm-int8")


@pytest.fixture(scope="session")
def tagged(int8):
    """(dataset, item vectors, tags) for the demo shop's items in 10 of its leaf categories (64 items)."""
    shop = generate_demo_shop(seed=11, n_items=246, n_users=20, days=28)
    leaves = sorted(shop.items["category"].unique())[::4][:10]
    items = shop.items[shop.items["category"].isin(leaves)]
    events = shop.interactions[shop.interactions["item_id"].isin(items["item_id"])]
    dataset = dataset_from_frames(items, events, name="demo-leaves")
    vectors = item_vectors(dataset, int8, progress=False)
    return dataset, vectors, extract_tags(dataset, int8, vectors, top_n=TOP_N, progress=False)


def keywords(dataset, tags) -> list[list[str]]:
    """Tags without the category leaf and brand appended after the key phrases."""
    leaves = dataset.items["category"].str.split(">").str[-1].str.strip().str.casefold()
    brands = dataset.items["brand"].str.casefold()
    return [[t for t in row if t.casefold() not in (leaves.iloc[i], brands.iloc[i])] for i, row in enumerate(tags)]


# -------------------------------------------------------------------------------- candidates
def test_english_candidates_are_short_ngrams_without_stopwords_or_numbers():
    phrases = candidate_phrases(
        "Modern Ceramic Espresso Cup by Nordhaus (dishwasher safe, 350 ml) - 2 pack, 183x61 cm, IP65", "Nordhaus"
    )
    assert "ceramic espresso cup" in phrases and "dishwasher safe" in phrases
    assert "modern ceramic espresso cup" not in phrases  # at most 3 words
    assert "cup nordhaus" not in phrases and "nordhaus" not in phrases  # no phrase spans 'by'; brand left out
    assert "safe dishwasher" not in phrases and "350" not in phrases and "x61" not in phrases
    assert "ip65" in phrases
    for phrase in phrases:
        words = phrase.split()
        assert words[0] not in STOPWORDS and words[-1] not in STOPWORDS
        assert not any(w.replace(".", "").isdigit() for w in words)


def test_chinese_candidates_are_chunks_and_short_substrings():
    text = "Nordhaus 咖啡豆 单一产地。为厨房和客厅增添温馨"
    phrases = candidate_phrases(text)
    assert {"咖啡豆", "单一产地", "厨房", "客厅增添温馨", "咖啡", "产地", "增添"} <= set(phrases)
    assert "nordhaus" in phrases  # Latin words inside Chinese text still count
    assert all(2 <= len(p) <= 6 for p in phrases if p != "nordhaus")
    assert "厨房和客厅" not in phrases  # '和' is a function character: chunks end there


def test_chinese_substrings_must_recur_across_items():
    texts = ["简约单一产地咖啡豆", "浓香意式咖啡豆"]
    first, second = corpus_candidates(texts, ["", ""])
    assert "咖啡" in first and "咖啡" in second  # in both texts
    assert "约单" not in first  # straddles two words, only in one text
    assert "浓香意式咖啡豆" not in second  # 7 characters: too long to be a whole-chunk candidate


def test_mmr_trades_relevance_for_diversity():
    relevance = np.array([0.9, 0.85, 0.6])
    # candidate 1 is a near copy of candidate 0 (cosine 0.99); candidate 2 is unlike both
    candidates = np.array([[1.0, 0.0, 0.0], [0.99, np.sqrt(1 - 0.99**2), 0.0], [0.0, 0.0, 1.0]])
    assert mmr(relevance, candidates, 2, diversity=0.4) == [0, 2]
    assert mmr(relevance, candidates, 2, diversity=0.0) == [0, 1]
    assert mmr(relevance, candidates, 5) == [0, 2, 1]
    assert mmr(relevance[:0], candidates[:0], 3) == []


# ---------------------------------------------------------------------------- demo-shop tags
def test_every_item_gets_keywords_from_its_own_text_then_leaf_and_brand(tagged):
    dataset, _, tags = tagged
    texts = [t.lower() for t in source_texts(dataset)]
    for i, (row, words) in enumerate(zip(tags, keywords(dataset, tags), strict=True)):
        assert 1 <= len(words) <= TOP_N
        assert all(w.replace(" ", "") in texts[i].replace(" ", "") for w in words), (i, words)
        leaf = dataset.items["category"].iloc[i].split(">")[-1].strip()
        assert leaf in row and dataset.items["brand"].iloc[i] in row
        assert len({t.casefold() for t in row}) == len(row)


def test_keywords_are_closer_to_the_item_than_the_other_candidates(tagged, int8):
    dataset, vectors, tags = tagged
    english = np.flatnonzero(dataset.items["language"].to_numpy() == "en")[:20]
    words = keywords(dataset, tags)
    texts = source_texts(dataset)
    rest = {
        i: [p for p in candidate_phrases(texts[i], dataset.items["brand"].iloc[i]) if p not in words[i]]
        for i in english
    }
    phrases = sorted({p for i in english for p in words[i] + rest[i]})
    lookup = dict(zip(phrases, int8.encode(phrases), strict=True))  # one batch for all items
    better = [
        np.mean([lookup[p] @ vectors[i] for p in words[i]]) > np.mean([lookup[p] @ vectors[i] for p in rest[i]])
        for i in english
    ]
    assert np.mean(better) >= 0.95


def test_items_in_one_leaf_share_more_keywords_than_items_in_different_leaves(tagged):
    dataset, _, tags = tagged
    words = [set(w) for w in keywords(dataset, tags)]
    leaves = dataset.items["category"].to_numpy()
    language = dataset.items["language"].to_numpy()
    same, different = [], []
    for a, b in itertools.combinations(np.flatnonzero(language == "en"), 2):
        jaccard = len(words[a] & words[b]) / max(len(words[a] | words[b]), 1)
        (same if leaves[a] == leaves[b] else different).append(jaccard)
    assert len(same) >= 50
    # measured: 0.086 vs 0.001; ranking against random vectors instead gives 0.030 vs 0.005
    assert np.mean(same) > 20 * np.mean(different) and np.mean(same) > 0.06


def test_tags_frame_saves_as_parquet(tagged, tmp_path):
    dataset, _, tags = tagged
    frame = tags_frame(dataset, tags)
    frame.to_parquet(tmp_path / "tags.parquet")
    back = pd.read_parquet(tmp_path / "tags.parquet")
    assert back["item_id"].tolist() == dataset.items["item_id"].tolist()
    assert [list(t) for t in back["tags"]] == tags


def test_wrong_vectors_are_refused(tagged, int8):
    dataset, vectors, tags = tagged
    with pytest.raises(ShoprecError, match="item vectors have shape"):
        extract_tags(dataset, int8, vectors[:5])
    with pytest.raises(ShoprecError, match="one list per item"):
        tags_frame(dataset, tags[:3])


def test_tags_are_stored_with_the_items_and_survive_save_and_load(tagged, tmp_path):
    dataset, _, tags = tagged
    assert item_tags(dataset) is None  # nothing stored until with_tags runs
    tagged_ds = with_tags(dataset, tags)
    assert "tags" not in dataset.items.columns  # the original is left alone
    back = Dataset.load(tagged_ds.save(tmp_path / "tagged"))
    assert item_tags(back) == tags
    assert back.fingerprint() == dataset.fingerprint()


def test_tags_column_from_a_text_file_is_split_at_commas(tmp_path):
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["mug", "cup", "pot"], "tags": ["red, mug", "", None]})
    events = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3]})
    dataset = dataset_from_frames(items, events, name="csv-tags")
    assert item_tags(dataset) == [["red", "mug"], [], []]


def test_tags_command_writes_a_dataset_folder_with_tags(tagged, tmp_path, capsys):
    dataset, _, tags = tagged
    source = dataset.save(tmp_path / "shop")
    code = main(
        ["tags", str(source), "--encoder", "minilm-int8", "--top-n", str(TOP_N), "--out", str(tmp_path / "out")]
    )
    out = capsys.readouterr().out
    assert code == 0 and f"tagged {dataset.n_items:,} items" in out
    assert item_tags(Dataset.load(tmp_path / "out")) == tags  # the same tags the library computes


def test_tags_command_rejects_bad_settings(tmp_path, capsys):
    code = main(["tags", "demo", "--top-n", "0", "--out", str(tmp_path)])
    assert code == 2 and "--top-n must be at least 1" in capsys.readouterr().err
