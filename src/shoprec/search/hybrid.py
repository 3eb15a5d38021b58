"""Hybrid search: lexical and dense candidates fused by reciprocal rank, hard constraints applied exactly.

One :meth:`SearchEngine.search` call:

1. parses the query (:mod:`shoprec.search.query`), correcting unknown words first when a
   :class:`~shoprec.search.spelling.SpellCorrector` is given (price phrases are cut out before
   correction, so ``under`` never becomes ``udder``);
2. computes the items the constraints allow (price bounds with their strictness, any of the brands,
   under any of the category paths: :func:`shoprec.pipeline.filters.category_mask`, whole levels);
3. takes the top ``candidates`` allowed items of each source: BM25 over the remaining terms (or
   over the brand and category words when no other word is left) and, with a dense index, cosine
   with the encoded query text;
4. fuses them by reciprocal rank (``sum over sources of 1 / (rrf_k + rank)``, rank from 1; ties by
   table position) and returns the top ``k`` with each source's rank and score and the query words
   each result contains.

When the constraints leave nothing they are relaxed one at a time, in :data:`RELAX_ORDER` (category
words first: they are inferred from ordinary words; then brand; price last, as the most deliberate);
``SearchResult.relaxed`` names what was dropped. "Nothing" means no candidate at all, or, when some
product outside the constraints contains a query word, no product inside them does: dense retrieval
always finds a nearest product, so its candidates alone do not stop the relaxation when the words
exist elsewhere ("outdoor lantern" drops the category ``Sports > Outdoor``, which sells no lantern).

>>> engine = SearchEngine.from_dataset(dataset, encoder=load_encoder("use-multilingual"))  # doctest: +SKIP
>>> engine.search("nordhaus kettle under 50", k=5).query.describe()                         # doctest: +SKIP
'brand: Nordhaus, category: Home & Kitchen > Kitchen > Kettles, max price: 50'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.pipeline.filters import category_mask
from shoprec.search.dense import DenseIndex
from shoprec.search.lexical import LexicalIndex
from shoprec.search.prices import Bound
from shoprec.search.products import Product, ProductTable, products_from_dataset
from shoprec.search.query import ParsedQuery, QueryParser
from shoprec.search.spelling import SpellCorrector
from shoprec.search.tokenize import term, words
from shoprec.text.encoders import Encoder

RELAX_ORDER = ("category", "brand", "price")
"""Constraints dropped one at a time, in this order, when they leave nothing."""


@dataclass(frozen=True)
class SourceHit:
    rank: int  # 1 = the source's best
    score: float  # BM25 score (lexical) or cosine (dense)


@dataclass(frozen=True)
class Hit:
    """One result: the product, its fused score, each source's rank and score, the query words it holds."""

    item_id: str
    position: int
    score: float
    product: Product
    sources: dict[str, SourceHit]
    matched: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    query: ParsedQuery
    hits: list[Hit]
    relaxed: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())


class SearchEngine:
    """Query parsing, lexical and dense retrieval, constraints and fusion over one product table."""

    def __init__(
        self,
        table: ProductTable,
        lexical: LexicalIndex | None = None,
        dense: DenseIndex | None = None,
        speller: SpellCorrector | None = None,
        candidates: int = 200,
        rrf_k: int = 60,
    ) -> None:
        if candidates < 1 or rrf_k < 0:
            raise ShoprecError(f"search: candidates must be >= 1 and rrf_k >= 0, got {candidates} and {rrf_k}")
        self.table = table
        self.lexical = lexical or LexicalIndex().build(table)
        self.dense = dense
        self.speller = speller if speller is not None else SpellCorrector.from_products(table.products)
        self.parser = QueryParser.from_products(table)
        self.candidates, self.rrf_k = int(candidates), int(rrf_k)

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, encoder: Encoder | None = None, cache_dir: str | Path | None = None
    ) -> SearchEngine:
        """An engine over a dataset's catalogue; dense retrieval only when an ``encoder`` is given."""
        table = ProductTable(products_from_dataset(dataset))
        dense = DenseIndex.from_dataset(dataset, table, encoder, cache_dir) if encoder is not None else None
        return cls(table, dense=dense)

    # ------------------------------------------------------------------ catalogue changes
    def upsert(self, products: Iterable[Product]) -> None:
        """Add or replace products; searchable by the next query (brands and categories included)."""
        products = list(products)
        positions = self.table.upsert(products)
        self.lexical.upsert(self.table, positions)
        if self.dense is not None:
            self.dense.upsert(self.table, positions)
        self.speller.add(products)
        self.parser = QueryParser.from_products(self.table)

    def remove(self, item_ids: Iterable[str]) -> None:
        positions = self.table.remove(item_ids)
        self.lexical.remove(positions)
        if self.dense is not None:
            self.dense.remove(positions)

    # ------------------------------------------------------------------ searching
    def search(self, query: str, k: int = 10) -> SearchResult:
        """The top ``k`` products for ``query`` (see the module docstring)."""
        if not isinstance(k, int) or k < 1:
            raise ShoprecError(f"search: k must be a positive whole number, got {k!r}")
        parsed = self.parser.parse(query)
        corrections: list[tuple[str, str]] = []
        if self.speller is not None:
            fixed, corrections = self.speller.correct_text(parsed.text)
            if corrections:
                parsed = replace(self.parser.parse(fixed), text=parsed.text, notes=parsed.notes)
        notes = [f"searched for '{new}' instead of '{old}'" for old, new in corrections]
        if not parsed.terms and not parsed.constraint_terms:
            notes.append("the query has no words to rank products by: nothing is returned")
            return SearchResult(parsed, [], (), tuple(corrections), tuple(notes))
        relaxed: list[str] = []
        current = parsed
        terms = list(parsed.terms or parsed.constraint_terms)
        vector = None
        if self.dense is not None and parsed.semantic_text.strip():
            vector = self.dense.encode_query(parsed.semantic_text)
        words_found = parsed.has_constraints and self._words_anywhere(terms)
        while True:
            ranked = self._candidates(current, terms, vector)
            lexical_found = len(ranked["lexical"][0]) > 0 if "lexical" in ranked else False
            found = any(len(positions) for positions, _ in ranked.values())
            if (found and (lexical_found or not words_found)) or not _has(current, RELAX_ORDER):
                break
            name = next(c for c in RELAX_ORDER if _has(current, (c,)))
            current = _drop(current, name)
            relaxed.append(name)
        if relaxed:
            notes.append("nothing matched every constraint; dropped: " + ", ".join(relaxed))
        return SearchResult(parsed, self._fuse(ranked, parsed, k), tuple(relaxed), tuple(corrections), tuple(notes))

    def _words_anywhere(self, terms: list[str]) -> bool:
        """Whether any live product, constraints aside, contains one of ``terms``."""
        return bool(terms) and len(self.lexical.search(terms, 1, self.table.alive)[0]) > 0

    def allowed(self, query: ParsedQuery) -> np.ndarray:
        """Bool mask over table positions: live products that satisfy every constraint of ``query``."""
        mask = self.table.alive.copy()
        price = self.table.price
        if query.min_price is not None:
            mask &= _passes(price, query.min_price, low=True)
        if query.max_price is not None:
            mask &= _passes(price, query.max_price, low=False)
        if query.brands:
            mask &= np.isin(self.table.brand_key, [b.strip().casefold() for b in query.brands])
        if query.categories:
            mask &= category_mask(self.table.category, list(query.categories))
        return mask

    def _candidates(
        self, query: ParsedQuery, terms: list[str], vector: np.ndarray | None
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each source's top ``candidates`` positions and scores among the products ``query`` allows."""
        allowed = self.allowed(query)
        ranked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if not allowed.any():
            return ranked
        if terms:
            ranked["lexical"] = self.lexical.search(terms, self.candidates, allowed)
        if vector is not None and self.dense is not None:
            ranked["dense"] = self.dense.search(vector, self.candidates, allowed)
        return ranked

    def _fuse(self, ranked: dict[str, tuple[np.ndarray, np.ndarray]], query: ParsedQuery, k: int) -> list[Hit]:
        fused: dict[int, float] = {}
        sources: dict[int, dict[str, SourceHit]] = {}
        for name, (positions, scores) in ranked.items():
            for rank, (pos, score) in enumerate(zip(positions.tolist(), scores.tolist(), strict=True), start=1):
                fused[pos] = fused.get(pos, 0.0) + 1.0 / (self.rrf_k + rank)
                sources.setdefault(pos, {})[name] = SourceHit(rank, float(score))
        best = sorted(fused, key=lambda p: (-fused[p], p))[:k]
        surface = _surface_words(query)
        hits = []
        for pos in best:
            matched = tuple(surface[t] for t in self.lexical.matched(pos, list(surface)))
            product = self.table.products[pos]
            hits.append(Hit(product.item_id, pos, fused[pos], product, sources[pos], matched))
        return hits


def _passes(price: np.ndarray, bound: Bound, low: bool) -> np.ndarray:
    """Prices on the allowed side of ``bound``; an unknown price never passes a price constraint."""
    with np.errstate(invalid="ignore"):
        if low:
            return price >= bound.value if bound.inclusive else price > bound.value
        return price <= bound.value if bound.inclusive else price < bound.value


def _has(query: ParsedQuery, names: Iterable[str]) -> bool:
    present = {
        "category": bool(query.categories),
        "brand": bool(query.brands),
        "price": query.min_price is not None or query.max_price is not None,
    }
    return any(present[n] for n in names)


def _drop(query: ParsedQuery, name: str) -> ParsedQuery:
    if name == "category":
        return replace(query, categories=())
    if name == "brand":
        return replace(query, brands=())
    return replace(query, min_price=None, max_price=None)


def _surface_words(query: ParsedQuery) -> dict[str, str]:
    """Index term -> the word the shopper typed, for the query's retrieval and constraint words."""
    out: dict[str, str] = {}
    for word in words(query.semantic_text):
        out.setdefault(term(word), word)
    return out
