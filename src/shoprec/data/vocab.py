"""External ids <-> contiguous integer indices."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd


class Vocabulary:
    """A fixed, ordered set of external ids (strings), each mapped to its position.

    Models only see the positions (``0 .. len-1``); ids are mapped at the edges.

    >>> v = Vocabulary(["b", "a"])
    >>> v.index(["a", "zzz"]).tolist()
    [1, -1]
    >>> v.ids([0]).tolist()
    ['b']
    """

    def __init__(self, ids: Iterable[object]) -> None:
        values = np.asarray([str(i) for i in ids], dtype=object)
        index = pd.Index(values, dtype=object)
        if not index.is_unique:
            dupes = index[index.duplicated()].unique()[:5].tolist()
            raise ValueError(f"vocabulary ids must be unique; repeated: {dupes}")
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._index.equals(other._index)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids)"

    def index(self, ids: Iterable[object]) -> np.ndarray:
        """Positions of ``ids`` as int64; -1 for ids not in the vocabulary."""
        keys = pd.Index([str(i) for i in ids], dtype=object)
        return self._index.get_indexer(keys).astype(np.int64)

    def ids(self, positions: Iterable[int] | np.ndarray | None = None) -> np.ndarray:
        """External ids at ``positions`` (all ids when ``positions`` is None)."""
        values = self._index.to_numpy(dtype=object)
        if positions is None:
            return values.copy()
        return values[np.asarray(positions, dtype=np.int64)]

    def extend(self, ids: Iterable[object]) -> Vocabulary:
        """A new vocabulary with the unseen ``ids`` appended; existing positions keep their values."""
        new = [str(i) for i in ids]
        fresh = pd.Index(new, dtype=object).difference(self._index, sort=False).unique()
        return Vocabulary(list(self._index) + list(fresh))
