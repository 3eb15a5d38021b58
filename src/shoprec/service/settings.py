"""Service settings: from ``shoprec serve`` options or ``SHOPREC_*`` environment variables.

Nothing else in the service reads the environment. Defaults give a working embedded service:
SQLite file next to the models, live state from the store, API keys required.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from shoprec.errors import ConfigError


@dataclass
class ServiceSettings:
    models_dir: str = "shoprec-models"
    """Folder of versions written by ``shoprec train``."""
    store_url: str | None = None
    """``sqlite:///path.db`` (default: ``<models_dir>/shoprec.db``) or ``postgresql://...``."""
    redis_url: str | None = None
    """``redis://host:6379/0`` to share live state through Redis; empty: read it from the store."""
    redis_prefix: str = "shoprec"
    auth: bool = True
    """Require API keys (``shoprec keys create``). Turn off only on a private machine."""
    cors_origins: list[str] = field(default_factory=list)
    """Browser origins allowed to call the API (exact matches); empty: none."""
    max_body_bytes: int = 1_000_000
    max_k: int = 100
    max_batch: int = 1000
    """Events per batch request."""
    rate_per_minute: int = 6000
    """Default per-key request budget when a key sets none."""
    clock: str = "auto"
    """``wall``, ``data`` (the training snapshot's clock) or ``auto`` (data when it is over 30 days old)."""
    feed_cache: bool = True
    """Serve known users' unchanged home feeds from a per-worker cache; off: every request runs the pipeline."""
    warm_cache: bool = True
    """Precompute every known user's home feed when a version loads (see feedcache.py)."""
    poll_seconds: float = 2.0
    """How often a worker checks for new versions and serving-plan changes."""
    search_dense: bool = True
    """Product search also retrieves by the version's item vectors, queries encoded by the version's
    encoder (loaded on the first query); off: lexical search only (BM25, spelling, constraints)."""
    search_ranker: str | None = None
    """A learned search ranker (the folder ``SearchRanker.save`` writes) re-scoring each search's best 100
    hits; empty: the fused order."""
    search_cross_encoder: str | None = None
    """A fine-tuned cross-encoder folder re-scoring each search's best 20 hits (after the ranker)."""
    search_merch: str | None = None
    """Merchandising TOML for search (synonyms; per-query pins, boosts, buries, blocks: see
    ``shoprec.search.merch``); its item ids must be in the serving version's catalogue."""

    @classmethod
    def from_env(cls, **overrides) -> ServiceSettings:
        """Defaults, then ``SHOPREC_<NAME>`` variables, then ``overrides`` (CLI options that were given)."""
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"SHOPREC_{f.name.upper()}")
            if raw is not None:
                values[f.name] = _parse(f.name, raw, f.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.clock not in ("auto", "wall", "data"):
            raise ConfigError(f"clock must be auto, wall or data, not {self.clock!r}")
        for name in ("max_body_bytes", "max_k", "max_batch", "rate_per_minute"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1")


def _parse(name: str, raw: str, kind: str):
    try:
        if "bool" in kind:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if "list" in kind:
            return [part.strip() for part in raw.split(",") if part.strip()]
        if "int" in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except ValueError:
        raise ConfigError(f"environment variable SHOPREC_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
