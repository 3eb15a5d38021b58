"""Planted basket structure: complementary items bought together, and consumables bought again.

Complement groups are the ground truth a bundle or "frequently bought together" model must find:
2-4 items from different leaf categories (a camera, a memory card and a camera bag). Whenever one
member is bought, each other member joins the same order with probability :data:`COMPLEMENT_P`.
Repeat purchases make repeat-aware evaluation differ from discovery.
"""

from __future__ import annotations

import numpy as np

from shoprec.data.demo.behaviour import CART, PURCHASE, VIEW, Events, consumable_mask
from shoprec.data.demo.catalog import Catalog
from shoprec.data.demo.phrases import COMPLEMENTS
from shoprec.data.demo.words import LEAVES
from shoprec.timeunits import DAY

COMPLEMENT_P = 0.6
"""Chance that each other member of a group joins an order holding one member."""
REPEAT_P = 0.3
"""Chance that a consumable is bought again (each repeat may repeat again, up to three times)."""
REPEAT_GAP_DAYS = 28.0
"""Mean days between repeat purchases of a consumable."""


def n_complement_groups(n_items: int) -> int:
    """About one group per 30 items: 100 for the default 3,000-item shop, at least 5."""
    return int(np.clip(round(n_items / 30), 5, 150))


def plan_complements(rng: np.random.Generator, catalog: Catalog, n_groups: int, start: int) -> list[list[int]]:
    """Pick groups of 2-4 items from distinct leaves of one :data:`COMPLEMENTS` set.

    Members are launched before the period (so they can be bought together from day one), are
    drawn by popularity (so the group is bought often enough to be seen) and belong to one group only.
    """
    leaf_of = {leaf.name: i for i, leaf in enumerate(LEAVES)}
    free = catalog.created < start
    templates = rng.permutation(len(COMPLEMENTS))
    groups = []
    for g in range(n_groups):
        template = COMPLEMENTS[templates[g % len(templates)]]
        size = int(rng.integers(2, len(template) + 1))
        names = rng.choice(len(template), size, replace=False)
        members = []
        for name in names:
            candidates = np.flatnonzero((catalog.leaf == leaf_of[template[name]]) & free)
            if len(candidates) == 0:
                break
            weight = catalog.weight[candidates]
            members.append(int(rng.choice(candidates, p=weight / weight.sum())))
        if len(members) == size:
            free[members] = False
            groups.append(members)
    return groups


def add_complements(rng: np.random.Generator, events: Events, groups: list[list[int]], n_items: int) -> Events:
    """For each purchase of a group member, add the other members to the same order (view, cart, purchase)."""
    pairs = np.array([(a, b) for g in groups for a in g for b in g if a != b], dtype=np.int64).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    partner = pairs[order, 1]
    indptr = np.r_[0, np.cumsum(np.bincount(pairs[:, 0], minlength=n_items))]
    buys = events.take(events.event == PURCHASE)
    count = indptr[buys.item + 1] - indptr[buys.item]
    rep = np.repeat(np.arange(len(buys)), count)  # one row per (purchase, partner)
    within = np.arange(len(rep)) - np.repeat(np.cumsum(count) - count, count)
    item = partner[indptr[buys.item[rep]] + within]
    keep = rng.random(len(rep)) < COMPLEMENT_P
    base, item = buys.take(rep[keep]), item[keep]
    ones = np.ones(len(item), dtype=np.int64)
    view = Events(base.user, item, ones * VIEW, base.time - rng.uniform(120, 400, len(item)), base.session, ones)
    cart = Events(base.user, item, ones * CART, base.time - rng.uniform(20, 110, len(item)), base.session, ones)
    buy = Events(base.user, item, ones * PURCHASE, base.time, base.session, ones)
    return Events.concat([events, view, cart, buy])


def drop_rebuys(events: Events, catalog: Catalog) -> Events:
    """Keep one purchase per item and order, and only the first purchase of a durable item per shopper.

    Nobody buys the same tent twice; consumables are bought again (in later orders only).
    """
    buy = np.flatnonzero(events.event == PURCHASE)
    item, n = events.item[buy], len(catalog)
    per_order = events.session[buy] * n + item
    per_user = -(events.user[buy] * n + item) - 1  # negative: never equal to a per-order key
    key = np.where(consumable_mask(catalog)[item], per_order, per_user)
    order = np.lexsort((events.time[buy], key))
    repeated = np.r_[False, key[order][1:] == key[order][:-1]]
    keep = np.ones(len(events), dtype=bool)
    keep[buy[order[repeated]]] = False
    return events.take(keep)


def add_repeats(rng: np.random.Generator, events: Events, catalog: Catalog, end: int) -> Events:
    """Re-orders of consumables in new one-item sessions, weeks after the previous purchase."""
    consumable = consumable_mask(catalog)
    candidates = events.take((events.event == PURCHASE) & consumable[events.item])
    next_session = int(events.session.max()) + 1
    parts = [events]
    for _ in range(3):
        again = candidates.take(rng.random(len(candidates)) < REPEAT_P)
        when = again.time + rng.gamma(3.0, REPEAT_GAP_DAYS / 3.0 * DAY, len(again))
        again = again.take(when < end - 3600)
        when = when[when < end - 3600]
        session = next_session + np.arange(len(again))
        next_session += len(again)
        ones = np.ones(len(again), dtype=np.int64)
        view = Events(again.user, again.item, ones * VIEW, when - rng.uniform(60, 240, len(again)), session, ones)
        cart = Events(again.user, again.item, ones * CART, when - rng.uniform(10, 50, len(again)), session, ones)
        candidates = Events(again.user, again.item, ones * PURCHASE, when, session, again.quantity)
        parts += [view, cart, candidates]
    return Events.concat(parts)
