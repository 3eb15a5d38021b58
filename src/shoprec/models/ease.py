"""EASE^R: a shallow linear item-item autoencoder with a closed-form solution (Steck, WWW 2019).

The item-item weights ``B`` minimise ``|X - X B|^2 + reg |B|^2`` subject to ``diag(B) = 0``:
with ``P = (X^T X + reg I)^-1`` the answer is ``B = I - P / diag(P)`` (column ``j`` divided by
``P[j, j]``), diagonal zero. Scores are ``history @ B``. One dense matrix inversion replaces
training, so the cost is memory (``n^2 * 8`` bytes for ``n`` items with interactions) and about
``n^3`` floating-point operations: Amazon Beauty's 12,000 items peak at 2 GB and take 25-30 s
on two idle cores.

>>> model = create_model("ease", reg=100.0).fit(train)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.models.base import Recommender, _csr_arrays, _csr_from_arrays
from shoprec.models.itemknn import WEIGHTINGS
from shoprec.models.registry import register


@dataclass
class EASEConfig:
    reg: float = 100.0
    """L2 penalty on the item-item weights; must be > 0. 50-100 was best on Amazon Beauty (250:
    -3% NDCG@10); denser data usually wants more."""
    weighting: str = "binary"
    """User-item values of ``X``: ``binary``, ``count`` or ``weighted`` (by event type)."""
    max_items: int = 20_000
    """Refuse catalogues with more items with interactions than this: the float64 inverse needs
    ``n^2 * 8`` bytes (20,000 items: 3.2 GB) and time growing as ``n^3``."""

    def __post_init__(self) -> None:
        if not self.reg > 0:
            raise ModelError(f"ease: reg must be > 0 (it keeps X^T X + reg I invertible), got {self.reg!r}")
        if self.weighting not in WEIGHTINGS:
            raise ModelError(f"ease: weighting must be one of {', '.join(WEIGHTINGS)}, got {self.weighting!r}")
        if not isinstance(self.max_items, int | np.integer) or self.max_items < 1:
            raise ModelError(f"ease: max_items must be a whole number >= 1, got {self.max_items!r}")


@register
class EASE(Recommender):
    """Item-item regression in closed form; strong on sparse shopping data with up to ~20k items."""

    name = "ease"
    config_class = EASEConfig

    def _fit(self, dataset: Dataset) -> None:
        x = dataset.matrix(self.config.weighting)
        active = np.flatnonzero(x.getnnz(axis=0))  # items with interactions; others score 0
        n = len(active)
        if n > self.config.max_items:
            raise ModelError(
                f"ease: {n:,} items have interactions, above max_items={self.config.max_items:,}; the item-item "
                f"inverse would need {n * n * 8 / 1e9:.1f} GB of memory (n_items^2 * 8 bytes) and about n^3 "
                "operations. Raise max_items if the machine has the memory, or use 'itemknn' or 'als'"
            )
        self.active = active.astype(np.int64)
        self.history = x[:, active]  # (n_users, n) CSR
        self.weights = ease_weights(self.history, self.config.reg)

    def score(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        # one user (a request) by a slice: the same row, without fancy indexing's copy of the index
        rows = self.history[users[0] : users[0] + 1] if len(users) == 1 else self.history[users]  # (b, n) sparse
        out = np.zeros((rows.shape[0], self.n_items), dtype=np.float32)
        out[:, self.active] = rows @ self.weights  # (b, n) dense
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"active": self.active, "weights": self.weights, **_csr_arrays("history", self.history)}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.active = arrays["active"]
        self.weights = arrays["weights"]
        self.history = _csr_from_arrays("history", arrays, (self.n_users, len(self.active)))


def ease_weights(x: sp.spmatrix, reg: float) -> np.ndarray:
    """EASE item-item weights ``B`` (n, n) float32 for a (users, n) sparse matrix ``x``.

    Computed in float64 for stability: the Gram matrix is inverted in place through its Cholesky
    factor (half the work of a general inverse, and no second n x n buffer).
    """
    x = x.astype(np.float64)
    gram = (x.T @ x).toarray()  # (n, n) float64, symmetric
    gram[np.diag_indices_from(gram)] += reg
    # gram is symmetric: hand LAPACK whichever view is Fortran-ordered so it works in place.
    fortran = gram if gram.flags.f_contiguous else gram.T
    factor, info = lapack.dpotrf(fortran, lower=False, overwrite_a=True, clean=False)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelError(f"ease: X^T X + reg I is not positive definite (LAPACK info {info}); increase reg")
    p = np.asarray(inverse).T  # only the lower triangle (in C order) is valid
    _symmetrize_from_lower(p)
    p /= -np.diag(p).copy()[None, :]  # column j divided by -P[j, j]
    np.fill_diagonal(p, 0.0)
    return p.astype(np.float32)


def _symmetrize_from_lower(p: np.ndarray, block: int = 1024) -> None:
    """Copy the lower triangle of square ``p`` onto its upper triangle, in place, block by block."""
    n = len(p)
    for s in range(0, n, block):
        e = min(s + block, n)
        d = p[s:e, s:e]
        d[:] = np.tril(d) + np.tril(d, -1).T
        p[s:e, e:] = p[e:, s:e].T
