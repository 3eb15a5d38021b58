"""Facets of a result set: counts by top-level category, leaf category, brand and price bucket.

Facets are counted over the products a search's ordering holds (``SearchResult.total`` of them: the
fused candidate set, or every allowed product when browsing), not only over the page shown, so a
client can offer "Nordhaus (12)" before the shopper pages on.

- ``category``: the first level of the category path (``Home & Kitchen``);
- ``category_leaf``: the whole path (``Home & Kitchen > Kitchen > Kettles``);
- ``brand``: the brand as written on the product;
- ``price``: half-open buckets ``[low, high)`` on a 1-2.5-5 ladder (``0-10``, ``10-25``, ``25-50``,
  ``50-100``, ... the last ``10000+``), in price order.

A product with no category, brand or price is counted under ``(none)`` (``(unknown)`` for the price),
so every facet's counts add up to the total.

>>> facets(table, np.array([0, 1, 2]))["brand"]      # doctest: +SKIP
[('Nordhaus', 2), ('Makito', 1)]
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from shoprec.search.products import ProductTable

PRICE_EDGES = (0.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)
"""Lower edges of the price buckets; the last bucket is open above."""
NONE = "(none)"
UNKNOWN_PRICE = "(unknown)"


def price_bucket_labels() -> list[str]:
    """Bucket labels in price order, then the unknown-price label."""
    labels = [f"{lo:g}-{hi:g}" for lo, hi in zip(PRICE_EDGES, PRICE_EDGES[1:], strict=False)]
    return [*labels, f"{PRICE_EDGES[-1]:g}+", UNKNOWN_PRICE]


def price_bucket(price: float) -> str:
    """The bucket label of one price (negative prices go to the first bucket)."""
    return price_bucket_labels()[int(_bucket_index(np.array([price], dtype=np.float64))[0])]


def _bucket_index(prices: np.ndarray) -> np.ndarray:
    """Index into :func:`price_bucket_labels` per price (the last label for an unknown price)."""
    index = np.maximum(np.searchsorted(PRICE_EDGES, prices, side="right") - 1, 0)
    return np.where(np.isnan(prices), len(PRICE_EDGES), index)


def _counts(values: np.ndarray) -> list[tuple[str, int]]:
    """(value, count) by count, then value; empty values counted as :data:`NONE`."""
    if not len(values):
        return []
    unique, counts = np.unique(values.astype(str), return_counts=True)
    merged: Counter[str] = Counter()
    for value, n in zip(unique.tolist(), counts.tolist(), strict=True):
        merged[value or NONE] += n
    return sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))


def facets(table: ProductTable, positions: np.ndarray) -> dict[str, list[tuple[str, int]]]:
    """Counts over the products at ``positions``: category (top level), category_leaf, brand (by
    count, then name) and price (bucket order, empty buckets left out)."""
    positions = np.asarray(positions, dtype=np.int64)
    leaf = _counts(table.category[positions])
    top: Counter[str] = Counter()
    leaf_out: Counter[str] = Counter()
    for path, n in leaf:  # few distinct paths: normalise their spacing and cut to the top level here
        clean = " > ".join(level.strip() for level in path.split(">")) if path != NONE and path.strip() else NONE
        leaf_out[clean] += n
        top[clean.split(" > ")[0]] += n
    labels = price_bucket_labels()
    buckets = np.bincount(_bucket_index(table.price[positions]), minlength=len(labels))
    return {
        "category": sorted(top.items(), key=lambda kv: (-kv[1], kv[0])),
        "category_leaf": sorted(leaf_out.items(), key=lambda kv: (-kv[1], kv[0])),
        "brand": _counts(table.brand[positions]),
        "price": [(label, int(n)) for label, n in zip(labels, buckets.tolist(), strict=True) if n],
    }
