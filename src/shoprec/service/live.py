"""Live state: each shopper's latest events, shared by every API worker.

The next request must reflect a click made a moment before, whichever worker took the click. Two
backends answer :meth:`LiveState.recent` the same way:

- :class:`~shoprec.service.live_redis.RedisLive`: a capped list per user in Redis, filled from the
  store on a user's first read and appended to as events commit. Fast, and shared by workers on
  several machines. When Redis fails, misses a user (restart, flush, eviction, expiry) or may have
  missed a write, the answer comes from the store and the list is rebuilt from it.
- :class:`StoreLive`: reads the user's latest events from the event store (which every worker
  writes through anyway). Needs no Redis; one indexed query per request.

Events reach the live state only after the store committed them, so the live state never shows an
event the store could lose. Every answer says where it came from (:class:`LiveEvents`): ``redis``
or ``store`` hold every acknowledged event of the user (up to :data:`KEEP`); ``unavailable`` means
neither Redis nor the store could be read, so events after the model's snapshot may be missing, and
the service marks its response as degraded. :func:`~shoprec.service.live_redis.open_live` opens
the one the settings name.

The shopper's recent search queries live beside the events, the same way: the store's search log
is the truth (:meth:`~shoprec.service.store.base.Store.log_search`, written by the search endpoint
before it answers), and :meth:`LiveState.record_search` copies a logged query into Redis when Redis
is used. :meth:`LiveState.recent_queries` answers the latest :data:`KEEP_QUERIES`, oldest first.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shoprec.pipeline.context import RECENT_QUERIES
from shoprec.service.store.base import Event, Store, StoreError

log = logging.getLogger(__name__)
KEEP = 200
"""Events kept per user: more than any model reads (SASRec reads the last 50)."""
KEEP_QUERIES = RECENT_QUERIES
"""Search queries kept per user: as many as the pipeline's query source reads."""
STATES = ("redis", "store", "none", "unavailable")
"""Where a user's live events were read: Redis, the store, nowhere (no user), or nowhere because
both failed (the only incomplete answer)."""


class LiveEvents(list):
    """A user's live events, oldest first (a list of :class:`Event`), and where they were read."""

    def __init__(self, events: Iterable[Event] = (), state: str = "none") -> None:
        super().__init__(events)
        self.state = state
        self.queries: list[LiveQuery] = []
        """The shopper's live search queries, oldest first (set by the history that read them)."""

    @property
    def stamp(self) -> tuple[str, float]:
        """Changes whenever the shopper acts or searches: the newest event id and the newest query's
        time (the feed cache's validity key)."""
        return (self[-1].event_id if self else "", self.queries[-1].timestamp if self.queries else 0.0)

    @property
    def degraded(self) -> bool:
        """True when acknowledged events may be missing (neither Redis nor the store answered)."""
        return self.state == "unavailable"

    @classmethod
    def ordered(cls, events: Iterable[Event], state: str) -> LiveEvents:
        """Each event once (first copy of an id), sorted by time (stable: commit order on ties)."""
        unique: dict[str, Event] = {}
        for event in events:
            unique.setdefault(event.event_id, event)
        return cls(sorted(unique.values(), key=lambda e: e.timestamp), state)


@dataclass(frozen=True)
class LiveQuery:
    """A search query of the shopper, as the live state keeps it."""

    query: str
    timestamp: float  # unix seconds


@dataclass
class LiveStats:
    """Counts since start, exported as Prometheus metrics."""

    reads: Counter = field(default_factory=Counter)
    """Reads by the state they answered with (see :data:`STATES`)."""
    redis_errors: int = 0
    """Redis commands that failed (reads and writes)."""
    repopulated: int = 0
    """User lists rebuilt in Redis from the store after a miss."""
    invalidated: int = 0
    """User lists dropped from Redis because a write to them failed."""
    query_read_errors: int = 0
    """Reads of a user's recent queries that found neither Redis nor the store (the feed went without them)."""


class LiveState(ABC):
    name = "live"
    store: Store

    def __init__(self) -> None:
        self.stats = LiveStats()

    @abstractmethod
    def record(self, events: Sequence[Event]) -> None:
        """Add committed events (any users, any order) to the users' live sequences."""

    @abstractmethod
    def recent(self, user_id: str, n: int = KEEP) -> LiveEvents:
        """The user's latest ``n`` events, oldest first, with where they were read."""

    def record_search(self, user_id: str, query: str, at: float) -> None:  # noqa: B027 - optional hook
        """Add a query the store has logged (``Store.log_search``) to the user's live queries."""

    def recent_queries(self, user_id: str, n: int = KEEP_QUERIES, since: float | None = None) -> list[LiveQuery]:
        """The user's latest ``n`` search queries (at or after ``since``), oldest first; from the
        store's search log here, from Redis in :class:`~shoprec.service.live_redis.RedisLive`."""
        return self.queries_from_store(self.store, user_id, n, since) or []

    def queries_from_store(
        self, store: Store, user_id: str, n: int, since: float | None = None
    ) -> list[LiveQuery] | None:
        """The user's latest queries from the search log; None (logged, counted) when the store fails."""
        try:
            return [LiveQuery(s.query, s.timestamp) for s in store.user_searches(user_id, n, since)]
        except StoreError as err:
            self.stats.query_read_errors += 1
            log.warning("live state: the search log cannot be read (%s); the feed goes without queries", err.problem)
            return None

    def forget(self, user_id: str) -> bool:
        """Drop whatever the live state keeps of the user beside the store (after the store removed
        the user's events and searches); True when nothing of the user is left."""
        return True  # nothing kept beside the store

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def from_store(self, store: Store, user_id: str, n: int) -> LiveEvents:
        """The user's latest events from the store; ``unavailable`` (empty) when the store fails."""
        try:
            events = LiveEvents.ordered(store.user_events(user_id, limit=n), "store")
        except StoreError as err:
            log.warning("live state: the store cannot be read either (%s); answer marked degraded", err.problem)
            events = LiveEvents([], "unavailable")
        self.stats.reads[events.state] += 1
        return events


class StoreLive(LiveState):
    """Live sequences read straight from the event store."""

    name = "store"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def record(self, events: Sequence[Event]) -> None:
        return None  # the store already holds them

    def recent(self, user_id: str, n: int = KEEP) -> LiveEvents:
        return self.from_store(self.store, user_id, n)
