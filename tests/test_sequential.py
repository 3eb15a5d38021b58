"""The always-valid sequential test (mSPRT) and the intervals behind the online A/B decisions.

Simulated Bernoulli streams, vectorised: each run is one experiment, looked at after every batch.
The error rates are the point: two equal arms peeked at 100 times must be declared different in at
most ``alpha`` of the runs (a fixed-horizon z-test read at the same looks is not), a real lift must
be found within a stated number of impressions, and the interval must cover the true difference at
every look at once.
"""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.loop.intervals import newcombe, wilson, z_value
from shoprec.loop.sequential import Sequential, run

ALPHA = 0.05
RUNS, LOOKS, BATCH = 500, 100, 200
"""500 simulated experiments, each looked at after every 200 impressions per arm (20,000 in all)."""
CUMULATIVE = np.arange(1, LOOKS + 1) * BATCH


def streams(rng: np.random.Generator, p_a: float, p_b: float, runs: int = RUNS) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative clicks per look for ``runs`` experiments: arrays (runs, LOOKS)."""
    clicks_a = rng.binomial(BATCH, p_a, size=(runs, LOOKS)).cumsum(axis=1)
    clicks_b = rng.binomial(BATCH, p_b, size=(runs, LOOKS)).cumsum(axis=1)
    return clicks_a, clicks_b


def naive_z_rejects(clicks_a: np.ndarray, clicks_b: np.ndarray, n: np.ndarray) -> np.ndarray:
    """A fixed-horizon pooled two-proportion z-test at level ALPHA, read at every look: (runs, looks)."""
    pooled = (clicks_a + clicks_b) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    z = (clicks_b - clicks_a) / n / np.where(se > 0, se, 1.0)
    return np.abs(z) > z_value(1 - ALPHA)


@pytest.mark.parametrize("ctr", [0.02, 0.05, 0.2])
def test_equal_arms_peeked_100_times_are_declared_different_in_at_most_alpha_of_runs(ctr: float) -> None:
    rng = np.random.default_rng(int(ctr * 1000))
    clicks_a, clicks_b = streams(rng, ctr, ctr)
    out = run(CUMULATIVE, clicks_a, CUMULATIVE, clicks_b, alpha=ALPHA, tau=0.01)
    false_positives = int(out["rejected"].any(axis=1).sum())
    rate, (low, high) = false_positives / RUNS, wilson(false_positives, RUNS)
    assert rate <= ALPHA, f"A/A false-positive rate {rate:.3f} (95% CI {low:.3f}-{high:.3f}) over alpha {ALPHA}"
    assert low < ALPHA, "the rate is not just lucky: its interval reaches below alpha"

    # The same looks read with a fixed-horizon z-test stop wrongly far more often (why the mSPRT).
    naive = naive_z_rejects(clicks_a, clicks_b, CUMULATIVE).any(axis=1).sum()
    naive_low, _ = wilson(naive, RUNS)
    assert naive_low > 3 * ALPHA, f"naive z-test peeked 100 times: {naive / RUNS:.3f} false positives"
    # Read once at the end it keeps its level (the test is right, the peeking is what breaks it).
    once = naive_z_rejects(clicks_a[:, -1:], clicks_b[:, -1:], CUMULATIVE[-1:]).mean()
    assert once < 2 * ALPHA


def test_a_one_point_lift_is_found_within_20000_impressions_per_arm_in_nine_of_ten_runs() -> None:
    rng = np.random.default_rng(7)
    clicks_a, clicks_b = streams(rng, 0.05, 0.06)  # 5% -> 6% click-through: a 20% relative lift
    out = run(CUMULATIVE, clicks_a, CUMULATIVE, clicks_b, alpha=ALPHA, tau=0.01)
    found = np.where(out["low"] > 0, CUMULATIVE, np.inf).min(axis=1)
    power = np.isfinite(found).mean()
    assert power >= 0.85, f"power {power:.2f} within {CUMULATIVE[-1]} impressions per arm"
    assert np.median(found) <= 12_000, f"median impressions per arm to a decision: {np.median(found)}"
    assert not (out["high"] < 0).any(), "never the wrong direction"


def test_the_interval_covers_the_true_difference_at_every_look_in_95_percent_of_runs() -> None:
    rng = np.random.default_rng(11)
    clicks_a, clicks_b = streams(rng, 0.05, 0.06)
    out = run(CUMULATIVE, clicks_a, CUMULATIVE, clicks_b, alpha=ALPHA, tau=0.01)
    missed = ((out["low"] > 0.01) | (out["high"] < 0.01)).any(axis=1).mean()
    assert missed <= ALPHA


def test_the_stream_object_matches_the_vectorised_run_and_stops_for_good() -> None:
    rng = np.random.default_rng(3)
    clicks_a, clicks_b = streams(rng, 0.04, 0.07, runs=1)
    test = Sequential(alpha=ALPHA, tau=0.01)
    counts = zip(CUMULATIVE, clicks_a[0], clicks_b[0], strict=True)
    looks = [test.update(int(n), int(a), int(n), int(b)) for n, a, b in counts]
    out = run(CUMULATIVE, clicks_a[0], CUMULATIVE, clicks_b[0], alpha=ALPHA, tau=0.01)
    np.testing.assert_allclose([look.p_value for look in looks], out["p_value"])
    np.testing.assert_allclose([look.low for look in looks], out["low"])
    decisions = [look.decision for look in looks]
    first = decisions.index("b_better")
    assert set(decisions[:first]) == {"continue"} and set(decisions[first:]) == {"b_better"}
    assert looks[-1].p_value <= ALPHA < looks[first - 1].p_value


def test_equivalence_stops_when_the_interval_is_narrow_around_zero() -> None:
    test = Sequential(alpha=ALPHA, tau=0.01, equivalence=0.005)
    assert test.update(2_000, 100, 2_000, 101).decision == "continue"
    assert test.update(400_000, 20_000, 400_000, 20_050).decision == "equivalent"


def test_no_decision_before_the_minimum_and_bad_counts_are_refused() -> None:
    test = Sequential(min_trials=100)
    look = test.update(50, 0, 50, 50)
    assert (look.decision, look.p_value, look.low, look.high) == ("continue", 1.0, -1.0, 1.0)
    with pytest.raises(ValueError, match="arm B: successes"):
        test.update(100, 1, 100, 101)
    with pytest.raises(ValueError, match="cumulative"):
        test.update(40, 0, 100, 1)
    with pytest.raises(ValueError, match="alpha"):
        Sequential(alpha=1.5)
    with pytest.raises(ValueError, match="tau"):
        Sequential(tau=0)


def test_wilson_and_newcombe_intervals_cover_their_proportions() -> None:
    rng = np.random.default_rng(5)
    n, p = 200, 0.03
    k = rng.binomial(n, p, size=20_000)
    low, high = wilson(k, n)
    coverage = ((low <= p) & (p <= high)).mean()
    assert 0.93 <= coverage <= 0.98, coverage
    k2 = rng.binomial(n, 0.06, size=20_000)
    low, high = newcombe(k, n, k2, n)
    assert 0.93 <= ((low <= 0.03) & (high >= 0.03)).mean() <= 0.99
    assert wilson(0, 0) == (0.0, 1.0)
    zero_low, zero_high = wilson(0, 50)
    assert zero_low == 0.0 and 0.05 < zero_high < 0.1
