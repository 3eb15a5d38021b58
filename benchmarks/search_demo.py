"""Lexical search on the demo shop: engine build time and per-query latency over its logged queries.

    .venv/bin/python benchmarks/search_demo.py            # default demo shop (3,000 items), 500 queries

Lexical only (no encoder): parse, spelling, constraints, BM25, fusion. One process, wall-clock
time with ``time.perf_counter``; the first query (warm-up) is not counted. This is not the issue's
100k-product latency benchmark.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from shoprec.data.demo import generate_demo_shop
from shoprec.search.hybrid import SearchEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500, help="logged queries to time (default: 500)")
    args = parser.parse_args()
    data = generate_demo_shop(seed=7).to_dataset()
    start = time.perf_counter()
    engine = SearchEngine.from_dataset(data)
    build = time.perf_counter() - start
    queries = data.queries["query"].dropna().astype(str).tolist()[: args.queries]
    engine.search(queries[0])
    times = []
    for query in queries:
        start = time.perf_counter()
        engine.search(query, k=10)
        times.append(time.perf_counter() - start)
    ms = np.array(times) * 1000
    print(
        f"items {data.n_items} build_s {build:.2f} queries {len(queries)} "
        f"p50_ms {np.percentile(ms, 50):.2f} p99_ms {np.percentile(ms, 99):.2f}"
    )


if __name__ == "__main__":
    main()
