"""Item relation graph: weighted item-item edges of separate types, kept apart.

Three edge types, each a symmetric float32 CSR (n_items x n_items) with a zero diagonal:

- ``co_basket``: items bought in the same basket (:meth:`Dataset.baskets`: purchases grouped by
  order or session id). Baskets larger than ``max_basket`` are skipped and counted (a wholesale
  order of 300 lines says little about which two items go together, and costs size^2 pairs).
- ``consecutive``: items that follow each other in a user's time-ordered events (all event
  types, back-to-back repeats of one item collapsed, so view -> cart -> purchase of one product is
  one step). Symmetrised: a -> b and b -> a count alike, because the graph feeds undirected
  propagation (LightGCN) and "seen next to each other" is the relation wanted for neighbours.
- ``text``: each item's ``text_neighbors`` nearest items by cosine of the text vectors (exact
  faiss search for small catalogues, HNSW above :class:`~shoprec.text.index.VectorIndex`'s
  threshold), weight = similarity; symmetrised with the maximum. A row's top-k by weight is then
  still the item's own top-k.

Weights of the two count types: with ``weighting="cosine"`` (the default) a pair's count ``c_ij``
becomes ``c_ij / sqrt(n_i n_j)`` where ``n_i`` counts the baskets (or sequence steps) holding item
``i``: the cosine of the items' occurrence vectors, as item-kNN uses. Raw counts (``"count"``) rank
best-sellers first for every item, since a best-seller co-occurs with everything; cosine corrects
for that and lies in [0, 1] like the text similarities, so weights in :meth:`ItemGraph.combined`
mean the same for every type. ``min_count`` drops pairs seen fewer times (cosine gives a pair of
two items bought once, together, the top weight 1.0).

Categories tell complements from substitutes: :meth:`ItemGraph.complements` are co-basket
neighbours in another category leaf (bought together, different kind of product), and
:meth:`ItemGraph.substitutes` text neighbours in the same leaf (similar products). Items without a
category are never either.

>>> graph = ItemGraph.build(train, item_vectors, text_neighbors=10)   # doctest: +SKIP
>>> graph.complements(42, k=5)                                        # doctest: +SKIP
(array([17, 260, 3]), array([0.61, 0.44, 0.2], dtype=float32))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.timeunits import DAY

EDGE_TYPES = ("co_basket", "consecutive", "text")
"""Edge types an :class:`ItemGraph` can hold, each kept as its own matrix."""
WEIGHTINGS = ("cosine", "count")
"""Weights of the co_basket and consecutive edges: count / sqrt(n_i n_j), or the raw count."""
FORMAT_VERSION = 1


@dataclass
class ItemGraph:
    """Item-item edges by type, plus each item's category leaf (-1 where unknown)."""

    n_items: int
    graphs: dict[str, sp.csr_matrix]
    """Edge type -> (n_items, n_items) symmetric float32 CSR with a zero diagonal."""
    leaf: np.ndarray
    """(n_items,) int32 index into :attr:`leaves`; -1 for items without a category."""
    leaves: list[str] = field(default_factory=list)
    """Category paths (``"A > B > C"``); two items with the same path share a leaf."""
    info: dict = field(default_factory=dict)
    """What building kept and skipped: baskets used and too large, transitions, pairs per type."""

    def __repr__(self) -> str:
        edges = ", ".join(f"{t}: {m.nnz:,}" for t, m in self.graphs.items())
        return f"ItemGraph({self.n_items:,} items; stored edges {edges})"

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        dataset: Dataset,
        text_vectors: np.ndarray | None = None,
        *,
        co_basket: bool = True,
        consecutive: bool = True,
        text_neighbors: int = 10,
        weighting: str = "cosine",
        min_count: int = 1,
        max_basket: int = 50,
        max_gap_days: float | None = None,
    ) -> ItemGraph:
        """Build the edge types asked for from ``dataset`` (and ``text_vectors`` for ``text``).

        Args:
            dataset: events and catalogue; item indices are the dataset's.
            text_vectors: (n_items, dim) item vectors; the text edges are built only when given
                and ``text_neighbors`` > 0.
            co_basket, consecutive: build these edge types.
            text_neighbors: nearest text neighbours per item (0: no text edges).
            weighting: ``cosine`` or ``count`` for co_basket and consecutive (see module doc).
            min_count: drop co_basket and consecutive pairs seen fewer times than this.
            max_basket: skip baskets with more distinct items than this (counted in ``info``).
            max_gap_days: consecutive events further apart than this are not linked (None: any gap).
        """
        _check_build(dataset, text_vectors, co_basket, consecutive, text_neighbors, weighting, min_count, max_basket)
        if max_gap_days is not None and not max_gap_days > 0:
            raise ModelError(f"item graph: max_gap_days must be > 0 or None (any gap), got {max_gap_days!r}")
        info: dict = {"weighting": weighting, "min_count": min_count}
        graphs: dict[str, sp.csr_matrix] = {}
        if co_basket:
            counts, occurrences = _basket_counts(dataset, max_basket, info)
            graphs["co_basket"] = _weigh(counts, occurrences, weighting, min_count)
        if consecutive:
            counts, occurrences = _transition_counts(dataset, max_gap_days, info)
            graphs["consecutive"] = _weigh(counts, occurrences, weighting, min_count)
        if text_vectors is not None and text_neighbors > 0:
            graphs["text"] = _text_knn(np.asarray(text_vectors, dtype=np.float32), text_neighbors, info)
        for name, matrix in graphs.items():
            info[f"{name}_pairs"] = int(matrix.nnz // 2)
        leaf, leaves = _category_leaves(dataset)
        info["items_without_category"] = int((leaf < 0).sum())
        return cls(dataset.n_items, graphs, leaf, leaves, info)

    # ------------------------------------------------------------------ reading
    @property
    def types(self) -> list[str]:
        """Edge types this graph holds."""
        return list(self.graphs)

    def edges(self, edge_type: str) -> sp.csr_matrix:
        """The (n_items, n_items) CSR of one edge type."""
        if edge_type not in self.graphs:
            built = ", ".join(self.graphs) or "none"
            if edge_type not in EDGE_TYPES:
                raise ModelError(f"item graph: unknown edge type {edge_type!r}; types are {', '.join(EDGE_TYPES)}")
            raise ModelError(
                f"item graph: no {edge_type!r} edges were built (built: {built}); pass "
                f"{'text_vectors' if edge_type == 'text' else edge_type + '=True'} to ItemGraph.build"
            )
        return self.graphs[edge_type]

    def combined(self, weights: dict[str, float] | None = None) -> sp.csr_matrix:
        """Weighted sum of edge types, e.g. ``{"co_basket": 1.0, "consecutive": 0.5}``.

        ``None`` sums every built type with weight 1. Naming a type that was not built is an error
        unless its weight is 0.
        """
        weights = {t: 1.0 for t in self.graphs} if weights is None else weights
        out = sp.csr_matrix((self.n_items, self.n_items), dtype=np.float32)
        for edge_type, weight in weights.items():
            if edge_type not in EDGE_TYPES:
                raise ModelError(f"item graph: unknown edge type {edge_type!r}; types are {', '.join(EDGE_TYPES)}")
            if not np.isfinite(weight) or weight < 0:
                raise ModelError(f"item graph: weight of {edge_type!r} must be a finite number >= 0, got {weight!r}")
            if weight > 0:
                out = out + self.edges(edge_type) * np.float32(weight)
        return out.tocsr().astype(np.float32)

    def neighbors(self, item: int, edge_type: str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` strongest neighbours of ``item`` by one edge type: (ids int64, weights float32)."""
        self._check_item(item)
        row = self.edges(edge_type)[int(item)]
        order = np.lexsort((row.indices, -row.data))[:k]  # by weight, ties by index
        return row.indices[order].astype(np.int64), row.data[order].astype(np.float32)

    def same_category(self, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
        """True where items ``a`` and ``b`` share a known category leaf (broadcasts)."""
        la, lb = self.leaf[np.asarray(a)], self.leaf[np.asarray(b)]
        return (la == lb) & (la >= 0)

    def complements(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Co-basket neighbours in a different, known category leaf: bought with ``item``, not like it."""
        ids, weights = self.neighbors(item, "co_basket", k=self.n_items)
        keep = ~self.same_category(item, ids) & (self.leaf[ids] >= 0) & (self.leaf[int(item)] >= 0)
        return ids[keep][:k], weights[keep][:k]

    def substitutes(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Text neighbours in the same category leaf: products that could replace ``item``."""
        ids, weights = self.neighbors(item, "text", k=self.n_items)
        keep = self.same_category(item, ids)
        return ids[keep][:k], weights[keep][:k]

    def _check_item(self, item: int) -> None:
        if not isinstance(item, int | np.integer) or not 0 <= item < self.n_items:
            raise ModelError(f"item graph: item must be an index in 0..{self.n_items - 1}, got {item!r}")

    # ------------------------------------------------------------------ persistence
    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Everything as numpy arrays (no pickle), for ``.npz`` files or a model's state."""
        meta = {"format_version": FORMAT_VERSION, "n_items": self.n_items, "types": self.types, "info": self.info}
        arrays = {
            f"{prefix}meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            f"{prefix}leaf": self.leaf.astype(np.int32),
            f"{prefix}leaves": np.array(self.leaves, dtype=str),
        }
        for name, m in self.graphs.items():
            arrays.update({f"{prefix}{name}.data": m.data, f"{prefix}{name}.indices": m.indices})
            arrays[f"{prefix}{name}.indptr"] = m.indptr
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "") -> ItemGraph:
        """Rebuild a graph from :meth:`to_arrays`."""
        if f"{prefix}meta" not in arrays:
            raise ModelError("item graph: the arrays hold no item graph (no 'meta' entry)")
        meta = json.loads(np.asarray(arrays[f"{prefix}meta"]).tobytes().decode())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"item graph: unsupported format version {meta.get('format_version')!r}")
        n = int(meta["n_items"])
        graphs = {
            t: sp.csr_matrix(
                (arrays[f"{prefix}{t}.data"], arrays[f"{prefix}{t}.indices"], arrays[f"{prefix}{t}.indptr"]),
                shape=(n, n),
            )
            for t in meta["types"]
        }
        leaves = [str(s) for s in arrays[f"{prefix}leaves"]]
        return cls(n, graphs, np.asarray(arrays[f"{prefix}leaf"], dtype=np.int32), leaves, meta["info"])

    def save(self, folder: str | Path) -> Path:
        """Write ``item_graph.npz`` (arrays) and ``item_graph.json`` (types, counts) into ``folder``."""
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "item_graph.npz", **self.to_arrays())
        summary = {"n_items": self.n_items, "types": self.types, "leaves": len(self.leaves), "info": self.info}
        (path / "item_graph.json").write_text(json.dumps(summary, indent=2))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ItemGraph:
        """Read a folder written by :meth:`save`."""
        file = Path(folder) / "item_graph.npz"
        if not file.exists():
            raise ModelError(f"{folder}: no item_graph.npz here: not a saved item graph")
        with np.load(file, allow_pickle=False) as npz:
            return cls.from_arrays({k: npz[k] for k in npz.files})


# ---------------------------------------------------------------------------- building blocks
def _check_build(
    dataset: Dataset,
    text_vectors: np.ndarray | None,
    co_basket: bool,
    consecutive: bool,
    text_neighbors: int,
    weighting: str,
    min_count: int,
    max_basket: int,
) -> None:
    if not co_basket and not consecutive and (text_vectors is None or text_neighbors == 0):
        raise ModelError("item graph: no edge type selected: enable co_basket or consecutive, or give text_vectors")
    if (co_basket or consecutive) and len(dataset) == 0:
        raise ModelError(
            f"item graph: dataset '{dataset.name}' has no interactions, so there are no co_basket or "
            "consecutive edges to find: build it from a dataset with events"
        )
    if weighting not in WEIGHTINGS:
        raise ModelError(f"item graph: weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
    for name, value, least in (("text_neighbors", text_neighbors, 0), ("min_count", min_count, 1)):
        if not isinstance(value, int | np.integer) or value < least:
            raise ModelError(f"item graph: {name} must be a whole number >= {least}, got {value!r}")
    if not isinstance(max_basket, int | np.integer) or max_basket < 2:
        raise ModelError(f"item graph: max_basket must be a whole number >= 2, got {max_basket!r}")
    if text_vectors is not None:
        shape = np.shape(text_vectors)
        if len(shape) != 2 or shape[0] != dataset.n_items:
            raise ModelError(
                f"item graph: text_vectors must have shape ({dataset.n_items}, dim), one row per item, got {shape}"
            )


def _basket_counts(dataset: Dataset, max_basket: int, info: dict) -> tuple[sp.csr_matrix, np.ndarray]:
    """Co-occurrence counts over baskets of at most ``max_basket`` distinct items, and per-item basket counts."""
    baskets = dataset.baskets()
    rows = np.repeat(np.arange(len(baskets)), baskets.sizes())
    member = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, baskets.items)), shape=(len(baskets), dataset.n_items)
    )
    member.sum_duplicates()
    member.data[:] = 1.0  # an item twice in one order counts once
    sizes = member.getnnz(axis=1)
    keep = sizes <= max_basket
    info.update(baskets=len(baskets), baskets_too_large=int((~keep).sum()), baskets_single_item=int((sizes == 1).sum()))
    member = member[np.flatnonzero(keep)]
    counts = (member.T @ member).tocsr()  # (n_items, n_items)
    return counts, np.asarray(member.sum(axis=0)).ravel()


def _transition_counts(dataset: Dataset, max_gap_days: float | None, info: dict) -> tuple[sp.csr_matrix, np.ndarray]:
    """Symmetric counts of consecutive distinct items per user, and per-item step counts."""
    frame = dataset.interactions
    users, items = frame["user"].to_numpy(), frame["item"].to_numpy()
    times = frame["timestamp"].to_numpy()
    step = np.r_[True, (items[1:] != items[:-1]) | (users[1:] != users[:-1])]  # collapse back-to-back repeats
    users, items, times = users[step], items[step], times[step]
    linked = users[1:] == users[:-1]
    if max_gap_days is not None:
        near = (times[1:] - times[:-1]) <= max_gap_days * DAY
        info["transitions_beyond_gap"] = int((linked & ~near).sum())
        linked &= near
    a, b = items[:-1][linked], items[1:][linked]
    info["transitions"] = len(a)
    ones = np.ones(2 * len(a), dtype=np.float32)
    counts = sp.csr_matrix((ones, (np.r_[a, b], np.r_[b, a])), shape=(dataset.n_items, dataset.n_items))
    counts.sum_duplicates()
    return counts, np.bincount(items, minlength=dataset.n_items).astype(np.float32)


def _weigh(counts: sp.csr_matrix, occurrences: np.ndarray, weighting: str, min_count: int) -> sp.csr_matrix:
    """Zero diagonal, pairs below ``min_count`` dropped, counts optionally turned into cosines."""
    counts = counts.tocoo()
    keep = (counts.row != counts.col) & (counts.data >= min_count)
    row, col, data = counts.row[keep], counts.col[keep], counts.data[keep].astype(np.float32)
    if weighting == "cosine":
        data = data / np.sqrt(occurrences[row] * occurrences[col]).astype(np.float32)
    return sp.csr_matrix((data, (row, col)), shape=counts.shape, dtype=np.float32)


def _text_knn(vectors: np.ndarray, k: int, info: dict) -> sp.csr_matrix:
    """Top-``k`` cosine neighbours of every item (self excluded), symmetrised by the maximum."""
    from shoprec.text.index import VectorIndex

    n = len(vectors)
    has_vector = np.linalg.norm(vectors, axis=1) > 0
    info["items_without_text_vector"] = int((~has_vector).sum())
    index = VectorIndex(vectors.shape[1]).add(vectors, np.arange(n))
    ids, scores = index.search(vectors, k=min(k, max(n - 1, 1)), exclude=np.arange(n)[:, None])
    keep = (ids >= 0) & (scores > 0) & has_vector[:, None]
    keep &= has_vector[np.where(ids >= 0, ids, 0)]
    rows = np.broadcast_to(np.arange(n)[:, None], ids.shape)
    knn = sp.csr_matrix((scores[keep], (rows[keep], ids[keep])), shape=(n, n), dtype=np.float32)
    return knn.maximum(knn.T).tocsr()


def _category_leaves(dataset: Dataset) -> tuple[np.ndarray, list[str]]:
    """Each item's category path as a leaf index (-1 where empty or missing)."""
    if "category" not in dataset.items.columns:
        return np.full(dataset.n_items, -1, dtype=np.int32), []
    paths = dataset.items["category"].astype("string").fillna("").str.strip()
    codes, leaves = pd.factorize(paths.where(paths != "", None))
    return codes.astype(np.int32), [str(s) for s in leaves]
