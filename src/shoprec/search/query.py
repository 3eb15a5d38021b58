"""Query understanding: language, hard constraints (price, brand, category, colour, size) and the words
left to retrieve.

:class:`QueryParser` is built from the catalogue (:class:`~shoprec.search.products.ProductTable`): the
brands, category-level names, colours and sizes it knows are the only ones recognised. Matching is on index terms
(:func:`~shoprec.search.tokenize.tokenize`), longest phrase first, so ``water bottle`` finds the level
``Water Bottles`` and ``linen lane`` the brand ``Linen Lane``. A category word stands for every path
that has a level of that name (``Men`` under ``Fashion`` and under ``Beauty``, say).

Colours are the catalogue's own colour values (``attributes.colour``), also under their common
English variants and Chinese names (:data:`COLOUR_ALIASES`: ``gray`` and ``灰色`` find ``grey``) when the
catalogue has that colour. Sizes are the catalogue's size values; one is read as a size after the word
``size`` (``尺码``, ``尺寸``) anywhere, and on its own only when it has two or more characters with a
letter (``xl``, ``queen``): a bare ``l`` or ``42`` means too many other things (``l bracket``). When the
same words name several kinds, a brand wins, then a size, a colour, a category level.

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
    "en": {
        "brand": "brand",
        "category": "category",
        "colour": "colour",
        "size": "size",
        "min": "min price",
        "max": "max price",
    },
    "zh": {"brand": "品牌", "category": "类目", "colour": "颜色", "size": "尺码", "min": "最低价格", "max": "最高价格"},
}
CONSTRAINTS = ("category", "colour", "size", "brand", "price")
"""The constraint kinds a query can hold (the fields :meth:`ParsedQuery.has` and ``without`` take)."""
SIZE_WORDS = frozenset({"size", "尺码", "尺寸", "码数"})
"""Words after which a catalogue size value is read as a size."""
COLOUR_ALIASES: dict[str, tuple[str, ...]] = {
    "black": ("黑色",),
    "white": ("白色",),
    "grey": ("gray", "灰色"),
    "gray": ("grey", "灰色"),
    "navy": ("navy blue", "藏青色", "藏青", "海军蓝"),
    "red": ("红色",),
    "green": ("绿色",),
    "blue": ("蓝色",),
    "beige": ("米色",),
    "pink": ("粉色", "粉红色"),
    "yellow": ("黄色",),
    "brown": ("棕色", "咖啡色"),
    "purple": ("紫色",),
    "orange": ("橙色",),
    "silver": ("银色",),
    "gold": ("金色",),
}
"""Other words for a catalogue colour (keys folded English names); used only for colours the catalogue has."""


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into hard constraints and the terms left for retrieval.

    Attributes:
        text: the query as searched (after any truncation).
        language: ``zh``, ``en`` or ``unknown`` (by script); ``mixed`` when both scripts occur.
        min_price, max_price: price bounds, None when absent.
        brands: canonical brand names (any of them passes).
        categories: category paths (an item under any of them passes).
        colours: catalogue colours (an item of any of them passes; an item with no colour never does).
        sizes: catalogue sizes (likewise).
        terms: index terms left after removing constraint phrases; what lexical retrieval matches.
        constraint_terms: index terms of the brand, category, colour and size phrases.
        semantic_text: the text without price phrases, for the dense encoder.
        synonyms: ``(typed, added)`` phrases the shop's synonyms added to the lexical query.
        synonym_terms: the index terms of the added phrases (searched besides ``terms``).
        notes: what was changed or could not be used, for the client.
    """

    text: str
    language: str
    mixed: bool = False
    min_price: Bound | None = None
    max_price: Bound | None = None
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    colours: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    constraint_terms: tuple[str, ...] = ()
    semantic_text: str = ""
    notes: tuple[str, ...] = field(default=())
    synonyms: tuple[tuple[str, str], ...] = ()
    synonym_terms: tuple[str, ...] = ()

    @property
    def has_constraints(self) -> bool:
        return any(self.has(c) for c in CONSTRAINTS)

    def has(self, constraint: str) -> bool:
        """Whether the query holds the constraint ``constraint`` (one of :data:`CONSTRAINTS`)."""
        if constraint == "price":
            return self.min_price is not None or self.max_price is not None
        return bool(getattr(self, _field(constraint)))

    def without(self, constraint: str) -> ParsedQuery:
        """The query with the constraint ``constraint`` dropped (see :meth:`has`)."""
        if constraint == "price":
            return replace(self, min_price=None, max_price=None)
        return replace(self, **{_field(constraint): ()})

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
        if self.colours:
            parts.append(labels["colour"] + colon + " / ".join(self.colours))
        if self.sizes:
            parts.append(labels["size"] + colon + " / ".join(self.sizes))
        if self.min_price is not None:
            parts.append(labels["min"] + colon + str(self.min_price))
        if self.max_price is not None:
            parts.append(labels["max"] + colon + str(self.max_price))
        return sep.join(parts)


def _field(constraint: str) -> str:
    fields = {"category": "categories", "brand": "brands", "colour": "colours", "size": "sizes"}
    if constraint not in fields and constraint != "price":
        raise ShoprecError(f"unknown constraint '{constraint}': use one of {', '.join(CONSTRAINTS)}")
    return fields.get(constraint, "")


def detect_language(text: str) -> tuple[str, bool]:
    """``(language, mixed)`` by script: CJK ideographs -> zh, Latin letters -> en."""
    folded = fold(text)
    cjk, latin = bool(CJK_RUN.search(folded)), bool(LATIN.search(folded))
    return ("zh" if cjk else "en" if latin else "unknown"), cjk and latin


class QueryParser:
    """Parses queries against the brands, category levels, colours and sizes of one catalogue."""

    def __init__(
        self,
        brands: Iterable[str],
        categories: Iterable[str],
        colours: Iterable[str] = (),
        sizes: Iterable[str] = (),
    ) -> None:
        self.phrases: dict[tuple[str, ...], tuple[str, set[str]]] = {}
        self.bare_sizes: set[tuple[str, ...]] = set()  # size phrases read as a size without "size" before
        for path in sorted({c for c in categories if c and c.strip()}):
            levels = [lvl.strip() for lvl in path.split(">")]
            for depth, level in enumerate(levels):
                key = tuple(tokenize(level))
                if key:
                    prefix = " > ".join(levels[: depth + 1])
                    self.phrases.setdefault(key, ("category", set()))[1].add(prefix)
        for colour in _canonical(colours):
            for name in (colour, *COLOUR_ALIASES.get(colour.casefold(), ())):
                key = tuple(tokenize(name))
                if key:
                    self.phrases[key] = ("colour", {colour})
        for size in _canonical(sizes):
            key = tuple(tokenize(size))
            if key:
                self.phrases[key] = ("size", {size})
                if len(size) >= 2 and LATIN.search(fold(size)):
                    self.bare_sizes.add(key)
        for brand in _canonical(brands):
            key = tuple(tokenize(brand))
            if key:  # a brand wins over a size, a colour or a category level of the same words
                self.phrases[key] = ("brand", {brand})
        self.longest = max((len(k) for k in self.phrases), default=0)

    @classmethod
    def from_products(cls, table: ProductTable) -> QueryParser:
        live = [p for p, alive in zip(table.products, table.alive, strict=True) if alive]
        return cls(
            (p.brand for p in live), (p.category for p in live), (p.colour for p in live), (p.size for p in live)
        )

    def parse(self, query: str) -> ParsedQuery:
        """Split ``query`` into constraints and retrieval terms; an empty query is an error."""
        if query is None or not str(query).strip():
            raise ShoprecError("the search query is empty: give some words to search for")
        text, notes = _truncate(str(query).strip())
        language, mixed = detect_language(text)
        prices = extract_prices(fold(text))
        found, rest, matched = self._constraints(tokenize(prices.rest))
        if not rest and not matched and prices.low is None and prices.high is None:
            notes.append("the query holds no words (only punctuation or symbols): nothing to search for")
        return ParsedQuery(
            text=text,
            language=language,
            mixed=mixed,
            min_price=prices.low,
            max_price=prices.high,
            brands=tuple(sorted(found["brand"])),
            categories=tuple(sorted(found["category"])),
            colours=tuple(sorted(found["colour"])),
            sizes=tuple(sorted(found["size"])),
            terms=tuple(rest),
            constraint_terms=tuple(matched),
            semantic_text=" ".join(prices.rest.split()),
            notes=tuple(notes),
        )

    def _constraints(self, terms: list[str]) -> tuple[dict[str, set[str]], list[str], list[str]]:
        """Longest known phrases first, left to right; returns the values by kind, rest, matched terms."""
        found: dict[str, set[str]] = {"brand": set(), "category": set(), "colour": set(), "size": set()}
        rest: list[str] = []
        matched: list[str] = []
        i = 0
        while i < len(terms):
            after_size_word = i > 0 and terms[i - 1] in SIZE_WORDS
            for width in range(min(self.longest, len(terms) - i), 0, -1):
                key = tuple(terms[i : i + width])
                hit = self.phrases.get(key)
                if hit is not None and (hit[0] != "size" or after_size_word or key in self.bare_sizes):
                    found[hit[0]].update(hit[1])
                    if hit[0] == "size" and after_size_word and rest and rest[-1] in SIZE_WORDS:
                        matched.append(rest.pop())  # "size" itself was part of the constraint
                    matched.extend(key)
                    i += width
                    break
            else:
                rest.append(terms[i])
                i += 1
        return found, rest, matched


def _canonical(values: Iterable[str]) -> list[str]:
    """Distinct non-empty values, trimmed, the first spelling of each folded form kept (sorted)."""
    out: dict[str, str] = {}
    for value in sorted({v.strip() for v in values if v and v.strip()}):
        out.setdefault(value.casefold(), value)
    return sorted(out.values())


def _truncate(text: str) -> tuple[str, list[str]]:
    if len(text) <= MAX_QUERY_CHARS:
        return text, []
    cut = text[:MAX_QUERY_CHARS]
    space = cut.rfind(" ")
    if space > MAX_QUERY_CHARS // 2:
        cut = cut[:space]
    return cut, [f"the query was cut to its first {len(cut)} characters (it had {len(text)})"]
