"""The simulated days: shoppers arrive, read their home feed through the API, click and buy by the
click model, the events go back through the API, and (for a retraining policy) a new version is
trained from the store at the end of each day.

Events sent per shown list: for each clicked item a ``view`` (the product page opens) and a
``click``; for each bought item also a ``cart`` and a ``purchase``; all carry the list's
``recommendation_id`` and times within the shopper's session on that simulated day. Items shown
but not clicked send nothing: the service logged the list itself (its impression), and an
impression is not a view of the product page.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from shoprec.loop.intervals import wilson
from shoprec.sim.clicks import ClickModel
from shoprec.sim.harness import ShopService
from shoprec.sim.retrain import Retrained, retrain
from shoprec.sim.world import Arrivals, World, arrivals

EVENT_GAP = 4.0
"""Seconds between the clicks of one session (slot order)."""


@dataclass
class Served:
    """One served list and what the shopper did with it."""

    recommendation_id: str
    version: str
    user: int
    items: np.ndarray  # (n,) item indices, slot order
    clicked: np.ndarray  # (n,) bool
    bought: np.ndarray  # (n,) bool
    expected: float  # expected clicks on the list under the click model
    explored: list[bool] | None = None  # per slot, when the service says which slots explored


@dataclass
class DayStats:
    """One simulated day of one policy."""

    day: int
    policy: str
    lists: int
    shown: int
    clicks: int
    purchases: int
    expected_clicks: float
    oracle_clicks: float
    versions: dict[str, int]
    seconds: float
    retrain: dict | None = None
    service_ctr: dict = field(default_factory=dict)
    """The service's own online CTR per version for the day (GET /v1/stats/online), a cross-check."""

    @property
    def ctr(self) -> float:
        return self.clicks / max(self.shown, 1)

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.clicks, self.shown)

    @property
    def expected_ctr(self) -> float:
        return self.expected_clicks / max(self.shown, 1)

    def row(self) -> dict:
        low, high = self.interval
        out = asdict(self)
        out.update(ctr=self.ctr, ctr_low=low, ctr_high=high, expected_ctr=self.expected_ctr)
        out["oracle_ctr"] = self.oracle_clicks / max(self.shown, 1)
        return out


def serve_day(
    service: ShopService, world: World, model: ClickModel, day: int, visits: Arrivals, k: int, tag: str
) -> list[Served]:
    """Every visit of the day: read the feed, act, post the events (one batch per visit with clicks)."""
    index = {str(item): i for i, item in enumerate(world.item_ids)}
    _, day_end = world.day_bounds(day)
    served = []
    for s, (user, at) in enumerate(zip(visits.user.tolist(), visits.time.tolist(), strict=True)):
        user_id = str(world.user_ids[user])
        listing = service.feed(user_id, k)
        items = np.array([index[row["item_id"]] for row in listing["items"]], dtype=np.int64)
        clicked, bought = model.act(user, items, visits.uniforms[s])
        expected = float(model.click_probabilities(user, items).sum())
        served.append(
            Served(
                listing["recommendation_id"],
                listing["version"],
                user,
                items,
                clicked,
                bought,
                expected,
                listing.get("explored"),
            )
        )
        events = _events(listing, user_id, clicked, bought, at, day_end, f"{tag}-d{day}-s{s}")
        if events:
            service.post_events(events)
    return served


def _events(listing: dict, user_id: str, clicked, bought, at: float, day_end: int, prefix: str) -> list[dict]:
    rec, rows = listing["recommendation_id"], listing["items"]
    out = []
    for j in np.flatnonzero(clicked).tolist():
        t = at + 2.0 + EVENT_GAP * j
        steps = [("view", 0.0), ("click", 1.0)] + ([("cart", 20.0), ("purchase", 90.0)] if bought[j] else [])
        for name, delay in steps:
            out.append(
                {
                    "event_id": f"{prefix}-{j}-{name}",
                    "user_id": user_id,
                    "item_id": rows[j]["item_id"],
                    "event": name,
                    "timestamp": min(t + delay, day_end - 1.0),
                    "recommendation_id": rec,
                }
            )
    return out


def day_stats(day: int, policy: str, world: World, model: ClickModel, served: list[Served], k: int) -> DayStats:
    """Counts of one day's lists (the oracle: the best possible list of the same length per visit)."""
    shown = sum(len(s.items) for s in served)
    return DayStats(
        day=day,
        policy=policy,
        lists=len(served),
        shown=shown,
        clicks=int(sum(s.clicked.sum() for s in served)),
        purchases=int(sum(s.bought.sum() for s in served)),
        expected_clicks=float(sum(s.expected for s in served)),
        oracle_clicks=float(sum(model.best_ctr(s.user, len(s.items)) * len(s.items) for s in served if len(s.items))),
        versions=dict(Counter(s.version for s in served)),
        seconds=0.0,
    )


@dataclass
class Policy:
    """How the shop is run over the simulated days."""

    name: str
    retrain: bool = False
    """Train a new version from the store at the end of every day and serve it from the next."""
    settings: dict = field(default_factory=dict)
    """Service settings for this policy (e.g. the exploration share)."""


RetrainStep = Callable[[World, Path, ShopService], Retrained]


def own_retrain(vector_cache: Path | None) -> RetrainStep:
    """The retrain step of :mod:`shoprec.sim.retrain`: train on base + store events, then reload."""

    def step(world: World, models_dir: Path, service: ShopService) -> Retrained:
        service.flush()
        result = retrain(world, models_dir, service.store, vector_cache)
        service.reload()
        return result

    return step


def run_policy(
    world: World,
    model: ClickModel,
    policy: Policy,
    first_version: Path,
    workdir: Path,
    days: int,
    sessions: int,
    k: int = 10,
    seed: int = 0,
    retrain_step: RetrainStep | None = None,
    log: Callable[[str], None] = print,
) -> list[DayStats]:
    """Run ``days`` simulated days of ``policy`` on a fresh store, starting from ``first_version``
    (copied in as v0001); the visits and random draws depend on ``seed`` and the day only."""
    models_dir = Path(workdir) / policy.name
    if models_dir.exists():
        shutil.rmtree(models_dir)
    models_dir.mkdir(parents=True)
    shutil.copytree(first_version, models_dir / "v0001")
    step = retrain_step or own_retrain(None)
    out = []
    with ShopService(models_dir, **policy.settings) as service:
        for day in range(days):
            began, wall = time.perf_counter(), time.time()
            visits = arrivals(world, day, sessions, k, seed)
            served = serve_day(service, world, model, day, visits, k, f"{policy.name}-{seed}")
            stats = day_stats(day, policy.name, world, model, served, k)
            stats.service_ctr = {r["version"]: r["ctr"] for r in service.online_stats(since=wall)}
            if policy.retrain and day < days - 1:
                stats.retrain = asdict(step(world, models_dir, service))
            stats.seconds = round(time.perf_counter() - began, 1)
            low, high = stats.interval
            log(
                f"{policy.name} day {day:2d}: CTR {stats.ctr:.4f} [{low:.4f}, {high:.4f}] expected "
                f"{stats.expected_ctr:.4f} over {stats.shown} shown, versions {stats.versions}, {stats.seconds} s"
            )
            out.append(stats)
    return out
