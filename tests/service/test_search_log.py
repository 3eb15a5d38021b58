"""The search log in the store (SQLite and PostgreSQL): logging, events that follow a search, the
zero-result and low-click analytics, an upgrade from schema 3, and the admin endpoint over it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import RedisServer, copy_version

from shoprec.service.app import create_app
from shoprec.service.live import LiveQuery, StoreLive
from shoprec.service.live_redis import RedisLive, _decode
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import Event, Store, StoreError, open_store
from shoprec.service.store.searchlog import normalize

T0 = 1_750_000_000.0


def click(event_id: str, search_id: str | None, name: str = "click", user: str = "u1", at: float = T0 + 5) -> Event:
    return Event(event_id, user, "i1", name, at, None, search_id, None)


def test_a_logged_search_is_found_by_id_and_by_user(store: Store) -> None:
    store.log_search("s1", "u1", "Tents", 12, T0)
    store.log_search("s2", None, "sofa", 0, T0 + 1)
    store.log_search("s3", "u1", "camping stove", 3, T0 + 2)
    store.log_search("s1", "u9", "changed", 1, T0 + 9)  # a search id logged twice keeps its first record
    found = store.get_searches(["s1", "nope", "s2"])
    assert sorted(found) == ["s1", "s2"]
    assert (found["s1"].user_id, found["s1"].query, found["s1"].n_results) == ("u1", "Tents", 12)
    assert found["s2"].user_id is None and found["s2"].timestamp == T0 + 1
    assert [s.query for s in store.user_searches("u1")] == ["Tents", "camping stove"]  # oldest first
    assert [s.query for s in store.user_searches("u1", limit=1)] == ["camping stove"]
    assert [s.query for s in store.user_searches("u1", since=T0 + 1)] == ["camping stove"]
    assert store.user_searches("u2") == []


def test_bad_search_records_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="n_results must be a whole number >= 0"):
        store.log_search("s1", "u1", "tent", -1, T0)
    with pytest.raises(StoreError, match="search_id must be a non-empty string"):
        store.log_search("", "u1", "tent", 1, T0)
    with pytest.raises(StoreError, match="min_searches must be a whole number >= 1"):
        store.search_analytics(min_searches=0)
    with pytest.raises(StoreError, match="max_click_rate must be between 0 and 1"):
        store.search_analytics(max_click_rate=1.5)


def test_events_keep_the_search_id_and_query_they_were_stored_with(store: Store) -> None:
    store.append_events([Event("e1", "u1", "i1", "click", T0, "r1", "s1", "tents"), click("e2", None)])
    first, second = store.get_events(["e1", "e2"])
    assert (first.recommendation_id, first.search_id, first.query) == ("r1", "s1", "tents")
    assert (second.search_id, second.query) == (None, None)
    assert [e.query for e in store.user_events("u1")] == ["tents", None]
    assert [s.event.search_id for s in store.events_after(0)] == ["s1", None]


def test_query_normalisation() -> None:
    assert normalize("  Cordless\tDRILL  ") == "cordless drill"
    assert normalize("ＴＥＮＴ") == "tent"  # full-width letters (NFKC)
    assert normalize("不粘锅") == "不粘锅"


def _plant(store: Store) -> None:
    """Planted log: 'unicorn lamp' finds nothing 3 times (2 shoppers), 'Sofa ' and 'sofa' are one
    query searched 4 times with one click, 'tent' 5 times with 3 clicks (two on one search), 'rare'
    twice with none, and one zero-result search outside the window."""
    store.log_search("z1", "u1", "Unicorn lamp", 0, T0)
    store.log_search("z2", "u2", "unicorn  lamp", 0, T0 + 1)
    store.log_search("z3", "u1", "unicorn lamp", 0, T0 + 2)
    store.log_search("old", "u3", "ancient", 0, T0 - 1000)
    for n in range(4):
        store.log_search(f"so{n}", f"u{n}", "Sofa " if n % 2 else "sofa", 8, T0 + 10 + n)
    for n in range(5):
        store.log_search(f"t{n}", "u1", "tent", 20, T0 + 20 + n)
    store.log_search("r1", None, "rare", 2, T0 + 30)
    store.log_search("r2", None, "rare", 2, T0 + 31)
    store.append_events(
        [
            click("c1", "so0"),
            click("c2", "t0"),
            click("c3", "t0", "purchase"),
            click("c4", "t1", "cart"),
            click("c5", "t2"),
            click("c6", "missing-search"),
            Event("c7", "u1", "i1", "view", T0 + 5),
        ]
    )


def test_zero_result_and_low_click_queries_with_counts(store: Store) -> None:
    _plant(store)
    report = store.search_analytics(since=T0 - 10, min_searches=2, max_click_rate=0.5)
    assert report["totals"] == {
        "searches": 14,
        "zero_result_searches": 3,
        "search_events": 6,
        "unknown_search_events": 6,  # the planted events carry no query: none came through the API
    }
    (zero,) = report["zero_result"]
    assert (zero["query"], zero["searches"], zero["users"], zero["last"]) == ("unicorn lamp", 3, 2, T0 + 2)
    assert zero["example"] == "unicorn lamp"
    low = {row["query"]: row for row in report["low_click"]}
    assert list(low) == ["rare", "sofa"]  # lowest click-through first; tent (3 of 5 acted on) is not low
    assert (low["rare"]["searches"], low["rare"]["clicked"], low["rare"]["users"]) == (2, 0, 0)
    assert (low["sofa"]["searches"], low["sofa"]["clicked"], low["sofa"]["click_rate"]) == (4, 1, 0.25)
    assert low["sofa"]["mean_results"] == 8.0


def test_analytics_thresholds_and_window(store: Store) -> None:
    _plant(store)
    everything = store.search_analytics(min_searches=1, max_click_rate=1.0)
    rows = {row["query"]: row for row in everything["low_click"]}
    assert rows["tent"]["clicked"] == 3 and rows["tent"]["purchased"] == 1  # a search acted on twice counts once
    assert {row["query"] for row in everything["zero_result"]} == {"unicorn lamp", "ancient"}
    assert store.search_analytics(min_searches=5, max_click_rate=0.5)["low_click"] == []
    assert [r["query"] for r in store.search_analytics(min_searches=4, max_click_rate=0.3)["low_click"]] == ["sofa"]
    later = store.search_analytics(since=T0 + 10, until=T0 + 30, min_searches=1, max_click_rate=1.0)
    assert later["zero_result"] == [] and later["totals"]["searches"] == 9
    assert [r["query"] for r in store.search_analytics(min_searches=1, max_click_rate=1.0, limit=1)["low_click"]] == [
        "rare"
    ]


def test_upgrade_from_schema_3_keeps_events_and_adds_the_log(store_url: str) -> None:
    with open_store(store_url, migrate=False) as store:
        assert store.migrate(target=3) == 3
    from shoprec.service.store import migrations

    old = "INSERT INTO events (event_id, user_id, item_id, event, ts, recommendation_id) VALUES (?, ?, ?, ?, ?, ?)"
    with open_store(store_url, migrate=False) as store, store._write("events") as cur:
        cur.execute(old, ("e-old", "u1", "i1", "click", T0, "r1"))
    with open_store(store_url) as store:
        assert store.schema_version() == migrations.LATEST
        (event,) = store.get_events(["e-old"])
        assert (event.recommendation_id, event.search_id, event.query) == ("r1", None, None)
        store.log_search("s1", "u1", "tent", 1, T0)
        assert store.user_searches("u1")[0].query == "tent"


# ---------------------------------------------------------------------- live queries (store and Redis)
def test_store_live_state_answers_the_search_log(store: Store) -> None:
    live = StoreLive(store)
    store.log_search("s1", "u1", "tents", 4, T0)
    live.record_search("u1", "tents", T0)  # nothing to do: the store is the live state
    store.log_search("s2", "u1", "sleeping bag", 0, T0 + 1)
    store.log_search("s3", "u2", "sofa", 2, T0 + 2)
    assert live.recent_queries("u1") == [LiveQuery("tents", T0), LiveQuery("sleeping bag", T0 + 1)]
    assert live.recent_queries("u1", n=1) == [LiveQuery("sleeping bag", T0 + 1)]
    assert live.recent_queries("u1", since=T0 + 0.5) == [LiveQuery("sleeping bag", T0 + 1)]


@pytest.fixture
def redis_live(tmp_path: Path):
    try:
        server = RedisServer(tmp_path / "redis")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    with server:
        store = open_store(f"sqlite:///{tmp_path / 'live.db'}")
        live = RedisLive(server.url, store, prefix="searchlog")
        yield live
        live.close()
        store.close()


def log(live, search_id: str, query: str, at: float, user: str = "u1") -> None:
    """What the search endpoint does: the store first, then the live state."""
    live.store.log_search(search_id, user, query, 3, at)
    live.record_search(user, query, at)


def test_redis_queries_are_rebuilt_from_the_log_and_then_appended(redis_live: RedisLive) -> None:
    log(redis_live, "s1", "tents", T0)  # no list in Redis yet: left to the first read
    assert redis_live.recent_queries("u1") == [LiveQuery("tents", T0)]
    key = f"searchlog:q:u:{redis_live.client.info('server')['run_id']}:u1"
    assert redis_live.client.llen(key) == 2  # marker + the query, rebuilt from the store
    log(redis_live, "s2", 'tab\there "quoted" 帐篷', T0 + 1)
    redis_live.store.log_search("s3", "u1", "only in the store", 1, T0 + 2)  # Redis never told: not in the list
    assert [q.query for q in redis_live.recent_queries("u1")] == ["tents", 'tab\there "quoted" 帐篷']
    assert redis_live.recent_queries("u1", since=T0 + 0.5) == [LiveQuery('tab\there "quoted" 帐篷', T0 + 1)]
    redis_live.client.flushall()  # lost: the next read is the store's again
    assert [q.query for q in redis_live.recent_queries("u1")][-1] == "only in the store"


def test_a_failed_redis_query_write_sends_the_user_to_the_store(redis_live: RedisLive, monkeypatch) -> None:
    import redis

    log(redis_live, "s1", "tents", T0)
    redis_live.recent_queries("u1")  # the list exists now

    def refuse(*args, **kwargs):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(redis_live, "_append", refuse)
    log(redis_live, "s2", "lantern", T0 + 1)
    assert redis_live.stats.redis_errors == 1
    assert [q.query for q in redis_live.recent_queries("u1")] == ["tents", "lantern"]  # from the store


def test_redis_event_entries_keep_search_id_and_query(redis_live: RedisLive) -> None:
    events = [
        Event("e1", "u1", "i1", "click", T0, "r1", "s1", "two\twords\n"),
        Event("e2", "u1", "i2", "view", T0 + 1),
    ]
    redis_live.recent("u1")  # build the (empty) list
    redis_live.store.append_events(events)
    redis_live.record(events)
    read = redis_live.recent("u1")
    assert read.state == "redis" and list(read) == events
    assert _decode("u1", b"e0\ti0\tclick\t1.0\t") == Event("e0", "u1", "i0", "click", 1.0)  # an entry from before


# ---------------------------------------------------------------------- through the API
@pytest.fixture(scope="module")
def client(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("searchlog-models")
    copy_version(trained, root)
    settings = ServiceSettings(models_dir=str(root), auth=False, poll_seconds=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def event(user: str, item: str, name: str = "click", **extra) -> dict:
    return {"event_id": f"sl-{uuid.uuid4().hex}", "user_id": user, "item_id": item, "event": name, **extra}


def shop(client: TestClient) -> tuple[list[str], list[str]]:
    dep = client.app.state.engine.versions.default()
    return [str(u) for u in dep.dataset.user_vocab.ids()], [str(i) for i in dep.dataset.item_vocab.ids()]


def test_a_search_event_is_stored_with_its_query(client: TestClient) -> None:
    users, items = shop(client)
    store = client.app.state.engine.store
    store.log_search("api-s1", users[0], "Garden hose <b>", 7, time.time())
    body = event(users[0], items[0], "purchase", search_id="api-s1")
    ack = client.post("/v1/events", json=body)
    assert ack.status_code == 200, ack.text
    assert ack.json()["unknown_search_ids"] == [] and ack.json()["accepted"] == 1
    (stored,) = store.get_events([body["event_id"]])
    assert (stored.search_id, stored.query) == ("api-s1", "Garden hose <b>")
    live = client.get(f"/v1/users/{users[0]}/events").json()
    assert live["events"][-1]["search_id"] == "api-s1" and live["events"][-1]["query"] == "Garden hose <b>"


def test_an_unknown_search_id_is_stored_counted_and_reported(client: TestClient) -> None:
    users, items = shop(client)
    store = client.app.state.engine.store
    before = store.search_analytics(since=0)["totals"]["unknown_search_events"]
    known = event(users[1], items[1], search_id="api-s2")
    store.log_search("api-s2", users[1], "lamp", 3, time.time())
    unknown = [event(users[1], items[2], search_id="never-logged"), event(users[1], items[3], "cart", search_id="x")]
    ack = client.post("/v1/events/batch", json={"events": [known, *unknown]})
    assert ack.status_code == 200, ack.text
    assert ack.json()["accepted"] == 3 and ack.json()["unknown_search_ids"] == ["never-logged", "x"]
    stored = store.get_events([e["event_id"] for e in [known, *unknown]])
    assert [(e.search_id, e.query) for e in stored] == [("api-s2", "lamp"), ("never-logged", None), ("x", None)]
    assert store.search_analytics(since=0)["totals"]["unknown_search_events"] == before + 2


def test_a_view_cannot_carry_a_search_id(client: TestClient) -> None:
    users, items = shop(client)
    one = client.post("/v1/events", json=event(users[0], items[0], "view", search_id="api-s1"))
    assert one.status_code == 422 and "body.search_id" in one.json()["error"]
    assert "only click, cart, purchase" in one.json()["error"]
    batch = client.post(
        "/v1/events/batch",
        json={"events": [event(users[0], items[0]), event(users[0], items[1], "view", search_id="s")]},
    )
    assert batch.status_code == 422 and "body.events.1.search_id" in batch.json()["error"]


def test_search_stats_endpoint(client: TestClient) -> None:
    users, items = shop(client)
    store = client.app.state.engine.store
    now = time.time()
    for n in range(3):
        store.log_search(f"st-z{n}", users[n], "Unicorn Lamp", 0, now - 10 + n)
    for n in range(4):
        store.log_search(f"st-c{n}", users[n], "chair", 9, now - 10 + n)
    client.post("/v1/events", json=event(users[0], items[0], search_id="st-c0"))
    got = client.get("/v1/stats/search", params={"min_searches": 4, "max_click_rate": 0.3})
    assert got.status_code == 200, got.text
    report = got.json()
    zero = {row["query"]: row for row in report["zero_result"]}
    assert zero["unicorn lamp"]["searches"] == 3 and zero["unicorn lamp"]["users"] == 3
    low = {row["query"]: row for row in report["low_click"]}
    assert low["chair"]["searches"] == 4 and low["chair"]["click_rate"] == 0.25
    assert report["window"]["since"] == pytest.approx(now - 30 * 86400, abs=60)
    later = client.get("/v1/stats/search", params={"since": now + 60}).json()
    assert later["zero_result"] == [] and later["totals"]["searches"] == 0
    bad = client.get("/v1/stats/search", params={"since": now, "until": now - 1})
    assert bad.status_code == 422 and "until" in bad.json()["error"]
    assert client.get("/v1/stats/search", params={"max_click_rate": 2}).status_code == 422


def test_a_users_queries_reach_the_next_feeds_context(client: TestClient) -> None:
    """The service's side of 'queries update the live profile': logged as the search endpoint logs
    them, the query is in the shopper's live queries and in the context the next feed is built from,
    after the snapshot's own queries."""
    engine = client.app.state.engine
    dep = engine.versions.default()
    used = set(shop(client)[0][:4])  # the other tests log searches for these
    user = next(str(u) for u in dep.dataset.queries["user_id"] if str(u) not in used)
    before = engine.context(dep, user)[0].queries
    assert before and before == engine.histories.snapshot_queries(dep, dep.user_index(user))
    at = time.time()
    engine.store.log_search("ctx-1", user, "camping tent", 12, at)
    engine.live.record_search(user, "camping tent", at)
    ctx, live = engine.context(dep, user)
    assert ctx.queries == (*before, "camping tent")[-20:]
    assert [q.query for q in live.queries] == ["camping tent"] and live.stamp[1] == at
    listed = client.get(f"/v1/users/{user}/events").json()["queries"]
    assert listed == [{"query": "camping tent", "timestamp": at}]
    anonymous, _ = engine.context(dep, None)
    assert anonymous.queries == ()


def test_a_search_through_the_api_feeds_the_log_the_events_and_the_context(client: TestClient) -> None:
    engine = client.app.state.engine
    dep = engine.versions.default()
    user = shop(client)[0][-1]
    answer = client.get("/v1/search", params={"q": "solar lights", "user_id": user, "k": 5})
    assert answer.status_code == 200, answer.text
    search_id = answer.json()["search_id"]
    (logged,) = engine.store.get_searches([search_id]).values()
    assert (logged.user_id, logged.query, logged.n_results) == (user, "solar lights", answer.json()["total"])
    assert engine.context(dep, user)[0].queries[-1] == "solar lights"
    assert client.get(f"/v1/users/{user}/events").json()["queries"][-1]["query"] == "solar lights"
    hit = answer.json()["hits"][0]["item_id"]
    ack = client.post("/v1/events", json=event(user, hit, search_id=search_id)).json()
    assert ack["unknown_search_ids"] == []
    assert engine.store.user_events(user)[-1].query == "solar lights"


def test_a_search_refreshes_the_shoppers_cached_home_feed(client: TestClient) -> None:
    user = shop(client)[0][-2]
    cached = "served from the feed cache"

    def notes() -> list[str]:
        response = client.get(f"/v1/users/{user}/recommendations", params={"k": 10})
        assert response.status_code == 200, response.text
        return response.json()["notes"]

    notes()
    assert cached in notes()  # nothing changed: the cache answers
    assert client.get("/v1/search", params={"q": "garden hose", "user_id": user}).status_code == 200
    assert cached not in notes()  # the pipeline ran again, with the new query in the context
    assert cached in notes()


def test_a_search_shows_in_the_next_home_feed(client: TestClient) -> None:
    """'Searched for tents' -> camping items: the default pipeline's "searched" source recalls the
    items nearest to the query, and the next home feed holds some of them, credited to the search."""
    dep = client.app.state.engine.versions.default()
    assert "searched" in [source.name for source in dep.pipeline.sources]
    candidates = version_users_of(dep)
    user = candidates[len(candidates) // 2]  # the other tests use the first and last few users

    def feed() -> list[dict]:
        response = client.get(f"/v1/users/{user}/recommendations", params={"k": 50})
        assert response.status_code == 200, response.text
        return response.json()["items"]

    assert not [i for i in feed() if i["source"] == "searched"]
    query = client.get("/v1/search", params={"q": "camping tent", "user_id": user, "k": 20}).json()
    assert query["hits"], query
    searched = [i["item_id"] for i in feed() if i["source"] == "searched"]
    assert searched, "no item of the next home feed came from the shopper's search"
    assert set(searched) & {hit["item_id"] for hit in query["hits"]}


def version_users_of(dep) -> list[str]:
    """Users of the served version with no snapshot queries (their feeds have nothing to search by)."""
    queried = set() if dep.dataset.queries is None else {str(u) for u in dep.dataset.queries["user_id"]}
    return [str(u) for u in dep.dataset.user_vocab.ids() if str(u) not in queried]
