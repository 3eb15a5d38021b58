"""Feeds: one list per request for a scenario, a user and an anchor.

A feed is the version's pipeline (home) or scenario result for the user's context, served from the
feed cache while neither the user nor the catalog changed, filtered by the request and the catalog
changes since training, with brand-new items blended in by text, and logged as an impression under
a fresh recommendation id (the key of the feedback loop).

With exploration on (``explorer``: :class:`~shoprec.loop.explore.Explorer`, share > 0), a share of
the slots shows candidates drawn from the list's best ``k + pool``; it is applied per request after
the cache (the cache keeps the deterministic ranking), and the impression logs each shown item's
exact propensity and whether its slot explored, for off-policy evaluation (``shoprec evaluate-logs``).
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from shoprec.loop.explore import Explorer
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.pipeline import Recommendation
from shoprec.service.ab import VersionManager
from shoprec.service.background import BackgroundWriter
from shoprec.service.catalog import Catalog
from shoprec.service.feedcache import DEPTH as CACHE_DEPTH
from shoprec.service.feedcache import FeedCache, Packed, Proposal
from shoprec.service.history import Histories
from shoprec.service.live import LiveEvents
from shoprec.service.newitems import Columns, blend_new, query_vector, text_neighbours
from shoprec.service.served import DEGRADED_NOTE, ITEM_SCENARIOS, Filters, ServedList
from shoprec.service.store.base import Impression
from shoprec.service.versions import Deployed

HOME_NEW_SLOTS = 1
"""At most this many brand-new items (served by text) enter a personal feed."""


class Feeds:
    """Serves and logs feeds over the loaded versions, the users' histories and the catalog."""

    def __init__(
        self,
        versions: VersionManager,
        histories: Histories,
        catalog: Catalog,
        impressions: BackgroundWriter,
        cache: FeedCache,
        use_cache: bool = True,
        explorer: Explorer | None = None,
    ) -> None:
        self.versions, self.histories, self.catalog = versions, histories, catalog
        self.impressions, self.cache, self.use_cache = impressions, cache, use_cache
        self.explorer = explorer  # None or share 0: the ranking as is

    def recommend(
        self,
        scenario: str,
        user_id: str | None = None,
        item_id: str | None = None,
        k: int = 10,
        filters: Filters | None = None,
        log: bool = True,
        platform: str | None = None,
        language: str | None = None,
    ) -> ServedList:
        """One feed for one request; ``log=False`` serves without logging an impression (previews
        such as the dashboard's, which must not count in online click-through). ``platform`` and
        ``language`` describe the request (context features; the platform is logged)."""
        catalog = self.catalog
        catalog.sync()
        filters = filters or Filters()
        dep = self.versions.for_user(user_id)
        began = time.perf_counter()
        ctx, live = self.histories.context(dep, user_id)
        ctx.platform, ctx.language = platform, language
        explorer = self.explorer if self.explorer is not None and self.explorer.share > 0 else None
        anchor = catalog.anchor(dep, item_id) if scenario in ITEM_SCENARIOS else None
        depth = k if not filters.active and not catalog.overlay.records else 3 * k + 10
        if explorer is not None:
            depth = max(depth, k + explorer.pool)
        if anchor is not None and anchor < 0:  # a new item: its text neighbours are the feed
            base = text_neighbours(dep, catalog.new(dep), item_id, depth)
        elif scenario == "home":
            base = self._home(dep, ctx, live, user_id, depth, trim=depth == k)
        else:
            base = proposal(dep, dep.scenarios.run(scenario, ctx, depth, anchor=anchor), scenario)
        columns = self._filtered(dep, base, filters)
        new = catalog.new(dep)
        query = query_vector(dep, new, ctx, live, anchor, item_id)
        if query is not None and scenario in ("home", "similar", "new-arrivals"):
            slots = HOME_NEW_SLOTS if scenario == "home" else k
            blended = blend_new(dep, new, query, columns, k, slots, filters, item_id)
            columns = _extended(blended, columns) if explorer is not None else blended
        propensities = explored = None
        if explorer is not None:
            ranks, propensities, explored = explorer.choose(len(columns[0]), k)
            columns = tuple([col[r] for r in ranks] for col in columns)
        items, scores, sources, shares = columns
        served = [catalog.served(dep, *row) for row in zip(items[:k], scores[:k], sources[:k], shares[:k], strict=True)]
        for s, flag in zip(served, explored or (), strict=False):
            s.explored = flag
        timings = dict(base.timings)
        timings["total"] = 1000 * (time.perf_counter() - began)
        notes = [*base.notes, DEGRADED_NOTE] if live.degraded else list(base.notes)
        newest = live[-1].event_id if live else None
        out = ServedList(
            uuid.uuid4().hex, user_id, scenario, dep.version, served, notes, timings, item_id, live.state, newest
        )
        if log:
            self.impressions.put(
                Impression(
                    out.recommendation_id,
                    user_id or "",
                    dep.version,
                    scenario,
                    [s.item_id for s in served],
                    [s.source for s in served],
                    time.time(),
                    propensities=propensities,
                    explored=explored,
                    platform=platform,
                    latency_ms=timings["total"],
                )
            )
        return out

    def _home(
        self, dep: Deployed, ctx: UserContext, live: LiveEvents, user_id: str | None, depth: int, trim: bool
    ) -> Proposal:
        """The home feed from the cache while the user and the catalog did not change, else the
        pipeline. ``trim``: only the first ``depth`` items are read (nothing is filtered out after)."""
        cacheable = self.use_cache and bool(user_id) and depth <= CACHE_DEPTH
        key, stamp = (dep.version, user_id), (self.catalog.overlay.seq, *live.stamp)
        if cacheable and (hit := self.cache.get(key, stamp, dep, depth)) is not None:
            return Proposal(hit.items, hit.scores, hit.sources, hit.shares, hit.notes + ["served from the feed cache"])
        rec = dep.pipeline.recommend([ctx], CACHE_DEPTH if cacheable else depth)[0]
        packed = Packed.of(rec, "home")
        if cacheable:
            self.cache.put_packed(key, stamp, packed)
        result = packed.unpack(dep.info.item_id, depth if trim else None)
        result.timings = dict(rec.timings)
        return result

    def _filtered(self, dep: Deployed, base: Proposal, filters: Filters) -> Columns:
        """The list without deleted items and, when the request filters, without items failing them."""
        deleted = self.catalog.overlay.deleted_ids()
        keep = np.array([i not in deleted for i in base.items], dtype=bool)
        if filters.active and base.items:
            keep &= filters.mask(dep)[dep.item_indices(base.items)]
        columns = (base.items, base.scores, base.sources, base.shares)
        return tuple([x for x, ok in zip(col, keep, strict=True) if ok] for col in columns)


def _extended(blended: Columns, columns: Columns) -> Columns:
    """The blended top k followed by the rest of the ranked candidates (the exploration pool)."""
    seen = set(blended[0])
    rest = [j for j, item in enumerate(columns[0]) if item not in seen]
    return tuple([*b, *(col[j] for j in rest)] for b, col in zip(blended, columns, strict=True))


def proposal(dep: Deployed, rec: Recommendation, scenario: str) -> Proposal:
    """A pipeline or feed result as ids with the winning source and the source shares per item
    (see :meth:`Packed.of`)."""
    result = Packed.of(rec, scenario).unpack(dep.info.item_id)
    result.timings = dict(rec.timings)
    return result
