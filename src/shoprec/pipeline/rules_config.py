"""Typed configuration of the business rules, checked when it loads.

:meth:`RulesConfig.from_dict` reads a plain mapping (a TOML table), rejecting unknown keys and
wrong types; :meth:`RulesConfig.validate` checks it against the catalogue and raises one
:class:`~shoprec.errors.ConfigError` listing every conflict (a pinned item that a filter removes,
a slot pinned twice, ``price_min > price_max``, ...). Every default is a no-op.

Blocked ids missing from the catalogue are a warning, not an error: block lists are often shared
across shops or outlive the products they name, and an item that does not exist can never be
shown anyway. Unknown pinned or promoted ids are errors: the rule could never do what it says.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field, fields
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np

from shoprec.errors import ConfigError
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.filters import (
    STATIC_REASONS,
    category_key,
    category_mask,
    covers,
    fold_text,
    static_codes,
    word_pattern,
)


@dataclass
class RulesConfig:
    """Business rules for one placement; the defaults change nothing."""

    exclude_purchased: bool = False
    """Drop items the user bought (purchase events in the history)."""
    exclude_seen: bool = False
    """Drop every item in the user's history, whatever the event (implies ``exclude_purchased``)."""
    in_stock_only: bool = False
    """Drop items the catalogue marks out of stock (:attr:`ItemInfo.in_stock`)."""
    include_categories: list[str] = field(default_factory=list)
    """Show only items under one of these category prefixes (whole levels: ``"Beauty > Hair"``
    matches ``"Beauty > Hair > Shampoo"``, not ``"Beauty > Haircare"``); empty = every category."""
    exclude_categories: list[str] = field(default_factory=list)
    """Never show items under these category prefixes (matched like ``include_categories``)."""
    price_min: float | None = None
    """Lowest price shown (inclusive); None = no lower bound."""
    price_max: float | None = None
    """Highest price shown (inclusive); None = no upper bound."""
    keep_unknown_price: bool = True
    """With a price bound set, keep items whose price is unknown (True: a missing price is a
    catalogue gap, not a reason to hide the product) or drop them (False: strict price bands)."""
    blocked_items: list[str] = field(default_factory=list)
    """External item ids never shown. Ids not in the catalogue are counted as a warning."""
    blocked_brands: list[str] = field(default_factory=list)
    """Brands never shown (case-insensitive, surrounding spaces ignored)."""
    blocked_words: list[str] = field(default_factory=list)
    """Words or phrases whose presence in a title hides the item: case-insensitive, whole words in
    spaced scripts, substrings in Chinese, Japanese, Korean and Thai (see :mod:`.filters`)."""
    pinned: dict[str, int] = field(default_factory=dict)
    """External item id -> 0-based slot in the final list. Shown even when no source proposed it;
    a pin past the end of a short list goes last. Must pass every static filter."""
    promoted: dict[str, float] = field(default_factory=dict)
    """External item id -> additive boost in units of the candidates' score spread (best minus worst
    score): 0.1 lifts the item a tenth of that range, 1.0 puts it level with the best. Additive
    because scores may be negative, where a multiplier would push the item down. Must be >= 0."""
    longtail_boost: float = 0.0
    """Boost of long-tail items, in units of the score spread like ``promoted``; 0 = off."""
    head_share: float = 0.8
    """The most popular items making up this share of all interactions are the head; the rest
    (and never-seen items) are the long tail that ``longtail_boost`` lifts. In (0, 1]."""
    mmr_lambda: float | None = None
    """Maximal marginal relevance trade-off in [0, 1]: 1 = pure relevance, 0 = pure diversity;
    None = no MMR. Needs item vectors."""
    mmr_window: int = 50
    """How many top candidates MMR reorders (the rest keep their order below them)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "rules") -> RulesConfig:
        """Config from a mapping: unknown keys and wrong types are a :class:`ConfigError`.

        Lists may be given as tuples and whole numbers where numbers are expected; both are
        stored as the declared type. Catalogue-free conflicts are checked here too.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"expected a table of settings, got {type(data).__name__}", where=where)
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(valid), key=str)
        if unknown:
            raise ConfigError(
                f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(repr(k) for k in unknown)}",
                where=where,
                fix=f"Valid settings: {', '.join(valid)}",
            )
        config = cls(**{key: _coerce(value) for key, value in data.items()})
        _raise(config._type_problems(), where)  # before converting: float("abc") must not be the error
        config.price_min, config.price_max, config.longtail_boost, config.head_share = (
            None if v is None else float(v)
            for v in (config.price_min, config.price_max, config.longtail_boost, config.head_share)
        )
        config.mmr_lambda = None if config.mmr_lambda is None else float(config.mmr_lambda)
        config.promoted = {k: float(v) for k, v in config.promoted.items()}
        config.check(where)
        return config

    def check(self, where: str = "rules") -> None:
        """Types and the conflicts visible without the catalogue; raises :class:`ConfigError`."""
        _raise(self._type_problems(), where)
        _raise(self._value_problems(), where)

    def validate(self, info: ItemInfo, where: str = "rules", codes: np.ndarray | None = None) -> list[str]:
        """Check against the catalogue; raise :class:`ConfigError` naming every conflict found.

        Returns warnings (e.g. blocked ids not in the catalogue, promoted items a filter hides).
        ``codes`` are :func:`~shoprec.pipeline.filters.static_codes` when already computed.
        """
        self.check(where)
        problems: list[str] = []
        codes = static_codes(self, info) if codes is None else codes
        index = {item: i for i, item in enumerate(np.asarray(info.item_id).astype(str).tolist())}
        warnings: list[str] = []
        for key in ("pinned", "promoted"):
            missing = [item for item in getattr(self, key) if item not in index]
            if missing:
                problems.append(f"{key}: {_names(missing)} not in the catalogue")
        for item, slot in self.pinned.items():
            if item in index and codes[index[item]]:
                reason = STATIC_REASONS[codes[index[item]] - 1]
                why = _explain(reason, self, str(info.title[index[item]]))
                problems.append(f"pinned: item {item!r} (slot {slot}) can never be shown: {why}")
        for item in self.promoted:
            if item in index and codes[index[item]]:
                warnings.append(f"promoted item {item!r} is never shown: {STATIC_REASONS[codes[index[item]] - 1]}")
        missing = [item for item in self.blocked_items if item not in index]
        if missing:
            warnings.append(
                f"blocked_items: {len(missing)} of {len(self.blocked_items)} ids not in the catalogue "
                f"({_names(missing)})"
            )
        warnings += _unmatched_prefixes(self, info, problems)
        if info.n_items and not problems and not np.any(codes == 0):
            problems.append("the filters together leave no item of the catalogue that could be shown")
        _raise(problems, where)
        return warnings

    def _type_problems(self) -> list[str]:
        hints = get_type_hints(type(self))
        return [
            f"{f.name}: expected {_describe(hints[f.name])}, got {type(v).__name__} {_short(v)}"
            for f in fields(self)
            if not _fits(v := getattr(self, f.name), hints[f.name])
        ]

    def _value_problems(self) -> list[str]:
        """Conflicts visible without the catalogue."""
        out = []
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            out.append(f"price_min {self.price_min:g} > price_max {self.price_max:g}: no price could pass")
        negative = {k: v for k, v in self.promoted.items() if v < 0}
        if negative:
            out.append(f"promoted: negative boosts for {_names(list(negative))}; use blocked_items to hide items")
        if self.longtail_boost < 0:
            out.append(f"longtail_boost: negative boost {self.longtail_boost:g}; must be >= 0 (0 = off)")
        if not 0 < self.head_share <= 1:
            out.append(f"head_share {self.head_share:g} outside (0, 1]")
        if self.mmr_lambda is not None and not 0 <= self.mmr_lambda <= 1:
            out.append(f"mmr_lambda {self.mmr_lambda:g} outside [0, 1] (1 = pure relevance, 0 = pure diversity)")
        if self.mmr_window < 1:
            out.append(f"mmr_window {self.mmr_window} must be at least 1")
        out += [f"pinned: item {item!r} has negative slot {slot}" for item, slot in self.pinned.items() if slot < 0]
        by_slot: dict[int, list[str]] = {}
        for item, slot in self.pinned.items():
            by_slot.setdefault(slot, []).append(item)
        out += [f"pinned: slot {s} is given to {len(v)} items ({_names(v)})" for s, v in by_slot.items() if len(v) > 1]
        if any(not b.strip() for b in self.blocked_brands):
            out.append("blocked_brands: an empty brand would block every item without a brand")
        if any(not w.strip() for w in self.blocked_words):
            out.append("blocked_words: an empty word would match every title")
        for key in ("include_categories", "exclude_categories"):
            if any(not category_key(c) for c in getattr(self, key)):
                out.append(f"{key}: an empty category path")
        for inc in self.include_categories:
            for exc in self.exclude_categories:
                if covers(category_key(exc), category_key(inc)):
                    how = "both included and excluded" if category_key(exc) == category_key(inc) else f"under {exc!r}"
                    out.append(f"category {inc!r} is {how}: include_categories and exclude_categories conflict")
        return out


def _unmatched_prefixes(config: RulesConfig, info: ItemInfo, problems: list[str]) -> list[str]:
    """Warnings for category prefixes that match no item; an error when no include matches."""
    warnings = []
    for key in ("include_categories", "exclude_categories"):
        dead = [c for c in getattr(config, key) if not category_mask(info.category, [c]).any()]
        if dead:
            warnings.append(f"{key}: {_names(dead)} match no item of the catalogue")
    if config.include_categories and not category_mask(info.category, config.include_categories).any():
        problems.append(f"include_categories: none of {_names(config.include_categories)} matches any item")
    return warnings


def _explain(reason: str, config: RulesConfig, title: str) -> str:
    if reason == "blocked word":
        found = word_pattern(config.blocked_words).search(fold_text(title))
        return f"its title {_short(title)} has the blocked word {found.group(0)!r}"
    return {
        "blocked item": "it is in blocked_items",
        "blocked brand": "its brand is in blocked_brands",
        "category": "its category is excluded (or not included)",
        "price": f"its price is outside [{config.price_min}, {config.price_max}] or unknown",
        "out of stock": "it is out of stock and in_stock_only is on",
    }[reason]


def _raise(problems: list[str], where: str) -> None:
    if problems:
        raise ConfigError("; ".join(problems), where=where, fix="Change or remove the settings named above")


def _coerce(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _fits(value: Any, tp: Any) -> bool:
    """Whether ``value`` has the declared type; bools are not numbers, numbers must be finite."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool | np.bool_)
    if tp is int:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float | np.number) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_fits(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items())
    raise TypeError(f"no type check for {tp!r}")


def _describe(tp: Any) -> str:
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join("nothing (None)" if a is type(None) else _describe(a) for a in args)
    if origin is list:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return f"a table of item id (a string) -> {_describe(args[1])}"
    return names[tp]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
