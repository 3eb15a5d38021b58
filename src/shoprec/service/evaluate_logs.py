"""Counterfactual evaluation of a version from the service's logs (``shoprec evaluate-logs``).

Reads the home-feed impressions logged with exploration (:mod:`shoprec.loop.explore`), re-ranks each
logged shopper's context with the target version, and estimates the click-through per shown slot the
target would have had (IPS and SNIPS, :mod:`shoprec.loop.offpolicy`), next to the click-through the
logging versions measured.

Approximations, said here and in the output:

* the shopper's context at the logged time is the target version's training snapshot of the shopper
  plus the store's events of the shopper that are newer than the snapshot and older than the list
  (the last 500), on the version's clock as :class:`~shoprec.service.history.Histories` puts them;
  search queries are left out;
* home feeds only (other scenarios need the anchor item, which impressions do not log);
* the support check re-ranks with the logging version and assumes its exploration pool was ``pool``
  and its share the logged share of explored slots; the weights themselves use the logged,
  exact propensities.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from shoprec.errors import ShoprecError
from shoprec.loop.explore import Explorer
from shoprec.loop.intervals import wilson
from shoprec.loop.offpolicy import Estimate, evaluate, policy_terms
from shoprec.pipeline.context import UserContext
from shoprec.service.feeds import proposal
from shoprec.service.history import Histories
from shoprec.service.store.base import LoggedImpression, Store
from shoprec.service.versions import Deployed, list_versions, load_version

EVENT_LIMIT = 500
SCENARIO = "home"


class LogEvaluationError(ShoprecError):
    """The logs cannot give an estimate (unknown version, no logs, logs without exploration)."""


def evaluate_logs(
    models_dir: str | Path,
    store: Store,
    version: str,
    *,
    since: float | None = None,
    until: float | None = None,
    pool: int = 40,
    target_share: float = 0.0,
    bootstrap: int = 0,
    clock: str = "auto",
) -> dict:
    """Estimates of ``version``'s click-through from the logged home feeds, as a dict (see module doc)."""
    known = list_versions(models_dir)
    if version not in known:
        raise LogEvaluationError(
            f"unknown version {version!r} in {models_dir}: name one of {', '.join(known) or '(none: train one)'}"
        )
    logs = store.logged_impressions(since=since, until=until, scenario=SCENARIO)
    logs = [row for row in logs if row.items and row.user_id]
    if not logs:
        raise LogEvaluationError(
            f"no logged home-feed impressions in {store.url} for the period asked: serve feeds with exploration "
            "on (SHOPREC_EXPLORE_SHARE=0.05) for a while, or widen --since/--until"
        )
    explored = np.concatenate([np.asarray(r.explored, dtype=bool) for r in logs])
    if not any(p < 1.0 for r in logs for p in r.propensities):
        raise LogEvaluationError(
            f"the {len(logs)} logged lists carry no propensities (every list was the ranking as is): IPS needs "
            "exploration logs: serve with SHOPREC_EXPLORE_SHARE=0.05 for a while, then evaluate again"
        )
    target_dep = load_version(Path(models_dir) / version)
    histories = Histories(live=None, clock=clock)  # only its clock is used
    logging_deps = {v: load_version(Path(models_dir) / v) for v in {r.version for r in logs} if v in known}
    logging_policy = Explorer(share=float(explored.mean()), pool=pool)
    target_policy = Explorer(share=target_share, pool=pool)
    target_rankings = _rankings(target_dep, store, logs, histories, len(logs[0].items) + pool)
    t_rows, unsupported, kept = [], [], []
    for v, dep in logging_deps.items():
        rows = [i for i, r in enumerate(logs) if r.version == v]
        log_rankings = _rankings(dep, store, [logs[i] for i in rows], histories, len(logs[0].items) + pool)
        for i, ranking in zip(rows, log_rankings, strict=True):
            row = logs[i]
            t, gap = policy_terms(row.items, ranking, logging_policy, target_rankings[i], target_policy)
            t_rows.append(t)
            unsupported.append(gap)
            kept.append(row)
    if not kept:
        raise LogEvaluationError("the logging versions of every logged list are gone from the models folder")
    estimates = evaluate(
        [r.propensities for r in kept],
        [np.asarray(r.clicks, dtype=float) for r in kept],
        t_rows,
        unsupported=np.asarray(unsupported),
        bootstrap=bootstrap,
    )
    return {
        "version": version,
        "impressions": len(kept),
        "dropped": len(logs) - len(kept),
        "logged_share": float(explored.mean()),
        "estimates": estimates,
        "logging": measured_ctr(kept),
    }


def measured_ctr(rows: list[LoggedImpression]) -> dict[str, dict]:
    """Click-through per shown slot each logging version measured, with a Wilson interval."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        counts[r.version][0] += sum(bool(c) for c in r.clicks)
        counts[r.version][1] += len(r.items)
    out = {}
    for v, (clicks, slots) in sorted(counts.items()):
        low, high = wilson(clicks, slots)
        out[v] = {"ctr": clicks / slots, "low": float(low), "high": float(high), "slots": slots, "clicks": clicks}
    return out


def _rankings(dep: Deployed, store: Store, rows: list[LoggedImpression], histories: Histories, depth: int) -> list:
    """The version's ranked item ids for each logged list's shopper at the logged time."""
    contexts = [_context(dep, store, r, histories) for r in rows]
    out = []
    for start in range(0, len(contexts), 256):
        recs = dep.pipeline.recommend(contexts[start : start + 256], depth)
        out.extend(proposal(dep, rec, SCENARIO).items for rec in recs)
    return out


def _context(dep: Deployed, store: Store, row: LoggedImpression, histories: Histories) -> UserContext:
    """The shopper's snapshot history plus store events after the snapshot and before the list."""
    offset = histories.clock_offset(dep)
    newest = float(dep.manifest.get("data_newest", 0))
    user = dep.user_index(row.user_id)
    seqs = dep.sequences
    if user >= 0:
        lo, hi = seqs.indptr[user], seqs.indptr[user + 1]
        items, times, events = seqs.items[lo:hi].astype(np.int64), seqs.timestamps[lo:hi], dep.event_names[lo:hi]
    else:
        items, times, events = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, dtype=object)
    read = store.user_events(row.user_id, EVENT_LIMIT)
    later = [e for e in read if newest < e.timestamp + offset and e.timestamp < row.timestamp]
    if later:
        index = dep.item_indices([e.item_id for e in later])
        ok = index >= 0
        items = np.concatenate([items, index[ok]]).astype(np.int64)
        times = np.concatenate([times, np.array([int(e.timestamp + offset) for e in later], np.int64)[ok]])
        events = np.concatenate([events, np.array([e.event for e in later], dtype=object)[ok]])
    clock = max(int(row.timestamp + offset), int(times.max(initial=0)))
    return UserContext(user, items, times, clock, events)


def describe(report: dict, baseline: dict | None = None) -> list[str]:
    """The report as lines for the terminal."""
    lines = [
        f"logged home feeds: {report['impressions']} lists (exploration share logged: {report['logged_share']:.1%})"
    ]
    if report["dropped"]:
        lines.append(f"  {report['dropped']} lists left out: their logging version is no longer in the models folder")
    for v, m in report["logging"].items():
        lines.append(
            f"  measured CTR of {v} (served): {m['ctr']:.4f} [{m['low']:.4f}, {m['high']:.4f}] over {m['slots']} slots"
        )
    for rep in (report, baseline) if baseline else (report,):
        lines.extend(_estimate_lines(rep["version"], rep["estimates"]))
    lines.append(
        "  context approximated: snapshot + store events before each list (no search queries); home feeds only"
    )
    return lines


def _estimate_lines(version: str, estimates: dict[str, Estimate]) -> list[str]:
    lines = [f"estimated CTR of {version} from the logs:"]
    for e in estimates.values():
        lines.append(
            f"  {e.method.upper():5s} {e.value:.4f} [{e.low:.4f}, {e.high:.4f}] ({e.interval} 95%), effective "
            f"sample {e.ess:.0f} of {e.impressions} lists, target slots without support {e.unsupported:.1%}"
        )
    warning = next(iter(estimates.values())).warning
    if warning:
        lines.append(f"  WARNING: {warning}")
    return lines
