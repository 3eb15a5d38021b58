"""The durable store, the same tests on SQLite and PostgreSQL (the ``store``/``store_url`` fixtures)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager

import numpy as np
import psycopg
import pytest

from shoprec.errors import ConfigError
from shoprec.service.store import (
    SCHEMA_VERSION,
    ApiKeyRecord,
    Event,
    GroupCommitter,
    Impression,
    ItemRecord,
    Store,
    StoreError,
    open_store,
)


def ev(event_id: str, user: str = "u1", item: str = "i1", kind: str = "view", ts: float = 1000.0, rec=None) -> Event:
    return Event(event_id, user, item, kind, ts, rec)


def run_sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    """One statement on the store's database, outside the store (to make states the store never makes)."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :])) as conn, conn:
            return conn.execute(statement, params).fetchall()
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


# events


def test_append_is_idempotent_by_event_id(store: Store) -> None:
    first = store.append_events([ev("e1"), ev("e2"), ev("e1")])
    assert first.inserted == ["e1", "e2"] and first.duplicates == ["e1"]
    again = store.append_events([ev("e2", item="other"), ev("e3")])
    assert again.inserted == ["e3"] and again.duplicates == ["e2"]
    assert store.count_events() == 3
    assert store.get_events(["e2"])[0].item_id == "i1"  # the first write wins
    assert store.append_events([]).inserted == []


def test_events_survive_close_and_reopen(store_url: str) -> None:
    with open_store(store_url) as store:
        store.append_events([ev("e1", rec="r1"), ev("e2", ts=1001.5)])
    with open_store(store_url) as store:
        assert store.get_events(["e2", "nope", "e1"]) == [ev("e2", ts=1001.5), ev("e1", rec="r1")]
        assert store.count_events() == 2


def test_events_after_follows_ingest_order(store: Store) -> None:
    store.append_events([ev("c", ts=3.0), ev("a", ts=1.0)])
    store.append_events([ev("b", ts=2.0)])
    stored = store.events_after(0)
    assert [s.event.event_id for s in stored] == ["c", "a", "b"]
    seqs = [s.seq for s in stored]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert [s.event.event_id for s in store.events_after(seqs[0])] == ["a", "b"]
    assert [s.event.event_id for s in store.events_after(0, limit=2)] == ["c", "a"]
    assert store.events_after(seqs[-1]) == []


def test_user_events_are_the_most_recent_oldest_first(store: Store) -> None:
    store.append_events([ev(f"x{i}", user="u1" if i % 2 else "u2", item=f"i{i}") for i in range(10)])
    assert [e.item_id for e in store.user_events("u1", limit=3)] == ["i5", "i7", "i9"]
    assert [e.item_id for e in store.user_events("u2")] == ["i0", "i2", "i4", "i6", "i8"]
    assert store.user_events("nobody") == []


def test_four_threads_writing_lose_nothing(store: Store) -> None:
    barrier = threading.Barrier(4)

    def write(t: int) -> list[str]:
        barrier.wait()
        inserted = []
        for i in range(40):
            inserted += store.append_events([ev(f"t{t}-{i}", user=f"u{t}")]).inserted
            if i == 20:
                inserted += store.append_events([ev("shared")]).inserted
        return inserted

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(write, range(4)))
    assert sum(r.count("shared") for r in results) == 1  # exactly one thread stored the shared id
    assert store.count_events() == 4 * 40 + 1
    seqs = [s.seq for s in store.events_after(0)]
    assert len(seqs) == 161 and seqs == sorted(set(seqs))
    assert [e.event_id for e in store.user_events("u2", 40)] == [f"t2-{i}" for i in range(40)]


# items


def test_items_upsert_delete_and_changes(store: Store) -> None:
    vector = np.array([0.5, -1.0, 2.25], dtype=np.float32)
    shoe = ItemRecord("SKU-1", "Red Running Shoe", "light", "shoes", "Acme", 59.9, "en", {"size": [42, 43]}, vector)
    seq1 = store.upsert_items([shoe, ItemRecord("SKU-2", "Blue 100% Cotton Shirt")])
    got = store.get_item("SKU-1")
    assert got is not None and got.updated_seq == seq1 and not got.deleted
    assert (got.title, got.description, got.category, got.brand, got.price, got.language) == (
        "Red Running Shoe",
        "light",
        "shoes",
        "Acme",
        59.9,
        "en",
    )
    assert got.attributes == {"size": [42, 43]}
    assert got.vector.dtype == np.float32 and np.array_equal(got.vector, vector)
    assert store.get_item("SKU-2").vector is None and store.get_item("SKU-2").price is None

    seq2 = store.upsert_items([ItemRecord("SKU-2", "Blue Shirt", price=10.0), ItemRecord("SKU-3", "Hat")])
    assert seq2 > seq1
    assert [i.item_id for i in store.items_changed_after(seq1)] == ["SKU-2", "SKU-3"]
    assert store.get_item("SKU-2").title == "Blue Shirt"

    assert store.delete_item("SKU-3") is True
    assert store.delete_item("unknown") is False
    changed = store.items_changed_after(seq2)
    assert [(i.item_id, i.deleted) for i in changed] == [("SKU-3", True)] and changed[0].updated_seq > seq2
    assert store.get_item("SKU-3").deleted and store.get_item("nope") is None
    assert store.count_items() == 2
    assert [i.item_id for i in store.items_changed_after(0)] == ["SKU-1", "SKU-2", "SKU-3"]


def test_search_items_is_case_insensitive_on_id_and_title(store: Store) -> None:
    store.upsert_items(
        [
            ItemRecord("SKU-1", "Red Running Shoe"),
            ItemRecord("SKU-2", "Blue 100% Cotton"),
            ItemRecord("SHOE-7", "Sandal"),
            ItemRecord("SKU-3", "Old shoe"),
        ]
    )
    store.delete_item("SKU-3")
    assert [i.item_id for i in store.search_items("shoe")] == ["SHOE-7", "SKU-1"]
    assert [i.item_id for i in store.search_items("sku-")] == ["SKU-1", "SKU-2"]
    assert [i.item_id for i in store.search_items("100%")] == ["SKU-2"]
    assert [i.item_id for i in store.search_items("%")] == ["SKU-2"]  # "%" is literal, not a wildcard
    assert [i.item_id for i in store.search_items("_")] == []  # "_" is literal, not a wildcard
    assert len(store.search_items("s", limit=2)) == 2


def test_bad_item_records_are_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="'bad'.*JSON"):
        store.upsert_items([ItemRecord("bad", attributes={"when": object()})])
    with pytest.raises(StoreError, match="one-dimensional"):
        store.upsert_items([ItemRecord("bad", vector=np.zeros((2, 2), dtype=np.float32))])
    assert store.count_items() == 0


# impressions and online metrics


@pytest.fixture
def served(store: Store) -> Store:
    """Three served lists and the events after them; expected numbers are worked out in each test."""
    store.log_impressions(
        [
            Impression("r1", "u1", "v1", "home", ["a", "b", "c"], ["ease", "pop", "ease"], 1000.0),
            Impression("r2", "u2", "v1", "home", ["a", "d"], ["pop", "ease"], 1070.0),
            Impression("r3", "u3", "v2", "cart", ["b", "e"], ["ease", "ease"], 1130.0),
        ]
    )
    store.log_impressions([Impression("r1", "u1", "v1", "home", ["a", "b", "c"], ["ease", "pop", "ease"], 1000.0)])
    store.append_events(
        [
            ev("c1", "u1", "a", "click", 1001, "r1"),  # counts
            ev("c2", "u1", "a", "click", 1002, "r1"),  # same (list, item) again: counted once
            ev("p1", "u1", "a", "purchase", 1003, "r1"),  # counts
            ev("c3", "u1", "d", "click", 1004, "r1"),  # d was not in r1
            ev("c4", "u1", "a", "click", 1005),  # no recommendation id
            ev("c5", "u2", "d", "click", 1071, "r2"),  # counts
            ev("v1", "u2", "a", "view", 1072, "r2"),  # a view is neither click nor purchase
            ev("p2", "u3", "e", "purchase", 1131, "r3"),  # counts
            ev("c6", "u9", "a", "click", 1200, "r9"),  # unknown list
        ]
    )
    return store


def counts(rows: list[dict], *keys: str) -> dict:
    return {tuple(r[k] for k in keys): (r["impressions"], r["clicks"], r["purchases"]) for r in rows}


def test_online_stats_by_version(served: Store) -> None:
    rows = served.online_stats()
    assert counts(rows, "version") == {("v1",): (5, 2, 1), ("v2",): (2, 0, 1)}
    v1 = next(r for r in rows if r["version"] == "v1")
    assert v1["ctr"] == pytest.approx(0.4) and v1["conversion"] == pytest.approx(0.2)
    assert set(v1) == {"version", "impressions", "clicks", "purchases", "ctr", "conversion"}


def test_online_stats_by_source_and_pairs(served: Store) -> None:
    assert counts(served.online_stats(by=["source"]), "source") == {("ease",): (5, 2, 2), ("pop",): (2, 0, 0)}
    assert counts(served.online_stats(by=("version", "source")), "version", "source") == {
        ("v1", "ease"): (3, 2, 1),
        ("v1", "pop"): (2, 0, 0),
        ("v2", "ease"): (2, 0, 1),
    }
    assert counts(served.online_stats(by=()), "impressions") == {(7,): (7, 2, 2)}


def test_online_stats_time_buckets_and_since(served: Store) -> None:
    rows = served.online_stats(by=["scenario"], bucket_seconds=60)
    assert counts(rows, "scenario", "bucket") == {
        ("cart", 1080): (2, 0, 1),
        ("home", 960): (3, 1, 1),
        ("home", 1020): (2, 1, 0),
    }
    assert [(r["scenario"], r["bucket"]) for r in rows] == [("cart", 1080), ("home", 960), ("home", 1020)]
    assert counts(served.online_stats(since=1070.0), "version") == {("v1",): (2, 1, 0), ("v2",): (2, 0, 1)}


def test_online_stats_and_impressions_refuse_bad_input(store: Store) -> None:
    with pytest.raises(StoreError, match="user_id"):
        store.online_stats(by=["user_id"])
    with pytest.raises(StoreError, match="bucket_seconds"):
        store.online_stats(bucket_seconds=0)
    with pytest.raises(StoreError, match="2 items but 1 sources"):
        store.log_impressions([Impression("r", "u", "v", "home", ["a", "b"], ["ease"], 1.0)])
    assert store.online_stats() == []


# api keys and settings


def test_api_keys(store: Store) -> None:
    admin = ApiKeyRecord("k1", "sha256:aa", ["admin", "read"], 600, 1000.0)
    store.put_api_key(admin)
    store.put_api_key(ApiKeyRecord("k0", "sha256:bb", ["read"], 60, 2000.0))
    assert store.get_api_key("k1") == admin and store.get_api_key("nope") is None
    store.put_api_key(ApiKeyRecord("k1", "sha256:aa", ["admin", "read"], 600, 1000.0, revoked=True))
    assert [(k.key_id, k.revoked) for k in store.list_api_keys()] == [("k1", True), ("k0", False)]


def test_settings(store: Store) -> None:
    assert store.get_setting("ab_split") is None
    store.set_setting("ab_split", {"v0001": 0.9, "v0002": 0.1})
    store.set_setting("ab_split", {"v0002": 1.0, "note": "ü"})
    assert store.get_setting("ab_split") == {"v0002": 1.0, "note": "ü"}
    with pytest.raises(StoreError, match="'pinned' must be a JSON object"):
        store.set_setting("pinned", ["v1"])


# migrations


def test_fresh_database_gets_every_migration_once(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION == 5
        store.append_events([ev("e1")])
    with open_store(store_url) as store:  # re-open: nothing to apply (re-running a CREATE TABLE would fail)
        assert store.schema_version() == 5 and store.count_events() == 1
    assert run_sql(store_url, "SELECT version, name FROM schema_migrations ORDER BY version") == [
        (1, "events, items, impressions"),
        (2, "api keys and shared settings"),
        (3, "impressions: one row per served list"),
        (4, "search log; events carry the search they followed and its query"),
        (5, "feedback loop: platform and language, propensities, request counters, forgotten users, audit, decisions"),
    ]


def test_upgrade_from_version_1_to_2_keeps_data(store_url: str) -> None:
    with open_store(store_url, migrate=False) as store:
        assert store.schema_version() == 0
        assert store.migrate(target=1) == 1
    # written as a shoprec of schema 1 wrote it (today's append_events writes columns added later)
    insert = "INSERT INTO events (event_id, user_id, item_id, event, ts) VALUES (?, ?, ?, ?, ?)"
    run_sql(store_url, insert, ("old", "u1", "i1", "view", 1.0))
    assert run_sql(store_url, "SELECT COUNT(*) FROM schema_migrations") == [(1,)]
    with open_store(store_url) as store:
        assert store.schema_version() == 5
        assert [e.event_id for e in store.user_events("u1")] == ["old"]
        store.put_api_key(ApiKeyRecord("k", "h", [], 1, 0.0))
        assert store.get_api_key("k") is not None


def test_newer_schema_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    run_sql(store_url, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", (99, "x", 0.0))
    with pytest.raises(StoreError, match="schema version 99, newer than this shoprec knows \\(5\\).*upgrade"):
        open_store(store_url)


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    barrier = threading.Barrier(4)

    def open_and_close(_: int) -> int:
        barrier.wait()
        with open_store(store_url) as store:
            return store.schema_version()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_close, range(4))) == [SCHEMA_VERSION] * 4
    assert run_sql(store_url, "SELECT COUNT(*) FROM schema_migrations") == [(SCHEMA_VERSION,)]


# group commit


def test_group_commit_resolves_each_submitter_with_its_own_ids(store: Store) -> None:
    n_threads, per_thread = 16, 20
    with GroupCommitter(store, max_wait_ms=2.0) as committer:

        def produce(t: int) -> list[list[str]]:
            return [
                committer.submit([ev(f"g{t}-{i}", user=f"u{t}")]).result(timeout=10).inserted for i in range(per_thread)
            ]

        with ThreadPoolExecutor(n_threads) as pool:
            results = list(pool.map(produce, range(n_threads)))
        assert results == [[[f"g{t}-{i}"] for i in range(per_thread)] for t in range(n_threads)]
        assert committer.events_written == n_threads * per_thread
        assert committer.groups < n_threads * per_thread  # some commits carried several submitters
    assert store.count_events() == n_threads * per_thread
    assert len(store.get_events([f"g{t}-{i}" for t in range(n_threads) for i in range(per_thread)])) == 320


def test_group_commit_splits_duplicates_and_flushes_on_close(store: Store) -> None:
    store.append_events([ev("old")])
    committer = GroupCommitter(store, max_wait_ms=500.0)
    first = committer.submit([ev("x"), ev("old")])
    second = committer.submit([ev("x"), ev("y")])
    committer.close()  # returns long before max_wait: close flushes what is queued
    assert (first.result(0).inserted, first.result(0).duplicates) == (["x"], ["old"])
    assert (second.result(0).inserted, second.result(0).duplicates) == (["y"], ["x"])
    assert store.count_events() == 3
    with pytest.raises(StoreError, match="closed"):
        committer.submit([ev("z")])


@contextmanager
def writes_blocked(url: str) -> Iterator[None]:
    """Another connection holds the write lock on the events table (as a long transaction elsewhere would)."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        return
    with psycopg.connect(url) as conn:
        conn.execute("LOCK TABLE events IN SHARE MODE")
        yield
        conn.rollback()


def test_group_commit_failure_reaches_every_submitter_of_the_group(store_url: str, store: Store) -> None:
    with GroupCommitter(store) as committer:
        with writes_blocked(store_url):
            first = committer.submit([ev("first")])
            time.sleep(0.2)  # the writer takes "first" and waits for the lock; the next two queue up behind it
            good = committer.submit([ev("good")])
            bad = committer.submit([Event("bad", None, "i1", "view", 1.0)])  # user_id NOT NULL
        assert first.result(timeout=10).inserted == ["first"]
        for future in (good, bad):  # one group, one transaction: the good event is not stored either
            with pytest.raises(Exception, match="(?i)null"):
                future.result(timeout=10)
        assert committer.submit([ev("later")]).result(timeout=10).inserted == ["later"]
    assert [s.event.event_id for s in store.events_after(0)] == ["first", "later"]


# opening


def test_open_store_picks_the_backend_and_explains_bad_urls(tmp_path) -> None:
    with open_store(None, default_path=tmp_path / "default.db") as store:
        assert store.url.endswith("default.db") and (tmp_path / "default.db").exists()
    with open_store(str(tmp_path / "plain.db")) as store:
        assert store.schema_version() == SCHEMA_VERSION
    with pytest.raises(ConfigError, match="unknown database URL scheme 'mysql'") as err:
        open_store("mysql://app:s3cret@db/shop")
    assert "s3cret" not in str(err.value)
    with pytest.raises(ConfigError, match="in-memory"):
        open_store("sqlite:///:memory:")
    with pytest.raises(StoreError, match="folder .*missing does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


def test_unreachable_postgres_names_the_url_without_password() -> None:
    with pytest.raises(
        StoreError, match="cannot connect to PostgreSQL at postgresql://app:\\*\\*\\*@127.0.0.1:1/x"
    ) as e:
        open_store("postgresql://app:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(e.value) and "check that the server is running" in str(e.value)


def test_postgres_search_path_without_schema_is_explained(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="no schema of the search_path exists.*CREATE SCHEMA"):
        open_store(f"{postgres_url}?options=-csearch_path%3Dshoprec_no_such_schema")
