"""Content-based recommender: item texts and user profiles in one vector space (cold start).

Every catalogue item gets a text vector (:func:`shoprec.text.vectors.item_vectors`), including
items nobody has touched yet, so a new listing is recommendable from its text alone. Every user
gets a profile vector, the recency-decayed, event-weighted mean of the vectors of their items and
search queries (:class:`shoprec.text.profiles.UserProfiles`); ``score(users) = profiles @ items``.
Beyond the shared :class:`~shoprec.models.base.Recommender` API it answers without a fitted user:
:meth:`ContentRecommender.similar_items`, :meth:`~ContentRecommender.recommend_for_text` (a search
query from a new visitor) and :meth:`~ContentRecommender.recommend_for_items` (a visitor with one
or two clicks), through a :class:`~shoprec.text.index.VectorIndex`.

``recommend`` is the base class's: it drops each user's seen items (``exclude_seen``), applies
``candidates`` and ``exclude``, and gives unknown users the popularity fallback.

>>> model = create_model("content", encoder="minilm-int8").fit(train)             # doctest: +SKIP
>>> items, scores = model.recommend_for_text(["蓝牙耳机"], k=10)                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.models.base import Recommender
from shoprec.models.registry import register
from shoprec.text.encoders import ENCODERS, Encoder, has_cjk, load_encoder
from shoprec.text.index import VectorIndex, normalise
from shoprec.text.profiles import UserProfiles

_SHARED_ENCODERS: dict[str, Encoder] = {}
"""Built-in encoders loaded in this process, by name: loading one takes seconds, using it is stateless."""


def shared_encoder(spec: str, sample_texts: Sequence[str] | None = None) -> Encoder:
    """:func:`load_encoder`, reusing a built-in encoder already loaded in this process."""
    if spec == "auto":
        spec = "use-multilingual" if has_cjk(sample_texts or []) else "minilm"
    if spec not in ENCODERS:
        return load_encoder(spec)  # a model folder: always read afresh (it may have been re-trained)
    if spec not in _SHARED_ENCODERS:
        _SHARED_ENCODERS[spec] = load_encoder(spec)
    return _SHARED_ENCODERS[spec]


@dataclass
class ContentConfig:
    encoder: str = "auto"
    """``auto`` (``use-multilingual`` when item texts hold Chinese, Japanese or Korean, else
    ``minilm``), ``minilm``, ``minilm-int8``, ``use-multilingual``, or a sentence-transformers model
    folder (for instance one written by ``shoprec finetune``)."""
    cache_dir: str | None = None
    """Folder of the item-vector cache: refits re-encode only new or changed item texts."""
    half_life_days: float = 30.0
    """An event this many days before the user's last event counts half in the profile."""
    query_weight: float = 2.0
    """Weight of one search query in a profile, in event-weight units (a click is 2, a purchase 8)."""
    exact_threshold: int = 20_000
    """Catalogues below this size are searched exactly; larger ones through an HNSW graph."""

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or not self.encoder:
            raise ModelError(f"content: encoder must be a name or a model folder, got {self.encoder!r}")
        if self.half_life_days <= 0:
            raise ModelError(f"content: half_life_days must be > 0, got {self.half_life_days!r}")
        if self.query_weight < 0:
            raise ModelError(f"content: query_weight must be >= 0, got {self.query_weight!r}")
        if not isinstance(self.exact_threshold, int | np.integer) or self.exact_threshold < 0:
            raise ModelError(f"content: exact_threshold must be a whole number >= 0, got {self.exact_threshold!r}")


@register
class ContentRecommender(Recommender):
    """Recommends items whose text resembles what the user bought, clicked and searched for."""

    name = "content"
    config_class = ContentConfig

    def __init__(self, config: ContentConfig | None = None, **settings: object) -> None:
        super().__init__(config, **settings)
        self.encoder: Encoder | None = None
        self.encoder_name: str = ""  # the encoder the item vectors came from ("" when given as arrays)
        self.item_vectors: np.ndarray | None = None
        self.user_vectors: np.ndarray | None = None
        self.profiles: UserProfiles | None = None
        self._given_vectors: np.ndarray | None = None
        self._index: VectorIndex | None = None

    def set_item_vectors(self, vectors: np.ndarray, encoder: Encoder | None = None) -> ContentRecommender:
        """Use precomputed item vectors (row i = item index i) at the next fit instead of encoding.

        No encoder is loaded then; pass the ``encoder`` that made the vectors to also fold search
        queries into profiles and to answer :meth:`recommend_for_text`.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ModelError(f"content: item vectors must be a 2-d array (n_items, dim), got shape {vectors.shape}")
        if encoder is not None and encoder.dim != vectors.shape[1]:
            raise ModelError(
                f"content: encoder '{encoder.name}' makes {encoder.dim}-d vectors, got {vectors.shape[1]}-d"
            )
        self._given_vectors, self.encoder = normalise(vectors), encoder
        self.encoder_name = encoder.name if encoder is not None else ""
        return self

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset) -> None:
        if self._given_vectors is not None:
            if len(self._given_vectors) != dataset.n_items:
                raise ModelError(
                    f"content: set_item_vectors gave {len(self._given_vectors)} vectors but the dataset has "
                    f"{dataset.n_items} items: give one vector per item index"
                )
            vectors = self._given_vectors
        else:
            vectors = self._encode_catalogue(dataset)
        self.profiles = UserProfiles.build(
            dataset,
            vectors,
            encoder=self.encoder,
            half_life_days=self.config.half_life_days,
            query_weight=self.config.query_weight,
        )
        self.item_vectors, self.user_vectors = vectors, self.profiles.vectors()
        self._index = None

    def _encode_catalogue(self, dataset: Dataset) -> np.ndarray:
        from shoprec.text.itemtext import item_texts
        from shoprec.text.vectors import item_vectors

        texts = item_texts(dataset)
        self.encoder = shared_encoder(self.config.encoder, sample_texts=texts.texts)
        self.encoder_name = self.encoder.name if self.config.encoder in ("auto", *ENCODERS) else self.config.encoder
        return item_vectors(dataset, self.encoder, cache_dir=self.config.cache_dir, texts=texts)

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.user_vectors[np.asarray(users, dtype=np.int64)] @ self.item_vectors.T  # (n, n_items)

    # ------------------------------------------------------------------ answers without a fitted user
    @property
    def index(self) -> VectorIndex:
        """Nearest-neighbour index over the item vectors (built on first use)."""
        if self.item_vectors is None:
            raise ModelError("model 'content' is not fitted: call fit(dataset) first")
        if self._index is None:
            index = VectorIndex(self.item_vectors.shape[1], exact_threshold=self.config.exact_threshold)
            self._index = index.add(self.item_vectors, np.arange(len(self.item_vectors)))
        return self._index

    def recommend_for_vectors(
        self, vectors: np.ndarray, k: int = 10, exclude: Sequence[Sequence[int]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for query vectors in the item space (for instance an updated profile).

        Returns ``(items, scores)`` (n, k), padded with -1 / NaN; ``exclude`` holds per query the
        item indices never to return.
        """
        return self.index.search(vectors, k, exclude=exclude)

    def similar_items(self, items: Sequence[int] | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items whose text is closest to each given item (the item itself left out)."""
        items = self._check_items(items)
        return self.recommend_for_vectors(self.item_vectors[items], k, exclude=[[i] for i in items])

    def recommend_for_items(self, item_lists: Sequence[Sequence[int]], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Recommendations for new visitors given the few items each touched (one list per visitor):
        the mean of those items' vectors, with the items themselves left out."""
        lists = [self._check_items(items) for items in item_lists]
        if any(len(items) == 0 for items in lists):
            raise ModelError("content: every item list needs at least one item (use recommend_for_text otherwise)")
        queries = (
            np.stack([self.item_vectors[items].mean(axis=0) for items in lists]) if lists else self.item_vectors[:0]
        )
        return self.recommend_for_vectors(queries, k, exclude=[items.tolist() for items in lists])

    def recommend_for_text(self, query_texts: Sequence[str], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Recommendations for search texts (a new visitor's query), one row per text."""
        if isinstance(query_texts, str):
            raise ModelError("content: give a list of query texts, e.g. recommend_for_text(['red mug'])")
        return self.recommend_for_vectors(self._query_encoder().encode(list(query_texts)), k)

    def _query_encoder(self) -> Encoder:
        if self.encoder is None:
            if not self.encoder_name:
                raise ModelError(
                    "content: the item vectors were given without an encoder: pass the encoder that made them "
                    "to set_item_vectors(vectors, encoder) to search by text"
                )
            self.encoder = shared_encoder(self.encoder_name)
        if self.encoder.dim != self.item_vectors.shape[1]:
            raise ModelError(
                f"content: encoder '{self.encoder.name}' does not match the {self.item_vectors.shape[1]}-d item vectors"
            )
        return self.encoder

    def _check_items(self, items: Sequence[int] | np.ndarray) -> np.ndarray:
        if self.item_vectors is None:
            raise ModelError("model 'content' is not fitted: call fit(dataset) first")
        items = np.asarray(items, dtype=np.int64).ravel()
        if len(items) and (items.min() < 0 or items.max() >= len(self.item_vectors)):
            raise ModelError(f"content: item indices must lie in 0..{len(self.item_vectors) - 1}")
        return items

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        arrays = {f"profiles.{k}": v for k, v in self.profiles.to_arrays(include_item_vectors=False).items()}
        return {**arrays, "item_vectors": self.item_vectors, "encoder_name": np.array(self.encoder_name)}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_vectors = arrays["item_vectors"]
        self.encoder_name = str(arrays["encoder_name"])
        prefix = "profiles."
        parts = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        self.profiles = UserProfiles.from_arrays(parts, item_vectors=self.item_vectors)
        self.user_vectors = self.profiles.vectors()
