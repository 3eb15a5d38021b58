"""Lexical retrieval: BM25 (Lucene variant) over title, brand, category path, tags and description.

The main index is built once over the whole :class:`~shoprec.search.products.ProductTable` with
``bm25s``, which stores each (term, document) BM25 weight in a sparse matrix, one column per term. A
query adds up the columns of its terms (numpy; one vectorised add per term, no per-document Python).
bm25s cannot change an index in place, so changes after the build go to a **delta index** kept here:

- an upserted product's row in the main index is masked out and its new terms are held in the delta,
  as per-term posting arrays (positions and the document's term weight ``tf / (tf + k1 (1 - b + b
  len / avgdl))``);
- a removed product is masked out of the main index and dropped from the delta;
- at query time each query term's delta postings are added with its idf computed from the *main
  index's* collection statistics (document count plus the delta's new products, average length,
  document frequency; a term only the delta has counts its delta documents), so a product re-upserted
  with unchanged text scores exactly as before (tested);
- once the delta holds more than ``max(compact_min, compact_share * main size)`` documents the main
  index is rebuilt from a snapshot of the table (:meth:`LexicalIndex.start_compaction`). With
  ``background=True`` (the default) the rebuild runs on a thread while searches and upserts go on
  against the current state; when it is done the new main index and a delta holding only the changes
  made since the snapshot replace the old state in one assignment. A search reads the state once, so
  it sees either the old or the new index, never half of each (tested with searches during a rebuild).

Every change builds a new state object and swaps it in (copy on write: the mask of changed rows and
the delta's posting dictionary are copied, the main index is shared), which is what makes a search
without a lock safe while an upsert or a swap happens.

Document terms: the title counted ``title_weight`` times, then brand, category path, tags and
description, through :func:`~shoprec.search.tokenize.tokenize` (stemmed English, jieba-segmented Chinese).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoprec.search.products import Product, ProductTable
from shoprec.search.tokenize import tokenize

log = logging.getLogger(__name__)
EMPTY_INT = np.zeros(0, dtype=np.int64)
EMPTY_FLOAT = np.zeros(0, dtype=np.float32)


def document_terms(product: Product, title_weight: int = 2) -> list[str]:
    """The index terms of one product (title repeated ``title_weight`` times)."""
    title = tokenize(product.title)
    rest = " ".join([product.brand, product.category.replace(">", " "), product.tags, product.description])
    return title * title_weight + tokenize(rest)


@dataclass(frozen=True)
class _Main:
    """One bm25s build: term -> column, the weights by column (CSC arrays) and the collection statistics."""

    size: int  # table positions covered (dead ones indexed as empty documents)
    vocab: dict[str, int]
    data: np.ndarray  # float32 BM25 weight of each (term, document) pair
    indices: np.ndarray  # document position of each weight, ascending within a column
    indptr: np.ndarray  # column t holds data[indptr[t]:indptr[t + 1]]
    avgdl: float
    engine: Any = None  # the bm25s.BM25 object (kept for bm25s's own API)

    def df(self, term: str) -> int:
        col = self.vocab.get(term)
        return 0 if col is None else int(self.indptr[col + 1] - self.indptr[col])

    def column(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        col = self.vocab.get(term)
        if col is None:
            return EMPTY_INT, EMPTY_FLOAT
        start, end = self.indptr[col], self.indptr[col + 1]
        return self.indices[start:end], self.data[start:end]

    def contains(self, position: int, term: str) -> bool:
        docs, _ = self.column(term)
        at = int(np.searchsorted(docs, position))
        return at < len(docs) and int(docs[at]) == position


@dataclass(frozen=True)
class _Delta:
    """Documents changed since the build: their term counts and lengths, and per-term postings."""

    docs: dict[int, tuple[Counter[str], int]] = field(default_factory=dict)
    postings: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # positions, weights
    new_docs: int = 0  # documents at positions past the main index (new products)


@dataclass(frozen=True)
class _State:
    main: _Main | None
    masked: np.ndarray  # sorted positions of the main index not to return (changed or removed since)
    delta: _Delta


@dataclass
class _Rebuild:
    generation: int
    changed: set[int] = field(default_factory=set)  # positions upserted or removed since the snapshot
    thread: threading.Thread | None = None


class LexicalIndex:
    """BM25 over a product table, with a delta index for changes after the build (module docstring)."""

    def __init__(
        self,
        k1: float = 1.2,
        b: float = 0.75,
        title_weight: int = 2,
        compact_min: int = 1000,
        compact_share: float = 0.05,
        background: bool = True,
    ) -> None:
        self.k1, self.b, self.title_weight = float(k1), float(b), int(title_weight)
        self.compact_min, self.compact_share = int(compact_min), float(compact_share)
        self.background = bool(background)
        self.compactions = 0  # main index rebuilds swapped in after the first build
        self.compaction_error: BaseException | None = None  # the last background rebuild's failure, if any
        self._state = _State(None, EMPTY_INT, _Delta())
        self._lock = threading.Lock()  # serialises changes and the swap; searches never take it
        self._generation = 0
        self._rebuild: _Rebuild | None = None

    # ------------------------------------------------------------------ building
    def build(self, table: ProductTable) -> LexicalIndex:
        """(Re)build the main index over every live product of ``table`` now; empties the delta."""
        main = self._build_main(table.products, table.alive)
        with self._lock:
            self._generation += 1  # a background rebuild started before this one is dropped
            self._rebuild = None
            self._state = _State(main, EMPTY_INT, _Delta())
        return self

    compact = build

    def _build_main(self, products: Sequence[Product], alive: np.ndarray) -> _Main | None:
        import bm25s

        docs = [document_terms(p, self.title_weight) if live else [] for p, live in zip(products, alive, strict=True)]
        if not docs:  # bm25s cannot index an empty corpus: an empty table has only the delta
            return None
        docs = [d or [""] for d in docs]  # bm25s needs a token per document; "" is never a query term
        engine = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        engine.index(docs, show_progress=False)
        avgdl = float(np.mean([len(d) for d in docs]))  # as bm25s computes it (an empty document counts 1)
        scores = engine.scores
        indices, indptr = np.asarray(scores["indices"], dtype=np.int64), np.asarray(scores["indptr"], dtype=np.int64)
        data = np.asarray(scores["data"], dtype=np.float32)
        column = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if len(indices) > 1 and np.any((np.diff(indices) <= 0) & (np.diff(column) == 0)):
            order = np.lexsort((indices, column))  # documents ascending within each term's column
            indices, data = indices[order], data[order]
        return _Main(len(docs), dict(engine.vocab_dict), data, indices, indptr, avgdl, engine)

    @property
    def delta_size(self) -> int:
        return len(self._state.delta.docs)

    # ------------------------------------------------------------------ changes
    def upsert(self, table: ProductTable, positions: Sequence[int]) -> None:
        """Make the products at ``positions`` of ``table`` searchable with their current text."""
        fresh = {}
        for pos in positions:
            terms = document_terms(table.products[pos], self.title_weight)
            fresh[int(pos)] = (Counter(terms), len(terms))
        with self._lock:
            self._change(fresh.keys(), fresh)
            state = self._state
            main_size = state.main.size if state.main is not None else 0
            due = len(state.delta.docs) > max(self.compact_min, self.compact_share * main_size)
            due = due and self._rebuild is None
        if due and self.background:
            self.start_compaction(table)
        elif due:
            self.build(table)

    def remove(self, positions: Sequence[int]) -> None:
        """Stop returning the products at ``positions``."""
        with self._lock:
            self._change([int(p) for p in positions], {})

    def _change(self, positions: Iterable[int], fresh: dict[int, tuple[Counter[str], int]]) -> None:
        """Mask ``positions`` in the main index, drop them from the delta, add ``fresh``; swap the new state in."""
        state = self._state
        positions = sorted(set(positions))
        main_size = state.main.size if state.main is not None else 0
        masked = np.union1d(state.masked, np.asarray([p for p in positions if p < main_size], dtype=np.int64))
        docs = dict(state.delta.docs)
        dropped = {p: docs.pop(p) for p in positions if p in docs}
        docs.update(fresh)
        self._state = _State(state.main, masked, self._delta(state, docs, dropped, fresh))
        if self._rebuild is not None:
            self._rebuild.changed.update(positions)

    def _delta(
        self, state: _State, docs: dict, dropped: dict[int, tuple[Counter[str], int]], fresh: dict
    ) -> _Delta:
        """The delta with ``dropped`` documents' postings removed and ``fresh`` ones' added (copy on write)."""
        avgdl = state.main.avgdl if state.main is not None else 1.0
        postings = dict(state.delta.postings)
        gone = np.asarray(sorted(dropped), dtype=np.int64)
        for term in {t for counts, _ in dropped.values() for t in counts}:
            where, weights = postings[term]
            keep = ~np.isin(where, gone)
            postings[term] = (where[keep], weights[keep])
        added: dict[str, tuple[list[int], list[float]]] = {}
        for pos, (counts, length) in fresh.items():
            norm = self.k1 * (1.0 - self.b + self.b * length / avgdl)
            for term, tf in counts.items():
                slot = added.setdefault(term, ([], []))
                slot[0].append(pos)
                slot[1].append(tf / (tf + norm))
        for term, (where, weights) in added.items():
            old_where, old_weights = postings.get(term, (EMPTY_INT, EMPTY_FLOAT))
            postings[term] = (
                np.concatenate([old_where, np.asarray(where, dtype=np.int64)]),
                np.concatenate([old_weights, np.asarray(weights, dtype=np.float32)]),
            )
        postings = {t: p for t, p in postings.items() if len(p[0])}
        main_size = state.main.size if state.main is not None else 0
        return _Delta(docs, postings, sum(1 for pos in docs if pos >= main_size))

    # ------------------------------------------------------------------ background compaction
    def start_compaction(self, table: ProductTable) -> threading.Thread:
        """Rebuild the main index from a snapshot of ``table`` on a thread (the running one if any)."""
        with self._lock:
            if self._rebuild is not None and self._rebuild.thread is not None:
                return self._rebuild.thread
            job = _Rebuild(self._generation)
            products, alive = list(table.products), table.alive.copy()
            job.thread = threading.Thread(
                target=self._run_rebuild, args=(job, products, alive), name="lexical-compaction", daemon=True
            )
            self._rebuild = job
        job.thread.start()
        return job.thread

    def wait_for_compaction(self, timeout: float | None = None) -> bool:
        """Wait for a running background rebuild; True when none is running any more."""
        job = self._rebuild
        if job is not None and job.thread is not None:
            job.thread.join(timeout)
        return self._rebuild is None or self._rebuild is not job

    def _run_rebuild(self, job: _Rebuild, products: list[Product], alive: np.ndarray) -> None:
        try:
            main = self._build_main(products, alive)
        except Exception as error:  # the old index and its delta keep serving; the next upsert retries
            log.exception("lexical index: background rebuild failed; the delta keeps serving the changes")
            with self._lock:
                self.compaction_error = error
                if self._rebuild is job:
                    self._rebuild = None
            return
        with self._lock:
            if self._rebuild is not job or self._generation != job.generation:
                return  # a synchronous build replaced the index meanwhile
            self._swap(main, job.changed)
            self._rebuild = None
            self.compactions += 1
            self.compaction_error = None

    def _swap(self, main: _Main | None, changed: set[int]) -> None:
        """Install ``main``; the changes made after its snapshot stay masked in it and live in the new delta."""
        old = self._state.delta.docs
        carried = {pos: old[pos] for pos in sorted(changed) if pos in old}
        size = main.size if main is not None else 0
        masked = np.asarray(sorted(p for p in changed if p < size), dtype=np.int64)
        empty = _State(main, masked, _Delta())
        self._state = _State(main, masked, self._delta(empty, dict(carried), {}, carried) if carried else _Delta())

    # ------------------------------------------------------------------ searching
    def scores(self, terms: Sequence[str], size: int) -> np.ndarray:
        """BM25 score of every position ``< size`` for query ``terms`` (0 where nothing matches)."""
        return self._scores(self._state, [t for t in terms if t], size)

    def _scores(self, state: _State, terms: list[str], size: int) -> np.ndarray:
        main, delta = state.main, state.delta
        main_size = main.size if main is not None else 0
        out = np.zeros(max(size, main_size), dtype=np.float32)
        if not terms:
            return out[:size]
        if main is not None:
            for term in terms:  # a term's documents are distinct: a fancy-index add is exact
                docs, weights = main.column(term)
                out[docs] += weights
            out[state.masked] = 0.0
        n_docs = main_size + delta.new_docs
        for term in terms:
            posting = delta.postings.get(term)
            if posting is None:
                continue
            df = (main.df(term) if main is not None else 0) or len(posting[0])
            idf = np.float32(np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)))
            out[posting[0]] += idf * posting[1]
        return out[:size]

    def search(self, terms: Sequence[str], k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` positions with a positive score among ``allowed`` (bool mask over positions)."""
        scores = self.scores(terms, len(allowed))
        hits = np.flatnonzero(scores)
        hits = hits[allowed[hits] & (scores[hits] > 0)]
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        order = hits[np.lexsort((hits, -scores[hits]))]
        return order, scores[order]

    def matched(self, position: int, terms: Sequence[str]) -> list[str]:
        """The query ``terms`` the product at ``position`` contains."""
        state = self._state
        unique = [t for t in dict.fromkeys(terms) if t]
        own = state.delta.docs.get(position)
        if own is not None:
            return [t for t in unique if t in own[0]]
        main = state.main
        if main is None or position >= main.size or _sorted_contains(state.masked, position):
            return []
        return [t for t in unique if main.contains(position, t)]


def _sorted_contains(values: np.ndarray, value: int) -> bool:
    at = int(np.searchsorted(values, value))
    return at < len(values) and int(values[at]) == value
