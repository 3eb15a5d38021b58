"""Live state in Redis is complete or says it is not, against a real ``redis-server`` of the test's own.

Events stream one at a time through the API of a two-worker ``shoprec serve`` (``--redis``). Redis
is killed with SIGKILL mid-stream, events keep coming while it is down, it is restarted (empty, as
after a crash without persistence) and later flushed (``FLUSHALL``). After every acknowledged event
the shopper's live history (``GET /v1/users/{id}/events``, read exactly as the next feed reads it)
must hold every acknowledged event of the shopper exactly once and in order, and the shopper's feed
must not be degraded (the store stays up, so it can always answer). At the end every shopper is
answered from Redis again: the lists were rebuilt from the store.

Below it, the cases a restart to an empty Redis would hide, on :class:`RedisLive` directly: a
failed write while Redis stays up, a Redis restored from an old snapshot, and a rebuild racing a
write; and, without Redis, a feed whose live state cannot be read at all says it is degraded.

The Redis tests are skipped, with the reason, where no ``redis-server`` binary is installed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from helpers import RedisServer, Server, copy_version

from shoprec.service.app import create_app
from shoprec.service.live_redis import RedisLive
from shoprec.service.served import DEGRADED_NOTE
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import open_store
from shoprec.service.store.base import Event, StoreError

USERS = [f"live-{n}" for n in range(5)]
ITEMS = [f"P{n:05d}" for n in range(1, 301)]
"""The demo shop's item ids (``tiny_shop`` has 300 items)."""
PHASE = 25
"""Events acknowledged between two disruptions."""
PREFIX = "livetest"


@pytest.fixture
def redis_server(tmp_path: Path):
    try:
        server = RedisServer(tmp_path / "redis")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    with server:
        yield server


@pytest.fixture
def models_dir(trained: Path, tmp_path: Path) -> Path:
    copy_version(trained, tmp_path / "models")
    return tmp_path / "models"


class Stream:
    """One thread: send an event, then read the shopper's live history and feed, and check them;
    over and over until :meth:`stop`. Every request opens a new connection, so either worker may
    take it. ``problems`` collects every failed request and every wrong answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: dict[str, list[str]] = {u: [] for u in USERS}
        self.problems: list[str] = []
        self.states: Counter = Counter()
        self.began = time.time()  # after the version was created, so every event is newer than its snapshot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self.acked.values())

    def start(self) -> Stream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def wait_for(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline and not self.problems:
            time.sleep(0.02)
        assert not self.problems, self.problems[:5]
        assert self.count >= count, f"only {self.count} of {count} events acknowledged in {timeout} s"

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            n = 0
            while not self._stop.is_set():
                user = USERS[n % len(USERS)]
                event = {
                    "event_id": f"{user}-{n}",
                    "user_id": user,
                    "item_id": ITEMS[(7 * n) % len(ITEMS)],
                    "event": "click",
                    "timestamp": self.began + n,
                }
                response = client.post("/v1/events", json=event)
                if response.status_code != 200 or response.json()["accepted"] != 1:
                    self.problems.append(f"event {n}: {response.status_code} {response.text[:200]}")
                    return
                self.acked[user].append(event["event_id"])
                self._check(client, user, n)
                n += 1

    def _check(self, client: httpx.Client, user: str, n: int) -> None:
        history = read_history(client, user)
        self.states[history["live_state"]] += 1
        if history["ids"] != self.acked[user] or history["degraded"]:
            self.problems.append(
                f"after event {n}, {user}'s live history ({history['live_state']}) is {history['ids']}, "
                f"acknowledged: {self.acked[user]}"
            )
        feed = client.get(f"/v1/users/{user}/recommendations", params={"k": 5})
        if feed.status_code != 200 or feed.json()["degraded"]:
            self.problems.append(f"feed after event {n}: {feed.status_code} {feed.text[:300]}")


def read_history(client: httpx.Client, user: str) -> dict:
    response = client.get(f"/v1/users/{user}/events")
    assert response.status_code == 200, response.text
    body = response.json()
    return {**body, "ids": [e["event_id"] for e in body["events"]]}


def test_acknowledged_events_survive_a_redis_kill_a_restart_and_a_flush(models_dir, redis_server) -> None:
    env = {"SHOPREC_REDIS_PREFIX": PREFIX}
    with Server(models_dir, "--no-auth", "--redis", redis_server.url, workers=2, env=env) as server:
        stream = Stream(server.url).start()
        try:
            stream.wait_for(PHASE)
            redis_server.kill()  # SIGKILL mid-stream: events keep coming while Redis is down
            stream.wait_for(2 * PHASE)
            redis_server.start()  # empty: the lists and everything else are gone
            stream.wait_for(3 * PHASE)
            with redis.Redis.from_url(redis_server.url) as client:
                assert client.keys(f"{PREFIX}:u:*"), "the lists are rebuilt in the restarted Redis"
                client.flushall()
            stream.wait_for(4 * PHASE)
        finally:
            stream.stop()
        assert not stream.problems, stream.problems[:5]
        assert stream.states["store"] > 0 and stream.states["redis"] > 0, stream.states

        with httpx.Client(
            base_url=server.url, timeout=10.0, limits=httpx.Limits(max_keepalive_connections=0)
        ) as client:
            for user in USERS:
                states = set()
                for _ in range(6):  # both workers, once each list is rebuilt and no write is pending repair
                    history = read_history(client, user)
                    assert history["ids"] == stream.acked[user] and not history["degraded"]
                    states.add(history["live_state"])
                assert history["live_state"] == "redis", f"{user} is still answered from {states}"
            metrics = client.get("/metrics").text
        assert "shoprec_live_repopulated_total" in metrics
    with redis.Redis.from_url(redis_server.url) as client:
        for user in USERS:
            (key,) = client.keys(f"{PREFIX}:u:*:{user}")
            stored = [v.decode().split("\t")[0] for v in client.lrange(key, 0, -1) if v != b"#"]
            assert stored == stream.acked[user], f"Redis holds {user}'s events once, in order"


# ---------------------------------------------------------------------- RedisLive directly
@pytest.fixture
def live(redis_server: RedisServer, tmp_path: Path):
    store = open_store(f"sqlite:///{tmp_path / 'live.db'}")
    opened = RedisLive(redis_server.url, store, prefix=PREFIX)
    yield opened
    opened.close()
    store.close()


def commit(live: RedisLive, *ids: str, user: str = "u1") -> list[Event]:
    """Store events (as the group committer does), then hand them to the live state."""
    events = [Event(i, user, ITEMS[n], "click", 1_700_000_000.0 + int(i[1:])) for n, i in enumerate(ids)]
    live.store.append_events(events)
    live.record(events)
    return events


def read(live: RedisLive, user: str = "u1") -> tuple[str, list[str]]:
    events = live.recent(user)
    return events.state, [e.event_id for e in events]


def test_a_failed_write_sends_the_user_to_the_store_until_the_list_is_rebuilt(live: RedisLive, monkeypatch) -> None:
    commit(live, "e1")
    assert read(live) == ("store", ["e1"])  # first read: built from the store
    assert read(live) == ("redis", ["e1"])

    def refused(*args, **kwargs):
        raise redis.ConnectionError("refused")

    with monkeypatch.context() as patch:
        patch.setattr(live, "_append", refused)  # Redis stays up, but this write does not reach it
        commit(live, "e2")
    assert read(live) == ("store", ["e1", "e2"])
    deadline = time.monotonic() + 5
    while live.stats.invalidated < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live.stats.invalidated == 1, "the list missing e2 is dropped once Redis answers"
    assert read(live)[1] == ["e1", "e2"]  # rebuilt here, unless the read above came after the drop
    assert read(live) == ("redis", ["e1", "e2"])


def test_a_redis_restored_from_an_old_snapshot_is_not_trusted(live: RedisLive, redis_server: RedisServer) -> None:
    commit(live, "e1")
    assert read(live) == ("store", ["e1"])
    live.client.save()  # the snapshot holds the list with e1 only
    commit(live, "e2")
    assert read(live) == ("redis", ["e1", "e2"])
    redis_server.kill()
    redis_server.start()  # loads the snapshot: an old list under the old server's run id
    assert live.client.keys(f"{PREFIX}:u:*"), "the old list is back in Redis"
    assert read(live) == ("store", ["e1", "e2"])
    assert read(live) == ("redis", ["e1", "e2"])


def test_a_rebuild_never_hides_an_event_committed_while_the_store_was_read(live: RedisLive) -> None:
    commit(live, "e1")
    token = "t-1"
    assert live._read(args=[PREFIX, "u1", 200, token]) is None  # a miss: the reader leaves its token
    stale = live.store.user_events("u1")  # the reader's store read, before e2 commits
    commit(live, "e2")  # finds no list: takes the token away
    assert live._rebuild(args=[PREFIX, "u1", token, 60, b"#", *(f"{e.event_id}\tx\tclick\t1.0\t" for e in stale)]) == 0
    assert read(live) == ("store", ["e1", "e2"])
    assert read(live) == ("redis", ["e1", "e2"])


# ---------------------------------------------------------------------- no live state at all
def test_a_feed_without_its_live_events_says_it_is_degraded(trained: Path, tmp_path: Path, monkeypatch) -> None:
    copy_version(trained, tmp_path / "models")
    settings = ServiceSettings(models_dir=str(tmp_path / "models"), auth=False, warm_cache=False, poll_seconds=3600)
    user = "U00005"
    with TestClient(create_app(settings)) as client:
        click = {"event_id": "d1", "user_id": user, "item_id": ITEMS[0], "event": "click"}
        assert client.post("/v1/events", json=click).status_code == 200
        feed = client.get(f"/v1/users/{user}/recommendations").json()
        assert (feed["live_state"], feed["degraded"]) == ("store", False)
        assert [e["event_id"] for e in client.get(f"/v1/users/{user}/events").json()["events"]] == ["d1"]

        def unreadable(*args, **kwargs):
            raise StoreError("database is locked")

        monkeypatch.setattr(client.app.state.engine.live.store, "user_events", unreadable)
        feed = client.get(f"/v1/users/{user}/recommendations").json()
        assert (feed["live_state"], feed["degraded"]) == ("unavailable", True) and DEGRADED_NOTE in feed["notes"]
        live = client.get(f"/v1/users/{user}/events").json()
        assert (live["degraded"], live["events"]) == (True, [])
        assert client.get(f"/v1/users/{user}/profile").json()["degraded"] is True
        assert 'shoprec_live_reads_total{state="unavailable"} 3.0' in client.get("/metrics").text
