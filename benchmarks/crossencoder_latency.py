"""Cross-encoder stage latency: one query against 20 Home Depot titles on one thread, fp32 and int8.

    .venv/bin/python benchmarks/crossencoder_latency.py /work/cache/hd/models-seed0-sample1.0/crossencoder

60 random (query, 20 random titles) calls after 3 warm-up calls; prints p50 and p99 in milliseconds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from homedepot import load_homedepot  # noqa: E402
from shoprec.search.crossencoder import CrossEncoder  # noqa: E402


def main(folder: str) -> None:
    hd = load_homedepot()
    titles, queries = hd.titles, hd.judgments.terms()
    rng = np.random.default_rng(0)
    for quantize in (False, True):
        model = CrossEncoder(folder, threads=1, quantize=quantize)
        for _ in range(3):
            model.score(queries[0], titles[:20])
        times = []
        for _ in range(60):
            query = queries[int(rng.integers(len(queries)))]
            batch = [titles[j] for j in rng.integers(len(titles), size=20)]
            start = time.perf_counter()
            model.score(query, batch)
            times.append((time.perf_counter() - start) * 1000)
        p50, p99 = np.percentile(times, 50), np.percentile(times, 99)
        print(f"quantize={quantize}: 20 pairs on 1 thread: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1])
