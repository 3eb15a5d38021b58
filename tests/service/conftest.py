"""Service fixtures: one trained version per session; a store on each backend (SQLite file, PostgreSQL
schema), fresh per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from helpers import postgres_schema, train_tiny

from shoprec.service.store import Store, open_store

POSTGRES_URL = os.environ.get("SHOPREC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server; tests that need it skip when it cannot be reached."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL} (set SHOPREC_TEST_POSTGRES): {exc}")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """URL of an empty database: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on each backend."""
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained and evaluated version folder for the whole session: tests copy it (``copy_version``)
    and never change it."""
    return train_tiny(tmp_path_factory.mktemp("trained"), evaluate=True)
