"""VectorIndex: exact search equals brute force, HNSW recall, incremental changes, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.errors import ModelError, ShoprecError
from shoprec.text.index import PAD_ID, VectorIndex, normalise


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return normalise(rng.standard_normal((n, dim)).astype(np.float32))


def brute_force(base: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = normalise(queries) @ base.T  # (n, n_base)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(sims, order, axis=1)


def test_exact_search_matches_brute_force(rng):
    base = unit(rng, 300, 24)
    ids = rng.permutation(10_000)[:300].astype(np.int64)  # ids need not be contiguous
    index = VectorIndex(24).add(base, ids)
    assert index.kind == "exact" and len(index) == 300
    queries = rng.standard_normal((20, 24)).astype(np.float32)  # not normalised: search normalises
    found, scores = index.search(queries, k=7)
    expected, expected_scores = brute_force(base, ids, queries, 7)
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert found.dtype == np.int64 and scores.dtype == np.float32


def test_hnsw_recall_at_10_is_above_0_9(rng):
    base = unit(rng, 3000, 32)
    ids = np.arange(3000, dtype=np.int64)
    index = VectorIndex(32, exact_threshold=1000, hnsw_m=16, ef_search=64).add(base, ids)
    assert index.kind == "hnsw"
    queries = unit(rng, 200, 32)
    found, _ = index.search(queries, k=10)
    expected, _ = brute_force(base, ids, queries, 10)
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, expected, strict=True)])
    assert recall > 0.9, recall


def test_growing_past_the_threshold_switches_to_hnsw_and_keeps_every_vector(rng):
    base = unit(rng, 120, 8)
    index = VectorIndex(8, exact_threshold=100).add(base[:60], np.arange(60))
    assert index.kind == "exact"
    index.add(base[60:], np.arange(60, 120))
    assert index.kind == "hnsw" and len(index) == 120
    found, _ = index.search(base[[5, 100]], k=1)
    np.testing.assert_array_equal(found[:, 0], [5, 100])


@pytest.mark.parametrize("threshold", [1000, 10])
def test_add_upsert_remove_behave_like_a_fresh_index(rng, threshold):
    base = unit(rng, 50, 12)
    index = VectorIndex(12, exact_threshold=threshold)
    index.add(base[:30], np.arange(30)).add(base[30:], np.arange(30, 50))
    replacement = unit(rng, 2, 12)
    index.upsert(replacement, [4, 60])  # 4 is replaced, 60 is new
    index.remove([7, 999])  # 999 is unknown: ignored
    assert len(index) == 50 and 7 not in index and 60 in index
    truth = {i: base[i] for i in range(50) if i != 7} | {4: replacement[0], 60: replacement[1]}
    ids = np.array(sorted(truth))
    vectors = np.stack([truth[i] for i in ids])
    queries = np.vstack([replacement, base[[7, 10]]])
    found, scores = index.search(queries, k=5)
    expected, expected_scores = brute_force(vectors, ids, queries, 5)
    np.testing.assert_array_equal(found[:, 0], expected[:, 0])  # HNSW at this size is exact in practice
    np.testing.assert_allclose(scores[:, 0], expected_scores[:, 0], rtol=1e-5)
    assert 7 not in found
    np.testing.assert_allclose(index.vectors([4]), replacement[:1], rtol=1e-6)
    with pytest.raises(ModelError, match="already present"):
        index.add(base[:1], [4])


def test_hnsw_compacts_after_many_removals(rng):
    base = unit(rng, 40, 6)
    index = VectorIndex(6, exact_threshold=10, compact_ratio=0.25).add(base, np.arange(40))
    index.remove(np.arange(5))
    assert index._index.ntotal == 40  # hidden, not yet rebuilt
    index.remove(np.arange(5, 12))
    assert index._index.ntotal == 28 and len(index) == 28
    found, _ = index.search(base[:3], k=3)
    assert (found >= 12).all()


def test_exclusions_padding_and_k_beyond_size(rng):
    base = unit(rng, 6, 4)
    index = VectorIndex(4).add(base, np.arange(10, 16))
    found, scores = index.search(base[[0, 1]], k=8, exclude=[[10], [11, 12]])
    assert found[0, 0] != 10 and 10 not in found[0] and not {11, 12} & set(found[1])
    assert (found[0, :5] != PAD_ID).all() and (found[0, 5:] == PAD_ID).all()
    assert (found[1, :4] != PAD_ID).all() and (found[1, 4:] == PAD_ID).all()
    assert np.isnan(scores[0, 5:]).all() and np.isfinite(scores[0, :5]).all()
    assert (np.diff(scores[0, :5]) <= 1e-6).all()
    shared, _ = index.search(base[[0, 1]], k=6, exclude=np.array([10, 11]))
    assert not {10, 11} & set(shared.ravel())


def test_save_and_load_round_trip(rng, tmp_path):
    for threshold in (1000, 10):
        base = unit(rng, 40, 8)
        index = VectorIndex(8, exact_threshold=threshold, ef_search=20).add(base, np.arange(100, 140))
        index.remove([101])
        queries = unit(rng, 5, 8)
        before = index.search(queries, k=6)
        loaded = VectorIndex.load(index.save(tmp_path / str(threshold)))
        assert loaded.kind == index.kind and len(loaded) == 39 and loaded.ef_search == 20
        after = loaded.search(queries, k=6)
        np.testing.assert_array_equal(before[0], after[0])
        np.testing.assert_array_equal(before[1], after[1])
    assert not list(tmp_path.rglob("*.pkl"))
    with pytest.raises(ShoprecError, match="not a saved vector index"):
        VectorIndex.load(tmp_path / "nothing")


def test_bad_input_is_reported(rng):
    index = VectorIndex(4)
    with pytest.raises(ModelError, match="shape"):
        index.add(unit(rng, 3, 5), [0, 1, 2])
    with pytest.raises(ModelError, match=">= 0"):
        index.add(unit(rng, 1, 4), [-3])
    index.add(unit(rng, 2, 4), [0, 1])
    with pytest.raises(ModelError, match="dimension"):
        index.search(unit(rng, 1, 3), k=2)
    with pytest.raises(ModelError, match="one id list per query"):
        index.search(unit(rng, 2, 4), k=2, exclude=[[0]])


@pytest.mark.benchmark
def test_hnsw_speed_and_recall_on_50k_embedding_like_vectors(rng):
    """Recall@10 and per-query latency of HNSW against exact search, on 384-d vectors with a
    low-rank structure like text embeddings (uniform random 384-d vectors have no neighbourhood
    structure and are a worst case no real catalogue shows). Run on a quiet machine:
    ``pytest -m benchmark -s tests/test_index.py``."""
    import time

    n, dim, rank = 50_000, 384, 32
    base = normalise(
        rng.standard_normal((n, rank)) @ rng.standard_normal((rank, dim)) + 0.5 * rng.standard_normal((n, dim))
    )
    queries = normalise(base[rng.choice(n, 500, replace=False)] + 0.05 * rng.standard_normal((500, dim)))
    exact = VectorIndex(dim, exact_threshold=10**9).add(base, np.arange(n))
    start = time.perf_counter()
    hnsw = VectorIndex(dim, exact_threshold=1).add(base, np.arange(n))
    build_s = time.perf_counter() - start
    ms, results = {}, {}
    for name, index in (("exact", exact), ("hnsw", hnsw)):
        start = time.perf_counter()
        results[name] = index.search(queries, k=10)[0]
        ms[name] = (time.perf_counter() - start) / len(queries) * 1000
    found, truth = results["hnsw"], results["exact"]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    print(
        f"\nHNSW build {build_s:.1f} s; ms/query exact {ms['exact']:.3f}, hnsw {ms['hnsw']:.3f}; recall@10 {recall:.3f}"
    )
    assert recall > 0.95
