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
not cached. Entries are packed into numpy arrays (:class:`Packed`, about 1 KB per user instead of
some 20 KB of Python lists and dicts), so a worker holds every user of a large shop.
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


@dataclass(frozen=True)
class Packed:
    """A :class:`Proposal` of trained items in arrays: item indices of the version, scores, the
    winning source as an index into ``names`` and the shares as an (items, names) matrix."""

    items: np.ndarray  # int32
    scores: np.ndarray  # float64 (as served)
    winner: np.ndarray  # int8 into names
    shares: np.ndarray  # float32 (n, len(names)); 0 = no share
    names: tuple[str, ...]
    notes: tuple[str, ...]

    @classmethod
    def pack(cls, proposal: Proposal, item_indices) -> Packed:
        names = tuple(dict.fromkeys([*proposal.sources, *(n for s in proposal.shares for n in s)]))
        column = {n: j for j, n in enumerate(names)}
        shares = np.zeros((len(proposal.items), len(names)), dtype=np.float32)
        for r, row in enumerate(proposal.shares):
            for name, value in row.items():
                shares[r, column[name]] = value
        return cls(
            np.asarray(item_indices(proposal.items), dtype=np.int32),
            np.asarray(proposal.scores, dtype=np.float64),
            np.array([column[n] for n in proposal.sources], dtype=np.int8),
            shares,
            names,
            tuple(proposal.notes),
        )

    @classmethod
    def of(cls, rec, scenario: str) -> Packed:
        """A pipeline or scenario result (:class:`~shoprec.pipeline.pipeline.Recommendation`) packed
        straight from its arrays. Unpacked, it is the proposal the service serves: each item's
        winning source is the one with the largest share of its score (home feeds), else the
        scenario's name for items a source proposed, else ``fallback``; shares only on home feeds."""
        sources = tuple(rec.candidates.sources)
        names = tuple(dict.fromkeys([*sources, "fallback", scenario]))
        column = {name: j for j, name in enumerate(names)}
        n = len(rec.items)
        from_sources = np.array([column[s] for s in sources], dtype=np.int64)
        shares = np.zeros((n, len(names)), dtype=np.float32)
        if scenario == "home" and rec.source_shares.size:
            shares[:, from_sources] = rec.source_shares
        lifted = shares.max(axis=1, initial=0.0) > 0
        proposed = (rec.candidates.source_ranks >= 0).any(axis=1)
        other = np.where(proposed & (scenario != "home"), column[scenario], column["fallback"])
        best = from_sources[np.argmax(shares[:, from_sources], axis=1)] if len(sources) else other
        return cls(
            np.asarray(rec.items, dtype=np.int32),
            np.asarray(rec.scores, dtype=np.float64),
            np.where(lifted, best, other).astype(np.int8),
            shares,
            names,
            tuple(rec.notes),
        )

    def unpack(self, item_ids: np.ndarray, limit: int | None = None) -> Proposal:
        """The proposal again, its first ``limit`` items (without stage timings: a hit ran no stages)."""
        rows = self.shares[:limit].tolist()
        shares = [{n: round(v, 4) for n, v in zip(self.names, row, strict=True) if v > 0} for row in rows]
        return Proposal(
            item_ids[self.items[:limit]].tolist(),
            self.scores[:limit].tolist(),
            [self.names[w] for w in self.winner[:limit].tolist()],
            shares,
            list(self.notes),
        )


class FeedCache:
    def __init__(self, capacity: int = 300_000, ttl: float = 600.0) -> None:
        self.capacity, self.ttl = capacity, ttl
        self._entries: OrderedDict[tuple, tuple[tuple, float, Packed]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.warming: dict[str, dict] = {}

    def get(self, key: tuple, stamp: tuple, dep, limit: int | None = None) -> Proposal | None:
        """The entry for ``key`` (version, user id), its first ``limit`` items, if it is still valid
        for ``stamp``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp or time.monotonic() - entry[1] > self.ttl:
                self.misses += 1
                return None
            self.hits += 1
        return entry[2].unpack(dep.info.item_id, limit)

    def put(self, key: tuple, stamp: tuple, proposal: Proposal, dep) -> None:
        self.put_packed(key, stamp, Packed.pack(proposal, dep.item_indices))

    def put_packed(self, key: tuple, stamp: tuple, packed: Packed) -> None:
        if (packed.items < 0).any():
            return  # only trained items can be packed; such a list is simply not cached
        with self._lock:
            self._entries[key] = (stamp, time.monotonic(), packed)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def drop_users(self, user_ids: set[str]) -> None:
        """Drop these users' lists of every version (forgotten shoppers); one pass over the entries."""
        with self._lock:
            for key in [k for k in self._entries if k[1] in user_ids]:
                del self._entries[key]

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
                stamp = (engine.overlay.seq, "", 0.0)  # no live event, no live query: LiveEvents.stamp
                contexts = contexts_from_dataset(
                    dep.dataset, np.arange(start, min(start + batch, len(users))), now=int(engine.now(dep))
                )
                for ctx, rec in zip(contexts, dep.pipeline.recommend(contexts, DEPTH), strict=True):
                    self.put_packed((dep.version, str(users[ctx.user])), stamp, Packed.of(rec, "home"))
                state["done"] = min(start + batch, len(users))
                time.sleep(0)  # let request threads run between batches
        except Exception as err:  # noqa: BLE001 - a failed warm-up only means more misses
            log.error("warming the feed cache of %s failed: %s", dep.version, type(err).__name__)
        state["seconds"] = round(time.perf_counter() - began, 1)
        state["finished"] = True

    def status(self) -> dict:
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses, "warming": self.warming}
