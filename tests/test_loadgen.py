"""benchmarks/loadgen.py against a real local HTTP/1.1 server that records what it receives."""

from __future__ import annotations

import importlib.util
import json
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shoprec.errors import ConfigError, DataError

LOADGEN_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "loadgen.py"


def _import_loadgen():
    spec = importlib.util.spec_from_file_location("loadgen", LOADGEN_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["loadgen"] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


loadgen = _import_loadgen()
LoadConfig, run_load = loadgen.LoadConfig, loadgen.run_load


class _Handler(BaseHTTPRequestHandler):
    """/slow/<ms> sleeps, /status/<code> answers that code, /chunked and /close test the body framings,
    POST answers 202; everything else 200. Each request is recorded with its arrival time and client port."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per response, flushed after each: no Nagle stall between head and body
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._record(b"")
        if match := re.fullmatch(r"/slow/(\d+)", self.path):
            time.sleep(int(match[1]) / 1000)
        if match := re.fullmatch(r"/status/(\d+)", self.path):
            return self._answer(int(match[1]))
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5;note=1\r\nhello\r\n3\r\n!!!\r\n0\r\nX-Trailer: 1\r\n\r\n")
            return None
        if self.path == "/close":  # no length: the body ends with the connection
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"bye")
            self.close_connection = True
            return None
        return self._answer(200)

    def do_POST(self) -> None:
        self._record(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer(202)

    def _record(self, body: bytes) -> None:
        self.server.records.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": body,
                "at": time.perf_counter(),
                "port": self.client_address[1],
            }
        )

    def _answer(self, status: int) -> None:
        body = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 32 connections open at once must not overflow the listen backlog

    def handle_error(self, request, client_address) -> None:
        pass  # the generator hangs up on timed-out requests: the late write fails, as expected


@pytest.fixture(scope="module")
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.records = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def base(server) -> str:
    server.records.clear()
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_closed_loop_sends_exactly_the_requested_count_on_keep_alive_connections(server, base):
    result = run_load(LoadConfig(url=f"{base}/ok", rate=0, connections=4, requests=57, duration=None))
    assert (result["sent"], result["ok"], len(server.records)) == (57, 57, 57)
    assert result["errors_by_status"] == {} and result["timeouts"] == result["connection_errors"] == 0
    assert len({r["port"] for r in server.records}) <= 4  # reused, not one connection per request
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]


def test_open_loop_spreads_requests_at_the_target_rate(server, base):
    started = time.perf_counter()
    result = run_load(LoadConfig(url=f"{base}/ok", rate=200, connections=8, duration=0.5))
    elapsed = time.perf_counter() - started
    assert result["sent"] == len(server.records) == 100  # slots 0/200 .. 99/200 s fall inside 0.5 s
    assert 0.45 < elapsed < 1.0 and 160 < result["achieved_rate"] < 240
    arrivals = sorted(r["at"] for r in server.records)
    first_half = sum(at < arrivals[0] + 0.25 for at in arrivals)
    assert 40 <= first_half <= 60, "requests must be paced, not sent in a burst"


def test_latency_counts_from_the_scheduled_time(server, base):
    result = run_load(LoadConfig(url=f"{base}/slow/40", rate=50, connections=4, requests=10, duration=None))
    assert result["ok"] == 10 and result["p50_ms"] >= 40
    # One connection, 100 ms per response, 40 requests/s scheduled: request k waits behind k others, so its
    # latency from its due time is about 100 + 75 k ms; timing from the actual send would show 100 ms.
    queued = run_load(LoadConfig(url=f"{base}/slow/100", rate=40, connections=1, requests=6, duration=None))
    assert queued["ok"] == 6 and queued["max_ms"] >= 400 and queued["send_lag_p99_ms"] >= 250


def test_warmup_requests_are_sent_but_not_counted(server, base):
    result = run_load(LoadConfig(url=f"{base}/ok", rate=100, warmup=0.2, requests=10, duration=None))
    assert (result["warmup_sent"], result["sent"], len(server.records)) == (20, 10, 30)


def test_error_statuses_and_timeouts_are_counted(server, base):
    codes = ("200", "404", "503")
    result = run_load(LoadConfig(url=f"{base}/status/{{user}}", users=codes, rate=0, requests=60, duration=None))
    seen = {code: sum(r["path"] == f"/status/{code}" for r in server.records) for code in codes}
    assert result["ok"] == seen["200"] and result["errors_by_status"] == {c: seen[c] for c in ("404", "503") if seen[c]}
    assert sum(seen.values()) == 60 and min(seen.values()) > 0

    slow = run_load(LoadConfig(url=f"{base}/slow/500", connections=3, requests=3, duration=None, timeout=0.1))
    assert (slow["timeouts"], slow["ok"], slow["p50_ms"]) == (3, 0, None)


def test_chunked_and_close_delimited_bodies_are_read(server, base):
    for path in ("/chunked", "/close"):
        result = run_load(LoadConfig(url=base + path, connections=2, requests=20, duration=None))
        assert (result["ok"], result["connection_errors"]) == (20, 0), result["first_error"]
    assert len({r["port"] for r in server.records if r["path"] == "/close"}) == 20  # a new connection each


def test_cli_fills_the_template_from_id_files_and_writes_json(server, base, tmp_path, capsys):
    (tmp_path / "users.txt").write_text("u1\nu2\n\nu3\n")
    (tmp_path / "items.txt").write_text("i7\ni8\n")
    argv = ["--get", f"{base}/users/{{user}}/similar/{{item}}?k=5", "--users", str(tmp_path / "users.txt")]
    argv += ["--items", str(tmp_path / "items.txt"), "--requests", "40", "--json", str(tmp_path / "r.json")]
    assert loadgen.main(argv) == 0
    assert "achieved" in capsys.readouterr().out
    paths = {r["path"] for r in server.records}
    assert all(re.fullmatch(r"/users/u[123]/similar/i[78]\?k=5", p) for p in paths) and len(paths) > 3
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sent"] == report["ok"] == 40 and report["target_rate"] == 0
    assert {"achieved_rate", "errors_by_status", "timeouts", "p90_ms", "p99_ms", "max_ms", "duration_s"} <= set(report)


@pytest.mark.parametrize("batch", [1, 4])
def test_events_are_json_with_unique_ids(server, base, batch):
    users, items = loadgen.id_range("0:5", "user"), ("a", "b")
    config = LoadConfig(url=f"{base}/events", kind="events", users=users, items=items, batch=batch, requests=6,
                        duration=None, headers=(("X-API-Key", "k1"),))  # fmt: skip
    result = run_load(config)
    assert result["ok"] == 6 and result["events_per_s"] > 0
    bodies = [json.loads(r["body"]) for r in server.records]
    assert all(r["headers"]["X-API-Key"] == "k1" and r["headers"]["Content-Type"] == "application/json"
               for r in server.records)  # fmt: skip
    events = bodies if batch == 1 else [e for body in bodies for e in body["events"]]
    assert batch == 1 or all(list(body) == ["events"] and len(body["events"]) == batch for body in bodies)
    assert len(events) == 6 * batch and len({e["event_id"] for e in events}) == len(events)
    for event in events:
        assert re.fullmatch(r"[0-9a-f]{32}", event["event_id"]) and event["event"] in loadgen.EVENT_KINDS
        assert event["user_id"] in users and event["item_id"] in items
        assert abs(event["timestamp"] - time.time()) < 60


def test_bad_input_says_what_to_fix(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--users FILE"):
        LoadConfig(url="http://127.0.0.1:1/u/{user}")
    with pytest.raises(ConfigError, match="placeholder"):
        LoadConfig(url="http://127.0.0.1:1/u/{shop}")
    with pytest.raises(ConfigError, match="http://"):
        LoadConfig(url="https://127.0.0.1:1/")
    with pytest.raises(ConfigError, match="unbounded"):
        LoadConfig(url="http://127.0.0.1:1/", duration=None)
    with pytest.raises(DataError, match="nope.txt"):
        loadgen.read_ids(str(tmp_path / "nope.txt"), "user")
    with pytest.raises(ConfigError, match="A < B"):
        loadgen.id_range("9:3", "item")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert loadgen.main(["--get", f"http://127.0.0.1:{port}/", "--requests", "1"]) == 2
    assert "cannot connect to 127.0.0.1" in capsys.readouterr().err


def test_runs_as_a_script(base, tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, str(LOADGEN_PATH), "--get", f"{base}/ok", "--rate", "100", "--requests", "5"]
    done = subprocess.run([*cmd, "--json", str(out)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["ok"] == 5


def test_percentiles_are_nearest_rank_and_ids_are_quoted_into_urls():
    ordered = [ms / 1000 for ms in range(1, 101)]
    assert [loadgen._percentile_ms(ordered, q) for q in (50, 99, 100)] == [50.0, 99.0, 100.0]
    assert loadgen._percentile_ms([], 50) is None
    factory = loadgen._RequestFactory(LoadConfig(url="http://h:1/u/{user}?x=1", users=("a b/c",)))
    assert factory().startswith(b"GET /u/a%20b%2Fc?x=1 HTTP/1.1\r\nHost: h:1\r\n")
