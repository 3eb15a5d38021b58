"""What a recall source is: fitted once, asked for a batch of user contexts, answers best-first.

A source proposes up to ``k`` items per user as ``(items, scores)`` arrays, best first, with its
own score scale (the ranker and fusion normalise). Sources that score from the user's history item
by item (item-to-item, sequential models) also say how much each history item contributed, which
explanations use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.windows import WindowCounts

if TYPE_CHECKING:
    from shoprec.text.encoders import Encoder


@dataclass
class Resources:
    """Shared, fitted inputs every source and feature may read."""

    info: ItemInfo
    item_vectors: np.ndarray | None = None  # (n_items, d) L2-normalised text vectors, or None
    windows: WindowCounts | None = None  # training events by time, for popularity in a window
    encoder: Encoder | None = None
    """The encoder that made ``item_vectors``, for texts met at request time (search queries); None
    when not known. Sources that need it read it when a request comes, so it may be set after
    fitting (``pipeline.resources.encoder = encoder``)."""


class Source(ABC):
    """A recall source; ``name`` is its label in candidates, features and explanations."""

    kind: str = "source"
    scores_history: bool = False
    """True when :meth:`history_scores` answers (scores from the history alone)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @abstractmethod
    def fit(self, train: Dataset, resources: Resources) -> None:
        """Learn from the training events (a source wrapping a fitted model may do little)."""

    @abstractmethod
    def recall(self, contexts: list[UserContext], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per context, up to ``k`` ``(items, scores)`` best first (int64, float32)."""

    def history_scores(self, histories: list[np.ndarray]) -> np.ndarray | None:
        """Scores of every item given only these histories (n, n_items), or None when this
        source does not score from the history alone. Used for occlusion explanations."""
        return None
