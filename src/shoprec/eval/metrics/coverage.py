"""Catalogue coverage: how much of the catalogue a model ever recommends."""

from __future__ import annotations

import numpy as np

from shoprec.eval.metrics.hits import PAD, check_recs


def catalog_coverage(recs: np.ndarray, n_items: int, k: int) -> float:
    """Distinct items in anyone's top K / ``n_items`` (a list-level number, not per user).

    >>> catalog_coverage(np.array([[0, 1], [1, -1]]), n_items=4, k=2)
    0.5
    """
    top = check_recs(recs, n_items, k)[:, :k]
    return float(len(np.unique(top[top != PAD])) / n_items) if n_items else 0.0
