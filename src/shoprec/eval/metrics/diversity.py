"""Intra-list diversity: how different the items within one recommendation list are."""

from __future__ import annotations

import numpy as np

from shoprec.eval.metrics.hits import PAD, check_recs


def intra_list_diversity(recs: np.ndarray, item_vectors: np.ndarray, k: int, batch_size: int = 1024) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cosine similarity) within each user's top K.

    ``item_vectors`` is (n_items, d), e.g. text embeddings or category one-hots; an all-zero
    vector has similarity 0 to everything. Padding is skipped; a row with fewer than two items
    gives NaN. Computed in blocks of ``batch_size`` users to bound memory.

    >>> vecs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    >>> intra_list_diversity(np.array([[0, 1], [0, 2]]), vecs, k=2).tolist()
    [1.0, 0.0]
    """
    vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"item_vectors must be 2-D (n_items, d), got shape {vectors.shape}")
    top = check_recs(recs, len(vectors), k)[:, :k]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    out = np.full(len(top), np.nan)
    for start in range(0, len(top), batch_size):
        block = top[start : start + batch_size]
        valid = block != PAD  # (B, K)
        v = unit[np.where(valid, block, 0)] * valid[..., None]  # (B, K, d), padding rows zeroed
        sim = np.einsum("bkd,bjd->bkj", v, v, dtype=np.float64)  # (B, K, K)
        n = valid.sum(axis=1)
        pairs = n * (n - 1)  # ordered pairs i != j
        off_diagonal = sim.sum(axis=(1, 2)) - np.einsum("bkk->b", sim)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + len(block)] = np.where(pairs > 0, 1.0 - off_diagonal / np.maximum(pairs, 1), np.nan)
    return out
