"""Cross-category recommendation: items from categories the shopper has not bought, with the reason.

Given a history (the items a shopper bought, oldest first) or an anchor item (a history of one),
:class:`CrossCategory` recommends items whose category the history does not hold, and for each
recommended item returns attention weights over the history (summing to 1) that say which past
items drove it. Items of unknown category ("") are never recommended: nothing shows they are of
another kind. A history holding every category gets padded rows (item -1, score NaN).

Two modes, chosen by ``mode`` (``auto`` picks ``attention`` when the training data has at least
``min_examples`` cross-category examples, else ``graph``):

- ``attention``: a small learned model (:mod:`shoprec.pipeline.crosscat_train`). Each candidate
  attends over the history with its own query, so one history can explain different suggestions
  by different items (a memory card by the camera, a novel by the reading lamp); a pooled user
  vector as in SASRec could not say which item drove which suggestion. Score = attention-weighted
  sum of history-candidate dot products + an item bias; attention logits carry a learned recency
  bias per history position. Item vectors fuse an id embedding with a projection of the text
  vector, so items seldom bought borrow from their text. Trained with a sampled softmax on
  "history -> next purchase in a category new to the shopper", which is the task itself.
- ``graph``: parameter-free. ``w(h, i)`` = co-basket cosine from
  :class:`~shoprec.models.itemgraph.ItemGraph`; attention = ``softmax_h(w(h, i) / temperature)``
  and score = ``sum_h alpha_{h,i} w(h, i)`` (a soft maximum over the history, so one strong
  complement is not outvoted by many weak ones), ties broken by purchase counts. It is the
  baseline and the fallback when too few cross-category examples exist to learn from.

Only the newest ``max_history`` items of a history are attended to (older rows of the attention
get weight 0), but every item's category is excluded. Inference is numpy only; save/load writes
JSON plus ``.npz`` (no pickle).

>>> model = CrossCategory(mode="auto").fit(train, item_vectors, categories)   # doctest: +SKIP
>>> items, scores, attention = model.recommend([np.array([12, 40])], k=5)       # doctest: +SKIP
>>> attention[0].shape, attention[0].sum(axis=0)                                # doctest: +SKIP
((2, 5), array([1., 1., 1., 1., 1.], dtype=float32))
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.data.schema import EVENT_TYPES
from shoprec.errors import ModelError
from shoprec.models.base import PAD_ITEM, config_from_dict, top_k

MODES = ("auto", "attention", "graph")
FORMAT_VERSION = 1
ATTENTION_ARRAYS = ("items", "query", "key", "recency", "bias")


@dataclass
class CrossCategoryConfig:
    mode: str = "auto"
    """``attention`` (learned), ``graph`` (co-basket, parameter-free) or ``auto`` (see module doc)."""
    min_examples: int = 100
    """``auto`` learns only with at least this many cross-category training examples."""
    max_history: int = 20
    """History items attended to (the newest); older ones still exclude their categories."""
    history_events: tuple[str, ...] = ("purchase",)
    """Event types whose items make the training histories (and define "a category new to the user")."""
    embedding_size: int = 32
    """Width of the item vectors the attention model learns."""
    epochs: int = 40
    """Most passes over the training examples; early stopping usually ends sooner."""
    patience: int = 3
    """Stop after this many epochs without a better held-out loss."""
    batch_size: int = 256
    """Examples per optimiser step."""
    learning_rate: float = 1e-2
    """AdamW step size (1e-2 beat 3e-3 on the demo shop's validation window)."""
    reg: float = 1e-2
    """AdamW weight decay."""
    n_negatives: int = 256
    """Uniformly drawn items the target competes with per batch (all eligible items when fewer)."""
    valid_share: float = 0.1
    """Share of the examples held out for early stopping (none when that is under 20 examples)."""
    temperature: float = 0.1
    """Graph mode: softness of the attention over co-basket weights (which lie in [0, 1])."""
    seed: int = 0
    """Seeds initialisation, example order and negatives: the same seed gives the same model."""
    threads: int = 1
    """Torch CPU threads while training."""

    def __post_init__(self) -> None:
        self.history_events = tuple(self.history_events)
        if self.mode not in MODES:
            raise ModelError(f"cross-category: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        unknown = sorted(set(self.history_events) - set(EVENT_TYPES))
        if unknown or not self.history_events:
            raise ModelError(f"cross-category: history_events must be a non-empty tuple of {', '.join(EVENT_TYPES)}")
        for name in ("min_examples", "max_history", "embedding_size", "epochs", "patience", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ModelError(f"cross-category: {name} must be a whole number >= 1, got {value!r}")
        for name in ("learning_rate", "temperature"):
            if not getattr(self, name) > 0:
                raise ModelError(f"cross-category: {name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.valid_share < 1 or not self.reg >= 0 or self.n_negatives < 1:
            raise ModelError("cross-category: valid_share must lie in [0, 1), reg >= 0 and n_negatives >= 1")


class CrossCategory:
    """Recommends items of categories new to a history, with attention over the history per item."""

    def __init__(self, config: CrossCategoryConfig | None = None, **settings: Any) -> None:
        if config is not None and settings:
            raise ModelError("cross-category: give either a config object or keyword settings, not both")
        self.config = config if config is not None else config_from_dict(CrossCategoryConfig, settings, "crosscat")
        self.mode = ""  # the mode in use once fitted: "attention" or "graph"
        self.categories = np.empty(0, dtype=object)
        self.codes = np.empty(0, dtype=np.int32)
        self.arrays: dict[str, np.ndarray] = {}
        self.graph: sp.csr_matrix | None = None
        self.info: dict = {}

    def __repr__(self) -> str:
        return f"CrossCategory({self.mode or 'not fitted'}, {self.config})"

    @property
    def n_items(self) -> int:
        return len(self.codes)

    @property
    def is_fitted(self) -> bool:
        return bool(self.mode)

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Dataset, item_vectors: np.ndarray | None, categories: Sequence[str] | np.ndarray) -> Self:
        """Learn from ``train``; ``categories[i]`` is item ``i``'s category label ("" unknown).

        ``item_vectors`` (n_items, dim) text vectors feed the attention model (None: id embeddings
        only); graph mode does not use them.
        """
        from shoprec.pipeline.crosscat_train import cross_category_examples, event_histories

        cfg = self.config
        self.categories, self.codes = category_codes(categories, train.n_items)
        text = _check_vectors(item_vectors, train.n_items)
        examples = cross_category_examples(event_histories(train, cfg.history_events), self.codes, cfg.max_history)
        self.info = {"examples": len(examples), "categories": int(self.codes.max()) + 1}
        mode = cfg.mode
        if mode == "auto":
            mode = "attention" if len(examples) >= cfg.min_examples else "graph"
            if mode == "graph":
                self.info["fallback"] = f"{len(examples)} cross-category examples < min_examples={cfg.min_examples}"
        self.mode, self.graph = "", None  # not fitted until the chosen mode has learned
        if mode == "attention":
            self._fit_attention(examples, text)
        else:
            self._fit_graph(train)
        self.mode = mode
        return self

    def _fit_attention(self, examples, text: np.ndarray | None) -> None:
        from shoprec.models.textside import normalise, torch_threads
        from shoprec.pipeline.crosscat_train import train_attention

        if not len(examples):
            raise ModelError(
                f"cross-category: no training history has a {'/'.join(self.config.history_events)} event in a "
                "category new to its user, so the attention model has nothing to learn from; use mode='graph'"
            )
        self.info["text"] = text is not None
        with torch_threads(self.config.threads):
            vectors = None if text is None else normalise(text)
            self.arrays, self.info["training"] = train_attention(examples, self.codes, vectors, self.config)

    def _fit_graph(self, train: Dataset) -> None:
        from shoprec.models.itemgraph import ItemGraph

        graph = ItemGraph.build(train, co_basket=True, consecutive=False, text_neighbors=0)
        self.graph = graph.edges("co_basket")
        users = _event_mask(train, self.config.history_events).getnnz(axis=0).astype(np.float32)  # per item
        self.arrays = {"popularity": users / max(users.max(), 1.0)}  # tie-break for items without edges
        self.info["graph"] = graph.info

    # ------------------------------------------------------------------ recommending
    def recommend(
        self, histories: Sequence[np.ndarray], k: int = 10, batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """Top-``k`` items per history, each in a category the history does not contain.

        Returns ``(items, scores, attention)``: int64 and float32 arrays (n, k), best first, padded
        with -1 / NaN; ``attention[u]`` is float32 (len(histories[u]), k), column j the weights over
        history ``u``'s items behind item j (summing to 1; NaN in padded columns).
        """
        if not self.is_fitted:
            raise ModelError("cross-category: the model is not fitted: call fit(train, item_vectors, categories)")
        if not isinstance(k, int | np.integer) or k < 1:
            raise ModelError(f"cross-category: k must be a positive whole number, got {k!r}")
        histories = check_histories(histories, self.n_items)
        if not histories:
            return np.empty((0, k), dtype=np.int64), np.empty((0, k), dtype=np.float32), []
        items = np.full((len(histories), k), PAD_ITEM, dtype=np.int64)
        scores = np.full((len(histories), k), np.nan, dtype=np.float32)
        attention: list[np.ndarray] = [np.empty(0)] * len(histories)
        by_length = np.argsort([len(h) for h in histories], kind="stable")  # similar lengths: less padding
        for start in range(0, len(histories), batch_size):
            rows = by_length[start : start + batch_size]
            block = [histories[r] for r in rows]
            aligned = align(block, self.config.max_history)  # (B, H)
            block_scores, alpha = self._score(aligned)  # (B, N), (B, H, N)
            block_scores[~new_category_mask(block, self.codes)] = -np.inf
            top, values = top_k(block_scores, k)
            items[rows], scores[rows] = top, values
            picked = np.take_along_axis(alpha, np.maximum(top, 0)[:, None, :], axis=2)  # (B, H, k)
            picked[np.broadcast_to((top < 0)[:, None, :], picked.shape)] = np.nan
            for b, r in enumerate(rows):
                attention[r] = _unalign(picked[b], len(block[b]))
        return items, scores, attention

    def recommend_anchors(self, anchors: Sequence[int] | np.ndarray, k: int = 10) -> tuple:
        """:meth:`recommend` for single anchor items (each a history of one; its attention is all 1)."""
        return self.recommend([np.array([a], dtype=np.int64) for a in np.asarray(anchors).ravel()], k)

    def _score(self, aligned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores (B, N) and attention (B, H, N) for right-aligned histories (B, H), -1 = padding."""
        pad = aligned < 0
        rows = np.maximum(aligned, 0)
        if self.mode == "graph":
            weights = self.graph[rows.ravel()].toarray().reshape(*rows.shape, self.n_items)  # (B, H, N)
            weights[pad] = 0.0
            alpha = _softmax_over_history(weights / self.config.temperature, pad)
            scores = (alpha * weights).sum(axis=1) + 1e-6 * self.arrays["popularity"]  # (B, N)
            return scores.astype(np.float32), alpha
        a = self.arrays
        b, h = rows.shape
        d = a["items"].shape[1]
        history = a["items"][rows.ravel()]  # (B * H, d): 2-d products run through BLAS, stacked ones do not
        queries = a["items"] @ a["query"]  # (N, d)
        logits = ((history @ a["key"]) @ queries.T).reshape(b, h, -1) / np.float32(np.sqrt(d))  # (B, H, N)
        alpha = _softmax_over_history(logits + a["recency"][-h:][None, :, None], pad)
        compat = (history @ a["items"].T).reshape(b, h, -1)  # (B, H, N)
        return ((alpha * compat).sum(axis=1) + a["bias"]).astype(np.float32), alpha

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write ``crosscat.json`` (mode, config, info) and ``crosscat.npz`` (arrays, no pickle) into ``folder``."""
        if not self.is_fitted:
            raise ModelError("cross-category: the model is not fitted: nothing to save")
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"format_version": FORMAT_VERSION, "mode": self.mode, "config": dataclasses.asdict(self.config)}
        (path / "crosscat.json").write_text(json.dumps({**meta, "info": self.info}, indent=2))
        arrays = {"categories": self.categories.astype(str), **self.arrays}
        if self.graph is not None:
            arrays.update({"graph.data": self.graph.data, "graph.indices": self.graph.indices})
            arrays["graph.indptr"] = self.graph.indptr
        np.savez(path / "crosscat.npz", **arrays)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> CrossCategory:
        """Read a folder written by :meth:`save`."""
        path = Path(folder)
        if not (path / "crosscat.json").is_file() or not (path / "crosscat.npz").is_file():
            raise ModelError(f"{path}: no crosscat.json and crosscat.npz here: not a saved cross-category model")
        meta = json.loads((path / "crosscat.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{path}: unsupported cross-category format version {meta.get('format_version')!r}")
        model = cls(**meta["config"])
        with np.load(path / "crosscat.npz", allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        model.categories, model.codes = category_codes(arrays.pop("categories"), None)
        if meta["mode"] == "graph":
            n = model.n_items
            parts = (arrays.pop("graph.data"), arrays.pop("graph.indices"), arrays.pop("graph.indptr"))
            model.graph = sp.csr_matrix(parts, shape=(n, n))
        model.arrays, model.mode, model.info = arrays, meta["mode"], meta.get("info", {})
        return model


# ---------------------------------------------------------------------------- helpers
def check_histories(histories: Sequence[np.ndarray], n_items: int) -> list[np.ndarray]:
    """Histories as int64 arrays; an empty one or an index outside the catalogue is an error."""
    if isinstance(histories, np.ndarray) and histories.ndim == 1 and histories.dtype != object:
        raise ModelError("cross-category: histories must be a list of arrays (one per shopper), not one flat array")
    out = []
    for u, history in enumerate(histories):
        history = np.asarray(history)
        if history.ndim != 1 or (len(history) and not np.issubdtype(history.dtype, np.integer)):
            raise ModelError(f"cross-category: history {u} must be a 1-d array of item indices, got {history!r}")
        if not len(history):
            raise ModelError(
                f"cross-category: history {u} is empty: cross-category suggestions need at least one item the "
                "shopper bought or looked at; serve shoppers without history from a popularity source"
            )
        bad = history[(history < 0) | (history >= n_items)]
        if len(bad):
            raise ModelError(
                f"cross-category: history {u} holds item index {int(bad[0])}, outside 0..{n_items - 1}: map "
                "external item ids to indices with the training dataset's item vocabulary"
            )
        out.append(history.astype(np.int64))
    return out


def align(histories: list[np.ndarray], width: int) -> np.ndarray:
    """The newest ``width`` items of each history, right-aligned in a (B, H) array padded with -1."""
    h = min(width, max(len(x) for x in histories))
    out = np.full((len(histories), h), -1, dtype=np.int64)
    for row, history in enumerate(histories):
        tail = history[-h:]
        out[row, h - len(tail) :] = tail
    return out


def _unalign(picked: np.ndarray, length: int) -> np.ndarray:
    """(H, k) weights of a right-aligned history back to (length, k); rows not attended to get 0."""
    out = np.zeros((length, picked.shape[1]), dtype=np.float32)
    used = min(length, picked.shape[0])
    out[length - used :] = picked[picked.shape[0] - used :]
    out[:, np.isnan(picked).all(axis=0)] = np.nan
    return out


def new_category_mask(histories: list[np.ndarray], codes: np.ndarray) -> np.ndarray:
    """(B, N) True where the item's category is known and not among the history's categories."""
    n_categories = int(codes.max()) + 1 if len(codes) else 0
    held = np.zeros((len(histories), n_categories + 1), dtype=bool)  # last column: unknown category
    for row, history in enumerate(histories):
        held[row, codes[history]] = True
    held[:, -1] = True
    return ~held[:, codes]


def _softmax_over_history(logits: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """Softmax over axis 1 of (B, H, N) with padded history rows (B, H) at weight 0."""
    logits = np.where(pad[:, :, None], -np.inf, logits)
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def category_codes(categories: Sequence[str] | np.ndarray, n_items: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Labels as an object array ("" for missing) and int32 codes (-1 for "")."""
    labels = pd.Series(list(categories), dtype="string").fillna("").str.strip()
    if n_items is not None and len(labels) != n_items:
        raise ModelError(
            f"cross-category: categories has {len(labels)} labels but the dataset has {n_items} items: give "
            "one label per item index ('' where unknown)"
        )
    codes, uniques = pd.factorize(labels.where(labels != "", None))
    if len(uniques) < 2:
        raise ModelError(
            f"cross-category: found {len(uniques)} known categories; at least 2 are needed. For a catalogue "
            "without categories, derive them from text with derive_categories(item_vectors, n_clusters)"
        )
    return labels.to_numpy(dtype=object), codes.astype(np.int32)


def _check_vectors(vectors: np.ndarray | None, n_items: int) -> np.ndarray | None:
    if vectors is None:
        return None
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != n_items or not np.isfinite(vectors).all():
        raise ModelError(
            f"cross-category: item_vectors must be a finite ({n_items}, dim) array, one row per item index; "
            f"got shape {vectors.shape}"
        )
    return vectors


def _event_mask(train: Dataset, events: tuple[str, ...]) -> sp.csr_matrix:
    """(n_users, n_items) 1 where the user has an event of ``events`` with the item."""
    frame = train.interactions
    rows = frame["event"].isin(list(events)).to_numpy()
    users, items = frame["user"].to_numpy()[rows], frame["item"].to_numpy()[rows]
    mask = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(train.n_users, train.n_items))
    mask.sum_duplicates()
    mask.data[:] = 1.0
    return mask


def derive_categories(item_vectors: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Category labels ``cluster-007`` from k-means over text vectors, for catalogues without categories.

    Cosine k-means (rows unit-normalised); items with an all-zero vector get "" (unknown).

    >>> labels = derive_categories(vectors, n_clusters=60)   # doctest: +SKIP
    """
    from sklearn.cluster import KMeans

    vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.ndim != 2 or not np.isfinite(vectors).all():
        raise ModelError(f"derive_categories: item_vectors must be a finite 2-d array, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    has = norms > 0
    if not isinstance(n_clusters, int | np.integer) or not 2 <= n_clusters <= has.sum():
        raise ModelError(
            f"derive_categories: n_clusters must be a whole number from 2 to the {int(has.sum())} items with a "
            f"text vector, got {n_clusters!r}"
        )
    unit = vectors[has] / norms[has, None]
    assigned = KMeans(n_clusters=int(n_clusters), n_init=3, random_state=seed).fit_predict(unit)
    width = len(str(int(n_clusters) - 1))
    labels = np.full(len(vectors), "", dtype=object)
    labels[has] = [f"cluster-{c:0{width}d}" for c in assigned]
    return labels
