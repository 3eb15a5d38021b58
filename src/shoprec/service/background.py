"""A background thread that writes records in batches: impressions are logged off the request path.

Impressions do not gate a response (unlike events, which are acknowledged only once committed), so
a request only queues them; the thread writes whatever has queued, at most every ``interval``
seconds, in one call. A write error is logged and counted, never raised into a request; records
still queued at :meth:`close` are written before it returns.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class BackgroundWriter:
    def __init__(self, write: Callable[[list], None], name: str, interval: float = 0.05, max_batch: int = 2000) -> None:
        self.write, self.name, self.interval, self.max_batch = write, name, interval, max_batch
        self.queue: queue.Queue = queue.Queue()
        self.written = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"shoprec-{name}", daemon=True)
        self._thread.start()

    def put(self, record) -> None:
        self.queue.put(record)

    def _drain(self) -> list:
        batch = []
        while len(batch) < self.max_batch:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _flush(self) -> None:
        while batch := self._drain():
            try:
                self.write(batch)
                self.written += len(batch)
            except Exception as err:  # noqa: BLE001 - logged and counted; never raised into a request
                self.failed += len(batch)
                log.error("%s: writing %d records failed: %s", self.name, len(batch), type(err).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._flush()
        self._flush()

    def flush(self, timeout: float = 5.0) -> None:
        """Write everything queued now (tests and shutdown)."""
        self._flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
