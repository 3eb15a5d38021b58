"""Most-popular items, all-time or in a recent window (trending)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.models.base import Recommender
from shoprec.models.registry import register
from shoprec.timeunits import DAY


@dataclass
class PopularityConfig:
    window_days: float | None = None
    """Count only events in the last ``window_days`` before the newest event; None = all time."""
    weighting: str = "binary"
    """How events count: ``binary`` (distinct users), ``count`` or ``weighted`` (by event type)."""


@register
class Popularity(Recommender):
    """Ranks items by how many users interacted with them. Same list for everyone."""

    name = "popularity"
    config_class = PopularityConfig

    def _fit(self, dataset: Dataset) -> None:
        data = dataset
        if self.config.window_days is not None:
            times = dataset.interactions["timestamp"].to_numpy()
            data = dataset.subset(times >= times.max() - self.config.window_days * DAY)
        counts = np.asarray(data.matrix(self.config.weighting).sum(axis=0), dtype=np.float32).ravel()
        # Break ties by all-time popularity so a short window still gives a full ranking.
        tiebreak = self.fallback_scores / (self.fallback_scores.max() + 1.0)
        self.item_scores = (counts + tiebreak).astype(np.float32)

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores, (len(users), self.n_items)).copy()

    def state(self) -> dict[str, np.ndarray]:
        return {"item_scores": self.item_scores}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_scores = arrays["item_scores"]


@dataclass
class TrendingConfig(PopularityConfig):
    window_days: float | None = 7.0
    """Length of the recent window in days, counted back from the newest event."""


@register
class Trending(Popularity):
    """Popularity in a recent window (default: the last 7 days of data)."""

    name = "trending"
    config_class = TrendingConfig
