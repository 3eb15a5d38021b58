"""Durable storage of the service: events, catalogue, impressions, API keys and shared settings.

:func:`open_store` picks the backend from a URL and brings the schema up to date:

>>> store = open_store(None)                                  # ./shoprec.db (SQLite)   # doctest: +SKIP
>>> store = open_store("sqlite:////var/lib/shoprec/shop.db")  # absolute path           # doctest: +SKIP
>>> store = open_store("postgresql://shoprec:pw@db:5432/shop")                           # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from shoprec.errors import ConfigError
from shoprec.service.store.base import (
    ApiKeyRecord,
    AppendResult,
    Event,
    Impression,
    ItemRecord,
    LoggedImpression,
    SearchRecord,
    Store,
    StoredEvent,
    StoreError,
    UnknownUser,
    mask_url,
)
from shoprec.service.store.group import GroupCommitter
from shoprec.service.store.migrations import LATEST as SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "AppendResult",
    "ApiKeyRecord",
    "Event",
    "GroupCommitter",
    "Impression",
    "ItemRecord",
    "LoggedImpression",
    "SearchRecord",
    "Store",
    "StoreError",
    "StoredEvent",
    "UnknownUser",
    "open_store",
]

URL_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db, a plain file path, or postgresql://user:pw@host:5432/db"
)


def open_store(url: str | None = None, default_path: str | Path = "shoprec.db", *, migrate: bool = True) -> Store:
    """The store at ``url`` (SQLite at ``default_path`` when None), migrated to the newest schema.

    ``migrate=False`` leaves the schema as it is (for tools that inspect or upgrade step by step).
    """
    store = _connect(url, default_path)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


def _connect(url: str | None, default_path: str | Path) -> Store:
    from shoprec.service.store.sqlite import SQLiteStore

    if not url:
        return SQLiteStore(default_path)
    if "://" not in url:
        return SQLiteStore(_sqlite_path(url, url))
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        from shoprec.service.store.postgres import PostgresStore

        return PostgresStore(url)
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            raise ConfigError(f"SQLite URL {url!r} has no path", where="store URL", fix=f"use {URL_FORMS}")
        return SQLiteStore(_sqlite_path(url[len("sqlite:///") :], url))
    raise ConfigError(
        f"unknown database URL scheme {scheme!r} in {mask_url(url)}", where="store URL", fix=f"use {URL_FORMS}"
    )


def _sqlite_path(path: str, url: str) -> str:
    if path in ("", ":memory:"):
        raise ConfigError(
            f"{url!r} is not a file: an in-memory database cannot be shared by threads and workers",
            where="store URL",
            fix="give a file path",
        )
    return path
