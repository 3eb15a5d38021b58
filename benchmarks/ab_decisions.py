"""Error rate and power of the always-valid A/B test (mSPRT, shoprec.loop.sequential) on simulated
Bernoulli streams, against a fixed-horizon z-test read at the same looks.

    python benchmarks/ab_decisions.py        # about a second
"""

from __future__ import annotations

import numpy as np

from shoprec.loop.intervals import wilson, z_value
from shoprec.loop.sequential import run

RUNS, LOOKS, BATCH, ALPHA, TAU = 2000, 100, 200, 0.05, 0.01


def main() -> None:
    rng = np.random.default_rng(0)
    n = np.arange(1, LOOKS + 1) * BATCH
    print(f"{RUNS} runs, {LOOKS} looks, {BATCH} impressions per arm per look, alpha {ALPHA}, tau {TAU}")
    for ctr in (0.02, 0.05, 0.2):
        a = rng.binomial(BATCH, ctr, size=(RUNS, LOOKS)).cumsum(1)
        b = rng.binomial(BATCH, ctr, size=(RUNS, LOOKS)).cumsum(1)
        fp = int(run(n, a, n, b, ALPHA, TAU)["rejected"].any(1).sum())
        pooled = (a + b) / (2 * n)
        z = (b - a) / n / np.sqrt(np.maximum(pooled * (1 - pooled) * 2 / n, 1e-12))
        naive = int((np.abs(z) > z_value(1 - ALPHA)).any(1).sum())
        print(
            f"A/A ctr {ctr}: mSPRT false positives {fp / RUNS:.4f} (95% CI {_ci(fp)}); "
            f"z-test peeked {naive / RUNS:.3f} (95% CI {_ci(naive)})"
        )
    for base, lift in ((0.05, 0.01), (0.05, 0.005), (0.1, 0.02)):
        a = rng.binomial(BATCH, base, size=(RUNS, LOOKS)).cumsum(1)
        b = rng.binomial(BATCH, base + lift, size=(RUNS, LOOKS)).cumsum(1)
        out = run(n, a, n, b, ALPHA, TAU)
        first = np.where(out["low"] > 0, n, np.inf).min(1)
        found = np.isfinite(first)
        print(
            f"lift {base:g} -> {base + lift:g}: found within {n[-1]:,} per arm in {found.mean():.3f} of runs; "
            f"impressions per arm to decision median {np.median(first[found]):,.0f}, 90th pct "
            f"{np.quantile(first[found], 0.9):,.0f}; wrong direction {(out['high'] < 0).any(1).mean():.4f}"
        )


def _ci(k: int) -> str:
    low, high = wilson(k, RUNS)
    return f"{low:.4f}-{high:.4f}"


if __name__ == "__main__":
    main()
