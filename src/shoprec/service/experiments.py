"""Online decisions on the A/B serving plan: per-arm statistics, a sequential test, guardrails, and
automatic promotion or rollback, each recorded with its evidence.

An experiment is an A/B plan (setting ``serving`` with two or more arms of positive share, see
:mod:`shoprec.service.ab`). It starts when this module first sees the plan (stored in setting
``experiment``) and only impressions from then on count, so a version that served alone before is
not compared on older traffic. The **control** is the arm with the largest share (the version that
served before a challenger was published at a small share); a tie goes to the oldest version. Every
other arm is a challenger, compared with the control on click-through (``metric="ctr"``: clicks per
shown item) or conversion (purchases per shown item) by the mixture SPRT of
:mod:`shoprec.loop.sequential`, at level ``alpha / number of challengers`` (Bonferroni), replayed
over the experiment's time buckets so that the decision and the chart read the same looks.

On each :meth:`Experiments.decide` (the service runs it every ``experiments_every`` seconds):

- a challenger whose error rate exceeds the control's by more than ``error_margin``, or whose mean
  latency exceeds the control's by more than ``latency_margin`` (relative), once both served
  ``min_requests`` requests, is rolled back whatever its click-through (``guardrail``);
- a challenger the test finds worse (its interval below 0), or equivalent within ``equivalence``
  when that is set, is rolled back (``rollback``): its share goes to the control;
- a challenger the test finds better is promoted (``promote``): the plan is pinned to it (with
  several winners, the one with the largest estimated lift);
- otherwise the experiment continues (recorded only when asked, e.g. by ``POST /v1/experiments/decide``).

Each action goes through :meth:`VersionManager.set_plan` (checked against the versions on disk) and
:meth:`Store.record_decision` with its evidence (counts, estimate, interval, p-value, guardrail figures).

>>> experiments = Experiments(store, engine.versions)     # doctest: +SKIP
>>> experiments.decide(time.time())["action"]            # doctest: +SKIP
'continue'
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import asdict, dataclass

from shoprec.errors import ConfigError
from shoprec.loop.intervals import wilson
from shoprec.loop.sequential import Sequential
from shoprec.service.ab import SETTING, VersionManager, ab_arms, control_of, experiment_of
from shoprec.service.store.base import Store, StoreError

log = logging.getLogger(__name__)
MAX_POINTS = 120
"""Looks (time buckets) in the running estimate: the bucket grows with the experiment's age."""
METRICS = {"ctr": "clicks", "conversion": "purchases"}


@dataclass(frozen=True)
class Rules:
    """When an experiment decides (the service settings ``experiment_*`` and ``guard_*`` fill it)."""

    alpha: float = 0.05
    """Chance of declaring two equal arms different (and of the interval ever missing the truth)."""
    tau: float = 0.01
    """Mixture standard deviation of the mSPRT, an absolute rate difference (see loop.sequential)."""
    metric: str = "ctr"
    """``ctr`` (clicks per shown item) or ``conversion`` (purchases per shown item)."""
    min_impressions: int = 1000
    """Shown items per arm before the test may decide."""
    equivalence: float | None = None
    """Roll a challenger back once its interval lies within +-this of the control; None: never."""
    error_margin: float = 0.01
    """Guardrail: the challenger's error rate may exceed the control's by at most this (absolute)."""
    latency_margin: float = 0.5
    """Guardrail: the challenger's mean latency may exceed the control's by at most this share."""
    min_requests: int = 200
    """Requests per arm before the guardrails judge."""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"experiment metric must be one of {', '.join(METRICS)}, not {self.metric!r}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"experiment alpha must be between 0 and 1, not {self.alpha}")
        if not self.tau > 0:
            raise ConfigError(f"experiment tau must be positive, not {self.tau}")


class Experiments:
    """The A/B plan's statistics (:meth:`status`) and decisions (:meth:`decide`) over a store."""

    def __init__(self, store: Store, versions: VersionManager | None, rules: Rules | None = None) -> None:
        self.store, self.versions, self.rules = store, versions, rules or Rules()

    # ------------------------------------------------------------------ statistics
    def status(self, now: float | None = None, by_platform: bool = False) -> dict:
        """Per-arm statistics with 95% intervals, each challenger's running estimate with its
        always-valid interval, the guardrails, and the latest decisions."""
        now = time.time() if now is None else now
        plan = self.store.get_setting(SETTING) or {}
        out = {"plan": plan, "rules": asdict(self.rules), "experiment": None, "decisions": self._decisions()}
        arms = ab_arms(plan)
        if len(arms) < 2:
            return {
                **out,
                "note": "no A/B plan with two or more arms: nothing to compare",
                "arms": [],
                "comparisons": [],
            }
        experiment = experiment_of(self.store, plan, now)
        started = experiment["started"]
        control = control_of(arms)
        bucket = bucket_seconds(started, now)
        rows = self.store.online_stats(by=("version",), bucket_seconds=bucket, since=started)
        series = cumulative(rows, list(arms), started, now, bucket)
        health = self._health(started)
        arm_rows = [arm_stats(v, arms[v], "control" if v == control else "challenger", series[v]) for v in arms]
        alpha = self.rules.alpha / (len(arms) - 1)
        comparisons = [
            self._compare(control, v, series, health, alpha)
            for v in sorted(arms, key=lambda v: int(v[1:]))
            if v != control
        ]
        out.update(
            experiment=experiment["id"],
            started=started,
            control=control,
            bucket_seconds=bucket,
            arms=arm_rows,
            comparisons=comparisons,
            health=health,
        )
        if by_platform:
            out["by_platform"] = self._by_platform(arms, control, started)
        return out

    def _compare(self, control: str, challenger: str, series: dict, health: dict | None, alpha: float) -> dict:
        key = METRICS[self.rules.metric]
        test = Sequential(
            alpha=alpha, tau=self.rules.tau, min_trials=self.rules.min_impressions, equivalence=self.rules.equivalence
        )
        points = []
        for (at, a), (_, b) in zip(series[control], series[challenger], strict=True):
            if a["impressions"] == 0 or b["impressions"] == 0:
                continue
            look = test.update(a["impressions"], a[key], b["impressions"], b[key])
            points.append({"at": at, **look.to_dict()})
        last = test.last
        decision = {"b_better": "promote", "a_better": "rollback", "equivalent": "rollback"}.get(
            last.decision if last else "continue", "continue"
        )
        return {
            "control": control,
            "challenger": challenger,
            "metric": self.rules.metric,
            "alpha": alpha,
            "tau": self.rules.tau,
            "test": last.to_dict() if last else None,
            "decision": decision,
            "guardrail": guardrail(health, control, challenger, self.rules),
            "series": points,
        }

    def _health(self, started: float) -> dict | None:
        try:
            return self.store.version_health(since=started)
        except (AttributeError, NotImplementedError):  # a store without request counters: no guardrails
            return None

    def _by_platform(self, arms: dict[str, float], control: str, started: float) -> list[dict] | dict:
        try:
            rows = self.store.online_stats(by=("version", "platform"), since=started)
        except StoreError as err:
            return {"error": f"statistics by platform are not available: {err.problem}"}
        out = []
        for row in rows:
            if row["version"] in arms:
                counts = {k: row[k] for k in ("impressions", "clicks", "purchases")}
                role = "control" if row["version"] == control else "challenger"
                out.append(
                    {
                        "platform": row["platform"],
                        **arm_stats(row["version"], arms[row["version"]], role, [(0, counts)]),
                    }
                )
        return out

    def _decisions(self, limit: int = 20) -> list[dict]:
        try:
            return self.store.decisions(limit=limit)
        except (AttributeError, NotImplementedError):
            return []

    # ------------------------------------------------------------------ decisions
    def decide(self, now: float | None = None, record_continue: bool = False) -> dict:
        """Judge the running experiment once and act on it: promote, roll back, or continue.

        Returns ``{"action", "experiment", "plan", "decisions": [...]}``; ``action`` is ``none`` when
        there is no A/B plan. ``now`` is on the impressions' clock (wall time in the service).
        """
        now = time.time() if now is None else now
        status = self.status(now)
        if not status["comparisons"]:
            return {"action": "none", "experiment": None, "plan": status["plan"], "decisions": []}
        plan, experiment = status["plan"], status["experiment"]
        control = status["control"]
        acted = []
        for comparison in status["comparisons"]:
            if comparison["guardrail"]["breached"]:
                acted.append(("guardrail", comparison))
            elif comparison["decision"] == "rollback":
                acted.append(("rollback", comparison))
        removed = {c["challenger"] for _, c in acted}
        winners = [c for c in status["comparisons"] if c["decision"] == "promote" and c["challenger"] not in removed]
        if winners:
            best = max(winners, key=lambda c: c["test"]["estimate"])
            acted.append(("promote", best))
            new_plan = {"pinned": best["challenger"]}
        elif removed:
            new_plan = shares_to_control(plan, removed, control)
        else:
            new_plan = plan
        records = [self._evidence(action, c, status) for action, c in acted]
        if new_plan != plan:
            if not self._apply(plan, new_plan):
                return {
                    "action": "none",
                    "experiment": experiment,
                    "plan": self.store.get_setting(SETTING) or {},
                    "decisions": [],
                    "note": "the serving plan changed while deciding; judged again next time",
                }
        elif record_continue:
            records = [self._evidence("continue", c, status) for c in status["comparisons"]]
        for record in records:
            self.store.record_decision(experiment, record["action"], record["evidence"], now)
            log.info("experiment %s: %s %s", experiment, record["action"], record["evidence"]["challenger"])
        action = next(
            (a for a in ("promote", "guardrail", "rollback") if any(a == r["action"] for r in records)), "continue"
        )
        return {"action": action, "experiment": experiment, "plan": new_plan, "decisions": records}

    def _evidence(self, action: str, comparison: dict, status: dict) -> dict:
        arms = {
            row["version"]: {k: row[k] for k in ("share", "impressions", "clicks", "purchases")}
            for row in status["arms"]
        }
        evidence = {k: comparison[k] for k in ("control", "challenger", "metric", "alpha", "tau", "test", "guardrail")}
        evidence.update(
            started=status["started"], arms={v: arms[v] for v in (comparison["control"], comparison["challenger"])}
        )
        evidence["reason"] = reason(action, comparison)
        return {"action": action, "evidence": evidence}

    def _apply(self, seen: dict, new_plan: dict) -> bool:
        """Store ``new_plan`` unless the plan changed since ``seen`` was read (another worker acted)."""
        if (self.store.get_setting(SETTING) or {}) != seen:
            return False
        if self.versions is not None:
            self.versions.set_plan(new_plan)
        else:
            self.store.set_setting(SETTING, new_plan)
        return True


# ---------------------------------------------------------------------- pieces (pure functions)
def bucket_seconds(started: float, now: float) -> int:
    """Whole minutes per bucket so that the experiment spans at most :data:`MAX_POINTS` buckets."""
    return 60 * max(1, math.ceil(max(0.0, now - started) / MAX_POINTS / 60))


def cumulative(rows: list[dict], versions: list[str], started: float, now: float, bucket: int) -> dict:
    """Per version, ``(time, counts so far)`` at the end of every bucket any arm has data in."""
    ends = sorted({min(now, r["bucket"] + bucket) for r in rows if r["version"] in versions})
    totals = {v: {"impressions": 0, "clicks": 0, "purchases": 0} for v in versions}
    by_end = {}
    for r in rows:
        if r["version"] in versions:
            by_end.setdefault(min(now, r["bucket"] + bucket), []).append(r)
    series = {v: [] for v in versions}
    for end in ends:
        for r in by_end[end]:
            for k in totals[r["version"]]:
                totals[r["version"]][k] += r[k]
        for v in versions:
            series[v].append((max(end, started), dict(totals[v])))
    return series


def arm_stats(version: str, share: float, role: str, series: list[tuple[float, dict]]) -> dict:
    """One arm's totals with click-through and conversion and their 95% Wilson intervals."""
    counts = series[-1][1] if series else {"impressions": 0, "clicks": 0, "purchases": 0}
    n = counts["impressions"]
    out = {"version": version, "share": share, "role": role, **counts}
    for name, key in METRICS.items():
        low, high = wilson(counts[key], n)
        out[name] = counts[key] / n if n else None
        out[f"{name}_interval"] = [low, high]
    return out


def guardrail(health: dict | None, control: str, challenger: str, rules: Rules) -> dict:
    """Whether the challenger breaches the error-rate or latency guardrail, with the figures."""
    if health is None:
        return {"breached": False, "checked": False, "note": "the store keeps no request counters"}
    a, b = health.get(control) or {}, health.get(challenger) or {}
    na, nb = a.get("requests", 0), b.get("requests", 0)
    out = {"breached": False, "checked": False, "requests": {control: na, challenger: nb}, "reasons": []}
    if min(na, nb) < rules.min_requests:
        out["note"] = f"fewer than {rules.min_requests} requests per arm"
        return out
    out["checked"] = True
    err_a, err_b = a.get("errors", 0) / na, b.get("errors", 0) / nb
    out["error_rate"] = {control: err_a, challenger: err_b}
    if err_b - err_a > rules.error_margin:
        out["reasons"].append(f"error rate {err_b:.2%} vs {err_a:.2%} (margin {rules.error_margin:.2%})")
    lat_a, lat_b = a.get("latency_ms_mean"), b.get("latency_ms_mean")
    out["latency_ms_mean"] = {control: lat_a, challenger: lat_b}
    if lat_a and lat_b and lat_b > lat_a * (1 + rules.latency_margin):
        out["reasons"].append(f"mean latency {lat_b:.1f} ms vs {lat_a:.1f} ms (margin +{rules.latency_margin:.0%})")
    out["breached"] = bool(out["reasons"])
    return out


def shares_to_control(plan: dict, removed: set[str], control: str) -> dict:
    """The plan without ``removed`` arms, their shares given to the control; pinned when one arm is left."""
    arms = {v: float(s) for v, s in (plan.get("arms") or {}).items() if v not in removed}
    arms[control] = arms.get(control, 0.0) + sum(float(plan["arms"][v]) for v in removed)
    if sum(1 for s in arms.values() if s > 0) < 2:
        return {"pinned": control}
    return {**{k: v for k, v in plan.items() if k != "arms"}, "arms": arms}


def reason(action: str, comparison: dict) -> str:
    test, c, b = comparison["test"] or {}, comparison["control"], comparison["challenger"]
    ci = f"{test.get('low', -1):+.4f} to {test.get('high', 1):+.4f}"
    if action == "guardrail":
        return f"{b} rolled back by a guardrail: {'; '.join(comparison['guardrail']['reasons'])}"
    if action == "promote":
        return (
            f"{b} beats {c} on {comparison['metric']}: difference {test['estimate']:+.4f}, always-valid interval {ci}"
        )
    if action == "rollback" and test.get("decision") == "equivalent":
        return f"{b} is within the equivalence margin of {c} ({ci}): {c} kept"
    if action == "rollback":
        return f"{b} is worse than {c} on {comparison['metric']}: difference {test['estimate']:+.4f}, interval {ci}"
    return f"no decision yet for {b} vs {c}: interval {ci}" if test else f"not enough data yet for {b} vs {c}"


def rules_from(settings) -> Rules:
    """The decision rules of the service settings (``experiment_*``, ``guard_*``)."""
    return Rules(
        alpha=settings.experiment_alpha,
        tau=settings.experiment_tau,
        metric=settings.experiment_metric,
        min_impressions=settings.experiment_min_impressions,
        error_margin=settings.guard_error_margin,
        latency_margin=settings.guard_latency_margin,
    )


class DecisionLoop:
    """Runs :meth:`Experiments.decide` every ``every`` seconds on a daemon thread (errors logged)."""

    def __init__(self, experiments: Experiments, every: float) -> None:
        self.experiments, self.every = experiments, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shoprec-experiments", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.experiments.decide(time.time())
            except Exception as err:  # noqa: BLE001 - the next round tries again; serving goes on
                log.error("experiment decision failed: %s: %s", type(err).__name__, err)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
