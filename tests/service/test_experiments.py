"""Online decisions over a real SQLite store: traffic written through the Store API (served lists and
the clicks that followed them), then :class:`Experiments` judges the A/B plan: promotion of a better
challenger, rollback of a worse one, guardrails, nothing decided on equal arms, only the experiment's
own traffic counted, and the plan checks (shares summing to 1)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from shoprec.errors import ConfigError
from shoprec.service.ab import SETTING, check_plan, control_of, experiment_of
from shoprec.service.experiments import Experiments, Rules, shares_to_control
from shoprec.service.store import open_store
from shoprec.service.store.base import Event, Impression

T0 = 1_700_000_000.0
LIST = 10


@pytest.fixture
def store(tmp_path):
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def serve(store, rng, version: str, lists: int, ctr: float, start: float, span: float = 3600.0, **where) -> None:
    """``lists`` served lists of ``version`` spread over ``span`` seconds from ``start``, each shown item
    clicked with probability ``ctr`` (a click event carrying the list's recommendation id)."""
    impressions, events = [], []
    for i, at in enumerate(np.linspace(start, start + span, lists, endpoint=False)):
        rec, user = uuid.uuid4().hex, f"{version}-u{i}"
        items = [f"i{j}" for j in rng.choice(500, LIST, replace=False)]
        impressions.append(Impression(rec, user, version, "home", items, ["als"] * LIST, float(at), **where))
        for item in items:
            if rng.random() < ctr:
                events.append(Event(uuid.uuid4().hex, user, item, "click", float(at) + 5, recommendation_id=rec))
    store.log_impressions(impressions)
    if events:
        store.append_events(events)


def start(store, arms: dict[str, float], at: float = T0) -> dict:
    plan = {"arms": arms}
    store.set_setting(SETTING, plan)
    return experiment_of(store, plan, at)


def test_a_better_challenger_is_promoted_with_its_evidence_recorded(store) -> None:
    rng = np.random.default_rng(1)
    start(store, {"v0001": 0.5, "v0002": 0.5})
    serve(store, rng, "v0001", 400, 0.05, T0 + 1)
    serve(store, rng, "v0002", 400, 0.12, T0 + 1)
    experiments = Experiments(store, None, Rules(min_impressions=1000))
    result = experiments.decide(T0 + 4000)
    assert result["action"] == "promote", result
    assert store.get_setting(SETTING) == {"pinned": "v0002"}
    (decision,) = store.decisions()
    assert decision["action"] == "promote" and decision["experiment"] == result["experiment"]
    evidence = decision["evidence"]
    assert evidence["control"] == "v0001" and evidence["challenger"] == "v0002"
    assert evidence["test"]["low"] > 0 and evidence["test"]["p_value"] <= 0.05
    assert evidence["arms"]["v0002"]["impressions"] == 4000 and "beats v0001" in evidence["reason"]
    assert experiments.decide(T0 + 5000)["action"] == "none", "the plan is pinned now: no experiment"


def test_a_worse_challenger_is_rolled_back_and_its_share_goes_to_the_control(store) -> None:
    rng = np.random.default_rng(2)
    start(store, {"v0001": 0.6, "v0002": 0.2, "v0003": 0.2})
    serve(store, rng, "v0001", 600, 0.10, T0 + 1)
    serve(store, rng, "v0002", 300, 0.03, T0 + 1)
    serve(store, rng, "v0003", 300, 0.10, T0 + 1)
    result = Experiments(store, None).decide(T0 + 4000)
    assert result["action"] == "rollback"
    assert store.get_setting(SETTING) == {"arms": {"v0001": 0.8, "v0003": 0.2}}
    assert [(d["action"], d["evidence"]["challenger"]) for d in store.decisions()] == [("rollback", "v0002")]
    assert "worse than v0001" in store.decisions()[0]["evidence"]["reason"]


def test_equal_arms_continue_and_the_status_shows_intervals_over_time(store) -> None:
    rng = np.random.default_rng(3)
    start(store, {"v0001": 0.5, "v0002": 0.5})
    serve(store, rng, "v0001", 300, 0.08, T0 + 1, span=7200)
    serve(store, rng, "v0002", 300, 0.08, T0 + 1, span=7200)
    experiments = Experiments(store, None)
    status = experiments.status(T0 + 7300)
    arms = {a["version"]: a for a in status["arms"]}
    assert status["control"] == "v0001" and arms["v0001"]["role"] == "control"
    for arm in arms.values():
        low, high = arm["ctr_interval"]
        assert arm["impressions"] == 3000 and low < arm["ctr"] < high and high - low < 0.025
    (comparison,) = status["comparisons"]
    series = comparison["series"]
    assert len(series) > 20 and all(p["low"] <= p["estimate"] <= p["high"] for p in series[-5:])
    assert [p["at"] for p in series] == sorted(p["at"] for p in series)
    widths = [p["high"] - p["low"] for p in series if p["n_a"] >= 1000]
    assert widths == sorted(widths, reverse=True), "the running intersection only narrows"
    assert comparison["decision"] == "continue" and series[-1]["low"] < 0 < series[-1]["high"]
    assert experiments.decide(T0 + 7300)["action"] == "continue" and store.decisions() == []
    assert experiments.decide(T0 + 7300, record_continue=True)["action"] == "continue"
    assert store.decisions()[0]["action"] == "continue"
    assert store.get_setting(SETTING) == {"arms": {"v0001": 0.5, "v0002": 0.5}}


def test_a_guardrail_rolls_back_a_challenger_with_more_errors_whatever_its_clicks(store) -> None:
    rng = np.random.default_rng(4)
    start(store, {"v0001": 0.9, "v0002": 0.1})
    serve(store, rng, "v0001", 200, 0.05, T0 + 1)
    serve(store, rng, "v0002", 200, 0.20, T0 + 1)
    store.record_requests("v0001", 500, 1, 500 * 20.0, T0 + 60)
    store.record_requests("v0002", 500, 30, 500 * 21.0, T0 + 60)
    result = Experiments(store, None).decide(T0 + 4000)
    assert result["action"] == "guardrail" and store.get_setting(SETTING) == {"pinned": "v0001"}
    evidence = store.decisions()[0]["evidence"]
    assert evidence["guardrail"]["breached"] and "error rate 6.00% vs 0.20%" in evidence["reason"]


def test_a_slow_challenger_is_rolled_back_but_few_requests_judge_nothing(store) -> None:
    start(store, {"v0001": 0.5, "v0002": 0.5})
    store.record_requests("v0001", 100, 0, 100 * 20.0, T0 + 60)
    store.record_requests("v0002", 100, 0, 100 * 90.0, T0 + 60)
    experiments = Experiments(store, None, Rules(min_requests=200))
    serve(store, np.random.default_rng(5), "v0001", 20, 0.1, T0 + 1)
    serve(store, np.random.default_rng(6), "v0002", 20, 0.1, T0 + 1)
    assert experiments.decide(T0 + 100)["action"] == "continue"
    store.record_requests("v0001", 200, 0, 200 * 20.0, T0 + 120)
    store.record_requests("v0002", 200, 0, 200 * 90.0, T0 + 120)
    assert experiments.decide(T0 + 200)["action"] == "guardrail"
    assert "mean latency 90.0 ms vs 20.0 ms" in store.decisions()[0]["evidence"]["reason"]


def test_only_traffic_since_the_experiment_started_counts(store) -> None:
    rng = np.random.default_rng(7)
    serve(store, rng, "v0001", 500, 0.02, T0 - 10_000)  # v0001 served alone before, at a lower CTR
    start(store, {"v0001": 0.5, "v0002": 0.5})
    serve(store, rng, "v0001", 100, 0.1, T0 + 1)
    serve(store, rng, "v0002", 100, 0.1, T0 + 1)
    arms = {a["version"]: a for a in Experiments(store, None).status(T0 + 4000)["arms"]}
    assert arms["v0001"]["impressions"] == 1000 == arms["v0002"]["impressions"]
    assert experiment_of(store, {"arms": {"v0001": 0.5, "v0002": 0.5}}, T0 + 9999)["started"] == T0
    assert experiment_of(store, {"arms": {"v0001": 0.5, "v0002": 0.5}, "salt": "b"}, T0 + 9999)["started"] == T0 + 9999


def test_arms_broken_down_by_platform(store) -> None:
    rng = np.random.default_rng(8)
    start(store, {"v0001": 0.5, "v0002": 0.5})
    serve(store, rng, "v0001", 50, 0.1, T0 + 1, platform="web")
    serve(store, rng, "v0001", 30, 0.1, T0 + 1, platform="app")
    serve(store, rng, "v0002", 40, 0.1, T0 + 1, platform="app")
    rows = Experiments(store, None).status(T0 + 4000, by_platform=True)["by_platform"]
    shown = {(r["version"], r["platform"]): r["impressions"] for r in rows}
    assert shown == {("v0001", "web"): 500, ("v0001", "app"): 300, ("v0002", "app"): 400}
    assert all(r["ctr_interval"][0] <= r["ctr"] <= r["ctr_interval"][1] for r in rows)


def test_no_ab_plan_nothing_to_decide(store) -> None:
    experiments = Experiments(store, None)
    assert experiments.decide(T0)["action"] == "none"
    store.set_setting(SETTING, {"pinned": "v0001"})
    status = experiments.status(T0)
    assert status["experiment"] is None and "no A/B plan" in status["note"]


def test_plan_shares_must_sum_to_one_and_name_known_versions() -> None:
    with pytest.raises(ConfigError, match=r"shares sum to 0\.9, not 1 \(v0001=0\.6, v0002=0\.3\)"):
        check_plan({"arms": {"v0001": 0.6, "v0002": 0.3}}, ["v0001", "v0002"])
    with pytest.raises(ConfigError, match="no version 'v0009'"):
        check_plan({"arms": {"v0001": 0.5, "v0009": 0.5}}, ["v0001"])
    assert check_plan({"arms": {"v0001": 0.1, "v0002": 0.2, "v0003": 0.7}}, ["v0001", "v0002", "v0003"])
    assert check_plan({"arms": {"v0001": 1 / 3, "v0002": 1 / 3, "v0003": 1 / 3}}, ["v0001", "v0002", "v0003"])


def test_the_control_is_the_largest_share_then_the_oldest_and_rollback_pins_when_one_arm_is_left() -> None:
    assert control_of({"v0003": 0.9, "v0004": 0.1}) == "v0003"
    assert control_of({"v0004": 0.5, "v0003": 0.5}) == "v0003"
    assert control_of({"v0002": 0.2, "v0005": 0.8}) == "v0005"
    assert shares_to_control({"arms": {"v0001": 0.9, "v0002": 0.1}}, {"v0002"}, "v0001") == {"pinned": "v0001"}
