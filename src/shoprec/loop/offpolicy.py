"""Counterfactual click-through of a policy from logged impressions: IPS and self-normalised IPS.

Each logged list ``i`` showed item ``L[i, j]`` at slot ``j`` with propensity ``p[i, j]`` (its
probability there under the logging policy, :mod:`~shoprec.loop.explore`) and a click ``c[i, j]``.
The target policy would show that item at that slot with probability ``t[i, j]``. Item-position
matching weighs each click by ``w[i, j] = t[i, j] / p[i, j]``:

* IPS: ``sum(c * w) / sum(slots)``. Unbiased for the target's click-through per shown slot when
  clicks depend on the item and its slot only (a position-based click model) and the logging policy
  gave a positive probability to every (item, slot) the target would show.
* SNIPS: per slot ``j``, ``sum_i c w / sum_i w``, averaged over slots as often as they are shown.
  Slightly biased, lower variance, and immune to a constant scaling of the weights.

Where the target shows (item, slot) pairs the logging policy could not show (no support), IPS
counts them as never clicked and is biased down, and SNIPS assumes they behave like the supported
ones: :attr:`Estimate.unsupported` is the share of the target's slot mass without support, and
:attr:`Estimate.warning` says so when it is not 0.

Intervals: normal approximation over impressions (delta method for SNIPS), or a percentile
bootstrap over impressions (``bootstrap=`` replicates). ``Estimate.ess``: the effective number of
impressions, ``(sum W)^2 / sum W^2`` with ``W[i] = sum_j w[i, j]``: far below the impressions
when the target differs much from the logging policy.

>>> import numpy as np
>>> p = np.array([[0.9, 0.1], [0.9, 0.1]]); c = np.array([[1, 0], [0, 1]]); t = np.array([[1.0, 0], [1.0, 1.0]])
>>> round(ips(p, c, t).value, 3)
2.778
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shoprec.loop.explore import Explorer
from shoprec.loop.intervals import Z95

UNSUPPORTED_WARNING = (
    "{share:.1%} of the target's slots have no logged support (the logging policy could not show those items "
    "there): IPS counts them as unclicked and is biased down, SNIPS assumes they are as good as the rest"
)


@dataclass(frozen=True)
class Estimate:
    """A counterfactual click-through per shown slot with its interval."""

    method: str  # "ips" or "snips"
    value: float
    low: float
    high: float
    se: float  # normal-approximation standard error (also given with a bootstrap interval)
    impressions: int
    slots: int
    ess: float  # effective number of impressions
    unsupported: float  # share of the target's slot mass the logging policy gave no probability
    interval: str = "normal"  # "normal" or "bootstrap"

    @property
    def warning(self) -> str | None:
        return UNSUPPORTED_WARNING.format(share=self.unsupported) if self.unsupported > 0 else None

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def ips(propensities, clicks, target, *, unsupported=0.0, z: float = Z95, bootstrap: int = 0, rng=None) -> Estimate:
    """IPS click-through per slot; arguments as in :func:`estimate`."""
    return estimate(propensities, clicks, target, "ips", unsupported=unsupported, z=z, bootstrap=bootstrap, rng=rng)


def snips(propensities, clicks, target, *, unsupported=0.0, z: float = Z95, bootstrap: int = 0, rng=None) -> Estimate:
    """Self-normalised IPS click-through per slot; arguments as in :func:`estimate`."""
    return estimate(propensities, clicks, target, "snips", unsupported=unsupported, z=z, bootstrap=bootstrap, rng=rng)


def evaluate(propensities, clicks, target, **options) -> dict[str, Estimate]:
    """Both estimates, ``{"ips": ..., "snips": ...}``; options as in :func:`estimate`."""
    return {m: estimate(propensities, clicks, target, m, **options) for m in ("ips", "snips")}


def estimate(
    propensities,
    clicks,
    target,
    method: str = "ips",
    *,
    unsupported=0.0,
    z: float = Z95,
    bootstrap: int = 0,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """The target's click-through per shown slot from logged lists.

    ``propensities``, ``clicks``, ``target``: ``(N, K)`` arrays or N lists (lists may differ in
    length: shorter ones are padded and their missing slots ignored) of the logging propensity, the
    click and the target's probability of each logged (item, slot). ``unsupported``: per list (or
    one number) the share of the target's slot mass the logging policy gave no probability.
    ``bootstrap``: number of bootstrap replicates for a percentile interval (0: normal interval).
    """
    if method not in ("ips", "snips"):
        raise ValueError(f"method must be 'ips' or 'snips', not {method!r}")
    p, mask = _padded(propensities, 1.0)
    c, _ = _padded(clicks, 0.0)
    t, _ = _padded(target, 0.0)
    if not (p.shape == c.shape == t.shape):
        raise ValueError(f"propensities, clicks and target differ in shape: {p.shape}, {c.shape}, {t.shape}")
    n = p.shape[0]
    if n == 0:
        raise ValueError("no logged impressions to estimate from")
    if np.any(p[mask] <= 0) or np.any(p[mask] > 1):
        raise ValueError("logged propensities must be in (0, 1]: every shown item had a positive chance of being shown")
    w = np.where(mask, t / p, 0.0)  # (N, K)
    cw = w * c
    sizes = mask.sum(axis=1).astype(float)  # slots per list
    value, se = (_ips if method == "ips" else _snips)(cw, w, mask, sizes)
    low, high, kind = value - z * se, value + z * se, "normal"
    if bootstrap:
        counts = (rng or np.random.default_rng()).multinomial(n, np.full(n, 1.0 / n), size=bootstrap)  # (B, N)
        reps = _replicates(method, counts, cw, w, mask, sizes)
        alpha = 2 * (1 - _normal_cdf(z))
        low, high = (float(v) for v in np.nanquantile(reps, [alpha / 2, 1 - alpha / 2]))
        kind = "bootstrap"
    totals = w.sum(axis=1)
    ess = float(totals.sum() ** 2 / max((totals**2).sum(), 1e-300)) if totals.any() else 0.0
    share = float(np.mean(np.broadcast_to(np.asarray(unsupported, dtype=float), (n,))))
    return Estimate(method, float(value), float(low), float(high), float(se), n, int(sizes.sum()), ess, share, kind)


def _ips(cw, w, mask, sizes) -> tuple[float, float]:
    v = cw.sum(axis=1)  # (N,) clicks weighed per list
    value = v.sum() / sizes.sum()
    se = np.sqrt(len(v) * v.var(ddof=1) if len(v) > 1 else 0.0) / sizes.sum()
    return value, float(se)


def _snips(cw, w, mask, sizes) -> tuple[float, float]:
    shown = mask.sum(axis=0).astype(float)  # (K,) lists showing slot j
    a, b = cw.sum(axis=0), w.sum(axis=0)
    ok = b > 0
    rate = np.divide(a, b, out=np.zeros_like(a), where=ok)  # (K,) per-slot click-through
    value = (shown[ok] * rate[ok]).sum() / shown[ok].sum() if ok.any() else float("nan")
    mean_b = np.divide(b, shown, out=np.ones_like(b), where=ok)
    psi = ((cw - rate * w) / mean_b * ok).sum(axis=1) / shown[ok].sum() if ok.any() else np.zeros(len(w))
    return float(value), float(np.sqrt((psi**2).sum()))


def _replicates(method, counts, cw, w, mask, sizes) -> np.ndarray:
    if method == "ips":
        return (counts @ cw.sum(axis=1)) / (counts @ sizes)
    shown = counts @ mask.astype(float)  # (B, K)
    a, b = counts @ cw, counts @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(b > 0, a / b, np.nan)
        used = np.where(b > 0, shown, 0.0)
        return np.nansum(used * rate, axis=1) / used.sum(axis=1)


def _padded(rows, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows of possibly different lengths as an (N, K) float array and its mask of real slots."""
    if isinstance(rows, np.ndarray) and rows.ndim == 2:
        return rows.astype(float), np.ones(rows.shape, dtype=bool)
    rows = [np.asarray(r, dtype=float) for r in rows]
    k = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), k), fill)
    mask = np.zeros((len(rows), k), dtype=bool)
    for i, r in enumerate(rows):
        out[i, : len(r)], mask[i, : len(r)] = r, True
    return out, mask


def _normal_cdf(z: float) -> float:
    from statistics import NormalDist

    return NormalDist().cdf(z)


def policy_terms(
    shown: Sequence,
    logging_ranking: Sequence,
    logging: Explorer,
    target_ranking: Sequence,
    target: Explorer,
) -> tuple[np.ndarray, float]:
    """For one logged list ``shown`` (served by ``logging`` over ``logging_ranking``): the target's
    probability of each shown item at its slot when the target serves ``target`` over
    ``target_ranking`` (``Explorer(share=0)``: its ranking's top k, deterministic), and the share of
    the target's slot mass that the logging policy could not have shown (no support).
    """
    k = len(shown)
    t = target.target_probabilities(list(target_ranking), list(shown))
    m_t = target.candidates(len(target_ranking), k)
    p_t = target.marginals(m_t, k)  # (M_t, k')
    m_l = logging.candidates(len(logging_ranking), k)
    p_l = logging.marginals(m_l, k)
    rank_l = {item: r for r, item in enumerate(list(logging_ranking)[:m_l])}
    cols = min(p_t.shape[1], p_l.shape[1])
    logged = np.zeros(p_t.shape)  # logging probability of each target (rank, slot)
    for r, item in enumerate(list(target_ranking)[:m_t]):
        if (lr := rank_l.get(item)) is not None:
            logged[r, :cols] = p_l[lr, :cols]
    return t, float(p_t[logged <= 0].sum() / max(p_t.shape[1], 1))
