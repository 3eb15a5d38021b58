"""Dense retrieval mechanics with a small exact encoder: constraints stay exact, upserts are encoded at once."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.errors import ShoprecError
from shoprec.search.dense import DenseIndex, product_text
from shoprec.search.hybrid import SearchEngine
from shoprec.search.products import Product, ProductTable
from shoprec.text.encoders import Encoder

AXES = ["kettle", "drill", "mug", "tent"]


class AxisEncoder(Encoder):
    """Counts of four known words: a text's vector points along the products it names (exact answers)."""

    name = "axis"
    dim = len(AXES)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.array([[t.lower().count(w) + 0.01 * j for j, w in enumerate(AXES)] for t in texts], np.float32)


def table(n: int = 40) -> ProductTable:
    return ProductTable(
        Product(f"p{i}", f"{AXES[i % 4]} number {i}", brand=f"B{i % 5}", price=float(i)) for i in range(n)
    )


@pytest.fixture
def dense() -> tuple[DenseIndex, ProductTable]:
    products = table()
    encoder = AxisEncoder()
    vectors = encoder.encode([product_text(p) for p in products.products])
    return DenseIndex(encoder, vectors, products.alive, oversample=1), products


def test_constrained_search_is_exact_when_the_index_returns_too_few(dense):
    index, products = dense
    allowed = products.alive & (products.price >= 30)  # p30..p39; the index's top k are mostly elsewhere
    found, scores = index.search(index.encode_query("kettle"), k=5, allowed=allowed)
    assert set(found.tolist()) <= set(range(30, 40))
    assert found[:2].tolist() == [32, 36]  # the two kettles, equal vectors: lower position first
    assert np.all(np.diff(scores) <= 1e-6)


def test_constrained_search_returns_only_allowed_items_of_the_right_kind(dense):
    index, products = dense
    allowed = products.alive & (products.price < 20)
    found, _ = index.search(index.encode_query("drill"), k=5, allowed=allowed)
    assert sorted(found.tolist()) == [1, 5, 9, 13, 17]  # every drill under 20, no other


def test_upserted_products_are_encoded_and_found_at_once(dense):
    index, products = dense
    positions = products.upsert([Product("new", "drill tent")])
    index.upsert(products, positions)
    found, _ = index.search(index.encode_query("drill tent"), k=1, allowed=products.alive.copy())
    assert found.tolist() == positions
    index.remove(products.remove(["new"]))
    found, _ = index.search(index.encode_query("drill tent"), k=1, allowed=products.alive.copy())
    assert found.tolist() != positions


def test_engine_fuses_dense_hits_that_share_no_word_with_the_query():
    products = table(8)
    encoder = AxisEncoder()
    vectors = encoder.encode([product_text(p) for p in products.products])
    engine = SearchEngine(products, dense=DenseIndex(encoder, vectors, products.alive))
    hits = engine.search("number 2", k=8).hits  # every title says "number": lexical ranks all of them
    assert {h.item_id for h in hits} == {f"p{i}" for i in range(8)}
    assert all(set(h.sources) == {"lexical", "dense"} for h in hits)


def test_vectors_of_another_encoder_are_refused():
    with pytest.raises(ShoprecError, match="same encoder"):
        DenseIndex(AxisEncoder(), np.zeros((3, 7), np.float32), np.ones(3, bool))


def test_dense_candidates_alone_do_not_stop_relaxation_when_the_words_exist_elsewhere():
    products = ProductTable([Product("t1", "tent", brand="Acme"), Product("k1", "kettle", brand="Zeta")])
    encoder = AxisEncoder()
    vectors = encoder.encode([product_text(p) for p in products.products])
    engine = SearchEngine(products, dense=DenseIndex(encoder, vectors, products.alive))
    result = engine.search("zeta tent", k=2)  # Zeta sells no tent; dense would still offer its kettle
    assert result.relaxed == ("brand",)
    assert result.hits[0].item_id == "t1"
    cross = engine.search("zeta 帐篷", k=2)  # no product holds the word: the brand stands, dense decides
    assert cross.relaxed == () and [h.item_id for h in cross.hits] == ["k1"]


def test_engine_from_a_dataset_uses_the_language_model_layers_item_vectors():
    import pandas as pd

    from shoprec.data import Dataset

    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Steel kettle", "Camping tent"], "price": [20.0, 90.0]})
    data = Dataset.build(items, pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [1]}))
    engine = SearchEngine.from_dataset(data, encoder=AxisEncoder())
    assert engine.dense is not None and len(engine.dense.index) == 2
    hit = engine.search("tent under 100", k=1).hits[0]
    assert hit.item_id == "b" and set(hit.sources) == {"lexical", "dense"}


class GivenEncoder(Encoder):
    """A 16-d encoder for tests that hand the item vectors in (queries are given as vectors too)."""

    name = "given"
    dim = 16

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), self.dim), np.float32)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_constrained_searches_through_the_index_return_the_allowed_nearest(kind, rng):
    """With a selector the index itself returns k allowed items (no exact scoring), the true nearest ones."""
    from shoprec.text.index import VectorIndex

    n = 3000
    vectors = rng.standard_normal((n, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    alive = np.ones(n, dtype=bool)
    dense = DenseIndex(GivenEncoder(), vectors, alive, exact_limit=0)  # never the exact shortcut
    if kind == "hnsw":
        dense.index = VectorIndex(16, exact_threshold=100, ef_search=64).add(vectors, np.arange(n))
    dense.remove([5, 6, 7])
    alive[[5, 6, 7]] = False
    exact = dense._exact
    for share in (1.0, 0.3, 0.02):  # unconstrained, a loose and a tight constraint (HNSW may fall back to exact)
        if share >= 0.3:
            dense._exact = lambda *args: pytest.fail("the exact fallback ran: the selector search returned too few")
        else:
            dense._exact = exact
        allowed = alive & (rng.random(n) < share)
        query = vectors[int(np.flatnonzero(~allowed & alive)[0]) if share < 1 else 9]
        found, scores = dense.search(query, k=20, allowed=allowed)
        subset = np.flatnonzero(allowed)
        truth = subset[np.argsort(-(vectors[subset] @ query))[:20]]
        assert len(found) == 20 and allowed[found].all() and np.all(np.diff(scores) <= 1e-6)
        overlap = len(set(found.tolist()) & set(truth.tolist())) / 20
        assert overlap == 1.0 if kind == "exact" else overlap >= 0.9
