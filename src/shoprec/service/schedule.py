"""Scheduled retraining: ``shoprec retrain --every 6h`` and the service's optional retrain thread.

Both run :func:`~shoprec.service.retrain.retrain_once` when one is due: when the store's newest
``retrain`` decision is older than the period (or there is none). A file lock in the models folder
(``.retrain.lock``) lets one process retrain at a time, so several API workers, or a worker and a
``shoprec retrain`` job, never train the same candidate twice; whoever finds it taken skips.

>>> parse_duration("6h"), parse_duration("90s"), parse_duration("1.5d")
(21600.0, 90.0, 129600.0)
"""

from __future__ import annotations

import fcntl
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from shoprec.errors import ConfigError
from shoprec.service.store.base import Store
from shoprec.timeunits import DAY

log = logging.getLogger(__name__)
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": float(DAY)}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
LOCK = ".retrain.lock"


def parse_duration(text: str | float, what: str = "retrain period") -> float:
    """``"6h"``, ``"30m"``, ``"1d"``, ``"90s"`` or plain seconds -> seconds (> 0)."""
    match = DURATION.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{what} {text!r} is not a positive duration", fix="write it like 6h, 30m, 1d or 3600")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


class RetrainScheduler:
    """Runs a retrain when one is due (see the module docstring); ``start`` does it on a thread."""

    def __init__(
        self,
        models_dir: str | Path,
        store: Store,
        every: float,
        share: float = 0.1,
        tolerance: float = 0.02,
        warm: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.models_dir, self.store, self.every = Path(models_dir), store, float(every)
        self.options = {"share": share, "tolerance": tolerance, "warm": warm}
        self.clock = clock
        self.last = None
        """The latest :class:`~shoprec.service.retrain.RetrainResult` this scheduler produced."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def last_run(self) -> float | None:
        """When the newest retrain decision was recorded (any process), or None."""
        from shoprec.service.retrain import EXPERIMENT

        for decision in self.store.decisions(limit=1000):
            if decision["experiment"] == EXPERIMENT:
                return float(decision["at"])
        return None

    def due_in(self) -> float:
        """Seconds until the next retrain is due (0: now)."""
        last = self.last_run()
        return 0.0 if last is None else max(0.0, last + self.every - self.clock())

    def run_if_due(self):
        """One retrain if due and no other process is retraining; its result, else None."""
        from shoprec.service.retrain import retrain_once

        self.models_dir.mkdir(parents=True, exist_ok=True)
        with open(self.models_dir / LOCK, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return None  # another process is retraining
            if self.due_in() > 0:
                return None
            self.last = retrain_once(self.models_dir, self.store, **self.options)
            return self.last

    # ------------------------------------------------------------------ the service's thread
    def start(self) -> RetrainScheduler:
        self._thread = threading.Thread(target=self._run, name="shoprec-retrain", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(min(max(self._safe_due_in(), 1.0), 300.0)):
            try:
                result = self.run_if_due()
            except Exception as err:  # noqa: BLE001 - a failed retrain must not stop the service; logged
                log.error("scheduled retrain failed: %s: %s", type(err).__name__, err)
                self._stop.wait(min(self.every, 600.0))  # not again at once
                continue
            if result is not None:
                log.info("scheduled retrain: %s", result.message)

    def _safe_due_in(self) -> float:
        try:
            return self.due_in()
        except Exception as err:  # noqa: BLE001 - the store may be briefly unreachable; try again later
            log.error("retrain schedule: reading the last decision failed: %s", err)
            return 60.0

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_from_settings(settings, store: Store) -> RetrainScheduler | None:
    """The service's retrain thread when ``settings.retrain_every`` is set, started; else None."""
    if not settings.retrain_every:
        return None
    every = parse_duration(settings.retrain_every, "retrain_every")
    return RetrainScheduler(settings.models_dir, store, every, share=settings.retrain_share).start()
