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
    if price is None or np.isnan(price):
        return UNKNOWN_PRICE
    at = max(int(np.searchsorted(PRICE_EDGES, price, side="right")) - 1, 0)
    labels = price_bucket_labels()
    return labels[at]


def _ranked(counter: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def facets(table: ProductTable, positions: np.ndarray) -> dict[str, list[tuple[str, int]]]:
    """Counts over the products at ``positions``: category (top level), category_leaf, brand (by
    count, then name) and price (bucket order, empty buckets left out)."""
    top: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    brand: Counter[str] = Counter()
    price: Counter[str] = Counter()
    for pos in np.asarray(positions, dtype=np.int64).tolist():
        product = table.products[pos]
        path = " > ".join(level.strip() for level in product.category.split(">")) if product.category.strip() else ""
        top[path.split(" > ")[0] if path else NONE] += 1
        leaf[path or NONE] += 1
        brand[product.brand.strip() or NONE] += 1
        price[price_bucket(product.price)] += 1
    order = {label: i for i, label in enumerate(price_bucket_labels())}
    return {
        "category": _ranked(top),
        "category_leaf": _ranked(leaf),
        "brand": _ranked(brand),
        "price": sorted(price.items(), key=lambda kv: order[kv[0]]),
    }
