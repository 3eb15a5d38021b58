"""Why each item was recommended: structured, faithful explanations built from facts only.

Drivers come from occlusion (:func:`history_contributions`): every cited history item is scored
away and the drop in the recommended item's score is its contribution. That is faithful by
construction: removing the top-cited history item lowers that item's score, for any scorer
(item-to-item sums, SASRec, ...). Around the drivers an :class:`Explanation` gathers what the
recommended item shares with them (category, brand, tags, attributes), how often it was bought
together with them (:func:`co_purchase_counts`), and which recall sources proposed it with their
rank and share of the final score. Texts are rendered from these facts in
:mod:`shoprec.pipeline.explain_text`; nothing in a text is not in the :class:`Explanation`.

>>> out = explain(context, candidates, info, scorer=source.history_scores,           # doctest: +SKIP
...               source_shares={"ease": 0.7, "trending": 0.3}, co_counts=co_purchase_counts(train))
>>> out[0].to_dict()["drivers"][0]                                                  # doctest: +SKIP
{'item': 17, 'item_id': 'P00017', 'title': 'Nordhaus espresso cup', 'share': 0.62, ...}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.data.schema import EVENT_TYPES
from shoprec.errors import ModelError
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext

Scorer = Callable[[list[np.ndarray]], np.ndarray]
"""Scores of every item for each history: ``scorer([h1, h2, ...]) -> (n, n_items)``."""


@dataclass
class Contributions:
    """Occlusion result: how much each cited history item adds to each scored item."""

    history: np.ndarray  # (h,) int64 distinct history items, most recent first
    raw: np.ndarray  # (h, n) float64: full score - score without that history item
    shares: np.ndarray  # (h, n) float64: positive part / its column sum, 0 where no positive part
    nonfinite: int = 0  # raw entries that were NaN or infinite (a scorer masking items) and set to 0


def history_contributions(
    history: np.ndarray, items: np.ndarray, scorer: Scorer, max_history: int = 20
) -> Contributions:
    """Occlusion of the last ``max_history`` distinct history items for the scores of ``items``.

    The scorer scores the full history and, for each cited item ``h``, the history with every
    occurrence of ``h`` removed; ``raw[h, i] = full[i] - without_h[i]``. These histories are batched
    in one call per distinct length (usually two or three calls): a model that left-pads a batch to
    its longest history may score a shorter one differently than alone (SASRec's positions and
    GRU4Rec's state do), and occlusion must compare the scores the model gives each history alone.
    """
    history = np.asarray(history, dtype=np.int64).ravel()
    items = np.asarray(items, dtype=np.int64).ravel()
    if not isinstance(max_history, int | np.integer) or max_history < 1:
        raise ModelError(f"explanations: max_history must be a whole number >= 1, got {max_history!r}")
    cited = _recent_distinct(history, max_history)
    if len(cited) == 0 or len(items) == 0:
        empty = np.zeros((len(cited), len(items)))
        return Contributions(cited, empty, empty.copy())
    batch = [history] + [history[history != h] for h in cited.tolist()]
    scores = _score_by_length(scorer, batch, items)
    raw = scores[0][None, :] - scores[1:]  # (h, n)
    bad = ~np.isfinite(raw)
    raw[bad] = 0.0
    positive = np.clip(raw, 0.0, None)
    total = positive.sum(axis=0, keepdims=True)  # (1, n)
    shares = np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)
    return Contributions(cited, raw, shares, int(bad.sum()))


def _recent_distinct(history: np.ndarray, n: int) -> np.ndarray:
    """The last ``n`` distinct items of ``history``, most recent first."""
    reversed_items = history[::-1]
    _, first = np.unique(reversed_items, return_index=True)
    return reversed_items[np.sort(first)[:n]]


def _score_by_length(scorer: Scorer, batch: list[np.ndarray], items: np.ndarray) -> np.ndarray:
    """(len(batch), len(items)) scores, one scorer call per group of equally long histories."""
    lengths = np.array([len(h) for h in batch])
    out = np.zeros((len(batch), len(items)))
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        out[rows] = _call_scorer(scorer, [batch[r] for r in rows.tolist()], items)
    return out


def _call_scorer(scorer: Scorer, batch: list[np.ndarray], items: np.ndarray) -> np.ndarray:
    """The scorer's (len(batch), n_items) answer, checked, cut to the columns of ``items``."""
    scores = scorer(batch)
    if scores is None:
        raise ModelError(
            "explanations: the scorer returned None, so it does not score from the history alone; "
            "pass the history_scores of a source that does (item-to-item, sequential) or scorer=None"
        )
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] != len(batch):
        raise ModelError(
            f"explanations: the scorer must return ({len(batch)}, n_items) scores for {len(batch)} "
            f"histories, got shape {scores.shape}"
        )
    if items.min() < 0 or items.max() >= scores.shape[1]:
        raise ModelError(
            f"explanations: item indices must lie in 0..{scores.shape[1] - 1} (the scorer's catalogue), "
            f"got {items.min()}..{items.max()}"
        )
    return scores[:, items]


def co_purchase_counts(dataset: Dataset, events: tuple[str, ...] = ("purchase",)) -> sp.csr_matrix:
    """(n_items, n_items) int32 CSR: baskets holding both items (zero diagonal, symmetric).

    Baskets are :meth:`Dataset.baskets` (``events`` grouped by order or session id); an item
    twice in one basket counts once. Every basket counts, however large.
    """
    baskets = dataset.baskets(events)
    rows = np.repeat(np.arange(len(baskets)), baskets.sizes())
    member = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.int32), (rows, baskets.items)), shape=(len(baskets), dataset.n_items)
    )
    member.sum_duplicates()
    member.data[:] = 1
    counts = (member.T @ member).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    return counts.astype(np.int32)


@dataclass
class Driver:
    """A history item that raised the recommended item's score."""

    item: int
    item_id: str
    title: str
    share: float  # of the positive contributions to this item's score, in [0, 1]
    contribution: float  # raw score drop when this history item is removed
    event: str = ""  # the shopper's strongest event on it (view, cart, purchase), "" when unknown


@dataclass
class Shared:
    """What the recommended item has in common with every cited driver."""

    category: str = ""  # longest common category path ("A > B"), "" when none
    brand: str = ""
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.category or self.brand or self.tags or self.attributes)


@dataclass
class CoPurchase:
    """A driver the recommended item was bought together with, and in how many baskets."""

    item: int
    item_id: str
    title: str
    orders: int


@dataclass
class SourceFact:
    """A recall source that proposed the item: its rank there and its share of the final score."""

    name: str
    rank: int  # 1 = that source's best
    share: float | None = None  # None when the caller gave no shares


@dataclass
class Explanation:
    """Facts behind one recommended item, JSON-ready through :meth:`to_dict`."""

    position: int  # row in the candidates, 0 = first shown
    item: int
    item_id: str
    title: str
    score: float
    scenario: str = "home"
    cold: bool = False  # the shopper had no history at all
    drivers: list[Driver] = field(default_factory=list)  # best first
    cited: int = 0  # drivers a text names (the first ``cited``); ``shared`` is relative to them
    shared: Shared = field(default_factory=Shared)
    sources: list[SourceFact] = field(default_factory=list)  # largest share first, else best rank
    co_purchase: list[CoPurchase] = field(default_factory=list)  # most orders first

    def to_dict(self) -> dict:
        """Plain Python types only, ready for ``json.dumps``."""
        return asdict(self)


def explain(
    context: UserContext,
    candidates: Candidates,
    info: ItemInfo,
    scorer: Scorer | None = None,
    source_shares: dict[str, float | np.ndarray] | None = None,
    co_counts: sp.spmatrix | None = None,
    scenario: str = "home",
    *,
    max_history: int = 20,
    max_drivers: int = 5,
    cite: int = 2,
    attributes: list[dict] | None = None,
) -> list[Explanation]:
    """One :class:`Explanation` per candidate row, in row order.

    Args:
        scorer: history scorer for occlusion (e.g. a source's ``history_scores``); None: no drivers.
        source_shares: ``{source: share}`` of the final score, a number (same for every row, e.g.
            fusion weights) or an (n,) array per row (e.g. from the ranker's attributions).
        co_counts: (n_items, n_items) baskets-together counts (:func:`co_purchase_counts`).
        max_history: distinct recent history items scored away.
        max_drivers: drivers kept per item (positive shares only).
        cite: drivers a text names; ``shared`` holds what the item has in common with all of them.
        attributes: per item index, the catalog's free attributes (compared in ``shared``).
    """
    n = len(candidates)
    _check_inputs(candidates, info, source_shares, co_counts, attributes, n)
    if scorer is not None and len(context.history) and n:
        contrib = history_contributions(context.history, candidates.items, scorer, max_history)
    else:
        contrib = Contributions(np.zeros(0, np.int64), np.zeros((0, n)), np.zeros((0, n)))
    last_event = _strongest_events(context)
    out = []
    for row in range(n):
        item = int(candidates.items[row])
        drivers = _drivers(contrib, row, info, last_event, max_drivers)
        cited = min(cite, len(drivers))
        out.append(
            Explanation(
                position=row,
                item=item,
                item_id=str(info.item_id[item]),
                title=str(info.title[item]),
                score=float(candidates.score[row]),
                scenario=scenario,
                cold=context.is_cold,
                drivers=drivers,
                cited=cited,
                shared=shared_facts(info, item, [d.item for d in drivers[:cited]], attributes),
                sources=_sources(candidates, row, source_shares),
                co_purchase=_co_purchase(co_counts, item, drivers),
            )
        )
    return out


def _check_inputs(
    candidates: Candidates,
    info: ItemInfo,
    source_shares: dict | None,
    co_counts: sp.spmatrix | None,
    attributes: list[dict] | None,
    n: int,
) -> None:
    if n and (candidates.items.min() < 0 or candidates.items.max() >= info.n_items):
        raise ModelError(f"explanations: candidate items must lie in 0..{info.n_items - 1} (the catalogue)")
    for name, value in (source_shares or {}).items():
        if name not in candidates.sources:
            raise ModelError(
                f"explanations: source_shares names {name!r}, which is not a candidate source "
                f"({', '.join(candidates.sources) or 'none'})"
            )
        if np.ndim(value) not in (0, 1) or (np.ndim(value) == 1 and len(value) != n):
            raise ModelError(f"explanations: share of {name!r} must be a number or {n} values (one per row)")
    if co_counts is not None and co_counts.shape != (info.n_items, info.n_items):
        raise ModelError(f"explanations: co_counts must be ({info.n_items}, {info.n_items}), got {co_counts.shape}")
    if attributes is not None and len(attributes) != info.n_items:
        raise ModelError(
            f"explanations: attributes must hold one dict per item ({info.n_items}), got {len(attributes)}"
        )


def _strongest_events(context: UserContext) -> dict[int, str]:
    """Item -> the strongest event the shopper had on it (purchase over cart over view; empty when
    events are unknown), so a text says "bought" for an item bought and viewed again later."""
    if len(context.events) != len(context.history):
        return {}
    strength = {name: rank for rank, name in enumerate(EVENT_TYPES)}
    out: dict[int, str] = {}
    for item, event in zip(context.history.tolist(), context.events.tolist(), strict=True):
        event = str(event)
        if strength.get(event, -1) >= strength.get(out.get(item, ""), -1):
            out[item] = event
    return out


def _drivers(contrib: Contributions, row: int, info: ItemInfo, last_event: dict, k: int) -> list[Driver]:
    if len(contrib.history) == 0:
        return []
    shares = contrib.shares[:, row]
    order = np.argsort(-shares, kind="stable")[:k]
    order = order[shares[order] > 0]
    return [
        Driver(
            item=int(h),
            item_id=str(info.item_id[h]),
            title=str(info.title[h]),
            share=float(shares[j]),
            contribution=float(contrib.raw[j, row]),
            event=last_event.get(int(h), ""),
        )
        for j, h in ((j, int(contrib.history[j])) for j in order.tolist())
    ]


def shared_facts(info: ItemInfo, item: int, others: list[int], attributes: list[dict] | None = None) -> Shared:
    """Category prefix, brand, tags and attribute values ``item`` has in common with all ``others``."""
    if not others:
        return Shared()
    group = [item, *others]
    paths = [info.category[i].split(" > ") if info.category[i] else [] for i in group]
    common = []
    for levels in zip(*paths, strict=False):
        if len(set(levels)) != 1:
            break
        common.append(levels[0])
    brands = {info.brand[i] for i in group}
    tags = [t for t in info.tags[item] if all(t in info.tags[o] for o in others)]
    attrs = {}
    if attributes is not None:
        first = attributes[item] or {}
        attrs = {
            str(k): str(v)
            for k, v in first.items()
            if v not in (None, "") and all((attributes[o] or {}).get(k) == v for o in others)
        }
    brand = brands.pop() if len(brands) == 1 else ""
    return Shared(" > ".join(common), brand, tags, attrs)


def _sources(candidates: Candidates, row: int, source_shares: dict | None) -> list[SourceFact]:
    facts = []
    for s, name in enumerate(candidates.sources):
        rank = int(candidates.source_ranks[row, s])
        if rank < 0:
            continue
        share = None
        if source_shares is not None and name in source_shares:
            value = source_shares[name]
            share = float(value if np.ndim(value) == 0 else np.asarray(value)[row])
        facts.append(SourceFact(name, rank + 1, share))
    facts.sort(key=lambda f: (f.share is None, -(f.share or 0.0), f.rank))
    return facts


def _co_purchase(co_counts: sp.spmatrix | None, item: int, drivers: list[Driver]) -> list[CoPurchase]:
    if co_counts is None or not drivers:
        return []
    row = sp.csr_matrix(co_counts[item])
    counts = np.asarray(row[:, [d.item for d in drivers]].todense()).ravel()
    facts = [CoPurchase(d.item, d.item_id, d.title, int(c)) for d, c in zip(drivers, counts, strict=True) if c > 0]
    return sorted(facts, key=lambda f: -f.orders)
