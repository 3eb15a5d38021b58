"""Diversity and long-tail helpers for rerankers: MMR, the head/tail split, intra-list distance.

:func:`mmr` reorders a ranked list by maximal marginal relevance: each step takes the item with the
best ``lambda * relevance - (1 - lambda) * (max cosine to the items already taken)``, so a list of
ten near-identical mugs turns into mugs, a kettle, some tea. :func:`head_mask` marks the popular
"head" of the catalogue (the items making up most interactions); everything else is the long tail
that a long-tail boost lifts. :func:`intra_list_distance` measures how varied a list is.

>>> order = mmr(np.array([7, 3, 9]), np.array([0.9, 0.8, 0.1]), vectors, lambda_=0.5, k=3)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from shoprec.errors import ConfigError, ModelError


def mmr(candidates_order: np.ndarray, relevance: np.ndarray, vectors: np.ndarray, lambda_: float, k: int) -> np.ndarray:
    """The first ``k`` items of ``candidates_order`` picked by maximal marginal relevance.

    ``candidates_order`` holds item indices (rows of ``vectors``, shape (n_items, d)) and
    ``relevance`` their scores. Relevance is min-max normalised over these candidates so that
    ``lambda_`` weighs two quantities on the same [0, 1] scale (cosine similarity lies in
    [-1, 1]); NaN or -inf relevance counts as the lowest, +inf as the highest. ``lambda_ = 1``
    returns the candidates sorted by relevance (ties keep their order), ``lambda_ = 0`` picks
    for diversity alone after the most relevant item. Ties in the MMR score go to the more
    relevant candidate, then the earlier one.

    Cost: one ``(n, d) @ (d,)`` product per pick (incremental max-similarity update), no
    ``n x n`` similarity matrix.
    """
    items = np.asarray(candidates_order, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float64)
    if items.ndim != 1 or rel.shape != items.shape:
        raise ModelError(f"mmr needs one relevance per candidate; got {rel.shape} for {items.shape} candidates")
    if len(items) and (items.min() < 0 or items.max() >= len(vectors)):
        raise ModelError(f"mmr: candidate item indices must lie in [0, {len(vectors)}) (rows of vectors)")
    return items[mmr_positions(rel, np.asarray(vectors)[items], lambda_, k)]


def mmr_positions(relevance: np.ndarray, vectors: np.ndarray, lambda_: float, k: int) -> np.ndarray:
    """Like :func:`mmr`, but over aligned rows: returns positions into ``relevance``/``vectors``."""
    if not 0.0 <= lambda_ <= 1.0:
        raise ConfigError(f"mmr lambda must lie in [0, 1], got {lambda_}", fix="1 = pure relevance, 0 = pure diversity")
    n = len(relevance)
    k = min(int(k), n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    raw = np.asarray(relevance, dtype=np.float64)
    rel = _unit_range(raw)
    unit = _normalise_rows(np.asarray(vectors, dtype=np.float64))  # (n, d)
    tiebreak = np.empty(n, dtype=np.int64)  # rank by raw relevance (0 = most relevant), exact where scaling rounds
    tiebreak[np.lexsort((np.arange(n), -np.where(np.isnan(raw), -np.inf, raw)))] = np.arange(n)
    max_sim = np.full(n, -np.inf)  # max cosine to the picked items (may be negative)
    free = np.ones(n, dtype=bool)
    picked = np.empty(k, dtype=np.int64)
    for step in range(k):
        penalty = max_sim if step else 0.0  # nothing picked yet: no redundancy
        value = np.where(free, lambda_ * rel - (1.0 - lambda_) * penalty, -np.inf)
        best = np.flatnonzero(value == value.max())
        choice = best[np.argmin(tiebreak[best])]
        picked[step] = choice
        free[choice] = False
        np.maximum(max_sim, unit @ unit[choice], out=max_sim)  # (n,)
    return picked


def _unit_range(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] over the finite values; NaN/-inf -> 0, +inf -> 1, all equal -> 0."""
    finite = np.isfinite(values)
    if not finite.any():
        return np.where(values == np.inf, 1.0, 0.0)
    lo, hi = values[finite].min(), values[finite].max()
    span = hi - lo
    scaled = (values - lo) / span if span > 0 else np.zeros_like(values)
    scaled = np.where(values == np.inf, 1.0, scaled)
    return np.where(np.isnan(values) | (values == -np.inf), 0.0, scaled)


def _normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalised rows; zero rows stay zero (similarity 0 to everything)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def head_mask(counts: np.ndarray, share: float) -> np.ndarray:
    """Items in the popular head: the most popular items making up ``share`` of all interactions.

    Items are taken by count, most popular first, until their counts reach ``share`` of the total;
    every item with at least the count of the last one taken is head too, so equally popular items
    are never split between head and tail. Items never interacted with are always tail, and so is
    everything when there are no interactions at all.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if not 0.0 < share <= 1.0:
        raise ConfigError(f"head_share must lie in (0, 1], got {share}", fix="0.8 = items making up 80% of events")
    total = counts.sum()
    if len(counts) == 0 or total <= 0:
        return np.zeros(len(counts), dtype=bool)
    order = np.argsort(-counts, kind="stable")
    cumulative = np.cumsum(counts[order])
    cut = min(int(np.searchsorted(cumulative, share * total, side="left")), len(counts) - 1)
    threshold = counts[order[cut]]
    return (counts >= threshold) & (counts > 0)


def intra_list_distance(items: np.ndarray, vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cosine) within a list; 0.0 for fewer than two items."""
    items = np.asarray(items, dtype=np.int64)
    n = len(items)
    if n < 2:
        return 0.0
    unit = _normalise_rows(np.asarray(vectors, dtype=np.float64)[items])  # (n, d)
    sims = unit @ unit.T  # (n, n)
    off_diagonal = sims.sum() - np.trace(sims)
    return float(1.0 - off_diagonal / (n * (n - 1)))
