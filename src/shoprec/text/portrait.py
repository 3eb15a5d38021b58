"""A user profile read aloud: one sentence in English or Chinese.

The sentence is made from :class:`ProfileFacts`, which
:meth:`~shoprec.text.profiles.UserProfiles.facts` fills in; this module does not know the
profiles themselves, so profiles can import it without a cycle.

>>> facts = ProfileFacts(n_events=12, top_categories=[("Home > Mugs", 0.7), ("Home > Tea Sets", 0.3)],
...                      top_tags=[], bought=True, price_band=(9.0, 27.0), currency="GBP")
>>> describe(facts)
'Mostly buys mugs and tea sets, GBP 9-27'
"""

from __future__ import annotations

from dataclasses import dataclass

from shoprec.errors import ModelError

MIN_EVENTS = 3
"""Users with fewer events (and queries) are described as having too little data."""
MIN_SHARE = 0.15
"""Categories below this share of a user's item weight are left out of the description."""
CURRENCY_ZH = {"GBP": "英镑", "EUR": "欧元", "USD": "美元", "CNY": "元", "RMB": "元", "JPY": "日元", "HKD": "港元"}


@dataclass(frozen=True)
class ProfileFacts:
    """What the sentence about one user is made from."""

    n_events: int
    """Events and search queries folded into the profile."""
    top_categories: list[tuple[str, float]]
    """Heaviest leaf categories as (path, share of the user's item weight), heaviest first."""
    top_tags: list[str]
    """Heaviest tags, heaviest first (empty without tags)."""
    bought: bool
    """Whether the user bought anything (else the sentence says "browses")."""
    price_band: tuple[float, float] | None
    """Typical low and high price of the user's items; None without prices."""
    currency: str | None
    """Currency code printed with the prices (``GBP``); None or empty prints none."""


def describe(facts: ProfileFacts, lang: str = "en", labels: dict[str, str] | None = None) -> str:
    """One sentence about the user in English (``en``) or Chinese (``zh``); with fewer than
    :data:`MIN_EVENTS` events, a note that there is too little data. ``labels`` maps category
    paths or leaf names to display names (Chinese names, say).

    >>> facts = ProfileFacts(5, [("Home > Mugs", 0.6), ("Home > Tea sets", 0.4)], [], True, (2.0, 8.0), "GBP")
    >>> describe(facts), describe(facts, lang="zh", labels={"Mugs": "马克杯"})
    ('Mostly buys mugs and tea sets, GBP 2-8', '主要购买马克杯和Tea sets，价格 2-8 英镑')
    """
    if lang not in ("en", "zh"):
        raise ModelError(f"describe: lang must be 'en' or 'zh', got {lang!r}")
    zh, n, top = lang == "zh", facts.n_events, facts.top_categories
    if n < MIN_EVENTS or not top:
        if zh:
            return f"数据太少，暂时无法描述该用户（{n} 个事件）。"
        return f"Too little data to describe this shopper yet ({n} event{'s' * (n != 1)})."
    names = [_label(path, labels, zh) for path, share in top if share >= MIN_SHARE or path == top[0][0]]
    tags = facts.top_tags
    verb = ("购买" if zh else "buys") if facts.bought else ("浏览" if zh else "browses")
    band, currency = facts.price_band, facts.currency
    price = "" if band is None else f"{_price(band[0])}-{_price(band[1])}"
    if zh:
        text = f"主要{verb}{_join(names, '、', '和')}" + (f"（{'、'.join(tags)}）" if tags else "")
        unit = f" {CURRENCY_ZH.get(currency, currency)}" if currency else ""
        return text + (f"，价格 {price}{unit}" if band else "")
    text = f"Mostly {verb} {_join(names, ', ', ' and ')}" + (f" ({', '.join(tags)})" if tags else "")
    return text + ((f", {currency} {price}" if currency else f", priced {price}") if band else "")


def _label(path: str, labels: dict[str, str] | None, zh: bool) -> str:
    """A category's display name: from ``labels`` (by path or leaf), else the leaf (lower case in English)."""
    leaf = path.split(">")[-1].strip()
    if labels and (path in labels or leaf in labels):
        return labels.get(path, labels.get(leaf, leaf))
    return leaf if zh else " ".join(w.lower() if w[:1].isupper() and w[1:].islower() else w for w in leaf.split())


def _join(names: list[str], comma: str, last: str) -> str:
    return names[0] if len(names) == 1 else comma.join(names[:-1]) + last + names[-1]


def _price(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
