"""The dashboard's experiments page: the running A/B experiment's arms with their intervals, one chart
per challenger of the running estimate of its difference from the control with the always-valid
interval, the guardrails, and the decisions recorded so far (``Experiments.status()``)."""

from __future__ import annotations

import json
import time

from shoprec.service.web.charts import band_chart
from shoprec.service.web.layout import empty, esc, page, table, when


def render_experiments(status: dict) -> str:
    body = "<h1>Experiments</h1>"
    if not status.get("experiment"):
        note = empty(status.get("note", "No A/B experiment is running."))
        body += f"<section><h2>Running experiment</h2>{note}</section>"
    else:
        rules = status["rules"]
        body += (
            f"<section><h2>Running experiment {esc(status['experiment'])}</h2>"
            f'<p class="muted">Started {esc(when(status["started"]))}; control {esc(status["control"])}; compared on '
            f"{esc(rules['metric'])} by a sequential test (mSPRT, alpha {rules['alpha']:g}, tau {rules['tau']:g}) that "
            "stays valid however often it is read. Intervals of the arms are 95% Wilson intervals.</p>"
            f"{_arms(status['arms'])}</section>"
        )
        for comparison in status["comparisons"]:
            body += _comparison(comparison, status["bucket_seconds"])
    body += f"<section><h2>Decisions</h2>{_decisions(status.get('decisions') or [])}</section>"
    return page("Experiments", body, active="experiments")


def _interval(row: dict, name: str) -> str:
    if row[name] is None:
        return "—"
    low, high = row[f"{name}_interval"]
    return f'{row[name]:.2%} <span class="muted">({low:.2%}–{high:.2%})</span>'


def _arms(arms: list[dict]) -> str:
    rows = [
        [
            esc(a["version"]),
            esc(a["role"]),
            f"{a['share']:.0%}",
            f"{a['impressions']:,}",
            f"{a['clicks']:,}",
            f"{a['purchases']:,}",
            _interval(a, "ctr"),
            _interval(a, "conversion"),
        ]
        for a in arms
    ]
    headers = ["version", "role", "share", "impressions", "clicks", "purchases", "CTR (95% CI)", "conversion (95% CI)"]
    return table(headers, rows, numeric=frozenset({2, 3, 4, 5, 6, 7}), css="arms")


def _comparison(c: dict, bucket: int) -> str:
    title = f"{c['challenger']} vs {c['control']}"
    test, guard = c["test"], c["guardrail"]
    if test:
        summary = (
            f"Difference in {c['metric']} {test['estimate']:+.3%}, always-valid interval {test['low']:+.3%} to "
            f"{test['high']:+.3%}, p-value {test['p_value']:.3g}: <strong>{esc(c['decision'])}</strong>."
        )
    else:
        summary = "Not enough traffic in both arms yet."
    guard_text = (
        f"Guardrail breached: {esc('; '.join(guard['reasons']))}."
        if guard.get("breached")
        else f"Guardrails: {'within margins' if guard.get('checked') else esc(guard.get('note', 'not checked'))}."
    )
    points = [
        (
            p["at"],
            p["estimate"],
            p["low"],
            p["high"],
            f"{when(p['at'])}: {p['estimate']:+.3%} ({p['low']:+.3%} to {p['high']:+.3%}), "
            f"{p['n_a']:,} / {p['n_b']:,} impressions",
        )
        for p in c["series"]
    ]
    chart = (
        band_chart(
            points,
            f"{c['metric']} difference, {title}",
            f"time (UTC, {bucket // 60} min buckets)",
            f"{c['metric']} difference",
            lambda x: time.strftime("%m-%d %H:%M", time.gmtime(x)),
            lambda y: f"{100 * y:+.2g}%",
        )
        if points
        else empty("No impressions of both arms yet.")
    )
    return (
        f'<section class="comparison" data-challenger="{esc(c["challenger"])}"><h2>{esc(title)}</h2>'
        f'<p>{summary}</p><p class="muted">{guard_text}</p><div class="charts">{chart}</div></section>'
    )


def _decisions(decisions: list[dict]) -> str:
    if not decisions:
        return empty("No decision recorded yet.")
    rows = [
        [
            esc(when(d["at"])),
            esc(d["experiment"]),
            esc(d["action"]),
            esc((d.get("evidence") or {}).get("reason") or json.dumps(d.get("evidence"))[:200]),
        ]
        for d in decisions
    ]
    return table(["when", "experiment", "action", "why"], rows, css="decisions")
