"""Why these items go together, in English and Chinese.

Each added item gets one reason, from the strongest evidence linking it to another bundle member
(the partner with the highest complement score): orders that held both, how often its category
goes with the partner's, shoppers of similar items, a shared intent (the shopper's words, or words
the titles share), or plain popularity in its category. A one-line summary says what the bundle is.

>>> explain_bundle(recommender, bundle, language="zh")     # doctest: +SKIP
{'summary': '为“佳能相机”搭配的3件商品，来自3个品类，合计 412.97', 'items': [...]}
"""

from __future__ import annotations

import re

import numpy as np

from shoprec.bundles.recommender import Bundle, BundleRecommender
from shoprec.errors import ShoprecError

LANGUAGES = ("en", "zh")
TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "anchor": "Your starting point",
        "co_purchase": "Bought together with {partner} in {count} order(s)",
        "category": "{category} goes with {partner_category}: {share:.0%} of orders with one include the other",
        "transfer": "Shoppers who bought items like this also bought {partner}",
        "shared_words": "Made for the same use as {partner} (both: {words})",
        "intent": "Matches your intent \u201c{intent}\u201d",
        "popular": "A popular choice in {category}",
        "summary": "{n} item(s) for {anchor} from {categories} categor(ies), total {total:.2f}",
        "summary_intent": "{n} item(s) for \u201c{intent}\u201d from {categories} categor(ies), total {total:.2f}",
        "unknown_category": "its category",
    },
    "zh": {
        "anchor": "您选择的商品",
        "co_purchase": "与{partner}在{count}个订单中一起购买",
        "category": "{category}与{partner_category}常搭配：{share:.0%}的相关订单同时包含两者",
        "transfer": "购买类似商品的顾客也购买了{partner}",
        "shared_words": "与{partner}用途相同（共同点：{words}）",
        "intent": "符合您的需求\u201c{intent}\u201d",
        "popular": "{category}中的热门之选",
        "summary": "为{anchor}搭配的{n}件商品，来自{categories}个品类，合计 {total:.2f}",
        "summary_intent": "为\u201c{intent}\u201d搭配的{n}件商品，来自{categories}个品类，合计 {total:.2f}",
        "unknown_category": "同类商品",
    },
}
"""Reason templates per language."""
MIN_SHARE = 0.05
"""Category pairs sharing fewer orders than this are not offered as a reason."""
WORD = re.compile(r"[a-z0-9][a-z0-9\-]{2,}")
COMMON = frozenset(
    ["the", "and", "for", "with", "from", "pack", "set", "inch", "new", "black", "white", "size", "color", "colour"]
)


def _name(rec: BundleRecommender, item: int) -> str:
    title = str(rec.info.title[item]) or str(rec.info.item_id[item])
    return title if len(title) <= 48 else title[:45].rstrip() + "..."


def _leaf_name(path: str, language: str) -> str:
    return path.split(" > ")[-1] if path else TEMPLATES[language]["unknown_category"]


def item_reason(rec: BundleRecommender, bundle: Bundle, item: int, language: str = "en") -> dict:
    """The strongest reason ``item`` belongs in ``bundle``: ``{"kind", "text", "partner"}``."""
    t = TEMPLATES[language]
    others = [int(i) for i in bundle.items if int(i) != item]
    model = rec.model
    partner = None
    if others:
        scores = model.complement_rows(np.array(others), np.array([item]))[:, 0]
        partner = others[int(np.argmax(scores))]
    intent = bundle.anchor.intent
    if partner is not None:
        ev = model.evidence(partner, item)
        fill = {"partner": _name(rec, partner)}
        if ev["co_count"] >= 1:
            return _reason("co_purchase", t["co_purchase"].format(count=ev["co_count"], **fill), partner)
        if ev["leaf_a"] and ev["leaf_b"] and ev["leaf_a"] != ev["leaf_b"] and ev["leaf_share"] >= MIN_SHARE:
            text = t["category"].format(
                category=_leaf_name(str(ev["leaf_b"]), language),
                partner_category=_leaf_name(str(ev["leaf_a"]), language),
                share=ev["leaf_share"],
            )
            return _reason("category", text, partner)
        if ev.get("transfer", 0.0) > 0:
            return _reason("transfer", t["transfer"].format(**fill), partner)
        words = shared_words(str(rec.info.title[partner]), str(rec.info.title[item]))
        if words and not intent:
            return _reason("shared_words", t["shared_words"].format(words=", ".join(words), **fill), partner)
    if intent:
        return _reason("intent", t["intent"].format(intent=intent), None)
    category = _leaf_name(str(rec.info.category[item]), language)
    return _reason("popular", t["popular"].format(category=category), None)


def _reason(kind: str, text: str, partner: int | None) -> dict:
    return {"kind": kind, "text": text, "partner": partner}


def shared_words(a: str, b: str, k: int = 3) -> list[str]:
    """Distinctive words two titles share (brand, model, use), in ``a``'s order."""
    other = set(WORD.findall(b.lower()))
    out = [w for w in dict.fromkeys(WORD.findall(a.lower())) if w in other and w not in COMMON]
    return out[:k]


def explain_bundle(rec: BundleRecommender, bundle: Bundle, language: str = "en") -> dict:
    """``{"summary": str, "items": [{"item": index, "role", "reason": {...}}]}`` in ``language``."""
    if language not in TEMPLATES:
        raise ShoprecError(f"bundle explanations: unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    t = TEMPLATES[language]
    rows = []
    for pos, item in enumerate(bundle.items.tolist()):
        if pos < bundle.n_base:
            rows.append({"item": item, "role": "anchor", "reason": _reason("anchor", t["anchor"], None)})
        else:
            rows.append({"item": item, "role": "added", "reason": item_reason(rec, bundle, item, language)})
    categories = len({str(rec.info.category[i]) or f"?{i}" for i in bundle.items.tolist()})
    fill = {"n": len(bundle.items), "categories": categories, "total": bundle.total_price}
    if bundle.n_base:
        summary = t["summary"].format(anchor=_name(rec, int(bundle.items[0])), **fill)
    elif bundle.anchor.intent:
        summary = t["summary_intent"].format(intent=bundle.anchor.intent, **fill)
    else:
        summary = t["summary"].format(anchor=t["anchor"], **fill)
    return {"summary": summary, "items": rows}
