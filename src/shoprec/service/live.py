"""Live state: each shopper's latest events, shared by every API worker.

The next request must reflect a click made a moment before, whichever worker took the click. Two
backends answer :meth:`LiveState.recent` the same way:

- :class:`RedisLive`: a capped list per user in Redis (``RPUSH`` + ``LTRIM`` in one pipeline,
  expiring after ``ttl_days`` without activity). Fast, and shared by workers on several machines.
- :class:`StoreLive`: reads the user's latest events from the event store (which every worker
  writes through anyway). Needs no Redis; one indexed query per request.

Events reach the live state only after the store committed them, so the live state never shows an
event the store could lose. If Redis fails, :class:`RedisLive` answers from the store and counts
the failure (``fallbacks``), so a Redis outage degrades latency, not correctness.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence

from shoprec.service.store.base import Event, Store

log = logging.getLogger(__name__)
KEEP = 200
"""Events kept per user: more than any model reads (SASRec reads the last 50)."""


class LiveState(ABC):
    name = "live"

    @abstractmethod
    def record(self, events: Sequence[Event]) -> None:
        """Add committed events (any users, any order) to the users' live sequences."""

    @abstractmethod
    def recent(self, user_id: str, n: int = KEEP) -> list[Event]:
        """The user's latest ``n`` events, oldest first."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class StoreLive(LiveState):
    """Live sequences read straight from the event store."""

    name = "store"

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, events: Sequence[Event]) -> None:
        return None  # the store already holds them

    def recent(self, user_id: str, n: int = KEEP) -> list[Event]:
        return self.store.user_events(user_id, limit=n)


class RedisLive(LiveState):
    """Live sequences in Redis lists ``<prefix>:u:<user_id>``, capped at :data:`KEEP` events."""

    name = "redis"

    def __init__(self, url: str, store: Store, prefix: str = "shoprec", ttl_days: float = 30.0) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.store, self.prefix, self.ttl = store, prefix, int(ttl_days * 86400)
        self.fallbacks = 0
        self.url = url

    def _key(self, user_id: str) -> str:
        return f"{self.prefix}:u:{user_id}"

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:  # noqa: BLE001 - any client error means "not reachable"
            return False

    def record(self, events: Sequence[Event]) -> None:
        if not events:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for event in sorted(events, key=lambda e: e.timestamp):
                pipe.rpush(self._key(event.user_id), _encode(event))
            for user_id in {e.user_id for e in events}:
                pipe.ltrim(self._key(user_id), -KEEP, -1)
                pipe.expire(self._key(user_id), self.ttl)
            pipe.execute()
        except Exception as err:  # noqa: BLE001 - the store has the events; reads fall back to it
            self.fallbacks += 1
            log.warning("live state: Redis write failed (%s); reads fall back to the store", type(err).__name__)

    def recent(self, user_id: str, n: int = KEEP) -> list[Event]:
        try:
            raw = self.client.lrange(self._key(user_id), -n, -1)
        except Exception as err:  # noqa: BLE001
            self.fallbacks += 1
            log.warning("live state: Redis read failed (%s); answering from the store", type(err).__name__)
            return self.store.user_events(user_id, limit=n)
        events = [_decode(user_id, value) for value in raw]
        return sorted(events, key=lambda e: e.timestamp)

    def forget(self, user_id: str) -> None:
        self.client.delete(self._key(user_id))

    def close(self) -> None:
        self.client.close()


def _encode(event: Event) -> str:
    return "\t".join(
        [event.event_id, event.item_id, event.event, repr(float(event.timestamp)), event.recommendation_id or ""]
    )


def _decode(user_id: str, value: bytes) -> Event:
    event_id, item_id, name, ts, rec = value.decode().split("\t")
    return Event(event_id, user_id, item_id, name, float(ts), rec or None)


def open_live(url: str | None, store: Store, prefix: str = "shoprec") -> LiveState:
    """Redis when ``url`` is a redis:// URL, else the store; an unreachable Redis is an error at
    start-up (a misconfigured service should not start), not at the first request."""
    if not url:
        return StoreLive(store)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        from shoprec.errors import ConfigError

        raise ConfigError(
            f"live state URL {url!r} is not a redis:// URL", fix="use redis://host:6379/0 or leave it empty"
        )
    live = RedisLive(url, store, prefix=prefix)
    if not live.ping():
        from shoprec.errors import ConfigError

        raise ConfigError(
            f"cannot reach Redis at {url}", fix="start Redis, or leave the Redis URL empty to use the store"
        )
    return live
