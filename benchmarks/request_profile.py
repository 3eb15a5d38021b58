"""CPU of one uncached home-feed request, stage by stage, in one process without HTTP.

    .venv/bin/python benchmarks/request_profile.py --models ../cache/replay-bench/beauty/models
    .venv/bin/python benchmarks/request_profile.py --models ... --cprofile 30     # top functions too

Loads the newest version of ``--models`` into the service's :class:`Engine` (feed cache on, not
warmed, a fresh SQLite store and the store as live state, as ``shoprec serve`` runs without Redis).
With ``--warm`` the feed cache is first warmed for every known user, as a worker does when a
version loads. For each of ``--requests`` known users it stores one event of that user (so the
next feed is a cache miss, as right after a click) and then asks for the home feed (k=10, explanations off),
timing each stage: the pipeline's own stage timings (recall per source, merge, features, rank,
rerank, shares), the rest of the engine's request (user context with its live events, the
proposal, the cache entry, rendering) as ``engine``, and the process CPU per request, which
includes the background thread that writes the impression. One request per user at a time, on
one thread, after ``--warmup`` requests; the median and the mean per stage are reported.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np


def build_engine(models: Path, db: Path):
    from shoprec.service.ab import VersionManager
    from shoprec.service.engine import Engine
    from shoprec.service.live import StoreLive
    from shoprec.service.store import open_store

    store = open_store(f"sqlite:///{db}")
    versions = VersionManager(models, store)
    versions.refresh(wait=True)
    engine = Engine(store, StoreLive(store), versions, warm_cache=False, feed_cache=True)
    return engine, store


def one_request(engine, store, user: str, item: str) -> tuple[dict, float]:
    """Store an event of ``user``, then serve the home feed: (stage ms, process CPU ms of the request)."""
    from shoprec.service.store.base import Event

    store.append_events([Event(uuid.uuid4().hex, user, item, "view", time.time())])
    began = time.thread_time()
    served = engine.recommend("home", user_id=user, k=10)
    cpu = 1000 * (time.thread_time() - began)
    if any("feed cache" in note for note in served.notes):
        raise RuntimeError(f"request for {user} was served from the feed cache: the profile needs misses")
    return served.timings_ms, cpu


def profile(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine, store = build_engine(args.models, Path(tmp) / "profile.db")
        dep = engine.versions.default()
        if args.warm:  # as a worker does when a version loads: every known user's feed, once
            engine.cache.warm(engine, dep).join()
        rng = np.random.default_rng(args.seed)
        known = np.flatnonzero(np.diff(dep.sequences.indptr) > 0)
        users = dep.dataset.user_vocab.ids()[rng.choice(known, args.requests + args.warmup)]
        items = dep.dataset.item_vocab.ids()[rng.integers(0, dep.dataset.n_items, args.requests + args.warmup)]
        rows, cpus = [], []
        profiler = cProfile.Profile() if args.cprofile else None
        process_began = None
        for n, (user, item) in enumerate(zip(users, items, strict=True)):
            if n == args.warmup:
                engine.impressions.flush()
                process_began = time.process_time()
                if profiler:
                    profiler.enable()
            timings, cpu = one_request(engine, store, str(user), str(item))
            if n >= args.warmup:
                rows.append(timings)
                cpus.append(cpu)
        if profiler:
            profiler.disable()
        engine.impressions.flush()
        process_ms = 1000 * (time.process_time() - process_began) / args.requests
        engine.close()
        store.close()
    return summarise(rows, cpus, process_ms, dep.version, profiler, args.cprofile)


def summarise(rows: list[dict], cpus: list[float], process_ms: float, version: str, profiler, top: int) -> dict:
    stages = sorted({s for r in rows for s in r if s != "total"})
    table = {}
    for stage in stages:
        values = [r.get(stage, 0.0) for r in rows]
        table[stage] = {"median_ms": round(statistics.median(values), 3), "mean_ms": round(statistics.fmean(values), 3)}
    engine = [r["total"] - sum(r.get(s, 0.0) for s in stages) for r in rows]
    table["engine"] = {"median_ms": round(statistics.median(engine), 3), "mean_ms": round(statistics.fmean(engine), 3)}
    total = [r["total"] for r in rows]
    table["total"] = {"median_ms": round(statistics.median(total), 3), "mean_ms": round(statistics.fmean(total), 3)}
    out = {
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python benchmarks/request_profile.py", *sys.argv[1:]]),
        "version": version,
        "requests": len(rows),
        "stages": table,
        "request_cpu_ms": {"median": round(statistics.median(cpus), 3), "mean": round(statistics.fmean(cpus), 3)},
        "process_cpu_ms_per_request": round(process_ms, 3),
    }
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
        out["cprofile"] = text.getvalue()
    return out


def _commit() -> str:
    """The commit of the shoprec code that ran (the checkout the package was imported from)."""
    import subprocess

    import shoprec

    where = Path(shoprec.__file__).parent
    out = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(where), "status", "--porcelain", "--", "."], capture_output=True, text=True
    )
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def compare(before: dict, after: dict) -> str:
    """A markdown table of two profiles, stage by stage (medians; the CPU rows are per request)."""
    stages = sorted(set(before["stages"]) | set(after["stages"]), key=lambda s: (s in ("engine", "total"), s))
    lines = [
        f"| stage | before ({before['commit']}) ms | after ({after['commit']}) ms |",
        "|---|---|---|",
    ]
    for stage in stages:
        b, a = before["stages"].get(stage, {}), after["stages"].get(stage, {})
        lines.append(f"| {stage} | {b.get('median_ms', '')} | {a.get('median_ms', '')} |")
    for label, key in (("request CPU (thread), median", "median"), ("request CPU (thread), mean", "mean")):
        lines.append(f"| {label} | {before['request_cpu_ms'][key]} | {after['request_cpu_ms'][key]} |")
    lines.append(
        f"| process CPU per request (impression writer included) | {before['process_cpu_ms_per_request']} "
        f"| {after['process_cpu_ms_per_request']} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, help="a models folder (its newest version is used)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm", action="store_true", help="warm the feed cache first, as the service does")
    parser.add_argument("--doc", action="store_true", help="with --compare: write the table into docs/benchmarks.md")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N", help="also print the N costliest functions")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument(
        "--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"), help="print two summaries side by side"
    )
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.compare)
        text = compare(before, after)
        if args.doc:
            sys.path.insert(0, str(Path(__file__).parent))
            from docblock import write_block

            runs = f"before: `{before['command']}` ({before['date']}); after: `{after['command']}` ({after['date']})"
            write_block("request-profile", f"{runs}\n\n{text}")
        print(text)
        return
    result = profile(args)
    print(result.pop("cprofile", ""))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
