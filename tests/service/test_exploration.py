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


def test_evaluate_logs_end_to_end(served, capsys):
    from shoprec.cli.main import main

    engine, models = served
    users = version_users(models)[:15]
    lists = [engine.recommend("home", user, k=10) for user in users for _ in range(4)]
    engine.impressions.flush()
    engine.store.append_events(
        [
            Event(f"k{n}", s.user_id, s.items[0].item_id, "click", time.time(), s.recommendation_id)
            for n, s in enumerate(lists)
        ]
    )
    copy_version(models / "v0001", models, "v0002")
    assert main(["evaluate-logs", "--models", str(models), "--version", "v0002", "--baseline", "v0001"]) == 0
    out = capsys.readouterr().out
    assert "measured CTR of v0001 (served): 0.1000" in out
    assert "estimated CTR of v0002" in out and "IPS" in out and "SNIPS" in out and "effective sample" in out
    assert main(["evaluate-logs", "--models", str(models), "--version", "v0009"]) == 2
    assert "unknown version 'v0009'" in capsys.readouterr().err


def test_evaluate_logs_needs_exploration_logs(served, capsys):
    from shoprec.cli.main import main

    engine, models = served
    assert main(["evaluate-logs", "--models", str(models), "--version", "v0001"]) == 2
    assert "no logged home-feed impressions" in capsys.readouterr().err
    engine.feeds.explorer = None
    for user in version_users(models)[:3]:
        engine.recommend("home", user, k=10)
    engine.impressions.flush()
    assert main(["evaluate-logs", "--models", str(models), "--version", "v0001"]) == 2
    assert "IPS needs exploration logs" in capsys.readouterr().err
