"""Recall from the shopper's recent search queries: "searched for tents" -> tents and camping gear
in the next home feed.

The recent queries (:attr:`UserContext.queries`, most recent last) are encoded with the encoder that
made the pipeline's item vectors (:attr:`Resources.encoder`) and matched to the items by cosine::

    score(i) = max_j  decay^j * cos(q_j, v_i)

over the ``recent`` last distinct queries, ``j = 0`` the most recent. The maximum, not a mean of the
query vectors: two unrelated searches ("tents", "phone case") each find their own items instead of
a blend that matches neither, and each item has one query that put it there
(:meth:`QuerySource.matched_queries`, for explanations).

A shopper without queries costs nothing: no encoding, no index search, an empty answer. Without an
encoder or item vectors the source is silent too (counted in :attr:`QuerySource.stats`). Query
vectors are kept in a bounded cache across requests, so a shopper's next feed encodes only the
queries made since (most feeds encode nothing).

>>> source = QuerySource("queries")                                 # doctest: +SKIP
>>> source.fit(train, Resources(info, item_vectors, encoder=enc))   # doctest: +SKIP
>>> [(items, scores)] = source.recall([context], k=100)            # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ConfigError
from shoprec.pipeline.base import Resources, Source
from shoprec.pipeline.context import UserContext

MAX_QUERY_CHARS = 256
"""A longer query is cut here before encoding (the search layer's limit)."""


_SHARED: dict[object, OrderedDict[str, np.ndarray]] = {}
"""Query-vector caches shared by every source whose encoder has the same ``cache_key`` (an encoder
may define one when two instances encode identically, e.g. one model loaded once per process and
handed to each served version): a new version of a shop does not encode its shoppers' queries again."""
_SHARED_LOCK = threading.Lock()


def recent_queries(queries: tuple[str, ...] | list[str], recent: int) -> list[str]:
    """The last ``recent`` distinct queries, most recent first: whitespace collapsed, cut at
    :data:`MAX_QUERY_CHARS`, empty ones skipped; a repeated query counts at its latest time."""
    out: dict[str, None] = {}
    for text in reversed(queries):
        clean = " ".join(str(text).split())[:MAX_QUERY_CHARS]
        if clean and clean not in out:
            out[clean] = None
            if len(out) == recent:
                break
    return list(out)


class QuerySource(Source):
    """Items nearest by cosine to the shopper's recent search queries, recent ones weighted more.

    Args:
        recent: distinct queries used, the most recent ones.
        decay: weight ratio between a query and the next more recent one (in (0, 1]).
        cache: query vectors kept across requests (least recently used dropped first).
        exclude_seen: never propose items in the shopper's history.
    """

    kind = "queries"

    def __init__(
        self, name: str, recent: int = 5, decay: float = 0.8, cache: int = 4096, exclude_seen: bool = True
    ) -> None:
        super().__init__(name)
        if not isinstance(recent, int) or recent < 1:
            raise ConfigError(f"queries source: recent must be a whole number >= 1, got {recent!r}")
        if not 0 < decay <= 1:
            raise ConfigError(f"queries source: decay must lie in (0, 1], got {decay}")
        if not isinstance(cache, int) or cache < 0:
            raise ConfigError(f"queries source: cache must be a whole number >= 0, got {cache!r}")
        self.recent, self.decay, self.cache_size, self.exclude_seen = recent, float(decay), cache, exclude_seen
        self.resources: Resources | None = None
        self._index = None
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_encoder: object = None
        self.stats: Counter = Counter()
        """Counts since fitting: ``requests_with_queries``, ``encoded`` (texts sent to the encoder),
        ``cache_hits``, ``silent_no_encoder`` (requests with queries but no encoder or vectors)."""

    def fit(self, train: Dataset, resources: Resources) -> None:
        vectors = resources.item_vectors
        if vectors is not None and len(vectors) != train.n_items:
            raise ConfigError(
                f"source '{self.name}': {len(vectors)} item vectors for {train.n_items} items",
                fix="encode the training data's catalogue with the pipeline's encoder",
            )
        self.resources, self._index = resources, None
        self.stats = Counter()

    # ------------------------------------------------------------------ encoding
    def _encoder(self):
        """The resources' encoder when the pipeline has item vectors it can match, else None."""
        res = self.resources
        if res is None or res.encoder is None or res.item_vectors is None:
            return None
        if res.encoder.dim != res.item_vectors.shape[1]:
            raise ConfigError(
                f"source '{self.name}': the encoder '{res.encoder.name}' makes {res.encoder.dim}-d vectors, "
                f"the item vectors are {res.item_vectors.shape[1]}-d",
                fix="give the pipeline the encoder that made its item vectors",
            )
        return res.encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), d) unit vectors of cleaned query texts, through the cache (one encoder
        call for every text not cached)."""
        encoder = self._encoder()
        if encoder is None:
            raise ConfigError(f"source '{self.name}' has no encoder: set the pipeline's resources.encoder")
        shared = getattr(encoder, "cache_key", None)
        if shared is not None:  # versions served with one encoder share its query vectors
            with _SHARED_LOCK:
                self._cache = _SHARED.setdefault(shared, OrderedDict())
            self._cache_encoder = encoder
        elif self._cache_encoder is not encoder:
            self._cache = OrderedDict()
            self._cache_encoder = encoder
        cache = self._cache
        with _SHARED_LOCK:  # the warm-up thread and requests use one cache; encoding runs outside the lock
            cached = {t: cache[t] for t in texts if t in cache}
        missing = list(dict.fromkeys(t for t in texts if t not in cached))
        self.stats["cache_hits"] += len(texts) - sum(1 for t in texts if t not in cached)
        fresh = dict(zip(missing, encoder.encode(missing, progress=False), strict=True)) if missing else {}
        self.stats["encoded"] += len(missing)
        out = np.stack([fresh[t] if t in fresh else cached[t] for t in texts])
        with _SHARED_LOCK:
            for text in texts:
                if text in fresh:
                    if self.cache_size:
                        cache[text] = fresh[text]
                elif text in cache:
                    cache.move_to_end(text)
            while len(cache) > self.cache_size:
                cache.popitem(last=False)
        return out

    def _vector_index(self):
        """Cosine index over the item vectors, built at the first request that has queries."""
        if self._index is None:
            from shoprec.text.index import VectorIndex

            vectors = self.resources.item_vectors
            self._index = VectorIndex(vectors.shape[1]).add(vectors, np.arange(len(vectors)))
        return self._index

    # ------------------------------------------------------------------ recall
    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        empty = (np.empty(0, np.int64), np.empty(0, np.float32))
        out: list[tuple[np.ndarray, np.ndarray]] = [empty] * len(contexts)
        asked = [(i, recent_queries(c.queries, self.recent)) for i, c in enumerate(contexts) if c.queries]
        asked = [(i, texts) for i, texts in asked if texts]
        if not asked or k < 1:
            return out
        self.stats["requests_with_queries"] += len(asked)
        if self._encoder() is None:
            self.stats["silent_no_encoder"] += len(asked)
            return out
        texts = [t for _, ts in asked for t in ts]
        vectors = self.encode(texts)
        exclude = []
        for i, ts in asked:
            hidden = np.unique(contexts[i].history).tolist() if self.exclude_seen else []
            exclude.extend([hidden] * len(ts))
        ids, cosines = self._vector_index().search(vectors, k, exclude=exclude)
        row = 0
        for i, ts in asked:
            weights = (self.decay ** np.arange(len(ts), dtype=np.float32))[:, None]
            items, scores = ids[row : row + len(ts)], cosines[row : row + len(ts)] * weights
            row += len(ts)
            out[i] = _best_per_item(items.ravel(), scores.ravel(), k)
        return out

    def matched_queries(self, ctx: UserContext, items: np.ndarray) -> list[str]:
        """Per item, the recent query whose weighted cosine is the item's score here ("" where no
        query has a positive one, or without queries or an encoder)."""
        texts = recent_queries(ctx.queries, self.recent)
        items = np.asarray(items, dtype=np.int64)
        if not texts or not len(items) or self._encoder() is None:
            return [""] * len(items)
        weights = self.decay ** np.arange(len(texts), dtype=np.float32)
        scores = (self.resources.item_vectors[items] @ self.encode(texts).T) * weights[None, :]
        best = scores.argmax(axis=1)
        return [texts[b] if scores[r, b] > 0 else "" for r, b in enumerate(best.tolist())]


def _best_per_item(items: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's largest positive score, the best ``k`` first (ties to the lower index)."""
    keep = (items >= 0) & (scores > 0)
    items, scores = items[keep], scores[keep]
    order = np.lexsort((items, -scores))  # best score first; per item its best row comes first
    items, scores = items[order], scores[order]
    _, first = np.unique(items, return_index=True)
    first = np.sort(first)[:k]
    return items[first].astype(np.int64), scores[first].astype(np.float32)
