"""Group commit: many concurrent small appends share one transaction, hence one fsync.

An API worker that acks each event only once it is durable would otherwise pay one commit (one
disk flush) per request. Here request threads :meth:`~GroupCommitter.submit` their events and wait
on a future; one writer thread takes everything queued, up to ``max_batch`` events, writes it with
one :meth:`Store.append_events`, and then resolves each future with that submitter's own inserted
and duplicate ids. While a commit is flushing, the next group fills up, so throughput grows with
the number of concurrent submitters.

Before writing, the writer waits for as many submitters as joined the previous group, but never
longer than ``max_wait_ms``: a steady set of concurrent clients is committed together as soon as
all of them have resubmitted, and a lone client pays no wait at all.

>>> committer = GroupCommitter(store)                                   # doctest: +SKIP
>>> committer.submit([Event("e1", "u1", "i9", "view", 1732000000.0)]).result()  # doctest: +SKIP
AppendResult(inserted=['e1'], duplicates=[])
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from shoprec.service.store.base import AppendResult, Event, Store, StoreError
from shoprec.service.store.sql import split_result

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    events: list[Event]
    future: Future[AppendResult]


class GroupCommitter:
    """Background writer that merges submitted event batches into group commits."""

    def __init__(self, store: Store, max_batch: int = 1000, max_wait_ms: float = 2.0, on_commit=None) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise StoreError(
                f"GroupCommitter needs max_batch >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}"
            )
        self.store = store
        self.on_commit = on_commit
        """Called on the writer thread with each group's newly stored events before any submitter
        hears back (the service records them in the live state: one Redis round trip per group)."""
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.groups = 0  # commits made, for monitoring: events_written / groups is the mean group size
        self.events_written = 0
        self._expected = 1  # submitters in the last group: how many to wait for in the next one
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._guard = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="shoprec-group-commit", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> Future[AppendResult]:
        """Queue events; the future resolves once they are committed (or fails with the write error)."""
        future: Future[AppendResult] = Future()
        if not events:
            future.set_result(AppendResult([], []))
            return future
        with self._guard:
            if self._closed:
                raise StoreError("the group committer is closed", fix="submit before close(), or append directly")
            self._queue.put(_Pending(list(events), future))
        return future

    def close(self) -> None:
        """Commit everything submitted so far, then stop the writer thread."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def __enter__(self) -> GroupCommitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                return
            group, stop = self._gather(first)
            self._commit(group)

    def _gather(self, first: _Pending) -> tuple[list[_Pending], bool]:
        """``first`` plus what is queued, waiting (at most ``max_wait``) until as many submitters as last
        time have joined; at most ``max_batch`` events. The flag is True when close() was called."""
        group, size = [first], len(first.events)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            wait = deadline - time.monotonic() if len(group) < self._expected else 0.0
            try:
                pending = self._queue.get(timeout=max(wait, 0.0))
            except queue.Empty:
                break
            if pending is None:
                return group, True
            group.append(pending)
            size += len(pending.events)
        self._expected = len(group)
        return group, False

    def _commit(self, group: list[_Pending]) -> None:
        live = [p for p in group if p.future.set_running_or_notify_cancel()]
        if not live:
            return
        events = [e for p in live for e in p.events]
        try:
            result = self.store.append_events(events)
        except Exception as exc:  # every submitter of the group learns why its events were not stored
            for pending in live:
                pending.future.set_exception(exc)
            return
        self.groups += 1
        self.events_written += len(events)
        fresh = set(result.inserted)
        if self.on_commit is not None and fresh:
            try:
                self.on_commit([e for e in events if e.event_id in fresh])
            except Exception:  # noqa: BLE001 - the events are stored; a hook failure must not fail them
                log.exception("on_commit hook failed")
        for pending in live:
            own = split_result([e.event_id for e in pending.events], fresh)
            fresh.difference_update(own.inserted)
            pending.future.set_result(own)
