"""Why each search result matched, in English or Chinese, and the JSON form of a search result.

A hit's reasons, in this order (each only when it holds):

- ``pinned``: the shop placed it at this slot for this query;
- ``words``: the query words the product contains ("matches: cordless, drill");
- ``synonym``: words it contains only through the shop's synonyms ("via synonyms: sofa (for couch)");
- ``semantic``: the dense source proposed it ("close in meaning to the query (#3)");
- ``browse``: a query of constraints only, ordered by popularity;
- ``personal``: the shopper's profile takes a visible share of its score ("suits your history: 23 %
  of the score"), shown from :data:`PERSONAL_SHOWN` on;
- ``constraints``: the query's constraints it satisfies, those that were not relaxed ("brand:
  Nordhaus, max price: 50");
- ``promoted`` / ``buried``: the shop's rule for this query raised or lowered its score.

>>> explain_hit(hit, result, "zh")          # doctest: +SKIP
'匹配词：cordless, drill；语义相近（第 3 名）'
"""

from __future__ import annotations

import math
from typing import Any

from shoprec.search.query import ParsedQuery

# Hits and results are :class:`shoprec.search.hybrid.Hit` and ``SearchResult``, typed ``Any`` here:
# hybrid imports this module for ``SearchResult.to_dict``, and imports must not go both ways.
Hit = Any
SearchResult = Any

PERSONAL_SHOWN = 0.05
"""The personal share of a hit's score from which its explanation mentions the shopper's history."""

TEXT = {
    "en": {
        "words": "matches: {words}",
        "semantic": "close in meaning to the query (#{rank})",
        "personal": "suits your history: {share:.0f} % of the score",
        "constraints": "satisfies {what}",
        "sep": "; ",
        "browse": "among the most popular products that satisfy the constraints",
        "pinned": "placed here by the shop",
        "synonym": "via synonyms: {pairs}",
        "pair": "{added} (for {typed})",
        "promoted": "promoted by the shop",
        "buried": "lowered by the shop",
    },
    "zh": {
        "words": "匹配词：{words}",
        "semantic": "语义相近（第 {rank} 名）",
        "personal": "符合你的历史偏好：占得分的 {share:.0f}%",
        "constraints": "满足 {what}",
        "sep": "；",
        "browse": "满足条件的热门商品",
        "pinned": "由商家固定在此位置",
        "synonym": "同义词匹配：{pairs}",
        "pair": "{added}（对应 {typed}）",
        "promoted": "商家提升",
        "buried": "商家降低",
    },
}


def reasons(hit: Hit, result: SearchResult, lang: str = "en") -> list[dict[str, str]]:
    """The reasons ``hit`` is in ``result``: ``{"kind": ..., "text": ...}`` in ``lang`` (en or zh)."""
    text = TEXT.get(lang, TEXT["en"])
    out: list[dict[str, str]] = []
    if not math.isnan(hit.features.get("merch_slot", math.nan)):
        out.append({"kind": "pinned", "text": text["pinned"]})
    query = result.query
    added = {a: t for t, phrase in query.synonyms for a in phrase.split()}
    typed = [w for w in hit.matched if w not in added or w in query.text.casefold().split()]
    via = [w for w in hit.matched if w not in typed]
    if typed:
        out.append({"kind": "words", "text": text["words"].format(words=", ".join(typed))})
    if via:
        pairs = ", ".join(text["pair"].format(added=w, typed=added[w]) for w in via)
        out.append({"kind": "synonym", "text": text["synonym"].format(pairs=pairs)})
    if "dense" in hit.sources:
        out.append({"kind": "semantic", "text": text["semantic"].format(rank=hit.sources["dense"].rank)})
    if "popularity" in hit.shares:
        out.append({"kind": "browse", "text": text["browse"]})
    share = hit.shares.get("personal", 0.0)
    if share >= PERSONAL_SHOWN:
        out.append({"kind": "personal", "text": text["personal"].format(share=100 * share)})
    kept = applied_constraints(result.query, result.relaxed)
    if kept.describe(lang):
        out.append({"kind": "constraints", "text": text["constraints"].format(what=kept.describe(lang))})
    lift = hit.features.get("merch_lift", 0.0)
    if lift > 0 or lift < 0:
        kind = "promoted" if lift > 0 else "buried"
        out.append({"kind": kind, "text": text[kind]})
    return out


def explain_hit(hit: Hit, result: SearchResult, lang: str = "en") -> str:
    """The reasons of :func:`reasons` as one line."""
    return TEXT.get(lang, TEXT["en"])["sep"].join(r["text"] for r in reasons(hit, result, lang))


def applied_constraints(query: ParsedQuery, relaxed: tuple[str, ...]) -> ParsedQuery:
    """``query`` without the constraints that were relaxed: those every hit satisfies."""
    for name in relaxed:
        query = query.without(name)
    return query


def _number(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def query_dict(query: ParsedQuery, lang: str = "en") -> dict[str, Any]:
    def bound(b: Any) -> dict[str, Any] | None:
        return None if b is None else {"value": b.value, "inclusive": b.inclusive}

    return {
        "text": query.text,
        "language": query.language,
        "mixed": query.mixed,
        "min_price": bound(query.min_price),
        "max_price": bound(query.max_price),
        "brands": list(query.brands),
        "categories": list(query.categories),
        "colours": list(query.colours),
        "sizes": list(query.sizes),
        "terms": list(query.terms),
        "synonyms": [list(pair) for pair in query.synonyms],
        "describe": query.describe(lang),
    }


def hit_dict(hit: Hit, result: SearchResult, lang: str = "en") -> dict[str, Any]:
    return {
        "item_id": hit.item_id,
        "title": hit.product.title,
        "brand": hit.product.brand,
        "category": hit.product.category,
        "price": _number(hit.product.price),
        "score": _number(hit.score),
        "shares": dict(hit.shares),
        "sources": {name: {"rank": s.rank, "score": _number(s.score)} for name, s in hit.sources.items()},
        "matched": list(hit.matched),
        "features": {name: _number(v) for name, v in hit.features.items()},
        "reasons": reasons(hit, result, lang),
        "explanation": explain_hit(hit, result, lang),
    }


def result_dict(result: SearchResult, lang: str = "en") -> dict[str, Any]:
    """The JSON-ready form of a :class:`~shoprec.search.hybrid.SearchResult`."""
    return {
        "query": query_dict(result.query, lang),
        "hits": [hit_dict(h, result, lang) for h in result.hits],
        "facets": {name: [[value, count] for value, count in counts] for name, counts in result.facets.items()},
        "total": result.total,
        "offset": result.offset,
        "relaxed": list(result.relaxed),
        "corrections": [list(pair) for pair in result.corrections],
        "notes": [*result.notes, *result.query.notes],
    }
