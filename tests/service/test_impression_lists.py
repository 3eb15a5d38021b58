"""Impressions stored one row per served list give the same online statistics as the former one row
per shown item: before and after the migration, and when logged anew, on both backends."""

from __future__ import annotations

import json
import random
import sqlite3
from collections import Counter
from contextlib import closing

import psycopg
import pytest

from shoprec.service.store import Event, Impression, Store, open_store
from shoprec.service.store.stats import stats_query, stats_rows

GROUPINGS = [(), ("version",), ("source",), ("scenario",), ("version", "source"), ("source", "scenario", "version")]
OPTIONS = [(None, None), (60, None), (None, 1300.0), (300, 1150.0)]
OLD_INSERT = (
    "INSERT INTO impressions (recommendation_id, pos, user_id, version, scenario, item_id, source, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
"""How impressions were written before migration 3: one row per (list, position)."""
OLD_EVENTS = "INSERT INTO events (event_id, user_id, item_id, event, ts, recommendation_id) VALUES (?, ?, ?, ?, ?, ?)"
"""How events were written before migration 4 (no search columns)."""


def served_lists(seed: int = 5) -> tuple[list[Impression], list[Event]]:
    """Forty lists over a small catalogue (one lists an item twice) and clicks and purchases on them,
    some on items the list did not show, some twice, some without a list."""
    rng = random.Random(seed)
    lists = []
    for r in range(40):
        items = rng.sample([f"i{n}" for n in range(15)], rng.randint(1, 8))
        if r == 7:
            items = [*items, items[0]]
        sources = [rng.choice(["ease", "also-viewed", "trending"]) for _ in items]
        ts = 1000.0 + 17.3 * r
        lists.append(
            Impression(
                f"r{r}", f"u{r % 9}", rng.choice(["v1", "v2"]), rng.choice(["home", "similar"]), items, sources, ts
            )
        )
    events = []
    for n in range(120):
        shown = rng.choice(lists)
        item = rng.choice(shown.items) if rng.random() < 0.8 else f"i{rng.randrange(15)}"
        rec = shown.recommendation_id if rng.random() < 0.9 else None
        kind = rng.choice(["click", "click", "purchase", "view"])
        events.append(Event(f"e{n}", shown.user_id, item, kind, shown.timestamp + 5, rec))
    return lists, events


def reference(lists: list[Impression], events: list[Event], by, bucket, since) -> list[tuple]:
    """The statistics worked out in Python: each (list, item) shown once, under its first source."""
    acted = {(e.recommendation_id, e.item_id, e.event) for e in events}
    totals: dict[tuple, Counter] = {}
    for imp in lists:
        if since is not None and imp.timestamp < since:
            continue
        seen = set()
        for item, source in zip(imp.items, imp.sources, strict=True):
            if item in seen:
                continue
            seen.add(item)
            row = {"version": imp.version, "source": source, "scenario": imp.scenario}
            key = tuple(row[k] for k in by) + ((int(imp.timestamp // bucket) * bucket,) if bucket else ())
            count = totals.setdefault(key, Counter())
            count["impressions"] += 1
            count["clicks"] += (imp.recommendation_id, item, "click") in acted
            count["purchases"] += (imp.recommendation_id, item, "purchase") in acted
    return sorted((*k, c["impressions"], c["clicks"], c["purchases"]) for k, c in totals.items())


def as_tuples(rows: list[dict], by, bucket) -> list[tuple]:
    names = [*by, *(["bucket"] if bucket else [])]
    return sorted((*(r[n] for n in names), r["impressions"], r["clicks"], r["purchases"]) for r in rows)


def execute(url: str, statement: str, rows: list[tuple] | None = None, params: list | None = None) -> list[tuple]:
    """Run SQL on the store's database from outside the store (to write the former layout)."""
    if url.startswith("sqlite:///"):
        with closing(sqlite3.connect(url[len("sqlite:///") :])) as conn, conn:
            if rows is not None:
                conn.executemany(statement, rows)
                return []
            return conn.execute(statement, params or []).fetchall()
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        if rows is not None:
            cur.executemany(statement.replace("?", "%s"), rows)
            return []
        cur.execute(statement.replace("?", "%s"), params or [])
        return cur.fetchall()


def old_stats(url: str, store: Store, by, bucket, since) -> list[tuple]:
    """The statistics by the query as it ran on the former table (one row per shown item)."""
    sql, params = stats_query(list(by), store.bucket_sql, bucket, since, "SELECT * FROM impressions")
    return as_tuples(stats_rows(execute(url, sql, params=params), list(by), bucket is not None), by, bucket)


def test_migration_keeps_online_stats(store_url: str) -> None:
    lists, events = served_lists()
    with open_store(store_url, migrate=False) as store:
        assert store.migrate(target=2) == 2
        rows = [
            (imp.recommendation_id, pos, imp.user_id, imp.version, imp.scenario, item, source, imp.timestamp)
            for imp in lists
            for pos, (item, source) in enumerate(zip(imp.items, imp.sources, strict=True))
        ]
        execute(store_url, OLD_INSERT, rows=rows)
        execute(
            store_url,
            OLD_EVENTS,
            rows=[(e.event_id, e.user_id, e.item_id, e.event, e.timestamp, e.recommendation_id) for e in events],
        )
        before = {(by, b, s): old_stats(store_url, store, by, b, s) for by in GROUPINGS for b, s in OPTIONS}
        assert store.migrate(target=3) == 3
        assert execute(store_url, "SELECT COUNT(*) FROM impressions") == [(len(lists),)]
        for by in GROUPINGS:
            for bucket, since in OPTIONS:
                after = as_tuples(store.online_stats(by, bucket, since), by, bucket)
                assert after == before[(by, bucket, since)] == reference(lists, events, by, bucket, since)
        stored = execute(store_url, "SELECT items, sources FROM impressions WHERE recommendation_id = ?", params=["r3"])
        items, sources = (json.loads(v) if isinstance(v, str) else v for v in stored[0])
        assert (items, sources) == (lists[3].items, lists[3].sources)  # list order kept


def test_lists_logged_one_row_each_give_the_same_stats(store: Store, store_url: str) -> None:
    lists, events = served_lists(seed=11)
    store.log_impressions(lists[:25])
    store.log_impressions(lists[20:])  # five lists logged twice: stored once
    store.append_events(events)
    assert execute(store_url, "SELECT COUNT(*) FROM impressions") == [(len(lists),)]
    checked = 0
    for by in GROUPINGS:
        for bucket, since in OPTIONS:
            got = as_tuples(store.online_stats(by, bucket, since), by, bucket)
            assert got == reference(lists, events, by, bucket, since)
            checked += bool(got)
    assert checked == len(GROUPINGS) * len(OPTIONS)
    [(shown, clicks, purchases)] = reference(lists, events, (), None, None)
    assert shown > clicks > 0 and purchases > 0


@pytest.mark.parametrize("rows", [1, 3])
def test_impressions_table_grows_one_row_per_list(store: Store, store_url: str, rows: int) -> None:
    store.log_impressions(
        [Impression(f"r{n}", "u", "v1", "home", [f"i{j}" for j in range(10)], ["ease"] * 10, 1.0) for n in range(rows)]
    )
    assert execute(store_url, "SELECT COUNT(*) FROM impressions") == [(rows,)]
    assert store.online_stats()[0]["impressions"] == 10 * rows
