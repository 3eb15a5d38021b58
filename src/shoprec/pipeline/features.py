"""Ranking features for (user, candidate) pairs.

Per source: its score (relative to the source's best score for this user) and rank (NaN where it
did not propose the item), so the ranker learns how
far to trust each source at each depth. Per pair: text similarity between the item and the user's
recent items, the share of the user's history in the item's category (leaf and top level), how the
price sits in the user's price band, whether and how recently the user touched the item. Per item:
popularity overall and in the last 7 and 30 days, age since launch, and the time-of-day /
day-of-week prior of its category (:mod:`shoprec.pipeline.timeofday`; zero unless the training data
shows the clock matters). Per user: history length and time since the last event. Missing facts
stay NaN: gradient-boosted trees route them on purpose.

Only when the training events carry a ``platform`` (events collected by the service; datasets from
files have none): the request's platform one-hot over the platforms seen at least
:data:`MIN_PLATFORM_EVENTS` times (at most :data:`MAX_PLATFORMS`), and the item's lift on the
request's platform (log of its smoothed share of events there over the platform's share of all
events; NaN for a request without a known platform).

>>> features = FeatureBuilder().fit(train, resources)          # doctest: +SKIP
>>> X = features.build(context, candidates)                    # (n_candidates, n_features)
"""

from __future__ import annotations

import numpy as np

from shoprec.data.dataset import Dataset
from shoprec.pipeline.base import Resources
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.windows import WindowCounts
from shoprec.timeunits import DAY

PAIR_FEATURES = (
    "n_sources",
    "text_sim",
    "text_sim_last",
    "leaf_share",
    "top_share",
    "price_z",
    "log_price",
    "user_item_events",
    "user_item_days",
    "pop_all",
    "pop_7d",
    "pop_30d",
    "item_age_days",
    "history_len",
    "since_last_event_days",
    "time_prior",
)

MAX_PLATFORMS = 8
"""Platforms given a feature of their own (the most frequent in the training events)."""
MIN_PLATFORM_EVENTS = 50
"""Training events a platform needs before it gets a feature."""
PLATFORM_PRIOR = 5.0
"""Pseudo-events of the platform's overall share added to each item's count (smooths rare items)."""


def platform_stats(train: Dataset) -> tuple[tuple[str, ...], np.ndarray]:
    """The platforms that get features and, per platform, each item's log lift on it: an
    (n_platforms, n_items) float32 array; no platform and an empty array when the events carry none."""
    frame = train.interactions
    if "platform" not in frame or not frame["platform"].notna().any():
        return (), np.zeros((0, train.n_items), dtype=np.float32)
    known = frame["platform"].notna().to_numpy()
    platforms = frame["platform"].to_numpy(dtype=object)[known].astype(str)
    items = frame["item"].to_numpy()[known]
    names, counts = np.unique(platforms, return_counts=True)
    order = np.lexsort((names, -counts))  # most frequent first, then by name
    kept = tuple(str(names[i]) for i in order if counts[i] >= MIN_PLATFORM_EVENTS)[:MAX_PLATFORMS]
    total = np.bincount(items, minlength=train.n_items).astype(np.float64)
    lift = np.empty((len(kept), train.n_items), dtype=np.float32)
    for row, name in enumerate(kept):
        on = platforms == name
        share = on.mean()
        mine = np.bincount(items[on], minlength=train.n_items)
        lift[row] = np.log((mine + PLATFORM_PRIOR * share) / (total + PLATFORM_PRIOR) / share)
    return kept, lift


def _time_context(train: Dataset, categories: np.ndarray):
    """The fitted time-of-day test, or None when the catalogue has no categories to test."""
    from shoprec.errors import ShoprecError
    from shoprec.pipeline.timeofday import TimeContext

    if not (categories != "").any():
        return None
    try:
        return TimeContext.fit(train, categories)
    except ShoprecError:
        return None


def _relative(scores: np.ndarray) -> np.ndarray:
    """Each source's scores over this user's candidates divided by its largest absolute score:
    raw scales drift when a source is refitted on more data (EASE, co-occurrence sums), the shape
    of one user's list does not."""
    top = np.abs(np.nan_to_num(scores, nan=0.0, posinf=0.0, neginf=0.0)).max(axis=0, initial=0.0, keepdims=True)
    return np.divide(scores, top, out=scores.astype(np.float32, copy=True), where=top > 0)


def _codes(values: np.ndarray) -> np.ndarray:
    """Category strings -> int codes, -1 for ""."""
    labels, codes = np.unique(values.astype(str), return_inverse=True)
    codes = codes.astype(np.int64)
    if len(labels) and labels[0] == "":
        codes = codes - 1  # "" sorts first
    return codes


class FeatureBuilder:
    """Computes the feature matrix; fitted once on the training data (item-side facts)."""

    def __init__(self, recent: int = 20) -> None:
        self.recent = recent
        self.sources: tuple[str, ...] = ()
        self.platforms: tuple[str, ...] = ()

    def names(self, sources: tuple[str, ...]) -> list[str]:
        platform = [f"platform={p}" for p in self.platforms] + (["platform_lift"] if self.platforms else [])
        return [f"{s}.{part}" for s in sources for part in ("score", "rank")] + list(PAIR_FEATURES) + platform

    def fit(self, train: Dataset, resources: Resources) -> FeatureBuilder:
        info = resources.info
        self.windows = resources.windows or WindowCounts(train)
        self.n_items = train.n_items
        self.pop_all = np.log1p(np.bincount(self.windows.items, minlength=self.n_items)).astype(np.float32)
        self.leaf = _codes(info.category)
        self.top = _codes(info.top)
        self.leaf_max, self.top_max = int(self.leaf.max(initial=-1)), int(self.top.max(initial=-1))
        with np.errstate(divide="ignore", invalid="ignore"):
            self.log_price = np.where(info.price > 0, np.log(info.price), np.nan).astype(np.float32)
        first_seen = np.full(self.n_items, -1, dtype=np.int64)
        seen_once = np.unique(self.windows.items, return_index=True)
        first_seen[seen_once[0]] = self.windows.times[seen_once[1]]
        self.created = np.where(info.created >= 0, info.created, first_seen)
        self.vectors = resources.item_vectors
        self.time_context = _time_context(train, info.top)
        self.platforms, self.platform_lift = platform_stats(train)
        self._cache: dict[tuple, np.ndarray] = {}
        return self

    def _recent_pop(self, now: int, days: int) -> np.ndarray:
        """log(1 + interactions in the last ``days`` days), cached per day."""
        key = ("pop", int(now // DAY), days)
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = np.log1p(self.windows.counts(now, days))
        return self._cache[key]

    def _time_prior(self, now: int) -> np.ndarray:
        """Time-of-day / day-of-week log-ratio of the item's category (zeros unless the training
        data shows the clock matters); cached per hour."""
        key = ("time", int(now // 3600))
        if key not in self._cache:
            if self.time_context is None or not self.time_context.matters:
                self._cache[key] = np.zeros(self.n_items, dtype=np.float32)
            else:
                self._cache[key] = np.asarray(self.time_context.prior(now), dtype=np.float32)
        return self._cache[key]

    def build(self, ctx: UserContext, cand: Candidates) -> np.ndarray:
        """(len(cand), n_features) float32."""
        items = cand.items
        n = len(items)
        ranks = cand.source_ranks.astype(np.float32)
        ranks[cand.source_ranks < 0] = np.nan
        per_source = np.empty((n, 2 * len(cand.sources)), dtype=np.float32)
        per_source[:, 0::2] = _relative(cand.source_scores)
        per_source[:, 1::2] = ranks
        pair = np.full((n, len(PAIR_FEATURES)), np.nan, dtype=np.float32)
        pair[:, 0] = (cand.source_ranks >= 0).sum(axis=1)
        self._user_item(ctx, items, pair)
        pair[:, 9] = self.pop_all[items]
        pair[:, 10] = self._recent_pop(ctx.now, 7)[items]
        pair[:, 11] = self._recent_pop(ctx.now, 30)[items]
        created = self.created[items]
        pair[:, 12] = np.where(created >= 0, (ctx.now - created) / DAY, np.nan)
        pair[:, 13] = np.log1p(len(ctx.history))
        if len(ctx.times):
            pair[:, 14] = (ctx.now - ctx.times[-1]) / DAY
        pair[:, 15] = self._time_prior(ctx.now)[items]
        if not self.platforms:
            return np.hstack([per_source, pair])
        return np.hstack([per_source, pair, self._platform(ctx, items)])

    def _platform(self, ctx: UserContext, items: np.ndarray) -> np.ndarray:
        """The request's platform one-hot (all 0 for none or one without a feature) and the item's lift there."""
        out = np.zeros((len(items), len(self.platforms) + 1), dtype=np.float32)
        out[:, -1] = np.nan
        if ctx.platform in self.platforms:
            row = self.platforms.index(ctx.platform)
            out[:, row] = 1.0
            out[:, -1] = self.platform_lift[row][items]
        return out

    def _user_item(self, ctx: UserContext, items: np.ndarray, pair: np.ndarray) -> None:
        """Features comparing each candidate with the user's history (NaN without history)."""
        history = ctx.history
        if not len(history):
            pair[:, 6] = self.log_price[items]
            return
        recent = ctx.recent(self.recent)
        if self.vectors is not None:
            vectors = self.vectors[items]  # gathered once for both similarities
            profile = self.vectors[recent].mean(axis=0)
            norm = np.linalg.norm(profile)
            if norm > 0:
                pair[:, 1] = vectors @ (profile / norm)
            pair[:, 2] = vectors @ self.vectors[recent[0]]
        for col, codes, top in ((3, self.leaf, self.leaf_max), (4, self.top, self.top_max)):
            if top < 0:
                continue  # a catalogue without categories: the shares stay NaN
            known = codes[history] >= 0
            counts = np.bincount(codes[history][known], minlength=top + 1)
            share = counts / max(known.sum(), 1)
            pair[:, col] = np.where(codes[items] >= 0, share[np.maximum(codes[items], 0)], np.nan)
        prices = self.log_price[history]
        prices = prices[np.isfinite(prices)]
        pair[:, 6] = self.log_price[items]
        if len(prices):
            pair[:, 5] = (self.log_price[items] - prices.mean()) / (prices.std() + 0.25)
        uniq, first_rev, counts = np.unique(history[::-1], return_index=True, return_counts=True)
        pos = np.clip(np.searchsorted(uniq, items), 0, len(uniq) - 1)
        touched = uniq[pos] == items
        pair[:, 7] = np.where(touched, counts[pos], 0)
        last_time = ctx.times[::-1][first_rev]  # history is time-ordered: first in reverse = last
        pair[:, 8] = np.where(touched, (ctx.now - last_time[pos]) / DAY, np.nan)
