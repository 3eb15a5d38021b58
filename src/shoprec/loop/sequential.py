"""An always-valid sequential test of two click-through (or conversion) rates: the mixture SPRT.

A fixed-horizon test (a z-test read once, at a sample size chosen in advance) loses its error rate
when it is read every minute and stopped at the first significant look: with 100 looks at two equal
arms, a 5% z-test declares a winner in about a third of the experiments. The mixture sequential
probability ratio test (mSPRT; Robbins 1970, Johari, Koomen, Pekelis and Walsh, "Always valid
inference", Operations Research 2022) keeps its error rate however often it is read.

The statistic. Arm A (the control) has ``k_a`` successes in ``n_a`` trials, arm B (the challenger)
``k_b`` in ``n_b``; the estimate is ``d = k_b/n_b - k_a/n_a`` with variance
``v = p_a(1-p_a)/n_a + p_b(1-p_b)/n_b`` (``p = (k+1)/(n+2)``, so that an arm with no clicks yet
does not read as certain) and information ``I = 1/v``. Against the null ``theta = theta0`` the
likelihood ratio of the normal approximation, mixed over alternatives ``theta ~ N(theta0, tau^2)``, is::

    Lambda = (1 + tau^2 I)^(-1/2) * exp(tau^2 I^2 (d - theta0)^2 / (2 (1 + tau^2 I)))

Under the null it is a nonnegative martingale with mean 1, so by Ville's inequality
``P(Lambda ever >= 1/alpha) <= alpha``: the test may be read after every batch, or every minute,
and stopped whenever it crosses.

What it gives, at level ``alpha`` (default 0.05):

- an always-valid p-value ``p = min over looks of 1/Lambda(0)``: the chance that two equal arms
  ever give ``p <= alpha`` is at most ``alpha`` (the type I error, two-sided);
- an always-valid confidence sequence for ``theta = p_b - p_a``: the values ``theta0`` with
  ``Lambda(theta0) < 1/alpha``, intersected over looks; it covers the true difference at every look
  at once with probability at least ``1 - alpha``, so the chance of declaring the worse arm the
  better one is at most ``alpha`` too;
- a decision: ``b_better`` once the interval lies above 0, ``a_better`` once below, ``equivalent``
  (optional) once it lies inside ``(-equivalence, +equivalence)``; ``continue`` otherwise.

The mixture variance ``tau^2``. ``tau`` (default 0.01, an absolute difference of one percentage
point of click-through) sets which differences the test is quickest to detect: it spends its error
budget on differences of about ``tau`` and larger. Much smaller ``tau`` makes large differences slow
to confirm; much larger makes small ones slow. It must be fixed before the data are seen (chosen
from the data it would no longer be a mixture martingale). For rates of a few percent and relative
lifts of 10-30%, 0.005-0.02 is the useful range.

Assumptions: trials are independent Bernoulli draws with a constant rate per arm, and counts large
enough for the normal approximation (no decision before ``min_trials`` per arm; the threshold is
very strict early anyway). Shown items of one list, or one shopper's many lists, are correlated in
practice, which makes the test somewhat optimistic; a constant drift over time (weekday effects)
is fine as long as it hits both arms alike.

>>> test = Sequential(alpha=0.05, tau=0.01)
>>> look = test.update(n_a=20_000, k_a=1_000, n_b=20_000, k_b=1_300)   # 5.0% vs 6.5%
>>> look.decision, round(look.estimate, 3), look.p_value < 0.05
('b_better', 0.015, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

DECISIONS = ("continue", "b_better", "a_better", "equivalent")


def _variance(n_a, k_a, n_b, k_b) -> np.ndarray:
    """Variance of ``p_b - p_a`` with the rates shrunk by one pseudo-success and one pseudo-failure."""
    n_a, k_a, n_b, k_b = (np.asarray(v, dtype=float) for v in (n_a, k_a, n_b, k_b))
    pa, pb = (k_a + 1) / (n_a + 2), (k_b + 1) / (n_b + 2)
    return pa * (1 - pa) / np.maximum(n_a, 1.0) + pb * (1 - pb) / np.maximum(n_b, 1.0)


def _estimate(n_a, k_a, n_b, k_b) -> np.ndarray:
    n_a, k_a, n_b, k_b = (np.asarray(v, dtype=float) for v in (n_a, k_a, n_b, k_b))
    return k_b / np.maximum(n_b, 1.0) - k_a / np.maximum(n_a, 1.0)


def log_mixture_ratio(n_a, k_a, n_b, k_b, tau: float = 0.01, theta0: float = 0.0) -> np.ndarray:
    """``log Lambda``: the log mixture likelihood ratio of ``p_b - p_a = theta0`` (see the module doc).

    Counts are cumulative; arrays broadcast together (one value per look, per run, ...).
    """
    info = 1.0 / _variance(n_a, k_a, n_b, k_b)
    t2i = tau * tau * info
    d = _estimate(n_a, k_a, n_b, k_b) - theta0
    return -0.5 * np.log1p(t2i) + t2i * info * d * d / (2 * (1 + t2i))


def confidence_half_width(n_a, k_a, n_b, k_b, alpha: float = 0.05, tau: float = 0.01) -> np.ndarray:
    """Half-width of this look's always-valid interval for ``p_b - p_a`` (centred on the estimate)."""
    info = 1.0 / _variance(n_a, k_a, n_b, k_b)
    t2i = tau * tau * info
    return np.sqrt((1 + t2i) / (t2i * info) * (np.log1p(t2i) + 2 * math.log(1 / alpha)))


def run(n_a, k_a, n_b, k_b, alpha: float = 0.05, tau: float = 0.01, min_trials: int = 100) -> dict[str, np.ndarray]:
    """The test over a series of looks along the last axis (counts cumulative), vectorised.

    Returns arrays of the counts' shape: ``estimate``; ``p_value`` (running minimum of ``1/Lambda``);
    ``low``/``high`` (the running intersection of the intervals); ``rejected`` (``p_value <= alpha``).
    Looks before both arms have ``min_trials`` trials count for nothing (p-value 1, interval [-1, 1]).

    >>> n = np.array([[1000, 2000, 4000]])
    >>> out = run(n, n * 0.05, n, n * 0.05)
    >>> bool(out["rejected"].any())
    False
    """
    n_a, k_a, n_b, k_b = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (n_a, k_a, n_b, k_b)))
    ready = (n_a >= min_trials) & (n_b >= min_trials)
    estimate = _estimate(n_a, k_a, n_b, k_b)
    log_lr = np.where(ready, log_mixture_ratio(n_a, k_a, n_b, k_b, tau), 0.0)
    p_value = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)), axis=-1)
    half = np.where(ready, confidence_half_width(n_a, k_a, n_b, k_b, alpha, tau), np.inf)
    low = np.maximum.accumulate(np.maximum(estimate - half, -1.0), axis=-1)
    high = np.minimum.accumulate(np.minimum(estimate + half, 1.0), axis=-1)
    return {"estimate": estimate, "p_value": p_value, "low": low, "high": high, "rejected": p_value <= alpha}


@dataclass(frozen=True)
class Look:
    """The test after one look at cumulative counts (arm A the control, arm B the challenger)."""

    n_a: int
    k_a: int
    n_b: int
    k_b: int
    estimate: float
    """``k_b/n_b - k_a/n_a``."""
    low: float
    high: float
    """The always-valid interval for ``p_b - p_a`` (intersected over looks so far)."""
    p_value: float
    """Always-valid p-value of ``p_a == p_b`` (the smallest so far)."""
    decision: str
    """One of :data:`DECISIONS`."""

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Sequential:
    """The mSPRT over a stream of cumulative counts; read it as often as you like.

    ``alpha``: the chance that two equal arms are ever declared different, and the chance that the
    interval ever misses the true difference. ``tau``: the mixture's standard deviation, in absolute
    rate (see the module doc). ``min_trials``: trials per arm before any decision. ``equivalence``:
    when set, the test also stops (``equivalent``) once the interval lies inside ``(-eq, +eq)``.

    >>> test = Sequential()
    >>> test.update(500, 20, 500, 22).decision
    'continue'
    """

    alpha: float = 0.05
    tau: float = 0.01
    min_trials: int = 100
    equivalence: float | None = None
    history: list[Look] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {self.alpha}")
        if not self.tau > 0:
            raise ValueError(f"tau (the mixture's standard deviation) must be positive, not {self.tau}")
        if self.equivalence is not None and not self.equivalence > 0:
            raise ValueError(f"equivalence must be a positive difference or None, not {self.equivalence}")

    def update(self, n_a: int, k_a: int, n_b: int, k_b: int) -> Look:
        """One look at the cumulative counts: trials ``n`` and successes ``k`` of arm A and arm B."""
        for name, n, k in (("A", n_a, k_a), ("B", n_b, k_b)):
            if not 0 <= k <= n:
                raise ValueError(f"arm {name}: successes ({k}) must be between 0 and trials ({n})")
        last = self.history[-1] if self.history else None
        if last is not None and (n_a < last.n_a or n_b < last.n_b):
            raise ValueError("counts are cumulative: trials may not go down between looks")
        estimate = float(_estimate(n_a, k_a, n_b, k_b))
        p_value, low, high = 1.0, -1.0, 1.0
        if n_a >= self.min_trials and n_b >= self.min_trials:
            p_value = float(min(1.0, np.exp(-log_mixture_ratio(n_a, k_a, n_b, k_b, self.tau))))
            half = float(confidence_half_width(n_a, k_a, n_b, k_b, self.alpha, self.tau))
            low, high = max(estimate - half, -1.0), min(estimate + half, 1.0)
        if last is not None:
            p_value = min(p_value, last.p_value)
            joint = max(low, last.low), min(high, last.high)
            if joint[0] <= joint[1]:  # an empty intersection (the model is off): keep this look's interval
                low, high = joint
        look = Look(int(n_a), int(k_a), int(n_b), int(k_b), estimate, low, high, p_value, self._decide(low, high))
        self.history.append(look)
        return look

    def _decide(self, low: float, high: float) -> str:
        if low > 0:
            return "b_better"
        if high < 0:
            return "a_better"
        if self.equivalence is not None and -self.equivalence < low and high < self.equivalence:
            return "equivalent"
        return "continue"

    @property
    def last(self) -> Look | None:
        return self.history[-1] if self.history else None
