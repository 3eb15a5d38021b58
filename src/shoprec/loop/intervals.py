"""Confidence intervals for proportions (click-through, conversion) and their differences.

Fixed-sample intervals: valid when looked at once. For an interval that stays valid when looked at
again and again while data arrives, use the confidence sequence of :mod:`shoprec.loop.sequential`.

Every function takes scalars or numpy arrays (broadcast together) and returns the same shape.

>>> low, high = wilson(12, 200)
>>> round(float(low), 3), round(float(high), 3)
(0.035, 0.102)
>>> low, high = newcombe(10, 200, 25, 200)     # p2 - p1 = 0.075
>>> bool(low > 0)
True
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

Z95 = NormalDist().inv_cdf(0.975)
"""The two-sided 95% normal quantile (1.95996...)."""


def z_value(confidence: float) -> float:
    """The normal quantile of a two-sided interval with this coverage (0.95 -> 1.96)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), not {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k, n, z: float = Z95):
    """Wilson score interval ``(low, high)`` for a proportion ``k / n``; ``(0, 1)`` where ``n`` is 0.

    Unlike the normal (Wald) interval it stays inside [0, 1] and keeps its coverage near 0 and 1,
    where click-through rates live, and never collapses to a point when ``k`` is 0.
    """
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    safe = np.maximum(n, 1.0)
    p = k / safe
    denom = 1 + z * z / safe
    centre = (p + z * z / (2 * safe)) / denom
    half = z * np.sqrt(p * (1 - p) / safe + z * z / (4 * safe * safe)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return _out(low), _out(high)


def newcombe(k1, n1, k2, n2, z: float = Z95):
    """Newcombe's hybrid score interval ``(low, high)`` for the difference ``k2/n2 - k1/n1``.

    Built from the two Wilson intervals (Newcombe 1998, method 10): good coverage for small counts
    and rates near 0, where the Wald interval of a difference is too narrow.
    """
    k1, n1, k2, n2 = (np.asarray(v, dtype=float) for v in (k1, n1, k2, n2))
    p1, p2 = k1 / np.maximum(n1, 1.0), k2 / np.maximum(n2, 1.0)
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    diff = p2 - p1
    low = diff - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = diff + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return _out(np.clip(low, -1.0, 1.0)), _out(np.clip(high, -1.0, 1.0))


def _out(values: np.ndarray):
    """A float for a scalar input, the array otherwise."""
    return float(values) if values.ndim == 0 else values
