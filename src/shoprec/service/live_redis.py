"""Live state in Redis that is never silently incomplete: the store is the truth, Redis a copy of it.

A user's list exists in Redis only if it was built from the store, so a missing list always means
"ask the store", never "no events":

- **Read**: a list found in Redis holds every committed event of the user (up to :data:`KEEP`). A
  missing list (Redis restarted, flushed, evicted or expired the key, or the user is new) is read
  from the store and rebuilt in Redis from that read.
- **Write** (after the store committed): ``RPUSHX`` appends only to a list that exists; a user
  without a list is left to the next read, which will read the store.
- **Restart**: list keys carry the Redis server's ``run_id``, which changes on every start, so
  lists that a restarted Redis loads from an old snapshot (missing what came after it) are never
  read; they expire. Each script reads the ``run_id`` on the server, so no client can use a stale one.
- **Rebuild race**: a read that misses leaves a token under the user; a write that finds no list
  removes the token; the rebuild is stored only if its token is still there, so a rebuild never
  hides an event committed while the store was being read. Reads drop duplicate event ids.
- **Failed write**: Redis may or may not have applied it, so the users' lists cannot be trusted.
  This worker answers those users from the store and drops their lists as soon as Redis answers
  again (a background thread retries every :data:`RETRY_SECONDS`), after which every worker
  rebuilds them. Residual window: another worker that reaches Redis while this one cannot may read
  such a list until it is dropped.
- **Redis down**: reads answer from the store (``state`` ``store``); if the store fails too, the
  answer is empty and ``unavailable`` (degraded).

Keys (``<prefix>`` from settings): ``<prefix>:u:<run_id>:<user>`` the list (a ``#`` marker first,
then ``event_id<TAB>item_id<TAB>event<TAB>timestamp<TAB>recommendation_id<TAB>search_id<TAB>query``
``<TAB>platform<TAB>language``, query and platform as JSON strings), ``<prefix>:p:<run_id>:<user>`` the
rebuild token (60 s). Scripts compute key names, so the Redis must be a single server (not a cluster).

The user's recent search queries follow the same rules in lists of their own, under ``<prefix>:q``
(``<prefix>:q:u:<run_id>:<user>``, entries ``timestamp<TAB>query`` with the query as a JSON string),
rebuilt from the store's search log and appended to by :meth:`RedisLive.record_search` after the
search endpoint logged the query; a failed write sends the user's events and queries to the store.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Sequence

from shoprec.service.live import KEEP, KEEP_QUERIES, LiveEvents, LiveQuery, LiveState, StoreLive
from shoprec.service.store.base import Event, Store

log = logging.getLogger(__name__)
MARKER = b"#"
"""First element of a list built from the store: the list exists even for a user with no events."""
RETRY_SECONDS = 0.2
MAX_DIRTY = 100_000
"""Users remembered after failed writes; beyond this every list of the prefix is dropped instead."""

_RUN = "local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')\n"
READ = (
    _RUN
    + """
local key = ARGV[1] .. ':u:' .. run .. ':' .. ARGV[2]
local items = redis.call('LRANGE', key, -tonumber(ARGV[3]), -1)
if #items > 0 then return items end
redis.call('SET', ARGV[1] .. ':p:' .. run .. ':' .. ARGV[2], ARGV[4], 'EX', 60)
return false
"""
)
"""ARGV: prefix, user, n, token. The list's last n entries, or nil after leaving the rebuild token."""
REBUILD = (
    _RUN
    + """
local pending = ARGV[1] .. ':p:' .. run .. ':' .. ARGV[2]
if redis.call('GET', pending) ~= ARGV[3] then return 0 end
redis.call('DEL', pending)
local key = ARGV[1] .. ':u:' .. run .. ':' .. ARGV[2]
redis.call('DEL', key)
redis.call('RPUSH', key, unpack(ARGV, 5))
redis.call('EXPIRE', key, ARGV[4])
return 1
"""
)
"""ARGV: prefix, user, token, ttl, marker, events... Stores the list only if the token is still there."""
APPEND = (
    _RUN
    + """
local touched = {}
for i = 4, #ARGV, 2 do
  local key = ARGV[1] .. ':u:' .. run .. ':' .. ARGV[i]
  if redis.call('RPUSHX', key, ARGV[i + 1]) > 0 then
    touched[key] = true
  else
    redis.call('DEL', ARGV[1] .. ':p:' .. run .. ':' .. ARGV[i])
  end
end
for key, _ in pairs(touched) do
  redis.call('LTRIM', key, -tonumber(ARGV[3]), -1)
  redis.call('EXPIRE', key, ARGV[2])
end
return 0
"""
)
"""ARGV: prefix, ttl, keep, then (user, event) pairs in commit order."""
DROP = (
    _RUN
    + """
for i = 2, #ARGV do
  redis.call('DEL', ARGV[1] .. ':u:' .. run .. ':' .. ARGV[i], ARGV[1] .. ':p:' .. run .. ':' .. ARGV[i])
end
return 0
"""
)
"""ARGV: prefix, users... Drops the users' lists (and rebuild tokens)."""


class RedisLive(LiveState):
    """Live sequences in Redis lists rebuilt from the store whenever Redis may lack an event."""

    name = "redis"

    def __init__(self, url: str, store: Store, prefix: str = "shoprec", ttl_days: float = 30.0) -> None:
        import redis

        super().__init__()
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.errors = (redis.RedisError, OSError)
        self.store, self.prefix, self.ttl, self.url = store, prefix, int(ttl_days * 86400), url
        self.query_prefix = f"{prefix}:q"
        self._read = self.client.register_script(READ)
        self._rebuild = self.client.register_script(REBUILD)
        self._append = self.client.register_script(APPEND)
        self._drop = self.client.register_script(DROP)
        self._dirty: set[str] = set()
        self._dirty_all = False
        self._lock = threading.Lock()
        self._wake, self._closed = threading.Event(), threading.Event()
        self._repairer = threading.Thread(target=self._repair_loop, name="shoprec-live-repair", daemon=True)
        self._repairer.start()

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except self.errors:
            return False

    # ------------------------------------------------------------------ writes
    def record(self, events: Sequence[Event]) -> None:
        if not events:
            return
        args: list[object] = [self.prefix, self.ttl, KEEP]
        for event in events:
            args += [event.user_id, _encode(event)]
        try:
            self._append(args=args)
        except self.errors as err:
            self.stats.redis_errors += 1
            self._mark_dirty({e.user_id for e in events})
            log.warning("live state: Redis write failed (%s); these users are read from the store", type(err).__name__)

    def record_search(self, user_id: str, query: str, at: float) -> None:
        if not user_id:
            return
        try:
            self._append(args=[self.query_prefix, self.ttl, KEEP_QUERIES, user_id, _encode_query(query, at)])
        except self.errors as err:
            self.stats.redis_errors += 1
            self._mark_dirty({user_id})
            log.warning("live state: Redis write failed (%s); this user is read from the store", type(err).__name__)

    def _mark_dirty(self, users: set[str]) -> None:
        with self._lock:
            self._dirty |= users
            if len(self._dirty) > MAX_DIRTY:
                self._dirty_all, self._dirty = True, set()
        self._wake.set()

    def _repair_loop(self) -> None:
        """Drop the lists of users whose writes failed, once Redis answers again."""
        while not self._closed.is_set():
            self._wake.wait()
            self._wake.clear()
            while not self._closed.is_set() and not self._repair():
                self._closed.wait(RETRY_SECONDS)

    def _repair(self) -> bool:
        with self._lock:
            users, everything = list(self._dirty), self._dirty_all
        try:
            for prefix in (self.prefix, self.query_prefix):
                if everything:
                    for key in self.client.scan_iter(match=f"{prefix}:u:*", count=1000):
                        self.client.delete(key)
                for start in range(0, len(users), 1000):
                    self._drop(args=[prefix, *users[start : start + 1000]])
        except self.errors:
            self.stats.redis_errors += 1
            return False
        with self._lock:
            self._dirty.difference_update(users)
            self._dirty_all = self._dirty_all and not everything
        self.stats.invalidated += len(users)
        return True

    # ------------------------------------------------------------------ reads
    def recent(self, user_id: str, n: int = KEEP) -> LiveEvents:
        if self._dirty_all or user_id in self._dirty:
            return self.from_store(self.store, user_id, n)
        token = uuid.uuid4().hex
        try:
            raw = self._read(args=[self.prefix, user_id, n, token])
        except self.errors as err:
            self.stats.redis_errors += 1
            log.warning("live state: Redis read failed (%s); answering from the store", type(err).__name__)
            return self.from_store(self.store, user_id, n)
        if raw is not None:
            self.stats.reads["redis"] += 1
            return LiveEvents.ordered((_decode(user_id, v) for v in raw if v != MARKER), "redis")
        events = self.from_store(self.store, user_id, KEEP)
        if events.state == "store":
            self._store_rebuild(user_id, token, events)
        return LiveEvents(events[-n:], events.state)

    def _store_rebuild(self, user_id: str, token: str, events: LiveEvents) -> None:
        try:
            if self._rebuild(args=[self.prefix, user_id, token, self.ttl, MARKER, *map(_encode, events)]):
                self.stats.repopulated += 1
        except self.errors:
            self.stats.redis_errors += 1  # the answer came from the store; the next read tries again

    def recent_queries(self, user_id: str, n: int = KEEP_QUERIES, since: float | None = None) -> list[LiveQuery]:
        if self._dirty_all or user_id in self._dirty:
            return self.queries_from_store(self.store, user_id, n, since) or []
        token = uuid.uuid4().hex
        try:
            raw = self._read(args=[self.query_prefix, user_id, KEEP_QUERIES, token])
        except self.errors as err:
            self.stats.redis_errors += 1
            log.warning("live state: Redis read failed (%s); queries come from the store", type(err).__name__)
            return self.queries_from_store(self.store, user_id, n, since) or []
        if raw is not None:
            queries = sorted((_decode_query(v) for v in raw if v != MARKER), key=lambda q: q.timestamp)
        else:
            queries = self.queries_from_store(self.store, user_id, KEEP_QUERIES)
            if queries is None:
                return []
            try:
                encoded = [_encode_query(q.query, q.timestamp) for q in queries]
                self._rebuild(args=[self.query_prefix, user_id, token, self.ttl, MARKER, *encoded])
            except self.errors:
                self.stats.redis_errors += 1  # answered from the store; the next read tries again
        return [q for q in queries if since is None or q.timestamp >= since][-n:]

    def forget(self, user_id: str) -> bool:
        """Drop the user's event and query lists (and rebuild tokens, so a rebuild that read the store
        before the deletion is not stored). If Redis fails, the user is read from the store (which no
        longer has them) until the repair thread has dropped the lists; False then."""
        try:
            self._drop(args=[self.prefix, user_id])
            self._drop(args=[self.query_prefix, user_id])
        except self.errors as err:
            self.stats.redis_errors += 1
            self._mark_dirty({user_id})
            log.warning("live state: Redis failed dropping a forgotten user (%s); retrying", type(err).__name__)
            return False
        return True

    def close(self) -> None:
        self._closed.set()
        self._wake.set()
        self._repairer.join(2)
        self.client.close()


def open_live(url: str | None, store: Store, prefix: str = "shoprec") -> LiveState:
    """Redis when ``url`` is a redis:// URL, else the store; an unreachable Redis is an error at
    start-up (a misconfigured service should not start), not at the first request."""
    from shoprec.errors import ConfigError

    if not url:
        return StoreLive(store)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"live state URL {url!r} is not a redis:// URL", fix="use redis://host:6379/0 or leave it empty"
        )
    live = RedisLive(url, store, prefix=prefix)
    if not live.ping():
        live.close()
        raise ConfigError(
            f"cannot reach Redis at {url}", fix="start Redis, or leave the Redis URL empty to use the store"
        )
    return live


def _encode(event: Event) -> str:
    fields = [event.event_id, event.item_id, event.event, repr(float(event.timestamp)), event.recommendation_id or ""]
    fields += [event.search_id or "", "" if event.query is None else json.dumps(event.query)]
    fields += ["" if event.platform is None else json.dumps(event.platform), event.language or ""]
    return "\t".join(fields)


def _decode(user_id: str, value: bytes) -> Event:
    """An entry written by :func:`_encode` (or by an older shoprec: five fields before search events,
    seven before platforms)."""
    event_id, item_id, name, ts, rec, *more = value.decode().split("\t")
    search_id, query, platform, language = (more + ["", "", "", ""])[:4]
    return Event(
        event_id, user_id, item_id, name, float(ts), rec or None, search_id or None, _text(query), _text(platform),
        language or None,
    )  # fmt: skip


def _text(encoded: str) -> str | None:
    return json.loads(encoded) if encoded else None


def _encode_query(query: str, at: float) -> str:
    return f"{float(at)!r}\t{json.dumps(query)}"


def _decode_query(value: bytes) -> LiveQuery:
    ts, query = value.decode().split("\t", 1)
    return LiveQuery(json.loads(query), float(ts))
