"""Which recommended items are relevant: the one table every accuracy metric is built from."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PAD = -1
"""Padding in a recommendation row (fewer than k items); never relevant."""


def check_recs(recs: np.ndarray, n_items: int, k: int | None = None) -> np.ndarray:
    """Validate a (n_users, width) array of item indices (-1 = padding) and return it as int64."""
    recs = np.asarray(recs)
    if recs.ndim != 2 or not np.issubdtype(recs.dtype, np.integer):
        raise ValueError(f"recs must be a 2-D integer array (n_users, k), got {recs.dtype} with shape {recs.shape}")
    if recs.size and (recs.min() < PAD or recs.max() >= n_items):
        raise ValueError(f"recs holds item indices outside -1..{n_items - 1} (min {recs.min()}, max {recs.max()})")
    if k is not None and not 1 <= k <= recs.shape[1]:
        raise ValueError(f"k={k} is not between 1 and the list length {recs.shape[1]}")
    return recs.astype(np.int64, copy=False)


def hit_matrix(recs: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_users, width): True where ``recs[u, j]`` is one of row ``u``'s truth items.

    Padding never hits, and an item repeated within a row only counts at its first position, so
    recall can never exceed 1.
    """
    truth = sp.csr_matrix(truth)
    if truth.shape[0] != len(recs):
        raise ValueError(f"truth has {truth.shape[0]} rows but recs has {len(recs)}: rows must be aligned")
    n_items = truth.shape[1]
    recs = check_recs(recs, n_items)
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    stored = truth.data != 0
    truth_keys = rows[stored] * n_items + truth.indices[stored]
    valid = recs != PAD
    rec_keys = np.arange(len(recs), dtype=np.int64)[:, None] * n_items + np.where(valid, recs, 0)
    return np.isin(rec_keys, truth_keys) & valid & ~_repeats(recs)


def relevant_counts(truth: sp.csr_matrix) -> np.ndarray:
    """Number of truth items per row (explicit zeros do not count)."""
    truth = sp.csr_matrix(truth)
    rows = np.repeat(np.arange(truth.shape[0]), np.diff(truth.indptr))
    return np.bincount(rows[truth.data != 0], minlength=truth.shape[0])


def _repeats(recs: np.ndarray) -> np.ndarray:
    """True at every occurrence of an item after its first in the same row."""
    order = np.argsort(recs, axis=1, kind="stable")
    ordered = np.take_along_axis(recs, order, axis=1)
    again = np.zeros(recs.shape, dtype=bool)
    again[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
    out = np.zeros(recs.shape, dtype=bool)
    np.put_along_axis(out, order, again, axis=1)
    return out
