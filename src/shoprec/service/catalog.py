"""The catalog as the service sees it: the serving version's items plus the changes made through
the API since (the :class:`~shoprec.service.overlay.CatalogOverlay`), kept in step across workers.

It answers item facts, renders served items with their current title and price, resolves the anchor
of an item feed, checks that events name known items, stores upserts and deletions, and holds the
search engines of the loaded versions (:mod:`~shoprec.service.searching`), which apply its changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from shoprec.service.ab import VersionManager
from shoprec.service.overlay import CatalogOverlay, NewItems
from shoprec.service.served import NotFound, ServedItem, UnknownItems
from shoprec.service.store.base import ItemRecord, Store
from shoprec.service.versions import Deployed

if TYPE_CHECKING:
    from shoprec.service.searching import Searching

Encoder = Callable[[list[str]], np.ndarray]
"""Texts to item vectors, shape (n, d)."""


class Catalog:
    """Trained items of the loaded versions and the API's catalog changes over them."""

    def __init__(self, store: Store, versions: VersionManager) -> None:
        self.store, self.versions = store, versions
        self.overlay = CatalogOverlay()
        self._checked = 0.0
        self._searching: Searching | None = None
        self.sync(force=True)

    @property
    def searching(self) -> Searching:
        """The loaded versions' search engines (default settings unless the service set its own)."""
        if self._searching is None:
            from shoprec.service.searching import Searching

            self._searching = Searching(self)
        return self._searching

    @searching.setter
    def searching(self, searching: Searching) -> None:
        self._searching = searching

    def sync(self, force: bool = False, every: float = 1.0) -> None:
        """Fold catalog changes made by any worker into the overlay (at most once a second)."""
        now = time.monotonic()
        if not force and now - self._checked < every:
            return
        self._checked = now
        changes = self.store.items_changed_after(self.overlay.seq)
        if changes:
            self.overlay.apply(changes)

    def changed_since(self, seq: int) -> tuple[int, list[ItemRecord]]:
        """The overlay's change counter and its items changed after ``seq`` (latest state of each)."""
        with self.overlay._lock:
            return self.overlay.seq, [r for r in self.overlay.records.values() if r.updated_seq > seq]

    # ------------------------------------------------------------------ reading
    def new(self, dep: Deployed) -> NewItems:
        """Items added through the API that ``dep`` was not trained on."""
        return self.overlay.new_items(id(dep), dep.item_indices, dep.item_vectors.shape[1])

    def anchor(self, dep: Deployed, item_id: str | None) -> int:
        """Index of an item feed's anchor in the version (-1 for an item added since), or NotFound."""
        if not item_id:
            raise NotFound("this feed needs an item id")
        if self.overlay.is_deleted(item_id):
            raise NotFound(f"item {item_id!r} was deleted from the catalog")
        index = dep.item_index(item_id)
        if index < 0 and item_id not in self.new(dep).ids:
            raise NotFound(f"unknown item {item_id!r}: not in the catalog")
        return index

    def item(self, item_id: str) -> dict:
        """Catalog facts of one item (overlay first), or NotFound."""
        self.sync()
        dep = self.versions.default()
        record = self.overlay.record(item_id)
        if record is not None:
            if record.deleted:
                raise NotFound(f"item {item_id!r} was deleted from the catalog")
            return record_dict(record, new=dep.item_index(item_id) < 0)
        index = dep.item_index(item_id)
        if index < 0:
            raise NotFound(f"unknown item {item_id!r}: not in the catalog")
        info = dep.info
        return {
            "item_id": item_id,
            "title": str(info.title[index]),
            "category": str(info.category[index]),
            "brand": str(info.brand[index]),
            "price": float(info.price[index]) if np.isfinite(info.price[index]) else None,
            "in_stock": bool(info.in_stock[index]),
            "tags": list(info.tags[index]),
            "new": False,
        }

    def served(self, dep: Deployed, item_id: str, score: float, source: str, shares: dict) -> ServedItem:
        """A listed item with its current facts (the overlay's when the item was changed)."""
        record = self.overlay.record(item_id)
        if record is not None:
            return ServedItem(
                item_id, record.title, record.category, record.brand, record.price, float(score), source, shares
            )
        index, info = dep.item_index(item_id), dep.info
        price = float(info.price[index]) if np.isfinite(info.price[index]) else None
        return ServedItem(
            item_id,
            str(info.title[index]),
            str(info.category[index]),
            str(info.brand[index]),
            price,
            float(score),
            source,
            shares,
        )

    # ------------------------------------------------------------------ changing
    def check_items(self, item_ids: list[str]) -> None:
        """Events must name catalog items (trained, or added through the API)."""
        self.sync()
        dep = self.versions.default()
        index = dep.item_indices(item_ids)
        unknown = sorted(
            {i for i, x in zip(item_ids, index.tolist(), strict=True) if x < 0 and not self.overlay.record(i)}
        )
        if unknown:
            shown = ", ".join(repr(i) for i in unknown[:5]) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            raise UnknownItems(
                f"unknown item id {shown}: not in the catalog. Add the item first (PUT /v1/items/{{item_id}}); "
                "no event of this request was stored"
            )

    def upsert_items(self, records: list[ItemRecord], encode: Encoder) -> int:
        """Store items with their text vectors, then fold them in."""
        from shoprec.text.itemtext import join_parts

        texts = [join_parts([r.title, r.description, r.category, r.brand]) for r in records]
        vectors = encode(texts)
        stored = [
            ItemRecord(
                r.item_id,
                r.title,
                r.description,
                r.category,
                r.brand,
                r.price,
                r.language,
                r.attributes,
                np.asarray(v, dtype=np.float32),
            )
            for r, v in zip(records, vectors, strict=True)
        ]
        seq = self.store.upsert_items(stored)
        self.sync(force=True)
        return seq

    def delete_item(self, item_id: str) -> None:
        dep = self.versions.default()
        index = dep.item_index(item_id)
        if not self.store.delete_item(item_id):
            if index < 0:
                raise NotFound(f"unknown item {item_id!r}: not in the catalog")
            self.store.upsert_items([ItemRecord(item_id, str(dep.info.title[index]))])
            self.store.delete_item(item_id)
        self.sync(force=True)


def record_dict(record: ItemRecord, new: bool) -> dict:
    """An API item's facts in the shape of :meth:`Catalog.item`."""
    return {
        "item_id": record.item_id,
        "title": record.title,
        "category": record.category,
        "brand": record.brand,
        "price": record.price,
        "in_stock": record.attributes.get("in_stock", True) is not False,
        "tags": [],
        "new": new,
    }
