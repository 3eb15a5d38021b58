"""Durable event ingest rate of the store, on SQLite and PostgreSQL, without the HTTP layer.

    .venv/bin/python benchmarks/ingest.py                       # both backends, each case <= 10 s
    .venv/bin/python benchmarks/ingest.py --backends sqlite --seconds 3 --events 20000

Cases, each on a fresh database (a new SQLite file; a new PostgreSQL schema, dropped afterwards):

- ``single``: one thread, one event per ``append_events`` (one transaction and one fsync each);
- ``group16``: 16 producer threads, each submitting one event at a time to a :class:`GroupCommitter`
  and waiting for its durable ack (what the API does per request);
- ``batch100``: one thread, 100 events per ``append_events``.

A case stops after ``--seconds`` or ``--events`` events, whichever comes first. Latency is per
acknowledged call (one event, or one batch of 100). Every commit is durable: SQLite WAL with
``synchronous=FULL``, PostgreSQL with the server's ``synchronous_commit``. Results go to
``benchmarks/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from shoprec.service.store import Event, GroupCommitter, Store, open_store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docblock import write_block  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results" / "ingest.json"
PRODUCERS = 16
BATCH = 100


class Feed:
    """Unique events from a thread-safe counter, over 1,000 users and 5,000 items."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    def take(self, n: int) -> list[Event]:
        out = []
        for _ in range(n):
            i = next(self._ids)
            out.append(Event(f"ev-{i}", f"u{i * 7919 % 1000}", f"i{i * 104729 % 5000}", "view", time.time()))
        return out


def _timed_loop(call: Callable[[], None], deadline: float, budget: Callable[[], bool]) -> list[float]:
    """Run ``call`` until the deadline or until ``budget()`` says stop; each call's latency in seconds."""
    latencies = []
    while time.perf_counter() < deadline and budget():
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    return latencies


def case_single(store: Store, seconds: float, events: int) -> dict:
    feed, written = Feed(), [0]

    def one() -> None:
        store.append_events(feed.take(1))
        written[0] += 1

    start = time.perf_counter()
    latencies = _timed_loop(one, start + seconds, lambda: written[0] < events)
    return _summary(written[0], time.perf_counter() - start, latencies)


def case_batch(store: Store, seconds: float, events: int) -> dict:
    feed, written = Feed(), [0]

    def batch() -> None:
        store.append_events(feed.take(BATCH))
        written[0] += BATCH

    start = time.perf_counter()
    latencies = _timed_loop(batch, start + seconds, lambda: written[0] < events)
    return _summary(written[0], time.perf_counter() - start, latencies)


def case_group(store: Store, seconds: float, events: int, max_wait_ms: float) -> dict:
    feed = Feed()
    tickets = itertools.count()  # each producer claims an event slot before submitting, so the budget holds
    per_thread: list[list[float]] = [[] for _ in range(PRODUCERS)]
    committer = GroupCommitter(store, max_wait_ms=max_wait_ms)
    start = time.perf_counter()
    deadline = start + seconds

    def produce(t: int) -> None:
        def one() -> None:
            committer.submit(feed.take(1)).result()

        per_thread[t] = _timed_loop(one, deadline, lambda: next(tickets) < events)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(PRODUCERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    committer.close()
    latencies = [x for lat in per_thread for x in lat]
    result = _summary(len(latencies), elapsed, latencies)
    result["mean_group_size"] = round(committer.events_written / max(committer.groups, 1), 1)
    return result


def _summary(n_events: int, elapsed: float, latencies: list[float]) -> dict:
    lat = np.array(latencies) * 1000
    return {
        "events": n_events,
        "seconds": round(elapsed, 2),
        "events_per_s": round(n_events / elapsed),
        "ack_p50_ms": round(float(np.percentile(lat, 50)), 2),
        "ack_p99_ms": round(float(np.percentile(lat, 99)), 2),
    }


CASES: dict[str, Callable[[Store, argparse.Namespace], dict]] = {
    "single": lambda store, args: case_single(store, args.seconds, args.events),
    "group16": lambda store, args: case_group(store, args.seconds, args.events, args.max_wait_ms),
    "batch100": lambda store, args: case_batch(store, args.seconds, args.events),
}


@contextmanager
def fresh_store(backend: str, args: argparse.Namespace) -> Iterator[Store]:
    if backend == "sqlite":
        with (
            tempfile.TemporaryDirectory(dir=args.sqlite_dir, prefix="shoprec-ingest-") as folder,
            open_store(str(Path(folder) / "ingest.db")) as store,
        ):
            yield store
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        sep = "&" if "?" in args.postgres else "?"
        with open_store(f"{args.postgres}{sep}options=-csearch_path%3D{schema}") as store:
            yield store
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def filesystem(path: str) -> str:
    """File system type of the mount holding ``path`` (Linux), for the record."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, point, fs = line.split()[:3]
                if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                    best, kind = point, fs
    except OSError:
        pass
    return kind


def backend_info(backend: str, args: argparse.Namespace) -> dict:
    if backend == "sqlite":
        folder = args.sqlite_dir or tempfile.gettempdir()
        return {"version": sqlite3.sqlite_version, "folder": folder, "filesystem": filesystem(folder)}
    with psycopg.connect(args.postgres) as conn:
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("fsync", "synchronous_commit")}
        version = conn.execute("SHOW server_version").fetchone()[0]
    return {"version": version, "host": "loopback" if "127.0.0.1" in args.postgres else "remote", **settings}


def table(record: dict) -> str:
    """The docs/benchmarks.md block for a results record."""
    names = {"single": "one event per commit", "group16": "16 producers, group commit", "batch100": "100 per call"}
    lines = [
        f"Measured {record['date']} on {record['machine']} (`{record['command']}`), load average before "
        f"{record['load_average_1_5_15_min_before'][0]}; each case at most {record['limits']['seconds']:g} s or "
        f"{record['limits']['events']:,} events; every commit durable (SQLite WAL with synchronous=FULL; "
        "PostgreSQL fsync and synchronous_commit on). The store alone, without HTTP:",
        "",
        "| store | case | events | events/s | ack p50 ms | ack p99 ms | mean group |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in record["results"]:
        lines.append(
            f"| {r['backend']} | {names.get(r['case'], r['case'])} | {r['events']:,} | {r['events_per_s']:,} | "
            f"{r['ack_p50_ms']} | {r['ack_p99_ms']} | {r.get('mean_group_size', '')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated among {', '.join(CASES)}")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit per case")
    parser.add_argument("--events", type=int, default=100_000, help="event limit per case")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="GroupCommitter max_wait_ms (group16)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL URL")
    parser.add_argument("--sqlite-dir", default=None, help="folder for the SQLite files (default: the temp folder)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file")
    parser.add_argument("--doc", action="store_true", help="only rewrite the docs/benchmarks.md block from --out")
    args = parser.parse_args(argv)
    if args.doc:
        write_block("ingest", table(json.loads(args.out.read_text())))
        return 0

    backends, cases = args.backends.split(","), args.cases.split(",")
    load_before = [round(x, 2) for x in os.getloadavg()]  # the machine may be shared: say how busy it was
    results, info = [], {}
    print(f"{'backend':<9} {'case':<9} {'events':>8} {'s':>6} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7}  group")
    for backend in backends:
        info[backend] = backend_info(backend, args)
        for case in cases:
            with fresh_store(backend, args) as store:
                row = {"backend": backend, "case": case, **CASES[case](store, args)}
            results.append(row)
            print(
                f"{backend:<9} {case:<9} {row['events']:>8} {row['seconds']:>6} {row['events_per_s']:>9} "
                f"{row['ack_p50_ms']:>7} {row['ack_p99_ms']:>7}  {row.get('mean_group_size', '')}"
            )
    record = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(["python benchmarks/ingest.py", *(sys.argv[1:] if argv is None else argv)]),
        "load_average_1_5_15_min_before": load_before,
        "limits": {"seconds": args.seconds, "events": args.events},
        "group_commit": {"producers": PRODUCERS, "max_wait_ms": args.max_wait_ms},
        "backends": info,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
