"""What the neural models share: the catalogue's frozen text vectors and torch thread control.

The sequential and graph models fuse a learned id embedding with a projection of each item's text
vector from the language-model layer. :class:`TextVectors` holds where those vectors come from
(an encoder name plus a cache folder, or an array handed over with ``set_item_vectors``) and
turns a dataset into a float32 ``(n_items, dim)`` matrix, row ``i`` = item index ``i``.

>>> source = TextVectors("minilm-int8", cache_dir="cache/")       # doctest: +SKIP
>>> vectors = source.vectors(train)                               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError

TEXT_MODES = ("fused", "id", "text")
"""Item representation: learned id embedding + text projection, id embedding only, text only."""


class TextVectors:
    """Item text vectors for a model: encoded on demand (with a cache) or given as an array."""

    def __init__(self, encoder: str = "auto", cache_dir: str | None = None, model: str = "model") -> None:
        self.encoder = encoder
        self.cache_dir = cache_dir
        self.model = model
        self.given: np.ndarray | None = None

    def set(self, vectors: np.ndarray) -> None:
        """Use these vectors (row i = item index i) instead of encoding the catalogue."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or not np.isfinite(vectors).all():
            raise ModelError(
                f"{self.model}: item vectors must be a finite 2-d array (n_items, dim), got shape {vectors.shape}"
            )
        self.given = vectors

    def vectors(self, dataset: Dataset) -> np.ndarray:
        """``(n_items, dim)`` unit-length float32 vectors for the dataset's catalogue."""
        if self.given is not None:
            if len(self.given) != dataset.n_items:
                raise ModelError(
                    f"{self.model}: set_item_vectors gave {len(self.given)} vectors but the dataset has "
                    f"{dataset.n_items} items: give one vector per item index"
                )
            return normalise(self.given)
        from shoprec.models.content import shared_encoder
        from shoprec.text.itemtext import item_texts
        from shoprec.text.vectors import item_vectors

        texts = item_texts(dataset)
        encoder = shared_encoder(self.encoder, sample_texts=texts.texts)
        return item_vectors(dataset, encoder, cache_dir=self.cache_dir, texts=texts)


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(np.float32)


def check_mode(mode: str, model: str) -> None:
    if mode not in TEXT_MODES:
        raise ModelError(f"{model}: item_repr must be one of {', '.join(TEXT_MODES)}, got {mode!r}")


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads (None: leave as is), then restore."""
    import torch

    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
