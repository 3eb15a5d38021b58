"""Per-item facts the pipeline's features, rules and explanations read, aligned with item indices.

:class:`ItemInfo` is built once from a :class:`~shoprec.data.Dataset`'s catalog: category path and
its levels, brand, price, launch time, title, language, tags and stock. Missing values are explicit
(empty string, NaN price, -1 time) so rules can treat "unknown" on purpose.

>>> info = ItemInfo.from_dataset(dataset)        # doctest: +SKIP
>>> info.category[42], info.top[42], info.price[42]   # doctest: +SKIP
('Home & Kitchen > Kitchen > Mugs', 'Home & Kitchen', 9.99)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.text.tags import item_tags

STOCK_ATTRIBUTES = ("in_stock", "stock")
"""Free catalog attributes read as stock: a boolean, or a count where 0 means out of stock."""


@dataclass
class ItemInfo:
    """Catalog facts as arrays indexed by item index."""

    item_id: np.ndarray  # (n,) object: external ids
    title: np.ndarray  # (n,) object, "" when unknown
    category: np.ndarray  # (n,) object: full path "A > B > C", "" when unknown
    top: np.ndarray  # (n,) object: first level of the path
    brand: np.ndarray  # (n,) object, "" when unknown
    price: np.ndarray  # (n,) float64, NaN when unknown
    created: np.ndarray  # (n,) int64 unix seconds, -1 when unknown
    language: np.ndarray  # (n,) object, "" when unknown
    in_stock: np.ndarray  # (n,) bool, True unless the catalog says otherwise
    tags: list[list[str]]  # per item, [] when the catalog has no tags
    attributes: list[dict] = field(default_factory=list)  # per item free attributes; [] = none known

    def __len__(self) -> int:
        return len(self.item_id)

    @property
    def n_items(self) -> int:
        return len(self.item_id)

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> ItemInfo:
        items = dataset.items
        n = len(items)
        category = _text(items, "category", n)
        created = items["created_at"] if "created_at" in items else pd.Series([pd.NA] * n)
        return cls(
            item_id=items["item_id"].astype(str).to_numpy(dtype=object),
            title=_text(items, "title", n),
            category=category,
            top=np.array([c.split(" > ")[0].strip() if c else "" for c in category], dtype=object),
            brand=_text(items, "brand", n),
            price=pd.to_numeric(items.get("price", pd.Series([np.nan] * n)), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            ),
            created=pd.to_numeric(created, errors="coerce").fillna(-1).to_numpy(dtype=np.int64),
            language=_text(items, "language", n),
            in_stock=_stock(items, n),
            tags=item_tags(dataset) or [[] for _ in range(n)],
            attributes=_attributes(items),
        )

    def level(self, depth: int) -> np.ndarray:
        """Category path cut to its first ``depth`` levels ("" where unknown)."""
        return np.array([" > ".join(c.split(" > ")[:depth]) if c else "" for c in self.category], dtype=object)


def _text(items: pd.DataFrame, column: str, n: int) -> np.ndarray:
    if column not in items:
        return np.full(n, "", dtype=object)
    return items[column].astype("string").fillna("").to_numpy(dtype=object)


def _attributes(items: pd.DataFrame) -> list[dict]:
    if "attributes" not in items:
        return [{} for _ in range(len(items))]
    return [json.loads(a) if isinstance(a, str) and a else {} for a in items["attributes"]]


def _stock(items: pd.DataFrame, n: int) -> np.ndarray:
    stock = np.ones(n, dtype=bool)
    for i, attrs in enumerate(_attributes(items)):
        for key in STOCK_ATTRIBUTES:
            if key in attrs:
                value = attrs[key]
                if isinstance(value, str):
                    value = value.strip().lower() not in ("false", "no", "0", "")
                stock[i] = bool(value) and not (isinstance(value, int | float) and value <= 0)
    return stock
