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
    retrain_every: str | None = None
    """Retrain from the store this often on a background thread (``6h``, ``30m``, ``1d`` or seconds) and
    publish a candidate that passes the offline guard as a challenger; empty: never (run ``shoprec
    retrain`` as its own process instead, which keeps training off the API's cores)."""
    retrain_share: float = 0.1
    """Traffic share of a retrained challenger."""
    explore_share: float = 0.0
    """Share of feed slots filled by exploration (see ``shoprec.loop.explore``), logged with propensities
    for ``shoprec evaluate-logs``; 0: off, every list is the ranking as is. 0.02-0.05 is a usual range."""
    explore_pool: int = 40
    """Candidates beyond the k shown that exploration may draw from."""
    experiments_every: float = 60.0
    """Judge the running A/B experiment this often (seconds): promote a winner, roll back a loser (see
    service/experiments.py); 0: never on its own (``POST /v1/experiments/decide`` still does)."""
    experiment_alpha: float = 0.05
    """Error rate of the sequential test (two equal versions declared different)."""
    experiment_tau: float = 0.01
    """The test's mixture standard deviation: the click-through difference it is quickest to detect."""
    experiment_metric: str = "ctr"
    """``ctr`` or ``conversion``: what the experiment compares."""
    experiment_min_impressions: int = 1000
    """Shown items per arm before an experiment may decide."""
    guard_error_margin: float = 0.01
    guard_latency_margin: float = 0.5
    """A challenger whose error rate exceeds the control's by this much (absolute), or whose mean latency
    exceeds it by this share, is rolled back whatever its click-through."""
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
        if self.retrain_every:
            from shoprec.service.schedule import parse_duration

            parse_duration(self.retrain_every, "retrain_every")
        if not 0 < self.retrain_share < 1:
            raise ConfigError(f"retrain_share must be between 0 and 1 (exclusive), not {self.retrain_share}")
        if not 0 <= self.explore_share < 1:
            raise ConfigError(f"explore_share must be in [0, 1) (0: exploration off), not {self.explore_share}")
        for name in ("explore_pool", "max_body_bytes", "max_k", "max_batch", "rate_per_minute"):
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
