"""Replay benchmark: a real event stream ingested through the API while the acting users ask for their feeds.

    .venv/bin/python benchmarks/replay.py --prepare                 # train the versions (CPU heavy, once)
    .venv/bin/python benchmarks/replay.py --runs beauty             # 2 then 1 worker, every phase
    .venv/bin/python benchmarks/replay.py --runs beauty --workers 2 --rates 500 --acting 1 --all-acting-at ''
    .venv/bin/python benchmarks/replay.py --doc                     # rewrite the docs block from the JSON

Each catalogue's events are split in time: a version is trained on everything before the cutoff
(``STREAM`` events from the end), and the events after it are the stream, replayed in time order.
The stream is cut into *acts*: one shopper's events of one recorded moment (an Online Retail invoice,
a Beauty shopper's reviews of one day), sent as one request (a batch when there are several), with
the wall-clock time as the service stamps it. ``shoprec serve`` runs with 2 or 1 workers on a fresh
SQLite store, its feed cache warm, and the replay sends, open loop at a fixed rate of feed requests:

- for each *acting* request (``--acting`` of them; every one with ``--all-acting-at``): the next act,
  and as soon as it is acknowledged, that shopper's home feed
  (``GET /v1/users/{user}/recommendations?k=10``);
- for the others: the home feed of a shopper of the training data who did not just act.

One shopper's acts never overlap (a shopper acts again once the page is there); the stream starts
over with new event ids when it runs out. Latency: a feed counts from the moment it was due (the
act's acknowledgement for a feed after an act, else its slot); *click to feed* from the act's slot to
the feed's last byte, which includes the act's own acknowledgement and any queueing before it.
Requests still unsent ``GRACE`` seconds after a phase's end are counted as errors, not sent.

Every feed after an act is checked: it must name the act's last event as the newest it reflects
(``live_event_id``) and list none of the act's items (the default pipeline hides what the shopper
already has). The cache-miss share counts feeds that ran the pipeline (stage timings in the answer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from docblock import write_block  # noqa: E402
from loadgen import _Connection, _percentile_ms  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
STREAM = {"beauty": 40_000, "online-retail": 40_000, "gen100k": 40_000}
"""Events at the end of each catalogue's history that form the stream (the rest trains the version)."""
HASHED = ("gen100k",)
"""Catalogues whose item vectors are hashed, not encoded: MiniLM needs hours for 100k titles on two
shared cores, and serving cost depends on the vectors' size (384), not on what they mean. The text
features of such a version carry no meaning; its latency is what the benchmark reads."""


# ---------------------------------------------------------------------- data and versions
def load_run(run: str):
    """The dataset and the pipeline config (None: the default) of a catalogue."""
    from service import LARGE_CONFIG, dataset_for
    from shoprec.data.adapters import load_dataset

    if run == "online-retail":
        path = SHARED / "online-retail-2010-2011" / "online_retail.parquet"
        return load_dataset(path, fmt="online-retail"), None
    dataset, config = dataset_for(run)
    return dataset, (LARGE_CONFIG if run == "gen100k" else config)


def HashedVectors():  # noqa: N802 - builds an Encoder subclass lazily (the text layer loads torch)
    """An encoder of 384-d unit vectors drawn from each text's hash (see :data:`HASHED`)."""
    import zlib

    from shoprec.text.encoders import Encoder

    class _Hashed(Encoder):
        name, dim = "hashed-384", 384

        def _encode_batch(self, texts):
            return np.stack(
                [np.random.default_rng(zlib.crc32(t.encode())).normal(size=self.dim) for t in texts]
            ).astype(np.float32)

    return _Hashed()


def split_stream(dataset, n_stream: int):
    """(training dataset, stream frame): the last ``n_stream`` events by time are the stream; every
    event at the cutoff second goes to the stream too, so training sees nothing from its time on."""
    frame = dataset.interactions
    times = frame["timestamp"].to_numpy(dtype=np.int64)
    cutoff = np.sort(times)[-n_stream]
    train = dataset.subset(times < cutoff)
    stream = frame[times >= cutoff].sort_values("timestamp", kind="stable")
    users, items = dataset.user_vocab.ids(), dataset.item_vocab.ids()
    out = {
        "user_id": [str(users[u]) for u in stream["user"].to_numpy()],
        "item_id": [str(items[i]) for i in stream["item"].to_numpy()],
        "event": stream["event"].astype(str).tolist(),
        "timestamp": stream["timestamp"].astype(int).tolist(),
    }
    return train, out, int(cutoff)


def prepare(run: str, work: Path) -> Path:
    """A models folder with one version trained before the cutoff, and the stream beside it."""
    from shoprec.service.versions import list_versions, train_version

    models = work / run / "models"
    if list_versions(models) and (work / run / "stream.json").exists():
        return models
    dataset, config = load_run(run)
    train, stream, cutoff = split_stream(dataset, STREAM[run])
    began = time.perf_counter()
    if run in HASHED:
        import shoprec.text.encoders as encoders

        encoders.load_encoder = lambda *args, **kwargs: HashedVectors()
    train_version(
        train,
        models,
        config,
        evaluate=False,
        progress=True,
        vector_cache=work / "vectors",
        crosscat_mode="graph",
    )
    print(f"[{run}] trained on {len(train):,} events before {cutoff} in {time.perf_counter() - began:.0f} s")
    known = np.flatnonzero(np.diff(train.sequences().indptr) > 0)
    users = train.user_vocab.ids()
    rng = np.random.default_rng(0)
    idle = [str(users[u]) for u in rng.choice(known, size=min(5000, len(known)), replace=False)]
    (work / run / "stream.json").write_text(json.dumps({"cutoff": cutoff, "idle_users": idle, **stream}))
    return models


# ---------------------------------------------------------------------- the load
MAX_ACT = 1000
"""Most events in one act (the service's default batch limit)."""
GRACE = 5.0
"""Seconds past a phase's end after which requests still waiting to be sent are counted as errors, not
sent: an open loop against a saturated service would otherwise queue for minutes."""


def acts(stream: dict) -> list[tuple[int, int]]:
    """The stream cut into acts: consecutive events of one shopper at one recorded moment (an
    Online Retail invoice, a Beauty shopper's reviews of one day), sent together as one batch."""
    users, times = stream["user_id"], stream["timestamp"]
    out, lo = [], 0
    for i in range(1, len(users) + 1):
        if i == len(users) or users[i] != users[lo] or times[i] != times[lo] or i - lo == MAX_ACT:
            out.append((lo, i))
            lo = i
    return out


@dataclass(frozen=True)
class Phase:
    rate: float  # feed requests per second (open loop)
    acting: float  # share of feed requests that follow an event of the same user
    duration: float  # measured seconds
    warmup: float  # seconds of load before measuring


@dataclass
class Outcome:
    """What the measured requests of one phase did."""

    feed_latency: list[float] = field(default_factory=list)  # seconds from the feed's due time, every answered feed
    acting_latency: list[float] = field(default_factory=list)  # the same, feeds that followed an event
    event_latency: list[float] = field(default_factory=list)  # seconds from the slot's due time to the event's ack
    click_to_feed: list[float] = field(default_factory=list)  # seconds from the slot's due time to the feed after it
    lags: list[float] = field(default_factory=list)  # how late requests left against their schedule
    feeds: int = 0
    acting: int = 0
    errors: Counter = field(default_factory=Counter)  # "feed 503", "event timeout", ...
    misses: int = 0  # feeds that ran the pipeline (stage timings in the answer)
    acting_misses: int = 0
    reflected: int = 0  # acting feeds naming their event and not listing its item
    not_reflected: list[str] = field(default_factory=list)  # a few examples, for the report
    last_done: float = 0.0
    span: float = 0.0  # seconds from the end of the warm-up to the last measured answer
    answered_all: int = 0  # feeds answered, warm-up included (the CPU figures divide by it)


class Replay:
    """Open-loop replay over keep-alive connections; one user's event and feed never overlap another
    of the same user's (a shopper clicks again only once the page is there)."""

    def __init__(self, url: str, key: str, stream: dict, idle: list[str], tag: str, seed: int = 0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.head = f"Host: {self.host}:{self.port}\r\nX-API-Key: {key}\r\n"
        self.stream, self.idle, self.tag = stream, idle, tag
        self.acts = acts(stream)
        self.cursor = 0  # next act; the stream starts over (with new event ids) when it runs out
        self.rng = random.Random(seed)
        self.locks: dict[str, asyncio.Lock] = {}

    def feed_request(self, user: str) -> bytes:
        return f"GET /v1/users/{quote(user, safe='')}/recommendations?k=10 HTTP/1.1\r\n{self.head}\r\n".encode()

    def event_request(self, number: int) -> tuple[bytes, list[dict]]:
        """The POST of act ``number`` (counting on past the end of the stream, which repeats)."""
        s = self.stream
        lo, hi = self.acts[number % len(self.acts)]
        events = [
            {
                "event_id": f"replay-{self.tag}-{number}-{i}",
                "user_id": s["user_id"][i],
                "item_id": s["item_id"][i],
                "event": s["event"][i],
            }
            for i in range(lo, hi)
        ]
        body = json.dumps(events[0] if len(events) == 1 else {"events": events}).encode()
        path = "/v1/events" if len(events) == 1 else "/v1/events/batch"
        head = f"POST {path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\nContent-Length: {len(body)}"
        return f"{head}\r\n\r\n".encode() + body, events

    def run(self, phase: Phase, connections: int = 64, timeout: float = 10.0) -> Outcome:
        return asyncio.run(self._run(phase, connections, timeout))

    async def _run(self, phase: Phase, connections: int, timeout: float) -> Outcome:
        self.locks = {}  # asyncio locks belong to one event loop: a new set per phase
        conns = [_Connection(self.host, self.port) for _ in range(connections)]
        await asyncio.gather(*(c.open() for c in conns))
        start = time.perf_counter() + 0.05
        total = int(phase.rate * (phase.warmup + phase.duration))
        measured_from = int(phase.rate * phase.warmup)
        plan = [self.rng.random() < phase.acting for _ in range(total)]
        slots = iter(range(total))
        outcome = Outcome()

        cutoff = start + phase.warmup + phase.duration + GRACE

        async def worker(conn: _Connection) -> None:
            for i in slots:
                if time.perf_counter() > cutoff:  # far behind schedule: the rest is counted, not sent
                    outcome.feeds += i >= measured_from
                    outcome.errors["not sent: the service fell behind"] += i >= measured_from
                    continue
                await self._slot(conn, start + i / phase.rate, plan[i], i >= measured_from, outcome, timeout)

        try:
            await asyncio.gather(*(worker(c) for c in conns))
        finally:
            for c in conns:
                c.close()
        outcome.span = outcome.last_done - (start + measured_from / phase.rate)
        return outcome

    async def _slot(self, conn, due: float, acting: bool, measured: bool, out: Outcome, timeout: float) -> None:
        event = None
        if acting:
            request, event = self.event_request(self.cursor)
            self.cursor += 1
            user = event[0]["user_id"]
        else:
            user = self.rng.choice(self.idle)
        feed = self.feed_request(user)
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        lock = self.locks.setdefault(user, asyncio.Lock())
        async with lock:
            if measured:
                out.lags.append(time.perf_counter() - due)
            feed_due = due
            if event is not None:
                status, _ = await self._exchange(conn, request, timeout, out, "event", measured)
                feed_due = time.perf_counter()  # the feed is due the moment the event is acknowledged
                if measured and status is not None:
                    out.event_latency.append(feed_due - due)
                if status != 200:
                    return
            status, body = await self._exchange(conn, feed, timeout, out, "feed", measured)
        done = time.perf_counter()
        out.answered_all += status is not None
        if not measured:
            return
        out.feeds += 1
        out.acting += event is not None
        out.last_done = done
        if status is None:
            return
        out.feed_latency.append(done - feed_due)
        if event is not None:
            out.acting_latency.append(done - feed_due)
            out.click_to_feed.append(done - due)
        if status == 200:
            self._check(json.loads(body), event, out)

    async def _exchange(self, conn, request: bytes, timeout: float, out: Outcome, what: str, measured: bool):
        try:
            async with asyncio.timeout(timeout):
                status, body = await conn.exchange_body(request)
        except TimeoutError:
            conn.close()
            out.errors[f"{what} timeout"] += measured
            return None, b""
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:
            conn.close()
            out.errors[f"{what} {type(exc).__name__}"] += measured
            return None, b""
        if status != 200:
            out.errors[f"{what} {status}"] += measured
        return status, body

    @staticmethod
    def _check(feed: dict, events: list[dict] | None, out: Outcome) -> None:
        """Count a miss when the answer ran the pipeline; for a feed after an act, count it as
        reflected when it names the act's last event as the newest it reflects and lists none of
        the act's items (the pipeline hides what the shopper already has)."""
        miss = "rank" in feed["timings_ms"] or any(t.startswith("recall.") for t in feed["timings_ms"])
        out.misses += miss
        if events is None:
            return
        out.acting_misses += miss
        shown = {item["item_id"] for item in feed["items"]}
        listed = [e["item_id"] for e in events if e["item_id"] in shown]
        if feed.get("live_event_id") == events[-1]["event_id"] and not listed:
            out.reflected += 1
        elif len(out.not_reflected) < 5:
            out.not_reflected.append(
                f"{events[-1]['event_id']}: feed names {feed.get('live_event_id')!r}, lists {listed}"
            )


def summary(phase: Phase, out: Outcome) -> dict:
    answered = sorted(out.feed_latency)
    acting = sorted(out.acting_latency)
    events = sorted(out.event_latency)
    errors = sum(out.errors.values())
    return {
        "rate": phase.rate,
        "acting_share": phase.acting,
        "duration_s": phase.duration,
        "feeds": out.feeds,
        "feeds_after_event": out.acting,
        "achieved_feeds_per_s": round(len(answered) / out.span, 1) if out.span > 0 else 0.0,
        **{f"p{q}_ms": _percentile_ms(answered, q) for q in (50, 95, 99)},
        "max_ms": _percentile_ms(answered, 100),
        **{f"after_event_p{q}_ms": _percentile_ms(acting, q) for q in (50, 95, 99)},
        "event_ack_p50_ms": _percentile_ms(events, 50),
        "event_ack_p99_ms": _percentile_ms(events, 99),
        "click_to_feed_p99_ms": _percentile_ms(sorted(out.click_to_feed), 99),
        "send_lag_p99_ms": _percentile_ms(sorted(out.lags), 99),
        "errors": dict(out.errors),
        "error_rate": round(errors / max(out.feeds, 1), 5),
        "cache_miss_share": round(out.misses / max(len(answered), 1), 4),
        "after_event_miss_share": round(out.acting_misses / max(out.acting, 1), 4),
        "reflected_share": round(out.reflected / max(out.acting, 1), 4),
        "not_reflected_examples": out.not_reflected,
    }


# ---------------------------------------------------------------------- runs
def replay_runs(
    run: str, work: Path, workers: list[int], phases: list[Phase], command: str, port: int, start_when: Path | None
) -> list[dict]:
    from service import Server, fresh_sqlite, key_for

    models = prepare(run, work)
    data = json.loads((work / run / "stream.json").read_text())
    rows = []
    for n_workers in workers:
        store = fresh_sqlite(work / run / "replay.db")
        key = key_for(store)
        with Server(models, n_workers, store, port=port, ready_timeout=1800) as server:
            while start_when is not None and not start_when.exists():  # loaded and warm; measure on a signal
                time.sleep(1)
            replay = Replay(server.url, key, data, data["idle_users"], tag=f"{n_workers}-{time.time_ns()}")
            context = {"run": run, "workers": n_workers, "warm_up": server.warm_up, "command": command}
            rows += measure(replay, phases, server.worker_pids(), context)
    return rows


def measure(replay: Replay, phases: list[Phase], pids: list[int], context: dict) -> list[dict]:
    """Run the phases one after another; a row per phase with the server's CPU (``pids``) per feed."""
    rows = []
    for phase in phases:
        began, cpu, client = time.time(), _cpu_seconds(pids), time.process_time()
        outcome = replay.run(phase)
        result = summary(phase, outcome)
        answered = max(outcome.answered_all, 1)
        result["server_cpu_ms_per_feed"] = round(1000 * (_cpu_seconds(pids) - cpu) / answered, 2)
        result["client_cpu_ms_per_feed"] = round(1000 * (time.process_time() - client) / answered, 2)
        result.update(context, started=began)
        rows.append(result)
        print(
            f"[{context['run']}] workers={context['workers']} rate={phase.rate:g} acting={phase.acting:g}: "
            f"p50 {result['p50_ms']} p95 {result['p95_ms']} p99 {result['p99_ms']} ms, "
            f"{result['achieved_feeds_per_s']}/s, errors {result['errors']}, "
            f"miss {result['cache_miss_share']}, reflected {result['reflected_share']}",
            flush=True,
        )
    return rows


def running_service(args: argparse.Namespace, run: str, phases: list[Phase], command: str) -> list[dict]:
    """The phases against a service already running (``--url``, its store ``--store``, its main
    process ``--server-pid`` for the CPU figures), e.g. one loaded and warmed ahead of time."""
    from service import key_for

    data = json.loads((args.work / run / "stream.json").read_text())
    children = subprocess.run(["pgrep", "-P", str(args.server_pid)], capture_output=True, text=True).stdout.split()
    pids = [int(p) for p in children if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
    pids = pids or [args.server_pid]
    replay = Replay(args.url, key_for(args.store), data, data["idle_users"], tag=f"running-{time.time_ns()}")
    return measure(replay, phases, pids, {"run": run, "workers": len(pids), "warm_up": None, "command": command})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="beauty,online-retail,gen100k")
    parser.add_argument("--workers", default="2,1")
    parser.add_argument(
        "--rates", default="100,200,500", help="feed requests/s, each with --acting of them after an event"
    )
    parser.add_argument("--acting", type=float, default=0.5, help="share of feed requests right after an event")
    parser.add_argument("--all-acting-at", default="500", help="rates also run with every feed after an event")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--work", type=Path, default=REPO.parent / "cache" / "replay-bench")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "replay.json")
    parser.add_argument("--port", type=int, default=18400)
    parser.add_argument("--url", help="measure a service already running here (with --store and --server-pid)")
    parser.add_argument("--store", help="that service's store URL (an API key is added to it)")
    parser.add_argument("--server-pid", type=int, help="that service's main process (CPU of its workers)")
    parser.add_argument("--start-when", type=Path, help="load the service, then wait for this file before measuring")
    parser.add_argument("--prepare", action="store_true", help="only train the versions")
    parser.add_argument("--doc", action="store_true", help="only rewrite docs/benchmarks.md from --out")
    args = parser.parse_args()
    if args.doc:
        write_block("replay", table(json.loads(args.out.read_text())))
        return
    runs = args.runs.split(",")
    if args.prepare:
        for run in runs:
            prepare(run, args.work)
        return
    phases = [Phase(float(r), args.acting, args.duration, args.warmup) for r in args.rates.split(",") if r]
    phases += [Phase(float(r), 1.0, args.duration, args.warmup) for r in args.all_acting_at.split(",") if r]
    record = json.loads(args.out.read_text()) if args.out.exists() else {"rows": []}
    commit = _commit()  # the code measured, whatever is committed while the runs go on
    for run in runs:
        command = " ".join(["python benchmarks/replay.py", *sys.argv[1:]]) + f" (commit {commit})"
        workers = [int(w) for w in args.workers.split(",")]
        if args.url:
            rows = running_service(args, run, phases, command)
        else:
            rows = replay_runs(run, args.work, workers, phases, command, args.port, args.start_when)
        keep = {(r["run"], r["workers"]) for r in rows}
        record["rows"] = [r for r in record["rows"] if (r["run"], r["workers"]) not in keep] + rows
        record.update(
            date=time.strftime("%Y-%m-%d"),
            commit=commit,
            machine=f"{os.cpu_count()} cores, no GPU",
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(table(record))


def _cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes used so far (from /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip()


def table(record: dict) -> str:
    commands = dict.fromkeys(r.get("command", "python benchmarks/replay.py") for r in record["rows"])
    lines = [
        f"Measured {record.get('date')} at commit {record.get('commit')} on {record.get('machine')} ("
        + "; ".join(f"`{c}`" for c in commands)
        + "); server, workers and the replay client "
        "share the cores. *feed* latencies count from the moment the feed was due (for a feed after an event: "
        "the event's acknowledgement); *click to feed* from the moment the event was due to the feed's last byte.",
        "",
        "| catalogue | workers | feeds/s offered | after an event | achieved/s | feed p50 ms | p95 ms | p99 ms "
        "| p99 after event ms | event ack p99 ms | click to feed p99 ms | errors | cache misses | reflected "
        "| server CPU ms per feed |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {"beauty": 0, "online-retail": 1, "gen100k": 2}
    for r in sorted(record["rows"], key=lambda r: (order.get(r["run"], 9), r["workers"], r["acting_share"], r["rate"])):
        lines.append(
            f"| {r['run']} | {r['workers']} | {r['rate']:g} | {r['acting_share']:.0%} | {r['achieved_feeds_per_s']:g} "
            f"| {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['after_event_p99_ms']} | {r['event_ack_p99_ms']} "
            f"| {r['click_to_feed_p99_ms']} | {r['error_rate']:.2%} | {r['cache_miss_share']:.1%} "
            f"| {r['reflected_share']:.1%} | {r.get('server_cpu_ms_per_feed', '')} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
