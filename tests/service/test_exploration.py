"""Exploration in the service: feeds served with exploration on log exact propensities and explored
slots (real SQLite store), and the logs give an off-policy estimate of another policy."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import copy_version, version_users

from shoprec.loop.explore import Explorer
from shoprec.loop.offpolicy import evaluate
from shoprec.service.app import create_app
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import Event, open_store


@pytest.fixture
def served(trained: Path, tmp_path: Path):
    models = copy_version(trained, tmp_path / "models").parent
    settings = ServiceSettings(models_dir=str(models), auth=False, poll_seconds=3600, warm_cache=False)
    with TestClient(create_app(settings)) as client:
        engine = client.app.state.engine
        engine.feeds.explorer = Explorer(share=0.3, pool=20, seed=0)
        yield engine, models


def test_explored_feeds_log_propensities_and_explored_slots(served):
    engine, models = served
    users = version_users(models)[:20]
    began = time.perf_counter()
    lists = [engine.recommend("home", user, k=10, platform="web") for user in users for _ in range(3)]
    per_request_ms = 1000 * (time.perf_counter() - began) / len(lists)
    assert per_request_ms < 200
    assert any(item.explored for served in lists for item in served.items)
    ranked = engine.recommend("home", users[0], k=10, log=False)  # the cache keeps the deterministic list
    assert len({item.item_id for item in ranked.items}) == 10
    engine.impressions.flush()
    clicks = [
        Event(f"c{n}", s.user_id, s.items[n % 10].item_id, "click", time.time(), s.recommendation_id)
        for n, s in enumerate(lists[::2])
    ]
    engine.store.append_events(clicks)
    with open_store(f"sqlite:///{models / 'shoprec.db'}") as store:
        logged = store.logged_impressions(versions=["v0001"])
    assert len(logged) == len(lists)
    explorer = engine.feeds.explorer
    marginals = explorer.marginals(explorer.candidates(30, 10), 10)
    for row in logged:
        assert len(row.propensities) == len(row.items) == len(row.explored) == 10
        assert all(0 < p <= 1 for p in row.propensities)
        assert set(row.propensities) <= {float(v) for v in marginals.ravel()}  # exact, from the closed form
        assert row.platform == "web"
    assert sum(any(r.clicks) for r in logged) == len(clicks)
    p = np.array([r.propensities for r in logged])
    c = np.array([r.clicks for r in logged], dtype=float)
    on_policy = evaluate(p, c, p)
    assert on_policy["ips"].value == pytest.approx(c.mean())
    assert on_policy["snips"].warning is None
