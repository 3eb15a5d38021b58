"""What the pipeline knows about the shopper at request time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shoprec.data.dataset import Dataset

SHORT = 64
"""Histories up to this long are compared item by item in :meth:`UserContext.seen`."""
RECENT_QUERIES = 20
"""Search queries :func:`contexts_from_dataset` keeps per shopper (the most recent before ``now``)."""


@dataclass
class UserContext:
    """One request: the shopper's history (oldest first, live events included) and the time.

    ``user`` is the index in the fitted data, or -1 for a shopper the models never saw (the
    cold-start path: history may still hold the clicks of this visit). ``queries`` are the
    shopper's recent search queries, oldest first (most recent last), all made before ``now``.
    ``platform`` and ``language`` describe the request (the learned ranker may use the platform).
    """

    user: int
    history: np.ndarray  # (h,) int64 item indices, oldest first
    times: np.ndarray  # (h,) int64 unix seconds
    now: int  # request time, unix seconds
    events: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))  # (h,) event names, may be empty
    queries: tuple[str, ...] = ()  # recent search queries, most recent last
    platform: str | None = None  # where the request comes from (web, app, mini-program, email, ...); None: unknown
    language: str | None = None  # the device language of the request, e.g. "en", "zh-CN"; None: unknown

    @property
    def is_cold(self) -> bool:
        return len(self.history) == 0

    def recent(self, n: int) -> np.ndarray:
        """The last ``n`` distinct items, most recent first."""
        seen: dict[int, None] = {}
        for item in self.history[::-1].tolist():
            if item not in seen:
                seen[item] = None
                if len(seen) == n:
                    break
        return np.fromiter(seen, dtype=np.int64, count=len(seen))

    def seen(self, items: np.ndarray) -> np.ndarray:
        """(len(items),) bool: whether each item is in the history; ``np.isin`` without its sort
        for the short histories of most requests."""
        items, history = np.asarray(items), np.asarray(self.history)
        if 0 < len(history) <= SHORT and len(items) * len(history) <= 200_000:
            return (items[:, None] == history[None, :]).any(axis=1)
        return np.isin(items, history)

    def purchased(self) -> np.ndarray:
        """Distinct items with a purchase event (empty when events are unknown)."""
        if len(self.events) != len(self.history):
            return np.empty(0, dtype=np.int64)
        return np.unique(self.history[self.events == "purchase"]).astype(np.int64)


def contexts_from_dataset(dataset: Dataset, users: np.ndarray, now: int | None = None) -> list[UserContext]:
    """A context per user index from the dataset's events (all event types, time order) and its
    search queries: the user's last :data:`RECENT_QUERIES` dated strictly before ``now`` (undated
    queries cannot be placed in time and are never used).

    ``now`` defaults to one second after the dataset's newest event. When the events carry a
    ``platform``, a context's platform is that of the user's last event.
    """
    frame = dataset.interactions
    platforms = frame["platform"].to_numpy(dtype=object) if "platform" in frame else None
    newest = int(frame["timestamp"].max()) + 1 if len(frame) else 0
    now = newest if now is None else int(now)
    seqs = dataset.sequences()
    events = frame["event"].to_numpy()
    codes = _event_names(events)
    queries = _queries_before(dataset, now)
    out = []
    for u in np.asarray(users, dtype=np.int64).tolist():
        if 0 <= u < dataset.n_users:
            lo, hi = seqs.indptr[u], seqs.indptr[u + 1]
            items, times = seqs.items[lo:hi].astype(np.int64), seqs.timestamps[lo:hi]
            platform = platforms[hi - 1] if platforms is not None and hi > lo else None
            platform = platform if isinstance(platform, str) else None  # pd.NA, None: unknown
            out.append(UserContext(u, items, times, now, codes[lo:hi], queries.get(u, ()), platform))
        else:
            out.append(UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), now))
    return out


def _queries_before(dataset: Dataset, now: int, keep: int = RECENT_QUERIES) -> dict[int, tuple[str, ...]]:
    """User index -> the user's last ``keep`` query texts dated before ``now``, oldest first."""
    table = dataset.queries
    if table is None or not len(table) or "user_id" not in table or "timestamp" not in table:
        return {}
    stamps = table["timestamp"]
    dated = stamps.notna().to_numpy() & table["user_id"].notna().to_numpy()
    if not dated.any():
        return {}
    frame = table.loc[dated, ["user_id", "query", "timestamp"]]
    frame = frame[frame["timestamp"].astype("int64").to_numpy() < now]
    users = dataset.user_vocab.index(frame["user_id"])
    frame = frame.assign(user=users)[users >= 0]
    frame = frame.sort_values(["user", "timestamp"], kind="stable")
    out: dict[int, tuple[str, ...]] = {}
    for user, texts in frame.groupby("user", sort=False)["query"]:
        out[int(user)] = tuple(str(t) for t in texts.to_numpy(dtype=object)[-keep:])
    return out


def _event_names(events: np.ndarray) -> np.ndarray:
    return np.asarray(events, dtype=object)
