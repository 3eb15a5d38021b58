"""Forgetting a shopper across worker processes: ``shoprec serve --workers 2`` on PostgreSQL and a real
Redis; after one DELETE (taken by either worker) every answer, from both processes, is the anonymous
feed within the refresh interval."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest
from helpers import RedisServer, Server, copy_version, postgres_schema, version_users

from shoprec.service.forget import FORGOTTEN_NOTE, REFRESH_SECONDS
from shoprec.service.store import open_store


@pytest.fixture
def redis_server(tmp_path: Path):
    try:
        server = RedisServer(tmp_path / "redis")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    with server:
        yield server


def get_feed(url: str, user: str) -> dict:
    """One feed over a new connection (either worker may take it)."""
    with httpx.Client(base_url=url, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        answer = client.get(f"/v1/users/{user}/recommendations", params={"k": 10})
        assert answer.status_code == 200, answer.text
        return answer.json()


def items(body: dict) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_every_worker_process_stops_personalising(trained: Path, tmp_path: Path, postgres_url, redis_server) -> None:
    models = copy_version(trained, tmp_path / "models").parent
    user = version_users(models)[0]
    env = {"SHOPREC_REDIS_PREFIX": "forgetworkers", "SHOPREC_WARM_CACHE": "0"}
    with postgres_schema(postgres_url) as store_url:
        args = ("--no-auth", "--store", store_url, "--redis", redis_server.url)
        with Server(models, *args, workers=2, env=env) as server:
            anonymous = items(get_feed(server.url, "nobody-ever-seen"))
            clicked = items(get_feed(server.url, user))[0]
            event = {"event_id": uuid.uuid4().hex, "user_id": user, "item_id": clicked, "event": "click"}
            assert httpx.post(f"{server.url}/v1/events", json=event, timeout=10).status_code == 200
            before = [items(get_feed(server.url, user)) for _ in range(6)]
            assert all(b != anonymous for b in before)

            answer = httpx.delete(f"{server.url}/v1/users/{user}", timeout=30)
            assert answer.status_code == 200 and answer.json()["removed"]["events"] == 1, answer.text
            forgotten_at = time.monotonic()
            time.sleep(2 * REFRESH_SECONDS)
            after = [get_feed(server.url, user) for _ in range(12)]
            waited = time.monotonic() - forgotten_at
            assert all(items(a) == anonymous and FORGOTTEN_NOTE in a["notes"] for a in after), waited
        with open_store(store_url) as store:
            assert store.user_events(user) == [] and user in store.forgotten_users()
            assert store.audit_log(limit=1)[0]["actor"] == "auth-off"
            assert not [i for i in store.logged_impressions() if i.user_id == user]
