"""Browsing sessions of the demo shop: when shoppers visit, what they view, and the funnel.

A session is a run of views that mostly stays within one leaf category (a sequence model has
something to learn), drawn from the shopper's tastes, price band and language; items within a
leaf follow a long-tailed popularity. Views turn into clicks, clicks into carts, carts into
purchases, each step rarer. Everything is vectorised over all sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from shoprec.data.demo.catalog import Catalog
from shoprec.data.demo.users import Users
from shoprec.data.demo.words import LEAVES
from shoprec.timeunits import DAY

VIEW, CLICK, CART, PURCHASE = 0, 1, 2, 3
EVENT_NAMES = np.array(["view", "click", "cart", "purchase"], dtype=object)
STICKINESS = 0.75
"""Chance that the next view stays in the current leaf category."""
MEAN_VIEWS = 6.0
"""Mean views per session (geometric, so most sessions are short)."""
SEARCH_SHARE = 0.3
"""Sessions that start with a search query."""
WEEKDAY = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.35, 1.3])
"""Relative traffic Monday..Sunday."""
HOURS = np.array([3, 2, 1, 1, 1, 2, 4, 6, 8, 9, 10, 11, 13, 12, 10, 10, 11, 12, 14, 17, 19, 18, 13, 7], float)
"""Relative traffic per hour of the day (UTC): a lunch bump and an evening peak."""
BAND_AFFINITY = np.array([[3.0, 1.0, 0.3], [1.0, 2.0, 1.0], [0.3, 1.0, 3.0]])
"""Shopper band (row) x item band (column): how much more likely an item of that band is viewed."""
LANG_AFFINITY = np.array([[1.0, 0.5], [1.0, 3.0]])
"""Shopper language (row: en, zh) x item language (column)."""


@dataclass
class Events:
    """Aligned event arrays; ``session`` is an internal session number (orders share it)."""

    user: np.ndarray  # (n,) int64
    item: np.ndarray  # (n,) int64
    event: np.ndarray  # (n,) int64, VIEW..PURCHASE
    time: np.ndarray  # (n,) float64, unix seconds
    session: np.ndarray  # (n,) int64
    quantity: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.user)

    def take(self, mask: np.ndarray) -> Events:
        return Events(*(getattr(self, f.name)[mask] for f in fields(self)))

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        return Events(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Events)))


@dataclass
class Sessions:
    """Per-session facts the logs need: who, when, the first item viewed, whether it began with a search."""

    user: np.ndarray  # (S,) int64
    start: np.ndarray  # (S,) float64
    first_item: np.ndarray  # (S,) int64, -1 when the session has no view
    search: np.ndarray  # (S,) bool, began with a query
    search_click: np.ndarray  # (S,) bool, the query's result was clicked (the first item)


def sample_times(rng: np.random.Generator, n: int, start: int, days: int) -> np.ndarray:
    """Visit times with a weekly rhythm, an hour-of-day rhythm and a shop that grows over the period."""
    day = np.arange(days)
    weekday = (start // DAY + day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    weights = WEEKDAY[weekday] * (1.0 + 0.4 * day / days)
    d = rng.choice(days, n, p=weights / weights.sum())
    h = rng.choice(24, n, p=HOURS / HOURS.sum())
    return start + d * float(DAY) + h * 3600.0 + rng.uniform(0, 3600, n)


class ItemSampler:
    """Draws items of a given leaf for a shopper of a given price band and language.

    Items are laid out sorted by leaf; for each of the 6 (band, language) shopper kinds a global
    cumulative weight lets one ``searchsorted`` draw from any leaf segment.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.order = np.argsort(catalog.leaf, kind="stable")
        leaf_sorted = catalog.leaf[self.order]
        n_leaves = int(catalog.leaf.max()) + 1
        self.bounds = np.searchsorted(leaf_sorted, np.arange(n_leaves + 1))  # (n_leaves + 1,)
        band, zh = catalog.band[self.order], catalog.zh[self.order].astype(int)
        base = catalog.weight[self.order]
        kinds = [(b, lang) for b in range(3) for lang in range(2)]
        w = np.stack([base * BAND_AFFINITY[b, band] * LANG_AFFINITY[lang, zh] for b, lang in kinds])  # (6, n)
        self.cum = np.concatenate([np.zeros((6, 1)), np.cumsum(w, axis=1)], axis=1)  # (6, n + 1)
        self.created = catalog.created[self.order]

    def sample(self, rng: np.random.Generator, leaf: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """One item index per (leaf, shopper kind ``band * 2 + zh``)."""
        lo, hi = self.bounds[leaf], self.bounds[leaf + 1]
        below, total = self.cum[kind, lo], self.cum[kind, hi] - self.cum[kind, lo]
        target = below + rng.random(len(leaf)) * total
        pos = np.empty(len(leaf), dtype=np.int64)
        for k in range(6):
            sel = kind == k
            pos[sel] = np.searchsorted(self.cum[k], target[sel], side="right") - 1
        return np.clip(pos, lo, hi - 1)

    def sample_available(
        self, rng: np.random.Generator, leaf: np.ndarray, kind: np.ndarray, time: np.ndarray, rounds: int = 12
    ) -> np.ndarray:
        """Like :meth:`sample`, redrawing items not yet launched at ``time``; -1 where every draw failed."""
        pos = self.sample(rng, leaf, kind)
        for _ in range(rounds):
            late = np.flatnonzero(self.created[pos] > time)
            if len(late) == 0:
                break
            pos[late] = self.sample(rng, leaf[late], kind[late])
        out = self.order[pos]
        out[self.created[pos] > time] = -1
        return out


def _leaf_paths(rng: np.random.Generator, pref: np.ndarray, user: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Leaf of every view: a new leaf from the shopper's preferences at a session start or a switch."""
    switch = (pos == 0) | (rng.random(len(pos)) > STICKINESS)
    at = np.flatnonzero(switch)
    cdf = np.cumsum(pref[user[at]], axis=1)  # (n_switches, n_leaves)
    drawn = np.minimum((cdf < rng.random(len(at))[:, None] * cdf[:, -1:]).sum(axis=1), pref.shape[1] - 1)
    last = np.maximum.accumulate(np.where(switch, np.arange(len(pos)), 0))
    leaf = np.zeros(len(pos), dtype=np.int64)
    leaf[at] = drawn
    return leaf[last]


def simulate_browsing(
    rng: np.random.Generator, catalog: Catalog, users: Users, start: int, days: int
) -> tuple[Sessions, Events]:
    """All browsing sessions of the period, sorted by start time, and their view/click/cart/purchase events."""
    n_sessions = 1 + rng.poisson(users.activity * days)
    s_user = np.repeat(np.arange(len(users)), n_sessions)
    s_start = sample_times(rng, len(s_user), start, days)
    order = np.argsort(s_start, kind="stable")
    s_user, s_start = s_user[order], s_start[order]
    n_views = np.minimum(rng.geometric(1.0 / MEAN_VIEWS, len(s_user)), 40)
    v_sess = np.repeat(np.arange(len(s_user)), n_views)
    first = np.repeat(np.cumsum(n_views) - n_views, n_views)
    pos = np.arange(len(v_sess)) - first
    gaps = np.where(pos == 0, 3.0, 8.0 + rng.exponential(45.0, len(v_sess)))
    elapsed = np.cumsum(gaps)
    v_time = s_start[v_sess] + elapsed - elapsed[first] + 3.0
    v_user = s_user[v_sess]
    leaf = _leaf_paths(rng, users.pref, v_user, pos)
    kind = users.band[v_user] * 2 + users.zh[v_user].astype(np.int64)
    v_item = ItemSampler(catalog).sample_available(rng, leaf, kind, v_time)
    search = rng.random(len(s_user)) < SEARCH_SHARE
    search_click = search & (rng.random(len(s_user)) < 0.9)
    views = Events(v_user, v_item, np.full(len(v_sess), VIEW), v_time, v_sess, np.ones(len(v_sess), np.int64))
    forced = (pos == 0) & search_click[v_sess]
    keep = v_item >= 0
    first_item = np.full(len(s_user), -1, dtype=np.int64)
    first_item[v_sess[(pos == 0) & keep]] = v_item[(pos == 0) & keep]
    last_view = np.zeros(len(s_user))
    np.maximum.at(last_view, v_sess, v_time)
    events = _funnel(rng, catalog, users, views.take(keep), forced[keep], last_view)
    sessions = Sessions(s_user, s_start, first_item, search & (first_item >= 0), search_click & (first_item >= 0))
    return sessions, events


def _funnel(
    rng: np.random.Generator, catalog: Catalog, users: Users, views: Events, forced: np.ndarray, last_view: np.ndarray
) -> Events:
    """Clicks, carts and purchases from views; purchases happen together at the session's checkout,
    a few minutes after its last view or cart."""
    n = len(views)
    match = catalog.band[views.item] == users.band[views.user]
    appeal = np.exp(0.25 * catalog.quality[views.item]) * np.where(match, 1.3, 0.8)
    click = forced | (rng.random(n) < 0.24 * appeal)
    cart = click & (rng.random(n) < 0.3 * np.where(match, 1.2, 0.8))
    buy = cart & (rng.random(n) < 0.55)
    clicks, carts, buys = views.take(click), views.take(cart), views.take(buy)
    clicks.event[:], carts.event[:], buys.event[:] = CLICK, CART, PURCHASE
    clicks.time = clicks.time + rng.uniform(2, 20, len(clicks))
    carts.time = carts.time + rng.uniform(25, 120, len(carts))
    checkout = last_view.copy()
    np.maximum.at(checkout, carts.session, carts.time)
    buys.time = (checkout + rng.uniform(60, 300, len(checkout)))[buys.session]
    consumable = consumable_mask(catalog)[buys.item]
    extra = (rng.random(len(buys)) < np.where(consumable, 0.35, 0.05)).astype(np.int64)
    buys.quantity = 1 + extra + (consumable & (rng.random(len(buys)) < 0.1))
    return Events.concat([views, clicks, carts, buys])


def consumable_mask(catalog: Catalog) -> np.ndarray:
    """(n_items,) whether each item is a consumable (bought again and again)."""
    return np.array([leaf.consumable for leaf in LEAVES])[catalog.leaf]
