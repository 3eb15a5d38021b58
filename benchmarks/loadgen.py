"""HTTP load generator for the service benchmarks: open- or closed-loop, bounded, from its own process.

    # 500 recommendation requests/s for 10 s after 2 s of warm-up, 32 keep-alive connections
    .venv/bin/python benchmarks/loadgen.py --get 'http://127.0.0.1:8000/users/{user}/recommendations?k=10' \\
        --users users.txt --rate 500 --duration 10 --warmup 2 --json /tmp/rec.json
    # event ingest as fast as 16 connections go, 50 events per request, 20,000 requests
    .venv/bin/python benchmarks/loadgen.py --post-events http://127.0.0.1:8000/events --batch 50 \\
        --user-range 0:1000 --item-range 0:5000 --rate 0 --connections 16 --requests 20000 \\
        --header 'X-API-Key: secret'

As a library (``benchmarks/`` is a script folder, so load the file or run it in a subprocess):
``run_load(LoadConfig(url=..., rate=500, duration=10)) -> dict``.

Open loop (``rate > 0``): request ``i`` is due at ``start + i / rate`` whatever the service does; a free
connection takes the next due request, and its latency counts from the *scheduled* time, so time spent
queued behind slow responses is measured (no coordinated omission). Closed loop (``rate = 0``): each
connection sends its next request as soon as the last one is answered. Latency percentiles cover every
request that got a response, whatever its status; timeouts and broken connections are counted apart.
``send_lag_*`` is how late requests left against their schedule: a large value means the generator or
the pool (``connections``) could not keep up and the service was not offered the target rate.

Plain HTTP/1.1 over ``asyncio.open_connection``: a hand-built request and a minimal response parser
(status line, ``Content-Length`` or chunked body, ``Connection: close``). Measured closed-loop against a
trivial asyncio server, the generator pinned to one core: about 60 us of CPU per request (15,000 requests/s);
``httpx.AsyncClient`` needed 1.8 ms (8 connections) to 3.4 ms (32) per request, 300-560 requests/s. Open loop
costs more per request (one timer wake-up each): about 0.14 of a core at 500 requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

from shoprec.errors import ConfigError, DataError, ShoprecError

EVENT_KINDS = ("view", "click", "cart", "purchase")
EVENT_CUM_WEIGHTS = (0.70, 0.90, 0.97, 1.0)  # a shop's funnel: 70% views, 20% clicks, 7% carts, 3% purchases
PLACEHOLDERS = {"user", "item"}


@dataclass(frozen=True)
class LoadConfig:
    """One bounded load run against one URL. Stops at ``duration`` seconds or ``requests`` measured
    requests, whichever comes first (at least one of the two must be set)."""

    url: str  # http://host:port/path?query; for kind "get" it may hold {user} and {item}
    kind: str = "get"  # "get" (the URL template) or "events" (POST JSON events to the URL)
    users: tuple[str, ...] = ()  # ids filled into {user} / the events' user_id, picked at random
    items: tuple[str, ...] = ()  # ids filled into {item} / the events' item_id, picked at random
    batch: int = 1  # events per POST: 1 sends the event object, more send {"events": [...]}
    rate: float = 0.0  # target requests/s (open loop); 0 = closed loop, as fast as the connections go
    connections: int = 32  # keep-alive connections, i.e. the most requests in flight at once
    duration: float | None = 10.0  # measured seconds after the warm-up; None = bounded by `requests` only
    requests: int | None = None  # measured requests to send; None = bounded by `duration` only
    warmup: float = 0.0  # seconds of load before measuring; those requests are not counted
    timeout: float = 5.0  # seconds one request may take (connecting included) before it counts as a timeout
    headers: tuple[tuple[str, str], ...] = ()  # extra request headers, e.g. (("X-API-Key", "secret"),)
    seed: int = 0  # seeds the choice of ids and event kinds

    def __post_init__(self) -> None:
        _check_config(self)


def _check_config(config: LoadConfig) -> None:
    """Raise ConfigError for a run that cannot work, naming the option to change."""
    if config.kind not in ("get", "events"):
        raise ConfigError(f"unknown request kind {config.kind!r}", where="kind", fix="use 'get' or 'events'")
    parts = urlsplit(config.url)
    if parts.scheme != "http" or not parts.hostname:
        raise ConfigError(f"cannot load {config.url!r}", where="url", fix="give a plain http://host:port/path URL")
    names = set(re.findall(r"\{(\w*)\}", config.url))
    if names - PLACEHOLDERS or (names and config.kind == "events"):
        raise ConfigError(
            f"unknown placeholder(s) {sorted(names)} in {config.url!r}",
            where="url",
            fix="GET templates may hold only {user} and {item}; the events URL holds none",
        )
    needs = {"user", "item"} if config.kind == "events" else names
    for name, ids in (("user", config.users), ("item", config.items)):
        if name in needs and not ids:
            raise ConfigError(
                f"no {name} ids to fill the requests with",
                where=f"{name}s",
                fix=f"give --{name}s FILE or --{name}-range A:B",
            )
    if config.rate < 0 or config.connections < 1 or config.batch < 1 or config.timeout <= 0 or config.warmup < 0:
        raise ConfigError("rate and warmup must be >= 0, connections and batch >= 1, timeout > 0", where="options")
    if config.duration is None and config.requests is None:
        raise ConfigError("the run is unbounded", where="options", fix="give --duration, --requests or both")
    if (config.duration is not None and config.duration <= 0) or (config.requests is not None and config.requests < 1):
        raise ConfigError("duration must be > 0 and requests >= 1", where="options")


class _RequestFactory:
    """Builds the bytes of the next request: the GET template filled with random ids, or a POST of events."""

    def __init__(self, config: LoadConfig) -> None:
        parts = urlsplit(config.url)
        self.target = parts.path or "/"
        if parts.query:
            self.target += "?" + parts.query
        names = {name.lower() for name, _ in config.headers}
        host = [] if "host" in names else [f"Host: {parts.hostname}:{parts.port or 80}"]
        lines = [*host, *(f"{name}: {value}" for name, value in config.headers)]
        self.header_block = "".join(line + "\r\n" for line in lines)
        self.kind, self.batch = config.kind, config.batch
        self.rng = random.Random(config.seed)
        quoted = config.kind == "get"  # ids go into a URL there, raw into JSON for events
        self.users = [quote(u, safe="") if quoted else u for u in config.users] or [""]
        self.items = [quote(i, safe="") if quoted else i for i in config.items] or [""]

    def __call__(self) -> bytes:
        if self.kind == "get":
            target = self.target.replace("{user}", self.rng.choice(self.users))
            target = target.replace("{item}", self.rng.choice(self.items))
            return f"GET {target} HTTP/1.1\r\n{self.header_block}\r\n".encode()
        events = [self.event() for _ in range(self.batch)]
        body = json.dumps(events[0] if self.batch == 1 else {"events": events}).encode()
        head = f"POST {self.target} HTTP/1.1\r\n{self.header_block}Content-Type: application/json\r\n"
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body

    def event(self) -> dict:
        """One event with a fresh unique id, at the current time (unix seconds)."""
        return {
            "event_id": uuid.uuid4().hex,
            "user_id": self.rng.choice(self.users),
            "item_id": self.rng.choice(self.items),
            "event": self.rng.choices(EVENT_KINDS, cum_weights=EVENT_CUM_WEIGHTS)[0],
            "timestamp": int(time.time()),
        }


class _Connection:
    """One keep-alive HTTP/1.1 connection, reopened when the server closes it or a request fails."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole response, return its status."""
        return (await self.exchange_body(request))[0]

    async def exchange_body(self, request: bytes) -> tuple[int, bytes]:
        """Send one request, read the whole response, return its status and body."""
        if self.writer is None or self.writer.is_closing() or self.reader.at_eof():
            self.close()  # the server closed an idle keep-alive connection
            await self.open()
        self.writer.write(request)
        status, keep_alive, body = await _read_response(self.reader)
        if not keep_alive:
            self.close()
        return status, body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    """Read one response (head and body); return (status, whether the connection stays open, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    version, status = lines[0][:8], int(lines[0][9:12])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    keep_alive = headers.get(b"connection") != b"close" and version == b"HTTP/1.1"
    body = b""
    if b"chunked" in headers.get(b"transfer-encoding", b""):
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])  # the chunk and its CRLF
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the closing empty line
            pass
        body = b"".join(chunks)
    elif b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif status >= 200 and status not in (204, 304):  # no length: the body runs to the end of the connection
        body = await reader.read()
        keep_alive = False
    return status, keep_alive, body


class _Schedule:
    """Hands out request slots: (due time, measured?) until the run's bounds are reached, then None."""

    def __init__(self, config: LoadConfig, start: float) -> None:
        self.rate, self.start = config.rate, start
        self.measure_from = start + config.warmup
        self.measure_until = self.measure_from + config.duration if config.duration is not None else float("inf")
        self.max_measured = config.requests if config.requests is not None else float("inf")
        self.index = self.measured = 0

    def next_slot(self) -> tuple[float, bool] | None:
        due = self.start + self.index / self.rate if self.rate else time.perf_counter()
        measured = due >= self.measure_from
        if measured and (due >= self.measure_until or self.measured >= self.max_measured):
            return None
        self.index += 1
        self.measured += measured
        return due, measured


@dataclass
class _Stats:
    """What the measured requests did."""

    latencies: list[float] = field(default_factory=list)  # seconds from due time to full response
    send_lags: list[float] = field(default_factory=list)  # seconds from due time to sending
    statuses: Counter = field(default_factory=Counter)
    sent: int = 0
    warmup_sent: int = 0
    timeouts: int = 0
    connection_errors: int = 0
    first_error: str = ""
    last_done: float = 0.0


async def _worker(
    conn: _Connection, schedule: _Schedule, factory: _RequestFactory, stats: _Stats, timeout: float
) -> None:
    """Send requests on one connection until the schedule runs out."""
    while (slot := schedule.next_slot()) is not None:
        due, measured = slot
        request = factory()  # built before the due time where possible, so its cost stays out of the latency
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        sent_at = time.perf_counter()
        status = None
        try:
            async with asyncio.timeout(timeout):
                status = await conn.exchange(request)
        except TimeoutError:
            conn.close()
            stats.timeouts += measured
        except (OSError, EOFError, ValueError, asyncio.LimitOverrunError) as exc:  # refused, reset, bad response
            conn.close()
            stats.connection_errors += measured
            stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"
        done = time.perf_counter()
        if not measured:
            stats.warmup_sent += 1
            continue
        stats.sent += 1
        stats.send_lags.append(sent_at - due)
        stats.last_done = done
        if status is not None:
            stats.statuses[status] += 1
            stats.latencies.append(done - due)


async def _run(config: LoadConfig) -> dict:
    parts = urlsplit(config.url)
    conns = [_Connection(parts.hostname, parts.port or 80) for _ in range(config.connections)]
    try:
        async with asyncio.timeout(config.timeout):
            opened = await asyncio.gather(*(conn.open() for conn in conns), return_exceptions=True)
    except TimeoutError:
        opened = [TimeoutError(f"no answer within {config.timeout} s")]
    if failed := [exc for exc in opened if isinstance(exc, BaseException)]:
        for conn in conns:
            conn.close()
        raise ShoprecError(
            f"cannot connect to {parts.hostname}:{parts.port or 80}: {failed[0]}. "
            "Start the service first, or fix the URL"
        ) from failed[0]
    factory, stats = _RequestFactory(config), _Stats()
    cpu_start, start = time.process_time(), time.perf_counter()
    schedule = _Schedule(config, start)
    try:
        await asyncio.gather(*(_worker(conn, schedule, factory, stats, config.timeout) for conn in conns))
    finally:
        for conn in conns:
            conn.close()
    return _summary(config, stats, schedule.measure_from, time.process_time() - cpu_start)


def _percentile_ms(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds (None when there is nothing)."""
    if not ordered:
        return None
    rank = max(math.ceil(q * len(ordered) / 100), 1)
    return round(ordered[rank - 1] * 1000, 3)


def _summary(config: LoadConfig, stats: _Stats, measure_from: float, cpu_s: float) -> dict:
    latencies, lags = sorted(stats.latencies), sorted(stats.send_lags)
    duration = max(stats.last_done - measure_from, 1e-9) if stats.sent else 0.0
    ok = sum(n for status, n in stats.statuses.items() if 200 <= status < 300)
    return {
        "url": config.url,
        "kind": config.kind,
        "batch": config.batch if config.kind == "events" else None,
        "connections": config.connections,
        "target_rate": config.rate,
        "achieved_rate": round(len(latencies) / duration, 2) if duration else 0.0,
        "events_per_s": round(ok * config.batch / duration, 2) if duration and config.kind == "events" else None,
        "sent": stats.sent,
        "ok": ok,
        "errors_by_status": {str(s): n for s, n in sorted(stats.statuses.items()) if not 200 <= s < 300},
        "timeouts": stats.timeouts,
        "connection_errors": stats.connection_errors,
        "first_error": stats.first_error or None,
        **{f"p{q}_ms": _percentile_ms(latencies, q) for q in (50, 90, 95, 99)},
        "max_ms": _percentile_ms(latencies, 100),
        "send_lag_p50_ms": _percentile_ms(lags, 50),
        "send_lag_p99_ms": _percentile_ms(lags, 99),
        "duration_s": round(duration, 3),
        "warmup_sent": stats.warmup_sent,
        "generator_cpu_s": round(cpu_s, 3),
    }


def run_load(config: LoadConfig) -> dict:
    """Run one bounded load and return its summary (the ``--json`` fields).

    ``sent`` counts measured requests; ``ok`` the 2xx answers, ``errors_by_status`` the others by status;
    ``timeouts`` and ``connection_errors`` those with no answer. ``achieved_rate`` is answers per second over
    ``duration_s`` (from the end of the warm-up to the last measured answer); ``events_per_s`` is events
    acknowledged with a 2xx per second. ``p*_ms`` are nearest-rank latency percentiles from the due time.
    ``generator_cpu_s`` is this process's CPU over the run: close to the wall time means the generator, not
    the service, was the limit.

    >>> run_load(LoadConfig(url="http://127.0.0.1:8000/health", rate=100, duration=2))["p99_ms"]  # doctest: +SKIP
    1.7
    """
    return asyncio.run(_run(config))


def format_line(result: dict) -> str:
    """One human-readable line for a result."""
    ms = " ".join(f"{q} {result[f'{q}_ms']}" for q in ("p50", "p90", "p99", "max"))
    target = f"{result['target_rate']:g}/s" if result["target_rate"] else "closed-loop"
    events = f" ({result['events_per_s']} events/s)" if result["events_per_s"] is not None else ""
    return (
        f"{result['kind']} {result['url']}  target {target}  achieved {result['achieved_rate']}/s{events}  "
        f"sent {result['sent']} ok {result['ok']} errors {result['errors_by_status']} "
        f"timeouts {result['timeouts']} conn-errors {result['connection_errors']}  "
        f"ms: {ms}  over {result['duration_s']} s"
    )


def read_ids(path: str, what: str) -> tuple[str, ...]:
    """Ids from a file, one per line (blank lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(
            f"cannot read the {what} ids: {exc.strerror}", file=path, fix="give a text file with one id a line"
        ) from exc
    ids = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not ids:
        raise DataError(f"no {what} ids in the file", file=path, fix="give a text file with one id a line")
    return ids


def id_range(text: str, what: str) -> tuple[str, ...]:
    """Ids ``A`` to ``B - 1`` as strings from ``"A:B"``."""
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if not match or int(match[1]) >= int(match[2]):
        raise ConfigError(
            f"bad range {text!r}", where=f"--{what}-range", fix="write A:B with integers A < B, e.g. 0:1000"
        )
    return tuple(str(n) for n in range(int(match[1]), int(match[2])))


def parse_header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ConfigError(f"bad header {text!r}", where="--header", fix="write 'Name: value'")
    return name.strip(), value.strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--get", metavar="URL_TEMPLATE", help="GET this URL; {user} and {item} are filled with ids")
    target.add_argument("--post-events", metavar="URL", help="POST JSON events to this URL")
    for what in ("user", "item"):
        ids = p.add_mutually_exclusive_group()
        ids.add_argument(f"--{what}s", metavar="FILE", help=f"{what} ids, one a line")
        ids.add_argument(f"--{what}-range", metavar="A:B", help=f"{what} ids A .. B-1")
    p.add_argument("--batch", type=int, default=1, help="events per POST (1 = the event object itself)")
    p.add_argument("--rate", type=float, default=0.0, help="target requests/s; 0 = closed loop (default)")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    p.add_argument("--duration", type=float, help="measured seconds (default 10 unless --requests is given)")
    p.add_argument("--requests", type=int, help="measured requests")
    p.add_argument("--warmup", type=float, default=0.0, help="seconds of unmeasured load first")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per request (default 5)")
    p.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the summary as JSON here")
    return p


def _ids(args: argparse.Namespace, what: str) -> tuple[str, ...]:
    if (path := getattr(args, f"{what}s")) is not None:
        return read_ids(path, what)
    if (spec := getattr(args, f"{what}_range")) is not None:
        return id_range(spec, what)
    return ()


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    return LoadConfig(
        url=args.get or args.post_events,
        kind="get" if args.get else "events",
        users=_ids(args, "user"),
        items=_ids(args, "item"),
        batch=args.batch,
        rate=args.rate,
        connections=args.connections,
        duration=args.duration if args.duration is not None or args.requests is not None else 10.0,
        requests=args.requests,
        warmup=args.warmup,
        timeout=args.timeout,
        headers=tuple(parse_header(h) for h in args.header),
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = run_load(config_from_args(args))
    except ShoprecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_line(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
