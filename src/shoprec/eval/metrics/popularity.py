"""Popularity-aware list metrics: novelty and long-tail share.

Both read item popularity from the *training* data as the number of distinct users who
interacted with each item (a column sum of the binary user-item matrix).

- Novelty (Zhou et al., PNAS 2010, "self-information"): the mean of ``-log2 p(i)`` over the
  recommended items, where ``p(i)`` is the share of training users who interacted with ``i``.
  Items nobody interacted with are counted as if one user had, so the value stays finite.
- Long tail (Pareto split, as in Abdollahpouri et al., 2019): the *head* is the smallest set of
  most popular items that together hold 80% of the training interactions; every other item,
  including items never interacted with, is the tail. The metric is the fraction of a user's
  recommended items that are in the tail.

Padding (-1) is ignored; a row with no items gives NaN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shoprec.eval.metrics.hits import PAD, check_recs


def item_popularity(train: sp.spmatrix) -> np.ndarray:
    """Distinct users per item in a (n_users, n_items) training matrix: int64 (n_items,)."""
    binary = sp.csr_matrix(train, copy=True)
    binary.eliminate_zeros()
    return np.bincount(binary.indices, minlength=binary.shape[1]).astype(np.int64)


def popularity_share(counts: np.ndarray, n_users: int) -> np.ndarray:
    """``p(i)`` for novelty: users who had item ``i`` / ``n_users``, with counts of 0 taken as 1."""
    if n_users < 1:
        raise ValueError(f"n_users must be positive, got {n_users}")
    return np.maximum(np.asarray(counts, dtype=np.float64), 1.0) / n_users


def tail_items(counts: np.ndarray, head_share: float = 0.8) -> np.ndarray:
    """Boolean (n_items,): True for long-tail items.

    Items are sorted by popularity (ties by index); an item is in the head while the items ranked
    above it hold less than ``head_share`` of all interactions.
    """
    if not 0 < head_share <= 1:
        raise ValueError(f"head_share must be in (0, 1], got {head_share}")
    counts = np.asarray(counts, dtype=np.float64)
    order = np.argsort(-counts, kind="stable")
    ranked = counts[order]
    covered_before = np.cumsum(ranked) - ranked
    tail = np.ones(len(counts), dtype=bool)
    tail[order] = ~((covered_before < head_share * ranked.sum()) & (ranked > 0))
    return tail


def novelty(recs: np.ndarray, share: np.ndarray, k: int) -> np.ndarray:
    """Mean self-information ``-log2 p(i)`` of each user's top K (``share`` from :func:`popularity_share`)."""
    top = check_recs(recs, len(share), k)[:, :k]
    info = -np.log2(np.asarray(share, dtype=np.float64))
    return _row_mean(info, top)


def long_tail_share(recs: np.ndarray, tail: np.ndarray, k: int) -> np.ndarray:
    """Fraction of each user's top K that are tail items (``tail`` from :func:`tail_items`)."""
    top = check_recs(recs, len(tail), k)[:, :k]
    return _row_mean(np.asarray(tail, dtype=np.float64), top)


def _row_mean(values: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Mean of ``values[item]`` over the non-padding items of each row; NaN for empty rows."""
    valid = top != PAD
    picked = np.where(valid, values[np.where(valid, top, 0)], 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, picked.sum(axis=1) / np.maximum(n, 1), np.nan)
