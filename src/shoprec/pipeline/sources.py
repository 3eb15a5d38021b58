"""Recall sources: any registered model, item-to-item from recent items, buy-again, trending,
new arrivals and popularity.

Every source answers a batch of :class:`UserContext` with best-first ``(items, scores)``. Sources
that score from the history alone (item-to-item, buy-again, sequential models) read the live
history in the context, so a click made a moment ago changes the next answer without refitting.

>>> source = ModelSource("ease", create_model("ease"))      # doctest: +SKIP
>>> source.fit(train, resources)                            # doctest: +SKIP
>>> [(items, scores)] = source.recall([context], k=100)     # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.errors import ConfigError
from shoprec.models.base import Recommender, top_k
from shoprec.models.itemknn import cosine_similarity
from shoprec.pipeline.base import Resources, Source
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.windows import WindowCounts
from shoprec.timeunits import DAY

REMEMBER = 20
"""Items a model source keeps beyond the asked k per user, for the next requests of that user."""
REMEMBER_USERS = 50_000
"""Users whose lists a model source keeps (about 1.5 KB each at k = 100: 75 MB); past it, it starts afresh."""


def _rows_top_k(rows: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row, the best ``k`` finite entries as (items, scores)."""
    if len(rows) == 1:
        return [_row_top_k(rows[0], k)]
    items, scores = top_k(rows, k)
    out = []
    for it, sc in zip(items, scores, strict=True):
        keep = it >= 0
        out.append((it[keep].astype(np.int64), sc[keep].astype(np.float32)))
    return out


def _row_top_k(row: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_k`` of one row (a request), without its padding: the best ``k`` finite entries, ties to
    the lower index. The k-th best value is found by one partition of the finite entries; only
    those at or above it are sorted."""
    at = np.flatnonzero(row > -np.inf)  # NaN and -inf are never ranked; +inf ranks, then drops out as top_k's does
    values = row[at]
    if len(at) > k > 0:
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        at, values = at[keep], values[keep]
    order = np.lexsort((at, -values))[: max(k, 0)]
    at, values = at[order], values[order]
    finite = np.isfinite(values)
    return at[finite].astype(np.int64), values[finite].astype(np.float32)


def _compact_top_k(items: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of ``scores`` over ``items`` (ascending indices, every score finite): what
    :func:`_rows_top_k` gives on the full row where every other item is ``-inf``, since ties
    go to the lower index and ``items`` keep the full row's order."""
    if not len(items):
        return np.empty(0, np.int64), np.empty(0, np.float32)
    [(at, values)] = _rows_top_k(scores[None, :], k)
    return items[at].astype(np.int64), values


def _mask_history(rows: np.ndarray, contexts: list[UserContext]) -> None:
    for r, ctx in enumerate(contexts):
        if len(ctx.history):
            rows[r, ctx.history] = -np.inf


class ModelSource(Source):
    """Wraps a :class:`Recommender`. Sequential models score the live history; others score the
    fitted user row (a user unknown to the model gets nothing from this source)."""

    kind = "model"

    def __init__(self, name: str, model: Recommender, exclude_seen: bool = True, prefitted: bool = False) -> None:
        super().__init__(name)
        self.model = model
        self.exclude_seen = exclude_seen
        self.prefitted = prefitted
        self._lists: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = {}
        """(user, k, exclude_seen) -> a longer list than asked, the history it hides, and whether it
        holds every rankable item: see :meth:`_remembered`."""

    def fit(self, train: Dataset, resources: Resources) -> None:
        self._lists = {}
        if self.prefitted and self.model.is_fitted:
            return
        if resources.item_vectors is not None and hasattr(self.model, "set_item_vectors"):
            self.model.set_item_vectors(resources.item_vectors)
        self.model.fit(train)

    @property
    def live(self) -> bool:
        return hasattr(self.model, "score_histories")

    @property
    def scores_history(self) -> bool:
        return self.live

    def history_scores(self, histories: list[np.ndarray]) -> np.ndarray | None:
        if not self.live:
            return None
        return self.model.score_histories([np.asarray(h, dtype=np.int64) for h in histories])

    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        out: list[tuple[np.ndarray, np.ndarray]] = [empty] * len(contexts)
        if self.live:
            rows_of = [i for i, c in enumerate(contexts) if len(c.history)]
            if not rows_of:
                return out
            rows = self.history_scores([contexts[i].history for i in rows_of])
        else:
            return self._recall_fitted(contexts, k, out)
        rows = np.asarray(rows, dtype=np.float32)
        if self.exclude_seen:
            _mask_history(rows, [contexts[i] for i in rows_of])
        for i, pair in zip(rows_of, _rows_top_k(rows, k), strict=True):
            out[i] = pair
        return out

    def _recall_fitted(self, contexts: list[UserContext], k: int, out: list) -> list[tuple[np.ndarray, np.ndarray]]:
        """Lists from the users' fitted rows, which no live event changes: each user's list is kept
        ``REMEMBER`` items longer than asked, and a later request whose history still hides every
        item the kept list hid takes its first ``k`` items its history does not hide, without
        scoring the catalogue again (a click right after a visit is the common case). The order is
        ``top_k``'s, total, so the answer is exactly what scoring again would give; when it cannot
        be (too many newly hidden items, or a hidden item left the live window), the row is scored."""
        users = np.array([c.user for c in contexts], dtype=np.int64)
        known = self.model.is_known(users)
        todo = []
        for i in np.flatnonzero(known).tolist():
            kept = self._remembered(contexts[i], k)
            if kept is None:
                todo.append(i)
            else:
                out[i] = kept
        if not todo:
            return out
        rows = np.asarray(self.model.score(users[todo]), dtype=np.float32)
        if self.exclude_seen:
            _mask_history(rows, [contexts[i] for i in todo])
        if len(self._lists) > REMEMBER_USERS:
            self._lists = {}
        for i, (items, scores) in zip(todo, _rows_top_k(rows, k + REMEMBER), strict=True):
            ctx = contexts[i]
            hidden = np.unique(ctx.history) if self.exclude_seen else np.empty(0, np.int64)
            self._lists[(ctx.user, k, self.exclude_seen)] = (items, scores, hidden, len(items) < k + REMEMBER)
            out[i] = (items[:k], scores[:k])
        return out

    def _remembered(self, ctx: UserContext, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        kept = self._lists.get((ctx.user, k, self.exclude_seen))
        if kept is None:
            return None
        items, scores, hidden, complete = kept
        if not self.exclude_seen:
            return items[:k], scores[:k]
        if len(hidden) and not ctx.seen(hidden).all():
            return None  # an item hidden then is not in this history (it left the live window)
        keep = ~ctx.seen(items) if len(ctx.history) else np.ones(len(items), dtype=bool)
        if keep.sum() < k and not complete:
            return None
        return items[keep][:k], scores[keep][:k]


class ItemToItemSource(Source):
    """Neighbours of the user's recent items: ``score(i) = sum_j decay^j sim(h_j, i)`` over the
    ``recent`` last distinct items (most recent first). ``similarity`` is ``cooccurrence`` (item
    cosine over users, as item-kNN) or ``text`` (cosine of the text vectors, so new items take
    part from day one)."""

    kind = "item-to-item"
    scores_history = True

    def __init__(
        self,
        name: str,
        similarity: str = "cooccurrence",
        neighbors: int = 100,
        recent: int = 20,
        decay: float = 0.9,
        shrinkage: float = 50.0,
        exclude_seen: bool = True,
    ) -> None:
        super().__init__(name)
        if similarity not in ("cooccurrence", "text"):
            raise ConfigError(f"item-to-item similarity must be 'cooccurrence' or 'text', not {similarity!r}")
        if not 0 < decay <= 1:
            raise ConfigError(f"item-to-item decay must lie in (0, 1], got {decay}")
        self.similarity, self.neighbors, self.recent, self.decay = similarity, neighbors, recent, decay
        self.shrinkage, self.exclude_seen = shrinkage, exclude_seen
        self.matrix: sp.csr_matrix | None = None

    def fit(self, train: Dataset, resources: Resources) -> None:
        if self.similarity == "cooccurrence":
            self.matrix = cosine_similarity(train.matrix("binary"), self.shrinkage, self.neighbors)
            return
        if resources.item_vectors is None:
            raise ConfigError(f"source '{self.name}' uses text similarity but the pipeline has no item vectors")
        from shoprec.text.index import VectorIndex

        vectors = resources.item_vectors
        n = len(vectors)
        index = VectorIndex(vectors.shape[1]).add(vectors, np.arange(n))
        items, scores = index.search(vectors, self.neighbors, exclude=[[i] for i in range(n)])
        rows = np.repeat(np.arange(n), items.shape[1])
        keep = items.ravel() >= 0
        sim = sp.csr_matrix((scores.ravel()[keep], (rows[keep], items.ravel()[keep])), shape=(n, n))
        self.matrix = sim.astype(np.float32)

    def weights(self, history: np.ndarray) -> sp.csr_matrix:
        """(1, n_items) sparse row: decay^j on the j-th most recent distinct item."""
        cols, values = self._recent_weights(history)
        n = self.matrix.shape[0]
        return sp.csr_matrix((values, (np.zeros(len(cols), dtype=np.int64), cols)), shape=(1, n))

    def _recent_weights(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``recent`` last distinct items (most recent first) and their weights decay^j."""
        n = self.matrix.shape[0]
        seen: dict[int, None] = {}
        for item in np.asarray(history)[::-1].tolist():
            if 0 <= item < n and item not in seen:
                seen[item] = None
                if len(seen) == self.recent:
                    break
        cols = np.fromiter(seen, dtype=np.int64, count=len(seen))
        return cols, self.decay ** np.arange(len(cols), dtype=np.float32)

    def touched_scores(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row of :meth:`history_scores` for one history, restricted to the items some recent item
        has as a neighbour: ``(items ascending, float32 scores)``; every other item scores 0.

        The same sums as the sparse product, to the bit: neighbour rows are added in ascending
        order of the recent item, in the product's precision, as scipy's CSR product adds them."""
        cols, values = self._recent_weights(history)
        order = np.argsort(cols, kind="stable")  # the product walks the weight row by column
        cols, values = cols[order], values[order]
        m = self.matrix
        spans = [slice(int(m.indptr[c]), int(m.indptr[c + 1])) for c in cols.tolist()]
        if not spans:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        neighbours = np.concatenate([m.indices[span] for span in spans])
        dtype = np.result_type(values.dtype, m.dtype)
        weights = np.repeat(values.astype(dtype), [span.stop - span.start for span in spans])
        products = weights * np.concatenate([m.data[span] for span in spans]).astype(dtype)
        touched, where = np.unique(neighbours, return_inverse=True)
        sums = np.zeros(len(touched), dtype=dtype)
        np.add.at(sums, where, products)  # unbuffered, in order: each item's terms added as the loop added them
        return touched.astype(np.int64), sums.astype(np.float32)

    def history_scores(self, histories: list[np.ndarray]) -> np.ndarray:
        weights = sp.vstack([self.weights(h) for h in histories]) if histories else None
        if weights is None:
            return np.zeros((0, self.matrix.shape[0]), dtype=np.float32)
        return np.asarray((weights @ self.matrix).toarray(), dtype=np.float32)

    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per context, the best ``k`` positive scores over the items a recent item points to only
        (``top_k``'s order is total, so this is the top k of the whole row)."""
        out = []
        for ctx in contexts:
            items, scores = self.touched_scores(ctx.history)
            keep = scores > 0
            if self.exclude_seen and len(ctx.history):
                keep &= ~ctx.seen(items)
            out.append(_compact_top_k(items[keep], scores[keep], k))
        return out


class BuyAgainSource(Source):
    """Items the user already bought (or interacted with), most frequent and recent first: in a
    shop with consumables, re-orders are a large share of purchases."""

    kind = "buy-again"
    scores_history = True

    def __init__(
        self,
        name: str,
        events: tuple[str, ...] = ("purchase",),
        half_life_days: float = 30.0,
        exclude_seen: bool = False,
    ) -> None:
        super().__init__(name)
        self.events, self.half_life_days = events, half_life_days
        self.exclude_seen = exclude_seen
        """True makes this source propose nothing: in a feed that hides the user's own items (the
        pipeline's ``exclude_seen``), re-orders are not wanted."""
        self.n_items = 0

    def fit(self, train: Dataset, resources: Resources) -> None:
        self.n_items = train.n_items

    def _one(self, ctx: UserContext) -> np.ndarray:
        scores = np.zeros(self.n_items, dtype=np.float32)
        mask = (
            np.isin(ctx.events, self.events) if len(ctx.events) == len(ctx.history) else np.ones(len(ctx.history), bool)
        )
        if mask.any():
            age_days = np.maximum(ctx.now - ctx.times[mask], 0) / DAY
            np.add.at(scores, ctx.history[mask], 0.5 ** (age_days / self.half_life_days))
        return scores

    def history_scores(self, histories: list[np.ndarray]) -> np.ndarray:
        rows = np.zeros((len(histories), self.n_items), dtype=np.float32)
        for r, h in enumerate(histories):
            np.add.at(rows[r], np.asarray(h, dtype=np.int64), 1.0)
        return rows

    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.exclude_seen:
            return [(np.empty(0, np.int64), np.empty(0, np.float32)) for _ in contexts]
        rows = np.stack([self._one(c) for c in contexts]) if contexts else np.zeros((0, self.n_items), np.float32)
        rows[rows <= 0] = -np.inf
        return _rows_top_k(rows, k)


class PopularitySource(Source):
    """The same list for everyone: interactions over all time, or in the last ``window_days``
    before the request (trending now)."""

    kind = "popularity"

    def __init__(self, name: str, window_days: float | None = None, exclude_seen: bool = True) -> None:
        super().__init__(name)
        self.window_days, self.exclude_seen = window_days, exclude_seen
        self.windows: WindowCounts | None = None
        self._ranked: tuple[np.ndarray, np.ndarray] | None = None

    def fit(self, train: Dataset, resources: Resources) -> None:
        self.windows = resources.windows or WindowCounts(train)

    def counts(self, now: int) -> np.ndarray:
        """Interactions per item in the window ending at ``now`` (all time without a window)."""
        return self.windows.counts(now, self.window_days)

    def ranked(self, now: int) -> np.ndarray:
        """Items with interactions in the window ending at ``now``, best first in ``top_k``'s order
        (count, then lower index); cached with the counts they come from."""
        counts = self.counts(now)
        if self._ranked is None or self._ranked[0] is not counts:
            positive = np.flatnonzero(counts > 0)
            self._ranked = (counts, positive[np.lexsort((positive, -counts[positive]))])
        return self._ranked[1]

    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The first ``k`` items of :meth:`ranked` the user may see: the top k of the counts with
        the user's items masked, without sorting the catalogue per request."""
        out = []
        for ctx in contexts:
            counts, ranked = self.counts(ctx.now), self.ranked(ctx.now)
            blocked = len(np.unique(ctx.history)) if self.exclude_seen else 0
            head = ranked[: k + blocked]  # at most `blocked` of these are the user's
            if blocked:
                head = head[~ctx.seen(head)]
            items = head[:k].astype(np.int64)
            out.append((items, counts[items].astype(np.float32)))
        return out


class NewArrivalsSource(Source):
    """Items launched in the last ``days`` before the request, ranked by cosine between their
    text vector and the user's recent items (newest first for a shopper without history)."""

    kind = "new-arrivals"

    def __init__(self, name: str, days: float = 30.0, recent: int = 20) -> None:
        super().__init__(name)
        self.days, self.recent = days, recent
        self.created = self.vectors = None

    def fit(self, train: Dataset, resources: Resources) -> None:
        self.created = resources.info.created
        first_seen = np.full(train.n_items, np.iinfo(np.int64).max, dtype=np.int64)
        frame = train.interactions
        np.minimum.at(first_seen, frame["item"].to_numpy(), frame["timestamp"].to_numpy(dtype=np.int64))
        unknown = self.created < 0
        self.created = np.where(unknown, np.where(first_seen < np.iinfo(np.int64).max, first_seen, -1), self.created)
        self.vectors = resources.item_vectors

    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for ctx in contexts:
            fresh = np.flatnonzero((self.created >= ctx.now - self.days * DAY) & (self.created <= ctx.now))
            fresh = fresh[~np.isin(fresh, ctx.history)]
            recent = ctx.recent(self.recent)
            if self.vectors is not None and len(recent) and len(fresh):
                profile = self.vectors[recent].mean(axis=0)
                scores = self.vectors[fresh] @ profile
            else:
                scores = (self.created[fresh] - ctx.now) / DAY  # newest first
            order = np.argsort(-scores, kind="stable")[:k]
            out.append((fresh[order].astype(np.int64), np.asarray(scores[order], dtype=np.float32)))
        return out
