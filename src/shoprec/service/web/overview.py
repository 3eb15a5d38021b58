"""The dashboard's overview page: catalog and traffic counts, versions and serving plan, offline
metrics per version and online CTR per A/B arm over time.

:class:`Overview` holds what the page shows (gathered by :mod:`shoprec.service.dashboard`);
:func:`render_overview` turns it into HTML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from shoprec.service.web.charts import bar_chart, line_chart
from shoprec.service.web.layout import empty, esc, page, table, when

OFFLINE_METRICS = ("ndcg@10", "recall@10")
BUCKET_SECONDS = 3600


@dataclass
class Overview:
    serving: str | None
    """The version that serves users outside any A/B arm (None when nothing is loaded)."""
    catalog_items: int | None
    """Items in the serving version's training snapshot."""
    snapshot_events: int | None
    api_items: int
    """Items added or changed through the API (stored, not deleted)."""
    api_events: int
    status: dict
    """``VersionManager.status()``."""
    manifests: dict[str, dict] = field(default_factory=dict)
    """Every version on disk -> its manifest."""
    manifest_errors: dict[str, str] = field(default_factory=dict)
    online: list[dict] = field(default_factory=list)
    """Online stats grouped by version."""
    hourly: list[dict] = field(default_factory=list)
    """Online stats grouped by version and hour."""


def render_overview(data: Overview) -> str:
    body = (
        "<h1>Overview</h1>"
        + _counts(data)
        + f"<section><h2>Model versions and serving plan</h2>{_plan(data.status)}{_versions(data)}</section>"
        + f'<section><h2>Offline metrics per model version</h2><div class="charts">{_offline(data)}</div></section>'
        + f'<section><h2>Online CTR per A/B arm</h2><div class="charts">{_ctr_chart(data.hourly)}</div>'
        + f"{_online_table(data.online)}</section>"
    )
    return page("Overview", body, active="overview")


def _card(label: str, value: object, name: str) -> str:
    shown = "—" if value is None else (f"{value:,}" if isinstance(value, int) else esc(value))
    return (
        f'<div class="card" data-count="{esc(name)}"><div class="value">{shown}</div>'
        f'<div class="label">{esc(label)}</div></div>'
    )


def _counts(data: Overview) -> str:
    impressions = sum(row["impressions"] for row in data.online)
    clicks = sum(row["clicks"] for row in data.online)
    purchases = sum(row["purchases"] for row in data.online)
    ctr = f"{clicks / impressions:.1%}" if impressions else None
    cards = [
        _card(f"items in serving version {data.serving or '(none loaded)'}", data.catalog_items, "catalog-items"),
        _card("items added or changed via the API", data.api_items, "api-items"),
        _card("events in the training snapshot", data.snapshot_events, "snapshot-events"),
        _card("events received via the API", data.api_events, "api-events"),
        _card("impressions (items shown)", impressions, "impressions"),
        _card("clicks on shown items", clicks, "clicks"),
        _card("purchases of shown items", purchases, "purchases"),
        _card("click-through rate", ctr, "ctr"),
    ]
    return f'<div class="cards">{"".join(cards)}</div>'


def _plan(status: dict) -> str:
    plan = status.get("plan") or {}
    if plan.get("pinned"):
        text = f"Pinned: every user gets {plan['pinned']}."
    elif plan.get("arms"):
        total = sum(plan["arms"].values()) or 1.0
        split = ", ".join(f"{v} {share / total:.0%}" for v, share in plan["arms"].items())
        text = f"A/B split by user: {split}" + (f" (salt {plan['salt']!r})." if plan.get("salt") else ".")
    else:
        newest = (status.get("available") or ["(none)"])[-1]
        text = f"No plan set: the newest version ({newest}) serves everyone."
    return f'<p class="plan">{esc(text)}</p>'


def _shares(status: dict) -> dict[str, float]:
    plan = status.get("plan") or {}
    if plan.get("pinned"):
        return {plan["pinned"]: 1.0}
    if plan.get("arms"):
        total = sum(plan["arms"].values()) or 1.0
        return {v: s / total for v, s in plan["arms"].items()}
    available = status.get("available") or []
    return {available[-1]: 1.0} if available else {}


def _versions(data: Overview) -> str:
    status, shares = data.status, _shares(data.status)
    loaded, errors = status.get("loaded") or {}, {**data.manifest_errors, **(status.get("load_errors") or {})}
    rows = []
    for version in status.get("available") or []:
        manifest = data.manifests.get(version, {})
        metrics = (manifest.get("metrics") or {}).get("pipeline") or {}
        state = "loaded" if version in loaded else ("failed: " + errors[version] if version in errors else "on disk")
        rows.append(
            [
                esc(version),
                esc(when(manifest.get("created"))),
                esc(manifest.get("encoder", "")),
                esc(", ".join(manifest.get("sources") or [])),
                f"{(manifest.get('data') or {}).get('interactions', 0):,}",
                esc(f"{metrics['ndcg@10']:.4f}" if "ndcg@10" in metrics else "—"),
                esc(state),
                esc(f"{shares[version]:.0%}" if version in shares else "0%"),
            ]
        )
    if not rows:
        return empty("No model version on disk yet: run 'shoprec train'.")
    headers = ["version", "created", "encoder", "sources", "training events", "ndcg@10", "state", "share of users"]
    return table(headers, rows, numeric=frozenset({4, 5, 7}), css="versions")


def _offline(data: Overview) -> str:
    """One grouped bar chart per metric: versions on the x-axis, the pipeline and each source as bars."""
    versions = [v for v in data.status.get("available") or [] if (data.manifests.get(v) or {}).get("metrics")]
    series: list[str] = []
    for version in versions:
        for label, scores in data.manifests[version]["metrics"].items():
            if isinstance(scores, dict) and label not in series:
                series.append(label)
    if not series:
        return empty("No version on disk has offline metrics (train without --no-eval to measure them).")
    charts = []
    for metric in OFFLINE_METRICS:
        values = {
            (version, label): float(scores[metric])
            for version in versions
            for label, scores in data.manifests[version]["metrics"].items()
            if isinstance(scores, dict) and metric in scores
        }
        charts.append(
            bar_chart(versions, series, values, f"{metric} (leave-last-out, full catalogue)", "model version", metric)
        )
    return "".join(charts)


def _ctr_chart(hourly: list[dict]) -> str:
    if not hourly:
        return empty("No impressions logged yet: online CTR appears once recommendations are served.")
    lines: dict[str, list[tuple[float, float, str]]] = {}
    for row in hourly:
        tip = (
            f"{row['version']} {when(row['bucket'])}: CTR {row['ctr']:.1%} "
            f"({row['clicks']} clicks / {row['impressions']} impressions)"
        )
        lines.setdefault(str(row["version"]), []).append((float(row["bucket"]), float(row["ctr"]), tip))
    return line_chart(
        lines,
        "Click-through rate per version, hourly",
        "hour (UTC)",
        "CTR",
        lambda x: time.strftime("%m-%d %H:00", time.gmtime(x)),
        lambda y: f"{100 * y:.3g}%",
    )


def _online_table(online: list[dict]) -> str:
    if not online:
        return ""
    rows = [
        [
            esc(r["version"]),
            f"{r['impressions']:,}",
            f"{r['clicks']:,}",
            f"{r['purchases']:,}",
            f"{r['ctr']:.2%}",
            f"{r['conversion']:.2%}",
        ]
        for r in online
    ]
    headers = ["version", "impressions", "clicks", "purchases", "CTR", "conversion"]
    return table(headers, rows, numeric=frozenset({1, 2, 3, 4, 5}), css="online")
