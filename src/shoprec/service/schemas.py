"""Request and response bodies of the HTTP API (kept apart from the engine's internal types)."""

from __future__ import annotations

import math
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shoprec.service.platforms import LANGUAGE_PATTERN, PLATFORM_PATTERN

Id = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
EVENT_NAMES = ("view", "click", "cart", "purchase")
EARLIEST = 946_684_800.0  # 2000-01-01
LiveStateName = Literal["redis", "store", "none", "unavailable"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(Strict):
    event_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[^\x00-\x1f]+$",
        description="Client-chosen unique id; sending the same id again is a no-op (safe retries).",
    )
    user_id: str = Id
    item_id: str = Id
    event: Literal["view", "click", "cart", "purchase"]
    timestamp: float | None = Field(None, description="Unix seconds; default: when the service received it.")
    recommendation_id: str | None = Field(
        None, max_length=64, description="The id of the list the event came from (feedback loop)."
    )
    search_id: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[^\x00-\x1f]+$",
        description="The search_id of the /v1/search answer the event came from (click, cart, purchase): "
        "the query is attached from the search log.",
    )
    platform: str | None = Field(
        None,
        max_length=32,
        pattern=PLATFORM_PATTERN,
        description="Where the shopper was: web, app, mini-program, email, or any other channel name (accepted "
        "and counted at /v1/stats/platforms); stored trimmed and lower-cased.",
    )
    language: str | None = Field(
        None, max_length=35, pattern=LANGUAGE_PATTERN, description="The device language, e.g. en, zh-CN."
    )

    @field_validator("timestamp")
    @classmethod
    def _sane_time(cls, value: float | None) -> float | None:
        if value is None:
            return value
        if not math.isfinite(value) or value < EARLIEST or value > time.time() + 86400:
            raise ValueError("timestamp must be unix seconds between 2000-01-01 and one day from now")
        return value


class EventBatch(Strict):
    events: list[EventIn] = Field(min_length=1)


class EventAck(BaseModel):
    accepted: int = Field(description="Events committed by this request.")
    duplicates: int = Field(description="Events whose id was already stored (not stored again).")
    duplicate_ids: list[str] = []
    unknown_search_ids: list[str] = Field(
        default_factory=list,
        description="search_id values not found in the search log: the events are stored without a query.",
    )


class ItemOut(BaseModel):
    item_id: str
    title: str
    category: str
    brand: str
    price: float | None
    score: float
    source: str
    shares: dict[str, float]


class ListOut(BaseModel):
    recommendation_id: str = Field(description="Send it back with click and purchase events for online CTR.")
    user_id: str | None
    scenario: str
    version: str
    anchor: str | None = None
    items: list[ItemOut]
    notes: list[str]
    timings_ms: dict[str, float]
    live_state: LiveStateName = Field(
        description="Where the shopper's live events were read: redis, store (Redis missed, failed or was "
        "being repaired; complete), none (no shopper), unavailable (neither answered: see degraded)."
    )
    degraded: bool = Field(description="True when the list may not reflect the shopper's latest acknowledged events.")
    live_event_id: str | None = Field(
        None,
        description="The event_id of the newest of the shopper's live events this list reflects (null when "
        "none came since the version's training snapshot): a client can check that the list follows its click.",
    )


class EventOut(BaseModel):
    event_id: str
    item_id: str
    event: str
    timestamp: float
    recommendation_id: str | None
    search_id: str | None = None
    platform: str | None = None
    language: str | None = None


class LiveOut(BaseModel):
    user_id: str
    version: str
    live_state: LiveStateName
    degraded: bool
    events: list[EventOut] = Field(description="Oldest first: the live events the shopper's next feed builds on.")


class ItemIn(Strict):
    title: str = Field(min_length=1, max_length=500)
    description: str = Field("", max_length=10_000)
    category: str = Field("", max_length=500)
    brand: str = Field("", max_length=200)
    price: float | None = Field(None, ge=0, le=1e9)
    language: str = Field("", max_length=16)
    in_stock: bool = True
    attributes: dict[str, str | float | int | bool] = Field(default_factory=dict, max_length=50)


class ItemInfoOut(BaseModel):
    item_id: str
    title: str
    category: str
    brand: str
    price: float | None
    in_stock: bool
    tags: list[str]
    new: bool = Field(description="Added since the serving version was trained (served through its text).")


class BundleIn(Strict):
    items: list[str] = Field(default_factory=list, max_length=50, description="Anchor items (a product or a cart).")
    user_id: str | None = Field(None, max_length=128)
    intent: str | None = Field(None, max_length=500)
    min_size: int = Field(2, ge=1, le=20)
    max_size: int = Field(4, ge=1, le=20)
    budget: float | None = Field(None, gt=0, le=1e9)
    one_per_category: bool = True
    required_items: list[str] = Field(default_factory=list, max_length=20)
    excluded_items: list[str] = Field(default_factory=list, max_length=200)
    required_categories: list[str] = Field(default_factory=list, max_length=20)
    excluded_categories: list[str] = Field(default_factory=list, max_length=50)
    in_stock_only: bool = True
    solver: Literal["greedy", "local", "genetic", "exact"] | None = None
    language: Literal["en", "zh"] = "en"


class PlanIn(Strict):
    pinned: str | None = Field(None, pattern=r"^v\d{4,}$")
    arms: dict[str, float] | None = Field(
        None, description="version -> share of users, e.g. {'v0002': 0.5, 'v0003': 0.5}"
    )
    salt: str = Field("", max_length=64)


class Problem(BaseModel):
    error: str
    detail: str | list | None = None
