"""Personal search features: what a shopper's history says about each candidate product.

A :class:`SearchProfile` is built from the table positions of the items a shopper interacted with
(oldest first) and, optionally, their past query texts. Recent items weigh more: item ``i`` of ``n``
weighs ``0.5 ** ((n - 1 - i) / half_life)`` (default ``half_life`` 10: the item ten events before the
latest counts half), and the weights are normalised to sum to 1; past queries are weighted the same
way among themselves. The profile holds

- **category**: the weight of history items under each prefix of their category path
  (``Home``, ``Home > Kitchen``, ``Home > Kitchen > Mugs``);
- **brand**: the weight per brand (trimmed, case folded, as the brand filter compares);
- **price band**: the weighted mean and spread of the history items' *relative price*, the price's
  percentile among the live products of the same category (0 cheapest, 1 dearest), so a shopper who
  buys the cheap end of every category is recognised in a category they never bought from;
- **text vector**: the weighted mean of the history items' vectors (when vectors are given);
- **query words**: the weight of each index term of past queries ("searched for tents");
- **items**: the weight of each history item itself (shoppers come back to what they viewed).

Features of a candidate (``personal_*``, each in [0, 1]):

- ``personal_category``: mean over the levels of the candidate's path of the history weight under
  that prefix divided by the largest weight of any prefix at that level (1: the shopper's favourite
  category at every level; 1/3: only the top level of a three-level path is shared with the favourite);
- ``personal_brand``: the brand's weight divided by the favourite brand's weight;
- ``personal_price``: ``exp(-((r - mean) / spread) ** 2 / 2)`` of the candidate's relative price
  ``r``, spread at least :data:`MIN_PRICE_SPREAD`; 0.5 for a product with no price;
- ``personal_vector``: cosine of the candidate's vector with the profile vector, clipped to [0, 1];
- ``personal_query``: the weight of past query terms found in the candidate's category path or brand;
- ``personal_item``: the candidate's own history weight divided by the largest item weight (0: never seen).

A feature the profile has nothing for (no vectors, no past queries, no priced history item) is 0
for every candidate and left out of :meth:`SearchProfile.score`, which is the weighted mean of the
active features (:class:`FeatureWeights`). An empty profile (no history, no queries) scores every
candidate 0 and has ``weight`` 0: it changes nothing, as an anonymous shopper should.

>>> profile = SearchProfile.from_history(table, [12, 40, 41], vectors)           # doctest: +SKIP
>>> features = profile.features(table, np.array([3, 40, 77]), vectors)           # doctest: +SKIP
>>> profile.score(features)                                                     # doctest: +SKIP
array([0.12, 0.93, 0.40])
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from shoprec.errors import ShoprecError
from shoprec.search.products import ProductTable
from shoprec.search.tokenize import tokenize

DEFAULT_WEIGHT = 0.3
"""Share of the final score given to the personal part by default (tuned per shop: see benchmarks)."""
HALF_LIFE = 10.0
"""History items (or queries) back from the latest at which one counts half."""
MIN_PRICE_SPREAD = 0.15
"""Smallest spread of the relative-price kernel (one shopper's few purchases say little about spread)."""
SEPARATOR = " > "
FEATURES = (
    "personal_category",
    "personal_brand",
    "personal_price",
    "personal_vector",
    "personal_query",
    "personal_item",
)
"""Feature names, always all present in :meth:`SearchProfile.features`."""


@dataclass(frozen=True)
class FeatureWeights:
    """Weights of the features in :meth:`SearchProfile.score` (normalised over the active ones)."""

    category: float = 0.4  # the planted signal of most shops: shoppers keep to their categories
    brand: float = 0.1
    price: float = 0.2
    vector: float = 0.2
    query: float = 0.1
    item: float = 0.0  # off by default: whether re-finding viewed items should rank first is a shop's choice

    def __post_init__(self) -> None:
        values = asdict(self)
        bad = {k: v for k, v in values.items() if not np.isfinite(v) or v < 0}
        if bad or sum(values.values()) <= 0:
            raise ShoprecError(f"feature weights must be finite, >= 0 and not all 0, got {values}")


def recency_weights(n: int, half_life: float = HALF_LIFE) -> np.ndarray:
    """Weights of ``n`` events, oldest first, halving every ``half_life`` events back; sum 1 (empty: none)."""
    if half_life <= 0:
        raise ShoprecError(f"half_life must be > 0, got {half_life}")
    if n == 0:
        return np.zeros(0)
    w = 0.5 ** ((n - 1 - np.arange(n)) / half_life)
    return w / w.sum()


@dataclass
class SearchProfile:
    """One shopper's search profile (see the module docstring); build it with :meth:`from_history`."""

    weight: float = DEFAULT_WEIGHT
    n_items: int = 0
    n_queries: int = 0
    category_mass: dict[str, float] = field(default_factory=dict)  # path prefix -> history weight
    depth_max: list[float] = field(default_factory=list)  # largest prefix weight per level (0 = top)
    brand_mass: dict[str, float] = field(default_factory=dict)
    price_mean: float = float("nan")  # relative price (within category), NaN: no priced history
    price_spread: float = MIN_PRICE_SPREAD
    typical_price: float = float("nan")  # weighted median price of the history, for describe()
    vector: np.ndarray | None = None  # unit vector or None
    query_mass: dict[str, float] = field(default_factory=dict)  # index term -> weight of past queries
    item_mass: dict[int, float] = field(default_factory=dict)  # table position -> history weight
    weights: FeatureWeights = field(default_factory=FeatureWeights)

    @classmethod
    def from_history(
        cls,
        table: ProductTable,
        positions: Sequence[int],
        vectors: np.ndarray | None = None,
        queries: Sequence[str] = (),
        *,
        weight: float = DEFAULT_WEIGHT,
        half_life: float = HALF_LIFE,
        weights: FeatureWeights | None = None,
    ) -> SearchProfile:
        """The profile of a shopper whose history is ``positions`` (table positions, oldest first).

        ``vectors``: the catalogue's item vectors aligned with table positions (rows past its end or of
        zero length are skipped). ``queries``: past query texts, oldest first. An empty history and no
        queries give an empty profile (weight 0, every score 0).
        """
        if not np.isfinite(weight) or not 0.0 <= weight <= 1.0:
            raise ShoprecError(f"profile weight must be in [0, 1], got {weight}")
        pos = _check_positions(table, positions)
        queries = [str(q) for q in queries if q is not None and str(q).strip()]
        profile = cls(
            weight=float(weight), n_items=len(pos), n_queries=len(queries), weights=weights or FeatureWeights()
        )
        w = recency_weights(len(pos), half_life)
        if len(pos):
            profile._fit_items(table, pos, w, vectors)
        if queries:
            for q_weight, text in zip(recency_weights(len(queries), half_life).tolist(), queries, strict=True):
                terms = set(tokenize(text))
                for t in terms:
                    profile.query_mass[t] = profile.query_mass.get(t, 0.0) + q_weight / len(terms)
        if profile.empty:
            profile.weight = 0.0
        return profile

    def _fit_items(self, table: ProductTable, pos: np.ndarray, w: np.ndarray, vectors: np.ndarray | None) -> None:
        for p, wi in zip(pos.tolist(), w.tolist(), strict=True):
            self.item_mass[p] = self.item_mass.get(p, 0.0) + wi
            for prefix in _prefixes(str(table.category[p] or "")):
                self.category_mass[prefix] = self.category_mass.get(prefix, 0.0) + wi
            brand = table.brand_key[p] or ""
            if brand:
                self.brand_mass[brand] = self.brand_mass.get(brand, 0.0) + wi
        depth_max: dict[int, float] = {}
        for prefix, mass in self.category_mass.items():
            d = prefix.count(SEPARATOR)
            depth_max[d] = max(depth_max.get(d, 0.0), mass)
        self.depth_max = [depth_max.get(d, 0.0) for d in range(max(depth_max, default=-1) + 1)]
        rel = relative_prices(table)[pos]
        priced = np.isfinite(rel)
        if priced.any():
            pw = w[priced] / w[priced].sum()
            self.price_mean = float(pw @ rel[priced])
            spread = float(np.sqrt(pw @ (rel[priced] - self.price_mean) ** 2))
            self.price_spread = max(spread, MIN_PRICE_SPREAD)
            price = table.price[pos][priced]
            order = np.argsort(price)
            self.typical_price = float(price[order][np.searchsorted(np.cumsum(pw[order]), 0.5)])
        if vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            inside = pos < len(vectors)
            if inside.any():
                mean = w[inside] @ vectors[pos[inside]]
                norm = float(np.linalg.norm(mean))
                self.vector = (mean / norm).astype(np.float32) if norm > 0 else None

    @property
    def empty(self) -> bool:
        """No history item and no past query: the profile knows nothing."""
        return self.n_items == 0 and not self.query_mass

    def active(self, vectors: np.ndarray | None = None) -> dict[str, float]:
        """Feature name -> weight for the features this profile has data for."""
        have = {
            "personal_category": bool(self.category_mass),
            "personal_brand": bool(self.brand_mass),
            "personal_price": bool(np.isfinite(self.price_mean)),
            "personal_vector": self.vector is not None,
            "personal_query": bool(self.query_mass),
            "personal_item": bool(self.item_mass),
        }
        weights = asdict(self.weights)
        return {name: weights[name.removeprefix("personal_")] for name in FEATURES if have[name]}

    def features(self, table: ProductTable, positions: np.ndarray, vectors: np.ndarray | None) -> dict[str, np.ndarray]:
        """Each feature of :data:`FEATURES` for every candidate position, float64 in [0, 1]."""
        pos = _check_positions(table, positions)
        n = len(pos)
        out = {name: np.zeros(n) for name in FEATURES}
        if n == 0 or self.empty:
            return out
        categories = table.category[pos]
        if self.category_mass:
            out["personal_category"] = _by_label(categories, self._category_affinity)
        if self.brand_mass:
            top = max(self.brand_mass.values())
            out["personal_brand"] = _by_label(table.brand_key[pos], lambda b: self.brand_mass.get(b or "", 0.0) / top)
        if np.isfinite(self.price_mean):
            rel = relative_prices(table)[pos]
            fit = np.exp(-0.5 * ((rel - self.price_mean) / self.price_spread) ** 2)
            out["personal_price"] = np.where(np.isfinite(rel), fit, 0.5)
        if self.vector is not None and vectors is not None:
            vectors = np.asarray(vectors, dtype=np.float32)
            inside = pos < len(vectors)
            cos = np.zeros(n)
            if vectors.ndim == 2 and vectors.shape[1] == len(self.vector):
                cos[inside] = vectors[pos[inside]] @ self.vector
            out["personal_vector"] = np.clip(cos, 0.0, 1.0)
        if self.query_mass:
            total = sum(self.query_mass.values())
            labels = np.array(
                [f"{c or ''}{SEPARATOR}{b or ''}" for c, b in zip(categories, table.brand_key[pos], strict=True)],
                dtype=object,
            )
            out["personal_query"] = _by_label(
                labels, lambda s: min(1.0, sum(self.query_mass.get(t, 0.0) for t in _label_terms(s)) / total)
            )
        if self.item_mass:
            top = max(self.item_mass.values())
            out["personal_item"] = np.array([self.item_mass.get(p, 0.0) / top for p in pos.tolist()])
        return {name: np.clip(values, 0.0, 1.0) for name, values in out.items()}

    def score(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """Weighted mean of the active features, in [0, 1] (every value 0 for an empty profile)."""
        lengths = {len(np.asarray(v)) for v in features.values()}
        if len(lengths) > 1:
            raise ShoprecError(
                f"personal features must all have one value per candidate, got lengths {sorted(lengths)}"
            )
        n = lengths.pop() if lengths else 0
        active = {k: w for k, w in self.active().items() if k in features and w > 0}
        if self.vector is not None and "personal_vector" in active and not np.any(features["personal_vector"]):
            active.pop("personal_vector")  # no vectors were given to features(): leave the feature out
        if not active:
            return np.zeros(n)
        total = sum(active.values())
        score = sum(w * np.asarray(features[k], dtype=np.float64) for k, w in active.items()) / total
        return np.clip(score, 0.0, 1.0)

    def describe(self, top: int = 3) -> dict:
        """JSON-ready summary: top categories, brands and query words with their shares, the price band."""
        leaf_depth = len(self.depth_max) - 1
        leaves = {p: m for p, m in self.category_mass.items() if p.count(SEPARATOR) == leaf_depth}
        band = None
        if np.isfinite(self.price_mean):
            label = "budget" if self.price_mean < 1 / 3 else "mid" if self.price_mean < 2 / 3 else "premium"
            band = {
                "band": label,
                "relative_price": round(self.price_mean, 3),
                "spread": round(self.price_spread, 3),
                "typical_price": round(self.typical_price, 2),
            }
        return {
            "items": self.n_items,
            "queries": self.n_queries,
            "weight": round(self.weight, 4),
            "top_categories": _top(leaves, top),
            "top_brands": _top(self.brand_mass, top),
            "price_band": band,
            "query_words": _top(self.query_mass, top),
            "text_vector": self.vector is not None,
            "features": sorted(self.active()),
        }

    def _category_affinity(self, path: str) -> float:
        prefixes = _prefixes(path)
        if not prefixes:
            return 0.0
        total = 0.0
        for d, prefix in enumerate(prefixes):
            top = self.depth_max[d] if d < len(self.depth_max) else 0.0
            total += self.category_mass.get(prefix, 0.0) / top if top > 0 else 0.0
        return total / len(prefixes)


def _check_positions(table: ProductTable, positions: Sequence[int] | np.ndarray) -> np.ndarray:
    pos = np.asarray(positions)
    if pos.size == 0:
        return np.zeros(0, dtype=np.int64)
    if pos.ndim != 1 or not np.issubdtype(pos.dtype, np.integer):
        raise ShoprecError(f"positions must be a flat sequence of whole numbers (table positions), got {pos.dtype}")
    bad = pos[(pos < 0) | (pos >= len(table))]
    if len(bad):
        raise ShoprecError(
            f"positions {bad[:5].tolist()} are outside the product table (0..{len(table) - 1}): "
            "map item ids with ProductTable.position first"
        )
    return pos.astype(np.int64)


def _prefixes(path: str) -> list[str]:
    levels = [p.strip() for p in path.split(">")] if path and path.strip() else []
    levels = [p for p in levels if p]
    return [SEPARATOR.join(levels[: d + 1]) for d in range(len(levels))]


def _by_label(labels: np.ndarray, value: object) -> np.ndarray:
    """``value(label)`` for each entry, computed once per distinct label."""
    keys = ["" if v is None else str(v) for v in labels.tolist()]
    uniq, inverse = np.unique(np.array(keys, dtype=object), return_inverse=True)
    return np.array([value(u) for u in uniq.tolist()], dtype=np.float64)[inverse]


@lru_cache(maxsize=20_000)
def _label_terms(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def _top(mass: dict[str, float], top: int) -> list[dict]:
    total = sum(mass.values())
    best = sorted(mass.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"name": k, "share": round(v / total, 3)} for k, v in best] if total > 0 else []


_RELATIVE: weakref.WeakKeyDictionary[ProductTable, tuple[tuple, np.ndarray]] = weakref.WeakKeyDictionary()


def relative_prices(table: ProductTable) -> np.ndarray:
    """Each position's price percentile among the live, priced products of its category, in (0, 1).

    ``(rank - 0.5) / count`` with tied prices sharing their mean rank (a category's only product: 0.5);
    NaN for products with no price or removed. Cached per table until its prices, categories or live
    rows change.
    """
    signature = (
        len(table),
        hash(table.alive.tobytes()),
        hash(table.price.tobytes()),
        hash(table.category.tobytes()),  # object pointers: an upsert always stores a new string object
    )
    cached = _RELATIVE.get(table)
    if cached is not None and cached[0] == signature:
        return cached[1]
    rel = np.full(len(table), np.nan)
    keep = np.flatnonzero(table.alive & np.isfinite(table.price))
    if len(keep):
        price = pd.Series(table.price[keep])
        groups = pd.Series(["" if c is None else str(c) for c in table.category[keep].tolist()])
        rank = price.groupby(groups.to_numpy()).rank(method="average").to_numpy()
        count = groups.map(groups.value_counts()).to_numpy(dtype=np.float64)
        rel[keep] = (rank - 0.5) / count
    _RELATIVE[table] = (signature, rel)
    return rel
