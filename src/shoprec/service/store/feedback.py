"""The feedback loop's store methods, in SQL common to SQLite and PostgreSQL (mixed into ``SqlStore``).

- **Logged impressions** for off-policy evaluation: each served list with the probability each shown
  item had of being shown (its propensity) and whether exploration chose it, joined to the clicks
  and purchases that carry the list's recommendation id (the join the online statistics count).
- **Request counters** per version, flushed by every worker every few seconds: the guardrails
  (error rate, latency) of the online experiments.
- **Forgotten users**: :meth:`FeedbackSql.delete_user` removes a shopper's events, impressions and
  searches in one transaction and records the user, so that no later training set and no worker
  uses them again; each deletion is in the audit log.
- **Decisions** on experiments (promote, rollback, continue, guardrail) with their evidence.

Per-item lists the SQL never looks into (propensities, explored) are JSON arrays in text on both
databases; ``detail`` and ``evidence`` are JSON objects in text.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from shoprec.service.store.base import DECISION_ACTIONS, Impression, LoggedImpression, StoreError, UnknownUser

CHUNK = 500
"""Ids per ``IN (...)`` list."""
LOGGED_COLS = "recommendation_id, user_id, version, scenario, items, sources, ts, propensities, explored, platform"


def impression_params(imp: Impression, text_list: Callable[[list[str]], Any]) -> tuple:
    """The impressions row of one served list, after checking it; an item listed twice is kept at
    its first place (with that place's source, propensity and explored flag)."""
    n = len(imp.items)
    where = f"impression {imp.recommendation_id!r}"
    if len(imp.sources) != n:
        raise StoreError(
            f"{where}: {n} items but {len(imp.sources)} sources", fix="give one recall source per shown item"
        )
    for name in ("propensities", "explored"):
        values = getattr(imp, name)
        if values is not None and len(values) != n:
            raise StoreError(f"{where}: {n} items but {len(values)} {name}", fix=f"give one of {name} per shown item")
    if imp.propensities is not None and not all(0 < p <= 1 for p in map(float, imp.propensities)):
        raise StoreError(f"{where}: propensities must be in (0, 1], got {list(imp.propensities)}")
    if imp.latency_ms is not None and not (math.isfinite(imp.latency_ms) and imp.latency_ms >= 0):
        raise StoreError(f"{where}: latency_ms must be a finite number >= 0, got {imp.latency_ms!r}")
    first: dict[str, int] = {}
    for pos, item in enumerate(imp.items):
        first.setdefault(item, pos)
    keep = list(first.values())
    propensities = None if imp.propensities is None else json.dumps([float(imp.propensities[p]) for p in keep])
    explored = None if imp.explored is None else json.dumps([bool(imp.explored[p]) for p in keep])
    latency = None if imp.latency_ms is None else float(imp.latency_ms)
    return (
        *(imp.recommendation_id, imp.user_id, imp.version, imp.scenario),
        text_list([imp.items[p] for p in keep]),
        text_list([imp.sources[p] for p in keep]),
        float(imp.timestamp),
        *(propensities, explored, imp.platform, latency),
    )


def _list(value: Any) -> list:
    """A ``TEXT_LIST`` or JSON-text column as a list (SQLite: JSON text; PostgreSQL: text[] or JSON text)."""
    if value is None:
        return []
    return json.loads(value) if isinstance(value, str) else list(value)


def _chunks(rows: Sequence, size: int = CHUNK):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class FeedbackSql:
    """The feedback loop's part of :class:`~shoprec.service.store.sql.SqlStore` (which supplies
    ``_read`` and ``_write``)."""

    _read: Callable
    _write: Callable

    # logged impressions

    def logged_impressions(
        self,
        since: float | None = None,
        until: float | None = None,
        versions: Sequence[str] | None = None,
        scenario: str | None = None,
    ) -> list[LoggedImpression]:
        where, params = "WHERE 1 = 1", []
        if since is not None:
            where, params = where + " AND ts >= ?", [*params, float(since)]
        if until is not None:
            where, params = where + " AND ts < ?", [*params, float(until)]
        if versions is not None:
            versions = list(dict.fromkeys(versions))
            if not versions:
                return []
            where += f" AND version IN ({', '.join('?' * len(versions))})"
            params += versions
        if scenario is not None:
            where, params = where + " AND scenario = ?", [*params, scenario]
        with self._read() as cur:
            cur.execute(f"SELECT {LOGGED_COLS} FROM impressions {where} ORDER BY ts, recommendation_id", params)
            rows = cur.fetchall()
            acted: set[tuple[str, str, str]] = set()
            for chunk in _chunks([row[0] for row in rows]):
                cur.execute(
                    "SELECT recommendation_id, item_id, event FROM events WHERE event IN (?, ?) "
                    f"AND recommendation_id IN ({', '.join('?' * len(chunk))})",
                    ["click", "purchase", *chunk],
                )
                acted.update((r[0], r[1], r[2]) for r in cur.fetchall())
        return [_logged(row, acted) for row in rows]

    # request counters (guardrails)

    def record_requests(self, version: str, requests: int, errors: int, latency_ms_sum: float, at: float) -> None:
        if int(requests) != requests or int(errors) != errors or not 0 <= errors <= requests:
            raise StoreError(
                f"request counters of {version!r}: need whole numbers 0 <= errors <= requests, "
                f"got requests={requests!r}, errors={errors!r}"
            )
        if not (math.isfinite(latency_ms_sum) and latency_ms_sum >= 0):
            raise StoreError(f"request counters of {version!r}: latency_ms_sum must be >= 0, got {latency_ms_sum!r}")
        sql = "INSERT INTO request_counts (version, requests, errors, latency_ms_sum, ts) VALUES (?, ?, ?, ?, ?)"
        with self._write() as cur:
            cur.execute(sql, (version, int(requests), int(errors), float(latency_ms_sum), float(at)))

    def version_health(self, since: float | None = None) -> dict[str, dict]:
        where, params = ("", []) if since is None else ("WHERE ts >= ?", [float(since)])
        sql = (
            f"SELECT version, SUM(requests), SUM(errors), SUM(latency_ms_sum) FROM request_counts {where} "
            "GROUP BY version ORDER BY version"
        )
        with self._read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        out = {}
        for version, requests, errors, latency in rows:
            requests, errors = int(requests or 0), int(errors or 0)
            mean = float(latency) / requests if requests else None
            out[version] = {"requests": requests, "errors": errors, "latency_ms_mean": mean}
        return out

    # forgetting a user, audit log

    def delete_user(self, user_id: str, actor: str, *, require_known: bool = True) -> dict:
        if not isinstance(user_id, str) or not user_id:
            raise StoreError(f"user_id must be a non-empty string, got {user_id!r}")
        now = time.time()
        with self._write() as cur:
            removed = {}
            for table in ("events", "impressions", "searches"):
                cur.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
                removed[table] = max(int(cur.rowcount), 0)
            cur.execute("SELECT 1 FROM forgotten_users WHERE user_id = ?", (user_id,))
            before = cur.fetchone() is not None
            if require_known and not before and not any(removed.values()):
                raise UnknownUser(
                    f"unknown user {user_id!r}: the store holds no event, impression or search of this user",
                    fix="check the user id (ids are case-sensitive)",
                )
            cur.execute(
                "INSERT INTO forgotten_users (user_id, actor, ts) VALUES (?, ?, ?) ON CONFLICT (user_id) DO NOTHING",
                (user_id, actor, now),
            )
            detail = {**removed, "again": before}
            _audit(cur, actor, "forget_user", user_id, detail, now)
        return removed

    def forgotten_users(self, since: float | None = None) -> set[str]:
        where, params = ("", []) if since is None else (" WHERE ts >= ?", [float(since)])
        with self._read() as cur:
            cur.execute(f"SELECT user_id FROM forgotten_users{where}", params)
            return {row[0] for row in cur.fetchall()}

    def audit(self, actor: str, action: str, subject: str, detail: dict | None = None, at: float | None = None) -> None:
        with self._write() as cur:
            _audit(cur, actor, action, subject, detail or {}, time.time() if at is None else float(at))

    def audit_log(self, limit: int = 100) -> list[dict]:
        with self._read() as cur:
            cur.execute(
                "SELECT actor, action, subject, ts, detail FROM audit_log ORDER BY seq DESC LIMIT ?", (int(limit),)
            )
            rows = cur.fetchall()
        return [
            {"actor": r[0], "action": r[1], "subject": r[2], "at": float(r[3]), "detail": json.loads(r[4])}
            for r in rows
        ]

    # experiment decisions

    def record_decision(self, experiment: str, action: str, evidence: dict, at: float) -> None:
        if action not in DECISION_ACTIONS:
            raise StoreError(
                f"decision {action!r} on {experiment!r} is not one the store records",
                fix=f"use one of {', '.join(DECISION_ACTIONS)}",
            )
        text = _json(evidence, f"the evidence of decision {action!r} on {experiment!r}")
        sql = "INSERT INTO decisions (experiment, action, evidence, ts) VALUES (?, ?, ?, ?)"
        with self._write() as cur:
            cur.execute(sql, (experiment, action, text, float(at)))

    def decisions(self, limit: int = 100) -> list[dict]:
        with self._read() as cur:
            cur.execute(
                "SELECT experiment, action, evidence, ts FROM decisions ORDER BY seq DESC LIMIT ?", (int(limit),)
            )
            rows = cur.fetchall()
        return [{"experiment": r[0], "action": r[1], "evidence": json.loads(r[2]), "at": float(r[3])} for r in rows]


def _json(value: dict, what: str) -> str:
    if not isinstance(value, dict):
        raise StoreError(f"{what} must be a JSON object (dict), got {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} is not JSON ({exc})", fix="give numbers, strings, lists and dicts only") from None


def _audit(cur: Any, actor: str, action: str, subject: str, detail: dict, at: float) -> None:
    text = _json(detail, f"the audit detail of {action!r}")
    sql = "INSERT INTO audit_log (actor, action, subject, detail, ts) VALUES (?, ?, ?, ?, ?)"
    cur.execute(sql, (actor, action, subject, text, at))


def _logged(row: Sequence, acted: set[tuple[str, str, str]]) -> LoggedImpression:
    rid, items = row[0], _list(row[4])
    n = len(items)
    propensities = [float(p) for p in _list(row[7])] or [1.0] * n
    explored = [bool(e) for e in _list(row[8])] or [False] * n
    return LoggedImpression(
        rid,
        row[1],
        row[2],
        row[3],
        items,
        _list(row[5]),
        propensities,
        explored,
        row[9],
        float(row[6]),
        [(rid, item, "click") in acted for item in items],
        [(rid, item, "purchase") in acted for item in items],
    )
