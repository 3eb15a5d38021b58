"""Off-policy estimates on synthetic logs from a known position-based click model.

Clicks: P(click item i at slot j) = theta[j] * u[i]. The logging policy explores over ranking ``a``;
the targets are other policies whose true click-through per slot is known exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.loop.explore import Explorer
from shoprec.loop.offpolicy import estimate, evaluate, ips, policy_terms, snips

K, N_ITEMS = 10, 80
LOGGING = Explorer(share=0.2, pool=40)


def _world(seed: int = 0):
    rng = np.random.default_rng(seed)
    u = rng.beta(1, 4, N_ITEMS)  # item utility
    theta = 1 / (1 + np.arange(K)) ** 0.8  # position bias
    a = np.argsort(-(u + rng.normal(0, 0.15, N_ITEMS)))  # the logging version's ranking
    pool = a[: LOGGING.candidates(N_ITEMS, K)]
    b = pool[np.argsort(-u[pool])]  # a better target: the same candidates by true utility
    return u, theta, a, b


def _true_ctr(policy: Explorer, ranking, u, theta) -> float:
    m = policy.candidates(len(ranking), K)
    p = policy.marginals(m, K)  # (M, K)
    return float((p * u[np.asarray(ranking)[:m], None] * theta[None, :]).sum() / K)


def _logs(seed: int, n: int, u, theta, a):
    rng = np.random.default_rng(seed)
    m = LOGGING.candidates(N_ITEMS, K)
    ranks, _ = LOGGING.draw(m, K, rng, size=n)
    items = a[ranks]  # (n, K)
    propensities = LOGGING.marginals(m, K)[ranks, np.arange(K)]
    clicks = rng.random((n, K)) < theta * u[items]
    return items, propensities, clicks


def _target_probs(policy: Explorer, ranking, items) -> np.ndarray:
    m = policy.candidates(len(ranking), K)
    p = policy.marginals(m, K)
    rank = np.full(N_ITEMS, -1)
    rank[np.asarray(ranking)[:m]] = np.arange(m)
    r = rank[items]
    return np.where(r >= 0, p[np.maximum(r, 0), np.arange(K)], 0.0)


@pytest.mark.parametrize(
    "target", [Explorer(share=0.0), Explorer(share=0.2, pool=40)], ids=["deterministic", "explored"]
)
def test_estimates_cover_the_true_ctr_of_another_policy(target):
    u, theta, a, b = _world()
    truth = _true_ctr(target, b, u, theta)
    logging_ctr = _true_ctr(LOGGING, a, u, theta)
    assert truth > logging_ctr + 0.01  # the target really differs
    _, unsupported = policy_terms(list(a[:K]), list(a), LOGGING, list(b), target)
    assert unsupported == 0.0
    results = {"ips": [], "snips": []}
    for seed in range(200):
        items, p, c = _logs(seed, 4000, u, theta, a)
        t = _target_probs(target, b, items)
        for name, e in evaluate(p, c, t).items():
            results[name].append((e.value, e.covers(truth)))
    for name, rows in results.items():
        values, covered = np.array([v for v, _ in rows]), np.mean([ok for _, ok in rows])
        assert covered >= 0.85, f"{name}: 95% interval covered the truth in {covered:.0%} of 200 seeds"
        assert abs(values.mean() - truth) < 0.1 * truth  # IPS unbiased; SNIPS nearly
    ips_sd = np.std([v for v, _ in results["ips"]])
    snips_sd = np.std([v for v, _ in results["snips"]])
    assert snips_sd < ips_sd


def test_ips_of_the_logging_policy_is_its_measured_ctr():
    u, theta, a, _ = _world()
    items, p, c = _logs(1, 20_000, u, theta, a)
    e = ips(p, c, p)  # on-policy: every weight is 1
    assert e.value == pytest.approx(c.mean())
    assert e.ess == pytest.approx(20_000)
    assert e.covers(_true_ctr(LOGGING, a, u, theta))


def test_target_without_support_is_flagged():
    u, theta, a, _ = _world()
    outside = a[LOGGING.candidates(N_ITEMS, K) :]  # items the logging policy never shows
    target = list(outside[:5]) + list(a[:5])
    _, unsupported = policy_terms(list(a[:K]), list(a), LOGGING, target, Explorer(share=0.0))
    assert unsupported == pytest.approx(0.5)
    items, p, c = _logs(2, 2000, u, theta, a)
    t = (items == np.array(target[:K])).astype(float)
    e = snips(p, c, t, unsupported=unsupported)
    assert e.unsupported == pytest.approx(0.5)
    assert e.warning is not None and "no logged support" in e.warning
    assert ips(p, c, p).warning is None


def test_deterministic_logs_support_only_their_own_list():
    logged = Explorer(share=0.0)
    ranking = [f"i{n}" for n in range(20)]
    other = ranking[1:] + ranking[:1]
    _, unsupported = policy_terms(ranking[:K], ranking, logged, other, Explorer(share=0.0))
    assert unsupported == 1.0


def test_bootstrap_interval_agrees_with_the_normal_one():
    u, theta, a, b = _world()
    items, p, c = _logs(3, 5000, u, theta, a)
    t = _target_probs(Explorer(share=0.2, pool=40), b, items)
    for method in ("ips", "snips"):
        normal = estimate(p, c, t, method)
        boot = estimate(p, c, t, method, bootstrap=400, rng=np.random.default_rng(0))
        assert boot.interval == "bootstrap" and boot.value == normal.value
        width, boot_width = normal.high - normal.low, boot.high - boot.low
        assert 0.7 < boot_width / width < 1.4


def test_ragged_lists_and_bad_input():
    e = ips([[0.5, 0.5], [1.0]], [[1, 0], [1]], [[1.0, 0.0], [1.0]])
    assert e.slots == 3 and e.value == pytest.approx((2 + 1) / 3)
    with pytest.raises(ValueError, match="no logged impressions"):
        ips([], [], [])
    with pytest.raises(ValueError, match=r"propensities must be in \(0, 1\]"):
        ips([[0.0]], [[1]], [[1.0]])
    with pytest.raises(ValueError, match="method"):
        estimate([[1.0]], [[1]], [[1.0]], "dr")
