"""The columns shoprec understands, and the checks that turn raw tables into clean ones.

A shop's data is four tables. ``items`` and ``interactions`` are required; ``reviews`` and
``queries`` are optional. Column names are fixed (adapters rename public formats to them);
any other ``items`` column is kept as a free attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EVENT_TYPES: tuple[str, ...] = ("view", "click", "cart", "purchase", "rating")
"""Interaction event types, weakest signal first."""

DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "cart": 4.0,
    "purchase": 8.0,
    "rating": 4.0,
}
"""Confidence of each event type when events are folded into one user-item matrix."""


@dataclass(frozen=True)
class TableSpec:
    """Columns of one table: which must be present, which are optional, and their kinds."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    kinds: dict[str, str] = field(default_factory=dict)
    """Column -> one of ``id``, ``text``, ``float``, ``time``, ``event``."""

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


ITEMS = TableSpec(
    name="items",
    required=("item_id",),
    optional=("title", "description", "category", "brand", "price", "created_at", "language"),
    kinds={
        "item_id": "id",
        "title": "text",
        "description": "text",
        "category": "text",
        "brand": "text",
        "price": "float",
        "created_at": "time",
        "language": "text",
    },
)
"""Catalog. ``category`` is a path such as ``Home > Kitchen > Mugs``; other columns become
free attributes stored as JSON in ``attributes``."""

INTERACTIONS = TableSpec(
    name="interactions",
    required=("user_id", "item_id"),
    optional=("event", "value", "timestamp", "session_id", "quantity", "position", "price"),
    kinds={
        "user_id": "id",
        "item_id": "id",
        "event": "event",
        "value": "float",
        "timestamp": "time",
        "session_id": "id",
        "quantity": "float",
        "position": "float",
        "price": "float",
    },
)
"""Events. ``session_id`` is a session or order (basket) id; ``position`` breaks timestamp ties
when a published dataset gives the order within a day; ``price`` is the unit price paid (kept where
the catalogue's price is derived from the events, see :mod:`shoprec.data.derived`)."""

REVIEWS = TableSpec(
    name="reviews",
    required=("user_id", "item_id"),
    optional=("rating", "text", "timestamp"),
    kinds={"user_id": "id", "item_id": "id", "rating": "float", "text": "text", "timestamp": "time"},
)

QUERIES = TableSpec(
    name="queries",
    required=("query",),
    optional=("user_id", "item_id", "timestamp"),
    kinds={"user_id": "id", "item_id": "id", "query": "text", "timestamp": "time"},
)
"""Search log: a query, who asked it, and the item clicked from its results (if any)."""

TABLES: dict[str, TableSpec] = {t.name: t for t in (ITEMS, INTERACTIONS, REVIEWS, QUERIES)}
