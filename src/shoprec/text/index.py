"""Nearest-neighbour search over item vectors (faiss), by inner product on unit vectors.

Small catalogues (below ``exact_threshold`` vectors) use an exact ``IndexFlatIP``; larger ones
an HNSW graph (``IndexHNSWFlat`` with inner product), which answers in well under a millisecond
per query at the price of a small loss of recall. Vectors are identified by non-negative int64
ids (item indices); the index keeps its own position -> id map, so vectors can be added,
replaced (:meth:`VectorIndex.upsert`) and removed after building.

Removal: an exact index deletes the rows at once. HNSW graphs cannot delete nodes, so removed and
replaced vectors are hidden from searches by a selector and the graph is rebuilt from the live
vectors once more than ``compact_ratio`` of its nodes are dead (or on :meth:`compact`).

>>> index = VectorIndex(dim=384).add(item_vectors, np.arange(len(item_vectors)))   # doctest: +SKIP
>>> ids, scores = index.search(query_vectors, k=10, exclude=[[3], [], [7, 8]])     # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from tqdm.auto import tqdm

from shoprec.errors import ModelError, ShoprecError

FORMAT_VERSION = 1
PAD_ID = -1
"""Id used to fill a result row when fewer than k vectors qualify."""
ADD_CHUNK = 50_000
"""Vectors added to an HNSW graph per step (one progress-bar tick)."""


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ShoprecError(
            "the vector index needs the package 'faiss-cpu'. Install it with: pip install faiss-cpu"
        ) from None
    return faiss


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Float32 copy of ``vectors`` with unit-length rows (zero rows stay zero)."""
    out = np.array(vectors, dtype=np.float32, copy=True, ndmin=2)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class VectorIndex:
    """Inner-product search over L2-normalised vectors with integer ids.

    Args:
        dim: vector dimension.
        exact_threshold: below this many vectors the search is exact (brute force); at or above
            it an HNSW graph is used. Growing past the threshold through :meth:`add` switches.
        hnsw_m: HNSW links per node (more: better recall, more memory).
        ef_construction: HNSW build-time search width.
        ef_search: HNSW query-time search width (raised to k when k is larger).
        compact_ratio: rebuild an HNSW graph once this share of its nodes is removed or replaced.
    """

    def __init__(
        self,
        dim: int,
        exact_threshold: int = 20_000,
        hnsw_m: int = 32,
        ef_construction: int = 80,
        ef_search: int = 64,
        compact_ratio: float = 0.25,
    ) -> None:
        if dim < 1:
            raise ModelError(f"vector index: dim must be >= 1, got {dim}")
        if hnsw_m < 2 or ef_construction < 1 or ef_search < 1:
            raise ModelError("vector index: hnsw_m must be >= 2, ef_construction and ef_search >= 1")
        self.dim = int(dim)
        self.exact_threshold = int(exact_threshold)
        self.hnsw_m = int(hnsw_m)
        self.ef_construction = int(ef_construction)
        self.ef_search = int(ef_search)
        self.compact_ratio = float(compact_ratio)
        self._ids = np.zeros(0, dtype=np.int64)  # position -> id; PAD_ID marks a dead position
        self._where: dict[int, int] = {}  # id -> position of its live vector
        self._index = self._new_index(hnsw=False)

    def __len__(self) -> int:
        return len(self._where)

    def __repr__(self) -> str:
        return f"VectorIndex({len(self):,} vectors, dim={self.dim}, kind={self.kind!r})"

    @property
    def kind(self) -> str:
        """``exact`` or ``hnsw``."""
        return "hnsw" if hasattr(self._index, "hnsw") else "exact"

    def ids(self) -> np.ndarray:
        """Ids of the live vectors, in storage order."""
        return self._ids[self._ids != PAD_ID].copy()

    def __contains__(self, item_id: int) -> bool:
        return int(item_id) in self._where

    # ------------------------------------------------------------------ changing
    def add(self, vectors: np.ndarray, ids: np.ndarray | Sequence[int]) -> Self:
        """Add vectors under new ids (an id already present is an error: use :meth:`upsert`)."""
        vectors, ids = self._check(vectors, ids)
        taken = [int(i) for i in ids if int(i) in self._where]
        if taken:
            raise ModelError(f"vector index: ids already present: {taken[:5]}; use upsert() to replace vectors")
        self._append(vectors, ids)
        return self

    def upsert(self, vectors: np.ndarray, ids: np.ndarray | Sequence[int]) -> Self:
        """Add vectors, replacing the vector of any id already present."""
        vectors, ids = self._check(vectors, ids)
        present = np.array([int(i) in self._where for i in ids], dtype=bool)
        if present.any():
            self.remove(ids[present])
        self._append(vectors, ids)
        return self

    def remove(self, ids: np.ndarray | Sequence[int]) -> Self:
        """Remove the vectors of ``ids`` (unknown ids are ignored)."""
        positions = np.array([self._where.pop(int(i)) for i in np.ravel(ids) if int(i) in self._where], np.int64)
        if len(positions) == 0:
            return self
        if self.kind == "exact":
            faiss = _faiss()
            self._index.remove_ids(faiss.IDSelectorBatch(positions))
            self._ids = np.delete(self._ids, positions)  # faiss shifts later rows down the same way
            self._rebuild_where()
        else:
            self._ids[positions] = PAD_ID
            if (self._ids == PAD_ID).mean() > self.compact_ratio:
                self.compact()
        return self

    def compact(self) -> Self:
        """Rebuild the index from the live vectors (drops HNSW nodes hidden by remove/upsert)."""
        live = np.flatnonzero(self._ids != PAD_ID)
        vectors = self._index.reconstruct_n(0, self._index.ntotal)[live] if len(live) else np.zeros((0, self.dim))
        ids = self._ids[live]
        self._ids = np.zeros(0, dtype=np.int64)
        self._where = {}
        self._index = self._new_index(hnsw=len(ids) >= self.exact_threshold)
        self._append(vectors.astype(np.float32), ids)
        return self

    def vectors(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """Stored (normalised) vectors of ``ids``; an unknown id is an error."""
        missing = [int(i) for i in np.ravel(ids) if int(i) not in self._where]
        if missing:
            raise ModelError(f"vector index: unknown ids {missing[:5]}")
        positions = [self._where[int(i)] for i in np.ravel(ids)]
        return np.stack([self._index.reconstruct(p) for p in positions]) if positions else np.zeros((0, self.dim))

    # ------------------------------------------------------------------ searching
    def search(
        self,
        queries: np.ndarray,
        k: int = 10,
        exclude: np.ndarray | Sequence[Sequence[int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` stored vectors with the highest inner product with each (normalised) query.

        Args:
            queries: (n, dim) array (a single (dim,) vector is a batch of one).
            k: results per query.
            exclude: ids never to return: a 1-D int array (for every query) or a sequence of
                ``n`` id lists (one per query, e.g. the query item itself).
        Returns:
            ``(ids, scores)``: int64 and float32 arrays (n, k), best first, padded with -1 / NaN.
        """
        if not isinstance(k, int | np.integer) or k < 1:
            raise ModelError(f"k must be a positive whole number, got {k!r}")
        queries = normalise(queries)
        if queries.shape[1] != self.dim:
            raise ModelError(f"vector index: queries have dimension {queries.shape[1]}, the index has {self.dim}")
        hidden, most_excluded = _exclusion(exclude, len(queries))
        fetch = min(k + most_excluded, len(self))
        ids = np.full((len(queries), k), PAD_ID, dtype=np.int64)
        scores = np.full((len(queries), k), np.nan, dtype=np.float32)
        if fetch == 0 or len(queries) == 0:
            return ids, scores
        found, found_scores = self._raw_search(queries, fetch)
        if most_excluded:
            found = np.where(hidden(found), PAD_ID, found)
        _compress_rows(found, found_scores, ids, scores)
        return ids, scores

    def _raw_search(self, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """faiss search mapped to ids; dead HNSW nodes are skipped with a selector."""
        faiss = _faiss()
        params = None
        dead = self._ids == PAD_ID
        if self.kind == "hnsw":
            bitmap = np.packbits(~dead, bitorder="little") if dead.any() else None
            selector = faiss.IDSelectorBitmap(bitmap) if bitmap is not None else None
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, fetch))
            if selector is not None:
                params.sel = selector
        distances, positions = self._index.search(queries, fetch, params=params)
        found = np.where(positions >= 0, self._ids[np.maximum(positions, 0)], PAD_ID)
        return found, distances.astype(np.float32)

    # ------------------------------------------------------------------ saving
    def save(self, folder: str | Path) -> Path:
        """Write ``index.faiss`` (faiss's own format), ``ids.npy`` and ``index.json``; no pickle."""
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(folder / "index.faiss"))
        np.save(folder / "ids.npy", self._ids, allow_pickle=False)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "dim": self.dim,
            "count": len(self),
            "exact_threshold": self.exact_threshold,
            "hnsw_m": self.hnsw_m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "compact_ratio": self.compact_ratio,
        }
        (folder / "index.json").write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        """Read an index written by :meth:`save`."""
        faiss = _faiss()
        folder = Path(folder)
        if not (folder / "index.json").exists():
            raise ShoprecError(f"{folder}: no index.json here: not a saved vector index (write one with save())")
        meta = json.loads((folder / "index.json").read_text())
        if meta.get("format_version", 0) > FORMAT_VERSION:
            raise ShoprecError(f"{folder}: index format {meta['format_version']} is newer than this shoprec; upgrade")
        settings = ("exact_threshold", "hnsw_m", "ef_construction", "ef_search", "compact_ratio")
        index = cls(meta["dim"], **{name: meta[name] for name in settings})
        index._index = faiss.read_index(str(folder / "index.faiss"))
        index._ids = np.load(folder / "ids.npy", allow_pickle=False).astype(np.int64)
        if index._index.ntotal != len(index._ids):
            raise ShoprecError(
                f"{folder}: index.faiss holds {index._index.ntotal} vectors but ids.npy {len(index._ids)}"
            )
        index._rebuild_where()
        return index

    # ------------------------------------------------------------------ internals
    def _new_index(self, hnsw: bool) -> Any:
        faiss = _faiss()
        if not hnsw:
            return faiss.IndexFlatIP(self.dim)
        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    def _check(self, vectors: np.ndarray, ids: np.ndarray | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        vectors = normalise(vectors)
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if vectors.shape != (len(ids), self.dim):
            raise ModelError(
                f"vector index: expected vectors of shape ({len(ids)}, {self.dim}) for {len(ids)} ids, "
                f"got {vectors.shape}"
            )
        if len(ids) and ids.min() < 0:
            raise ModelError("vector index: ids must be >= 0 (-1 marks padding in results)")
        if len(np.unique(ids)) != len(ids):
            raise ModelError("vector index: the same id appears twice in one call")
        return vectors, ids

    def _append(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if self.kind == "exact" and len(self._ids) + len(ids) >= self.exact_threshold:
            self._switch_to_hnsw()
        start = len(self._ids)
        if self.kind == "hnsw" and len(ids) > ADD_CHUNK:
            for lo in tqdm(range(0, len(ids), ADD_CHUNK), desc="building HNSW index", unit="chunk"):
                self._index.add(vectors[lo : lo + ADD_CHUNK])
        else:
            self._index.add(vectors)
        self._ids = np.concatenate([self._ids, ids])
        self._where.update(zip(ids.tolist(), range(start, start + len(ids)), strict=True))

    def _switch_to_hnsw(self) -> None:
        """Move the stored vectors from the exact index into a new HNSW graph."""
        stored = self._index.reconstruct_n(0, self._index.ntotal) if self._index.ntotal else None
        self._index = self._new_index(hnsw=True)
        if stored is not None:
            self._index.add(stored)

    def _rebuild_where(self) -> None:
        live = np.flatnonzero(self._ids != PAD_ID)
        self._where = dict(zip(self._ids[live].tolist(), live.tolist(), strict=True))


def _exclusion(exclude: Any, n: int) -> tuple[Callable[[np.ndarray], np.ndarray], int]:
    """``exclude`` as (function: found ids (n, m) -> mask of excluded, most ids excluded for one query)."""
    if exclude is None:
        return (lambda found: np.zeros(found.shape, dtype=bool)), 0
    if isinstance(exclude, np.ndarray) and exclude.ndim == 1 and exclude.dtype != object:
        banned = np.unique(exclude.astype(np.int64))
        return (lambda found: np.isin(found, banned)), len(banned)
    if len(exclude) != n:
        raise ModelError(f"exclude must hold one id list per query ({n}), got {len(exclude)}")
    lists = [np.unique(np.asarray(e, dtype=np.int64).ravel()) for e in exclude]
    rows = np.repeat(np.arange(n), [len(e) for e in lists])
    banned = np.concatenate(lists) if lists else np.zeros(0, np.int64)

    def hidden(found: np.ndarray) -> np.ndarray:
        span = int(max(found.max(initial=0), banned.max(initial=0))) + 2  # key = row * span + (id + 1)
        keys = np.arange(n)[:, None] * span + (found + 1)
        return np.isin(keys, rows * span + (banned + 1))

    return hidden, max((len(e) for e in lists), default=0)


def _compress_rows(found: np.ndarray, found_scores: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> None:
    """Move the valid entries of each row to the front (order kept), keep the first k."""
    valid = found != PAD_ID
    order = np.argsort(~valid, axis=1, kind="stable")[:, : ids.shape[1]]  # valid first, stable
    take_ids = np.take_along_axis(found, order, axis=1)
    take_scores = np.take_along_axis(found_scores, order, axis=1)
    width = take_ids.shape[1]
    ok = take_ids != PAD_ID
    ids[:, :width] = np.where(ok, take_ids, PAD_ID)
    scores[:, :width] = np.where(ok, take_scores, np.nan)
