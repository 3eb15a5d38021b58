"""The feedback loop's store methods (schema 5), the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from test_store import run_sql

from shoprec.service.store import Event, Impression, Store, StoreError, UnknownUser, open_store


def ev(event_id: str, user: str, item: str, kind: str, ts: float, rec: str | None = None, **more) -> Event:
    return Event(event_id, user, item, kind, ts, rec, **more)


def test_events_keep_platform_and_language(store: Store) -> None:
    store.append_events(
        [
            ev("e1", "u1", "i1", "view", 1.0, platform="app", language="zh-CN"),
            ev("e2", "u1", "i2", "click", 2.0, platform="smart-fridge"),  # a platform never seen: stored as is
            ev("e3", "u1", "i3", "view", 3.0),
        ]
    )
    got = store.user_events("u1")
    assert [(e.platform, e.language) for e in got] == [("app", "zh-CN"), ("smart-fridge", None), (None, None)]
    assert store.get_events(["e1"])[0] == ev("e1", "u1", "i1", "view", 1.0, platform="app", language="zh-CN")
    assert store.events_after(0)[1].event.platform == "smart-fridge"


def test_upgrade_from_4_keeps_events_and_lists(store_url: str) -> None:
    with open_store(store_url, migrate=False) as store:
        assert store.migrate(target=4) == 4
        store_v4_event = "INSERT INTO events (event_id, user_id, item_id, event, ts) VALUES (?, ?, ?, ?, ?)"
        run_sql(store_url, store_v4_event, ("old", "u1", "a", "click", 5.0))
        items = '["a", "b"]' if store_url.startswith("sqlite") else "{a,b}"
        run_sql(
            store_url,
            "INSERT INTO impressions (recommendation_id, user_id, version, scenario, items, sources, ts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("r0", "u1", "v1", "home", items, items.replace("a", "ease").replace("b", "pop"), 4.0),
        )
        run_sql(store_url, "UPDATE events SET recommendation_id = ? WHERE event_id = ?", ("r0", "old"))
        assert store.migrate() == 5
        assert store.user_events("u1")[0].platform is None
        [logged] = store.logged_impressions()
        assert (logged.items, logged.propensities, logged.explored, logged.platform) == (
            ["a", "b"],
            [1.0, 1.0],
            [False, False],
            None,
        )
        assert logged.clicks == [True, False]
        assert store.online_stats(by=["platform"]) == [
            {"platform": None, "impressions": 2, "clicks": 1, "purchases": 0, "ctr": 0.5, "conversion": 0.0}
        ]


@pytest.fixture
def logged(store: Store) -> Store:
    store.log_impressions(
        [
            Impression(
                "r1",
                "u1",
                "v1",
                "home",
                ["a", "b", "a"],
                ["ease", "pop", "pop"],
                100.0,
                propensities=[0.9, 0.05, 0.5],
                explored=[False, True, True],
                platform="app",
                latency_ms=12.5,
            ),  # fmt: skip
            Impression("r2", "u2", "v2", "home", ["c", "a"], ["ease", "ease"], 200.0, platform="web"),
            Impression("r3", "u1", "v1", "similar", ["d"], ["text"], 300.0),
        ]
    )
    store.append_events(
        [
            ev("c1", "u1", "b", "click", 101.0, "r1"),
            ev("c2", "u1", "b", "click", 102.0, "r1"),  # the same item again: one click
            ev("p1", "u1", "b", "purchase", 103.0, "r1"),
            ev("c3", "u1", "c", "click", 104.0, "r1"),  # c was not in r1
            ev("v1", "u2", "a", "view", 201.0, "r2"),  # a view is not a click
            ev("c4", "u2", "a", "click", 202.0, "r2"),
            ev("c5", "u1", "d", "click", 301.0),  # no recommendation id
        ]
    )
    return store


def test_logged_impressions_carry_propensities_and_outcomes(logged: Store) -> None:
    r1, r2, r3 = logged.logged_impressions()
    assert (r1.items, r1.sources, r1.propensities, r1.explored) == (
        ["a", "b"],
        ["ease", "pop"],
        [0.9, 0.05],
        [False, True],
    )  # the repeated item kept at its first place
    assert (r1.clicks, r1.purchases, r1.platform, r1.user_id, r1.timestamp) == (
        [False, True],
        [False, True],
        "app",
        "u1",
        100.0,
    )
    assert (r2.propensities, r2.explored, r2.clicks, r2.purchases) == (
        [1.0, 1.0],
        [False, False],
        [False, True],
        [0, 0],
    )
    assert r3.clicks == [False] and r3.scenario == "similar"


def test_logged_impressions_filters(logged: Store) -> None:
    def ids(**kw) -> list[str]:
        return [imp.recommendation_id for imp in logged.logged_impressions(**kw)]

    assert ids(since=200.0) == ["r2", "r3"]
    assert ids(until=200.0) == ["r1"]
    assert ids(versions=["v1"]) == ["r1", "r3"]
    assert ids(versions=[]) == []
    assert ids(versions=["v1", "v2"], scenario="home") == ["r1", "r2"]


def test_online_stats_by_platform(logged: Store) -> None:
    rows = logged.online_stats(by=["platform"])
    got = {r["platform"]: (r["impressions"], r["clicks"], r["purchases"]) for r in rows}
    assert got == {"app": (2, 1, 1), "web": (2, 1, 0), None: (1, 0, 0)}
    by_two = logged.online_stats(by=("version", "platform"))
    assert {(r["version"], r["platform"]): r["impressions"] for r in by_two} == {
        ("v1", "app"): 2,
        ("v1", None): 1,
        ("v2", "web"): 2,
    }


def test_impressions_refuse_bad_propensities(store: Store) -> None:
    with pytest.raises(StoreError, match="2 items but 1 propensities"):
        store.log_impressions([Impression("r", "u", "v", "home", ["a", "b"], ["x", "x"], 1.0, propensities=[1.0])])
    with pytest.raises(StoreError, match="2 items but 3 explored"):
        store.log_impressions([Impression("r", "u", "v", "home", ["a", "b"], ["x", "x"], 1.0, explored=[True] * 3)])
    with pytest.raises(StoreError, match=r"propensities must be in \(0, 1\]"):
        store.log_impressions([Impression("r", "u", "v", "home", ["a"], ["x"], 1.0, propensities=[0.0])])
    with pytest.raises(StoreError, match="latency_ms"):
        store.log_impressions([Impression("r", "u", "v", "home", ["a"], ["x"], 1.0, latency_ms=float("nan"))])
    assert store.logged_impressions() == []


def test_request_counters_and_version_health(store: Store) -> None:
    assert store.version_health() == {}
    store.record_requests("v1", 10, 1, 50.0, at=100.0)
    store.record_requests("v1", 30, 0, 150.0, at=200.0)
    store.record_requests("v2", 0, 0, 0.0, at=200.0)
    assert store.version_health() == {
        "v1": {"requests": 40, "errors": 1, "latency_ms_mean": 5.0},
        "v2": {"requests": 0, "errors": 0, "latency_ms_mean": None},
    }
    assert store.version_health(since=150.0)["v1"] == {"requests": 30, "errors": 0, "latency_ms_mean": 5.0}
    with pytest.raises(StoreError, match="0 <= errors <= requests"):
        store.record_requests("v1", 1, 2, 0.0, at=1.0)


def test_delete_user_removes_everything_and_remembers(logged: Store) -> None:
    logged.log_search("s1", "u1", "red shoes", 3, 50.0)
    logged.log_search("s2", "u2", "hats", 1, 60.0)
    removed = logged.delete_user("u1", actor="key-admin")
    assert removed == {"events": 5, "impressions": 2, "searches": 1}
    assert logged.user_events("u1") == [] and logged.user_searches("u1") == []
    assert [i.recommendation_id for i in logged.logged_impressions()] == ["r2"]
    assert len(logged.user_events("u2")) == 2 and logged.user_searches("u2")[0].query == "hats"  # others untouched
    assert logged.forgotten_users() == {"u1"}
    [entry] = logged.audit_log()
    assert (entry["actor"], entry["action"], entry["subject"]) == ("key-admin", "forget_user", "u1")
    assert entry["detail"] == {"events": 5, "impressions": 2, "searches": 1, "again": False}
    # forgetting again: nothing left, still known as forgotten, audited again
    assert logged.delete_user("u1", actor="cli") == {"events": 0, "impressions": 0, "searches": 0}
    assert [e["actor"] for e in logged.audit_log()] == ["cli", "key-admin"]
    assert logged.audit_log(limit=1)[0]["detail"]["again"] is True


def test_delete_unknown_user(store: Store) -> None:
    with pytest.raises(UnknownUser, match="unknown user 'ghost'"):
        store.delete_user("ghost", actor="cli")
    assert store.forgotten_users() == set() and store.audit_log() == []
    # known only from a version's training data: the service asks to record it anyway
    assert store.delete_user("ghost", actor="cli", require_known=False) == {
        "events": 0,
        "impressions": 0,
        "searches": 0,
    }
    assert store.forgotten_users() == {"ghost"}


def test_audit_and_decisions(store: Store) -> None:
    store.audit("key-1", "set_plan", "serving", {"arms": {"v1": 0.5, "v2": 0.5}}, at=10.0)
    assert store.audit_log() == [
        {
            "actor": "key-1",
            "action": "set_plan",
            "subject": "serving",
            "at": 10.0,
            "detail": {"arms": {"v1": 0.5, "v2": 0.5}},
        }
    ]
    store.record_decision("v1-vs-v2", "continue", {"p": 0.3}, at=100.0)
    store.record_decision("v1-vs-v2", "promote", {"p": 0.001, "winner": "v2"}, at=200.0)
    assert [(d["action"], d["at"]) for d in store.decisions()] == [("promote", 200.0), ("continue", 100.0)]
    assert store.decisions(limit=1)[0]["evidence"] == {"p": 0.001, "winner": "v2"}
    with pytest.raises(StoreError, match="use one of promote, rollback, continue, guardrail, challenger"):
        store.record_decision("x", "celebrate", {}, at=1.0)
    with pytest.raises(StoreError, match="not JSON"):
        store.record_decision("x", "continue", {"f": object()}, at=1.0)


def test_lists_of_a_forgotten_user_arriving_late_are_dropped(logged: Store) -> None:
    logged.delete_user("u2", actor="cli")
    late = Impression("r9", "u2", "v1", "home", ["a"], ["ease"], 400.0)
    logged.log_impressions([late, Impression("r10", "u3", "v1", "home", ["a"], ["ease"], 400.0)])
    assert [i.user_id for i in logged.logged_impressions(since=400.0)] == ["u3"]


def test_searches_of_a_forgotten_user_are_logged_anonymous(store: Store) -> None:
    store.log_search("s1", "u1", "red shoes", 3, 50.0)
    store.delete_user("u1", actor="cli")
    store.log_search("s2", "u1", "blue shoes", 2, 60.0)
    store.log_search("s3", "u2", "hats", 1, 70.0)
    assert store.user_searches("u1") == []
    assert store.get_searches(["s2"])["s2"].user_id is None and store.get_searches(["s3"])["s3"].user_id == "u2"
