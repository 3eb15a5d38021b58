"""The :class:`Store` methods written once in SQL common to SQLite and PostgreSQL.

A backend supplies connections (``_read``/``_write`` context managers yielding a DB-API cursor that
takes ``?`` placeholders), the spelling of a time bucket, and a table-existence check. ``_write``
runs one transaction; its ``lock`` names what the transaction hands out change counters for
("events", "items", "schema"). Writers of the same counter are serialised (SQLite: one writer at a
time anyway; PostgreSQL: an advisory lock), so counters become visible in the order they were
handed out and a reader tailing ``seq`` never skips a row that commits late.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import numpy as np

from shoprec.service.store import migrations, searchlog
from shoprec.service.store.base import (
    ApiKeyRecord,
    AppendResult,
    Event,
    Impression,
    ItemRecord,
    SearchRecord,
    Store,
    StoredEvent,
    StoreError,
)
from shoprec.service.store.feedback import FeedbackSql, impression_params
from shoprec.service.store.stats import check_keys, stats_query, stats_rows

CHUNK = 500
"""Rows per multi-row INSERT or ``IN (...)`` list (well under both databases' parameter limits)."""

EVENT_COLS = "event_id, user_id, item_id, event, ts, recommendation_id, search_id, query, platform, language"
ITEM_COLS = "item_id, title, description, category, brand, price, language, attributes, vector, deleted, updated_seq"
KEY_COLS = "key_id, secret_hash, scopes, rate_per_minute, created, revoked"

UPSERT_ITEM = (
    f"INSERT INTO items ({ITEM_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (item_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in ITEM_COLS.split(", ")[1:])
)


def _chunks(rows: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _values(n_rows: int, n_cols: int) -> str:
    row = "(" + ", ".join(["?"] * n_cols) + ")"
    return ", ".join([row] * n_rows)


def _event_params(e: Event) -> tuple:
    fields = (e.recommendation_id, e.search_id, e.query, e.platform, e.language)
    return (e.event_id, e.user_id, e.item_id, e.event, float(e.timestamp), *fields)


def _event(row: Sequence) -> Event:
    return Event(row[0], row[1], row[2], row[3], float(row[4]), *row[5:10])


def _item_params(item: ItemRecord, seq: int) -> tuple:
    try:
        attributes = json.dumps(item.attributes, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"item {item.item_id!r}: attributes are not JSON ({exc})") from None
    vector = None
    if item.vector is not None:
        array = np.asarray(item.vector)
        if array.ndim != 1:
            raise StoreError(f"item {item.item_id!r}: vector must be one-dimensional, got shape {array.shape}")
        vector = array.astype("<f4").tobytes()
    price = None if item.price is None else float(item.price)
    fields = (item.title, item.description, item.category, item.brand, price, item.language)
    return (item.item_id, *fields, attributes, vector, bool(item.deleted), seq)


def _item(row: Sequence) -> ItemRecord:
    vector = None if row[8] is None else np.frombuffer(bytes(row[8]), dtype="<f4").astype(np.float32)
    price = None if row[5] is None else float(row[5])
    return ItemRecord(
        row[0], row[1], row[2], row[3], row[4], price, row[6], json.loads(row[7]), vector, bool(row[9]), int(row[10])
    )


def _api_key(row: Sequence) -> ApiKeyRecord:
    return ApiKeyRecord(row[0], row[1], json.loads(row[2]), int(row[3]), float(row[4]), bool(row[5]))


class SqlStore(FeedbackSql, Store):
    """Everything but connections; see the module docstring for what a backend adds."""

    dialect: ClassVar[str]
    bucket_sql: ClassVar[str]  # ``ts`` floored to a multiple of the bucket size, which is passed twice
    shown_items_sql: ClassVar[str]
    """The impressions as one row per shown item: ``recommendation_id, item_id, source, version,
    scenario, ts`` from the one row per list the table holds, then ``{extra}`` (``, l.platform`` when
    grouping by platform: a schema before 5 has no such column)."""

    @staticmethod
    @abstractmethod
    def _text_list(values: list[str]) -> Any:
        """A list of strings as a ``TEXT_LIST`` column value (see :mod:`~shoprec.service.store.migrations`)."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A cursor for reads."""

    @abstractmethod
    def _write(self, lock: str | None = None) -> AbstractContextManager[Any]:
        """A cursor inside one transaction, committed (durably) on exit, rolled back on an exception."""

    @abstractmethod
    def _table_exists(self, cur: Any, name: str) -> bool:
        """Whether ``name`` is a table of this store."""

    # schema

    def migrate(self, target: int | None = None) -> int:
        with self._write("schema") as cur:
            return migrations.apply(cur, self.dialect, self.url, target)

    def schema_version(self) -> int:
        with self._read() as cur:
            return migrations.current_version(cur) if self._table_exists(cur, "schema_migrations") else 0

    # events

    def append_events(self, events: Sequence[Event]) -> AppendResult:
        if not events:
            return AppendResult([], [])
        fresh: set[str] = set()
        with self._write("events") as cur:
            for chunk in _chunks(events):
                sql = (
                    f"INSERT INTO events ({EVENT_COLS}) VALUES {_values(len(chunk), 10)} "
                    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
                )
                params = [v for e in chunk for v in _event_params(e)]
                cur.execute(sql, params)
                fresh.update(row[0] for row in cur.fetchall())
        return split_result([e.event_id for e in events], fresh)

    def events_after(self, seq: int, limit: int = 10_000) -> list[StoredEvent]:
        with self._read() as cur:
            cur.execute(f"SELECT seq, {EVENT_COLS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
            return [StoredEvent(int(row[0]), _event(row[1:])) for row in cur.fetchall()]

    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        with self._read() as cur:
            cur.execute(
                f"SELECT {EVENT_COLS} FROM events WHERE user_id = ? ORDER BY seq DESC LIMIT ?", (user_id, limit)
            )
            return [_event(row) for row in reversed(cur.fetchall())]

    def count_events(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT COUNT(*) FROM events")
            return int(cur.fetchone()[0])

    def get_events(self, event_ids: Sequence[str]) -> list[Event]:
        found: dict[str, Event] = {}
        with self._read() as cur:
            for chunk in _chunks(list(dict.fromkeys(event_ids))):
                cur.execute(f"SELECT {EVENT_COLS} FROM events WHERE event_id IN ({', '.join('?' * len(chunk))})", chunk)
                found.update((row[0], _event(row)) for row in cur.fetchall())
        return [found[i] for i in event_ids if i in found]

    # items

    @staticmethod
    def _next_item_seq(cur: Any) -> int:
        cur.execute("SELECT COALESCE(MAX(updated_seq), 0) + 1 FROM items")
        return int(cur.fetchone()[0])

    def upsert_items(self, items: Sequence[ItemRecord]) -> int:
        latest = {item.item_id: item for item in items}  # the last record of an id wins
        with self._write("items") as cur:
            seq = self._next_item_seq(cur)
            if not latest:
                return seq - 1
            cur.executemany(UPSERT_ITEM, [_item_params(item, seq) for item in latest.values()])
        return seq

    def delete_item(self, item_id: str) -> bool:
        with self._write("items") as cur:
            seq = self._next_item_seq(cur)
            cur.execute("UPDATE items SET deleted = ?, updated_seq = ? WHERE item_id = ?", (True, seq, item_id))
            return cur.rowcount > 0

    def get_item(self, item_id: str) -> ItemRecord | None:
        with self._read() as cur:
            cur.execute(f"SELECT {ITEM_COLS} FROM items WHERE item_id = ?", (item_id,))
            row = cur.fetchone()
        return None if row is None else _item(row)

    def items_changed_after(self, seq: int) -> list[ItemRecord]:
        with self._read() as cur:
            cur.execute(f"SELECT {ITEM_COLS} FROM items WHERE updated_seq > ? ORDER BY updated_seq, item_id", (seq,))
            return [_item(row) for row in cur.fetchall()]

    def search_items(self, text: str, limit: int = 20) -> list[ItemRecord]:
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        sql = (
            f"SELECT {ITEM_COLS} FROM items WHERE NOT deleted AND "
            "(LOWER(item_id) LIKE ? ESCAPE '\\' OR LOWER(title) LIKE ? ESCAPE '\\') ORDER BY item_id LIMIT ?"
        )
        with self._read() as cur:
            cur.execute(sql, (pattern, pattern, limit))
            return [_item(row) for row in cur.fetchall()]

    def count_items(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT COUNT(*) FROM items WHERE NOT deleted")
            return int(cur.fetchone()[0])

    # impressions and online metrics

    def log_impressions(self, rows: Sequence[Impression]) -> None:
        # a list served to a user just before another worker forgot them may arrive late: dropped
        params = [(*impression_params(imp, self._text_list), imp.user_id) for imp in rows]
        if not params:
            return
        sql = (
            "INSERT INTO impressions (recommendation_id, user_id, version, scenario, items, sources, ts, "
            "propensities, explored, platform, latency_ms) "
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM forgotten_users WHERE user_id = ?) "
            "ON CONFLICT DO NOTHING"
        )
        with self._write() as cur:
            cur.executemany(sql, params)

    def online_stats(
        self, by: Sequence[str] = ("version",), bucket_seconds: int | None = None, since: float | None = None
    ) -> list[dict]:
        keys = check_keys(by)
        if bucket_seconds is not None and (int(bucket_seconds) != bucket_seconds or bucket_seconds <= 0):
            raise StoreError(f"bucket_seconds must be a positive whole number of seconds, got {bucket_seconds!r}")
        bucket = None if bucket_seconds is None else int(bucket_seconds)
        shown = self.shown_items_sql.format(extra=", l.platform" if "platform" in keys else "")
        sql, params = stats_query(keys, self.bucket_sql, bucket, since, shown)
        with self._read() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        return stats_rows(rows, keys, bucket is not None)

    # search log

    def log_search(self, search_id: str, user_id: str | None, query: str, n_results: int, at: float) -> None:
        params = searchlog.search_params(search_id, user_id, query, n_results, at)
        with self._write() as cur:
            cur.execute(searchlog.INSERT_SEARCH, params)

    def get_searches(self, search_ids: Sequence[str]) -> dict[str, SearchRecord]:
        found: dict[str, SearchRecord] = {}
        with self._read() as cur:
            for chunk in _chunks(list(dict.fromkeys(search_ids))):
                marks = ", ".join("?" * len(chunk))
                cur.execute(f"SELECT {searchlog.SEARCH_COLS} FROM searches WHERE search_id IN ({marks})", chunk)
                found.update((row[0], searchlog.search_record(row)) for row in cur.fetchall())
        return found

    def user_searches(self, user_id: str, limit: int = 20, since: float | None = None) -> list[SearchRecord]:
        where, params = searchlog.window(since, None)
        sql = (
            f"SELECT {searchlog.SEARCH_COLS} FROM searches WHERE user_id = ?{where} "
            "ORDER BY ts DESC, search_id DESC LIMIT ?"
        )
        with self._read() as cur:
            cur.execute(sql, (user_id, *params, int(limit)))
            return [searchlog.search_record(row) for row in reversed(cur.fetchall())]

    def search_analytics(
        self,
        since: float | None = None,
        until: float | None = None,
        min_searches: int = 5,
        max_click_rate: float = 0.1,
        limit: int = 50,
    ) -> dict:
        searchlog.check_analytics(min_searches, max_click_rate, limit)
        with self._read() as cur:
            cur.execute(*searchlog.zero_result_query(since, until, limit))
            zero = searchlog.zero_result_rows(cur.fetchall())
            cur.execute(*searchlog.low_click_query(since, until, min_searches, max_click_rate, limit))
            low = searchlog.low_click_rows(cur.fetchall())
            counts = []
            for sql, params in searchlog.totals_queries(since, until):
                cur.execute(sql, params)
                counts.extend(int(v or 0) for v in cur.fetchone())
        names = ("searches", "zero_result_searches", "search_events", "unknown_search_events")
        return {"totals": dict(zip(names, counts, strict=True)), "zero_result": zero, "low_click": low}

    # api keys and settings

    def put_api_key(self, key: ApiKeyRecord) -> None:
        sql = (
            f"INSERT INTO api_keys ({KEY_COLS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in KEY_COLS.split(", ")[1:])
        )
        scopes = json.dumps(list(key.scopes))
        params = (key.key_id, key.secret_hash, scopes, int(key.rate_per_minute), float(key.created), bool(key.revoked))
        with self._write() as cur:
            cur.execute(sql, params)

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._read() as cur:
            cur.execute(f"SELECT {KEY_COLS} FROM api_keys WHERE key_id = ?", (key_id,))
            row = cur.fetchone()
        return None if row is None else _api_key(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        with self._read() as cur:
            cur.execute(f"SELECT {KEY_COLS} FROM api_keys ORDER BY created, key_id")
            return [_api_key(row) for row in cur.fetchall()]

    def set_setting(self, name: str, value: dict) -> None:
        if not isinstance(value, dict):
            raise StoreError(f"setting {name!r} must be a JSON object (dict), got {type(value).__name__}")
        try:
            text = json.dumps(value, sort_keys=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"setting {name!r} is not JSON ({exc})") from None
        sql = (
            "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        )
        with self._write() as cur:
            cur.execute(sql, (name, text, time.time()))

    def get_setting(self, name: str) -> dict | None:
        with self._read() as cur:
            cur.execute("SELECT value FROM settings WHERE name = ?", (name,))
            row = cur.fetchone()
        return None if row is None else json.loads(row[0])


def split_result(event_ids: Sequence[str], fresh: set[str]) -> AppendResult:
    """Split ``event_ids`` by whether the store just inserted them; a repeated id is inserted once at most."""
    left = set(fresh)
    inserted, duplicates = [], []
    for event_id in event_ids:
        if event_id in left:
            inserted.append(event_id)
            left.discard(event_id)
        else:
            duplicates.append(event_id)
    return AppendResult(inserted, duplicates)
