"""The one order of items by score, and the one NDCG, for every layer.

**Order.** Items are ranked by score, highest first, and equal scores by column (item) index,
lowest first. NaN and ``-inf`` are never ranked: a row with fewer than k rankable items is padded
with :data:`PAD_ITEM`. The order is total, so the same scores give the same list whatever the batch,
the block size or numpy's partition algorithm, and two runs of the same model give the same metrics.
:func:`top_k` builds lists in this order.

**Ties in NDCG.** A target's rank is its place in that same order (:func:`target_ranks`): it loses a
tie to every lower-index item and wins it against every higher-index one. Chosen so that every NDCG
in the project measures the list a model would actually show: the validation NDCG that stops
LightGCN and SASRec training equals the evaluation's NDCG of the :func:`top_k` lists from the same
scores. Counting a tie for the target (as training once did) rewards ties: a model whose scores
collapse to a constant would reach NDCG 1. Counting every tie against it, or taking the expected rank
over ties, would be fair to the model but describe a list nobody is shown.

**NDCG** (:func:`ndcg_from_hits`) is binary: the sum of ``1 / log2(rank + 2)`` over hits at 0-based
ranks below K, divided by the best possible, ``min(n_relevant, K)`` hits at the top. This module
imports only numpy, so models, the pipeline and evaluation all use it.

>>> scores = np.array([[0.5, 0.9, 0.5, 0.5]])
>>> top_k(scores, 3)[0].tolist()                    # 1 first, then the tied 0 and 2 by index
[[1, 0, 2]]
>>> target_ranks(scores, np.array([2])).tolist()    # item 2 is third: after 1, and after 0 on the tie
[2]
>>> ndcg_of_ranks(np.array([2]), k=3).round(4).tolist()
[0.5]
"""

from __future__ import annotations

import numpy as np

PAD_ITEM = -1
"""Item index that fills a list with fewer than k rankable items (its score is NaN)."""


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row of ``scores`` (n, m) in the module's order; ``(items, values)``
    of shape (n, k), int64 and float32, with ``-inf``/NaN entries as PAD_ITEM / NaN."""
    n, m = scores.shape
    if k < 0:
        raise ValueError(f"top_k needs k >= 0, got {k}")
    if k == 0 or m == 0:
        return np.full((n, k), PAD_ITEM, dtype=np.int64), np.full((n, k), np.nan, dtype=np.float32)
    width = min(k, m)
    safe = np.where(np.isnan(scores), -np.inf, scores)
    if width < m:
        part = _lowest_index_at_cut(safe, np.argpartition(-safe, width - 1, axis=1)[:, :width])
    else:
        part = np.broadcast_to(np.arange(m), (n, m))
    part_scores = np.take_along_axis(safe, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)  # score desc, then index asc
    idx = np.take_along_axis(part, order, axis=1)
    val = np.take_along_axis(part_scores, order, axis=1)
    items = np.full((n, k), PAD_ITEM, dtype=np.int64)
    out = np.full((n, k), np.nan, dtype=np.float32)
    valid = np.isfinite(val)
    items[:, :width] = np.where(valid, idx, PAD_ITEM)
    out[:, :width] = np.where(valid, val, np.nan)
    return items, out


def _lowest_index_at_cut(safe: np.ndarray, part: np.ndarray) -> np.ndarray:
    """``part`` (n, w) from argpartition, with the items tied at the cut (the w-th best score)
    replaced by the lowest-index items of that score: argpartition picks among them in no stated
    order. Only rows with more tied items than places are redone."""
    width = part.shape[1]
    taken = np.take_along_axis(safe, part, axis=1)
    cut = taken.min(axis=1, keepdims=True)  # (n, 1)
    at_cut = safe == cut  # (n, m)
    redo = np.flatnonzero(at_cut.sum(axis=1) > (taken == cut).sum(axis=1))
    if len(redo) == 0:
        return part
    part = part.copy()
    for r in redo:
        above = np.flatnonzero(safe[r] > cut[r, 0])  # fewer than width
        part[r, : len(above)] = above
        part[r, len(above) :] = np.flatnonzero(at_cut[r])[: width - len(above)]  # lowest indices
    return part


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based place of ``targets[i]`` (a column) in row i of ``scores`` (n, m), in the order of
    :func:`top_k`; ``m`` (after any list) when the target's own score is NaN or ``-inf``."""
    targets = np.asarray(targets, dtype=np.int64)
    target = scores[np.arange(len(scores)), targets][:, None]  # (n, 1)
    ahead = (scores > target).sum(axis=1)
    tied_before = ((scores == target) & (np.arange(scores.shape[1]) < targets[:, None])).sum(axis=1)
    return np.where(np.isfinite(target[:, 0]), ahead + tied_before, scores.shape[1])


def ndcg_from_hits(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """NDCG@K per row of ``hits`` (n, K), True where the item at that rank is relevant;
    ``n_relevant`` (n,) counts each row's relevant items, listed or not. NaN where it is 0."""
    k = hits.shape[1]
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # (k,) gain of a hit at rank 1..k
    ideal = np.r_[0.0, np.cumsum(discount)][np.minimum(n_relevant, k)]  # best DCG for each row
    dcg = hits @ discount
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def ndcg_of_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of one relevant item per row at 0-based ``ranks`` (as :func:`target_ranks` gives)."""
    ranks = np.asarray(ranks)
    hits = ranks[:, None] == np.arange(k)  # (n, k)
    return ndcg_from_hits(hits, np.ones(len(ranks), dtype=np.int64))
