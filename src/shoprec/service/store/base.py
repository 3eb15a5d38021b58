"""The one storage interface of the service, and the records that cross it.

Two backends implement :class:`Store`: SQLite (embedded, the default) and PostgreSQL. Several
worker processes may share one database, so everything another worker must see (events, catalogue
changes, API keys, settings) lives here, and change counters (``seq``, ``updated_seq``) let a worker
pick up only what is new.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from shoprec.errors import ShoprecError

STAT_KEYS = ("version", "source", "scenario", "platform")
"""The impression columns :meth:`Store.online_stats` can group by."""
DECISION_ACTIONS = ("promote", "rollback", "continue", "guardrail", "challenger", "rejected", "no-new-data")
"""What :meth:`Store.record_decision` records about an experiment."""


class StoreError(ShoprecError):
    """The database cannot be used: unreachable, a schema from a newer shoprec, or a record it cannot store."""

    def __init__(self, problem: str, *, fix: str | None = None) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(problem + (f". {fix}" if fix else ""))


@dataclass(frozen=True)
class Event:
    """One user interaction, as the API receives it."""

    event_id: str  # client-supplied unique id: the idempotency key
    user_id: str
    item_id: str
    event: str  # view | click | cart | purchase (validated by the API; the store accepts any string)
    timestamp: float  # unix seconds
    recommendation_id: str | None = None  # set when the event follows a served list (feedback loop)
    search_id: str | None = None  # set when the event follows a search answer (click, cart, purchase)
    query: str | None = None  # the search's query, attached by the API from the search log (None: unknown search)
    platform: str | None = None  # where the shopper was: web | app | mini-program | email | any other string
    language: str | None = None  # the device language, e.g. "en", "zh-CN"


@dataclass(frozen=True)
class SearchRecord:
    """One answered search, as the search log keeps it."""

    search_id: str
    user_id: str | None  # None for an anonymous shopper
    query: str  # as the shopper typed it
    n_results: int  # matches before paging; 0 is a zero-result search
    timestamp: float  # unix seconds


@dataclass(frozen=True)
class StoredEvent:
    """An event with its store-wide ingest position."""

    seq: int  # increasing in ingest order; a reader that saw seq s has seen every event before s
    event: Event


@dataclass(frozen=True)
class AppendResult:
    """Which event ids an append stored, and which it ignored because they were stored before."""

    inserted: list[str]
    duplicates: list[str]


@dataclass(frozen=True)
class ItemRecord:
    """One catalogue item as the service keeps it."""

    item_id: str
    title: str = ""
    description: str = ""
    category: str = ""
    brand: str = ""
    price: float | None = None
    language: str = ""
    attributes: dict = field(default_factory=dict)  # stored as JSON
    vector: np.ndarray | None = None  # float32 text vector, stored as raw little-endian bytes (no pickle)
    deleted: bool = False
    updated_seq: int = 0  # set by the store: the catalogue change counter at the item's last change


@dataclass(frozen=True)
class Impression:
    """One served recommendation list; ``sources[i]`` is the recall source that proposed ``items[i]``."""

    recommendation_id: str
    user_id: str
    version: str
    scenario: str
    items: list[str]
    sources: list[str]
    timestamp: float
    propensities: list[float] | None = None  # per shown item: its probability of being shown there; None: all 1.0
    explored: list[bool] | None = None  # per shown item: the slot was filled by exploration; None: none was
    platform: str | None = None  # the request's platform (web, app, ...), None when it named none
    latency_ms: float | None = None  # time taken to serve the list


@dataclass(frozen=True)
class LoggedImpression:
    """A served list as logged, with what the shopper did with each shown item (off-policy evaluation).

    Lists per shown item, in list order: ``propensities`` (1.0 where the list was logged without),
    ``explored``, and ``clicks``/``purchases``: whether a click (purchase) event carries this list's
    recommendation id and the item's id (the join :meth:`Store.online_stats` counts).
    """

    recommendation_id: str
    user_id: str
    version: str
    scenario: str
    items: list[str]
    sources: list[str]
    propensities: list[float]
    explored: list[bool]
    platform: str | None
    timestamp: float
    clicks: list[bool]
    purchases: list[bool]


class UnknownUser(StoreError):
    """:meth:`Store.delete_user` found nothing of the user: no event, impression, search or earlier deletion."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key; only a hash of the secret is stored."""

    key_id: str
    secret_hash: str
    scopes: list[str]
    rate_per_minute: int
    created: float
    revoked: bool = False


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and display."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Store(ABC):
    """Durable storage shared by the API workers; every method is safe to call from many threads.

    >>> store = open_store("sqlite:///shoprec.db")                         # doctest: +SKIP
    >>> store.append_events([Event("e1", "u1", "i9", "view", 1732000000.0)])  # doctest: +SKIP
    AppendResult(inserted=['e1'], duplicates=[])
    """

    url: str
    """Where the data lives, for display (password masked)."""

    @abstractmethod
    def migrate(self, target: int | None = None) -> int:
        """Apply the pending migrations (up to ``target``, default all) and return the schema version."""

    @abstractmethod
    def schema_version(self) -> int:
        """The version of the newest applied migration; 0 for an empty database."""

    @abstractmethod
    def append_events(self, events: Sequence[Event]) -> AppendResult:
        """Store events in one transaction, durable on return; ids stored before are reported as duplicates."""

    @abstractmethod
    def events_after(self, seq: int, limit: int = 10_000) -> list[StoredEvent]:
        """Up to ``limit`` events with a ``seq`` above ``seq``, in ingest order."""

    @abstractmethod
    def user_events(self, user_id: str, limit: int = 200) -> list[Event]:
        """The user's ``limit`` most recently ingested events, oldest first."""

    @abstractmethod
    def count_events(self) -> int:
        """Number of stored events."""

    @abstractmethod
    def get_events(self, event_ids: Sequence[str]) -> list[Event]:
        """The stored events among ``event_ids``, in the order asked; unknown ids are left out."""

    @abstractmethod
    def upsert_items(self, items: Sequence[ItemRecord]) -> int:
        """Insert or replace items (their ``updated_seq`` is ignored) and return the new change counter."""

    @abstractmethod
    def delete_item(self, item_id: str) -> bool:
        """Mark an item deleted with a new change counter; False if the item is unknown."""

    @abstractmethod
    def get_item(self, item_id: str) -> ItemRecord | None:
        """The item (deleted ones too, with ``deleted=True``), or None if unknown."""

    @abstractmethod
    def items_changed_after(self, seq: int) -> list[ItemRecord]:
        """Items inserted, changed or deleted after change counter ``seq``, in change order."""

    @abstractmethod
    def search_items(self, text: str, limit: int = 20) -> list[ItemRecord]:
        """Items not deleted whose id or title contains ``text`` (case-insensitive), by item id."""

    @abstractmethod
    def count_items(self) -> int:
        """Number of items not deleted."""

    @abstractmethod
    def log_impressions(self, rows: Sequence[Impression]) -> None:
        """Store served lists, one row per list (its items and their sources as arrays); a list
        logged twice is stored once, an item listed twice in one list once (at its first place); a
        list of a forgotten user (:meth:`delete_user`) is not stored."""

    @abstractmethod
    def online_stats(
        self, by: Sequence[str] = ("version",), bucket_seconds: int | None = None, since: float | None = None
    ) -> list[dict]:
        """Impressions, clicks and purchases of served items, grouped by ``by`` (and time bucket).

        A click (purchase) counts for an impression when an event ``click`` (``purchase``) carries
        the impression's recommendation id and item id; each shown item counts at most once.
        """

    @abstractmethod
    def logged_impressions(
        self,
        since: float | None = None,
        until: float | None = None,
        versions: Sequence[str] | None = None,
        scenario: str | None = None,
    ) -> list[LoggedImpression]:
        """Served lists logged at ``since`` <= time < ``until`` (of ``versions`` and ``scenario`` when
        given), oldest first, each with the clicks and purchases of its shown items."""

    @abstractmethod
    def record_requests(self, version: str, requests: int, errors: int, latency_ms_sum: float, at: float) -> None:
        """Add a worker's request counters of ``version`` over a short interval ending at ``at``."""

    @abstractmethod
    def version_health(self, since: float | None = None) -> dict[str, dict]:
        """Per version, over counters recorded at or after ``since``: ``requests``, ``errors`` and
        ``latency_ms_mean`` (None when no request was counted)."""

    @abstractmethod
    def delete_user(self, user_id: str, actor: str, *, require_known: bool = True) -> dict:
        """Remove the user's events, impressions and searches in one transaction, record the user as
        forgotten and audit it (``actor``: who asked, an API key id or "cli"); returns the rows removed
        per table (``{"events": n, "impressions": n, "searches": n}``).

        Raises :class:`UnknownUser` when the store knows nothing of the user, unless
        ``require_known`` is False (a user known only from a version's training data). Forgetting a
        user again removes what came since and is audited again.
        """

    @abstractmethod
    def forgotten_users(self, since: float | None = None) -> set[str]:
        """Every user :meth:`delete_user` removed: never to be trained on or personalised again
        (first forgotten at or after ``since``, when given: a worker's cheap refresh)."""

    @abstractmethod
    def audit(self, actor: str, action: str, subject: str, detail: dict | None = None, at: float | None = None) -> None:
        """Append an entry to the audit log (``at`` default: now)."""

    @abstractmethod
    def audit_log(self, limit: int = 100) -> list[dict]:
        """The latest ``limit`` audit entries, newest first: ``actor, action, subject, at, detail``."""

    @abstractmethod
    def record_decision(self, experiment: str, action: str, evidence: dict, at: float) -> None:
        """Record a decision on an experiment (``action`` one of :data:`DECISION_ACTIONS`) with its evidence."""

    @abstractmethod
    def decisions(self, limit: int = 100) -> list[dict]:
        """The latest ``limit`` decisions, newest first: ``experiment, action, evidence, at``."""

    @abstractmethod
    def log_search(self, search_id: str, user_id: str | None, query: str, n_results: int, at: float) -> None:
        """Record an answered search, durable on return; a search id logged before is kept as it was.

        ``user_id`` None (or empty) for an anonymous shopper, and stored as None for a forgotten one
        (:meth:`delete_user`); ``n_results`` the matches before paging.
        """

    @abstractmethod
    def get_searches(self, search_ids: Sequence[str]) -> dict[str, SearchRecord]:
        """The logged searches among ``search_ids``, by id; unknown ids are left out."""

    @abstractmethod
    def user_searches(self, user_id: str, limit: int = 20, since: float | None = None) -> list[SearchRecord]:
        """The user's ``limit`` latest searches (at or after ``since`` when given), oldest first."""

    @abstractmethod
    def search_analytics(
        self,
        since: float | None = None,
        until: float | None = None,
        min_searches: int = 5,
        max_click_rate: float = 0.1,
        limit: int = 50,
    ) -> dict:
        """What shoppers search for and do not find, over searches at ``since`` <= time < ``until``.

        Queries are grouped by their normalised text (NFKC, case-folded, spaces collapsed). Returns
        ``{"totals": {...}, "zero_result": [...], "low_click": [...]}``: ``zero_result`` the queries
        with at least one search that matched nothing, most frequent first; ``low_click`` the queries
        searched at least ``min_searches`` times with results whose share of searches followed by a
        click, cart or purchase carrying the search id is below ``max_click_rate``. ``totals`` counts
        searches, zero-result searches, events carrying a search id and those whose id was not in the
        log (accepted without a query).
        """

    @abstractmethod
    def put_api_key(self, key: ApiKeyRecord) -> None:
        """Insert or replace an API key."""

    @abstractmethod
    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key, or None if unknown."""

    @abstractmethod
    def list_api_keys(self) -> list[ApiKeyRecord]:
        """All keys, revoked ones too, oldest first."""

    @abstractmethod
    def set_setting(self, name: str, value: dict) -> None:
        """Store a JSON setting shared by all workers (A/B split, pinned version)."""

    @abstractmethod
    def get_setting(self, name: str) -> dict | None:
        """The setting, or None if never set."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store cannot be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
