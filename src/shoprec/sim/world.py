"""The simulated shop's world: a demo shop whose shoppers' latent tastes are kept, laid out in time.

:func:`build_world` generates a demo shop (:func:`~shoprec.data.demo.generate_demo_shop`) and
rebuilds the generator's hidden per-item and per-shopper arrays (leaf, price band, language,
quality; taste over leaves, price band, language, activity) by replaying its first draws with
the same seed; the rebuild is checked against the generated tables, so a change to the
generator fails loudly instead of simulating different shoppers.

Time: the shop's ``days`` of history (the *base* period, the first version's training data) are
moved so they end where the simulated days begin, and the simulated days end at the last
midnight (UTC) before now, because the API accepts event times only up to one day ahead.

Newcomers: a share of the shoppers (``newcomers``) is left out of the base data; they exist
only in the simulated days, so a model trained once knows nothing of them except their live events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.data.demo.behaviour import HOURS
from shoprec.data.demo.catalog import Catalog, build_catalog
from shoprec.data.demo.shop import END, DemoShop, generate_demo_shop
from shoprec.data.demo.twins import plant_twins
from shoprec.data.demo.users import Users, build_users
from shoprec.data.frames import dataset_from_frames
from shoprec.timeunits import DAY


@dataclass
class World:
    """A demo shop with its latent structure, its base data and the simulated days' calendar."""

    shop: DemoShop
    """The generated tables, timestamps already moved (see :func:`build_world`)."""
    catalog: Catalog
    """Latent per-item arrays (index = position in ``shop.items``)."""
    users: Users
    """Latent per-shopper arrays (index = position of the user id ``U00001``...)."""
    newcomer: np.ndarray
    """(n_users,) bool: shoppers absent from the base data."""
    sim_start: int
    """Unix seconds (a UTC midnight) where simulated day 0 begins; the base data ends before it."""
    sim_days: int

    @property
    def item_ids(self) -> np.ndarray:
        return self.catalog.item_id

    @property
    def user_ids(self) -> np.ndarray:
        return self.users.user_id

    def day_bounds(self, day: int) -> tuple[int, int]:
        """Unix seconds [start, end) of simulated ``day``."""
        begin = self.sim_start + day * DAY
        return begin, begin + DAY

    def base_frames(self) -> dict[str, pd.DataFrame]:
        """The base period's tables without the newcomers' rows."""
        frames = dict(self.shop.frames())
        known = set(self.user_ids[~self.newcomer].tolist())
        for name in ("interactions", "reviews", "queries"):
            frame = frames[name]
            frames[name] = frame[frame["user_id"].isin(known)].reset_index(drop=True)
        return frames

    def base_dataset(self) -> Dataset:
        """The base data as a validated dataset (what the first version is trained on)."""
        f = self.base_frames()
        return dataset_from_frames(f["items"], f["interactions"], f["reviews"], f["queries"], name="sim-base")


def build_world(
    seed: int = 7,
    n_items: int = 400,
    n_users: int = 1500,
    base_days: int = 28,
    sim_days: int = 14,
    newcomers: float = 0.3,
    now: float | None = None,
) -> World:
    """Generate the shop, rebuild its latent arrays, move it in time and choose the newcomers.

    >>> world = build_world(seed=1, n_items=300, n_users=200, sim_days=2)
    >>> world.sim_start + 2 * 86400 <= time.time()
    True
    """
    if not 0 <= newcomers < 1:
        raise ValueError(f"newcomers must be a share in [0, 1), not {newcomers}")
    if sim_days < 1:
        raise ValueError(f"sim_days must be at least 1, not {sim_days}")
    shop = generate_demo_shop(seed=seed, n_items=n_items, n_users=n_users, days=base_days)
    catalog, users = latent_arrays(shop, seed, n_items, n_users, base_days)
    today = int((time.time() if now is None else now) // DAY) * DAY
    sim_start = today - sim_days * DAY
    _move(shop, sim_start - END)
    newcomer = np.random.default_rng([seed, 1]).random(n_users) < newcomers
    return World(shop, catalog, users, newcomer, sim_start, sim_days)


def latent_arrays(shop: DemoShop, seed: int, n_items: int, n_users: int, days: int) -> tuple[Catalog, Users]:
    """Replay :func:`generate_demo_shop`'s first draws (catalog, twins, shoppers) to get its hidden
    arrays, and check them against the generated tables."""
    rng = np.random.default_rng(seed)
    catalog = build_catalog(rng, n_items, END - days * DAY, END)
    plant_twins(rng.spawn(1)[0], catalog)
    users = build_users(rng, n_users)
    same_items = np.array_equal(catalog.item_id, shop.items["item_id"].to_numpy(dtype=object)) and np.array_equal(
        catalog.title, shop.items["title"].to_numpy(dtype=object)
    )
    if not same_items or users.truth() != shop.truth["user_tastes"]:
        raise RuntimeError(
            "the simulator's replay of the demo shop generator no longer matches its tables "
            "(shoprec.data.demo changed its draws): update shoprec.sim.world.latent_arrays to follow it"
        )
    return catalog, users


def _move(shop: DemoShop, shift: int) -> None:
    """Add ``shift`` seconds to every time in the shop (in place), the truth's period too."""
    shop.items["created_at"] = shop.items["created_at"] + shift
    for frame in (shop.interactions, shop.reviews, shop.queries):
        frame["timestamp"] = frame["timestamp"] + shift
    shop.truth["period"] = {k: v + shift for k, v in shop.truth["period"].items()}


@dataclass
class Arrivals:
    """One simulated day's sessions, in time order: who arrives and when."""

    user: np.ndarray  # (S,) int64 shopper index
    time: np.ndarray  # (S,) float64 unix seconds
    uniforms: np.ndarray  # (S, k, 2) float64: per shown slot, the draws deciding click and purchase


def arrivals(world: World, day: int, sessions: int, k: int, seed: int) -> Arrivals:
    """``sessions`` visits on ``day``: shoppers drawn by their activity, hours by the shop's daily
    rhythm. The same (seed, day) gives the same visits and the same random draws whatever is served,
    so policies compared on them differ only by what they show (common random numbers)."""
    rng = np.random.default_rng([seed, 2, day])
    activity = world.users.activity / world.users.activity.sum()
    user = rng.choice(len(activity), sessions, p=activity)
    begin, _ = world.day_bounds(day)
    hour = rng.choice(24, sessions, p=HOURS / HOURS.sum())
    at = begin + hour * 3600.0 + rng.uniform(0, 3540, sessions)
    order = np.argsort(at, kind="stable")
    return Arrivals(user[order], at[order], rng.random((sessions, k, 2)))
