"""The one interface every recommender implements.

A recommender is fitted on a :class:`~shoprec.data.Dataset` and answers a batch of users (integer
indices) with ``(items, scores)`` arrays of shape ``(n_users, k)``. Subclasses implement only
``_fit`` (learn from the data) and ``score`` (a dense score row per known user); this base class
does exclusion of seen items, candidate restriction, top-k in blocks, the explicit fallback for
unknown users, and saving without pickle.

>>> from shoprec.models import create_model                       # doctest: +SKIP
>>> model = create_model("ease", reg=250.0).fit(train)           # doctest: +SKIP
>>> items, scores = model.recommend(np.array([0, 1, 2]), k=10)   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from shoprec import __version__
from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.models.warmstart import WarmStart
from shoprec.ranks import PAD_ITEM, top_k


@dataclasses.dataclass
class NoConfig:
    """A model without settings."""


def config_from_dict(cls: type, values: dict[str, Any], model: str) -> Any:
    """Build a config dataclass; unknown keys are an error that lists the valid ones."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ModelError(
            f"model '{model}' has no setting {unknown[0]!r}; valid settings: {', '.join(sorted(fields)) or 'none'}"
        )
    return cls(**values)


class Recommender(ABC):
    """Base class: fit on a Dataset, recommend top-k item indices for a batch of user indices."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type] = NoConfig
    warm_startable: ClassVar[bool] = False
    """Whether :meth:`warm_start` is supported (models that learn by iteration from a random start)."""

    def __init__(self, config: Any = None, **settings: Any) -> None:
        if config is not None and settings:
            raise ModelError("give either a config object or keyword settings, not both")
        self.config = config if config is not None else config_from_dict(self.config_class, settings, self.name)
        self.n_users = 0
        self.n_items = 0
        self.seen: sp.csr_matrix | None = None
        self.fallback_scores: np.ndarray | None = None
        self.progress = False
        """Show progress bars while fitting (models with long training loops honour it)."""
        self.warm: WarmStart | None = None
        """Set by :meth:`warm_start`; the next :meth:`fit` starts from it, then clears it."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset) -> Self:
        """Learn from ``dataset``; remembers each user's seen items and item popularity."""
        if len(dataset) == 0:
            raise ModelError(f"cannot fit '{self.name}' on a dataset without interactions")
        self.n_users, self.n_items = dataset.n_users, dataset.n_items
        self.seen = dataset.matrix("binary")
        self.fallback_scores = np.asarray(self.seen.sum(axis=0), dtype=np.float32).ravel()
        try:
            if self.warm is not None:
                self.warm.check(self.name, dataset.n_users, dataset.n_items)
            self._fit(dataset)
        except BaseException:
            self.seen = None  # a failed fit must not leave a model that claims to be fitted
            raise
        finally:
            self.warm = None  # a warm start serves one fit
        return self

    def warm_start(self, previous: Recommender, items: np.ndarray, users: np.ndarray) -> Self:
        """Start the next :meth:`fit` from ``previous`` (a fitted model of this class): ``items[i]`` /
        ``users[i]`` give the previous index of the new dataset's item / user ``i`` (-1: new; see
        :func:`~shoprec.models.warmstart.index_map`). Models without warm starts raise ModelError."""
        if not self.warm_startable:
            raise ModelError(f"model '{self.name}' has no warm start: it is refitted from scratch")
        if type(previous) is not type(self) or not previous.is_fitted:
            raise ModelError(f"'{self.name}' can warm start only from a fitted '{self.name}' model")
        self.warm = WarmStart(previous, np.asarray(items, dtype=np.int64), np.asarray(users, dtype=np.int64))
        return self

    @abstractmethod
    def _fit(self, dataset: Dataset) -> None:
        """Model-specific learning."""

    @abstractmethod
    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for known ``users``: float32 array (len(users), n_items).

        Higher is better; ``-inf`` marks an item the model cannot score for that user.
        """

    # ------------------------------------------------------------------ recommending
    @property
    def is_fitted(self) -> bool:
        return self.seen is not None

    def is_known(self, users: np.ndarray) -> np.ndarray:
        """True for users the model can score: a fitted index with at least one training event.

        Others (index -1, beyond the fitted users, or a user whose events all fell outside the
        training data) get the popularity fallback.
        """
        users = np.asarray(users, dtype=np.int64)
        in_range = (users >= 0) & (users < self.n_users)
        known = np.zeros(len(users), dtype=bool)
        rows = users[in_range]
        known[in_range] = self.seen.indptr[rows + 1] > self.seen.indptr[rows]
        return known

    def recommend(
        self,
        users: np.ndarray | list[int],
        k: int = 10,
        exclude_seen: bool = True,
        candidates: np.ndarray | None = None,
        exclude: sp.csr_matrix | None = None,
        batch_size: int = 2048,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user.

        Args:
            users: user indices; unknown ones (-1 or beyond the fitted users) get the
                popularity fallback, which :meth:`is_known` identifies.
            k: list length. Rows are padded with :data:`PAD_ITEM` and NaN when fewer items are
                eligible (k above the catalogue size, or everything else excluded).
            exclude_seen: drop items the user interacted with in the fitted data.
            candidates: optional item indices; only these may be recommended.
            exclude: optional CSR with one row per user of extra items to drop (for instance a
                live session's history).
        Returns:
            ``(items, scores)``: int64 and float32 arrays of shape (len(users), k).
        """
        if not self.is_fitted:
            raise ModelError(f"model '{self.name}' is not fitted: call fit(dataset) first")
        if not isinstance(k, int | np.integer) or k < 1:
            raise ModelError(f"k must be a positive whole number, got {k!r}")
        users = np.asarray(users, dtype=np.int64).ravel()
        if exclude is not None and exclude.shape != (len(users), self.n_items):
            raise ModelError(f"exclude must have shape ({len(users)}, {self.n_items}), got {exclude.shape}")
        allowed = None
        if candidates is not None:
            candidates = np.asarray(candidates, dtype=np.int64).ravel()
            if len(candidates) and (candidates.min() < 0 or candidates.max() >= self.n_items):
                raise ModelError(f"candidate item indices must lie in 0..{self.n_items - 1}")
            allowed = np.zeros(self.n_items, dtype=bool)
            allowed[candidates] = True
        items = np.full((len(users), k), PAD_ITEM, dtype=np.int64)
        scores = np.full((len(users), k), np.nan, dtype=np.float32)
        for start in range(0, len(users), batch_size):
            block = users[start : start + batch_size]
            rows = self._score_block(block)
            if allowed is not None:
                rows[:, ~allowed] = -np.inf
            if exclude_seen:
                in_range = (block >= 0) & (block < self.n_users)
                _mask(rows, self.seen, np.where(in_range, block, -1))
            if exclude is not None:
                _mask(rows, exclude[start : start + len(block)], np.arange(len(block)))
            top, top_scores = top_k(rows, k)
            items[start : start + len(block)] = top
            scores[start : start + len(block)] = top_scores
        return items, scores

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        known = self.is_known(users)
        rows = np.empty((len(users), self.n_items), dtype=np.float32)
        if known.all():
            rows[:] = self.score(users)
        else:
            rows[:] = self.fallback_scores
            if known.any():
                rows[known] = self.score(users[known])
        return rows

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        """Arrays that :meth:`score` needs, besides what the base class keeps."""
        return {}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Restore what :meth:`state` returned."""

    def save(self, path: str | Path) -> Path:
        """Write ``model.json`` (name, config) and ``arrays.npz`` (no pickle) into folder ``path``;
        arrays of :data:`MAP_BYTES` or more go to ``<name>.npy`` files of their own, which
        :meth:`load` maps read-only, so that API worker processes share one copy in the page cache."""
        if not self.is_fitted:
            raise ModelError(f"model '{self.name}' is not fitted: nothing to save")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "model": self.name,
            "config": dataclasses.asdict(self.config),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "shoprec_version": __version__,
        }
        (path / "model.json").write_text(json.dumps(meta, indent=2))
        arrays = {f"state.{k}": v for k, v in self.state().items()}
        arrays.update(_csr_arrays("seen", self.seen))
        arrays["fallback_scores"] = self.fallback_scores
        large = {k for k, v in arrays.items() if v.nbytes >= MAP_BYTES}
        np.savez(path / "arrays.npz", **{k: v for k, v in arrays.items() if k not in large})
        for name in large:
            np.save(path / f"{name}.npy", np.ascontiguousarray(arrays[name]), allow_pickle=False)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; works on the base class (dispatches by name)."""
        from shoprec.models.registry import get_model_class

        path = Path(path)
        if not (path / "model.json").exists():
            raise ModelError(f"{path}: no model.json here: not a saved shoprec model")
        meta = json.loads((path / "model.json").read_text())
        model_cls = get_model_class(meta["model"])
        model = model_cls(**meta["config"])
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        for file in path.glob("*.npy"):
            arrays[file.stem] = np.load(file, mmap_mode="r", allow_pickle=False)
        model.n_users, model.n_items = meta["n_users"], meta["n_items"]
        model.seen = _csr_from_arrays("seen", arrays, (model.n_users, model.n_items))
        model.fallback_scores = arrays["fallback_scores"]
        model.load_state({k[len("state.") :]: v for k, v in arrays.items() if k.startswith("state.")})
        return model


MAP_BYTES = 16 * 2**20
"""Model arrays at least this large are saved as separate ``.npy`` files and memory-mapped on load."""


def _mask(rows: np.ndarray, matrix: sp.csr_matrix, row_ids: np.ndarray) -> None:
    """Set ``rows[i, j] = -inf`` for every stored entry j of ``matrix[row_ids[i]]`` (skip -1)."""
    keep = np.flatnonzero(row_ids >= 0)
    if len(keep) == 0:
        return
    sub = matrix[row_ids[keep]].tocoo()
    rows[keep[sub.row], sub.col] = -np.inf


def _csr_arrays(prefix: str, m: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {f"{prefix}.data": m.data, f"{prefix}.indices": m.indices, f"{prefix}.indptr": m.indptr}


def _csr_from_arrays(prefix: str, arrays: dict[str, np.ndarray], shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]), shape=shape
    )
