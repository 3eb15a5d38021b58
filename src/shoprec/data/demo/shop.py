"""Generate the demo shop: a believable small store whose hidden structure is known.

The shop has a category tree with English and Chinese listings (some products listed in both
languages, see :mod:`shoprec.data.demo.twins`), shoppers with planted tastes and price bands,
browsing sessions with a view > click > cart > purchase funnel, orders holding planted
complementary items, repeat purchases of consumables, search queries and reviews. The planted
structure is returned as ``truth`` so tests and demos can check that models find it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shoprec.data.dataset import Dataset
from shoprec.data.demo.baskets import (
    COMPLEMENT_P,
    add_complements,
    add_repeats,
    drop_rebuys,
    n_complement_groups,
    plan_complements,
)
from shoprec.data.demo.behaviour import EVENT_NAMES, PURCHASE, STICKINESS, Events, simulate_browsing
from shoprec.data.demo.catalog import BANDS, NEW_DAYS, Catalog, build_catalog
from shoprec.data.demo.logs import review_log, search_log
from shoprec.data.demo.twins import plant_twins
from shoprec.data.demo.users import Users, build_users
from shoprec.data.demo.words import LEAVES
from shoprec.data.frames import dataset_from_frames
from shoprec.data.io import write_folder
from shoprec.data.report import IngestReport
from shoprec.timeunits import DAY

END = 1_751_241_600
"""The period ends at 2025-06-30 00:00 UTC, fixed so a seed always gives the same shop."""
PRESETS: dict[str, dict[str, int]] = {
    "small": {"n_items": 300, "n_users": 200, "days": 60},
    "default": {"n_items": 3000, "n_users": 2000, "days": 120},
}
"""Named sizes: ``small`` for tests (under a second), ``default`` for the demo."""


@dataclass
class DemoShop:
    """Raw tables with the schema's column names, plus the planted structure in ``truth``."""

    items: pd.DataFrame
    interactions: pd.DataFrame
    reviews: pd.DataFrame
    queries: pd.DataFrame
    truth: dict = field(default_factory=dict)
    """complement_groups (lists of item ids), complement_categories, cross_category leaf pairs,
    user_tastes (user id -> categories, weights, leaves, price_band, language), item_price_band,
    consumable_categories, new_items, twins (``[english_item_id, chinese_item_id]`` pairs: one product
    listed in both languages, see :mod:`shoprec.data.demo.twins`), period and the generation parameters."""

    def frames(self) -> dict[str, pd.DataFrame]:
        return {
            "items": self.items,
            "interactions": self.interactions,
            "reviews": self.reviews,
            "queries": self.queries,
        }

    def to_dataset(self, name: str = "demo-shop", report: IngestReport | None = None) -> Dataset:
        """Validate and index the tables (nothing is dropped: the demo data is clean)."""
        return dataset_from_frames(self.items, self.interactions, self.reviews, self.queries, name=name, report=report)

    def write(self, folder: str | Path, fmt: str = "parquet") -> Path:
        """Write the four tables in ``fmt`` (parquet, csv or jsonl) and ``truth.json`` into ``folder``."""
        path = write_folder(self.frames(), folder, fmt)
        (path / "truth.json").write_text(json.dumps(self.truth, ensure_ascii=False, indent=1))
        return path


def generate_demo_shop(
    seed: int = 7, n_items: int = 3000, n_users: int = 2000, days: int = 120, progress: bool = False
) -> DemoShop:
    """Generate a demo shop; the same arguments always give identical tables.

    The default size (3,000 items, 2,000 shoppers, 120 days) gives about 180k events in about a
    second on two cores; ``PRESETS["small"]`` (about 10k events) is for tests.

    >>> shop = generate_demo_shop(seed=1, **PRESETS["small"])
    >>> shop.to_dataset().n_items
    300
    """
    _check_size(n_items, n_users, days)
    rng = np.random.default_rng(seed)
    start = END - days * DAY
    steps = tqdm(total=5, desc="demo shop", unit="step", disable=not progress)
    steps.set_postfix_str("catalog")
    catalog = build_catalog(rng, n_items, start, END)
    twins = plant_twins(rng.spawn(1)[0], catalog)  # own stream: every other draw stays as it was
    users = build_users(rng, n_users)
    steps.update()
    steps.set_postfix_str("sessions")
    sessions, events = simulate_browsing(rng, catalog, users, start, days)
    steps.update()
    steps.set_postfix_str("baskets")
    groups = plan_complements(rng, catalog, n_complement_groups(n_items), start)
    events = drop_rebuys(add_complements(rng, events, groups, n_items), catalog)
    events = add_repeats(rng, events, catalog, END)
    steps.update()
    steps.set_postfix_str("logs")
    queries = search_log(rng, catalog, users, sessions)
    reviews = review_log(rng, catalog, users, events, END)
    steps.update()
    steps.set_postfix_str("tables")
    shop = DemoShop(
        items=catalog.frame(),
        interactions=events_frame(catalog, users, events),
        reviews=reviews,
        queries=queries,
        truth=_truth(
            catalog, users, groups, twins, {"seed": seed, "n_items": n_items, "n_users": n_users, "days": days}
        ),
    )
    steps.update()
    steps.close()
    return shop


def generate_preset(name: str, seed: int = 7, progress: bool = False) -> DemoShop:
    """Generate one of the :data:`PRESETS` by name (``small`` or ``default``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown demo shop size {name!r}; choose one of {', '.join(PRESETS)}")
    return generate_demo_shop(seed=seed, progress=progress, **PRESETS[name])


def _check_size(n_items: int, n_users: int, days: int) -> None:
    if n_items < 3 * len(LEAVES):
        raise ValueError(f"n_items must be at least {3 * len(LEAVES)} (the shop has {len(LEAVES)} leaf categories)")
    if n_users < 1:
        raise ValueError("n_users must be at least 1")
    if days < 2 * NEW_DAYS:
        raise ValueError(f"days must be at least {2 * NEW_DAYS} (the last {NEW_DAYS} days hold new launches)")


def events_frame(catalog: Catalog, users: Users, events: Events) -> pd.DataFrame:
    """The raw ``interactions`` table, time-ordered.

    Session ids are numbered by start time (``S000001``); purchases carry their order id
    (``O000001``, one order per session with purchases).
    """
    n_sessions = int(events.session.max()) + 1
    began = np.full(n_sessions, np.inf)
    np.minimum.at(began, events.session, events.time)
    session_rank = np.argsort(np.argsort(began, kind="stable"), kind="stable")
    has_order = np.zeros(n_sessions, dtype=bool)
    has_order[events.session[events.event == PURCHASE]] = True
    order_rank = np.cumsum(has_order[np.argsort(began, kind="stable")])[session_rank]
    labels = np.where(
        events.event == PURCHASE,
        np.char.add("O", np.char.zfill(order_rank[events.session].astype(str), 6)),
        np.char.add("S", np.char.zfill((session_rank[events.session] + 1).astype(str), 6)),
    )
    order = np.lexsort((events.event, events.time))
    return pd.DataFrame(
        {
            "user_id": users.user_id[events.user[order]],
            "item_id": catalog.item_id[events.item[order]],
            "event": EVENT_NAMES[events.event[order]],
            "timestamp": np.floor(events.time[order]).astype(np.int64),
            "session_id": labels[order].astype(object),
            "quantity": events.quantity[order],
        }
    )


def _truth(catalog: Catalog, users: Users, groups: list[list[int]], twins: np.ndarray, params: dict) -> dict:
    """The planted structure, JSON-ready."""
    paths = [leaf.path for leaf in LEAVES]
    categories = [[paths[catalog.leaf[i]] for i in g] for g in groups]
    pairs = sorted({tuple(sorted((a, b))) for c in categories for a in c for b in c if a != b})
    start = END - params["days"] * DAY
    return {
        "params": params,
        "period": {"start": start, "end": END},
        "complement_groups": [[str(catalog.item_id[i]) for i in g] for g in groups],
        "complement_categories": categories,
        "complement_probability": COMPLEMENT_P,
        "cross_category": [list(p) for p in pairs],
        "user_tastes": users.truth(),
        "item_price_band": {str(i): BANDS[b] for i, b in zip(catalog.item_id, catalog.band, strict=True)},
        "consumable_categories": [leaf.path for leaf in LEAVES if leaf.consumable],
        "new_items": [str(i) for i in catalog.item_id[catalog.created >= END - NEW_DAYS * DAY]],
        "session_leaf_stickiness": STICKINESS,
        "twins": catalog.item_id[twins].tolist(),
    }
