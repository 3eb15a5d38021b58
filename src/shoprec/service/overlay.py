"""Catalog changes made through the API after a version was trained.

Upserted and deleted items live in the store; every worker folds them into a :class:`CatalogOverlay`
(polling :meth:`Store.items_changed_after`), so all workers agree. For a loaded version:

- an item the version does not know is *new*: it is served through its text vector (encoded once,
  at upsert, and stored with the item), by cosine to the shopper's recent items or to an anchor;
- a known item that was updated shows its new title, price and category in responses;
- a deleted item, known or new, is never returned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from shoprec.service.store.base import ItemRecord


@dataclass
class NewItems:
    """The overlay's new items for one version: ids, records and unit vectors (rows align)."""

    ids: list[str] = field(default_factory=list)
    records: list[ItemRecord] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def __len__(self) -> int:
        return len(self.ids)


class CatalogOverlay:
    """Latest upserts and deletions, by item id, with the store's change counter."""

    def __init__(self) -> None:
        self.seq = 0
        self.records: dict[str, ItemRecord] = {}
        self._lock = threading.Lock()
        self._new_cache: dict[tuple[int, int], NewItems] = {}

    def apply(self, records: list[ItemRecord]) -> None:
        with self._lock:
            for record in records:
                self.records[record.item_id] = record
                self.seq = max(self.seq, record.updated_seq)
            self._new_cache.clear()

    def is_deleted(self, item_id: str) -> bool:
        record = self.records.get(item_id)
        return record is not None and record.deleted

    def deleted_ids(self) -> set[str]:
        return {i for i, r in self.records.items() if r.deleted}

    def record(self, item_id: str) -> ItemRecord | None:
        return self.records.get(item_id)

    def new_items(self, version_key: int, lookup, dim: int) -> NewItems:
        """Live items unknown to a version (``lookup(ids) -> indices``, -1 unknown) whose vector
        has the version's dimension, cached per version until the next change."""
        key = (version_key, dim)
        with self._lock:
            cached = self._new_cache.get(key)
            if cached is not None:
                return cached
            live = [r for r in self.records.values() if not r.deleted and r.vector is not None and len(r.vector) == dim]
            if live:
                known = lookup([r.item_id for r in live])
                live = [r for r, index in zip(live, known.tolist(), strict=True) if index < 0]
            vectors = np.array([r.vector for r in live], dtype=np.float32).reshape(len(live), dim)
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
            out = NewItems([r.item_id for r in live], live, vectors)
            self._new_cache[key] = out
            return out
