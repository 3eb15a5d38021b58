"""Prometheus metrics of one worker process (scrape each worker, or run one worker per port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

from shoprec.service.platforms import PlatformCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "shoprec_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "shoprec_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ingested = Counter("shoprec_events_ingested_total", "Events committed", registry=self.registry)
        self.duplicates = Counter(
            "shoprec_events_duplicate_total", "Events ignored as already stored", registry=self.registry
        )
        self.loaded = Gauge("shoprec_model_versions_loaded", "Model versions loaded", registry=self.registry)
        self.swaps = Gauge("shoprec_model_swaps", "Serving-set swaps since start", registry=self.registry)
        self.live = LiveCollector()
        self.registry.register(self.live)
        self.platforms = PlatformCollector()
        self.registry.register(self.platforms)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def events(self, inserted: int, duplicates: int) -> None:
        self.ingested.inc(inserted)
        self.duplicates.inc(duplicates)

    def render(self, engine) -> bytes:
        self.loaded.set(len(engine.versions.loaded))
        self.swaps.set(engine.versions.swaps)
        self.live.state = engine.live
        self.platforms.counts = engine.platforms
        return generate_latest(self.registry)


class LiveCollector:
    """The live state's counts (:class:`shoprec.service.live.LiveStats`), read at each scrape."""

    def __init__(self) -> None:
        self.state = None

    def describe(self) -> list:
        return []

    def collect(self):
        if self.state is None:
            return
        stats = self.state.stats
        reads = CounterMetricFamily(
            "shoprec_live_reads",
            "Live-state reads by where they were answered (unavailable: degraded, events may be missing)",
            labels=["state"],
        )
        for state in ("redis", "store", "unavailable"):
            reads.add_metric([state], stats.reads[state])
        yield reads
        yield CounterMetricFamily("shoprec_live_redis_errors", "Redis commands that failed", value=stats.redis_errors)
        yield CounterMetricFamily(
            "shoprec_live_repopulated", "User lists rebuilt in Redis from the store", value=stats.repopulated
        )
        yield CounterMetricFamily(
            "shoprec_live_invalidated", "User lists dropped from Redis after a failed write", value=stats.invalidated
        )
