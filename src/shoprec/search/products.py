"""The searchable catalogue: one :class:`Product` per item, kept in a table that accepts upserts and removals.

Search works on positions ("docs") in a :class:`ProductTable`; the first ``dataset.n_items`` positions are
the dataset's item indices. An upsert of a known item replaces its row in place; a new item is appended;
a removal marks the row dead (positions are never reused, so every index built over the table stays
aligned with it).

Colour and size come from the item's free ``attributes`` (JSON; keys ``colour`` or ``color``, and
``size``), which is where the data layer folds extra catalogue columns: the demo shop's items carry a
colour there (``{"colour": "green", "material": "minky fabric"}``) and no size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError


@dataclass(frozen=True)
class Product:
    """What search reads of an item. ``price`` is NaN when unknown; ``category`` is a path ``A > B > C``;
    ``colour`` and ``size`` are empty when the catalogue does not say."""

    item_id: str
    title: str = ""
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float = float("nan")
    tags: str = ""
    colour: str = ""
    size: str = ""


def _text(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame:
        return [""] * len(frame)
    return ["" if pd.isna(v) else str(v) for v in frame[column].tolist()]


def products_from_dataset(dataset: Dataset) -> list[Product]:
    """One :class:`Product` per item index of ``dataset`` (missing columns read as empty)."""
    items = dataset.items
    price = (
        pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64)
        if "price" in items
        else np.full(len(items), np.nan)
    )
    columns = {name: _text(items, name) for name in ("item_id", "title", "description", "category", "brand", "tags")}
    colour, size = _colour_and_size(items)
    return [
        Product(
            item_id=columns["item_id"][i],
            title=columns["title"][i],
            description=columns["description"][i],
            category=columns["category"][i],
            brand=columns["brand"][i],
            price=float(price[i]),
            tags=columns["tags"][i],
            colour=colour[i],
            size=size[i],
        )
        for i in range(len(items))
    ]


def _colour_and_size(items: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Each item's colour and size from its ``attributes`` JSON (``colour``/``color``, ``size``)."""
    colour, size = [""] * len(items), [""] * len(items)
    if "attributes" not in items:
        return colour, size
    for i, raw in enumerate(_text(items, "attributes")):
        if not raw.strip():
            continue
        try:
            attrs = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ShoprecError(
                f"item '{items['item_id'].iloc[i]}' (row {i + 1}): attributes are not JSON ({err.msg}): "
                'write them as a JSON object, e.g. {"colour": "red"}'
            ) from None
        if not isinstance(attrs, dict):
            continue
        for key in ("colour", "color"):
            if attrs.get(key) not in (None, ""):
                colour[i] = str(attrs[key]).strip()
                break
        if attrs.get("size") not in (None, ""):
            size[i] = str(attrs["size"]).strip()
    return colour, size


class ProductTable:
    """Products by position, with arrays the filters read (price, brand, category, colour, size) and a
    live mask."""

    def __init__(self, products: Iterable[Product]) -> None:
        self.products: list[Product] = []
        self._where: dict[str, int] = {}
        self.version = 0  # counts changes, so what is built from the table knows when to rebuild
        self.alive = np.zeros(0, dtype=bool)
        self.price = np.zeros(0, dtype=np.float64)
        self.brand_key = np.zeros(0, dtype=object)  # brand trimmed and case folded, for the brand filter
        self.brand = np.zeros(0, dtype=object)  # brand trimmed, as written (for facets)
        self.category = np.zeros(0, dtype=object)  # category path as given, for the category filter
        self.colour_key = np.zeros(0, dtype=object)  # colour trimmed and case folded ("" when unknown)
        self.size_key = np.zeros(0, dtype=object)  # size trimmed and case folded ("" when unknown)
        self.upsert(products)

    def __len__(self) -> int:
        """Positions, dead ones included (the size every index over the table has)."""
        return len(self.products)

    def position(self, item_id: str) -> int:
        """Position of a live item, -1 when unknown or removed."""
        pos = self._where.get(str(item_id), -1)
        return pos if pos >= 0 and self.alive[pos] else -1

    def upsert(self, products: Iterable[Product]) -> list[int]:
        """Add new items, replace known ones (a removed item comes back); returns their positions."""
        self.version += 1
        positions = []
        new_price = []
        for product in products:
            if not product.item_id:
                raise ShoprecError("a product needs a non-empty item_id")
            pos = self._where.get(product.item_id)
            if pos is None:
                pos = len(self.products)
                self._where[product.item_id] = pos
                self.products.append(product)
                new_price.append(product.price)
            else:
                self.products[pos] = product
            positions.append(pos)
        grow = len(self.products) - len(self.alive)
        self.alive = np.concatenate([self.alive, np.ones(grow, dtype=bool)])
        self.price = np.concatenate([self.price, np.asarray(new_price, dtype=np.float64)])
        self.brand_key = np.concatenate([self.brand_key, np.empty(grow, dtype=object)])
        self.brand = np.concatenate([self.brand, np.empty(grow, dtype=object)])
        self.category = np.concatenate([self.category, np.empty(grow, dtype=object)])
        self.colour_key = np.concatenate([self.colour_key, np.empty(grow, dtype=object)])
        self.size_key = np.concatenate([self.size_key, np.empty(grow, dtype=object)])
        for pos in positions:
            product = self.products[pos]
            self.alive[pos] = True
            self.price[pos] = product.price
            self.brand_key[pos] = product.brand.strip().casefold()
            self.brand[pos] = product.brand.strip()
            self.category[pos] = product.category
            self.colour_key[pos] = product.colour.strip().casefold()
            self.size_key[pos] = product.size.strip().casefold()
        return positions

    def remove(self, item_ids: Iterable[str]) -> list[int]:
        """Mark items dead; unknown ids are an error (nothing is removed then)."""
        ids = [str(i) for i in item_ids]
        unknown = [i for i in ids if i not in self._where]
        if unknown:
            raise ShoprecError(f"cannot remove unknown item ids {unknown[:5]}: they were never added")
        positions = [self._where[i] for i in ids]
        self.alive[positions] = False
        self.version += 1
        return positions
