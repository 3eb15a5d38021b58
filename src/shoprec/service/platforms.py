"""Where a shopper is: the platform (channel) and device language that events and feed requests carry.

A platform is free text: the usual ones are :data:`KNOWN_PLATFORMS`, and any other value is accepted
as it is (a shop adds a channel before the service knows it), stored, and counted, so an operator sees
new or misspelt values: :class:`PlatformCounts` keeps this worker's counts per platform, values
outside the known list under ``other`` with the distinct values themselves (the first
:data:`MAX_UNSEEN` of them). They are served by ``GET /v1/stats/platforms`` and exported as
``shoprec_platform_total{where,platform}`` and ``shoprec_platform_unseen_values`` in ``/metrics``.

Values are trimmed and lower-cased before they are stored (``"App "`` is ``app``).
"""

from __future__ import annotations

import threading
from collections import Counter

KNOWN_PLATFORMS = ("web", "app", "mini-program", "email")
"""Platforms counted under their own name; any other value counts as ``other``."""
PLATFORM_PATTERN = r"^[^\x00-\x1f]*[^\x00-\x1f\s][^\x00-\x1f]*$"
"""Printable text with at least one non-space character."""
LANGUAGE_PATTERN = r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$"
"""A language tag as devices report it: ``en``, ``zh-CN``, ``pt_BR``, ``zh-Hant-TW``."""
MAX_UNSEEN = 100
"""Distinct unknown platform values remembered per worker (beyond it they are only counted)."""
WHERE = ("events", "requests")


def normalize_platform(value: str | None) -> str | None:
    """``value`` trimmed and lower-cased; None stays None.

    >>> normalize_platform(" Mini-Program ")
    'mini-program'
    """
    return None if value is None else value.strip().lower()


class PlatformCounts:
    """This worker's events and feed requests by platform (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, Counter] = {where: Counter() for where in WHERE}
        self.unseen: Counter = Counter()
        """Values outside :data:`KNOWN_PLATFORMS`, by value (at most :data:`MAX_UNSEEN` of them)."""
        self.unseen_dropped = 0
        """Unknown values counted after :data:`MAX_UNSEEN` distinct ones were remembered."""

    def add(self, where: str, platforms: list[str | None]) -> None:
        """Count the platforms of events (``where="events"``) or of feed requests (``"requests"``)."""
        with self._lock:
            counts = self.counts[where]
            for platform in platforms:
                if platform is None:
                    counts["none"] += 1
                elif platform in KNOWN_PLATFORMS:
                    counts[platform] += 1
                else:
                    counts["other"] += 1
                    if platform in self.unseen or len(self.unseen) < MAX_UNSEEN:
                        self.unseen[platform] += 1
                    else:
                        self.unseen_dropped += 1

    def snapshot(self) -> dict:
        """The counts as JSON: per ``where`` and platform (``other``: unknown values, ``none``: not
        given), and the unknown values seen with their counts, most frequent first."""
        with self._lock:
            return {
                "known": list(KNOWN_PLATFORMS),
                **{where: dict(self.counts[where]) for where in WHERE},
                "unseen_values": dict(self.unseen.most_common()),
                "unseen_values_not_listed": self.unseen_dropped,
            }


class PlatformCollector:
    """:class:`PlatformCounts` as Prometheus metrics, read at each scrape."""

    def __init__(self) -> None:
        self.counts: PlatformCounts | None = None

    def describe(self) -> list:
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        if self.counts is None:
            return
        snap = self.counts.snapshot()
        total = CounterMetricFamily(
            "shoprec_platform",
            "Events stored and feed requests by platform (other: a value outside web, app, mini-program, "
            "email; none: no platform given)",
            labels=["where", "platform"],
        )
        for where in WHERE:
            for platform in (*KNOWN_PLATFORMS, "other", "none"):
                total.add_metric([where, platform], snap[where].get(platform, 0))
        yield total
        yield GaugeMetricFamily(
            "shoprec_platform_unseen_values",
            "Distinct platform values outside the known ones seen by this worker (listed at /v1/stats/platforms)",
            value=len(snap["unseen_values"]) + (1 if snap["unseen_values_not_listed"] else 0),
        )
