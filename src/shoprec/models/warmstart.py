"""Warm starts: begin a refit from a previous model's parameters instead of random ones.

A retrained version sees the same shop a little later: most users and items are the same, a few are
new, some are gone. Models that learn by iteration (ALS, SASRec, LightGCN) converge in fewer passes
when they start from what they learned last time. Ids are matched at the edge: ``items[i]`` is the
previous model's index of the new dataset's item ``i`` (-1 for an item the previous model never saw),
``users`` likewise. Rows of known ids are copied; new rows are initialised by the model (from the item
text where the model reads text, else small random values, as in a cold start).

>>> from shoprec.models.warmstart import index_map
>>> index_map(["a", "c", "b"], ["b", "a"]).tolist()
[1, -1, 0]
>>> items, users = index_map(new_items, old_items), index_map(new_users, old_users)  # doctest: +SKIP
>>> model.warm_start(previous_model, items, users).fit(new_dataset)                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shoprec.errors import ModelError


@dataclass
class WarmStart:
    """What the next fit starts from: the previous model and the new -> previous index maps."""

    previous: object  # a fitted Recommender of the same class
    items: np.ndarray  # (n_items,) int64: previous index of each new item index, -1 = new item
    users: np.ndarray  # (n_users,) int64: previous index of each new user index, -1 = new user

    def check(self, model: str, n_users: int, n_items: int) -> None:
        """The maps must cover the dataset being fitted and point inside the previous model."""
        if len(self.items) != n_items or len(self.users) != n_users:
            raise ModelError(
                f"{model}: warm start maps cover {len(self.users)} users and {len(self.items)} items but the "
                f"dataset has {n_users} and {n_items}: build them with index_map from this dataset's vocabularies"
            )
        prev = self.previous
        if self.items.max(initial=-1) >= prev.n_items or self.users.max(initial=-1) >= prev.n_users:
            raise ModelError(f"{model}: warm start maps point past the previous model's users or items")

    @property
    def new_items(self) -> np.ndarray:
        """Indices of items the previous model did not know."""
        return np.flatnonzero(self.items < 0)


def index_map(new_ids: Sequence[str], old_ids: Sequence[str]) -> np.ndarray:
    """For each id of ``new_ids``, its position in ``old_ids`` (-1 when absent), int64."""
    position = {str(i): n for n, i in enumerate(old_ids)}
    return np.fromiter((position.get(str(i), -1) for i in new_ids), dtype=np.int64, count=len(new_ids))


def carry_rows(old: np.ndarray, mapping: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``fill`` (len(mapping), d) with row ``i`` replaced by ``old[mapping[i]]`` where ``mapping[i] >= 0``."""
    old = np.asarray(old)
    if old.ndim != 2 or fill.ndim != 2 or old.shape[1] != fill.shape[1]:
        raise ModelError(f"warm start: previous rows of shape {old.shape} do not fit new rows of shape {fill.shape}")
    out = np.array(fill, dtype=fill.dtype, copy=True)
    known = mapping >= 0
    out[known] = old[mapping[known]]
    return out
