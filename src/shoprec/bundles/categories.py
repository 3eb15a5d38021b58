"""Categories for catalogues that have none, derived from item text (k-means over text vectors).

The bundle constraints (one item per category, a category mix) and the category-pair
complementarity need a category per item. A catalogue without one (UCI Online Retail) gets
clusters of its text vectors, each named after the words most frequent in its items' titles
("text cluster 12: lunch bag"), so messages and explanations stay readable. This is a derived
grouping, not the shop's taxonomy: say so wherever results depend on it.

>>> labels = text_categories(vectors, titles, n_clusters=60, seed=0)    # doctest: +SKIP
>>> dataset = with_categories(dataset, labels)                          # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "of",
        "the",
        "with",
        "for",
        "in",
        "on",
        "to",
        "set",
        "by",
        "from",
        "pack",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "8",
        "10",
        "12",
        "x",
    ]
)


def text_categories(vectors: np.ndarray, titles: Sequence[str], n_clusters: int, seed: int = 0) -> np.ndarray:
    """One label per item: its k-means cluster of text vectors, named by the cluster's top title words."""
    from sklearn.cluster import KMeans

    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(titles):
        raise ModelError(f"text categories: need one vector per title, got {vectors.shape} for {len(titles)} titles")
    if not 1 <= n_clusters <= len(vectors):
        raise ModelError(f"text categories: n_clusters must lie in 1..{len(vectors)}, got {n_clusters}")
    codes = KMeans(n_clusters=n_clusters, n_init=3, random_state=seed).fit_predict(vectors)
    names = {}
    for c in range(n_clusters):
        words = Counter(
            w for i in np.flatnonzero(codes == c) for w in set(re.findall(r"[a-z]+", str(titles[i]).lower()))
        )
        top = [w for w, _ in words.most_common(6) if w not in STOPWORDS and len(w) > 2][:2]
        names[c] = f"text cluster {c}: {' '.join(top) or 'misc'}"
    return np.array([names[c] for c in codes.tolist()], dtype=object)


def with_categories(dataset: Dataset, labels: Sequence[str]) -> Dataset:
    """The same dataset (events and vocabularies shared) whose catalogue has ``category = labels``."""
    if len(labels) != dataset.n_items:
        raise ModelError(f"with_categories: got {len(labels)} labels for {dataset.n_items} items")
    return dataset.with_items(dataset.items.assign(category=list(labels)))
