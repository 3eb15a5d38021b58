"""The demo shop's catalog: leaves, brands, log-normal prices, languages, titles and descriptions.

Every number an item carries (its leaf, price band, popularity, launch date, which words describe
it) is kept in a :class:`Catalog` of aligned numpy arrays, so the behaviour simulation can use
them without parsing text, and tests can check the planted structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.data.demo.words import ADJECTIVES, BRANDS, COLOURS, LEAVES, TOPS, USES, Leaf
from shoprec.timeunits import DAY

ZH_SHARE = 0.25
"""Share of products listed in Chinese."""
NEW_SHARE = 0.06
"""Share of products launched in the last 14 days (cold-start items)."""
NEW_DAYS = 14
BRAND_SHARE = np.array([0.3, 0.22, 0.17, 0.13, 0.1, 0.08])
"""Market share of a top category's brands, largest first."""
BANDS: tuple[str, ...] = ("budget", "mid", "premium")
"""Price bands: tertiles of price within a leaf category."""


@dataclass
class Catalog:
    """Aligned per-item arrays (item index ``i`` everywhere) plus the finished text."""

    item_id: np.ndarray  # (n,) object, "P00001"...
    leaf: np.ndarray  # (n,) int, index into LEAVES
    top: np.ndarray  # (n,) int, index into TOPS
    brand: np.ndarray  # (n,) object
    price: np.ndarray  # (n,) float
    band: np.ndarray  # (n,) int, index into BANDS
    zh: np.ndarray  # (n,) bool, listed in Chinese
    quality: np.ndarray  # (n,) float, latent; drives clicks and ratings
    weight: np.ndarray  # (n,) float, base popularity within the leaf (long-tailed)
    created: np.ndarray  # (n,) int64, unix seconds
    words: dict[str, np.ndarray]  # slot -> (n,) int word index: noun, material, feature, feature2, colour, adj
    title: np.ndarray  # (n,) object
    description: np.ndarray  # (n,) object

    def __len__(self) -> int:
        return len(self.item_id)

    def frame(self) -> pd.DataFrame:
        """The raw ``items`` table with the schema's column names (+ ``colour``, ``material``)."""
        coloured = np.array([LEAVES[leaf].coloured for leaf in self.leaf])
        colour = np.where(coloured, np.asarray(COLOURS[0], dtype=object)[self.words["colour"]], None)
        material = [LEAVES[leaf].en.materials[m] for leaf, m in zip(self.leaf, self.words["material"], strict=True)]
        return pd.DataFrame(
            {
                "item_id": self.item_id,
                "title": self.title,
                "description": self.description,
                "category": [LEAVES[leaf].path for leaf in self.leaf],
                "brand": self.brand,
                "price": self.price,
                "created_at": self.created,
                "language": np.where(self.zh, "zh", "en"),
                "colour": colour,
                "material": material,
            }
        )


def build_catalog(rng: np.random.Generator, n_items: int, start: int, end: int) -> Catalog:
    """Draw ``n_items`` products over all leaves (at least two per leaf), then write their text."""
    n_leaves = len(LEAVES)
    counts = 2 + rng.multinomial(n_items - 2 * n_leaves, rng.dirichlet(np.full(n_leaves, 6.0)))
    leaf = rng.permutation(np.repeat(np.arange(n_leaves), counts))
    top_of_leaf = np.array([TOPS.index(leaf_.top) for leaf_ in LEAVES])
    top = top_of_leaf[leaf]
    brand_idx = rng.choice(len(BRAND_SHARE), n_items, p=BRAND_SHARE)
    brand_factor = rng.lognormal(0.0, 0.3, (len(TOPS), len(BRAND_SHARE)))
    median = np.array([leaf_.price for leaf_ in LEAVES])
    raw_price = median[leaf] * brand_factor[top, brand_idx] * rng.lognormal(0.0, 0.35, n_items)
    price = np.maximum(np.round(raw_price) - 0.01, 0.99)
    quality = rng.normal(0.0, 1.0, n_items)
    rank = rank_within(leaf, rng.random(n_items))
    weight = (rank + 1.0) ** -0.9 * np.exp(0.3 * quality) * rng.lognormal(0.0, 0.3, n_items)
    words = {
        "noun": rng.integers(0, 4, n_items),
        "material": rng.integers(0, 4, n_items),
        "feature": rng.integers(0, 4, n_items),
        "feature2": rng.integers(1, 4, n_items),  # offset from feature, so the two differ
        "colour": rng.integers(0, len(COLOURS[0]), n_items),
        "adj": rng.integers(0, 6, n_items),
        "template": rng.integers(0, 3, n_items),
        "use": rng.integers(0, 3, n_items),
    }
    words["feature2"] = (words["feature"] + words["feature2"]) % 4
    brand = np.array([BRANDS[TOPS[t]][b] for t, b in zip(top, brand_idx, strict=True)], dtype=object)
    zh = rng.random(n_items) < ZH_SHARE
    catalog = Catalog(
        item_id=np.array([f"P{i:05d}" for i in range(1, n_items + 1)], dtype=object),
        leaf=leaf,
        top=top,
        brand=brand,
        price=price,
        band=price_bands(leaf, price),
        zh=zh,
        quality=quality,
        weight=weight,
        created=_launch_dates(rng, rank, start, end),
        words=words,
        title=np.empty(n_items, dtype=object),
        description=np.empty(n_items, dtype=object),
    )
    write_text(catalog)
    return catalog


def rank_within(group: np.ndarray, key: np.ndarray) -> np.ndarray:
    """0-based rank of ``key`` within each group (ascending)."""
    order = np.lexsort((key, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, len(group)]))
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = np.arange(len(group)) - first
    return rank


def price_bands(leaf: np.ndarray, price: np.ndarray) -> np.ndarray:
    """Tertile of each price within its leaf: 0 budget, 1 mid, 2 premium."""
    rank = rank_within(leaf, price)
    size = np.bincount(leaf)[leaf]
    return np.minimum(3 * rank // size, 2).astype(np.int64)


def _launch_dates(rng: np.random.Generator, rank: np.ndarray, start: int, end: int) -> np.ndarray:
    """Most items launched before or during the period, some in its last 14 days.

    The most popular item of each leaf is always an old one, so every leaf can be browsed from day one.
    """
    n = len(rank)
    old = rng.uniform(start - 540 * DAY, end - NEW_DAYS * DAY, n)
    new = rng.uniform(end - NEW_DAYS * DAY, end - DAY, n)
    created = np.where(rng.random(n) < NEW_SHARE, new, old)
    created[rank == 0] = rng.uniform(start - 540 * DAY, start - DAY, int((rank == 0).sum()))
    return created.astype(np.int64)


def _cap(text: str) -> str:
    """Capitalise lower-case words for a title (keeps ``USB-C``, ``350 ml`` and Chinese as they are)."""
    return " ".join(w[:1].upper() + w[1:] if w[:1].islower() else w for w in text.split())


def _en_text(leaf: Leaf, brand: str, w: dict[str, int], adjectives: tuple[str, ...], use: str) -> tuple[str, str]:
    noun, material = leaf.en.nouns[w["noun"]], leaf.en.materials[w["material"]]
    feature, feature2 = leaf.en.features[w["feature"]], leaf.en.features[w["feature2"]]
    adj, colour = adjectives[w["adj"]], COLOURS[0][w["colour"]] if leaf.coloured else ""
    titles = (
        f"{brand} {_cap(f'{adj} {colour} {material} {noun}')} - {feature}",
        f"{brand} {_cap(noun)}, {_cap(material)}, {feature}" + (f", {_cap(colour)}" if colour else ""),
        f"{_cap(f'{adj} {material} {noun}')} by {brand} ({feature}, {feature2})",
    )
    description = f"{adj[0].upper()}{adj[1:]} {material} {noun} from {brand}. "
    description += f"Available in {colour}. " if colour else ""
    description += f"{feature[0].upper()}{feature[1:]} and {feature2}. {use}"
    return " ".join(titles[w["template"]].split()), description


def _zh_text(leaf: Leaf, brand: str, w: dict[str, int], adjectives: tuple[str, ...], use: str) -> tuple[str, str]:
    noun, material = leaf.zh.nouns[w["noun"]], leaf.zh.materials[w["material"]]
    feature, feature2 = leaf.zh.features[w["feature"]], leaf.zh.features[w["feature2"]]
    adj, colour = adjectives[w["adj"]], COLOURS[1][w["colour"]] if leaf.coloured else ""
    titles = (
        f"{brand} {adj}{colour}{material}{noun} {feature}",
        f"{brand} {noun} {material} {feature} {feature2}",
        f"【{feature}】{brand} {adj}{material}{noun}",
    )
    description = f"{brand}出品的{adj}{material}{noun}。" + (f"有{colour}可选。" if colour else "")
    description += f"{feature}，{feature2}。{use}"
    return titles[w["template"]], description


def write_text(catalog: Catalog, items: np.ndarray | None = None) -> None:
    """Fill ``title`` and ``description`` from each item's leaf vocabulary in its language
    (of every item, or of the item indices in ``items``)."""
    slots = {k: v.tolist() for k, v in catalog.words.items()}
    for i in range(len(catalog)) if items is None else np.asarray(items).tolist():
        leaf = LEAVES[catalog.leaf[i]]
        w = {k: v[i] for k, v in slots.items()}
        lang = 1 if catalog.zh[i] else 0
        adjectives, use = ADJECTIVES[leaf.top][lang], USES[leaf.top][lang][w["use"]]
        write = _zh_text if lang else _en_text
        catalog.title[i], catalog.description[i] = write(leaf, catalog.brand[i], w, adjectives, use)
