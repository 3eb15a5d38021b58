"""The embedded default store: one SQLite file in WAL mode, shared by threads and processes.

Each thread gets its own connection (``threading.local``). Writes run in ``BEGIN IMMEDIATE``
transactions, so writers queue on SQLite's lock (up to ``busy_timeout_ms``) instead of failing
half-way, and ``synchronous=FULL`` makes every commit durable (the WAL is fsynced) before it returns.
Readers never block writers in WAL mode.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shoprec.service.store.base import StoreError
from shoprec.service.store.sql import SqlStore


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so one owned by a finished thread can be freed."""


class SQLiteStore(SqlStore):
    """Store in a SQLite file (created if missing; its folder must exist)."""

    dialect = "sqlite"
    bucket_sql = "CAST(i.ts / ? AS INTEGER) * ?"  # truncation is flooring for the positive unix times stored
    shown_items_sql = (
        "SELECT l.recommendation_id, item.value AS item_id, source.value AS source, "
        "l.version, l.scenario, l.ts{extra} "
        "FROM impressions l, json_each(l.items) item, json_each(l.sources) source WHERE source.key = item.key"
    )

    @staticmethod
    def _text_list(values: list[str]) -> str:
        return json.dumps(values, ensure_ascii=False)

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 10_000) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout_ms = int(busy_timeout_ms)
        self._local = threading.local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._guard = threading.Lock()
        self._closed = False
        if not self.path.parent.is_dir():
            raise StoreError(
                f"cannot create SQLite database {self.path}: folder {self.path.parent} does not exist",
                fix="create the folder or give another path",
            )
        self._connection()  # fail now, not on the first request

    def _connect(self) -> _Connection:
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_ms / 1000,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
                check_same_thread=False,  # only close() touches another thread's connection
                factory=_Connection,
            )
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms:d}")
            self._use_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open SQLite database {self.path}: {exc}",
                fix="check that the file is a SQLite database and that its folder is writable",
            ) from None
        return conn

    def _use_wal(self, conn: _Connection) -> None:
        """Switch the file to WAL mode (once per file; it persists), retrying while another opener holds it.

        SQLite answers "database is locked" at once, without waiting ``busy_timeout``, when two
        connections race to switch a new file's journal mode.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        if mode != "wal":
            raise StoreError(
                f"SQLite database {self.path} cannot use write-ahead logging (journal mode stays {mode!r})",
                fix="put the file on a local disk (WAL does not work on network file systems)",
            )

    def _connection(self) -> _Connection:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._guard:
                self._connections.add(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        try:
            yield self._connection().cursor()
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from exc

    @contextmanager
    def _write(self, lock: str | None = None) -> Iterator[sqlite3.Cursor]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: sqlite3.OperationalError) -> StoreError:
        return StoreError(
            f"SQLite database {self.path} failed: {exc}",
            fix="if it is locked, another process holds a long write transaction; check the disk is not full",
        )

    def _table_exists(self, cur: sqlite3.Cursor, name: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cur.fetchone() is not None

    def close(self) -> None:
        with self._guard:
            self._closed = True
            connections = list(self._connections)
        for conn in connections:
            conn.close()
