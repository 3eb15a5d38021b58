"""The server store: PostgreSQL through a ``psycopg_pool`` connection pool.

Connections run in autocommit mode, so a read is one round trip; writes open an explicit
transaction, committed with the server's default ``synchronous_commit`` (durable on return). Writers
that hand out a change counter first take a transaction-scoped advisory lock, keyed by the current
schema, so that counters commit in order (see :mod:`shoprec.service.store.sql`). Put the store in
its own schema with the URL option ``options=-csearch_path%3Dmy_schema`` (the schema must exist).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from shoprec.service.store.base import StoreError, mask_url
from shoprec.service.store.sql import SqlStore

LOCKS = {"schema": 1, "events": 2, "items": 3}
"""Second key of the advisory lock each kind of counted write takes (the first is the schema's hash)."""


@lru_cache(maxsize=1024)
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the shared SQL has no literal ``?`` or ``%``)."""
    return sql.replace("?", "%s")


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _QmarkCursor:
    """A psycopg cursor that takes the ``?`` placeholders of the shared SQL, like sqlite3."""

    def __init__(self, cur: psycopg.Cursor) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._cur.execute(_pyformat(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(_pyformat(sql), rows)

    def fetchone(self) -> tuple | None:
        return self._cur.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cur.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount


class PostgresStore(SqlStore):
    """Store in a PostgreSQL database given by a libpq URL (``postgresql://user:pw@host:5432/db``)."""

    dialect = "postgres"
    bucket_sql = "CAST(FLOOR(i.ts / ?) AS BIGINT) * ?"
    shown_items_sql = (
        "SELECT l.recommendation_id, shown.item_id, shown.source, l.version, l.scenario, l.ts{extra} "
        "FROM impressions l, unnest(l.items, l.sources) AS shown(item_id, source)"
    )

    @staticmethod
    def _text_list(values: list[str]) -> list[str]:
        return values

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.url = mask_url(url)
        try:
            with psycopg.connect(url, connect_timeout=max(1, round(connect_timeout))) as conn:
                schema = conn.execute("SELECT current_schema()").fetchone()[0]
        except psycopg.Error as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.url}: {_first_line(exc)}",
                fix="check that the server is running and reachable, and that the user, password and database exist",
            ) from None
        if schema is None:
            raise StoreError(
                f"PostgreSQL at {self.url}: no schema of the search_path exists",
                fix="create the schema first (CREATE SCHEMA name) or fix options=-csearch_path in the URL",
            )
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            open=True,
            name="shoprec-store",
            timeout=30.0,
        )

    @contextmanager
    def _read(self) -> Iterator[_QmarkCursor]:
        try:
            with self._pool.connection() as conn:
                yield _QmarkCursor(conn.cursor())
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def _write(self, lock: str | None = None) -> Iterator[_QmarkCursor]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                cur = conn.cursor()
                if lock is not None:
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s)", (LOCKS[lock],))
                yield _QmarkCursor(cur)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StoreError:
        return StoreError(
            f"PostgreSQL at {self.url} failed: {_first_line(exc)}",
            fix="check that the server is up and accepts connections (max_connections, network)",
        )

    def _table_exists(self, cur: _QmarkCursor, name: str) -> bool:
        cur.execute("SELECT to_regclass(?) IS NOT NULL", (name,))
        return bool(cur.fetchone()[0])

    def close(self) -> None:
        self._pool.close()
