"""Precomputed home feeds, refreshed by live events.

Most requests come from shoppers who did nothing since their last visit; their feed is the same as
a minute ago. Each worker therefore keeps every known user's home list (the pipeline's top
:data:`DEPTH`, before request filters), computed in batches on a background thread when a version
loads, and serves it while it is valid:

- the user has no live event newer than the entry (the entry records the id of the newest live
  event it saw, so a click makes the next request run the full pipeline on the live sequence);
- the catalog has not changed since (deletions and new items are applied after the cache anyway,
  but a changed catalog may change the rules' outcome);
- the entry is younger than ``ttl`` seconds (trending windows move).

A miss runs the pipeline and stores the result. Request filters, other feeds and item feeds are
not cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)
DEPTH = 50
"""Items kept per cached list: enough for k up to 50 and for filtering deleted items."""


@dataclass
class Proposal:
    """A feed before request filters: ids, scores, winning source and source shares per item."""

    items: list[str]
    scores: list[float]
    sources: list[str]
    shares: list[dict[str, float]]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class FeedCache:
    def __init__(self, capacity: int = 300_000, ttl: float = 600.0) -> None:
        self.capacity, self.ttl = capacity, ttl
        self._entries: OrderedDict[tuple, tuple[tuple, float, Proposal]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.warming: dict[str, dict] = {}

    def get(self, key: tuple, stamp: tuple) -> Proposal | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp or time.monotonic() - entry[1] > self.ttl:
                self.misses += 1
                return None
            self.hits += 1
            return entry[2]

    def put(self, key: tuple, stamp: tuple, proposal: Proposal) -> None:
        with self._lock:
            self._entries[key] = (stamp, time.monotonic(), proposal)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def drop_version(self, version: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == version]:
                del self._entries[key]

    def warm(self, engine, dep, batch: int = 256) -> threading.Thread:
        """Fill the cache for every user of ``dep`` on a background thread."""
        thread = threading.Thread(
            target=self._warm, args=(engine, dep, batch), daemon=True, name=f"shoprec-warm-{dep.version}"
        )
        thread.start()
        return thread

    def _warm(self, engine, dep, batch: int) -> None:
        from shoprec.pipeline.context import contexts_from_dataset

        users = dep.dataset.user_vocab.ids()
        state = {"users": len(users), "done": 0, "seconds": 0.0, "finished": False}
        self.warming[dep.version] = state
        began = time.perf_counter()
        try:
            for start in range(0, len(users), batch):
                if dep.version not in engine.versions.loaded:
                    break  # swapped out meanwhile
                stamp = (engine.overlay.seq, "")
                contexts = contexts_from_dataset(
                    dep.dataset, np.arange(start, min(start + batch, len(users))), now=int(engine.now(dep))
                )
                for ctx, rec in zip(contexts, dep.pipeline.recommend(contexts, DEPTH), strict=True):
                    self.put((dep.version, str(users[ctx.user])), stamp, engine.proposal(dep, rec, "home"))
                state["done"] = min(start + batch, len(users))
                time.sleep(0)  # let request threads run between batches
        except Exception as err:  # noqa: BLE001 - a failed warm-up only means more misses
            log.error("warming the feed cache of %s failed: %s", dep.version, type(err).__name__)
        state["seconds"] = round(time.perf_counter() - began, 1)
        state["finished"] = True

    def status(self) -> dict:
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses, "warming": self.warming}
