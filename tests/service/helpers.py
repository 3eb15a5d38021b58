"""Shared by the service tests: a tiny trained model folder and a real server process on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shoprec.data.demo import generate_demo_shop


def tiny_shop(seed: int = 3, n_items: int = 300, n_users: int = 200):
    return generate_demo_shop(seed=seed, n_items=n_items, n_users=n_users).to_dataset()


def train_tiny(models_dir: Path, seed: int = 3, n_items: int = 300, n_users: int = 200, evaluate: bool = False) -> Path:
    """Train one version of the default pipeline on a small demo shop (cross-category in graph mode;
    text vectors cached across the test session)."""
    from shoprec.service.versions import train_version

    cache = Path(os.environ.get("SHOPREC_TEST_VECTOR_CACHE", Path(models_dir).parent / "vector-cache"))
    return train_version(
        tiny_shop(seed, n_items, n_users), models_dir, evaluate=evaluate, vector_cache=cache, crosscat_mode="graph"
    )


def two_versions(version: Path, root: Path) -> Path:
    """``root`` with ``version`` published twice (v0001, v0002): two A/B arms of the same model."""
    copy_version(version, root, "v0001")
    copy_version(version, root, "v0002")
    return root


def version_users(models_dir: Path) -> list[str]:
    """The user ids of v0001's training data."""
    from shoprec.data.dataset import Dataset

    return [str(u) for u in Dataset.load(models_dir / "v0001" / "data").user_vocab.ids()]


def copy_version(version: Path, root: Path, name: str = "v0001") -> Path:
    """A copy of a trained version folder published in ``root`` under ``name`` (staged, then renamed like
    a training run), its manifest naming the new version."""
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{name}"
    shutil.copytree(version, staging)
    manifest = json.loads((staging / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = name
    (staging / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return staging.rename(root / name)


@contextmanager
def postgres_schema(base_url: str, prefix: str = "t") -> Iterator[str]:
    """A URL whose connections use a new, empty PostgreSQL schema of their own, dropped afterwards."""
    import psycopg
    from psycopg import sql

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``shoprec serve`` in a child process; ``url`` once ready. Use as a context manager."""

    def __init__(self, models_dir: Path, *args: str, workers: int = 1, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            sys.executable,
            "-m",
            "shoprec.cli.main",
            "serve",
            "--models",
            str(models_dir),
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *args,
        ]
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log = Path(models_dir) / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> Server:
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A ``redis-server`` of the test's own on a free loopback port, without persistence (a restart
    starts empty, like a Redis that lost its data). :meth:`kill` is SIGKILL; :meth:`start` again
    restarts it on the same port."""

    def __init__(self, folder: Path) -> None:
        if not Path(REDIS_SERVER).exists():
            raise FileNotFoundError(
                f"redis-server not found on PATH or at {REDIS_SERVER} (apt-get install redis-server)"
            )
        self.folder, self.port = Path(folder), free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        import redis

        self.folder.mkdir(parents=True, exist_ok=True)
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        log = (self.folder / "redis.log").open("a")
        self.proc = subprocess.Popen([REDIS_SERVER, *args, "--dir", str(self.folder)], stdout=log, stderr=log)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    client.close()
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
