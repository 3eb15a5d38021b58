"""Interactions per item in a time window ending at the request time, shared by the trending
source and the popularity features."""

from __future__ import annotations

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.timeunits import DAY


class WindowCounts:
    """Events of the training data sorted by time; counts per item in ``[now - days, now]``
    (all time when ``days`` is None), cached per day and window length."""

    def __init__(self, train: Dataset) -> None:
        frame = train.interactions
        times = frame["timestamp"].to_numpy(dtype=np.int64)
        order = np.argsort(times, kind="stable")
        self.items = frame["item"].to_numpy(dtype=np.int64)[order]
        self.times = times[order]
        self.n_items = train.n_items
        self._cache: dict[tuple, np.ndarray] = {}

    @property
    def newest(self) -> int:
        return int(self.times[-1]) if len(self.times) else 0

    def counts(self, now: int, days: float | None) -> np.ndarray:
        """(n_items,) float32 counts; do not modify the returned array."""
        key = (int(now // DAY) if days is not None else 0, days)
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            hi = np.searchsorted(self.times, now, side="right")
            lo = 0 if days is None else np.searchsorted(self.times, now - days * DAY)
            self._cache[key] = np.bincount(self.items[lo:hi], minlength=self.n_items).astype(np.float32)
        return self._cache[key]
