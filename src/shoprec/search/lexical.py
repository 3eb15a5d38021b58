"""Lexical retrieval: BM25 (Lucene variant) over title, brand, category path, tags and description.

The main index is ``bm25s`` (a sparse matrix of precomputed BM25 weights, scored with numpy), built
once over the whole :class:`~shoprec.search.products.ProductTable`. bm25s cannot change an index in
place, so changes after the build go to a **delta index** kept here:

- an upserted product's row in the main index is masked out and its new terms are held in the delta;
- a removed product is masked out of the main index and dropped from the delta;
- at query time the delta's documents are scored with the same formula and the *main index's*
  collection statistics (document count plus the delta's new products, average length, document
  frequencies; a term only the delta has counts its delta documents), and the two score arrays are
  merged by position;
- once the delta holds more than ``max(compact_min, compact_share * main size)`` documents the main
  index is rebuilt from the table and the delta emptied (:meth:`LexicalIndex.compact`).

An upsert is therefore searchable at the next query. Until a compaction the main index's statistics
are those of the build, so scores drift slightly as the catalogue changes; a product re-upserted with
unchanged text scores exactly as before (tested).

Document terms: the title counted ``title_weight`` times, then brand, category path, tags and
description, through :func:`~shoprec.search.tokenize.tokenize` (stemmed English, jieba-segmented Chinese).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from shoprec.search.products import Product, ProductTable
from shoprec.search.tokenize import tokenize


def document_terms(product: Product, title_weight: int = 2) -> list[str]:
    """The index terms of one product (title repeated ``title_weight`` times)."""
    title = tokenize(product.title)
    rest = " ".join([product.brand, product.category.replace(">", " "), product.tags, product.description])
    return title * title_weight + tokenize(rest)


class LexicalIndex:
    """BM25 over a product table, with a delta index for changes after the build (module docstring)."""

    def __init__(
        self,
        k1: float = 1.2,
        b: float = 0.75,
        title_weight: int = 2,
        compact_min: int = 1000,
        compact_share: float = 0.05,
    ) -> None:
        self.k1, self.b, self.title_weight = float(k1), float(b), int(title_weight)
        self.compact_min, self.compact_share = int(compact_min), float(compact_share)
        self._main: Any = None
        self._main_size = 0
        self._live_main = np.zeros(0, dtype=np.float32)
        self._df: Counter[str] = Counter()
        self._avgdl = 1.0
        self._terms: list[frozenset[str]] = []
        self._delta: dict[int, tuple[Counter[str], int]] = {}
        self._delta_df: Counter[str] = Counter()

    def build(self, table: ProductTable) -> LexicalIndex:
        """(Re)build the main index over every live product of ``table``; empties the delta."""
        import bm25s

        pairs = zip(table.products, table.alive, strict=True)
        docs = [document_terms(p, self.title_weight) if alive else [] for p, alive in pairs]
        self._main = None
        if docs:  # bm25s cannot index an empty corpus: an empty table has only the delta
            self._main = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
            self._main.index([d or [""] for d in docs], show_progress=False)  # bm25s needs a token per doc
        self._main_size = len(docs)
        self._live_main = table.alive.astype(np.float32)
        self._df = Counter(t for d in docs for t in set(d))
        lengths = [len(d) for d, alive in zip(docs, table.alive, strict=True) if alive]
        self._avgdl = float(np.mean(lengths)) if lengths and np.mean(lengths) > 0 else 1.0
        self._terms = [frozenset(d) for d in docs]
        self._delta = {}
        self._delta_df = Counter()
        return self

    compact = build

    @property
    def delta_size(self) -> int:
        return len(self._delta)

    def upsert(self, table: ProductTable, positions: Sequence[int]) -> None:
        """Make the products at ``positions`` of ``table`` searchable with their current text."""
        for pos in positions:
            terms = document_terms(table.products[pos], self.title_weight)
            if pos < self._main_size:
                self._live_main[pos] = 0.0
            self._drop_delta(pos)
            self._delta[pos] = (Counter(terms), len(terms))
            self._delta_df.update(set(terms))
            self._set_terms(pos, frozenset(terms))
        if len(self._delta) > max(self.compact_min, self.compact_share * self._main_size):
            self.build(table)

    def remove(self, positions: Sequence[int]) -> None:
        """Stop returning the products at ``positions``."""
        for pos in positions:
            if pos < self._main_size:
                self._live_main[pos] = 0.0
            self._drop_delta(pos)

    def _drop_delta(self, pos: int) -> None:
        old = self._delta.pop(pos, None)
        if old is not None:
            self._delta_df.subtract(set(old[0]))

    def scores(self, terms: Sequence[str], size: int) -> np.ndarray:
        """BM25 score of every position ``< size`` for query ``terms`` (0 where nothing matches)."""
        out = np.zeros(size, dtype=np.float32)
        terms = [t for t in terms if t]
        if not terms:
            return out
        if self._main is not None:
            main = np.asarray(self._main.get_scores(list(terms)), dtype=np.float32)[: self._main_size]
            out[: self._main_size] = main * self._live_main
        n_docs = self._main_size + sum(1 for pos in self._delta if pos >= self._main_size)  # + new products
        for pos, (counts, length) in self._delta.items():
            if pos < size:
                out[pos] = self._delta_score(terms, counts, length, n_docs)
        return out

    def _delta_score(self, terms: Sequence[str], counts: Counter[str], length: int, n_docs: int) -> float:
        norm = self.k1 * (1.0 - self.b + self.b * length / self._avgdl)
        total = 0.0
        for term in terms:
            tf = counts.get(term, 0)
            if tf == 0:
                continue
            df = self._df.get(term, 0) or self._delta_df.get(term, 0)
            idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            total += idf * tf / (tf + norm)
        return float(np.float32(total))

    def search(self, terms: Sequence[str], k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` positions with a positive score among ``allowed`` (bool mask over positions)."""
        scores = self.scores(terms, len(allowed))
        scores[~allowed] = 0.0
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        order = hits[np.lexsort((hits, -scores[hits]))]
        return order, scores[order]

    def matched(self, position: int, terms: Sequence[str]) -> list[str]:
        """The query ``terms`` the product at ``position`` contains."""
        own = self._terms[position] if position < len(self._terms) else frozenset()
        return [t for t in dict.fromkeys(terms) if t in own]

    def _set_terms(self, pos: int, terms: frozenset[str]) -> None:
        while len(self._terms) <= pos:
            self._terms.append(frozenset())
        self._terms[pos] = terms
