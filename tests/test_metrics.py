"""Metrics: hand-computed answers on tiny lists, plus bounds that must hold for any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from shoprec.eval.metrics import (
    accuracy_metrics,
    catalog_coverage,
    f1,
    hit_matrix,
    hit_rate,
    intra_list_diversity,
    item_popularity,
    long_tail_share,
    mrr,
    ndcg,
    novelty,
    popularity_share,
    precision,
    recall,
    tail_items,
)

N_ITEMS = 10


def truth_of(*rows: list[int], n_items: int = N_ITEMS) -> sp.csr_matrix:
    """One CSR row per list of relevant items."""
    r = [i for i, row in enumerate(rows) for _ in row]
    c = [item for row in rows for item in row]
    return sp.csr_matrix((np.ones(len(c), dtype=np.float32), (r, c)), shape=(len(rows), n_items))


def recs_of(*rows: list[int]) -> np.ndarray:
    return np.array(rows, dtype=np.int64)


# ---------------------------------------------------------------- accuracy, known answers
def test_ndcg_discounts_by_rank():
    truth = truth_of([7], [7], [7], [7])
    recs = recs_of([7, 1, 2], [1, 7, 2], [1, 2, 7], [1, 2, 3])
    np.testing.assert_allclose(ndcg(recs, truth, 3), [1.0, 1 / math.log2(3), 0.5, 0.0])


def test_ndcg_ideal_uses_min_of_truth_size_and_k():
    truth = truth_of([3, 4], [3, 4, 5, 6])
    recs = recs_of([3, 9, 4], [3, 4, 8])
    ideal_2 = 1 + 1 / math.log2(3)
    ideal_3 = ideal_2 + 0.5
    np.testing.assert_allclose(ndcg(recs, truth, 3), [(1 + 0.5) / ideal_2, ideal_2 / ideal_3])
    # at K=1 only one hit is possible, so a hit at rank 1 is perfect whatever |truth|
    np.testing.assert_allclose(ndcg(recs, truth, 1), [1.0, 1.0])


def test_recall_precision_f1_with_three_truth_items():
    truth = truth_of([1, 2, 3])
    recs = recs_of([2, 9, 3, 8, 7])
    np.testing.assert_allclose(recall(recs, truth, 5), [2 / 3])
    np.testing.assert_allclose(precision(recs, truth, 5), [2 / 5])
    np.testing.assert_allclose(f1(recs, truth, 5), [2 * (2 / 5) * (2 / 3) / (2 / 5 + 2 / 3)])
    np.testing.assert_allclose(recall(recs, truth, 2), [1 / 3])
    np.testing.assert_allclose(precision(recs, truth, 2), [1 / 2])
    np.testing.assert_allclose(f1(recs_of([9, 8, 7, 6, 5]), truth, 5), [0.0])


def test_hr_and_mrr_use_the_first_hit_within_k():
    truth = truth_of([5, 6], [5], [5])
    recs = recs_of([0, 1, 6, 5], [5, 1, 2, 3], [1, 2, 3, 4])
    np.testing.assert_allclose(hit_rate(recs, truth, 4), [1, 1, 0])
    np.testing.assert_allclose(mrr(recs, truth, 4), [1 / 3, 1, 0])
    np.testing.assert_allclose(hit_rate(recs, truth, 2), [0, 1, 0])
    np.testing.assert_allclose(mrr(recs, truth, 2), [0, 1, 0])


def test_padding_never_counts_even_when_item_zero_is_relevant():
    truth = truth_of([0], [0])
    recs = recs_of([-1, -1, -1], [-1, 0, -1])
    assert hit_matrix(recs, truth).tolist() == [[False, False, False], [False, True, False]]
    np.testing.assert_allclose(hit_rate(recs, truth, 3), [0, 1])
    np.testing.assert_allclose(precision(recs, truth, 3), [0, 1 / 3])  # a short list is not rewarded


def test_a_repeated_item_counts_once():
    truth = truth_of([4, 5])
    recs = recs_of([4, 4, 4])
    np.testing.assert_allclose(recall(recs, truth, 3), [0.5])
    np.testing.assert_allclose(precision(recs, truth, 3), [1 / 3])


def test_rows_without_truth_give_nan_where_the_metric_divides_by_truth():
    truth = truth_of([], [1])
    recs = recs_of([1, 2], [1, 2])
    assert np.isnan(recall(recs, truth, 2)[0]) and np.isnan(ndcg(recs, truth, 2)[0]) and np.isnan(f1(recs, truth, 2)[0])
    assert hit_rate(recs, truth, 2)[0] == 0.0


def test_accuracy_metrics_matches_the_single_functions():
    rng = np.random.default_rng(3)
    recs = np.stack([rng.permutation(N_ITEMS)[:6] for _ in range(20)])
    truth = sp.csr_matrix((rng.random((20, N_ITEMS)) < 0.3).astype(np.float32))
    out = accuracy_metrics(recs, truth, ks=(2, 5))
    for k in (2, 5):
        for name, fn in (("hr", hit_rate), ("recall", recall), ("precision", precision), ("f1", f1)):
            np.testing.assert_allclose(out[f"{name}@{k}"], fn(recs, truth, k), equal_nan=True)
        np.testing.assert_allclose(out[f"ndcg@{k}"], ndcg(recs, truth, k), equal_nan=True)
        np.testing.assert_allclose(out[f"mrr@{k}"], mrr(recs, truth, k))


def test_bad_inputs_are_rejected_with_the_reason():
    truth = truth_of([1])
    with pytest.raises(ValueError, match="aligned"):
        ndcg(recs_of([1, 2], [3, 4]), truth, 2)
    with pytest.raises(ValueError, match="outside"):
        ndcg(recs_of([1, N_ITEMS]), truth, 2)
    with pytest.raises(ValueError, match="k=5"):
        ndcg(recs_of([1, 2]), truth, 5)
    with pytest.raises(ValueError, match="integer"):
        ndcg(np.array([[1.0, 2.0]]), truth, 2)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_accuracy_bounds_hold_for_random_lists(seed, k):
    rng = np.random.default_rng(seed)
    recs = np.stack([rng.permutation(N_ITEMS)[:8] for _ in range(12)])
    recs[rng.random(recs.shape) < 0.2] = -1
    dense = (rng.random((12, N_ITEMS)) < 0.3).astype(np.float32)
    dense[0, 0] = 1.0  # at least one user with truth
    truth = sp.csr_matrix(dense)
    out = accuracy_metrics(recs, truth, ks=(k,))
    has = np.diff(truth.indptr) > 0
    for name, values in out.items():
        v = values[has]
        assert ((v >= 0) & (v <= 1 + 1e-12)).all(), name
    assert (out[f"ndcg@{k}"][has] <= out[f"hr@{k}"][has] + 1e-12).all()
    assert (out[f"mrr@{k}"] <= out[f"hr@{k}"]).all()
    assert np.array_equal(out[f"hr@{k}"] > 0, out[f"mrr@{k}"] > 0)


# ---------------------------------------------------------------- list-level metrics
def test_catalog_coverage_counts_distinct_items_and_ignores_padding():
    recs = recs_of([0, 1, 2], [1, 0, -1], [-1, -1, -1])
    assert catalog_coverage(recs, n_items=10, k=3) == 0.3
    assert catalog_coverage(recs, n_items=10, k=1) == 0.2


def test_head_is_the_popular_items_holding_80_percent_of_interactions():
    counts = np.array([1, 10, 0, 5, 3, 1])  # total 20: 10 + 5 = 15 < 16, so item 4 (3) is the last head item
    assert tail_items(counts).tolist() == [True, False, True, False, False, True]
    assert tail_items(counts, head_share=0.5).tolist() == [True, False, True, True, True, True]
    recs = recs_of([1, 3, 0, 2], [5, -1, -1, -1], [-1, -1, -1, -1])
    np.testing.assert_allclose(long_tail_share(recs, tail_items(counts), 4), [0.5, 1.0, np.nan])


def test_novelty_is_mean_self_information_of_popularity_share():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 1, 0]], dtype=np.float32))
    counts = item_popularity(train)
    assert counts.tolist() == [4, 1, 1, 0]
    share = popularity_share(counts, n_users=4)
    np.testing.assert_allclose(share, [1.0, 0.25, 0.25, 0.25])  # never-seen item counted as seen once
    np.testing.assert_allclose(novelty(recs_of([0, 1], [1, -1], [3, 2]), share, 2), [1.0, 2.0, 2.0])


def test_intra_list_diversity_is_mean_pairwise_cosine_distance():
    vecs = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    recs = recs_of([0, 1, -1], [0, 2, -1], [0, 1, 3], [0, -1, -1], [4, 0, -1])
    cos45 = 1 / math.sqrt(2)
    expected = [1.0, 0.0, ((1 - 0) + (1 - cos45) + (1 - cos45)) / 3, np.nan, 1.0]
    np.testing.assert_allclose(intra_list_diversity(recs, vecs, 3, batch_size=2), expected, atol=1e-6)
    np.testing.assert_allclose(intra_list_diversity(recs, vecs, 2)[:2], [1.0, 0.0], atol=1e-6)
