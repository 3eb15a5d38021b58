"""Catalogue-wide filter masks for the business rules, computed once when the rules load.

Each item gets the code of the first static rule it breaks (0 = allowed), in the order of
:data:`STATIC_REASONS`, so a filtered candidate is counted once, under one reason, and the
counts in a note add up to the number removed.

Matching, chosen on purpose:

- Category prefixes match whole levels: ``"Beauty > Hair"`` matches ``"Beauty > Hair"`` and
  ``"Beauty > Hair > Shampoo"`` but not ``"Beauty > Haircare"``. Levels are compared with spaces
  around ``>`` trimmed and case folded. An item without a category never matches, so it is
  dropped by ``include_categories`` and kept by ``exclude_categories``.
- Brands compare case-insensitively with surrounding spaces trimmed.
- Blocked words match titles after Unicode NFKC folding and case folding (so full-width
  ``ＢＯＭＢ`` is ``bomb``). A word in a script written without spaces (Chinese, Japanese, Korean,
  Thai, Lao, Khmer, Myanmar) matches anywhere as a substring; any other word matches whole words
  only: not next to a letter or digit of a spaced script, so ``gun`` blocks ``Toy gun`` and
  ``玩具gun`` but not ``Gundam``. A phrase matches across any run of whitespace.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Protocol

import numpy as np
import pandas as pd

from shoprec.pipeline.catalog import ItemInfo


class StaticRules(Protocol):
    """The settings the static filters read; :class:`~shoprec.pipeline.rules_config.RulesConfig`
    has them. Declared here so that this module, which the configuration uses to check itself,
    does not import the configuration back."""

    blocked_items: list[str]
    blocked_brands: list[str]
    blocked_words: list[str]
    include_categories: list[str]
    exclude_categories: list[str]
    price_min: float | None
    price_max: float | None
    keep_unknown_price: bool
    in_stock_only: bool


STATIC_REASONS = ("blocked item", "blocked brand", "blocked word", "category", "price", "out of stock")
"""Why an item is filtered for everyone; code ``i + 1`` in :func:`static_codes`."""

_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK radicals
    "\u3000-\u303f"  # CJK symbols and punctuation
    "\u3040-\u31ff"  # Hiragana, Katakana, Bopomofo, Hangul compatibility jamo, Katakana extension
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003ffff"  # CJK extensions B and later
)
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_SPACED_WORD_CHAR = f"[^\\W{_UNSPACED}]"  # a letter, digit or _ of a script that separates words


def fold_text(text: str) -> str:
    """NFKC + case folding: the form both titles and blocked words are compared in."""
    return unicodedata.normalize("NFKC", text).casefold()


def category_key(path: str) -> str:
    """Canonical category path: levels trimmed, case folded, joined by ``" > "``."""
    if not path or not path.strip():
        return ""
    return " > ".join(level.strip() for level in fold_text(path).split(">"))


def covers(prefix: str, path: str) -> bool:
    """Whether category ``prefix`` covers ``path`` at level boundaries (both canonical keys)."""
    return bool(prefix) and (path == prefix or path.startswith(prefix + " > "))


def category_mask(categories: np.ndarray, prefixes: list[str]) -> np.ndarray:
    """Items whose category path lies under any of ``prefixes`` (whole levels, case folded).

    Matched on the distinct categories, then mapped back to items: one pass per prefix over a
    few hundred paths rather than over the catalogue.
    """
    keys = [category_key(p) for p in prefixes if category_key(p)]
    if not keys or len(categories) == 0:
        return np.zeros(len(categories), dtype=bool)
    distinct, inverse = np.unique(np.asarray(categories, dtype=object).astype(str), return_inverse=True)
    canon = pd.Series([category_key(c) for c in distinct], dtype=object)
    hit = np.zeros(len(distinct), dtype=bool)
    for key in keys:
        hit |= ((canon == key) | canon.str.startswith(key + " > ")).to_numpy(dtype=bool)
    return hit[inverse.ravel()]


def word_pattern(words: list[str]) -> re.Pattern[str] | None:
    """One regex for all blocked ``words`` (see the module docstring), or None for no words."""
    parts = []
    for word in sorted({fold_text(w).strip() for w in words if w.strip()}, key=len, reverse=True):
        body = r"\s+".join(re.escape(piece) for piece in word.split())
        if _UNSPACED_CHAR.search(word):
            parts.append(body)
        else:
            parts.append(f"(?<!{_SPACED_WORD_CHAR}){body}(?!{_SPACED_WORD_CHAR})")
    return re.compile("|".join(parts)) if parts else None


def word_mask(titles: np.ndarray, words: list[str]) -> np.ndarray:
    """Items whose title contains a blocked word."""
    pattern = word_pattern(words)
    if pattern is None:
        return np.zeros(len(titles), dtype=bool)
    return np.fromiter(
        (bool(pattern.search(fold_text(t))) for t in np.asarray(titles, dtype=object).astype(str)),
        dtype=bool,
        count=len(titles),
    )


def price_mask(price: np.ndarray, low: float | None, high: float | None, keep_unknown: bool) -> np.ndarray:
    """Items outside ``[low, high]`` (bounds inclusive, None = open); unknown prices per ``keep_unknown``."""
    price = np.asarray(price, dtype=np.float64)
    if low is None and high is None:
        return np.zeros(len(price), dtype=bool)
    known = ~np.isnan(price)
    outside = np.zeros(len(price), dtype=bool)
    if low is not None:
        outside[known] |= price[known] < low
    if high is not None:
        outside[known] |= price[known] > high
    if not keep_unknown:
        outside |= ~known
    return outside


def static_masks(config: StaticRules, info: ItemInfo) -> list[np.ndarray]:
    """One boolean mask per :data:`STATIC_REASONS` entry: items that rule filters out."""
    n = info.n_items
    brands = {b.strip().casefold() for b in config.blocked_brands}
    brand_keys = np.array([str(b).strip().casefold() for b in info.brand], dtype=object)
    category = category_mask(info.category, config.exclude_categories)
    if config.include_categories:
        category |= ~category_mask(info.category, config.include_categories)
    return [
        np.isin(info.item_id.astype(str), np.asarray(config.blocked_items, dtype=str)),
        np.isin(brand_keys, list(brands)) if brands else np.zeros(n, dtype=bool),
        word_mask(info.title, config.blocked_words),
        category,
        price_mask(info.price, config.price_min, config.price_max, config.keep_unknown_price),
        ~np.asarray(info.in_stock, dtype=bool) if config.in_stock_only else np.zeros(n, dtype=bool),
    ]


def static_codes(config: StaticRules, info: ItemInfo) -> np.ndarray:
    """(n_items,) int8: 0 where every static rule allows the item, else 1 + the first broken rule."""
    codes = np.zeros(info.n_items, dtype=np.int8)
    for code, mask in reversed(list(enumerate(static_masks(config, info), start=1))):
        codes[mask] = code
    return codes
