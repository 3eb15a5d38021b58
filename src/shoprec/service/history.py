"""A shopper's history as a model version sees it: the version's training snapshot plus the live
events that came after it, on the version's clock; and the shopper's recent search queries, from the
snapshot's queries table and the search log after it (``UserContext.queries``, most recent last), so
that the next feed after a search reflects it. A shopper who asked to be forgotten
(:mod:`~shoprec.service.forget`) is served as an anonymous shopper: neither the snapshot's events
nor live ones are read for them."""

from __future__ import annotations

import threading
import time
from collections.abc import Container

import numpy as np

from shoprec.pipeline.context import RECENT_QUERIES, UserContext, contexts_from_dataset
from shoprec.service.live import LiveEvents, LiveState
from shoprec.service.versions import Deployed

STALE_SNAPSHOT = 30 * 86400
"""A snapshot whose newest event is older than this when the version is created is a replayed shop."""


class Histories:
    """User contexts for requests, from the loaded versions' snapshots and the live state."""

    def __init__(self, live: LiveState, clock: str = "auto", forgotten: Container[str] = frozenset()) -> None:
        self.live, self.clock, self.forgotten = live, clock, forgotten
        self._snapshot_queries: dict[str, dict[int, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def clock_offset(self, dep: Deployed) -> float:
        """Seconds added to wall-clock times to put them on the version's clock: 0 normally; for a
        snapshot over 30 days old (a demo or replayed shop, ``clock`` auto or data) the version's
        creation moment maps to the snapshot's newest event, so live events fall just after the
        training data, and 'trending this week' still means something."""
        newest = float(dep.manifest.get("data_newest", 0))
        created = float(dep.manifest.get("created", dep.loaded_at))
        if self.clock == "wall" or (self.clock == "auto" and created - newest < STALE_SNAPSHOT):
            return 0.0
        return newest - created

    def now(self, dep: Deployed) -> float:
        """Request time on the version's clock (see :meth:`clock_offset`)."""
        return time.time() + self.clock_offset(dep)

    def context(self, dep: Deployed, user_id: str | None) -> tuple[UserContext, LiveEvents]:
        """The user's snapshot history plus live events newer than the snapshot (oldest first); the
        live events say where they were read (``live.state``, ``live.degraded``)."""
        now = int(self.now(dep))
        if not user_id or user_id in self.forgotten:
            return UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), now), LiveEvents([], "none")
        user = dep.user_index(user_id)
        seqs = dep.sequences
        if user >= 0:
            lo, hi = seqs.indptr[user], seqs.indptr[user + 1]
            items, times, events = seqs.items[lo:hi].astype(np.int64), seqs.timestamps[lo:hi], dep.event_names[lo:hi]
        else:
            items, times, events = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, dtype=object)
        newest, offset = float(dep.manifest.get("data_newest", 0)), self.clock_offset(dep)
        read = self.live.recent(user_id)
        live = LiveEvents([e for e in read if e.timestamp + offset > newest], read.state)
        searched = self.live.recent_queries(user_id, since=newest - offset)
        live.queries = [q for q in searched if q.timestamp + offset > newest]
        queries = self.snapshot_queries(dep, user) + tuple(q.query for q in live.queries)
        if live:
            index = dep.item_indices([e.item_id for e in live])
            known = index >= 0
            items = np.concatenate([items, index[known]]).astype(np.int64)
            times = np.concatenate([times, np.array([int(e.timestamp + offset) for e in live], np.int64)[known]])
            events = np.concatenate([events, np.array([e.event for e in live], dtype=object)[known]])
        clock = max(now, int(times.max(initial=0)))
        return UserContext(user, items, times, clock, events, queries[-RECENT_QUERIES:]), live

    def snapshot_queries(self, dep: Deployed, user: int) -> tuple[str, ...]:
        """The user's queries in the version's training snapshot (its ``queries`` table, dated
        queries only), oldest first; worked out once per version on first use."""
        if user < 0:
            return ()
        table = self._snapshot_queries.get(dep.version)
        if table is None:
            with self._lock:
                table = self._snapshot_queries.get(dep.version)
                if table is None:
                    table = self._snapshot_queries[dep.version] = _queries_by_user(dep)
        return table.get(user, ())


def _queries_by_user(dep: Deployed) -> dict[int, tuple[str, ...]]:
    """User index -> last queries of the snapshot, as the pipeline's evaluation contexts hold them."""
    dataset = dep.dataset
    queries = dataset.queries
    if queries is None or not len(queries) or "user_id" not in queries:
        return {}
    users = np.unique(dataset.user_vocab.index(queries["user_id"].dropna()))
    users = users[users >= 0]
    now = int(dep.manifest.get("data_newest", 0)) + 1
    return {c.user: c.queries for c in contexts_from_dataset(dataset, users, now) if c.queries}
