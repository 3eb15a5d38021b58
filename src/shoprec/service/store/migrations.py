"""Versioned schema migrations, shared by the SQLite and PostgreSQL stores.

Each migration is a numbered list of statements. The few column types the two databases spell
differently are written as ``{SEQ_PK}``, ``{BYTES}`` and ``{TEXT_LIST}`` and filled in per dialect; a
statement the two spell differently altogether is a dict ``{dialect: sql}``. Applied versions
are recorded in ``schema_migrations(version, name, applied_at)``. The caller runs :func:`apply`
inside one write transaction that excludes other migrators (SQLite: ``BEGIN IMMEDIATE``;
PostgreSQL: an advisory lock), so two processes opening a fresh database at once apply each
migration exactly once, and a failed migration leaves no trace.

Append new migrations at the end; never edit one that has been released.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from shoprec.service.store.base import StoreError

DIALECT_TYPES = {
    # TEXT_LIST: a list of strings; SQLite keeps it as a JSON array in text, PostgreSQL as text[]
    "sqlite": {"SEQ_PK": "INTEGER PRIMARY KEY AUTOINCREMENT", "BYTES": "BLOB", "TEXT_LIST": "TEXT"},
    "postgres": {"SEQ_PK": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTES": "BYTEA", "TEXT_LIST": "TEXT[]"},
}


@dataclass(frozen=True)
class Migration:
    """One schema step: ``statements`` are SQL templates over the ``DIALECT_TYPES`` names."""

    version: int
    name: str
    statements: tuple[str | dict[str, str], ...]

    def sql(self, dialect: str) -> list[str]:
        """The statements spelled for ``dialect`` ("sqlite" or "postgres")."""
        return [s[dialect] if isinstance(s, dict) else s.format(**DIALECT_TYPES[dialect]) for s in self.statements]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, items, impressions",
        (
            """CREATE TABLE events (
                seq {SEQ_PK},
                event_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                item_id TEXT NOT NULL,
                event TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                recommendation_id TEXT
            )""",
            "CREATE UNIQUE INDEX events_event_id ON events (event_id)",
            "CREATE INDEX events_user_seq ON events (user_id, seq)",
            """CREATE INDEX events_recommendation ON events (recommendation_id, item_id)
                WHERE recommendation_id IS NOT NULL""",
            """CREATE TABLE items (
                item_id TEXT PRIMARY KEY,
                title TEXT NOT NULL DEFAULT '',
                description TEXT NOT NULL DEFAULT '',
                category TEXT NOT NULL DEFAULT '',
                brand TEXT NOT NULL DEFAULT '',
                price DOUBLE PRECISION,
                language TEXT NOT NULL DEFAULT '',
                attributes TEXT NOT NULL DEFAULT '{{}}',
                vector {BYTES},
                deleted BOOLEAN NOT NULL DEFAULT FALSE,
                updated_seq BIGINT NOT NULL
            )""",
            "CREATE INDEX items_updated_seq ON items (updated_seq)",
            """CREATE TABLE impressions (
                recommendation_id TEXT NOT NULL,
                pos INTEGER NOT NULL,
                user_id TEXT NOT NULL,
                version TEXT NOT NULL,
                scenario TEXT NOT NULL,
                item_id TEXT NOT NULL,
                source TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (recommendation_id, pos)
            )""",
            "CREATE UNIQUE INDEX impressions_item ON impressions (recommendation_id, item_id)",
            "CREATE INDEX impressions_ts ON impressions (ts)",
        ),
    ),
    Migration(
        2,
        "api keys and shared settings",
        (
            """CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                secret_hash TEXT NOT NULL,
                scopes TEXT NOT NULL,
                rate_per_minute INTEGER NOT NULL,
                created DOUBLE PRECISION NOT NULL,
                revoked BOOLEAN NOT NULL DEFAULT FALSE
            )""",
            """CREATE TABLE settings (
                name TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    Migration(
        3,
        "impressions: one row per served list",
        (
            """CREATE TABLE impression_lists (
                recommendation_id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                version TEXT NOT NULL,
                scenario TEXT NOT NULL,
                items {TEXT_LIST} NOT NULL,
                sources {TEXT_LIST} NOT NULL,
                ts DOUBLE PRECISION NOT NULL
            )""",
            {
                # SQLite before 3.44 has no ORDER BY inside an aggregate; a window aggregate takes
                # its rows in the window's order, so the arrays keep the list order
                "sqlite": """INSERT INTO impression_lists
                    SELECT recommendation_id, user_id, version, scenario, items, sources, ts FROM (
                        SELECT recommendation_id, user_id, version, scenario, ts,
                            json_group_array(item_id) OVER list AS items,
                            json_group_array(source) OVER list AS sources,
                            ROW_NUMBER() OVER (PARTITION BY recommendation_id ORDER BY pos) AS row_in_list
                        FROM impressions
                        WINDOW list AS (PARTITION BY recommendation_id ORDER BY pos
                            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                    ) WHERE row_in_list = 1""",
                "postgres": """INSERT INTO impression_lists
                    SELECT recommendation_id, MIN(user_id), MIN(version), MIN(scenario),
                        array_agg(item_id ORDER BY pos), array_agg(source ORDER BY pos), MIN(ts)
                    FROM impressions GROUP BY recommendation_id""",
            },
            "DROP TABLE impressions",
            "ALTER TABLE impression_lists RENAME TO impressions",
            "CREATE INDEX impressions_ts ON impressions (ts)",
        ),
    ),
    Migration(
        4,
        "search log; events carry the search they followed and its query",
        (
            """CREATE TABLE searches (
                search_id TEXT PRIMARY KEY,
                user_id TEXT,
                query TEXT NOT NULL,
                normalized TEXT NOT NULL,
                n_results INTEGER NOT NULL,
                ts DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX searches_ts ON searches (ts)",
            "CREATE INDEX searches_user_ts ON searches (user_id, ts) WHERE user_id IS NOT NULL",
            "ALTER TABLE events ADD COLUMN search_id TEXT",
            "ALTER TABLE events ADD COLUMN query TEXT",
            "CREATE INDEX events_search ON events (search_id, event) WHERE search_id IS NOT NULL",
        ),
    ),
    Migration(
        5,
        "feedback loop: platform and language, propensities, request counters, forgotten users, audit, decisions",
        (
            "ALTER TABLE events ADD COLUMN platform TEXT",
            "ALTER TABLE events ADD COLUMN language TEXT",
            # per shown item, JSON arrays in text on both databases (read back whole, never unnested in SQL)
            "ALTER TABLE impressions ADD COLUMN propensities TEXT",
            "ALTER TABLE impressions ADD COLUMN explored TEXT",
            "ALTER TABLE impressions ADD COLUMN platform TEXT",
            "ALTER TABLE impressions ADD COLUMN latency_ms DOUBLE PRECISION",
            "CREATE INDEX impressions_user ON impressions (user_id)",
            """CREATE TABLE request_counts (
                version TEXT NOT NULL,
                requests BIGINT NOT NULL,
                errors BIGINT NOT NULL,
                latency_ms_sum DOUBLE PRECISION NOT NULL,
                ts DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX request_counts_ts ON request_counts (ts)",
            """CREATE TABLE forgotten_users (
                user_id TEXT PRIMARY KEY,
                actor TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX forgotten_users_ts ON forgotten_users (ts)",
            """CREATE TABLE audit_log (
                seq {SEQ_PK},
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                subject TEXT NOT NULL,
                detail TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL
            )""",
            """CREATE TABLE decisions (
                seq {SEQ_PK},
                experiment TEXT NOT NULL,
                action TEXT NOT NULL,
                evidence TEXT NOT NULL,
                ts DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
)

LATEST = MIGRATIONS[-1].version

CREATE_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at DOUBLE PRECISION NOT NULL
)"""


RECORD = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"


def current_version(cur: Any) -> int:
    """The newest applied version (``cur`` sees an existing ``schema_migrations`` table)."""
    cur.execute("SELECT MAX(version) FROM schema_migrations")
    return cur.fetchone()[0] or 0


def apply(cur: Any, dialect: str, url: str, target: int | None = None) -> int:
    """Apply every migration above the current version up to ``target``; return the new version.

    ``cur`` takes ``?`` placeholders and must be inside a transaction that no other migrator can
    enter at the same time; ``url`` names the database in errors.
    """
    target = LATEST if target is None else target
    if not 0 <= target <= LATEST:
        raise StoreError(f"no schema version {target}: this shoprec knows versions 0 to {LATEST}")
    cur.execute(CREATE_TABLE)
    version = current_version(cur)
    if version > LATEST:
        raise StoreError(
            f"the database at {url} has schema version {version}, newer than this shoprec knows ({LATEST})",
            fix="upgrade shoprec on this machine to the version the other workers run, or use another database",
        )
    for migration in MIGRATIONS:
        if version < migration.version <= target:
            for statement in migration.sql(dialect):
                cur.execute(statement)
            cur.execute(RECORD, (migration.version, migration.name, time.time()))
            version = migration.version
    return version
