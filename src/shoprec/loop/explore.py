"""Exploration: a small share of a list's slots shows items the ranking would not put there, and
every shown item carries the exact probability it had of being shown at its slot (its propensity).

The policy (:class:`Explorer`), over the ranked candidates of the serving version (the best
``M = k + pool`` of them, rank 0 first):

1. each of the ``k`` slots independently becomes an exploration slot with probability ``share``;
2. ``n`` distinct candidates (``n`` = the number of exploration slots) are drawn uniformly from all
   ``M``, and fill the exploration slots in draw order;
3. the other slots, in order, take the best ranked candidates not drawn.

Why this design rather than sequential Thompson sampling with Monte Carlo propensities: the
probability of rank ``r`` at slot ``j`` has a closed form (:meth:`Explorer.marginals`; an
exploration slot shows each candidate with probability ``1 / M``, an ordinary slot's rank follows a
binomial count of earlier exploration slots and a hypergeometric count of better-ranked candidates
drawn), so the logged propensities are exact, not replay estimates whose noise inverse weights would
magnify; and every candidate has probability at least ``share / M`` at every slot, the support
off-policy evaluation needs: a version whose list comes from these ``M`` candidates, in any order,
can be evaluated from these logs (:mod:`~shoprec.loop.offpolicy`), with weights at most ``M / share``.
Uniform draws spend exploration evenly on the pool; tilting them toward promising sources (Thompson
sampling over sources) would lose the closed form and shrink the support of the rest, and is left
out on purpose.

With ``share`` 0.05 and ``k`` 10, 60% of lists are exactly the ranking's top 10 and the expected
number of exploration slots per list is 0.5.

>>> import numpy as np
>>> explorer = Explorer(share=0.1, pool=5)
>>> p = explorer.marginals(15, 10)          # (M, k): P[rank r shown at slot j]
>>> p.shape, bool(np.allclose(p.sum(axis=0), 1.0)), round(float(p[0, 0]), 3)
((15, 10), True, 0.853)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import gammaln


@dataclass(frozen=True)
class Explorer:
    """Reserve a share of a list's slots for exploration, with exact propensities.

    >>> import numpy as np
    >>> explorer = Explorer(share=0.2, pool=20)
    >>> items, sources, propensities, explored = explorer.apply(
    ...     [f"i{n}" for n in range(30)], np.linspace(1, 0, 30), ["als"] * 30, k=5, rng=np.random.default_rng(0))
    >>> len(items), all(0 < p <= 1 for p in propensities)
    (5, True)
    """

    share: float = 0.05
    """Probability that each slot is an exploration slot (0: the ranking as is)."""
    pool: int = 40
    """Candidates beyond the ``k`` shown that exploration slots may draw from."""
    seed: int | None = None
    """Seed of :meth:`rng` (None: fresh entropy), for reproducible simulations."""

    def __post_init__(self) -> None:
        if not 0 <= self.share < 1:
            raise ValueError(f"exploration share must be in [0, 1), not {self.share}")
        if self.pool < 1:
            raise ValueError(f"exploration pool must be at least 1 candidate, not {self.pool}")

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    def candidates(self, available: int, k: int) -> int:
        """How many of ``available`` ranked candidates the policy uses for a list of ``k``."""
        return min(available, k + self.pool)

    def marginals(self, n_candidates: int, k: int) -> np.ndarray:
        """Exact ``P[r, j]``: probability that rank ``r`` is shown at slot ``j``, shape ``(M, k')``
        with ``M = n_candidates`` (the candidates the policy uses) and ``k' = min(k, M)``. Each
        column sums to 1. Cached per ``(share, M, k)``; do not modify the returned array.

        Slot ``j`` explores with probability ``share`` and then shows each rank with probability
        ``1 / M``. Otherwise it is the ``g = j - b``-th ordinary slot, ``b ~ Binomial(j, share)``
        earlier slots explored, ``n = b + a`` candidates were drawn (``a ~ Binomial(k - 1 - j,
        share)`` later exploration slots), and it shows rank ``r`` when ``r`` was not drawn and
        exactly ``r - g`` of the ranks above it were (hypergeometric).
        """
        return _marginals(self.share, n_candidates, min(k, n_candidates))

    def draw(self, n_candidates: int, k: int, rng: np.random.Generator, size: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``size`` independent lists: ``(ranks, explored)``, both ``(size, k')`` with ``k' = min(k, M)``."""
        m, k = n_candidates, min(k, n_candidates)
        explored = rng.random((size, k)) < self.share  # (size, k)
        n = explored.sum(axis=1, keepdims=True)  # (size, 1)
        order = np.argsort(rng.random((size, m)), axis=1)  # (size, M) uniform permutation: the first n are drawn
        drawn = np.zeros((size, m), dtype=bool)
        np.put_along_axis(drawn, order, np.arange(m)[None, :] < n, axis=1)
        kept = np.argsort(drawn, axis=1, kind="stable")  # ranks not drawn first, best first
        ordinary = np.take_along_axis(kept, np.cumsum(~explored, axis=1) - 1, axis=1)
        explore = np.take_along_axis(order, np.maximum(np.cumsum(explored, axis=1) - 1, 0), axis=1)
        return np.where(explored, explore, ordinary), explored

    def choose(
        self, available: int, k: int, rng: np.random.Generator | None = None
    ) -> tuple[list[int], list[float], list[bool]]:
        """One list over ``available`` ranked candidates: the ranks shown (indices into the ranking),
        their propensities and which slots explored. Use it to reorder any per-item columns."""
        m = self.candidates(available, k)
        if m == 0:
            return [], [], []
        if self.share == 0:
            shown = list(range(min(k, m)))
            return shown, [1.0] * len(shown), [False] * len(shown)
        ranks, explored = self.draw(m, k, rng if rng is not None else self.rng())
        ranks, explored = ranks[0], explored[0]
        propensities = self.marginals(m, k)[ranks, np.arange(len(ranks))]
        return ranks.tolist(), propensities.tolist(), explored.tolist()

    def apply(
        self,
        items: list,
        scores,
        sources: list[str],
        k: int,
        rng: np.random.Generator | None = None,
    ) -> tuple[list, list[str], list[float], list[bool]]:
        """The shown list for ranked ``items`` (best first, with their ``scores``, unused by the
        uniform draw, and ``sources``): ``(items, sources, propensities, explored)`` for ``k`` slots."""
        if len(items) != len(sources) or len(items) != len(scores):
            raise ValueError(f"items, scores and sources differ in length: {len(items)}, {len(scores)}, {len(sources)}")
        ranks, propensities, explored = self.choose(len(items), k, rng)
        return [items[r] for r in ranks], [sources[r] for r in ranks], propensities, explored

    def target_probabilities(self, ranking: list, shown: list) -> np.ndarray:
        """For a target served by this policy over ``ranking``: the probability of each ``shown[j]``
        at slot ``j`` (0 for items outside the target's candidates), shape ``(len(shown),)``."""
        m = self.candidates(len(ranking), len(shown))
        p = self.marginals(m, len(shown))
        rank = {item: r for r, item in enumerate(ranking[:m])}
        out = np.zeros(len(shown))
        for j, item in enumerate(shown):
            r = rank.get(item)
            if r is not None and j < p.shape[1]:
                out[j] = p[r, j]
        return out


@lru_cache(maxsize=256)
def _marginals(s: float, m: int, k: int) -> np.ndarray:
    if s == 0 or k == 0:
        return np.eye(m, k)
    p = np.full((m, k), s / m)  # exploration slots: uniform over the candidates
    x = np.arange(k)[None, None, :]  # better-ranked candidates drawn
    for j in range(k):
        b = np.arange(j + 1)[:, None, None]  # earlier exploration slots
        a = np.arange(k - j)[None, :, None]  # later exploration slots
        g, n = j - b, b + a  # ordinary slot index, candidates drawn
        r = g + x  # the rank shown: r - g = x of the r better ranks were drawn, r was not
        ok = (x <= n) & (r < m) & (n - x <= m - 1 - r)
        log_w = (
            np.log1p(-s)
            + _log_binom_pmf(j, s, b)
            + _log_binom_pmf(k - 1 - j, s, a)
            - _log_comb(m, n)
            + _log_comb(r, x)
            + _log_comb(m - 1 - r, n - x)
        )
        np.add.at(p[:, j], np.broadcast_to(r, ok.shape)[ok], np.exp(log_w[ok]))
    return p


def _log_comb(n, k):
    n, k = np.maximum(n, 0), np.clip(k, 0, np.maximum(n, 0))  # invalid cells are masked by the caller
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def _log_binom_pmf(n: int, p: float, x):
    return _log_comb(n, x) + x * np.log(p) + (n - x) * np.log1p(-p)
