"""The feed cache: packed entries come back as the proposal that was stored; a changed stamp, an
expired entry or a list with untrained items is a miss."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from shoprec.service.feedcache import FeedCache, Proposal

IDS = np.array([f"P{i:03d}" for i in range(20)], dtype=object)
DEP = SimpleNamespace(
    info=SimpleNamespace(item_id=IDS),
    item_indices=lambda ids: np.array([int(i[1:]) if i in set(IDS) else -1 for i in ids], dtype=np.int64),
)


def proposal() -> Proposal:
    return Proposal(
        ["P007", "P002", "P011"],
        [0.91, 0.5, -0.25],
        ["ease", "also-viewed", "fallback"],
        [{"ease": 0.75, "also-viewed": 0.25}, {"also-viewed": 1.0}, {}],
        ["note"],
        {"rank": 1.5},
    )


def test_an_entry_comes_back_as_stored_while_its_stamp_holds() -> None:
    cache = FeedCache()
    cache.put(("v1", "u1"), (3, "e9"), proposal(), DEP)
    hit = cache.get(("v1", "u1"), (3, "e9"), DEP)
    stored = proposal()
    assert (hit.items, hit.scores, hit.sources, hit.shares, hit.notes) == (
        stored.items,
        stored.scores,
        stored.sources,
        stored.shares,
        stored.notes,
    )
    assert cache.get(("v1", "u1"), (3, "e9"), DEP, limit=2).items == stored.items[:2]
    assert cache.get(("v1", "u1"), (3, "e10"), DEP) is None, "a newer live event invalidates the entry"
    assert cache.get(("v1", "u1"), (4, "e9"), DEP) is None, "a catalog change invalidates the entry"
    assert cache.get(("v2", "u1"), (3, "e9"), DEP) is None
    assert (cache.hits, cache.misses) == (2, 3)


def test_expired_entries_and_untrained_items_are_misses() -> None:
    cache = FeedCache(ttl=0.0)
    cache.put(("v1", "u1"), (0, ""), proposal(), DEP)
    assert cache.get(("v1", "u1"), (0, ""), DEP) is None
    cache = FeedCache()
    new_item = proposal()
    new_item.items[0] = "NEW-1"
    cache.put(("v1", "u2"), (0, ""), new_item, DEP)
    assert cache.get(("v1", "u2"), (0, ""), DEP) is None and cache.status()["entries"] == 0


def test_the_oldest_entries_leave_first_beyond_capacity() -> None:
    cache = FeedCache(capacity=2)
    for user in ("a", "b", "c"):
        cache.put(("v1", user), (0, ""), proposal(), DEP)
    assert cache.get(("v1", "a"), (0, ""), DEP) is None
    assert cache.get(("v1", "c"), (0, ""), DEP) is not None
