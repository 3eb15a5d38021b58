"""Per-version request counters of one worker, flushed to the store every few seconds.

The online experiments' guardrails (error rate, latency) compare versions over every worker, so
each worker adds its feed requests, server errors and summed latency per serving version to the
store (:meth:`~shoprec.service.store.base.Store.record_requests`) every :data:`FLUSH_SECONDS`;
:meth:`~shoprec.service.store.base.Store.version_health` sums them. A failed flush keeps the counts
for the next one (logged), so a store outage delays the figures but loses none while the worker
lives. Client errors (unknown item, bad filter: HTTP 4xx) are not server errors and are not counted
as errors.
"""

from __future__ import annotations

import logging
import threading
import time

from shoprec.errors import ShoprecError
from shoprec.service.store.base import Store, StoreError

log = logging.getLogger(__name__)
FLUSH_SECONDS = 5.0


def is_server_error(err: BaseException) -> bool:
    """Whether a request failing with ``err`` counts against the version (a 5xx, not a client error)."""
    if not isinstance(err, ShoprecError):
        return True
    from shoprec.service.problems import status_of

    return status_of(err) >= 500


class VersionCounters:
    """Requests, errors and latency per version since the last flush (thread-safe)."""

    def __init__(self, store: Store, every: float = FLUSH_SECONDS) -> None:
        self.store, self.every = store, every
        self._counts: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.flush_errors = 0
        self._thread = threading.Thread(target=self._run, name="shoprec-version-counters", daemon=True)
        self._thread.start()

    def observe(self, version: str, seconds: float, error: bool = False) -> None:
        """One feed request served (or failed, ``error``) by ``version`` in ``seconds``."""
        with self._lock:
            row = self._counts.setdefault(version, [0, 0, 0.0])
            row[0] += 1
            row[1] += int(error)
            row[2] += 1000.0 * seconds

    def flush(self) -> None:
        """Add the counts to the store now; those a failed write could not store wait for the next flush."""
        with self._lock:
            counts, self._counts = self._counts, {}
        at = time.time()
        for version, (requests, errors, latency) in counts.items():
            try:
                self.store.record_requests(version, int(requests), int(errors), latency, at)
            except StoreError as err:
                self.flush_errors += 1
                log.warning("request counters of %s not stored (%s); kept for the next flush", version, err.problem)
                with self._lock:
                    row = self._counts.setdefault(version, [0, 0, 0.0])
                    row[0], row[1], row[2] = row[0] + requests, row[1] + errors, row[2] + latency

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()

    def close(self) -> None:
        """Stop the flushing thread after a last flush."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
