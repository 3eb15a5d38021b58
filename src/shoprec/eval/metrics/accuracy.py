"""Top-K accuracy with binary relevance: HR, recall, precision, F1, NDCG and MRR.

Each function takes ``recs`` (n_users, width) int item indices, best first, -1 = padding, and
``truth`` (CSR, one row per row of ``recs``) and returns one value per user, so callers can take
means and confidence intervals. Rows without truth items give NaN where the metric divides by
their count (recall, F1, NDCG); evaluate only users with truth.

Definitions follow RecBole: recall divides by |truth| (LensKit divides by min(|truth|, K), which
only differs when a user has more than K truth items) and precision divides by K even when the
list is padded (a shorter list does not earn a higher precision). NDCG's ideal DCG places
min(|truth|, K) hits at the top; its formula is :func:`shoprec.ranks.ndcg_from_hits`, the one that
training and fusion tuning use too. Lists made by :func:`shoprec.ranks.top_k` break score ties by
item index, so the same scores always give the same metrics.

>>> import scipy.sparse as sp
>>> truth = sp.csr_matrix(([1.0], ([0], [7])), shape=(1, 10))
>>> ndcg(np.array([[3, 7, -1]]), truth, k=3).round(4).tolist()
[0.6309]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from shoprec.eval.metrics.hits import check_recs, hit_matrix, relevant_counts
from shoprec.ranks import ndcg_from_hits


def hit_rate(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """HR@K: 1 when any truth item is in the top K, else 0."""
    return _hr(_hits(recs, truth, k))


def recall(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """Recall@K: truth items found in the top K / number of truth items."""
    return _recall(_hits(recs, truth, k), relevant_counts(truth))


def precision(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """Precision@K: truth items found in the top K / K."""
    return _precision(_hits(recs, truth, k))


def f1(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """F1@K: harmonic mean of precision@K and recall@K per user (0 when both are 0)."""
    hits = _hits(recs, truth, k)
    return _f1(_precision(hits), _recall(hits, relevant_counts(truth)))


def ndcg(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """NDCG@K: sum of 1/log2(rank + 1) over hits, divided by the best possible for this user."""
    return ndcg_from_hits(_hits(recs, truth, k), relevant_counts(truth))


def mrr(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """MRR@K: 1 / rank of the first hit in the top K, 0 without a hit."""
    return _mrr(_hits(recs, truth, k))


def accuracy_metrics(recs: np.ndarray, truth: sp.csr_matrix, ks: Iterable[int]) -> dict[str, np.ndarray]:
    """All of the above at every K in ``ks``, from one hit table: ``{"ndcg@10": per-user array, ...}``."""
    ks = sorted(set(ks))
    all_hits = hit_matrix(check_recs(recs, truth.shape[1], max(ks)), truth)
    n_rel = relevant_counts(truth)
    out = {}
    for k in ks:
        hits = all_hits[:, :k]
        p, r = _precision(hits), _recall(hits, n_rel)
        out.update({f"hr@{k}": _hr(hits), f"recall@{k}": r, f"precision@{k}": p, f"f1@{k}": _f1(p, r)})
        out.update({f"ndcg@{k}": ndcg_from_hits(hits, n_rel), f"mrr@{k}": _mrr(hits)})
    return out


def _hits(recs: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    return hit_matrix(check_recs(recs, truth.shape[1], k)[:, :k], truth)


def _hr(hits: np.ndarray) -> np.ndarray:
    return hits.any(axis=1).astype(np.float64)


def _recall(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_rel > 0, hits.sum(axis=1) / np.maximum(n_rel, 1), np.nan)


def _precision(hits: np.ndarray) -> np.ndarray:
    return hits.sum(axis=1) / hits.shape[1]


def _f1(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    total = p + r
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 2 * p * r / np.where(total > 0, total, 1.0), np.where(np.isnan(r), np.nan, 0.0))


def _mrr(hits: np.ndarray) -> np.ndarray:
    first = hits.argmax(axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)
