"""A user profile read aloud: one sentence in English or Chinese.

>>> describe(profiles, "U00042")                 # doctest: +SKIP
'Mostly buys mugs and tea sets, GBP 9-27'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoprec.errors import ModelError

if TYPE_CHECKING:
    from shoprec.text.profiles import UserProfiles

MIN_EVENTS = 3
"""Users with fewer events (and queries) are described as having too little data."""
MIN_SHARE = 0.15
"""Categories below this share of a user's item weight are left out of the description."""
CURRENCY_ZH = {"GBP": "英镑", "EUR": "欧元", "USD": "美元", "CNY": "元", "RMB": "元", "JPY": "日元", "HKD": "港元"}


def describe(profiles: UserProfiles, user: str | int, lang: str = "en", labels: dict[str, str] | None = None) -> str:
    """One sentence about the user in English (``en``) or Chinese (``zh``); with fewer than
    :data:`MIN_EVENTS` events, a note that there is too little data. ``labels`` maps category
    paths or leaf names to display names (Chinese names, say).

    >>> describe(profiles, "U1"), describe(profiles, "U1", lang="zh", labels={"Mugs": "马克杯"})  # doctest: +SKIP
    ('Mostly buys mugs and tea sets, GBP 2-8', '主要购买马克杯和tea sets，价格 2-8 英镑')
    """
    if lang not in ("en", "zh"):
        raise ModelError(f"describe: lang must be 'en' or 'zh', got {lang!r}")
    row, zh = profiles._row(user), lang == "zh"
    n, top = int(profiles.n_events[row]), profiles.top_categories(row)
    if n < MIN_EVENTS or not top:
        if zh:
            return f"数据太少，暂时无法描述该用户（{n} 个事件）。"
        return f"Too little data to describe this shopper yet ({n} event{'s' * (n != 1)})."
    names = [_label(path, labels, zh) for path, share in top if share >= MIN_SHARE or path == top[0][0]]
    tags = [t for t, _ in profiles.top_tags(row, 3)]
    verb = ("购买" if zh else "buys") if len(profiles.bought.row(row)[0]) else ("浏览" if zh else "browses")
    band, currency = profiles.price_band(row), profiles.settings["currency"]
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
