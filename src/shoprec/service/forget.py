"""Forgetting a shopper: removed from the store and the live state, never personalised or trained on again.

:func:`forget_user` (``DELETE /v1/users/{user_id}`` and ``shoprec forget``) removes the user's
events, impressions and searches from the store in one transaction, records the user as forgotten
(:meth:`~shoprec.service.store.base.Store.delete_user`, audited with who asked and when) and drops
the user's live lists from Redis. The retrain job leaves forgotten users out of every later
training set (``Store.forgotten_users``).

The loaded versions' training snapshots still hold the user's old events until the next retrain, so
every worker keeps a :class:`Forgotten` set and serves a forgotten user as an anonymous shopper: no
snapshot history, no live events, no cached personal feed. The worker that took the request knows
at once; every other worker within :data:`REFRESH_SECONDS` (one small indexed query, only of users
forgotten lately).

A user the store knows nothing of but whom a version on disk was trained on is forgotten all the
same (recorded, so that serving and retraining drop the snapshot's events); a user known to neither
is a :class:`~shoprec.service.served.NotFound` (HTTP 404).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shoprec.service.live import LiveState
from shoprec.service.served import NotFound
from shoprec.service.store.base import Store, StoreError, UnknownUser

log = logging.getLogger(__name__)
REFRESH_SECONDS = 0.5
"""How often a worker asks the store for users other workers forgot."""
CLOCK_MARGIN = 300.0
"""Each refresh re-reads users forgotten this many seconds before the last one (clocks of workers on
other machines may differ; re-reading is harmless, the set is a union)."""
FORGOTTEN_NOTE = "this shopper asked to be forgotten: served as an anonymous shopper"


class Forgotten:
    """The forgotten users as this worker sees them: a set refreshed from the store at most every
    ``every`` seconds, on the first membership test after that.

    ``on_new`` callbacks get the users this worker learns of, a set at a time (to drop per-user caches).
    """

    def __init__(self, store: Store, every: float = REFRESH_SECONDS) -> None:
        self.store, self.every = store, every
        self.on_new: list[Callable[[set[str]], None]] = []
        self._users: frozenset[str] = frozenset()
        self._checked = float("-inf")  # monotonic time of the last refresh
        self._since: float | None = None  # wall time to read from next (None: everything)
        self._lock = threading.Lock()  # one refresh at a time
        self._learning = threading.Lock()  # one change of the set at a time
        self.refresh_errors = 0

    def __contains__(self, user_id: object) -> bool:
        if not user_id:
            return False
        if time.monotonic() - self._checked >= self.every:
            self.refresh()
        return user_id in self._users

    def __len__(self) -> int:
        return len(self._users)

    def refresh(self) -> None:
        """Read users forgotten since the last refresh (all on the first); a store failure keeps the
        set as it was (logged, counted) and is tried again after ``every`` seconds."""
        if not self._lock.acquire(blocking=False):
            return  # another request thread is refreshing: use the set as it is
        try:
            began = time.time()
            try:
                found = self.store.forgotten_users(since=self._since)
            except StoreError as err:
                self.refresh_errors += 1
                log.warning("forgotten users cannot be read (%s); using the %d known", err.problem, len(self._users))
                return
            finally:
                self._checked = time.monotonic()
            self._since = began - CLOCK_MARGIN
            self._learn(found)
        finally:
            self._lock.release()

    def add(self, user_id: str) -> None:
        """A user this worker just forgot: known at once, without waiting for the refresh."""
        self._learn({user_id})

    def _learn(self, users: set[str]) -> None:
        with self._learning:
            fresh = users - self._users
            if not fresh:
                return
            self._users = self._users | fresh  # readers see the old set or the new one, never a half
        for callback in self.on_new:
            callback(fresh)


def forget_user(
    store: Store, live: LiveState | None, user_id: str, actor: str, known: Callable[[str], bool] | None = None
) -> dict:
    """Forget ``user_id`` in the store (audited as ``actor``) and the live state; returns what was removed.

    ``known`` says whether a model version was trained on the user (consulted only when the store
    holds nothing of the user). Raises NotFound when neither knows the user.
    """
    try:
        removed = store.delete_user(user_id, actor)
    except UnknownUser:
        if known is None or not known(user_id):
            raise NotFound(
                f"unknown user {user_id!r}: no event, impression or search in the store and no model version "
                "was trained on this user; nothing to forget (ids are case-sensitive)"
            ) from None
        removed = store.delete_user(user_id, actor, require_known=False)
    live_dropped = live.forget(user_id) if live is not None else True
    return {"user_id": user_id, "forgotten": True, "removed": removed, "live_state_dropped": live_dropped}


def trained_on(models_dir: str | Path, user_id: str) -> list[str]:
    """The versions on disk whose training data holds ``user_id`` (reads only each version's user list)."""
    import pandas as pd

    from shoprec.service.versions import list_versions

    out = []
    for version in list_versions(models_dir):
        users = Path(models_dir) / version / "data" / "users.parquet"
        if users.exists() and (pd.read_parquet(users)["user_id"].astype(str) == user_id).any():
            out.append(version)
    return out
