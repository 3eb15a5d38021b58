"""A real ``shoprec serve`` on loopback under failure and load (child processes, bounded in time).

- SIGKILL mid-stream: every acknowledged event is in the store exactly once after a restart, and a
  client that retries its unacknowledged events with the same ids loses nothing and duplicates nothing.
- Two workers sharing live state through Redis: writers and readers at once, no error, no lost
  event, and a click is in the shopper's profile at the next request whichever worker answers it.
- A new model version while about 100 requests a second arrive: no request fails and the answers
  switch to the new version (by the periodic poll, then at once by ``POST /v1/models/reload``).
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from helpers import RedisServer, Server, copy_version, postgres_schema

from shoprec.service.auth import create_key
from shoprec.service.store import open_store

ITEMS = [f"P{n:05d}" for n in range(1, 301)]
"""The demo shop's item ids (``tiny_shop`` has 300 items)."""


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def models_dir(trained: Path, tmp_path: Path) -> Path:
    """A fresh models folder (and so a fresh SQLite store) holding a copy of the trained version."""
    copy_version(trained, tmp_path / "models")
    return tmp_path / "models"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A ``redis-server`` of the test's own on a free port (skipped where none is installed)."""
    try:
        server = RedisServer(tmp_path / "redis")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    with server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, models_dir: Path) -> Iterator[str]:
    """The service's default SQLite file, or a PostgreSQL schema of this test's own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{models_dir / 'shoprec.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url"), "rel") as url:
        yield url


def rows_per_event_id(url: str) -> Counter:
    """How many rows the store holds for each event id, read with SQL outside the service."""
    query = "SELECT event_id, COUNT(*) FROM events GROUP BY event_id"
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :])) as conn:
            return Counter(dict(conn.execute(query).fetchall()))
    with psycopg.connect(url) as conn:
        return Counter(dict(conn.execute(query).fetchall()))


# ---------------------------------------------------------------------- SIGKILL
class EventStream:
    """Posts single events with unique ids, one after the other, on a thread; an event that gets no
    200 is sent again with the same id until it does. :meth:`stop` lets the event in flight finish."""

    def __init__(self, url: str, seed: int) -> None:
        self.url, self.seed = url, seed
        self.acked: list[str] = []
        self.sent: dict[str, dict] = {}
        self.errors: Counter = Counter()
        self.duplicates = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng = random.Random(self.seed)
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while not self._stop.is_set():
                body = {
                    "event_id": f"kill-{uuid.uuid4().hex}",
                    "user_id": f"u{rng.randrange(50)}",
                    "item_id": rng.choice(ITEMS),
                    "event": rng.choice(["view", "click", "cart"]),
                }
                self.sent[body["event_id"]] = body
                self._deliver(client, body)

    def _deliver(self, client: httpx.Client, body: dict) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = client.post("/v1/events", json=body)
            except httpx.HTTPError as err:
                self.errors[type(err).__name__] += 1
            else:
                if response.status_code == 200:
                    self.duplicates += response.json()["duplicates"]
                    self.acked.append(body["event_id"])
                    return
                self.errors[f"HTTP {response.status_code}"] += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(130)


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_sigkill_loses_no_acknowledged_event_and_retries_duplicate_nothing(models_dir, store_url) -> None:
    server = Server(models_dir, "--no-auth", "--store", store_url)
    with server:
        streams = [EventStream(server.url, seed) for seed in range(4)]  # four events in flight at the kill

        def acked() -> int:
            return sum(len(stream.acked) for stream in streams)

        wait_for(lambda: acked() >= 50, 30, "50 acknowledged events")
        time.sleep(2.0)
        server.kill()
        acked_at_kill = acked()
        server.start()
        wait_for(lambda: acked() >= acked_at_kill + 50, 30, "50 more events after the restart")
        for stream in streams:
            stream.stop()
    assert not any(stream.thread.is_alive() for stream in streams), "a client could not deliver its last event"
    assert all(stream.errors for stream in streams), "the kill must interrupt every stream"
    acked_ids = [event_id for stream in streams for event_id in stream.acked]
    sent = {event_id: body for stream in streams for event_id, body in stream.sent.items()}
    assert len(set(acked_ids)) == len(acked_ids) == len(sent)
    assert sum(stream.duplicates for stream in streams) <= len(streams), "only events in flight at the kill repeat"
    rows = rows_per_event_id(store_url)
    assert max(rows.values()) == 1, "an event id is stored twice"
    assert set(rows) == set(acked_ids), "the store must hold exactly the acknowledged events"
    with open_store(store_url) as store:
        stored = store.get_events(acked_ids)
    assert [(e.event_id, e.user_id, e.item_id, e.event) for e in stored] == [
        (b["event_id"], b["user_id"], b["item_id"], b["event"]) for b in (sent[i] for i in acked_ids)
    ]


# ---------------------------------------------------------------------- two workers, Redis
class Load:
    """Writer and reader threads against a server for ``seconds``; outcomes gathered under a lock."""

    def __init__(self, url: str, seconds: float) -> None:
        self.url, self.seconds = url, seconds
        self.acked: list[str] = []
        self.failures: list[str] = []
        self.reads = 0
        self._lock = threading.Lock()

    def run(self, writers: int, readers: int) -> None:
        threads = [threading.Thread(target=self.write, args=(n,)) for n in range(writers)]
        threads += [threading.Thread(target=self.read, args=(n,)) for n in range(readers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.seconds + 60)

    def write(self, n: int) -> None:
        rng, end = random.Random(n), time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while time.monotonic() < end:
                size = 5 if rng.random() < 0.3 else 1
                events = [
                    {
                        "event_id": f"w{n}-{uuid.uuid4().hex}",
                        "user_id": f"load-{n}-{rng.randrange(5)}",
                        "item_id": rng.choice(ITEMS),
                        "event": "click",
                    }
                    for _ in range(size)
                ]
                path, body = ("/v1/events/batch", {"events": events}) if size > 1 else ("/v1/events", events[0])
                if self.call(client, "POST", path, body):
                    with self._lock:
                        self.acked += [e["event_id"] for e in events]

    def read(self, n: int) -> None:
        rng, end = random.Random(100 + n), time.monotonic() + self.seconds
        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            while time.monotonic() < end:
                user = rng.choice([f"U{rng.randrange(1, 201):05d}", f"load-{rng.randrange(4)}-{rng.randrange(5)}"])
                if self.call(client, "GET", f"/v1/users/{user}/recommendations?k=10", None):
                    with self._lock:
                        self.reads += 1

    def call(self, client: httpx.Client, method: str, path: str, body: dict | None) -> bool:
        try:
            response = client.request(method, path, json=body)
        except httpx.HTTPError as err:
            problem = f"{method} {path}: {type(err).__name__}"
        else:
            if response.status_code == 200:
                return True
            problem = f"{method} {path}: {response.status_code} {response.text[:200]}"
        with self._lock:
            self.failures.append(problem)
        return False


def fresh_connection(url: str, method: str, path: str, body: dict | None = None) -> httpx.Response:
    """One request on a new connection, so that either worker may take it."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        return client.request(method, path, json=body)


def worker_counters(url: str) -> set[tuple[float, float]]:
    """(profile requests answered, events ingested) of each worker that answers a /metrics scrape
    on a new connection: one pair per worker (two workers agreeing on both is all but impossible)."""
    pairs = set()
    for _ in range(30):
        profile = ingested = 0.0
        for line in fresh_connection(url, "GET", "/metrics").text.splitlines():
            if line.startswith("shoprec_requests_total") and "/profile" in line and 'status="200"' in line:
                profile = float(line.rsplit(" ", 1)[1])
            elif line.startswith("shoprec_events_ingested_total "):
                ingested = float(line.rsplit(" ", 1)[1])
        pairs.add((profile, ingested))
    return pairs


def test_two_workers_with_redis_lose_nothing_and_read_their_writes(models_dir, redis_url) -> None:
    prefix = "reliability"
    with Server(
        models_dir, "--no-auth", "--redis", redis_url, workers=2, env={"SHOPREC_REDIS_PREFIX": prefix}
    ) as server:
        assert fresh_connection(server.url, "GET", "/v1/ready").json()["live"] == "redis"
        load = Load(server.url, seconds=5.0)
        load.run(writers=4, readers=4)
        assert load.failures == []
        assert load.reads > 20 and len(load.acked) > 20

        user = f"ryw-{uuid.uuid4().hex[:8]}"
        repetitions = 40
        for n in range(1, repetitions + 1):
            click = {"event_id": f"{user}-{n}", "user_id": user, "item_id": ITEMS[n], "event": "click"}
            assert fresh_connection(server.url, "POST", "/v1/events", click).status_code == 200
            profile = fresh_connection(server.url, "GET", f"/v1/users/{user}/profile").json()
            assert profile["live_events"] == n, f"click {n} not visible to the next request"
        workers = worker_counters(server.url)
    assert len(workers) == 2, f"expected two workers' metrics, got {workers}"
    assert all(profiles > 0 for profiles, _ in workers), f"both workers must have answered profiles: {workers}"
    assert sum(profiles for profiles, _ in workers) == repetitions
    with open_store(f"sqlite:///{models_dir / 'shoprec.db'}") as store:
        assert store.count_events() == len(load.acked) + repetitions
        assert len(store.get_events(load.acked)) == len(load.acked)
    with redis.Redis.from_url(redis_url) as client:  # the list was built from the store, then appended to
        (key,) = client.keys(f"{prefix}:u:*:{user}")
        stored_live = [v.decode().split("\t")[0] for v in client.lrange(key, 0, -1) if v != b"#"]
    assert stored_live == [f"{user}-{n}" for n in range(1, repetitions + 1)]


# ---------------------------------------------------------------------- model swap under load
class Feeds:
    """About ``rate`` feed requests a second from one thread until :meth:`stop`; each request is
    logged as (start time, status, served version or error)."""

    def __init__(self, url: str, key: str, rate: float, seed: int) -> None:
        self.url, self.key, self.rate, self.seed = url, key, rate, seed
        self.log: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng, began, n = random.Random(self.seed), time.monotonic(), 0
        with httpx.Client(base_url=self.url, timeout=10.0, headers={"X-API-Key": self.key}) as client:
            while not self._stop.is_set():
                time.sleep(max(0.0, began + n / self.rate - time.monotonic()))
                n += 1
                started = time.monotonic()
                try:
                    response = client.get(f"/v1/users/U{rng.randrange(1, 201):05d}/recommendations?k=5")
                except httpx.HTTPError as err:
                    self.log.append((started, 0, type(err).__name__))
                    continue
                ok = response.status_code == 200
                self.log.append((started, response.status_code, response.json()["version"] if ok else response.text))

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(30)

    def switches(self) -> list[tuple[str, str]]:
        versions = [version for _, _, version in self.log]
        return [(a, b) for a, b in zip(versions, versions[1:], strict=False) if a != b]


def test_a_new_version_swaps_in_under_load_without_a_failed_request(models_dir) -> None:
    with open_store(f"sqlite:///{models_dir / 'shoprec.db'}") as store:
        key = create_key(store, ["admin"], rate_per_minute=1_000_000)
    with Server(models_dir) as server:
        # the load starts once the start-up warm-up of the feed cache is (nearly) over: this test is about
        # swaps, and the warm-up encodes every shopper's past queries. Users are warmed in order, so the
        # first feed of one of the last users, never asked before, comes from the cache once it is done
        unasked = iter(range(200, 100, -1))

        def warmed() -> bool:
            url = f"{server.url}/v1/users/U{next(unasked):05d}/recommendations?k=5"
            return "served from the feed cache" in httpx.get(url, headers={"X-API-Key": key}).json()["notes"]

        wait_for(warmed, 60, "the feed cache's start-up warm-up")
        began = time.monotonic()
        clients = [Feeds(server.url, key, rate=50, seed=n) for n in range(2)]
        time.sleep(1.0)
        copied = time.monotonic()
        copy_version(models_dir / "v0001", models_dir, "v0002")  # found by the service's poll (every 2 s)
        wait_for(lambda: any(f.log and f.log[-1][2] == "v0002" for f in clients), 30, "the poll to swap")
        polled = time.monotonic()
        copy_version(models_dir / "v0001", models_dir, "v0003")
        asked = time.monotonic()
        reload = httpx.post(f"{server.url}/v1/models/reload", headers={"X-API-Key": key}, timeout=60)
        reloaded = time.monotonic()
        time.sleep(1.0)
        for feeds in clients:
            feeds.stop()
        elapsed = time.monotonic() - began
    assert reload.status_code == 200 and reload.json()["loaded"] == ["v0003"], reload.text
    log = sorted(entry for feeds in clients for entry in feeds.log)
    # the load must overlap each swap: requests answered while the new version loaded (what a slow,
    # shared machine still gives; a bound on the overall rate failed at 31 requests/s on a busy one)
    during_poll = sum(copied <= t <= polled for t, _, _ in log)
    during_reload = sum(asked <= t <= reloaded for t, _, _ in log)
    rate = len(log) / elapsed
    assert during_poll >= 5 and during_reload >= 5, (
        f"too light a load to test the swaps under: {during_poll} requests while v0002 loaded, "
        f"{during_reload} while v0003 loaded ({rate:.0f} requests/s in all)"
    )
    failed = [entry for entry in log if entry[1] != 200]
    assert failed == [], f"{len(failed)} of {len(log)} requests failed, first: {failed[:3]}"
    assert log[0][2] == "v0001"
    for feeds in clients:
        assert feeds.switches() == [("v0001", "v0002"), ("v0002", "v0003")], "each swap once, never back"
    assert {v for t, _, v in log if t > polled} <= {"v0002", "v0003"}
    assert {v for t, _, v in log if t > reloaded} == {"v0003"}
