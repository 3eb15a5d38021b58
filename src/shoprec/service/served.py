"""What a request asks for and what the service answers, independent of HTTP: scenarios, request
filters, the served list, and the two request errors every part of the service raises."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shoprec.errors import ShoprecError
from shoprec.pipeline.filters import category_mask, covers, price_mask
from shoprec.service.store.base import ItemRecord
from shoprec.service.versions import Deployed

USER_SCENARIOS = ("home", "cross-category", "trending", "new-arrivals", "promotions")
ITEM_SCENARIOS = ("similar", "complements")
DEGRADED_NOTE = "live events unavailable (neither Redis nor the store answered): this answer may miss the latest events"


class NotFound(ShoprecError):
    """An id the request names is unknown (mapped to HTTP 404)."""


class UnknownItems(ShoprecError):
    """Events name items the catalog does not have (mapped to HTTP 422)."""


@dataclass
class Filters:
    """Request-time filters, applied on top of the version's configured rules."""

    categories: list[str] = field(default_factory=list)  # keep items under any of these category paths
    exclude_categories: list[str] = field(default_factory=list)
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = False
    exclude_items: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(
            self.categories
            or self.exclude_categories
            or self.min_price is not None
            or self.max_price is not None
            or self.in_stock
            or self.exclude_items
        )

    def mask(self, dep: Deployed) -> np.ndarray:
        """Which of the version's trained items pass the filters."""
        info = dep.info
        mask = np.ones(info.n_items, dtype=bool)
        if self.categories:
            mask &= category_mask(info.category, self.categories)
        if self.exclude_categories:
            mask &= ~category_mask(info.category, self.exclude_categories)
        if self.min_price is not None or self.max_price is not None:
            mask &= ~price_mask(info.price, self.min_price, self.max_price, keep_unknown=False)
        if self.in_stock:
            mask &= info.in_stock
        if self.exclude_items:
            index = dep.item_indices(self.exclude_items)
            mask[index[index >= 0]] = False
        return mask

    def passes(self, record: ItemRecord) -> bool:
        """Whether an item added through the API (not in the version) passes the filters."""
        if self.categories and not any(covers(p, record.category) for p in self.categories):
            return False
        if self.exclude_categories and any(covers(p, record.category) for p in self.exclude_categories):
            return False
        if self.min_price is not None and (record.price is None or record.price < self.min_price):
            return False
        if self.max_price is not None and (record.price is None or record.price > self.max_price):
            return False
        if self.in_stock and record.attributes.get("in_stock") is False:
            return False
        return record.item_id not in self.exclude_items


@dataclass
class ServedItem:
    item_id: str
    title: str
    category: str
    brand: str
    price: float | None
    score: float
    source: str
    """The recall source with the largest share of the item's score (the feed name for feeds)."""
    shares: dict[str, float]
    explored: bool = False
    """The slot was filled by exploration (:mod:`shoprec.loop.explore`), not by the ranking."""


@dataclass
class ServedList:
    recommendation_id: str
    user_id: str | None
    scenario: str
    version: str
    items: list[ServedItem]
    notes: list[str]
    timings_ms: dict[str, float]
    anchor: str | None = None
    live_state: str = "none"
    """Where the user's live events were read (:data:`shoprec.service.live.STATES`)."""
    live_event_id: str | None = None
    """The newest of the user's live events the list reflects (None: no live event since the snapshot)."""

    @property
    def degraded(self) -> bool:
        """True when the list may not reflect acknowledged events (the live state could not be read)."""
        return self.live_state == "unavailable"
