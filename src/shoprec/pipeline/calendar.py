"""Promotion and holiday calendar: dated windows that boost a selection of items.

A shop lists its promotions as ``[[promotion]]`` tables in a TOML file. Each has a window (ISO dates
or datetimes; a date end includes that whole day; UTC unless the value carries an offset or the
table sets ``utc_offset_hours``), a selection of items (external ``items`` ids, ``tags``, and
``categories`` path prefixes that match at level boundaries: "Home" matches "Home > Kitchen" but not
"Home & Garden"), an additive ``boost`` and an ``audience``: "all" shoppers, or the "matching" ones,
whose recent history lies in the promotion's categories.

.. code-block:: toml

    [[promotion]]
    name = "Singles Day"
    start = 2025-11-11
    end = 2025-11-11
    utc_offset_hours = 8
    tags = ["gift"]
    boost = 2.0

    [[promotion]]
    name = "Christmas"
    start = "2025-12-01"
    end = "2025-12-24"
    categories = ["Home & Kitchen > Decor"]
    audience = "matching"

>>> calendar = Calendar.from_toml("promotions.toml")          # doctest: +SKIP
>>> calendar.check(info)                  # doctest: +SKIP  (unknown ids fail here, at startup)
>>> scores += calendar.boosts(context, info, context.now)      # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import numpy as np

from shoprec.errors import ConfigError, ModelError
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext

KEYS = ("name", "start", "end", "items", "tags", "categories", "boost", "audience", "utc_offset_hours")
"""Keys a ``[[promotion]]`` table may have; any other key is an error (most likely a typo)."""
AUDIENCES = ("all", "matching")
MAX_WINDOW = timedelta(days=366)
"""Longest window allowed. A dated promotion running over a year is almost always a wrong year
(``2026-12-24`` for ``2025-12-24``); an always-on boost belongs in a rule, not the calendar."""
RECENT = 50
"""Distinct recent history items that :meth:`Calendar.user_matches` looks at."""
SHOWN = 5
"""Unknown ids, tags or categories named in an error message (the rest are counted)."""
DATE_FIX = "Write a date as YYYY-MM-DD or a datetime as YYYY-MM-DDTHH:MM[:SS], optionally with an offset (+08:00, Z)"


@dataclass(frozen=True)
class Promotion:
    """One promotion: a window, a selection of items, a boost and an audience.

    ``start`` and ``end`` are time-zone aware and both inclusive (a date end has been turned into
    the last microsecond of that day). Build one from a TOML table with :meth:`from_dict`.
    """

    name: str
    start: datetime  # first instant of the window, aware
    end: datetime  # last instant of the window (inclusive), aware
    items: tuple[str, ...] = ()  # external item ids
    tags: tuple[str, ...] = ()  # matched case-insensitively against ItemInfo.tags
    categories: tuple[str, ...] = ()  # category path prefixes, matched level by level, case-insensitively
    boost: float = 1.0  # added to a selected item's score (times the audience match); > 0
    audience: str = "all"  # "all", or "matching": scaled by the user's share of history in these categories

    def __post_init__(self) -> None:
        where = f"promotion '{self.name}'"
        for field_name in ("start", "end"):
            if getattr(self, field_name).tzinfo is None:
                raise ConfigError("needs a time-zone aware datetime", where=f"{where}, {field_name}", fix=DATE_FIX)
        if self.end < self.start:
            raise ConfigError(
                f"ends ({self.end.isoformat()}) before it starts ({self.start.isoformat()})",
                where=f"{where}, end",
                fix="Swap start and end, or check the year",
            )
        if self.end - self.start > MAX_WINDOW:
            raise ConfigError(
                f"runs {(self.end - self.start).days} days, longer than a year",
                where=f"{where}, end",
                fix="Check the years; for an always-on boost use a rule instead of the calendar",
            )
        if not (self.items or self.tags or self.categories):
            raise ConfigError("selects no items", where=where, fix="Give at least one of items, tags or categories")
        if isinstance(self.boost, bool) or not isinstance(self.boost, int | float) or not math.isfinite(self.boost):
            raise ConfigError(f"boost {self.boost!r} is not a finite number", where=f"{where}, boost")
        if self.boost <= 0:
            raise ConfigError(f"boost {self.boost} is not positive", where=f"{where}, boost", fix="Use a boost > 0")
        if self.audience not in AUDIENCES:
            raise ConfigError(
                f"unknown audience {self.audience!r}", where=f"{where}, audience", fix=f"Use one of {AUDIENCES}"
            )

    @classmethod
    def from_dict(cls, table: dict) -> Promotion:
        """A promotion from one parsed ``[[promotion]]`` table (strings, TOML dates or datetimes)."""
        name = table.get("name")
        where = _label(name)
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            hints = [
                f"'{k}' (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(k, KEYS, 1)) else f"'{k}'"
                for k in unknown
            ]
            raise ConfigError(f"unknown keys {', '.join(hints)}", where=where, fix=f"Allowed keys: {', '.join(KEYS)}")
        for key in ("name", "start", "end"):
            if key not in table:
                raise ConfigError(f"'{key}' is missing", where=where, fix=f"Add {key} = ... to the table")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"name {name!r} is not a non-empty string", where=f"{where}, name")
        offset, explicit = _offset(table.get("utc_offset_hours"), f"{where}, utc_offset_hours")
        return cls(
            name=name.strip(),
            start=_instant(table["start"], end=False, offset=offset, explicit=explicit, where=f"{where}, start"),
            end=_instant(table["end"], end=True, offset=offset, explicit=explicit, where=f"{where}, end"),
            items=_strings(table.get("items", ()), f"{where}, items"),
            tags=_strings(table.get("tags", ()), f"{where}, tags"),
            categories=_strings(table.get("categories", ()), f"{where}, categories"),
            boost=table.get("boost", 1.0),
            audience=table.get("audience", "all"),
        )

    def is_active(self, now: int | float | datetime) -> bool:
        """Whether ``now`` (unix seconds, or a datetime; naive means UTC) falls in the window."""
        return self.start <= moment(now) <= self.end


@dataclass
class Feed:
    """The active promotions' items for one user, best first."""

    items: np.ndarray  # (k,) int64 item indices
    scores: np.ndarray  # (k,) float32: the personal score (or popularity) they were ranked by
    promotion: np.ndarray  # (k,) object: name of the promotion giving each item its largest boost
    out_of_stock: int = 0  # promoted items left out because the catalog says they are out of stock


@dataclass
class _Index:
    """Lookups over one ItemInfo, built once: id -> index, tag -> items, category levels."""

    info: ItemInfo
    position: dict[str, int]
    tag_items: dict[str, np.ndarray]
    categories: list[tuple[str, ...]]  # unique category paths split into casefolded levels
    inverse: np.ndarray  # (n_items,) index into categories

    @classmethod
    def build(cls, info: ItemInfo) -> _Index:
        tag_lists: dict[str, list[int]] = {}
        for i, tags in enumerate(info.tags):
            for tag in {t.casefold() for t in tags}:
                tag_lists.setdefault(tag, []).append(i)
        unique, inverse = np.unique(info.category.astype(str), return_inverse=True)
        return cls(
            info,
            {str(item): i for i, item in enumerate(info.item_id.tolist())},
            {tag: np.asarray(items, dtype=np.int64) for tag, items in tag_lists.items()},
            [_levels(c) for c in unique.tolist()],
            inverse.ravel(),
        )


class Calendar:
    """Promotions by name; answers which are active and what they add to a user's scores."""

    def __init__(self, promotions: Iterable[Promotion] = ()) -> None:
        self.promotions: list[Promotion] = []
        seen: dict[str, int] = {}
        for i, promotion in enumerate(promotions):
            if promotion.name in seen:
                raise ConfigError(
                    f"name is already used by promotion #{seen[promotion.name] + 1}",
                    where=f"promotion '{promotion.name}' (#{i + 1}), name",
                    fix="Give every promotion its own name",
                )
            seen[promotion.name] = i
            self.promotions.append(promotion)
        self._index: _Index | None = None
        self._selected: dict[str, np.ndarray] = {}
        self._audience: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.promotions)

    def __iter__(self):
        return iter(self.promotions)

    @classmethod
    def from_dicts(cls, tables: Sequence[dict], source: str = "calendar") -> Calendar:
        """A calendar from parsed ``[[promotion]]`` tables; errors name ``source`` and the table."""
        promotions = []
        for i, table in enumerate(tables):
            if not isinstance(table, dict):
                raise ConfigError(f"promotion #{i + 1} is a {type(table).__name__}, not a table", where=source)
            try:
                promotions.append(Promotion.from_dict(table))
            except ConfigError as error:
                label = _label(table.get("name"))
                where = f"{source}: {label} (#{i + 1}){(error.where or label).removeprefix(label)}"
                raise ConfigError(error.problem, where=where, fix=error.fix) from None
        try:
            return cls(promotions)
        except ConfigError as error:
            raise ConfigError(error.problem, where=f"{source}: {error.where}", fix=error.fix) from None

    @classmethod
    def from_toml(cls, path: str | Path) -> Calendar:
        """A calendar from a TOML file of ``[[promotion]]`` tables (no tables: an empty calendar)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("file not found", where=str(path), fix="Check the path to the calendar") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"not valid TOML ({error})", where=str(path)) from None
        unknown = sorted(set(data) - {"promotion"})
        if unknown:
            raise ConfigError(
                f"unknown top-level keys {unknown}", where=str(path), fix="List promotions as [[promotion]] tables"
            )
        tables = data.get("promotion", [])
        if not isinstance(tables, list):
            raise ConfigError("'promotion' must be [[promotion]] tables", where=str(path))
        return cls.from_dicts(tables, source=path.name)

    def active(self, now: int | float | datetime) -> list[Promotion]:
        """Promotions whose window contains ``now``, in calendar order."""
        when = moment(now)
        return [p for p in self.promotions if p.start <= when <= p.end]

    def check(self, info: ItemInfo) -> None:
        """Raise :class:`ConfigError` now for any promotion naming ids, tags or categories the catalog
        lacks, rather than at the first request that falls in its window."""
        for promotion in self.promotions:
            self.items_for(promotion, info)

    def items_for(self, promotion: Promotion, info: ItemInfo) -> np.ndarray:
        """Sorted item indices the promotion selects: its ids, plus items with one of its tags or
        under one of its category prefixes. Unknown ids, tags or prefixes raise ConfigError."""
        index = self._index_for(info)
        if promotion.name not in self._selected:
            where = f"promotion '{promotion.name}'"
            mask = np.zeros(info.n_items, dtype=bool)
            missing = [i for i in promotion.items if i not in index.position]
            _fail_unknown(missing, len(promotion.items), "item ids are not in the catalog", f"{where}, items")
            mask[[index.position[i] for i in promotion.items]] = True
            missing = [t for t in promotion.tags if t.casefold() not in index.tag_items]
            _fail_unknown(missing, len(promotion.tags), "tags are on no item", f"{where}, tags")
            for tag in promotion.tags:
                mask[index.tag_items[tag.casefold()]] = True
            prefixes = [_levels(c) for c in promotion.categories]
            under = np.array([[path[: len(p)] == p for p in prefixes] for path in index.categories], dtype=bool)
            under = under.reshape(len(index.categories), len(prefixes))  # (n_categories, n_prefixes)
            missing = [c for c, hit in zip(promotion.categories, under.any(axis=0), strict=True) if not hit]
            _fail_unknown(missing, len(prefixes), "categories match no item", f"{where}, categories")
            mask |= under.any(axis=1)[index.inverse]
            self._selected[promotion.name] = np.flatnonzero(mask)
        return self._selected[promotion.name]

    def user_matches(self, promotion: Promotion, context: UserContext, info: ItemInfo) -> float:
        """How far the user belongs to the promotion's audience, in [0, 1].

        1.0 for audience "all". For "matching": the share of the user's last :data:`RECENT`
        distinct items that the promotion selects or that sit in the same category as an item it
        selects (someone who browses mugs matches a promotion on Christmas mugs); 0.0 with no history.
        """
        if promotion.audience == "all":
            return 1.0
        self._index_for(info)
        recent = context.recent(RECENT)
        if len(recent) == 0:
            return 0.0
        if promotion.name not in self._audience:
            selected = self.items_for(promotion, info)
            categories = np.unique(info.category[selected].astype(str))
            mask = np.isin(info.category.astype(str), categories[categories != ""])
            mask[selected] = True
            self._audience[promotion.name] = mask
        return float(self._audience[promotion.name][recent].mean())

    def boosts(self, context: UserContext, info: ItemInfo, now: int | float | datetime) -> np.ndarray:
        """(n_items,) float32 to add to this user's scores: per item, the sum over active promotions
        selecting it of ``boost * user_matches``; zero elsewhere."""
        return self._weights(context, info, now)[0]

    def feed(
        self,
        context: UserContext,
        info: ItemInfo,
        now: int | float | datetime,
        k: int,
        scores: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
    ) -> Feed:
        """Up to ``k`` items of the promotions active at ``now`` for this user, best first.

        Items are those with a positive :meth:`boosts` entry (so a "matching" promotion shows
        nothing to a user outside its audience), ranked by the user's personal ``scores`` (n_items,)
        when given, else by item ``popularity`` (n_items,); ties and NaN scores fall back to the
        larger boost. Out-of-stock items are left out and counted in :attr:`Feed.out_of_stock`.
        """
        key = scores if scores is not None else popularity
        if key is None:
            raise ModelError("feed needs personal scores or item popularity to rank promoted items; pass one")
        key = np.asarray(key, dtype=np.float64)
        if key.shape != (info.n_items,):
            raise ModelError(f"feed scores have shape {key.shape}; expected ({info.n_items},), one per item")
        if k < 1:
            raise ModelError(f"feed k={k}: ask for at least 1 item")
        boost, best, names = self._weights(context, info, now)
        promoted = np.flatnonzero(boost > 0)
        stocked = info.in_stock[promoted]
        promoted = promoted[stocked]
        ranked = np.nan_to_num(key[promoted], nan=-np.inf)
        order = np.lexsort((promoted, -boost[promoted], -ranked))[:k]  # score, then boost, then index
        chosen = promoted[order]
        return Feed(chosen, key[chosen].astype(np.float32), names[best[chosen]], int((~stocked).sum()))

    def _weights(
        self, context: UserContext, info: ItemInfo, now: int | float | datetime
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boost vector, index of the largest contributing active promotion per item, their names."""
        active = self.active(now)
        boost = np.zeros(info.n_items, dtype=np.float32)
        largest = np.zeros(info.n_items, dtype=np.float32)
        best = np.zeros(info.n_items, dtype=np.int64)
        for j, promotion in enumerate(active):
            weight = promotion.boost * self.user_matches(promotion, context, info)
            if weight <= 0:
                continue
            selected = self.items_for(promotion, info)
            boost[selected] += weight
            better = selected[weight > largest[selected]]
            largest[better], best[better] = weight, j
        return boost, best, np.array([p.name for p in active] or [""], dtype=object)

    def _index_for(self, info: ItemInfo) -> _Index:
        if self._index is None or self._index.info is not info:
            self._index, self._selected, self._audience = _Index.build(info), {}, {}
        return self._index


def moment(now: int | float | np.integer | np.floating | datetime) -> datetime:
    """An aware datetime from unix seconds or a datetime (a naive datetime is taken as UTC)."""
    if isinstance(now, datetime):
        return now if now.tzinfo else now.replace(tzinfo=UTC)
    if isinstance(now, int | float | np.integer | np.floating) and not isinstance(now, bool):
        return datetime.fromtimestamp(float(now), tz=UTC)
    raise ModelError(f"time {now!r} is neither unix seconds nor a datetime")


def _label(name: object) -> str:
    """How errors name a promotion: by its name when it has one."""
    return f"promotion '{name.strip()}'" if isinstance(name, str) and name.strip() else "promotion"


def _levels(path: str) -> tuple[str, ...]:
    """ "Home & Kitchen > Decor" -> ("home & kitchen", "decor"); "" -> ()."""
    return tuple(level.strip().casefold() for level in path.split(">")) if path.strip() else ()


def _offset(value: object, where: str) -> tuple[timezone, bool]:
    """The table's ``utc_offset_hours`` as a timezone, and whether it was given."""
    if value is None:
        return UTC, False
    if isinstance(value, bool) or not isinstance(value, int | float) or not -14 <= value <= 14:
        raise ConfigError(f"{value!r} is not an offset in hours between -14 and 14", where=where, fix="e.g. 8 or -5")
    return timezone(timedelta(hours=value)), True


def _instant(value: object, *, end: bool, offset: timezone, explicit: bool, where: str) -> datetime:
    """A start or end as an aware datetime; a date end becomes the last instant of that day."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text)
        except ValueError:
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise ConfigError(f"{text!r} is not an ISO date or datetime", where=where, fix=DATE_FIX) from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=offset)
        if explicit and value.utcoffset() != offset.utcoffset(None):
            raise ConfigError(
                f"{value.isoformat()} carries an offset other than utc_offset_hours",
                where=where,
                fix="Drop one of the two offsets",
            )
        return value
    if isinstance(value, date):
        return datetime.combine(value, time.max if end else time.min, tzinfo=offset)
    raise ConfigError(f"{value!r} is not a date or datetime", where=where, fix=DATE_FIX)


def _strings(value: object, where: str) -> tuple[str, ...]:
    """A list of non-empty strings (a single string is a list of one)."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ConfigError(f"{value!r} is not a list of non-empty strings", where=where, fix='e.g. ["a", "b"]')
    return tuple(v.strip() for v in values)


def _fail_unknown(missing: list[str], total: int, what: str, where: str) -> None:
    if missing:
        shown = ", ".join(repr(m) for m in missing[:SHOWN]) + (
            f" and {len(missing) - SHOWN} more" if len(missing) > SHOWN else ""
        )
        raise ConfigError(
            f"{len(missing)} of {total} {what}: {shown}",
            where=where,
            fix="Fix the typo or remove them from the promotion",
        )
