"""The simulated shop, short: two simulated days through the in-process API with one nightly retrain.

The loop runs end to end (feeds read, events posted with their recommendation ids and stored, a
retrained version published and served the next day, the service's own online CTR equal to the
simulator's count), and the click model's exact expected CTR matches its empirical CTR.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from shoprec.loop.intervals import wilson
from shoprec.service.store import open_store
from shoprec.sim.clicks import ClickModel, utility
from shoprec.sim.loop import Policy, own_retrain, run_policy
from shoprec.sim.retrain import store_events
from shoprec.sim.world import arrivals, build_world


@pytest.fixture(scope="module")
def world():
    return build_world(seed=5, n_items=300, n_users=300, base_days=28, sim_days=2)


def test_replayed_latent_arrays_match_the_shop_and_days_lie_in_the_past(world) -> None:
    assert len(world.users) == 300 and len(world.catalog) == 300
    assert world.shop.interactions["timestamp"].max() < world.sim_start
    assert world.day_bounds(1)[1] <= time.time()
    base_users = set(world.base_frames()["interactions"]["user_id"])
    assert not base_users & set(world.user_ids[world.newcomer])


def test_click_model_expected_ctr_matches_empirical(world) -> None:
    model = ClickModel(utility(world.users, world.catalog))
    rng = np.random.default_rng(0)
    user = 7
    items = np.argsort(-model.attraction[user])[:10]  # a good list, CTR well above zero
    draws = 20_000
    clicks = sum(int(model.act(user, items, rng.random((10, 2)))[0].sum()) for _ in range(draws))
    low, high = wilson(clicks, draws * 10, z=3.0)
    assert low <= model.expected_ctr(user, items) <= high
    assert model.expected_ctr(user, items) == pytest.approx(model.best_ctr(user, 10))


def test_arrivals_are_the_same_for_every_policy(world) -> None:
    a, b = arrivals(world, 1, 50, 10, seed=3), arrivals(world, 1, 50, 10, seed=3)
    assert np.array_equal(a.user, b.user) and np.array_equal(a.uniforms, b.uniforms)
    begin, end = world.day_bounds(1)
    assert ((a.time >= begin) & (a.time < end)).all()


def test_two_days_through_the_api_with_a_nightly_retrain(world, tmp_path: Path) -> None:
    from shoprec.service.versions import train_version

    cache = Path(os.environ.get("SHOPREC_TEST_VECTOR_CACHE", tmp_path / "vector-cache"))
    first = train_version(
        world.base_dataset(), tmp_path / "first", evaluate=False, vector_cache=cache, crosscat_mode="graph"
    )
    model = ClickModel(utility(world.users, world.catalog), b=-2.0)  # clicky shoppers: events on a small day
    days = run_policy(
        world,
        model,
        Policy("loop", retrain=True),
        first,
        tmp_path,
        days=2,
        sessions=80,
        retrain_step=own_retrain(cache),
        log=lambda line: None,
    )
    assert [d.versions for d in days] == [{"v0001": 80}, {"v0002": 80}]
    assert days[0].retrain["version"] == "v0002" and days[0].retrain["events"] > 0
    for day in days:
        assert day.clicks > 0 and day.shown > 0
        assert day.service_ctr == {v: pytest.approx(day.ctr) for v in day.versions}
    with open_store(f"sqlite:///{tmp_path / 'loop' / 'shoprec.db'}") as store:
        events = store_events(store)
    assert events["session_id"].notna().all()  # every event carries its list's recommendation id
    assert (events["event"] == "click").sum() == sum(d.clicks for d in days)
    begin, end = world.day_bounds(0)[0], world.day_bounds(1)[1]
    assert events["timestamp"].between(begin, end).all()
