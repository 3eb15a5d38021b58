"""Candidates for one user: merged from several recall sources, each keeping its provenance.

A :class:`Candidates` holds the item indices and, per source, the score and rank that source gave
(NaN / -1 where the source did not propose the item). Rankers write :attr:`Candidates.score`,
rerankers reorder or drop rows with :meth:`Candidates.take`, and notes say what happened on the way
("filled 4 slots from popularity after filters").

>>> c = Candidates.merge({"ease": (np.array([3, 5]), np.array([0.9, 0.4])),
...                       "trending": (np.array([5, 8]), np.array([12.0, 7.0]))})
>>> c.items.tolist(), c.proposed_by(1)
([3, 5, 8], ['ease', 'trending'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Candidates:
    """Item indices with per-source scores and ranks, the current score, and notes."""

    items: np.ndarray  # (n,) int64
    sources: tuple[str, ...]
    source_scores: np.ndarray  # (n, n_sources) float32, NaN where a source did not propose the item
    source_ranks: np.ndarray  # (n, n_sources) int32, 0 = that source's best, -1 where not proposed
    score: np.ndarray  # (n,) float32: the ranking score so far (ranker, fusion or a reranker)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def merge(cls, proposals: dict[str, tuple[np.ndarray, np.ndarray]]) -> Candidates:
        """Union of each source's ``(items, scores)`` (best first; PAD -1 entries skipped).

        Items keep the order of first appearance over sources in the given order.
        """
        sources = tuple(proposals)
        order: dict[int, int] = {}
        for items, _ in proposals.values():
            for item in np.asarray(items).ravel().tolist():
                if item >= 0 and item not in order:
                    order[item] = len(order)
        n = len(order)
        scores = np.full((n, len(sources)), np.nan, dtype=np.float32)
        ranks = np.full((n, len(sources)), -1, dtype=np.int32)
        for s, (items, values) in enumerate(proposals.values()):
            items = np.asarray(items).ravel()
            values = np.asarray(values, dtype=np.float32).ravel()
            keep = items >= 0
            rows = np.array([order[i] for i in items[keep].tolist()], dtype=np.int64)
            scores[rows, s] = values[keep]
            ranks[rows, s] = np.arange(len(items), dtype=np.int32)[keep]
        items = np.fromiter(order, dtype=np.int64, count=n)
        return cls(items, sources, scores, ranks, np.zeros(n, dtype=np.float32))

    @classmethod
    def empty(cls, sources: tuple[str, ...] = ()) -> Candidates:
        return cls(
            np.empty(0, dtype=np.int64),
            sources,
            np.empty((0, len(sources)), dtype=np.float32),
            np.empty((0, len(sources)), dtype=np.int32),
            np.empty(0, dtype=np.float32),
        )

    def take(self, rows: np.ndarray) -> Candidates:
        """Rows by index array (reorders) or boolean mask (filters); notes are kept."""
        rows = np.asarray(rows)
        return Candidates(
            self.items[rows],
            self.sources,
            self.source_scores[rows],
            self.source_ranks[rows],
            self.score[rows],
            list(self.notes),
        )

    def sorted(self) -> Candidates:
        """Best :attr:`score` first (stable, so ties keep their order)."""
        return self.take(np.argsort(-self.score, kind="stable"))

    def proposed_by(self, row: int) -> list[str]:
        """Names of the sources that proposed the item in ``row``."""
        return [s for s, r in zip(self.sources, self.source_ranks[row], strict=True) if r >= 0]

    def column(self, source: str) -> int:
        return self.sources.index(source)
