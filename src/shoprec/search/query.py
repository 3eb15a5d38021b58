"""Query understanding: language, hard constraints (price, brand, category) and the words left to retrieve.

:class:`QueryParser` is built from the catalogue (:class:`~shoprec.search.products.ProductTable`): the
brands and category-level names it knows are the only ones recognised. Matching is on index terms
(:func:`~shoprec.search.tokenize.tokenize`), longest phrase first, so ``water bottle`` finds the level
``Water Bottles`` and ``linen lane`` the brand ``Linen Lane``. A category word stands for every path
that has a level of that name (``Men`` under ``Fashion`` and under ``Beauty``, say).

Language detection is by script only: a query with a CJK ideograph is ``zh``, one with Latin letters
and no ideograph ``en``, anything else ``unknown``; ``mixed`` says both scripts are present.

>>> parser = QueryParser.from_products(table)                # doctest: +SKIP
>>> parser.parse("Nordhaus kettle under 50").describe()      # doctest: +SKIP
'brand: Nordhaus, max price: 50'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from shoprec.errors import ShoprecError
from shoprec.search.prices import Bound, extract_prices
from shoprec.search.products import ProductTable
from shoprec.search.tokenize import CJK_RUN, fold, tokenize

MAX_QUERY_CHARS = 256
"""Longer queries are cut (at the last space before the limit) and the cut is noted."""
LATIN = re.compile(r"[a-z]")

LABELS = {
    "en": {"brand": "brand", "category": "category", "min": "min price", "max": "max price"},
    "zh": {"brand": "品牌", "category": "类目", "min": "最低价格", "max": "最高价格"},
}


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into hard constraints and the terms left for retrieval.

    Attributes:
        text: the query as searched (after any truncation).
        language: ``zh``, ``en`` or ``unknown`` (by script); ``mixed`` when both scripts occur.
        min_price, max_price: price bounds, None when absent.
        brands: canonical brand names (any of them passes).
        categories: category paths (an item under any of them passes).
        terms: index terms left after removing constraint phrases; what lexical retrieval matches.
        constraint_terms: index terms of the brand and category phrases (used to rank when no term is left).
        semantic_text: the text without price phrases, for the dense encoder.
        notes: what was changed or could not be used, for the client.
    """

    text: str
    language: str
    mixed: bool = False
    min_price: Bound | None = None
    max_price: Bound | None = None
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    constraint_terms: tuple[str, ...] = ()
    semantic_text: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def has_constraints(self) -> bool:
        return bool(self.brands or self.categories or self.min_price or self.max_price)

    def has(self, constraint: str) -> bool:
        """Whether the query holds the constraint ``constraint`` (``category``, ``brand`` or ``price``)."""
        if constraint == "category":
            return bool(self.categories)
        if constraint == "brand":
            return bool(self.brands)
        if constraint == "price":
            return self.min_price is not None or self.max_price is not None
        raise ShoprecError(f"unknown constraint '{constraint}': use category, brand or price")

    def without(self, constraint: str) -> ParsedQuery:
        """The query with the constraint ``constraint`` dropped (see :meth:`has`)."""
        if constraint == "category":
            return replace(self, categories=())
        if constraint == "brand":
            return replace(self, brands=())
        if constraint == "price":
            return replace(self, min_price=None, max_price=None)
        raise ShoprecError(f"unknown constraint '{constraint}': use category, brand or price")

    def describe(self, lang: str = "en") -> str:
        """Constraints in a client-showable form, e.g. ``brand: Nordhaus, max price: 50`` (``lang`` en or zh)."""
        labels = LABELS.get(lang, LABELS["en"])
        sep = "，" if lang == "zh" else ", "
        colon = "：" if lang == "zh" else ": "
        parts = []
        if self.brands:
            parts.append(labels["brand"] + colon + " / ".join(self.brands))
        if self.categories:
            parts.append(labels["category"] + colon + " / ".join(self.categories))
        if self.min_price is not None:
            parts.append(labels["min"] + colon + str(self.min_price))
        if self.max_price is not None:
            parts.append(labels["max"] + colon + str(self.max_price))
        return sep.join(parts)


def detect_language(text: str) -> tuple[str, bool]:
    """``(language, mixed)`` by script: CJK ideographs -> zh, Latin letters -> en."""
    folded = fold(text)
    cjk, latin = bool(CJK_RUN.search(folded)), bool(LATIN.search(folded))
    return ("zh" if cjk else "en" if latin else "unknown"), cjk and latin


class QueryParser:
    """Parses queries against the brands and category levels of one catalogue."""

    def __init__(self, brands: Iterable[str], categories: Iterable[str]) -> None:
        self.phrases: dict[tuple[str, ...], tuple[str, set[str]]] = {}
        for path in sorted({c for c in categories if c and c.strip()}):
            levels = [lvl.strip() for lvl in path.split(">")]
            for depth, level in enumerate(levels):
                key = tuple(tokenize(level))
                if key:
                    prefix = " > ".join(levels[: depth + 1])
                    self.phrases.setdefault(key, ("category", set()))[1].add(prefix)
        for brand in sorted({b.strip() for b in brands if b and b.strip()}):
            key = tuple(tokenize(brand))
            if key:  # a brand wins over a category level of the same words
                self.phrases[key] = ("brand", {brand})
        self.longest = max((len(k) for k in self.phrases), default=0)

    @classmethod
    def from_products(cls, table: ProductTable) -> QueryParser:
        live = [p for p, alive in zip(table.products, table.alive, strict=True) if alive]
        return cls((p.brand for p in live), (p.category for p in live))

    def parse(self, query: str) -> ParsedQuery:
        """Split ``query`` into constraints and retrieval terms; an empty query is an error."""
        if query is None or not str(query).strip():
            raise ShoprecError("the search query is empty: give some words to search for")
        text, notes = _truncate(str(query).strip())
        language, mixed = detect_language(text)
        prices = extract_prices(fold(text))
        brands, categories, rest, matched = self._constraints(tokenize(prices.rest))
        if not rest and not matched and prices.low is None and prices.high is None:
            notes.append("the query holds no words (only punctuation or symbols): nothing to search for")
        return ParsedQuery(
            text=text,
            language=language,
            mixed=mixed,
            min_price=prices.low,
            max_price=prices.high,
            brands=tuple(sorted(brands)),
            categories=tuple(sorted(categories)),
            terms=tuple(rest),
            constraint_terms=tuple(matched),
            semantic_text=" ".join(prices.rest.split()),
            notes=tuple(notes),
        )

    def _constraints(self, terms: list[str]) -> tuple[set[str], set[str], list[str], list[str]]:
        """Longest known phrases first, left to right; returns brands, categories, rest, matched terms."""
        brands: set[str] = set()
        categories: set[str] = set()
        rest: list[str] = []
        matched: list[str] = []
        i = 0
        while i < len(terms):
            for size in range(min(self.longest, len(terms) - i), 0, -1):
                hit = self.phrases.get(tuple(terms[i : i + size]))
                if hit is not None:
                    (brands if hit[0] == "brand" else categories).update(hit[1])
                    matched.extend(terms[i : i + size])
                    i += size
                    break
            else:
                rest.append(terms[i])
                i += 1
        return brands, categories, rest, matched


def _truncate(text: str) -> tuple[str, list[str]]:
    if len(text) <= MAX_QUERY_CHARS:
        return text, []
    cut = text[:MAX_QUERY_CHARS]
    space = cut.rfind(" ")
    if space > MAX_QUERY_CHARS // 2:
        cut = cut[:space]
    return cut, [f"the query was cut to its first {len(cut)} characters (it had {len(text)})"]
