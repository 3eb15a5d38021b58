"""Hybrid search: lexical and dense candidates fused by reciprocal rank, hard constraints applied exactly.

One :meth:`SearchEngine.search` call:

1. parses the query (:mod:`shoprec.search.query`), correcting unknown words first when a
   :class:`~shoprec.search.spelling.SpellCorrector` is given (price phrases are cut out before
   correction, so ``under`` never becomes ``udder``);
2. computes the items the constraints allow (price bounds with their strictness, any of the brands,
   under any of the category paths: :func:`shoprec.pipeline.filters.category_mask`, whole levels;
   any of the colours and sizes, case-insensitive; an unknown price, colour or size never passes),
   ANDed with the caller's ``allowed`` mask;
3. takes the top ``candidates`` allowed items of each source: BM25 over the remaining terms and,
   with a dense index, cosine with the encoded query text; with a shopper's profile, a third source
   "personal": the products of a wider pool (the top ``personal_pool`` of lexical and dense) ordered
   by the profile's score. A query holding only constraints ("under 50", "nordhaus", "red mug")
   **browses** instead: every allowed product, the most popular first (distinct shoppers per item
   in the dataset the engine was built from; 0 for products upserted later; ties by position);
4. fuses them by reciprocal rank (``sum over sources of 1 / (rrf_k + rank)``, rank from 1; ties by
   table position); with a profile of weight ``w > 0`` the score is ``(1 - w) x rrf x (rrf_k + 1) /
   n_sources + w x personal score``; an anonymous shopper (or a profile of weight 0) gets exactly
   the non-personal order;
5. applies the shop's rule for this query, if any (:mod:`shoprec.search.merch`: blocks, boosts and
   buries, then pins at their slots, through the feeds' :class:`~shoprec.pipeline.rules.Rules`);
6. runs the :class:`Stage` s in order, each reordering its ``top`` hits (pins keep their slots);
7. returns hits ``offset + 1 .. offset + k`` of that ordering, each with its sources' ranks and
   scores, the query words it contains, ``features`` and score ``shares``; with ``total`` (the size
   of the ordering: the fused candidate set, every allowed product when browsing) and ``facets``
   over the same set (:mod:`shoprec.search.facets`).

When the constraints leave nothing they are relaxed one at a time, in :data:`RELAX_ORDER` (category
words first: they are inferred from ordinary words; then colour, size, brand; price last, as the most
deliberate; the caller's ``allowed`` mask is never relaxed);
``SearchResult.relaxed`` names what was dropped. "Nothing" means no candidate at all, or, when some
product outside the constraints contains a query word, no product inside them does: dense retrieval
always finds a nearest product, so its candidates alone do not stop the relaxation when the words
exist elsewhere ("outdoor lantern" drops the category ``Sports > Outdoor``, which sells no lantern).

>>> engine = SearchEngine.from_dataset(dataset, encoder=load_encoder("use-multilingual"))  # doctest: +SKIP
>>> engine.search("nordhaus kettle under 50", k=5).query.describe()                         # doctest: +SKIP
'brand: Nordhaus, category: Home & Kitchen > Kitchen > Kettles, max price: 50'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.pipeline.filters import category_mask
from shoprec.search.dense import DenseIndex
from shoprec.search.lexical import LexicalIndex
from shoprec.search.merch import Merchandising
from shoprec.search.prices import Bound
from shoprec.search.products import Product, ProductTable, products_from_dataset
from shoprec.search.query import ParsedQuery, QueryParser
from shoprec.search.spelling import SpellCorrector
from shoprec.search.tokenize import fold, term, tokenize, words
from shoprec.text.encoders import Encoder

if TYPE_CHECKING:
    from shoprec.search.personal import SearchProfile

RELAX_ORDER = ("category", "colour", "size", "brand", "price")
"""Constraints dropped one at a time, in this order, when they leave nothing: the words the parser
infers a constraint from most loosely first (a category from a noun), the most deliberate last."""


@dataclass(frozen=True)
class SourceHit:
    rank: int  # 1 = the source's best
    score: float  # BM25 score (lexical), cosine (dense) or the profile's score (personal)


@dataclass
class Hit:
    """One result: the product, its score, each source's rank and score, the query words it holds.

    ``features`` holds numeric per-hit features (``lexical_score``, ``lexical_rank``, ``dense_score``,
    ``dense_rank``: NaN when that source did not propose the product; ``rrf``; ``personal_*`` from the
    shopper's profile; ``stage_<name>`` from each re-scoring stage). ``shares`` splits ``score`` into
    its components (``lexical``, ``dense``, ``personal``, ...): non-negative, summing to 1.
    """

    item_id: str
    position: int
    score: float
    product: Product
    sources: dict[str, SourceHit]
    matched: tuple[str, ...]
    features: dict[str, float] = field(default_factory=dict)
    shares: dict[str, float] = field(default_factory=dict)


def shoppers_per_item(dataset: Dataset) -> np.ndarray:
    """Popularity for browsing: how many distinct shoppers interacted with each item (any event)."""
    pairs = dataset.interactions[["user", "item"]].drop_duplicates()
    return np.bincount(pairs["item"].to_numpy(dtype=np.int64), minlength=dataset.n_items).astype(np.float64)


class Stage(Protocol):
    """A re-scoring stage run after fusion (a learned ranker, a cross-encoder).

    It re-scores the current best ``top`` hits; they are reordered by its score (higher first, ties
    keeping the previous order) and the rest keep their order below them.
    """

    name: str
    top: int

    def score(self, query: ParsedQuery, hits: list[Hit]) -> np.ndarray: ...


@dataclass(frozen=True)
class SearchResult:
    """Hits ``offset + 1 .. offset + k`` of one ordering, with the facets and size of the matched set.

    ``total``: how many products the ordering holds, i.e. the fused candidate set (the union of each
    source's top candidates among the allowed products; every allowed product when browsing); paging
    past it returns no hits. ``facets`` count the same set.
    """

    query: ParsedQuery
    hits: list[Hit]
    relaxed: tuple[str, ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = field(default=())
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    total: int = 0
    offset: int = 0

    def to_dict(self, lang: str = "en") -> dict[str, Any]:
        """A JSON-ready form (no NaN: missing numbers are None); explanations in ``lang`` (en or zh)."""
        from shoprec.search.explain import result_dict

        return result_dict(self, lang)


class SearchEngine:
    """Query parsing, lexical, dense and personal retrieval, constraints, fusion and stages over one table."""

    def __init__(
        self,
        table: ProductTable,
        lexical: LexicalIndex | None = None,
        dense: DenseIndex | None = None,
        speller: SpellCorrector | None = None,
        candidates: int = 200,
        rrf_k: int = 60,
        stages: Sequence[Stage] = (),
        personal_pool: int = 1000,
        popularity: np.ndarray | None = None,
        merch: Merchandising | None = None,
    ) -> None:
        if candidates < 1 or rrf_k < 0 or personal_pool < candidates:
            raise ShoprecError(
                f"search: candidates must be >= 1, rrf_k >= 0 and personal_pool >= candidates, got "
                f"{candidates}, {rrf_k} and {personal_pool}"
            )
        self.table = table
        self.lexical = lexical or LexicalIndex().build(table)
        self.dense = dense
        self.speller = speller if speller is not None else SpellCorrector.from_products(table.products)
        self.parser = QueryParser.from_products(table)
        self.candidates, self.rrf_k, self.personal_pool = int(candidates), int(rrf_k), int(personal_pool)
        self.stages = list(stages)
        self.popularity = np.zeros(len(table))
        if popularity is not None:
            popularity = np.asarray(popularity, dtype=np.float64)
            if popularity.shape != (len(table),) or not np.isfinite(popularity).all() or (popularity < 0).any():
                raise ShoprecError(
                    f"search: popularity must be {len(table)} finite counts >= 0 (one per table position), "
                    f"got shape {popularity.shape}"
                )
            self.popularity = popularity
        self.merch = merch
        self._path_cache: tuple[int, np.ndarray, np.ndarray, dict[tuple[str, ...], np.ndarray]] | None = None
        self.merch_warnings = merch.validate(table) if merch is not None else []
        for stage in self.stages:
            if not str(getattr(stage, "name", "")) or int(getattr(stage, "top", 0)) < 1:
                raise ShoprecError(f"search: a stage needs a name and top >= 1, got {stage!r}")

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        encoder: Encoder | None = None,
        cache_dir: str | Path | None = None,
        stages: Sequence[Stage] = (),
        merch: Merchandising | None = None,
    ) -> SearchEngine:
        """An engine over a dataset's catalogue; dense retrieval only when an ``encoder`` is given."""
        table = ProductTable(products_from_dataset(dataset))
        dense = DenseIndex.from_dataset(dataset, table, encoder, cache_dir) if encoder is not None else None
        return cls(table, dense=dense, stages=stages, popularity=shoppers_per_item(dataset), merch=merch)

    # ------------------------------------------------------------------ catalogue changes
    def upsert(self, products: Iterable[Product]) -> None:
        """Add or replace products; searchable by the next query (brands and categories included)."""
        products = list(products)
        positions = self.table.upsert(products)
        self.popularity = np.concatenate([self.popularity, np.zeros(len(self.table) - len(self.popularity))])
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
    def search(
        self,
        query: str,
        k: int = 10,
        offset: int = 0,
        profile: SearchProfile | None = None,
        allowed: np.ndarray | None = None,
    ) -> SearchResult:
        """Hits ``offset + 1 .. offset + k`` for ``query`` (see the module docstring).

        ``profile``: a shopper's :class:`~shoprec.search.personal.SearchProfile` (None: anonymous, the
        non-personal order). ``allowed``: a bool mask over table positions ANDed with the query's own
        constraints (never relaxed).
        """
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
            raise ShoprecError(f"search: k must be a positive whole number, got {k!r}")
        if not isinstance(offset, int | np.integer) or isinstance(offset, bool) or offset < 0:
            raise ShoprecError(f"search: offset must be a whole number >= 0, got {offset!r}")
        outer = self._outer_mask(allowed)
        parsed, corrections = self._parse(query)
        notes = [f"searched for '{new}' instead of '{old}'" for old, new in corrections]
        if not parsed.terms and not parsed.has_constraints:
            notes.append("the query has no words to rank products by: nothing is returned")
            return SearchResult(parsed, [], (), tuple(corrections), tuple(notes), offset=int(offset))
        parsed = self._expand(parsed)
        notes += [f"also searched for '{added}' (a synonym of '{typed}')" for typed, added in parsed.synonyms]
        if parsed.terms:
            vector = None
            if self.dense is not None and parsed.semantic_text.strip():
                vector = self.dense.encode_query(parsed.semantic_text)
            depth = self.personal_pool if profile is not None else self.candidates
            terms = list(dict.fromkeys(parsed.terms + parsed.synonym_terms))
            ranked, relaxed = self._retrieve_relaxing(parsed, terms, vector, outer, depth)
            fused = self._fuse(ranked, profile)
        else:  # only constraints: browse what they allow, most popular first
            _, relaxed = self._allowed_relaxing(parsed, outer)
            fused = self._browse(self._mask(parsed, relaxed, outer), profile)
        if relaxed:
            notes.append("nothing matched every constraint; dropped: " + ", ".join(relaxed))
        key = None
        if self.merch is not None:
            key = self.merch.rule_for(query, _corrected(parsed.text, corrections))
        if key is not None:
            notes += self._merchandise(fused, key, self._mask(parsed, relaxed, outer))
        ordered = self._order(fused, parsed, offset + k)
        from shoprec.search.facets import facets

        shown = fused.positions if fused.order is None else fused.positions[fused.order]
        return SearchResult(
            parsed,
            ordered[offset : offset + k],
            tuple(relaxed),
            tuple(corrections),
            tuple(notes),
            facets=facets(self.table, shown),
            total=len(shown),
            offset=int(offset),
        )

    def _mask(self, parsed: ParsedQuery, relaxed: Sequence[str], outer: np.ndarray) -> np.ndarray:
        """What the query allows once ``relaxed`` are dropped, ANDed with the caller's mask."""
        for name in relaxed:
            parsed = parsed.without(name)
        return self.allowed(parsed) & outer

    def _expand(self, parsed: ParsedQuery) -> ParsedQuery:
        """The shop's synonyms of the query's words (constraint words included: "mobile phone" may name a
        category), as extra lexical terms."""
        found = self.merch.synonyms.expand(tokenize(parsed.semantic_text)) if self.merch is not None else []
        if not found:
            return parsed
        added = tuple(t for _, _, terms in found for t in terms if t not in parsed.terms)
        pairs = tuple(dict.fromkeys((typed, phrase) for typed, phrase, _ in found))
        return replace(parsed, synonyms=pairs, synonym_terms=tuple(dict.fromkeys(added)))

    def _merchandise(self, fused: Fused, key: str, mask: np.ndarray) -> list[str]:
        """The shop's rule for this query: blocks, boosts, buries and pins set ``fused.order``."""
        arranged = self.merch.arrange(key, self.table, fused.positions, fused.score, mask)
        index = {p: i for i, p in enumerate(fused.positions.tolist())}
        new = [p for p in arranged.positions.tolist() if p not in index]
        if new:  # pins no source proposed: rows with no features and no score parts
            index.update({p: len(fused.positions) + j for j, p in enumerate(new)})
            fused.positions = np.concatenate([fused.positions, np.asarray(new, dtype=np.int64)])
            fused.features = {n: np.concatenate([v, np.full(len(new), np.nan)]) for n, v in fused.features.items()}
            fused.parts = {n: np.concatenate([v, np.zeros(len(new))]) for n, v in fused.parts.items()}
            fused.score = np.concatenate([fused.score, np.full(len(new), np.nan)])
        fused.order = np.asarray([index[p] for p in arranged.positions.tolist()], dtype=np.int64)
        lift = np.zeros(len(fused.positions))  # only boosted and buried items move (no float32 round-off)
        moved = np.isin(arranged.positions, arranged.moved)
        lift[fused.order[moved]] = np.nan_to_num(arranged.score[moved] - fused.score[fused.order[moved]], nan=0.0)
        fused.features["merch_lift"] = lift
        fused.features["merch_slot"] = np.full(len(fused.positions), np.nan)
        for pos, slot in arranged.pinned.items():
            if pos in index:
                fused.features["merch_slot"][index[pos]] = slot
        fused.parts["merch"] = np.clip(lift, 0.0, None)
        fused.score = np.where(np.isnan(fused.score), 0.0, fused.score) + lift
        return arranged.notes

    def _outer_mask(self, allowed: np.ndarray | None) -> np.ndarray:
        if allowed is None:
            return self.table.alive
        mask = np.asarray(allowed)
        if mask.dtype != bool or mask.shape != (len(self.table),):
            raise ShoprecError(
                f"search: allowed must be a bool mask over the {len(self.table)} table positions, "
                f"got dtype {mask.dtype} and shape {mask.shape}"
            )
        return mask & self.table.alive

    def _parse(self, query: str) -> tuple[ParsedQuery, list[tuple[str, str]]]:
        parsed = self.parser.parse(query)
        corrections: list[tuple[str, str]] = []
        if self.speller is not None:
            fixed, corrections = self.speller.correct_text(parsed.text)
            if corrections:
                parsed = replace(self.parser.parse(fixed), text=parsed.text, notes=parsed.notes)
        return parsed, corrections

    def _retrieve_relaxing(
        self, parsed: ParsedQuery, terms: list[str], vector: np.ndarray | None, outer: np.ndarray, depth: int
    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
        """Each source's candidates, dropping constraints in :data:`RELAX_ORDER` while they leave nothing."""
        relaxed: list[str] = []
        current = parsed
        words_found = parsed.has_constraints and self._words_anywhere(terms, outer)
        while True:
            ranked = self._candidates(current, terms, vector, outer, depth)
            lexical_found = len(ranked["lexical"][0]) > 0 if "lexical" in ranked else False
            found = any(len(positions) for positions, _ in ranked.values())
            if (found and (lexical_found or not words_found)) or not any(current.has(c) for c in RELAX_ORDER):
                return ranked, relaxed
            name = next(c for c in RELAX_ORDER if current.has(c))
            current = current.without(name)
            relaxed.append(name)

    def _allowed_relaxing(self, parsed: ParsedQuery, outer: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The products a constraints-only query allows, dropping constraints while none is left."""
        relaxed: list[str] = []
        current = parsed
        while True:
            mask = self.allowed(current) & outer
            if mask.any() or not any(current.has(c) for c in RELAX_ORDER):
                return mask, relaxed
            name = next(c for c in RELAX_ORDER if current.has(c))
            current = current.without(name)
            relaxed.append(name)

    def _words_anywhere(self, terms: list[str], outer: np.ndarray) -> bool:
        """Whether any allowed product, the query's constraints aside, contains one of ``terms``."""
        return bool(terms) and len(self.lexical.search(terms, 1, outer)[0]) > 0

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
            mask &= self._category_mask(query.categories)
        if query.colours:
            mask &= np.isin(self.table.colour_key, [c.strip().casefold() for c in query.colours])
        if query.sizes:
            mask &= np.isin(self.table.size_key, [s.strip().casefold() for s in query.sizes])
        return mask

    def _category_mask(self, categories: tuple[str, ...]) -> np.ndarray:
        """Positions under any of ``categories`` (whole levels). The filter runs over the table's
        distinct paths (a catalogue has few), cached per category tuple until the table changes."""
        if self._path_cache is None or self._path_cache[0] != self.table.version:
            paths, inverse = np.unique(self.table.category.astype(str), return_inverse=True)
            self._path_cache = (self.table.version, paths.astype(object), inverse.ravel(), {})
        _, paths, inverse, masks = self._path_cache
        if categories not in masks:
            if len(masks) >= 1024:
                masks.clear()
            masks[categories] = category_mask(paths, list(categories))
        return masks[categories][inverse]

    def _candidates(
        self, query: ParsedQuery, terms: list[str], vector: np.ndarray | None, outer: np.ndarray, depth: int
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Each source's top ``depth`` positions and scores among the products ``query`` and ``outer`` allow."""
        allowed = self.allowed(query) & outer
        ranked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if not allowed.any():
            return ranked
        if terms:
            ranked["lexical"] = self.lexical.search(terms, depth, allowed)
        if vector is not None and self.dense is not None:
            ranked["dense"] = self.dense.search(vector, depth, allowed)
        return ranked

    def _fuse(self, ranked: dict[str, tuple[np.ndarray, np.ndarray]], profile: SearchProfile | None) -> Fused:
        """Reciprocal-rank fusion of each source's top ``candidates``; with a profile, personal blending."""
        pool = np.unique(np.concatenate([p for p, _ in ranked.values()] or [np.zeros(0, np.int64)]))
        sources = {name: (p[: self.candidates], s[: self.candidates]) for name, (p, s) in ranked.items()}
        personal, pscore = self._personal(profile, pool)
        if pscore is not None and _weight(profile) == 0:  # an empty profile: features shown, order untouched
            pscore = None
        if pscore is not None:
            order = np.lexsort((pool, -pscore))[: self.candidates]
            sources["personal"] = (pool[order], pscore[order])
        positions = np.unique(np.concatenate([p for p, _ in sources.values()] or [np.zeros(0, np.int64)]))
        fused = Fused(positions, {}, {})
        for name in ("lexical", "dense"):  # always present, NaN where the source is off or did not propose
            fused.features[f"{name}_score"] = np.full(len(positions), np.nan)
            fused.features[f"{name}_rank"] = np.full(len(positions), np.nan)
        rrf = np.zeros(len(positions))
        for name, (pos, scores) in sources.items():
            at = np.searchsorted(positions, pos)
            rank = np.full(len(positions), np.nan)
            score = np.full(len(positions), np.nan)
            rank[at] = np.arange(1, len(pos) + 1)
            score[at] = scores
            fused.features[f"{name}_rank"], fused.features[f"{name}_score"] = rank, score
            part = np.zeros(len(positions))
            part[at] = 1.0 / (self.rrf_k + np.arange(1, len(pos) + 1))
            fused.parts[name] = part
            rrf += part
        fused.features["rrf"] = rrf
        at = np.searchsorted(pool, positions)  # every fused position is in the pool
        for name, values in personal.items():
            fused.features[name] = values[at]
        if pscore is None:
            fused.score = rrf
            return fused
        weight = _weight(profile)
        scale = (1.0 - weight) * (self.rrf_k + 1) / max(len(sources), 1)  # fused part in [0, 1 - weight]
        fused.parts = {name: part * scale for name, part in fused.parts.items()}
        fused.parts["personal"] = fused.parts["personal"] + weight * pscore[at]
        fused.score = sum(fused.parts.values())
        return fused

    def _browse(self, mask: np.ndarray, profile: SearchProfile | None) -> Fused:
        """Every allowed product, scored by popularity ``(count + 1) / (max count + 1)``; with a profile,
        the ``personal_pool`` most popular are blended with the personal score (the rest, less popular,
        follow them)."""
        positions = np.flatnonzero(mask)
        count = self.popularity[positions]
        base = (count + 1.0) / (float(count.max(initial=0.0)) + 1.0)
        nan = np.full(len(positions), np.nan)
        features = {"lexical_score": nan, "lexical_rank": nan, "dense_score": nan, "dense_rank": nan}
        fused = Fused(positions, {**features, "popularity": count}, {"popularity": base})
        pool_at = _top(base, positions, self.personal_pool) if profile is not None else np.zeros(0, np.int64)
        pool_at = np.sort(pool_at)
        personal, pscore = self._personal(profile, positions[pool_at])
        for name, values in personal.items():
            fused.features[name] = np.full(len(positions), np.nan)
            fused.features[name][pool_at] = values
        if pscore is None or _weight(profile) == 0:
            fused.score = base
            return fused
        weight = _weight(profile)
        fused.parts["popularity"] = (1.0 - weight) * base
        fused.parts["personal"] = np.zeros(len(positions))
        fused.parts["personal"][pool_at] = weight * pscore
        fused.score = fused.parts["popularity"] + fused.parts["personal"]
        return fused

    def _personal(
        self, profile: SearchProfile | None, pool: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """The profile's features and score (clipped to [0, 1]) for the positions ``pool``."""
        if profile is None or not len(pool):
            return {}, None
        vectors = self.dense.vectors if self.dense is not None else None
        features = {
            name: np.asarray(v, dtype=np.float64) for name, v in profile.features(self.table, pool, vectors).items()
        }
        score = np.clip(np.asarray(profile.score(features), dtype=np.float64), 0.0, 1.0)
        if score.shape != (len(pool),):
            raise ShoprecError(f"search profile gave {score.shape} scores for {len(pool)} products: one per product")
        return features, score

    def _order(self, fused: Fused, query: ParsedQuery, need: int) -> list[Hit]:
        """The best ``need`` hits (at least every stage's ``top``), stages applied in order; pinned
        hits keep their slots (a stage reorders the other hits of its top among their own places)."""
        size = max([need] + [int(s.top) for s in self.stages])
        surface = _surface_words(query)
        best = _top(fused.score, fused.positions, size) if fused.order is None else fused.order[:size]
        hits = [self._hit(fused, i, surface) for i in best.tolist()]
        for stage in self.stages:
            places = [n for n, h in enumerate(hits[: int(stage.top)]) if np.isnan(h.features.get("merch_slot", np.nan))]
            top = [hits[n] for n in places]
            if not top:
                continue
            scores = np.asarray(stage.score(query, top), dtype=np.float64)
            if scores.shape != (len(top),):
                raise ShoprecError(
                    f"search stage '{stage.name}' returned {scores.shape} scores for {len(top)} hits: one per hit"
                )
            for hit, value in zip(top, scores.tolist(), strict=True):
                hit.features[f"stage_{stage.name}"] = value
            ranked = np.lexsort((np.arange(len(top)), -np.nan_to_num(scores, nan=-np.inf)))
            for place, i in zip(places, ranked.tolist(), strict=True):
                hits[place] = top[i]
        return hits

    def _hit(self, fused: Fused, i: int, surface: dict[str, str]) -> Hit:
        pos = int(fused.positions[i])
        features = {name: float(values[i]) for name, values in fused.features.items()}
        sources = {
            name[: -len("_rank")]: SourceHit(int(features[name]), features[name[: -len("_rank")] + "_score"])
            for name in fused.features
            if name.endswith("_rank") and not np.isnan(features[name])
        }
        score = float(fused.score[i])
        total = sum(float(part[i]) for part in fused.parts.values())
        shares = (
            {name: float(part[i]) / total for name, part in fused.parts.items() if part[i] > 0} if total > 0 else {}
        )
        if not shares and not np.isnan(features.get("merch_slot", np.nan)):
            shares = {"merch": 1.0}  # a pin no source proposed: placed by the shop alone
        matched = tuple(surface[t] for t in self.lexical.matched(pos, list(surface)))
        product = self.table.products[pos]
        return Hit(product.item_id, pos, score, product, sources, matched, features, shares)


@dataclass
class Fused:
    """The fused candidate set: positions (sorted), per-source feature arrays, score parts and score."""

    positions: np.ndarray
    features: dict[str, np.ndarray]
    parts: dict[str, np.ndarray]
    score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    order: np.ndarray | None = None  # explicit ordering (indices) once the shop's rules ran; else by score


def _corrected(text: str, corrections: Sequence[tuple[str, str]]) -> str:
    """``text`` (folded) with each misspelt word replaced, for looking up the shop's rules."""
    out = fold(text)
    for old, new in corrections:
        out = re.sub(rf"\b{re.escape(old)}\b", new, out)
    return out


def _top(score: np.ndarray, positions: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best scores, best first, ties by position (exact: ties at the cut included)."""
    if n <= 0 or not len(score):
        return np.zeros(0, dtype=np.int64)
    candidates = np.arange(len(score))
    if len(score) > n:
        cut = np.partition(score, len(score) - n)[len(score) - n]  # the n-th best score
        candidates = np.flatnonzero(score >= cut)
    order = np.lexsort((positions[candidates], -score[candidates]))
    return candidates[order][:n]


def _weight(profile: SearchProfile) -> float:
    return float(np.clip(float(profile.weight), 0.0, 1.0))


def _passes(price: np.ndarray, bound: Bound, low: bool) -> np.ndarray:
    """Prices on the allowed side of ``bound``; an unknown price never passes a price constraint."""
    with np.errstate(invalid="ignore"):
        if low:
            return price >= bound.value if bound.inclusive else price > bound.value
        return price <= bound.value if bound.inclusive else price < bound.value


def _surface_words(query: ParsedQuery) -> dict[str, str]:
    """Index term -> the word the shopper typed, for the query's retrieval and constraint words."""
    out: dict[str, str] = {}
    for word in words(query.semantic_text):
        out.setdefault(term(word), word)
    for _, added in query.synonyms:
        for word in words(added):
            out.setdefault(term(word), word)
    return out
