"""The online-metrics query: impressions joined to the click and purchase events that followed them.

Built once per grouping from fixed column names (:data:`~shoprec.service.store.base.STAT_KEYS`);
every value is a parameter. The table holds one row per served list; each backend unnests it into
one row per shown item (``shown``). Impressions are unique per (recommendation_id, item_id), and a
click counts once per impression however many click events carry it, via ``EXISTS``; the lookup
uses the partial index on ``events(recommendation_id, item_id)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoprec.service.store.base import STAT_KEYS, StoreError

_ACTED = (
    "EXISTS (SELECT 1 FROM events e"
    " WHERE e.recommendation_id = i.recommendation_id AND e.item_id = i.item_id AND e.event = ?)"
)


def check_keys(by: Sequence[str]) -> list[str]:
    """``by`` as a list, after checking that every key is a known impression column."""
    keys = list(by)
    unknown = [k for k in keys if k not in STAT_KEYS]
    if unknown or len(set(keys)) != len(keys):
        raise StoreError(
            f"cannot group online stats by {keys}",
            fix=f"use distinct keys among {', '.join(STAT_KEYS)}",
        )
    return keys


def stats_query(
    keys: list[str], bucket_sql: str | None, bucket_seconds: int | None, since: float | None, shown: str
) -> tuple[str, list]:
    """SQL (``?`` placeholders) and parameters; ``bucket_sql`` turns ``ts`` into a bucket start;
    ``shown`` is the relation of shown items (one row per item, the impression columns).

    The result columns are ``keys``, then ``bucket`` when bucketed, then impressions, clicks, purchases.
    """
    params: list = ["click", "purchase"]
    inner = ["i.recommendation_id", "i.item_id", *(f"i.{k}" for k in keys)]
    if bucket_seconds is not None:
        inner.append(f"{bucket_sql} AS bucket")
        params += [bucket_seconds, bucket_seconds]
    where = ""
    if since is not None:
        where = "WHERE i.ts >= ?"
        params.append(since)
    groups = [*keys, *(["bucket"] if bucket_seconds is not None else [])]
    group_sql = f"GROUP BY {', '.join(groups)} ORDER BY {', '.join(groups)}" if groups else ""
    sql = (
        f"SELECT {''.join(g + ', ' for g in groups)}COUNT(*), "
        "SUM(CASE WHEN clicked THEN 1 ELSE 0 END), SUM(CASE WHEN purchased THEN 1 ELSE 0 END) "
        f"FROM (SELECT {_ACTED} AS clicked, {_ACTED} AS purchased, {', '.join(inner)} "
        f"FROM ({shown}) i {where}) s {group_sql}"
    )
    return sql, params


def stats_rows(rows: list[tuple], keys: list[str], bucketed: bool) -> list[dict]:
    """Result rows as dicts with ``ctr`` and ``conversion`` added; no row when nothing was shown."""
    names = [*keys, *(["bucket"] if bucketed else [])]
    out = []
    for row in rows:
        impressions, clicks, purchases = (int(v or 0) for v in row[len(names) :])
        if impressions == 0:
            continue
        record = dict(zip(names, row, strict=False))
        if bucketed:
            record["bucket"] = int(record["bucket"])
        record.update(
            impressions=impressions,
            clicks=clicks,
            purchases=purchases,
            ctr=clicks / impressions,
            conversion=purchases / impressions,
        )
        out.append(record)
    return out
