"""Merchandising for search, configured in TOML: synonyms, and per-query pins, boosts, buries and blocks.

```toml
[synonyms]
two_way = [["sofa", "couch"], ["手机", "mobile phone", "cell phone"]]   # each word finds the others
one_way = { "tee" = ["t-shirt"], "laptop" = ["notebook"] }             # the key also finds these

[queries."coffee mug"]           # the normalised query: folded, punctuation dropped, words single-spaced
pinned = { "P00012" = 0 }        # item id -> 0-based slot
boosted = { "P00013" = 0.5 }     # item id -> lift in units of the candidates' score spread (>= 0)
buried = { "P00014" = 0.5 }      # item id -> drop in the same units (>= 0)
blocked = ["P00015"]             # never shown for this query
```

**Synonyms** widen lexical retrieval: a word (or phrase) of the query that a group or a one-way
entry names adds the other phrases' terms to the BM25 query (the words the shopper typed still
count). Words read as constraints are expanded too ("mobile phone" may also be the category
``Phones``) but the expansion adds no constraint; a query of constraints only browses and is not
expanded. They are matched on index terms (stemmed English,
segmented Chinese), so ``sofas`` finds the group of ``sofa``.

**Per-query rules** are keyed by the normalised query as typed (:func:`normalise`), else as
spelling-corrected. Pins, boosts and blocks go through the feeds' business rules
(:class:`shoprec.pipeline.rules.Rules` with a :class:`~shoprec.pipeline.rules_config.RulesConfig` of
``pinned``, ``promoted`` and ``blocked_items``), so they mean exactly what they mean in a feed: a
boost adds ``value x spread`` (best minus worst fused score) to the item's score, a pin is placed at
its slot of the whole ordering (paging included) even when no source proposed it, a blocked item is
never shown. Buries are the same additive move downwards (the feeds' rules have no negative
boost), applied before the rules run. A pinned item that the query's constraints or the caller's
mask rule out is not shown (counted in the notes): pins never break a constraint.

Validation, as for the feeds' rules: unknown keys, wrong types and negative values are a
:class:`~shoprec.errors.ConfigError` when the file loads; item ids the catalogue does not know
(in any of the four lists) are one when the configuration is bound to an engine
(:meth:`Merchandising.validate`).

>>> merch = Merchandising.from_toml("search.toml")                   # doctest: +SKIP
>>> engine = SearchEngine.from_dataset(dataset, merch=merch)          # doctest: +SKIP
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.errors import ConfigError
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.rules import Rules, RulesConfig
from shoprec.search.products import ProductTable
from shoprec.search.tokenize import tokenize, words

RULE_KEYS = ("pinned", "boosted", "buried", "blocked")
SYNONYM_KEYS = ("two_way", "one_way")


def normalise(query: str) -> str:
    """The key a per-query rule is looked up by: folded words (jieba words for Chinese), single-spaced."""
    return " ".join(words(str(query)))


@dataclass
class QueryRule:
    """What the shop wants for one query (item ids are external ids)."""

    pinned: dict[str, int] = field(default_factory=dict)
    boosted: dict[str, float] = field(default_factory=dict)
    buried: dict[str, float] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)

    def items(self) -> list[str]:
        return [*self.pinned, *self.boosted, *self.buried, *self.blocked]


@dataclass(frozen=True)
class Arranged:
    """The ordering the rules made: table positions best first, their (boosted) scores, notes."""

    positions: np.ndarray
    score: np.ndarray
    pinned: dict[int, int]  # table position -> slot
    moved: np.ndarray  # table positions of the boosted and buried items
    notes: list[str]


class Synonyms:
    """Two-way groups and one-way expansions, matched on index terms."""

    def __init__(self, two_way: Sequence[Sequence[str]] = (), one_way: dict[str, Sequence[str]] | None = None) -> None:
        self.expansions: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        self.surface: dict[tuple[str, ...], str] = {}
        for group in two_way:
            keys = [self._key(p) for p in group]
            for key in keys:
                self._add(key, [k for k in keys if k != key])
        for phrase, targets in (one_way or {}).items():
            self._add(self._key(phrase), [self._key(t) for t in targets])
        self.longest = max((len(k) for k in self.expansions), default=0)

    def _key(self, phrase: str) -> tuple[str, ...]:
        key = tuple(tokenize(phrase))
        if key:
            self.surface.setdefault(key, " ".join(words(phrase)))
        return key

    def _add(self, key: tuple[str, ...], targets: list[tuple[str, ...]]) -> None:
        if key:
            found = self.expansions.setdefault(key, [])
            found.extend(t for t in targets if t and t not in found and t != key)

    def expand(self, terms: Sequence[str]) -> list[tuple[str, str, tuple[str, ...]]]:
        """``(typed phrase, added phrase, added terms)`` for each synonym of ``terms`` (longest first)."""
        out: list[tuple[str, str, tuple[str, ...]]] = []
        i = 0
        while i < len(terms):
            for width in range(min(self.longest, len(terms) - i), 0, -1):
                key = tuple(terms[i : i + width])
                if key in self.expansions:
                    out += [(self.surface[key], self.surface[t], t) for t in self.expansions[key]]
                    i += width
                    break
            else:
                i += 1
        return out


class Merchandising:
    """Synonyms and per-query rules (module docstring); bind to a catalogue with :meth:`validate`."""

    def __init__(self, synonyms: Synonyms | None = None, rules: dict[str, QueryRule] | None = None) -> None:
        self.synonyms = synonyms or Synonyms()
        self.rules = {normalise(k): v for k, v in (rules or {}).items()}
        self._info: tuple[tuple[int, int, int], ItemInfo] | None = None
        self._compiled: dict[tuple[str, tuple[int, int, int], tuple[tuple[str, int], ...]], Rules] = {}

    @classmethod
    def from_toml(cls, path: str | Path) -> Merchandising:
        """Read a merchandising file (module docstring); a problem is a :class:`ConfigError` naming it."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                "file not found", where=str(path), fix="Check the path to the merchandising file"
            ) from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"not valid TOML ({error})", where=str(path)) from None
        return cls.from_dict(data, where=path.name)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "merchandising") -> Merchandising:
        _known(data, ("synonyms", "queries"), where)
        syn = data.get("synonyms", {})
        _known(syn, SYNONYM_KEYS, f"{where}: synonyms")
        two_way = syn.get("two_way", [])
        if not isinstance(two_way, list) or not all(_strings(g) and len(g) >= 2 for g in two_way):
            raise ConfigError(
                "two_way must be a list of groups, each a list of two or more words",
                where=f"{where}: synonyms.two_way",
                fix='Write e.g. two_way = [["sofa", "couch"]]',
            )
        one_way = syn.get("one_way", {})
        if not isinstance(one_way, dict) or not all(_strings(v) and v for v in one_way.values()):
            raise ConfigError(
                "one_way must map a word to a list of words",
                where=f"{where}: synonyms.one_way",
                fix='Write e.g. one_way = { "tee" = ["t-shirt"] }',
            )
        queries = data.get("queries", {})
        if not isinstance(queries, dict):
            raise ConfigError("queries must be tables keyed by the query", where=f"{where}: queries")
        rules = {}
        for query, table in queries.items():
            if not normalise(query):
                raise ConfigError("a query with no words", where=f"{where}: queries.{query!r}")
            rules[query] = _rule(table, f"{where}: queries.{query!r}")
        return cls(Synonyms(two_way, one_way), rules)

    def validate(self, table: ProductTable, where: str = "merchandising") -> list[str]:
        """Check every rule against the catalogue of ``table`` (unknown item ids, pins a block hides,
        a slot given twice: :class:`ConfigError`); returns the feeds' rules' warnings."""
        unknown = sorted({i for rule in self.rules.values() for i in rule.items() if table.position(i) < 0})
        if unknown:
            shown = ", ".join(repr(i) for i in unknown[:5]) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            raise ConfigError(
                f"item ids not in the catalogue: {shown}", where=where, fix="Use ids of live catalogue items"
            )
        warnings = []
        for key, rule in self.rules.items():
            warnings += self._rules(
                key, rule, table, tuple(sorted(rule.pinned.items())), f"{where}: queries.{key!r}"
            ).warnings
        return warnings

    def rule_for(self, *queries: str) -> str | None:
        """The key of the first of ``queries`` that has a rule (normalised), else None."""
        for query in queries:
            key = normalise(query)
            if key in self.rules:
                return key
        return None

    def arrange(
        self, key: str, table: ProductTable, positions: np.ndarray, score: np.ndarray, allowed: np.ndarray
    ) -> Arranged:
        """Apply the rule ``key`` to the candidates ``positions`` with ``score``; ``allowed`` (bool over
        table positions) decides which pins may be shown."""
        rule = self.rules[key]
        pins = tuple(sorted((i, s) for i, s in rule.pinned.items() if _shown(table.position(i), allowed)))
        notes = []
        if len(pins) < len(rule.pinned):
            hidden = len(rule.pinned) - len(pins)
            notes.append(f"{hidden} of {len(rule.pinned)} pinned items not shown: outside the query's constraints")
        rules = self._rules(key, rule, table, pins, f"merchandising: queries.{key!r}")
        score = np.asarray(score, dtype=np.float64).copy()
        if rule.buried:
            spread = _spread(score)
            for item, value in rule.buried.items():
                score[positions == table.position(item)] -= value * spread
            moved = int(np.isin(positions, [table.position(i) for i in rule.buried]).sum())
            notes.append(f"buried {moved} items (units of the score spread {spread:.4g})")
        order = np.lexsort((positions, -score))
        positions, score = np.asarray(positions, dtype=np.int64)[order], score[order]
        n = len(positions)
        candidates = Candidates(
            positions,
            ("search",),
            score[:, None].astype(np.float32),
            np.arange(n, dtype=np.int32)[:, None],
            score.astype(np.float32),
        )
        empty = np.zeros(0, dtype=np.int64)
        out = rules.apply(candidates, UserContext(-1, empty, empty, 0), k=n + len(pins))
        pinned = {table.position(i): s for i, s in pins}
        moved = np.asarray([table.position(i) for i in [*rule.boosted, *rule.buried]], dtype=np.int64)
        return Arranged(out.items, out.score.astype(np.float64), pinned, moved, notes + list(out.notes))

    def _rules(
        self, key: str, rule: QueryRule, table: ProductTable, pins: tuple[tuple[str, int], ...], where: str
    ) -> Rules:
        cache_key = (key, _stamp(table), pins)
        if cache_key not in self._compiled:
            config = RulesConfig.from_dict(
                {"pinned": dict(pins), "promoted": dict(rule.boosted), "blocked_items": list(rule.blocked)}, where=where
            )
            self._compiled[cache_key] = Rules(config, self._item_info(table), where=where)
        return self._compiled[cache_key]

    def _item_info(self, table: ProductTable) -> ItemInfo:
        """The feeds' per-item facts for the table's positions (what the rules read)."""
        if self._info is None or self._info[0] != _stamp(table):
            n = len(table)
            products = table.products
            category = np.array([p.category for p in products], dtype=object)
            info = ItemInfo(
                item_id=np.array([p.item_id for p in products], dtype=object),
                title=np.array([p.title for p in products], dtype=object),
                category=category,
                top=np.array([c.split(" > ")[0].strip() if c else "" for c in category], dtype=object),
                brand=np.array([p.brand for p in products], dtype=object),
                price=table.price.copy(),
                created=np.full(n, -1, dtype=np.int64),
                language=np.full(n, "", dtype=object),
                in_stock=np.ones(n, dtype=bool),
                tags=[[] for _ in range(n)],
            )
            self._info = (_stamp(table), info)
            self._compiled.clear()
        return self._info[1]


def _stamp(table: ProductTable) -> tuple[int, int, int]:
    """Which table, in which state: one configuration may serve several engines (and tables)."""
    return (id(table), table.version, len(table))


def _shown(position: int, allowed: np.ndarray) -> bool:
    return 0 <= position < len(allowed) and bool(allowed[position])


def _spread(score: np.ndarray) -> float:
    """Best minus worst finite score, 1 when they are all equal (the feeds' rules' unit for boosts)."""
    finite = score[np.isfinite(score)]
    spread = float(finite.max() - finite.min()) if len(finite) else 0.0
    return spread if spread > 0 else 1.0


def _known(data: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"expected a table, got {type(data).__name__}", where=where)
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ConfigError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(repr(k) for k in unknown)}",
            where=where,
            fix=f"Valid keys: {', '.join(keys)}",
        )


def _strings(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) and v.strip() for v in values)


def _rule(table: Any, where: str) -> QueryRule:
    _known(table, RULE_KEYS, where)
    rule = QueryRule(
        pinned=table.get("pinned", {}),
        boosted=table.get("boosted", {}),
        buried=table.get("buried", {}),
        blocked=table.get("blocked", []),
    )
    problems = []
    if not isinstance(rule.pinned, dict) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in rule.pinned.values()
    ):
        problems.append("pinned: expected a table of item id -> slot (a whole number >= 0)")
    for name in ("boosted", "buried"):
        values = getattr(rule, name)
        if not isinstance(values, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            for v in values.values()
        ):
            problems.append(f"{name}: expected a table of item id -> a finite number >= 0 (units of the score spread)")
    if not _strings(rule.blocked) and rule.blocked != []:
        problems.append("blocked: expected a list of item ids")
    if not problems:
        both = set(rule.pinned) & set(rule.blocked)
        if both:
            problems.append(f"items both pinned and blocked: {sorted(both)}")
        both = set(rule.boosted) & set(rule.buried)
        if both:
            problems.append(f"items both boosted and buried: {sorted(both)}")
    if problems:
        raise ConfigError("; ".join(problems), where=where, fix="Change or remove the settings named above")
    rule.boosted = {k: float(v) for k, v in rule.boosted.items()}
    rule.buried = {k: float(v) for k, v in rule.buried.items()}
    return rule
