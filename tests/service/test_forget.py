"""Forgetting a shopper, end to end: ``DELETE /v1/users/{id}`` and ``shoprec forget`` against two
workers (two apps in this process, each with its own engine, caches and forgotten set) sharing one
store and one real Redis; and the platform a request and an event carry.

The shopper is one the loaded version was trained on, so their personal feed differs from the
anonymous one; after forgetting, both workers serve the anonymous feed at once (the other worker
within its refresh interval) although the version's snapshot still holds the shopper's events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from helpers import RedisServer, copy_version, version_users

from shoprec.cli.main import main as cli
from shoprec.service.app import create_app
from shoprec.service.auth import create_key
from shoprec.service.forget import FORGOTTEN_NOTE, REFRESH_SECONDS
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import open_store

PREFIX = "forgettest"
ANONYMOUS = "nobody-ever-seen"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    try:
        server = RedisServer(tmp_path / "redis")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    with server:
        yield server


@pytest.fixture
def shop(trained: Path, tmp_path: Path, redis_server: RedisServer) -> Iterator[dict]:
    """Two workers over one models folder, SQLite store and Redis; keys of each scope."""
    models = copy_version(trained, tmp_path / "models").parent
    with open_store(f"sqlite:///{models / 'shoprec.db'}") as store:
        keys = {scope: {"X-API-Key": create_key(store, [scope], 1_000_000)} for scope in ("read", "write", "admin")}
    settings = ServiceSettings(
        models_dir=str(models), redis_url=redis_server.url, redis_prefix=PREFIX, poll_seconds=3600, warm_cache=False
    )
    with ExitStack() as stack:
        workers = [stack.enter_context(TestClient(create_app(settings))) for _ in range(2)]
        yield {"models": models, "workers": workers, "keys": keys, "redis": redis_server, "settings": settings}


def feed(client: TestClient, keys: dict, user: str, **params) -> dict:
    answer = client.get(f"/v1/users/{user}/recommendations", params={"k": 10, **params}, headers=keys["read"])
    assert answer.status_code == 200, answer.text
    return answer.json()


def items(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def send_events(client: TestClient, keys: dict, user: str, item_ids: list[str], platform: str = "app") -> None:
    events = [
        {"event_id": uuid.uuid4().hex, "user_id": user, "item_id": i, "event": "click", "platform": platform}
        for i in item_ids
    ]
    answer = client.post("/v1/events/batch", json={"events": events}, headers=keys["write"])
    assert answer.status_code == 200 and answer.json()["accepted"] == len(events), answer.text


def redis_keys(server: RedisServer, user: str) -> list[bytes]:
    with redis.Redis.from_url(server.url) as client:
        return client.keys(f"{PREFIX}:*:{user}")


def wait_until_anonymous(client: TestClient, keys: dict, user: str, anonymous: list[str]) -> dict:
    deadline = time.monotonic() + 10 * REFRESH_SECONDS + 2
    while True:
        body = feed(client, keys, user)
        if FORGOTTEN_NOTE in body["notes"] or time.monotonic() > deadline:
            assert items(body) == anonymous, "a forgotten shopper gets the anonymous feed"
            return body
        time.sleep(REFRESH_SECONDS / 5)


def test_delete_user_forgets_everywhere(shop: dict) -> None:
    one, two = shop["workers"]
    keys, server = shop["keys"], shop["redis"]
    user = version_users(shop["models"])[0]
    anonymous = items(feed(one, keys, ANONYMOUS))
    clicked = items(feed(one, keys, user))[:2]
    send_events(one, keys, user, clicked)
    personal = [items(feed(w, keys, user)) for w in (one, two)]  # both workers read the live list (Redis)
    assert all(p != anonymous for p in personal)
    assert redis_keys(server, user), "the shopper's live list is in Redis"
    assert one.get("/v1/search", params={"q": "charger", "user_id": user}, headers=keys["read"]).status_code == 200

    refused = one.delete(f"/v1/users/{user}", headers=keys["read"])
    assert refused.status_code == 403
    answer = one.delete(f"/v1/users/{user}", headers=keys["admin"])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["removed"]["events"] == 2 and report["removed"]["searches"] == 1
    assert report["removed"]["impressions"] >= 2 and report["live_state_dropped"] is True
    assert redis_keys(server, user) == []

    body = feed(one, keys, user)  # this worker: at once
    assert items(body) == anonymous and FORGOTTEN_NOTE in body["notes"] and body["user_id"] == user
    wait_until_anonymous(two, keys, user, anonymous)  # the other worker: within its refresh
    history = two.get(f"/v1/users/{user}/events", headers=keys["read"]).json()
    assert history["events"] == [] and history["queries"] == []
    assert two.get(f"/v1/users/{user}/profile", headers=keys["read"]).status_code == 404

    with open_store(shop["settings"].store_url or f"sqlite:///{shop['models'] / 'shoprec.db'}") as store:
        assert store.user_events(user) == [] and store.user_searches(user) == []
        assert user in store.forgotten_users()
        assert not [i for i in store.logged_impressions() if i.user_id == user]
        feed(two, keys, user)
        for worker in (one, two):
            worker.app.state.engine.impressions.flush()
        assert not [i for i in store.logged_impressions() if i.user_id == user], "later lists are anonymous"
        entry = store.audit_log(limit=1)[0]
        admin_id = keys["admin"]["X-API-Key"].split("_")[1]
        assert (entry["actor"], entry["action"], entry["subject"]) == (admin_id, "forget_user", user)
    audit = one.get("/v1/audit", headers=keys["admin"]).json()
    assert audit[0]["subject"] == user and abs(audit[0]["at"] - time.time()) < 60


def test_unknown_user_is_404_and_a_snapshot_only_user_is_forgotten(shop: dict) -> None:
    one, two = shop["workers"]
    keys = shop["keys"]
    answer = one.delete("/v1/users/ghost-shopper", headers=keys["admin"])
    assert answer.status_code == 404
    assert "unknown user 'ghost-shopper'" in answer.json()["error"]
    user = version_users(shop["models"])[1]  # in the training data, never seen by the store
    anonymous = items(feed(two, keys, ANONYMOUS))
    assert items(feed(two, keys, user)) != anonymous
    answer = one.delete(f"/v1/users/{user}", headers=keys["admin"])
    assert answer.status_code == 200 and answer.json()["removed"] == {"events": 0, "impressions": 0, "searches": 0}
    wait_until_anonymous(two, keys, user, anonymous)


def test_cli_forget_reaches_running_workers(shop: dict, capsys) -> None:
    one, two = shop["workers"]
    keys, server = shop["keys"], shop["redis"]
    user = version_users(shop["models"])[2]
    anonymous = items(feed(one, keys, ANONYMOUS))
    send_events(two, keys, user, items(feed(two, keys, user))[:1], platform="email")
    assert items(feed(one, keys, user)) != anonymous and redis_keys(server, user)
    models = str(shop["models"])
    args = ["forget", user, "--models", models, "--redis", server.url, "--redis-prefix", PREFIX]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert f"forgot user {user!r}: removed 1 events" in out and "live state in Redis: dropped" in out
    assert "trained on by v0001" in out
    assert redis_keys(server, user) == []
    for worker in (one, two):
        wait_until_anonymous(worker, keys, user, anonymous)
    assert cli(["forget", "ghost-shopper", "--models", models]) == 2
    assert "error: unknown user 'ghost-shopper'" in capsys.readouterr().err
    with open_store(f"sqlite:///{shop['models'] / 'shoprec.db'}") as store:
        assert store.audit_log(limit=1)[0]["actor"] == "cli"


def test_platform_on_events_and_requests_is_stored_and_counted(shop: dict) -> None:
    one, _ = shop["workers"]
    keys = shop["keys"]
    user = version_users(shop["models"])[3]
    send_events(one, keys, user, items(feed(one, keys, user))[:1], platform=" App ")
    send_events(one, keys, user, items(feed(one, keys, user))[:1], platform="smart-fridge")  # never seen: accepted
    live = one.get(f"/v1/users/{user}/events", headers=keys["read"]).json()["events"]
    assert [e["platform"] for e in live] == ["app", "smart-fridge"]
    served = feed(one, keys, user, platform="mini-program", language="zh-CN")
    feed(one, keys, user, platform="kiosk")
    stats = one.get("/v1/stats/platforms", headers=keys["read"]).json()
    assert stats["events"] == {"app": 1, "other": 1}
    assert stats["requests"]["mini-program"] == 1 and stats["requests"]["other"] == 1
    assert stats["unseen_values"] == {"smart-fridge": 1, "kiosk": 1}
    metrics = one.get("/metrics").text
    assert 'shoprec_platform_total{platform="other",where="events"} 1.0' in metrics
    assert "shoprec_platform_unseen_values 2.0" in metrics
    bad = one.get(f"/v1/users/{user}/recommendations", params={"language": "not a tag!"}, headers=keys["read"])
    assert bad.status_code == 422 and "language" in bad.text
    online = one.get("/v1/stats/online", params={"by": "platform"}, headers=keys["read"])
    assert online.status_code == 200
    by_platform = {row["platform"]: row["impressions"] for row in online.json()}
    assert by_platform, "impressions are grouped by platform"
    if "platform" in one.app.state.engine.feeds.recommend.__code__.co_varnames:  # once feeds log it
        assert by_platform.get("mini-program", 0) >= len(served["items"])
