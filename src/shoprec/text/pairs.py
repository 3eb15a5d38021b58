"""Positive pairs mined from shop behaviour, to fine-tune a text encoder on what shoppers treat as related.

Three sources, each a hint that two things belong together:

- ``basket``: two distinct items bought in the same order (:meth:`Dataset.baskets`), every unordered pair;
- ``session``: consecutive distinct items of a browsing session. Events that are order lines (a purchase
  with a ``session_id``) belong to baskets; the others are grouped by ``session_id`` or, where it is
  missing, into runs of events less than ``session_gap`` seconds apart (``None``: a user's whole sequence);
- ``query``: a search query (the anchor is its text) and the item clicked from its results.

Item pairs are unordered and deduplicated across sources (a basket pair seen again in a session counts
for baskets). Pairs are taken strongest first: those seen at least ``min_count`` times before the rest,
then by association ``count / sqrt(degree_a * degree_b)`` (the cosine of the co-occurrence matrix, where
an item's degree is how often it occurs in the source's pairs), ties in random order. Sampled uniformly,
most pairs of a bulk-buying shop link unrelated products (on UCI Online Retail their titles are no more
alike than random pairs); the strongest 20k are clearly related. Each item appears in at most
``max_per_item`` kept pairs so best-sellers do not dominate, and the ``max_pairs`` budget is shared evenly
between the sources that have pairs. The held-out part holds every pair touching a held-out anchor, so
held-out anchors are never seen in training.

>>> pairs = mine_pairs(dataset, max_pairs=20_000, seed=0)      # doctest: +SKIP
>>> pairs.counts["basket"]                                      # doctest: +SKIP
{'mined': 3249267, 'unique': 1212317, 'kept': 20000}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset

SOURCES = ("basket", "session", "query")
"""Pair sources, in priority order for deduplication; ``Pairs.source`` indexes this tuple."""
QUERY = SOURCES.index("query")


@dataclass(frozen=True)
class Pairs:
    """(anchor, positive) pairs. An anchor is an item (``anchor >= 0``) or a query text (``anchor == -1``)."""

    anchor: np.ndarray  # (n,) int32 item index, -1 where the anchor is query text
    query: np.ndarray  # (n,) object: the query text where anchor == -1, else ""
    positive: np.ndarray  # (n,) int32 item index
    source: np.ndarray  # (n,) int8 index into SOURCES
    held_out: np.ndarray  # (n,) bool: True for the held-out check, False for training
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per source: ``mined`` (raw), ``unique`` (after deduplication), ``kept`` (after cap and budget)."""
    stats: dict[str, int] = field(default_factory=dict)
    """Other counts: train, held_out, held_out_anchors, capped, baskets_too_large."""

    def __len__(self) -> int:
        return len(self.positive)

    def select(self, mask: np.ndarray) -> Pairs:
        """The pairs where ``mask`` is True (counts are kept as they were)."""
        return Pairs(
            self.anchor[mask],
            self.query[mask],
            self.positive[mask],
            self.source[mask],
            self.held_out[mask],
            self.counts,
            self.stats,
        )

    def train(self) -> Pairs:
        return self.select(~self.held_out)

    def holdout(self) -> Pairs:
        return self.select(self.held_out)

    def anchor_keys(self) -> np.ndarray:
        """One hashable key per pair naming its anchor: the item index, or ``"q:" + query text``."""
        keys = self.anchor.astype(object)
        is_query = self.anchor < 0
        keys[is_query] = "q:" + self.query[is_query].astype(str)
        return keys

    def anchor_texts(self, item_texts: list[str]) -> list[str]:
        """Anchor texts: the item's text, or the query itself."""
        return [q if a < 0 else item_texts[a] for a, q in zip(self.anchor.tolist(), self.query.tolist(), strict=True)]

    def by_source(self) -> dict[str, int]:
        counts = np.bincount(self.source, minlength=len(SOURCES))
        return {name: int(counts[i]) for i, name in enumerate(SOURCES)}


def mine_pairs(
    dataset: Dataset,
    max_pairs: int = 20_000,
    seed: int = 0,
    held_out: float = 0.1,
    max_per_item: int = 50,
    session_gap: float | None = 1800.0,
    max_basket_size: int = 50,
    min_count: int = 2,
    basket_events: tuple[str, ...] = ("purchase",),
) -> Pairs:
    """Mine, deduplicate, cap and split positive pairs (see the module docstring).

    ``held_out`` is about the share of pairs set aside; ``max_basket_size`` skips bulk orders whose
    pairs (n^2 / 2 of them) say little about relatedness; pairs seen ``min_count`` times or more are
    taken before the others; everything is seeded by ``seed``.
    """
    rng = np.random.default_rng(seed)
    n = dataset.n_items
    basket_a, basket_b, too_large = basket_pairs(dataset, max_basket_size, basket_events)
    session_a, session_b = session_pairs(dataset, session_gap, basket_events)
    queries, clicked = query_pairs(dataset)
    counts = {name: {"mined": 0, "unique": 0, "kept": 0} for name in SOURCES}
    counts["basket"]["mined"], counts["session"]["mined"] = len(basket_a), len(session_a)
    counts["query"]["mined"] = len(queries)
    candidates = _deduplicate(basket_a, basket_b, session_a, session_b, queries, clicked, n, min_count, rng)
    for name, candidate in zip(SOURCES, candidates, strict=True):
        counts[name]["unique"] = len(candidate[1])

    chosen, capped = _cap_and_budget(candidates, max_pairs, max_per_item, n)
    anchor = np.concatenate([c[0][idx] for c, idx in zip(candidates, chosen, strict=True)]).astype(np.int32)
    positive = np.concatenate([c[1][idx] for c, idx in zip(candidates, chosen, strict=True)]).astype(np.int32)
    query = np.concatenate([c[2][idx] for c, idx in zip(candidates, chosen, strict=True)]).astype(object)
    source = np.repeat(np.arange(len(SOURCES), dtype=np.int8), [len(idx) for idx in chosen])
    for name, idx in zip(SOURCES, chosen, strict=True):
        counts[name]["kept"] = len(idx)

    anchor, positive, is_held_out = _split(anchor, positive, query, held_out, rng)
    pairs = Pairs(anchor, query, positive, source, is_held_out, counts)
    held = pairs.holdout()
    pairs.stats.update(
        train=int((~is_held_out).sum()),
        held_out=int(is_held_out.sum()),
        held_out_anchors=len(set(held.anchor_keys().tolist())),
        capped=capped,
        baskets_too_large=too_large,
    )
    return pairs


def _deduplicate(
    basket_a: np.ndarray,
    basket_b: np.ndarray,
    session_a: np.ndarray,
    session_b: np.ndarray,
    queries: np.ndarray,
    clicked: np.ndarray,
    n_items: int,
    min_count: int,
    rng: np.random.Generator,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Distinct pairs per source, strongest first, as (anchor, positive, query text) arrays; a session
    pair that is also a basket pair is left to baskets."""
    basket_keys, basket_counts = np.unique(_unordered_keys(basket_a, basket_b, n_items), return_counts=True)
    session_keys, session_counts = np.unique(_unordered_keys(session_a, session_b, n_items), return_counts=True)
    new = ~np.isin(session_keys, basket_keys)
    query_counts = pd.DataFrame({"query": queries, "item": clicked}).groupby(["query", "item"], sort=True).size()
    return [
        _item_candidates(basket_keys, basket_counts, n_items, min_count, rng),
        _item_candidates(session_keys[new], session_counts[new], n_items, min_count, rng),
        _query_candidates(query_counts, min_count, rng),
    ]


def basket_pairs(
    dataset: Dataset, max_basket_size: int = 50, events: tuple[str, ...] = ("purchase",)
) -> tuple[np.ndarray, np.ndarray, int]:
    """Every unordered pair ``a < b`` of distinct items in each basket of 2..``max_basket_size`` distinct
    items; returns (a, b, number of baskets skipped as too large)."""
    baskets = dataset.baskets(events)
    if len(baskets) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    basket_of = np.repeat(np.arange(len(baskets)), baskets.sizes())
    # items are sorted within a basket: drop repeats of the same item (bought twice in one order)
    keep = np.r_[True, (basket_of[1:] != basket_of[:-1]) | (baskets.items[1:] != baskets.items[:-1])]
    basket_of, items = basket_of[keep], baskets.items[keep]
    sizes = np.bincount(basket_of, minlength=len(baskets))
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    first, second = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for size in np.unique(sizes[(sizes >= 2) & (sizes <= max_basket_size)]):
        rows = starts[sizes == size][:, None] + np.arange(size)  # (n_baskets_of_this_size, size)
        upper_i, upper_j = np.triu_indices(size, k=1)
        first.append(items[rows[:, upper_i]].ravel())
        second.append(items[rows[:, upper_j]].ravel())
    return np.concatenate(first), np.concatenate(second), int((sizes > max_basket_size).sum())


def session_pairs(
    dataset: Dataset, session_gap: float | None = 1800.0, basket_events: tuple[str, ...] = ("purchase",)
) -> tuple[np.ndarray, np.ndarray]:
    """(previous item, next item) for consecutive distinct items within a session, in time order."""
    frame = dataset.interactions
    order_line = frame["event"].isin(basket_events).to_numpy() & frame["session_id"].notna().to_numpy()
    frame = frame[~order_line]
    users = frame["user"].to_numpy()
    items = frame["item"].to_numpy().astype(np.int64)
    times = frame["timestamp"].to_numpy()
    session_ids = frame["session_id"]
    has_id = session_ids.notna().to_numpy()
    same = np.zeros(len(frame), dtype=bool)  # row i is in the same session as row i - 1
    same[1:] = users[1:] == users[:-1]
    labelled = has_id[1:] & has_id[:-1]
    ids = session_ids.to_numpy(dtype=object, na_value=None)
    same[1:] &= np.where(labelled, ids[1:] == ids[:-1], has_id[1:] == has_id[:-1])
    if session_gap is not None:
        unlabelled = ~has_id[1:] & ~has_id[:-1]
        same[1:] &= ~unlabelled | (times[1:] - times[:-1] <= session_gap)
    step = np.flatnonzero(same[1:] & (items[1:] != items[:-1])) + 1
    return items[step - 1], items[step]


def query_pairs(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(normalised query text, clicked item) for every search with a click on a catalogue item."""
    queries = dataset.queries
    if queries is None or len(queries) == 0:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    clicked = queries["item"].to_numpy().astype(np.int64)
    text = queries["query"].fillna("").astype(str).str.split().str.join(" ").str.lower().to_numpy(dtype=object)
    keep = (clicked >= 0) & (text != "")
    return text[keep], clicked[keep]


def _unordered_keys(a: np.ndarray, b: np.ndarray, n_items: int) -> np.ndarray:
    """``min * n_items + max`` per pair (int64), dropping self-pairs."""
    a, b = a.astype(np.int64), b.astype(np.int64)
    keep = a != b
    return np.minimum(a, b)[keep] * n_items + np.maximum(a, b)[keep]


def _strongest_first(
    counts: np.ndarray, degree_left: np.ndarray, degree_right: np.ndarray, min_count: int, rng: np.random.Generator
) -> np.ndarray:
    """Order of pairs: count >= min_count first, then by count / sqrt(degree_left * degree_right), ties random."""
    score = counts / np.sqrt(degree_left * degree_right)
    return np.lexsort((rng.random(len(counts)), -score, counts < min_count))


def _item_candidates(
    keys: np.ndarray, counts: np.ndarray, n_items: int, min_count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item pairs from unordered keys, strongest first, each in a random orientation: (anchor, positive, query)."""
    low, high = keys // n_items, keys % n_items
    degree = np.bincount(np.r_[low, high], weights=np.r_[counts, counts], minlength=n_items)
    order = _strongest_first(counts, degree[low], degree[high], min_count, rng)
    low, high = low[order], high[order]
    flip = rng.random(len(keys)) < 0.5
    return np.where(flip, high, low), np.where(flip, low, high), np.full(len(keys), "", dtype=object)


def _query_candidates(
    frame: pd.Series, min_count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, clicked item) -> count, as pairs strongest first: (anchor = -1, positive, query text)."""
    counts = frame.to_numpy(dtype=np.float64)
    text = frame.index.get_level_values("query").to_numpy(dtype=object)
    item = frame.index.get_level_values("item").to_numpy(dtype=np.int64)
    _, text_code = np.unique(text.astype(str), return_inverse=True)
    degree_text = np.bincount(text_code, weights=counts)[text_code] if len(counts) else counts
    degree_item = np.bincount(item, weights=counts)[item] if len(counts) else counts
    order = _strongest_first(counts, degree_text, degree_item, min_count, rng)
    return np.full(len(counts), -1, dtype=np.int64), item[order], text[order]


def _cap_and_budget(
    candidates: list[tuple], max_pairs: int, max_per_item: int, n_items: int
) -> tuple[list[np.ndarray], int]:
    """Positions kept from each source's shuffled candidates: each item in at most ``max_per_item`` kept
    pairs, ``max_pairs`` shared evenly (smallest source first; a source's unused share goes to the rest).

    A greedy pass in shuffled order; it stops at a source's share, so it reads a small prefix of sources
    with millions of pairs.
    """
    uses = np.zeros(n_items, dtype=np.int64)
    chosen: list[np.ndarray] = [np.zeros(0, np.int64)] * len(candidates)
    budget, capped = max_pairs, 0
    order = sorted(range(len(candidates)), key=lambda s: len(candidates[s][1]))
    for rank, s in enumerate(order):
        share = budget // (len(order) - rank)
        anchors, positives = candidates[s][0], candidates[s][1]
        kept: list[int] = []
        for i, (a, b) in enumerate(zip(anchors.tolist(), positives.tolist(), strict=True)):
            if len(kept) >= share:
                break
            if uses[b] >= max_per_item or (a >= 0 and uses[a] >= max_per_item):
                capped += 1
                continue
            uses[b] += 1
            if a >= 0:
                uses[a] += 1
            kept.append(i)
        chosen[s] = np.asarray(kept, dtype=np.int64)
        budget -= len(kept)
    return chosen, capped


def _split(
    anchor: np.ndarray, positive: np.ndarray, query: np.ndarray, held_out: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hold out anchors drawn in random order until about ``held_out`` of the pairs touch one: items for
    item pairs, query texts for query pairs. An item pair touching a held-out item is held out and turned
    so a held-out item is its anchor, so training never sees a held-out anchor."""
    if not 0.0 <= held_out < 1.0:
        raise ValueError(f"held_out must be in [0, 1), got {held_out}")
    is_item = anchor >= 0
    items = np.unique(np.r_[anchor[is_item], positive[is_item]])
    draw = np.zeros(int(max(anchor.max(initial=0), positive.max(initial=0))) + 1, dtype=np.int64)
    draw[items] = rng.permutation(len(items))  # the order in which items are held out
    first = np.minimum(draw[np.where(is_item, anchor, 0)], draw[positive])  # when a pair's first item is drawn
    held_item = is_item & (first < _cutoff(first[is_item], held_out))
    texts = query.astype(str)
    queries, query_of = np.unique(texts[~is_item], return_inverse=True)
    query_draw = rng.permutation(len(queries))[query_of]
    held_query = np.zeros(len(anchor), dtype=bool)
    held_query[~is_item] = query_draw < _cutoff(query_draw, held_out)
    turn = held_item & (draw[positive] < draw[np.where(is_item, anchor, 0)])  # the earlier drawn item anchors
    anchor, positive = np.where(turn, positive, anchor), np.where(turn, anchor, positive)
    return anchor.astype(np.int32), positive.astype(np.int32), held_item | held_query


def _cutoff(draws: np.ndarray, share: float) -> int:
    """The draw number below which about ``share`` of ``draws`` fall (at least one when share > 0)."""
    target = int(np.ceil(share * len(draws)))
    if target == 0:
        return 0
    return int(np.sort(draws)[target - 1]) + 1
