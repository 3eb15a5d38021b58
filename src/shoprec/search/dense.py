"""Dense retrieval: the query encoded by the encoder that made the item vectors, matched by cosine.

Item vectors come from the language-model layer (:func:`shoprec.text.vectors.item_vectors`: each
item's text with its review digest, optionally through the vector cache) and live in a
:class:`~shoprec.text.index.VectorIndex` (faiss; exact below 20,000 items, HNSW above) keyed by table
position. Upserted products are encoded from :func:`product_text` (title, description, category path,
brand: an API upsert has no reviews) and replace their vector at once; removed ones leave the index.

With a multilingual encoder (``use-multilingual``) a Chinese query finds English listings and the
reverse. Constrained searches return only allowed items, never fewer than ``k`` of them: at most
``exact_limit`` allowed items are all scored exactly (cheaper than a graph walk); more are searched in
the index with a faiss ID selector over the allowed ones (no oversampling), with exact scoring as the
fallback when a tight selector starves the HNSW walk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ShoprecError
from shoprec.search.products import Product, ProductTable
from shoprec.text.encoders import Encoder
from shoprec.text.index import VectorIndex


def product_text(product: Product) -> str:
    """The text a product is encoded from when it did not come with the dataset."""
    parts = [product.title, product.description, product.category, product.brand]
    return ". ".join(p.strip() for p in parts if p and p.strip()) or product.item_id


class DenseIndex:
    """Cosine search over item vectors of one encoder, aligned with a product table's positions."""

    def __init__(
        self, encoder: Encoder, vectors: np.ndarray, alive: np.ndarray, oversample: int = 4, exact_limit: int = 5000
    ) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != encoder.dim:
            raise ShoprecError(
                f"item vectors have shape {vectors.shape}, the encoder '{encoder.name}' makes {encoder.dim}-d vectors: "
                "encode the items with the same encoder as the queries"
            )
        self.encoder = encoder
        self.oversample = int(oversample)  # kept for callers that set it; the selector search needs none
        self.exact_limit = int(exact_limit)  # at most this many allowed items: score them all exactly
        self.vectors = vectors
        self.index = VectorIndex(encoder.dim)
        live = np.flatnonzero(np.asarray(alive[: len(vectors)], dtype=bool))
        self.index.add(vectors[live], live)

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, table: ProductTable, encoder: Encoder, cache_dir: str | Path | None = None
    ) -> DenseIndex:
        """Vectors of the dataset's items (through the vector cache when given) for a table built from it."""
        from shoprec.text.vectors import item_vectors

        return cls(encoder, item_vectors(dataset, encoder, cache_dir=cache_dir), table.alive)

    def upsert(self, table: ProductTable, positions: Sequence[int]) -> None:
        """Encode the products at ``positions`` and make their new vectors searchable."""
        if not len(positions):
            return
        fresh = self.encoder.encode([product_text(table.products[p]) for p in positions])
        if len(table) > len(self.vectors):
            grown = np.zeros((len(table), self.encoder.dim), dtype=np.float32)
            grown[: len(self.vectors)] = self.vectors
            self.vectors = grown
        self.vectors[list(positions)] = fresh
        self.index.upsert(fresh, np.asarray(positions, dtype=np.int64))

    def remove(self, positions: Sequence[int]) -> None:
        self.index.remove(np.asarray(positions, dtype=np.int64))

    def encode_query(self, text: str) -> np.ndarray:
        return self.encoder.encode([text])[0]

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` allowed positions by cosine with the (encoded) ``query``, best first.

        Few allowed items (at most ``exact_limit``): all of them scored exactly. Otherwise, when the
        constraints exclude some indexed items, the index is searched with the allowed items as a faiss
        selector (the graph walk skips the others, so ``k`` allowed ones come back without
        oversampling); exact scoring remains the fallback when even that returns fewer than ``k``.
        """
        allowed = np.asarray(allowed[: len(self.vectors)], dtype=bool)
        n_allowed = int(np.count_nonzero(allowed))
        if n_allowed == 0 or len(self.index) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        k = min(k, n_allowed)
        if n_allowed <= self.exact_limit:
            return self._exact(query, np.flatnonzero(allowed), k)
        if n_allowed >= len(self.index):  # nothing the index holds is excluded: a plain search
            ids, scores = self.index.search(query[None, :], k=min(len(self.index), k))
            keep = (ids[0] >= 0) & allowed[np.maximum(ids[0], 0)]
        if n_allowed < len(self.index) or keep.sum() < k:
            ids, scores = _selected_search(self.index, query, k, allowed)
            keep = (ids[0] >= 0) & allowed[np.maximum(ids[0], 0)]
        found, found_scores = ids[0][keep], scores[0][keep]
        if len(found) >= k:
            return found[:k], found_scores[:k]
        return self._exact(query, np.flatnonzero(allowed), k)

    def _exact(self, query: np.ndarray, subset: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = self.vectors[subset] @ query
        if len(subset) > k:
            top = np.argpartition(-sims, k - 1)[:k]
            subset, sims = subset[top], sims[top]
        order = np.lexsort((subset, -sims))
        return subset[order].astype(np.int64), sims[order].astype(np.float32)


def _selected_search(
    index: VectorIndex, query: np.ndarray, k: int, allowed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` restricted to the ids ``allowed`` marks, through a faiss ID selector.

    The selector works on the index's storage positions; :class:`VectorIndex` keeps the position -> id
    map as ``_ids`` (-1 for dead positions) and the faiss index as ``_index``.
    """
    import faiss

    from shoprec.text.index import normalise

    ids = index._ids  # noqa: SLF001 (storage position -> id; no public accessor yet)
    live = ids >= 0
    ok = np.zeros(len(ids), dtype=bool)
    ok[live] = allowed[np.minimum(ids[live], len(allowed) - 1)] & (ids[live] < len(allowed))
    bitmap = np.packbits(ok, bitorder="little")  # kept alive in this frame: faiss reads it during the search
    selector = faiss.IDSelectorBitmap(bitmap)
    if index.kind == "hnsw":
        params = faiss.SearchParametersHNSW(efSearch=max(index.ef_search, k), sel=selector)
    else:
        params = faiss.SearchParameters(sel=selector)
    distances, positions = index._index.search(normalise(query), k, params=params)  # noqa: SLF001
    found = np.where(positions >= 0, ids[np.maximum(positions, 0)], -1)
    return found, distances.astype(np.float32)
