"""Learned search ranker: features from hits, training on graded lists, saving without pickle, the stage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shoprec.errors import ShoprecError
from shoprec.search.hybrid import Hit, SearchEngine
from shoprec.search.products import Product, ProductTable
from shoprec.search.query import ParsedQuery
from shoprec.search.ranker import FEATURES, RankerStage, SearchRanker, grades, hit_features


def hit(position: int, title: str, matched: tuple[str, ...], **features: float) -> Hit:
    return Hit(str(position), position, 0.0, Product(str(position), title), {}, matched, dict(features))


def test_hit_features_read_the_hits_and_the_query():
    query = ParsedQuery("red hose", "en", terms=("red", "hose"))
    hits = [
        hit(0, "red garden hose", ("red", "hose"), lexical_score=2.0, lexical_rank=1.0, rrf=0.03),
        hit(1, "blue lamp", (), dense_score=0.4, dense_rank=3.0, stage_crossencoder=-1.5),
    ]
    X = hit_features(query, hits)
    assert X.shape == (2, len(FEATURES))
    row = dict(zip(FEATURES, X[0], strict=True))
    assert row["lexical_score"] == 2.0 and row["rrf"] == 0.03 and np.isnan(row["dense_rank"])
    assert row["query_words"] == 2 and row["matched_share"] == 1.0 and row["title_words"] == 3
    assert dict(zip(FEATURES, X[1], strict=True))["stage_crossencoder"] == -1.5


def test_grades_scale_relevance_and_unjudged_is_zero():
    assert grades(np.array([1.0, 1.5, 2.33, 3.0, np.nan]), 1.0, 3.0).tolist() == [0, 1, 3, 4, 0]
    assert grades(np.array([1.0, np.nan]), 1.0, 1.0).tolist() == [4, 0]  # clicks only: clicked is the top grade


def synthetic_lists(rng: np.random.Generator, n_queries: int = 120, size: int = 30) -> list:
    """Relevance follows the cross-encoder feature (noisy) and not the RRF score, which is noise."""
    lists = []
    for _ in range(n_queries):
        X = rng.normal(size=(size, len(FEATURES)))
        ce = X[:, FEATURES.index("stage_crossencoder")]
        y = np.clip(np.round(ce + rng.normal(scale=0.3, size=size)), 0, 4).astype(np.int32)
        lists.append((X, y))
    return lists


def test_ranker_learns_the_informative_feature_and_saves_without_pickle(tmp_path, rng):
    ranker = SearchRanker().fit(synthetic_lists(rng))
    X, y = synthetic_lists(rng, n_queries=1, size=200)[0]
    scores = ranker.predict(X)
    assert np.corrcoef(scores, X[:, FEATURES.index("stage_crossencoder")])[0, 1] > 0.8
    assert max(ranker.importance(), key=ranker.importance().get) == "stage_crossencoder"
    folder = ranker.save(tmp_path / "ranker")
    assert sorted(p.name for p in folder.iterdir()) == ["ranker.json", "ranker.txt"]
    assert json.loads((folder / "ranker.json").read_text())["features"] == list(FEATURES)
    assert np.allclose(SearchRanker.load(folder).predict(X), scores, atol=1e-5)


def test_ranker_needs_lists_with_a_relevant_candidate(rng):
    lists = [(rng.normal(size=(5, len(FEATURES))), np.zeros(5, dtype=np.int32)) for _ in range(10)]
    with pytest.raises(ShoprecError, match="0 of 10 queries have a relevant product"):
        SearchRanker().fit(lists)


def test_ranker_stage_reorders_the_engines_hits_by_its_scores(tmp_path, rng):
    """A ranker trained to prefer short titles (few title words) lifts them above BM25's order."""
    lists = []
    for _ in range(80):
        X = rng.normal(size=(20, len(FEATURES)))
        X[:, FEATURES.index("title_words")] = rng.integers(1, 8, size=20)
        y = (X[:, FEATURES.index("title_words")] <= 2).astype(np.int32) * 4
        lists.append((X, y))
    SearchRanker().fit(lists).save(tmp_path / "ranker")
    titles = ["hose", "long green garden hose with reel", "hose reel", "garden hose nozzle spray pattern set"]
    table = ProductTable(Product(f"p{i}", t) for i, t in enumerate(titles))
    plain = SearchEngine(table).search("garden hose", k=4)
    staged = SearchEngine(table, stages=[RankerStage(tmp_path / "ranker", top=4)]).search("garden hose", k=4)
    assert {h.item_id for h in staged.hits} == {h.item_id for h in plain.hits}
    assert [h.product.title for h in staged.hits[:2]] == ["hose", "hose reel"]
    scores = [h.features["stage_ranker"] for h in staged.hits]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(ShoprecError, match="not a search ranker folder"):
        RankerStage(tmp_path)
