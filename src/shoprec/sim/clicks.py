"""The simulated shoppers' true utility for every item, and the position-biased click model.

Utility (natural-log scale), from the same latent factors the demo shop's browsing multiplies
(:mod:`shoprec.data.demo.behaviour`)::

    u(s, i) = log(L * pref[s, leaf(i)])                  taste for the item's leaf category
            + log BAND_AFFINITY[band(s), band(i)]        price band fit
            + log LANG_AFFINITY[lang(s), lang(i)]        listing language fit
            + 0.25 * quality(i)                          the item's latent quality (as in the funnel)

``pref`` is the shopper's taste over the L leaf categories mixed with 12 % exploration (so no
leaf is at minus infinity); ``L * pref`` is 1 for a leaf liked as much as average. The within-leaf
popularity the generator also uses is exposure, not taste, and is left out.

Clicks: a shopper shown a list clicks the item at slot ``j`` (0-based) with probability
``theta_j * sigmoid(a * u + b)``, ``theta_j = (1 + j) ** -eta`` (examination falls with the slot),
independently per slot; a clicked item is bought with probability ``sigmoid(a * u + buy)``.
So the expected click-through of any list for a shopper is known exactly
(:meth:`ClickModel.expected_ctr`): the truth that online estimates are judged against.

>>> model = ClickModel(np.zeros((1, 3)))
>>> round(float(model.expected_ctr(0, np.array([0, 1, 2]))), 4)
0.0125
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shoprec.data.demo.behaviour import BAND_AFFINITY, LANG_AFFINITY
from shoprec.data.demo.catalog import Catalog
from shoprec.data.demo.users import Users

QUALITY = 0.25
"""Weight of an item's latent quality in the utility (the demo funnel's click appeal uses the same)."""


def utility(users: Users, catalog: Catalog) -> np.ndarray:
    """(n_users, n_items) true utility ``u(s, i)`` (see the module docstring)."""
    n_leaves = users.pref.shape[1]
    zh_user, zh_item = users.zh.astype(np.int64), catalog.zh.astype(np.int64)
    taste = np.log(n_leaves * users.pref[:, catalog.leaf])  # (n_users, n_items)
    band = np.log(BAND_AFFINITY[users.band[:, None], catalog.band[None, :]])
    lang = np.log(LANG_AFFINITY[zh_user[:, None], zh_item[None, :]])
    return taste + band + lang + QUALITY * catalog.quality[None, :]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class ClickModel:
    """Position-biased clicks and purchases from a utility matrix (rows shoppers, columns items)."""

    utility: np.ndarray
    """(n_users, n_items) true utility."""
    a: float = 1.0
    """Slope of the click probability in utility."""
    b: float = -4.0
    """Offset: sigmoid(b) is the attractiveness of an item of average utility (u = 0)."""
    eta: float = 0.7
    """Position bias: slot ``j`` is examined with probability ``(1 + j) ** -eta``."""
    buy: float = -2.5
    """Offset of the purchase probability: a clicked item is bought with probability ``sigmoid(a * u + buy)``."""
    attraction: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.attraction = sigmoid(self.a * self.utility + self.b)

    def theta(self, k: int) -> np.ndarray:
        """(k,) examination probability per slot."""
        return (1.0 + np.arange(k)) ** -self.eta

    def click_probabilities(self, user: int, items: np.ndarray) -> np.ndarray:
        """(len(items),) probability that each shown item is clicked at its slot."""
        return self.theta(len(items)) * self.attraction[user, items]

    def buy_probabilities(self, user: int, items: np.ndarray) -> np.ndarray:
        """(len(items),) probability that each item, once clicked, is bought."""
        return sigmoid(self.a * self.utility[user, items] + self.buy)

    def expected_ctr(self, user: int, items: np.ndarray) -> float:
        """Expected clicks per shown item of this list for this shopper (0 for an empty list)."""
        return float(self.click_probabilities(user, items).mean()) if len(items) else 0.0

    def act(self, user: int, items: np.ndarray, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which shown items are clicked and which bought, decided by ``uniforms`` ((>= len(items), 2)
        draws in [0, 1): the first column decides the click, the second the purchase)."""
        n = len(items)
        clicked = uniforms[:n, 0] < self.click_probabilities(user, items)
        bought = clicked & (uniforms[:n, 1] < self.buy_probabilities(user, items))
        return clicked, bought

    def best_ctr(self, user: int, k: int) -> float:
        """The highest expected CTR any list of ``k`` items can reach for the shopper (the oracle:
        the ``k`` most attractive items, best first)."""
        top = np.sort(self.attraction[user])[::-1][:k]
        return float((self.theta(len(top)) * top).mean())
