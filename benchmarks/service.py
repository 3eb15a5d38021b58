"""Service load benchmark: the recommendation endpoint under load, durable event ingest, memory.

    .venv/bin/python benchmarks/service.py                         # every run (about 15 minutes on 2 cores)
    .venv/bin/python benchmarks/service.py --runs demo --quick     # a dry run on a small demo shop
    .venv/bin/python benchmarks/service.py --doc                   # rewrite the docs block from the JSON

For each catalogue a model version is trained once (cached under ``--work``), then ``shoprec serve``
runs in its own process group with 1 and then 2 workers, and ``benchmarks/loadgen.py`` sends load
from a second process over loopback, bounded in time:

- ``GET /v1/users/{user}/recommendations?k=10`` for known users drawn at random: open loop at the
  target rate (500/s), latency counted from the scheduled send time, and closed loop (32
  connections) for the most the service answers;
- ``POST /v1/events`` single events (acknowledged only after the commit) at the target ingest rate
  (2,000/s) and closed loop, on SQLite and on PostgreSQL; the stored row count is checked against
  the acknowledged count;
- resident memory (RSS) of every worker process after the load.

Catalogues: ``beauty`` (Amazon Beauty with titles, 12k items, from ../shared/datasets) and
``gen100k`` (a generated 100k-item shop). The machine is the development box: 2 cores shared by
the server, its workers and the load generator.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from docblock import write_block  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
LOADGEN = REPO / "benchmarks" / "loadgen.py"
PG_SCHEMA = "bench_service"
BATCH = 50
"""Events per request in the batched ingest phase."""
PG_URL = f"postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{PG_SCHEMA}"
LARGE_CONFIG = """
[pipeline]
k = 10
recall_k = 100
rank = "learned"

[[source]]
name = "als"
type = "model"
model = "als"

[[source]]
name = "also-viewed"
type = "item-to-item"
similarity = "cooccurrence"

[[source]]
name = "trending"
type = "popularity"
window_days = 7
"""


# ---------------------------------------------------------------------- data and versions
def dataset_for(run: str):
    if run == "beauty":
        from shoprec.data.adapters import load_dataset

        return load_dataset(SHARED / "amazon-beauty", fmt="folder"), None
    from shoprec.data.demo import generate_demo_shop

    sizes = {"demo": (3000, 2000), "gen100k": (100_000, 30_000)}[run]
    return generate_demo_shop(seed=11, n_items=sizes[0], n_users=sizes[1], progress=True).to_dataset(), (
        LARGE_CONFIG if run == "gen100k" else None
    )


def prepare(run: str, work: Path) -> Path:
    """A models folder with one trained version for ``run`` (trained once, then reused)."""
    from shoprec.service.versions import list_versions, train_version

    models = work / run / "models"
    if list_versions(models):
        return models
    dataset, config = dataset_for(run)
    began = time.perf_counter()
    train_version(
        dataset, models, config, evaluate=False, progress=True, vector_cache=work / "vectors", crosscat_mode="graph"
    )
    print(f"[{run}] trained in {time.perf_counter() - began:.0f} s", flush=True)
    users = dataset.user_vocab.ids()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(users), size=min(5000, len(users)), replace=False)
    (work / run / "users.txt").write_text("\n".join(str(users[i]) for i in pick))
    items = dataset.item_vocab.ids()
    pick = rng.choice(len(items), size=min(5000, len(items)), replace=False)
    (work / run / "items.txt").write_text("\n".join(str(items[i]) for i in pick))
    return models


# ---------------------------------------------------------------------- server
class Server:
    def __init__(
        self,
        models: Path,
        workers: int,
        store: str | None,
        port: int = 18400,
        feed_cache: bool = True,
        ready_timeout: float = 600.0,
    ) -> None:
        self.models, self.workers, self.port, self.feed_cache = models, workers, port, feed_cache
        self.ready_timeout = ready_timeout
        self.warm_up: dict = {}
        """One worker's feed-cache warm-up: users and seconds."""
        self.url = f"http://127.0.0.1:{port}"
        self.cmd = [
            sys.executable,
            "-m",
            "shoprec.cli.main",
            "serve",
            "--models",
            str(models),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        if store:
            self.cmd += ["--store", store]
        self.store = store

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "SHOPREC_FEED_CACHE": "1" if self.feed_cache else "0",
        }
        self.log = open(self.models.parent / f"server-{self.workers}.log", "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + self.ready_timeout
        ready = 0
        while time.monotonic() < deadline and ready < 3 * self.workers:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: see {self.log.name}")
            try:
                answer = httpx.get(f"{self.url}/v1/ready", timeout=5)
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            # Ready, and (when the feed cache is on) every worker finished warming it: several answers
            # in a row, since each comes from whichever worker took the connection.
            warming = answer.json().get("feed_cache", {}).get("warming", {}) if answer.status_code == 200 else {}
            warm = not self.feed_cache or (warming and all(w["finished"] for w in warming.values()))
            if warm and warming:
                self.warm_up = next(iter(warming.values()))
            ready = ready + 1 if answer.status_code == 200 and warm else 0
            time.sleep(0.2 if ready else 1.0)
        if ready < 3 * self.workers:
            self.__exit__()  # no server left behind
            raise RuntimeError(f"server not ready and warm after {self.ready_timeout:.0f} s: see {self.log.name}")
        return self

    def worker_pids(self) -> list[int]:
        """The serving processes: the server itself with one worker, else its worker children (not
        multiprocessing's resource tracker)."""
        if self.workers == 1:
            return [self.proc.pid]
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        cmdlines = {int(p): Path(f"/proc/{p}/cmdline").read_bytes() for p in out}
        return [p for p, cmd in cmdlines.items() if b"resource_tracker" not in cmd]

    def memory_mb(self) -> list[str]:
        """Per worker: resident memory and its proportional share (PSS counts pages shared with the
        other workers, such as memory-mapped model arrays, once in all), as "RSS / PSS" MB."""
        sizes = []
        for pid in self.worker_pids():
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            kb = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.split(":")[0] in ("Rss", "Pss")}
            sizes.append(f"{kb['Rss'] / 1024:.0f} / {kb['Pss'] / 1024:.0f}")
        return sizes

    def __exit__(self, *exc) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def fresh_sqlite(path: Path) -> str:
    """The URL of a new, empty SQLite store at ``path`` (an earlier file and its WAL are removed), so
    that no run sees the events of another: recommendation runs measure users without live events."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def key_for(store: str) -> str:
    from shoprec.service.auth import create_key
    from shoprec.service.store import open_store

    db = open_store(store)
    try:
        return create_key(db, ["write"], rate_per_minute=10_000_000)
    finally:
        db.close()


def load(args: list[str], out: Path) -> dict:
    subprocess.run(
        [sys.executable, str(LOADGEN), *args, "--json", str(out)],
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.read_text())


# ---------------------------------------------------------------------- runs
def recommend_runs(run: str, models: Path, work: Path, quick: bool) -> list[dict]:
    rows = []
    seconds, warmup = ("5", "1") if quick else ("20", "3")
    for workers, feed_cache in ((1, True), (1, False), (2, True), (2, False)):
        store = fresh_sqlite(work / run / "recommend.db")
        key = key_for(store)
        with Server(models, workers, store, feed_cache=feed_cache) as server:
            url = f"{server.url}/v1/users/{{user}}/recommendations?k=10"
            common = [
                "--get",
                url,
                "--users",
                str(work / run / "users.txt"),
                "--header",
                f"X-API-Key: {key}",
                "--warmup",
                warmup,
                "--duration",
                seconds,
            ]
            for rate in (500, 0):
                result = load([*common, "--rate", str(rate), "--connections", "32"], work / "load.json")
                result.update(
                    run=run,
                    workers=workers,
                    feed_cache=feed_cache,
                    memory_mb=server.memory_mb(),
                    warm_up=server.warm_up,
                )
                rows.append(result)
                print(
                    f"[{run}] workers={workers} cache={feed_cache} rate={rate or 'max'}: p50 {result['p50_ms']} ms, "
                    f"p99 {result['p99_ms']} ms, {result['achieved_rate']:.0f}/s, "
                    f"errors {result['errors_by_status']}, RSS {result['memory_mb']} MB",
                    flush=True,
                )
    return rows


def ingest_runs(models: Path, work: Path, run: str, quick: bool) -> list[dict]:
    from shoprec.service.store import open_store

    rows = []
    seconds = "5" if quick else "10"
    for label in ("sqlite", "postgresql"):
        for workers in (1, 2):
            if label == "sqlite":
                store = fresh_sqlite(work / run / "ingest.db")
            else:
                store = PG_URL
                _reset_pg()
            key = key_for(store)
            with Server(models, workers, store) as server:
                db = open_store(store)
                before = db.count_events()
                common = [
                    "--users",
                    str(work / run / "users.txt"),
                    "--items",
                    str(work / run / "items.txt"),
                    "--header",
                    f"X-API-Key: {key}",
                    "--duration",
                    seconds,
                ]
                phases = [(2000, 1, 64), (0, 1, 32), (0, BATCH, 8)]
                for rate, batch, connections in phases:
                    url = f"{server.url}/v1/events" + ("/batch" if batch > 1 else "")
                    options = ["--rate", str(rate), "--connections", str(connections), "--batch", str(batch)]
                    result = load(["--post-events", url, *common, *options], work / "ingest.json")
                    result.update(store=label, workers=workers, batch=batch)
                    rows.append(result)
                stored = db.count_events() - before
                acked = sum(r["ok"] * r["batch"] for r in rows[-len(phases) :])
                rows[-1]["stored_vs_acknowledged"] = [stored, acked]
                db.close()
                print(
                    f"[ingest {label}] workers={workers}: "
                    + "; ".join(
                        f"batch {r['batch']} rate {r['target_rate'] or 'max'} -> {r['events_per_s']:.0f} events/s "
                        f"p99 {r['p99_ms']} ms"
                        for r in rows[-len(phases) :]
                    )
                    + f"; stored {stored}, acknowledged {acked}",
                    flush=True,
                )
    return rows


def _reset_pg() -> None:
    import psycopg

    with psycopg.connect(PG_URL.split("?")[0], autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {PG_SCHEMA}")


# ---------------------------------------------------------------------- report
def table(record: dict) -> str:
    lines = [
        f"Measured {record['date']} on {record['machine']} (`{record['command']}`); "
        "load from `benchmarks/loadgen.py` in its own process on loopback, server and generator sharing 2 cores.",
        "",
        "**Recommendation endpoint** (`GET /v1/users/{user}/recommendations?k=10`, known users at random, "
        "default pipeline; open loop at 500/s with latency from the scheduled send time, then closed loop "
        "with 32 connections). *cached*: the feed cache is on and warm (what a deployment runs); "
        "*pipeline*: `SHOPREC_FEED_CACHE=0`, every request runs recall, ranking and rules:",
        "",
        "| catalogue | workers | feeds | offered | achieved/s | p50 ms | p99 ms | non-2xx | timeouts "
        "| RSS / PSS per worker MB | cache warm-up |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["recommend"]:
        lines.append(
            f"| {r['run']} | {r['workers']} | {'cached' if r.get('feed_cache', True) else 'pipeline'} | "
            f"{r['target_rate'] or 'max'} | {r['achieved_rate']:.0f} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{_bad(r)} | {r['timeouts']} | {'; '.join(map(str, r['memory_mb']))} | {_warm(r)} |"
        )
    lines += [
        "",
        "**Durable event ingest** (`POST /v1/events`, one event per request, and `POST /v1/events/batch`; "
        "each acknowledged only after its commit):",
        "",
        "| store | workers | events/request | offered req/s | connections | achieved events/s | p50 ms | p99 ms "
        "| non-2xx | stored / acknowledged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record["ingest"]:
        check = r.get("stored_vs_acknowledged")
        lines.append(
            f"| {r['store']} | {r['workers']} | {r.get('batch', 1)} | {r['target_rate'] or 'max'} | "
            f"{r['connections']} | {r['events_per_s']:.0f} | {r['p50_ms']} | {r['p99_ms']} | {_bad(r)} | "
            f"{'' if not check else f'{check[0]} / {check[1]}'} |"
        )
    return "\n".join(lines)


def _warm(result: dict) -> str:
    warm = result.get("warm_up") or {}
    return f"{warm['users']:,} users, {warm['seconds']} s" if warm else ""


def _bad(result: dict) -> int:
    return sum(v for k, v in result["errors_by_status"].items() if not str(k).startswith("2"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="beauty,gen100k")
    parser.add_argument("--work", type=Path, default=REPO.parent / "cache" / "service-bench")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "service.json")
    parser.add_argument("--quick", action="store_true", help="short load phases (dry runs)")
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--doc", action="store_true", help="only rewrite docs/benchmarks.md from --out")
    args = parser.parse_args()
    if args.doc:
        write_block("service", table(json.loads(args.out.read_text())))
        return
    record = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2-core development machine, no GPU",
        "command": " ".join(["python benchmarks/service.py", *sys.argv[1:]]),
        "recommend": [],
        "ingest": [],
    }
    runs = args.runs.split(",")
    for run in runs:
        models = prepare(run, args.work)
        record["recommend"] += recommend_runs(run, models, args.work, args.quick)
    if not args.no_ingest:
        record["ingest"] = ingest_runs(prepare(runs[0], args.work), args.work, runs[0], args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(table(record))


if __name__ == "__main__":
    main()
