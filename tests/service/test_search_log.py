"""The search log in the store (SQLite and PostgreSQL): logging, events that follow a search, the
zero-result and low-click analytics, an upgrade from schema 3, and the admin endpoint over it."""

from __future__ import annotations

import pytest

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
