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
        columns = [np.asarray(items).ravel() for items, _ in proposals.values()]
        values = [np.asarray(scores, dtype=np.float32).ravel() for _, scores in proposals.values()]
        kept = [items >= 0 for items in columns]
        every = np.concatenate([items[keep] for items, keep in zip(columns, kept, strict=True)]).astype(np.int64)
        # first appearance over sources in order: the unique items sorted by where each first occurs
        unique, first, inverse = np.unique(every, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        row_of = np.empty(len(unique), dtype=np.int64)
        row_of[order] = np.arange(len(unique))
        rows_all = row_of[inverse.ravel()]
        n = len(unique)
        scores = np.full((n, len(sources)), np.nan, dtype=np.float32)
        ranks = np.full((n, len(sources)), -1, dtype=np.int32)
        start = 0
        for s, (items, keep) in enumerate(zip(columns, kept, strict=True)):
            rows = rows_all[start : start + int(keep.sum())]
            start += len(rows)
            scores[rows, s] = values[s][keep]
            ranks[rows, s] = np.arange(len(items), dtype=np.int32)[keep]
        return cls(unique[order], sources, scores, ranks, np.zeros(n, dtype=np.float32))

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
