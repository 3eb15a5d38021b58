"""API keys and per-key rate limits.

A key reads ``sr_<key id>_<secret>``. Only ``sha256(secret)`` is stored; a request's secret is hashed
and compared with :func:`hmac.compare_digest` (constant time). Scopes: ``read`` (recommendations,
items, profiles, explanations, dashboard), ``write`` (events, catalog changes) and ``admin``
(serving plan, keys, stats); ``admin`` implies the other two, ``write`` implies ``read``.

Rate limits are a token bucket per key and worker process: ``rate_per_minute`` tokens refilled
continuously, bursts up to a tenth of a minute's budget (at least 10).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from shoprec.errors import ShoprecError
from shoprec.service.store.base import ApiKeyRecord, Store

SCOPES = ("read", "write", "admin")
IMPLIED = {"admin": {"admin", "write", "read"}, "write": {"write", "read"}, "read": {"read"}}


class AuthError(ShoprecError):
    """Missing, malformed, unknown or revoked key (HTTP 401), or a key without the scope (403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(store: Store, scopes: list[str], rate_per_minute: int = 6000) -> str:
    """Store a new key and return it in full (shown once; only its hash is kept)."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ShoprecError(
            f"unknown scope {bad[0]!r}; scopes: {', '.join(SCOPES)}" if bad else "give at least one scope"
        )
    key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
    store.put_api_key(ApiKeyRecord(key_id, hash_secret(secret), sorted(scopes), rate_per_minute, time.time()))
    return f"sr_{key_id}_{secret}"


class KeyChecker:
    """Verifies keys against the store (cached briefly) and applies the rate limits."""

    def __init__(self, store: Store, cache_seconds: float = 5.0) -> None:
        self.store, self.cache_seconds = store, cache_seconds
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _record(self, key_id: str) -> ApiKeyRecord | None:
        cached = self._cache.get(key_id)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        record = self.store.get_api_key(key_id)
        self._cache[key_id] = (time.monotonic(), record)
        return record

    def stale(self, key: str | None) -> bool:
        """True when checking ``key`` would read the store (its record is not cached or too old)."""
        key_id = _key_id(key)
        if key_id is None:
            return False
        cached = self._cache.get(key_id)
        return cached is None or time.monotonic() - cached[0] >= self.cache_seconds

    def look_up(self, key: str | None) -> None:
        """Read the key's record from the store into the cache (blocking: call it off the event loop)."""
        key_id = _key_id(key)
        if key_id is not None:
            self._record(key_id)

    def check(self, key: str | None, scope: str) -> ApiKeyRecord:
        if not key:
            raise AuthError("missing API key: send it in the X-API-Key header (create one with 'shoprec keys create')")
        key_id = _key_id(key)
        if key_id is None:
            raise AuthError("malformed API key: expected sr_<id>_<secret> as printed by 'shoprec keys create'")
        parts = key.split("_", 2)
        record = self._record(key_id)
        digest = hash_secret(parts[2])
        if record is None or not hmac.compare_digest(digest, record.secret_hash) or record.revoked:
            raise AuthError("unknown or revoked API key")
        if not any(scope in IMPLIED[s] for s in record.scopes if s in IMPLIED):
            raise AuthError(f"this key lacks the '{scope}' scope (it has: {', '.join(record.scopes)})", status=403)
        self._take(record)
        return record

    def _take(self, record: ApiKeyRecord) -> None:
        rate = record.rate_per_minute / 60.0
        burst = max(10.0, record.rate_per_minute / 10.0)
        with self._lock:
            now = time.monotonic()
            tokens, last = self._buckets.get(record.key_id, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[record.key_id] = (tokens, now)
                wait = (1.0 - tokens) / rate
                raise RateLimited(
                    f"rate limit of {record.rate_per_minute}/min for this key reached; retry in {wait:.1f} s",
                    retry_after=wait,
                )
            self._buckets[record.key_id] = (tokens - 1.0, now)


def _key_id(key: str | None) -> str | None:
    parts = (key or "").split("_", 2)
    if len(parts) != 3 or parts[0] != "sr" or not parts[1] or not parts[2]:
        return None
    return parts[1]


class RateLimited(ShoprecError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
