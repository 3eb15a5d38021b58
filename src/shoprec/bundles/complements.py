"""Complement and substitute scores between items: "bought together" versus "bought instead".

:class:`ComplementModel` learns from a dataset's baskets and event sequences, its item graph
(:class:`~shoprec.models.itemgraph.ItemGraph`: co-basket, consecutive and text edges), category
paths and text vectors. For items ``a`` and ``b``:

- ``complement(a, b)`` = a weighted sum of the co-basket cosine, the consecutive-event cosine, the
  co-purchase *transferred through text neighbours* (``a``'s nearest items by text and what they
  are bought with: this is how a new item without a single sale still gets complements), the
  category-pair complementarity (how often the two leaves share a basket, cosine over baskets, zero
  within one leaf) and text similarity across categories (a Nikon battery for a Nikon camera: a
  shared intent).
- ``substitute(a, b)`` = text similarity above ``substitute_threshold`` within one category leaf,
  rescaled to [0, 1] and cancelled by direct co-purchase (items bought together are not bought
  *instead* of each other). Items without a category count as substitutes only when their texts
  are nearly the same (``unknown_category_threshold``).

Weights are settings (:class:`ComplementConfig`); the benchmark tunes them on a validation slice.

>>> model = ComplementModel().fit(train, item_vectors)        # doctest: +SKIP
>>> model.complement_rows(np.array([42]))[0].argsort()[::-1][:5]   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.models.itemgraph import ItemGraph
from shoprec.models.textside import normalise


@dataclass
class ComplementConfig:
    """Weights and settings of the complement and substitute scores."""

    co_basket: float = 1.0
    """Weight of direct co-purchase (cosine of the items' basket vectors)."""
    consecutive: float = 0.3
    """Weight of items seen one after the other in a shopper's events (cosine)."""
    transfer: float = 0.5
    """Weight of co-purchase inherited from text neighbours (gives new items complements)."""
    category: float = 0.3
    """Weight of category-pair complementarity (leaves that share baskets; within one leaf: how often a
    basket holds two of its items)."""
    coarse: float = 0.3
    """The same at the coarser ``coarse_depth`` level (generalises where leaves are too rare)."""
    cross_text: float = 0.2
    """Weight of text similarity between items of different leaves (a shared intent); within one leaf
    it counts as much as the leaf's items are bought together (its self rate)."""
    within_text: float = 0.0
    """Extra weight of text similarity within one leaf. 0 by default: similar items of one kind are
    substitutes; some shops bundle them (a set of cables), which the validation data can show."""
    self_prior: float = 2.0
    """Pseudo-baskets pulling each leaf's self rate towards the catalogue-wide rate (rare leaves)."""
    substitute_threshold: float = 0.3
    """Text similarity above which two items of one leaf start to count as substitutes."""
    unknown_category_threshold: float = 0.8
    """The same for items without a category (only near-identical texts)."""
    co_cancel: float = 0.2
    """Co-basket cosine at which substitution is fully cancelled (bought together, not instead)."""
    text_neighbors: int = 10
    """Text neighbours per item for the transferred co-purchase."""
    max_basket: int = 50
    """Baskets with more distinct items are skipped (counted in ``info``)."""
    category_depth: int | None = None
    """Cut category paths to this many levels (None: the full path is the leaf)."""
    coarse_depth: int = 2
    """Levels of the category path kept for the coarse category statistics."""


class ComplementModel:
    """Fitted complement and substitute scores over a dataset's item indices."""

    def __init__(self, config: ComplementConfig | None = None) -> None:
        self.config = config or ComplementConfig()
        self.fitted = False

    # ------------------------------------------------------------------ fitting
    def fit(self, dataset: Dataset, item_vectors: np.ndarray | None = None) -> ComplementModel:
        """Learn the co-purchase, sequence, category and text statistics of ``dataset``."""
        cfg = self.config
        n = dataset.n_items
        if n == 0:
            raise ModelError(f"complement model: dataset '{dataset.name}' has no items")
        if item_vectors is not None:
            item_vectors = np.asarray(item_vectors, dtype=np.float32)
            if item_vectors.shape[0] != n or item_vectors.ndim != 2:
                raise ModelError(
                    f"complement model: item_vectors must have shape ({n}, dim), one row per item, "
                    f"got {item_vectors.shape}"
                )
            item_vectors = normalise(item_vectors)
        text_k = cfg.text_neighbors if item_vectors is not None else 0
        self.graph = ItemGraph.build(
            dataset, item_vectors, text_neighbors=text_k, weighting="cosine", max_basket=cfg.max_basket
        )
        self.n_items = n
        self.vectors = item_vectors
        self.co = self.graph.edges("co_basket")
        self.seq = self.graph.edges("consecutive")
        self.occurrences, member = _basket_members(dataset, cfg.max_basket)
        self.popularity = np.log1p(self.occurrences) / max(np.log1p(self.occurrences.max()), 1.0)
        self.leaf, self.leaves = _leaves(dataset, cfg.category_depth)
        stats = _leaf_stats(member, self.leaf, len(self.leaves), cfg.self_prior)
        self.leaf_sim, self.leaf_share, self.leaf_self = stats
        self.coarse, coarse_names = _leaves(dataset, cfg.coarse_depth)
        self.coarse_sim, _, self.coarse_self = _leaf_stats(member, self.coarse, len(coarse_names), cfg.self_prior)
        self.smooth = self.smooth_t = None
        if item_vectors is not None:
            knn = self.graph.edges("text")
            sums = np.asarray(knn.sum(axis=1)).ravel()
            self.smooth = (sp.diags(1.0 / np.maximum(sums, 1e-12)) @ knn).tocsr().astype(np.float32)
            self.smooth_t = self.smooth.T.tocsr()
        self.fitted = True
        return self

    # ------------------------------------------------------------------ scoring
    def _check(self, items: np.ndarray) -> np.ndarray:
        if not self.fitted:
            raise ModelError("complement model: call fit(dataset) before scoring")
        items = np.asarray(items, dtype=np.int64).ravel()
        if len(items) and (items.min() < 0 or items.max() >= self.n_items):
            raise ModelError(f"complement model: item indices must lie in 0..{self.n_items - 1}, got {items.tolist()}")
        return items

    def _parts(self, rows: np.ndarray, cols: np.ndarray | None) -> dict[str, np.ndarray]:
        """Every evidence type for pairs rows x cols, each (len(rows), len(cols)) float32."""
        rows = self._check(rows)
        every = cols is None
        cols = np.arange(self.n_items) if every else self._check(cols)
        co = _dense(self.co[rows] if every else self.co[rows][:, cols])
        parts = {"co_basket": co, "consecutive": _dense(self.seq[rows] if every else self.seq[rows][:, cols])}
        if self.smooth is not None:
            if every:
                transfer = self.smooth[rows] @ self.co + self.co[rows] @ self.smooth_t
            else:  # co is symmetric, so co[:, cols] = co[cols].T: only row slices, no column slicing of big matrices
                transfer = self.smooth[rows] @ self.co[cols].T + self.co[rows] @ self.smooth[cols].T
            parts["transfer"] = 0.5 * _dense(transfer)
            parts["text"] = np.clip(self.vectors[rows] @ self.vectors[cols].T, 0.0, 1.0)
        parts["category"] = _category_part(self.leaf_sim, self.leaf_self, self.leaf[rows], self.leaf[cols])
        parts["coarse"] = _category_part(self.coarse_sim, self.coarse_self, self.coarse[rows], self.coarse[cols])
        same = (self.leaf[rows][:, None] == self.leaf[cols][None, :]) & (self.leaf[rows][:, None] >= 0)
        parts["same_leaf"] = same.astype(np.float32)
        parts["leaf_self"] = same * np.r_[self.leaf_self, 0.0][self.leaf[rows]][:, None].astype(np.float32)
        parts["unknown"] = ((self.leaf[rows][:, None] < 0) & (self.leaf[cols][None, :] < 0)).astype(np.float32)
        parts["self"] = (rows[:, None] == cols[None, :]).astype(np.float32)
        return parts

    def scores(self, rows: np.ndarray, cols: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(complement, substitute)`` for pairs rows x cols (cols None: every item), each (r, c)."""
        parts = self._parts(rows, cols)
        return self._complement(parts), self._substitute(parts)

    def complement_rows(self, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        return self.scores(rows, cols)[0]

    def substitute_rows(self, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        return self.scores(rows, cols)[1]

    def _complement(self, p: dict[str, np.ndarray]) -> np.ndarray:
        cfg = self.config
        out = cfg.co_basket * p["co_basket"] + cfg.consecutive * p["consecutive"] + cfg.category * p["category"]
        out = out + cfg.coarse * p["coarse"]
        if "text" in p:
            within = 1.0 - p["same_leaf"] * (1.0 - p["leaf_self"])  # 1 across leaves, the self rate within one
            out = out + cfg.transfer * p["transfer"] + cfg.cross_text * p["text"] * within
            out = out + cfg.within_text * p["text"] * p["same_leaf"]
        return (out * (1.0 - p["self"])).astype(np.float32)

    def _substitute(self, p: dict[str, np.ndarray]) -> np.ndarray:
        if "text" not in p:
            return np.zeros_like(p["co_basket"])
        cfg = self.config
        known = _rescale(p["text"], cfg.substitute_threshold) * p["same_leaf"]
        unknown = _rescale(p["text"], cfg.unknown_category_threshold) * p["unknown"]
        bought_together = np.clip(p["co_basket"] / max(cfg.co_cancel, 1e-9), 0.0, 1.0)
        together = 1.0 - (1.0 - bought_together) * (1.0 - p["leaf_self"])  # this pair, or its leaf, is bought together
        return ((known + unknown) * (1.0 - together) * (1.0 - p["self"])).astype(np.float32)

    # ------------------------------------------------------------------ evidence for explanations
    def co_count(self, a: int, b: int) -> int:
        """Baskets holding both items (recovered from the cosine and the items' basket counts)."""
        cos = float(self.co[int(a), int(b)])
        return int(round(cos * np.sqrt(self.occurrences[int(a)] * self.occurrences[int(b)])))

    def evidence(self, a: int, b: int) -> dict[str, float | int | str]:
        """What links items ``a`` and ``b``: counts, category share and similarities."""
        parts = {k: float(v[0, 0]) for k, v in self._parts(np.array([a]), np.array([b])).items()}
        la, lb = int(self.leaf[a]), int(self.leaf[b])
        share = float(self.leaf_share[la, lb]) if la >= 0 and lb >= 0 else 0.0
        return {
            **parts,
            "co_count": self.co_count(a, b),
            "leaf_a": self.leaves[la] if la >= 0 else "",
            "leaf_b": self.leaves[lb] if lb >= 0 else "",
            "leaf_share": share,
        }


def _dense(matrix: sp.spmatrix) -> np.ndarray:
    return np.asarray(matrix.toarray(), dtype=np.float32)


def _rescale(values: np.ndarray, threshold: float) -> np.ndarray:
    return np.clip((values - threshold) / max(1.0 - threshold, 1e-9), 0.0, 1.0)


def _basket_members(dataset: Dataset, max_basket: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """Per-item basket counts and the (baskets, items) membership of baskets up to ``max_basket`` items."""
    baskets = dataset.baskets()
    rows = np.repeat(np.arange(len(baskets)), baskets.sizes())
    member = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, baskets.items)), shape=(len(baskets), dataset.n_items)
    )
    member.sum_duplicates()
    member.data[:] = 1.0
    member = member[np.flatnonzero(member.getnnz(axis=1) <= max_basket)]
    return np.asarray(member.sum(axis=0)).ravel().astype(np.float64), member.tocsr()


def _leaves(dataset: Dataset, depth: int | None) -> tuple[np.ndarray, list[str]]:
    """Each item's category path (cut to ``depth`` levels) as a code, -1 where unknown."""
    if "category" not in dataset.items.columns:
        return np.full(dataset.n_items, -1, dtype=np.int64), []
    paths = dataset.items["category"].astype("string").fillna("").str.strip()
    if depth is not None:
        paths = paths.str.split(" > ").str[:depth].str.join(" > ")
    codes, leaves = pd.factorize(paths.where(paths != "", None))
    return codes.astype(np.int64), [str(s) for s in leaves]


def _leaf_stats(
    member: sp.csr_matrix, leaf: np.ndarray, n_leaves: int, prior: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair of leaves: cosine over baskets (zero diagonal) and share P(b in basket | a in basket);
    per leaf: its self rate, the share of its baskets that hold two or more of its items (``prior``
    pseudo-baskets at the overall rate added)."""
    if n_leaves == 0:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), np.zeros(0, np.float32)
    known = leaf >= 0
    to_leaf = sp.csr_matrix(
        (np.ones(int(known.sum()), np.float32), (np.flatnonzero(known), leaf[known])), shape=(len(leaf), n_leaves)
    )
    by_leaf = (member @ to_leaf).tocsr()  # (baskets, leaves): distinct items of the leaf in the basket
    multi = np.bincount(by_leaf.indices[by_leaf.data >= 2], minlength=n_leaves).astype(np.float64)
    by_leaf.data[:] = 1.0
    counts = np.asarray((by_leaf.T @ by_leaf).toarray(), dtype=np.float64)
    occ = np.diag(counts).copy()
    denom = np.sqrt(np.outer(occ, occ))
    sim = np.divide(counts, denom, out=np.zeros_like(counts), where=denom > 0)
    np.fill_diagonal(sim, 0.0)
    share = np.divide(counts, occ[:, None], out=np.zeros_like(counts), where=occ[:, None] > 0)
    overall = multi.sum() / max(occ.sum(), 1.0)
    self_rate = (multi + prior * overall) / np.maximum(occ + prior, 1e-12)
    return sim.astype(np.float32), share.astype(np.float32), self_rate.astype(np.float32)


def _category_part(sim: np.ndarray, self_rate: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Category evidence for pairs a x b: the pair's cosine across categories, the self rate within one
    (code -1, unknown, reads zeros)."""
    table = np.pad(sim + np.diag(self_rate), ((0, 1), (0, 1)))
    return table[a][:, b]
