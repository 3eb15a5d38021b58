"""Per-version request counters: a worker's counts reach the store (both backends) and the API's feeds feed them."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import copy_version

from shoprec.service.app import create_app
from shoprec.service.counters import VersionCounters, is_server_error
from shoprec.service.served import NotFound
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import Store, StoreError


def test_counters_flush_to_the_store_and_survive_a_failed_write(store: Store, monkeypatch) -> None:
    counters = VersionCounters(store, every=3600)  # flushed by hand here
    try:
        counters.observe("v1", 0.010)
        counters.observe("v1", 0.030, error=True)
        counters.observe("v2", 0.005)
        real = store.record_requests

        def down(*args, **kwargs):
            raise StoreError("database is down")

        monkeypatch.setattr(store, "record_requests", down)
        counters.flush()  # nothing stored, nothing lost
        assert counters.flush_errors == 2 and store.version_health() == {}
        monkeypatch.setattr(store, "record_requests", real)
        counters.observe("v1", 0.020)
    finally:
        counters.close()  # the last flush
    health = store.version_health()
    assert health["v1"]["requests"] == 3 and health["v1"]["errors"] == 1
    assert health["v1"]["latency_ms_mean"] == pytest.approx(20.0)
    assert health["v2"] == {"requests": 1, "errors": 0, "latency_ms_mean": pytest.approx(5.0)}


def test_client_errors_are_not_server_errors() -> None:
    assert not is_server_error(NotFound("unknown item"))
    assert is_server_error(StoreError("down")) and is_server_error(RuntimeError("bug"))


def test_feed_requests_are_counted_per_version(trained: Path, tmp_path: Path) -> None:
    models = copy_version(trained, tmp_path / "models").parent
    settings = ServiceSettings(models_dir=str(models), auth=False, poll_seconds=3600, warm_cache=False)
    with TestClient(create_app(settings)) as client:
        for user in ("a", "b", "c"):
            assert client.get(f"/v1/users/{user}/recommendations").status_code == 200
        assert client.get("/v1/items/no-such-item/similar").status_code == 404  # a client error
        engine = client.app.state.engine
        engine.counters.flush()
        health = engine.store.version_health()
    assert health["v0001"]["requests"] == 3 and health["v0001"]["errors"] == 0
    assert health["v0001"]["latency_ms_mean"] > 0
