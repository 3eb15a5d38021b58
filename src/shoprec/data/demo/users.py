"""Demo shoppers: latent tastes over categories, a price band, a language and an activity level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shoprec.data.demo.catalog import BANDS
from shoprec.data.demo.words import LEAVES, TOP_POPULARITY, TOPS

EXPLORE = 0.12
"""Share of a shopper's browsing that ignores their tastes (drawn from overall category popularity)."""
BAND_SHARE = np.array([0.35, 0.45, 0.2])
"""Shoppers per price band: budget, mid, premium."""
ZH_USERS = 0.22
"""Share of shoppers who prefer Chinese listings."""
SESSIONS_PER_DAY = 0.042
"""Median-ish visits per shopper per day; activity is log-normal around it (a heavy tail)."""


@dataclass
class Users:
    """Aligned per-user arrays (user index ``u`` everywhere)."""

    user_id: np.ndarray  # (n,) object, "U00001"...
    taste: np.ndarray  # (n, n_leaves) float, the planted taste; rows sum to 1
    top_weight: np.ndarray  # (n, n_tops) float, taste summed per top category
    pref: np.ndarray  # (n, n_leaves) float, what they browse: taste mixed with exploration
    band: np.ndarray  # (n,) int, index into BANDS
    zh: np.ndarray  # (n,) bool
    activity: np.ndarray  # (n,) float, expected sessions per day

    def __len__(self) -> int:
        return len(self.user_id)

    def truth(self) -> dict[str, dict]:
        """``user_id -> {categories, weights, leaves, price_band, language}`` for ``truth.json``."""
        out = {}
        paths = [leaf.path for leaf in LEAVES]
        for u, uid in enumerate(self.user_id):
            tops = np.flatnonzero(self.top_weight[u] > 0)
            tops = tops[np.argsort(-self.top_weight[u, tops], kind="stable")]
            leaves = np.argsort(-self.taste[u], kind="stable")[:3]
            leaves = leaves[self.taste[u, leaves] >= 0.1]
            out[uid] = {
                "categories": [TOPS[t] for t in tops],
                "weights": [round(float(self.top_weight[u, t]), 3) for t in tops],
                "leaves": [paths[leaf] for leaf in leaves],
                "price_band": BANDS[self.band[u]],
                "language": "zh" if self.zh[u] else "en",
            }
        return out


def build_users(rng: np.random.Generator, n_users: int) -> Users:
    """Each shopper likes 1-3 top categories (popular ones more often) and a few leaves in them."""
    n_tops, n_leaves = len(TOPS), len(LEAVES)
    top_of_leaf = np.array([TOPS.index(leaf.top) for leaf in LEAVES])
    popularity = np.array([TOP_POPULARITY[t] for t in TOPS])
    n_liked = rng.choice([1, 2, 3], n_users, p=[0.4, 0.4, 0.2])
    keys = np.log(popularity) + rng.gumbel(size=(n_users, n_tops))  # Gumbel top-k = sampling without replacement
    ranks = np.argsort(np.argsort(-keys, axis=1), axis=1)
    liked = ranks < n_liked[:, None]
    top_weight = rng.gamma(2.0, size=(n_users, n_tops)) * liked
    top_weight /= top_weight.sum(axis=1, keepdims=True)
    leaf_weight = rng.gamma(0.6, size=(n_users, n_leaves)) + 1e-9
    per_top = leaf_weight @ np.eye(n_tops)[top_of_leaf]  # (n_users, n_tops)
    taste = top_weight[:, top_of_leaf] * leaf_weight / per_top[:, top_of_leaf]
    overall = popularity[top_of_leaf] / np.bincount(top_of_leaf)[top_of_leaf]
    pref = (1 - EXPLORE) * taste + EXPLORE * overall / overall.sum()
    return Users(
        user_id=np.array([f"U{i:05d}" for i in range(1, n_users + 1)], dtype=object),
        taste=taste,
        top_weight=top_weight,
        pref=pref,
        band=rng.choice(len(BAND_SHARE), n_users, p=BAND_SHARE),
        zh=rng.random(n_users) < ZH_USERS,
        activity=SESSIONS_PER_DAY * rng.lognormal(0.0, 1.0, n_users),
    )
