"""What the service does per request, independent of HTTP: the API routes and the dashboard call it.

For every request the :class:`Engine` picks the model version for the user (A/B split), builds the
user's context from the version's training snapshot plus the live events that came after it, runs
the feed, applies the request's filters and the catalog changes made since training, and logs the
served list as an impression under a fresh recommendation id (the key of the feedback loop).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shoprec.errors import ShoprecError
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.filters import category_mask, price_mask
from shoprec.pipeline.pipeline import Recommendation
from shoprec.service.ab import VersionManager
from shoprec.service.background import BackgroundWriter
from shoprec.service.feedcache import DEPTH as CACHE_DEPTH
from shoprec.service.feedcache import FeedCache, Proposal
from shoprec.service.live import LiveState
from shoprec.service.overlay import CatalogOverlay, NewItems
from shoprec.service.store.base import Event, Impression, ItemRecord, Store
from shoprec.service.versions import Deployed

USER_SCENARIOS = ("home", "cross-category", "trending", "new-arrivals", "promotions")
ITEM_SCENARIOS = ("similar", "complements")
NEW_ITEM_SOURCE = "new-item-text"
HOME_NEW_SLOTS = 1
"""At most this many brand-new items (served by text) enter a personal feed."""


class NotFound(ShoprecError):
    """An id the request names is unknown (mapped to HTTP 404)."""


class UnknownItems(ShoprecError):
    """Events name items the catalog does not have (mapped to HTTP 422)."""


@dataclass
class Filters:
    """Request-time filters, applied on top of the version's configured rules."""

    categories: list[str] = field(default_factory=list)  # keep items under any of these category paths
    exclude_categories: list[str] = field(default_factory=list)
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = False
    exclude_items: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(
            self.categories
            or self.exclude_categories
            or self.min_price is not None
            or self.max_price is not None
            or self.in_stock
            or self.exclude_items
        )


@dataclass
class ServedItem:
    item_id: str
    title: str
    category: str
    brand: str
    price: float | None
    score: float
    source: str
    """The recall source with the largest share of the item's score (the feed name for feeds)."""
    shares: dict[str, float]


@dataclass
class ServedList:
    recommendation_id: str
    user_id: str | None
    scenario: str
    version: str
    items: list[ServedItem]
    notes: list[str]
    timings_ms: dict[str, float]
    anchor: str | None = None


class Engine:
    """The service's request logic over a store, a live state and the loaded model versions."""

    def __init__(
        self,
        store: Store,
        live: LiveState,
        versions: VersionManager,
        clock: str = "auto",
        warm_cache: bool = True,
        feed_cache: bool = True,
    ) -> None:
        self.store, self.live, self.versions = store, live, versions
        self.feed_cache = feed_cache
        self.overlay = CatalogOverlay()
        self.clock = clock
        self.impressions = BackgroundWriter(store.log_impressions, name="impressions")
        self.cache = FeedCache()
        if warm_cache and feed_cache:
            versions.on_load = lambda dep: self.cache.warm(self, dep)
            for dep in list(versions.loaded.values()):
                self.cache.warm(self, dep)
        self._catalog_checked = 0.0
        self.sync_catalog(force=True)

    def close(self) -> None:
        self.impressions.close()

    # ------------------------------------------------------------------ shared state
    def sync_catalog(self, force: bool = False, every: float = 1.0) -> None:
        """Fold catalog changes made by any worker into the overlay (at most once a second)."""
        now = time.monotonic()
        if not force and now - self._catalog_checked < every:
            return
        self._catalog_checked = now
        changes = self.store.items_changed_after(self.overlay.seq)
        if changes:
            self.overlay.apply(changes)

    def clock_offset(self, dep: Deployed) -> float:
        """Seconds added to wall-clock times to put them on the version's clock: 0 normally; for a
        snapshot over 30 days old (a demo or replayed shop, ``clock`` auto or data) the version's
        creation moment maps to the snapshot's newest event, so live events fall just after the
        training data, and 'trending this week' still means something."""
        newest = float(dep.manifest.get("data_newest", 0))
        created = float(dep.manifest.get("created", dep.loaded_at))
        if self.clock == "wall" or (self.clock == "auto" and created - newest < 30 * 86400):
            return 0.0
        return newest - created

    def now(self, dep: Deployed) -> float:
        """Request time on the version's clock (see :meth:`clock_offset`)."""
        return time.time() + self.clock_offset(dep)

    def context(self, dep: Deployed, user_id: str | None) -> tuple[UserContext, list[Event]]:
        """The user's snapshot history plus live events newer than the snapshot (oldest first)."""
        now = int(self.now(dep))
        if not user_id:
            return UserContext(-1, np.empty(0, np.int64), np.empty(0, np.int64), now), []
        user = dep.user_index(user_id)
        seqs = dep.sequences
        if user >= 0:
            lo, hi = seqs.indptr[user], seqs.indptr[user + 1]
            items, times, events = seqs.items[lo:hi].astype(np.int64), seqs.timestamps[lo:hi], dep.event_names[lo:hi]
        else:
            items, times, events = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, dtype=object)
        newest, offset = float(dep.manifest.get("data_newest", 0)), self.clock_offset(dep)
        live = [e for e in self.live.recent(user_id) if e.timestamp + offset > newest]
        if live:
            index = dep.item_indices([e.item_id for e in live])
            known = index >= 0
            items = np.concatenate([items, index[known]]).astype(np.int64)
            times = np.concatenate([times, np.array([int(e.timestamp + offset) for e in live], np.int64)[known]])
            events = np.concatenate([events, np.array([e.event for e in live], dtype=object)[known]])
        return UserContext(user, items, times, max(now, int(times.max(initial=0))), events), live

    # ------------------------------------------------------------------ feeds
    def recommend(
        self,
        scenario: str,
        user_id: str | None = None,
        item_id: str | None = None,
        k: int = 10,
        filters: Filters | None = None,
        log: bool = True,
    ) -> ServedList:
        """One feed for one request; ``log=False`` serves without logging an impression (previews
        such as the dashboard's, which must not count in online click-through)."""
        self.sync_catalog()
        filters = filters or Filters()
        dep = self.versions.for_user(user_id)
        began = time.perf_counter()
        ctx, live = self.context(dep, user_id)
        anchor = self._anchor(dep, item_id) if scenario in ITEM_SCENARIOS else None
        depth = k if not filters.active and not self.overlay.records else 3 * k + 10
        if anchor is not None and anchor < 0:  # a new item: its text neighbours are the feed
            base = self._text_neighbours(dep, item_id, depth)
        elif scenario == "home":
            base = self._home(dep, ctx, live, user_id, depth)
        else:
            base = self.proposal(dep, dep.scenarios.run(scenario, ctx, depth, anchor=anchor), scenario)
        items, scores, sources, shares = self._filtered(dep, base, filters)
        query = self._query_vector(dep, ctx, live, anchor, item_id)
        if query is not None and scenario in ("home", "similar", "new-arrivals"):
            slots = HOME_NEW_SLOTS if scenario == "home" else k
            items, scores, sources, shares = self._blend_new(
                dep, query, (items, scores, sources, shares), k, slots, filters, item_id
            )
        served = [self._served(dep, *row) for row in zip(items[:k], scores[:k], sources[:k], shares[:k], strict=True)]
        timings = dict(base.timings)
        timings["total"] = 1000 * (time.perf_counter() - began)
        out = ServedList(uuid.uuid4().hex, user_id, scenario, dep.version, served, list(base.notes), timings, item_id)
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
                )
            )
        return out

    def _home(self, dep: Deployed, ctx: UserContext, live: list[Event], user_id: str | None, depth: int) -> Proposal:
        """The home feed from the cache while the user and the catalog did not change, else the pipeline."""
        cacheable = self.feed_cache and bool(user_id) and depth <= CACHE_DEPTH
        key, stamp = (dep.version, user_id), (self.overlay.seq, live[-1].event_id if live else "")
        if cacheable and (hit := self.cache.get(key, stamp, dep, depth)) is not None:
            return Proposal(hit.items, hit.scores, hit.sources, hit.shares, hit.notes + ["served from the feed cache"])
        proposal = self.proposal(dep, dep.pipeline.recommend([ctx], CACHE_DEPTH if cacheable else depth)[0], "home")
        if cacheable:
            self.cache.put(key, stamp, proposal, dep)
        return proposal

    def _text_neighbours(self, dep: Deployed, item_id: str, depth: int) -> Proposal:
        """Trained items nearest to a new item's text (new items join in :meth:`_blend_new`)."""
        new = self._new(dep)
        sims = dep.item_vectors @ new.vectors[new.ids.index(item_id)]
        order = np.argsort(-sims, kind="stable")[:depth]
        note = f"{item_id} was added after version {dep.version} was trained: similar items by text"
        ids = dep.info.item_id[order].tolist()
        return Proposal(ids, sims[order].astype(float).tolist(), ["text"] * len(ids), [{}] * len(ids), [note])

    def _anchor(self, dep: Deployed, item_id: str | None) -> int:
        """Index of the anchor in the version (-1 for an item added since), or NotFound."""
        if not item_id:
            raise NotFound("this feed needs an item id")
        if self.overlay.is_deleted(item_id):
            raise NotFound(f"item {item_id!r} was deleted from the catalog")
        index = dep.item_index(item_id)
        if index < 0 and not self._is_new(dep, item_id):
            raise NotFound(f"unknown item {item_id!r}: not in the catalog")
        return index

    def _is_new(self, dep: Deployed, item_id: str) -> bool:
        return item_id in self._new(dep).ids

    def _new(self, dep: Deployed) -> NewItems:
        return self.overlay.new_items(id(dep), dep.item_indices, dep.item_vectors.shape[1])

    @staticmethod
    def proposal(dep: Deployed, rec: Recommendation, scenario: str) -> Proposal:
        """A pipeline or feed result as ids with the winning source and the source shares per item."""
        ids = dep.info.item_id[rec.items].tolist()
        names, shares = [], []
        for r in range(len(ids)):
            row = rec.source_shares[r] if scenario == "home" and rec.source_shares.size else None
            if row is not None and row.max() > 0:
                names.append(rec.candidates.sources[int(np.argmax(row))])
                shares.append(
                    {n: round(float(v), 4) for n, v in zip(rec.candidates.sources, row, strict=True) if v > 0}
                )
            else:
                proposed = (rec.candidates.source_ranks[r] >= 0).any()
                names.append(scenario if proposed and scenario != "home" else "fallback")
                shares.append({})
        return Proposal(ids, rec.scores.astype(float).tolist(), names, shares, list(rec.notes), dict(rec.timings))

    def _filtered(self, dep: Deployed, base: Proposal, filters: Filters) -> tuple[list, list, list, list]:
        deleted = self.overlay.deleted_ids()
        keep = np.array([i not in deleted for i in base.items], dtype=bool)
        if filters.active and base.items:
            keep &= self._mask(dep, filters)[dep.item_indices(base.items)]
        columns = (base.items, base.scores, base.sources, base.shares)
        return tuple([x for x, ok in zip(col, keep, strict=True) if ok] for col in columns)

    def _mask(self, dep: Deployed, filters: Filters) -> np.ndarray:
        info = dep.info
        mask = np.ones(info.n_items, dtype=bool)
        if filters.categories:
            mask &= category_mask(info.category, filters.categories)
        if filters.exclude_categories:
            mask &= ~category_mask(info.category, filters.exclude_categories)
        if filters.min_price is not None or filters.max_price is not None:
            mask &= price_mask(info.price, filters.min_price, filters.max_price, keep_unknown=False)
        if filters.in_stock:
            mask &= info.in_stock
        if filters.exclude_items:
            index = dep.item_indices(filters.exclude_items)
            mask[index[index >= 0]] = False
        return mask

    # ------------------------------------------------------------------ new items by text
    def _query_vector(self, dep: Deployed, ctx: UserContext, live: list[Event], anchor, item_id) -> np.ndarray | None:
        new = self._new(dep)
        if not len(new):
            return None
        if anchor is not None:
            if anchor >= 0:
                return dep.item_vectors[anchor]
            return new.vectors[new.ids.index(item_id)]
        recent = ctx.recent(20)
        parts = [dep.item_vectors[recent]] if len(recent) else []
        live_new = [new.ids.index(e.item_id) for e in live if e.item_id in new.ids]
        if live_new:
            parts.append(new.vectors[live_new])
        if not parts:
            return None
        query = np.vstack(parts).mean(axis=0)
        norm = np.linalg.norm(query)
        return query / norm if norm > 0 else None

    def _blend_new(self, dep, query, columns, k, slots, filters: Filters, exclude: str | None):
        """Put brand-new items whose text is closer to ``query`` than a listed item's text just
        before that item; at most ``slots`` of them."""
        items = columns[0]
        new = self._new(dep)
        sims = new.vectors @ query
        allowed = [j for j in np.argsort(-sims).tolist() if new.ids[j] != exclude and _passes(new.records[j], filters)]
        seen = set(items)
        allowed = [j for j in allowed if new.ids[j] not in seen][:slots]
        if not allowed:
            return columns
        index = dep.item_indices(items[:k])
        listed = dep.item_vectors[index] @ query if len(index) else np.empty(0)
        out = [
            (*row, sim) for row, sim in zip(zip(*(c[:k] for c in columns), strict=True), listed.tolist(), strict=True)
        ]
        for j in allowed:
            at = next((p for p, row in enumerate(out) if sims[j] > row[4]), len(out))
            if at < k:
                out.insert(at, (new.ids[j], float(sims[j]), NEW_ITEM_SOURCE, {}, float(sims[j])))
        out = out[:k]
        return tuple([r[c] for r in out] for c in range(4))

    # ------------------------------------------------------------------ rendering
    def _served(self, dep: Deployed, item_id: str, score: float, source: str, shares: dict) -> ServedItem:
        record = self.overlay.record(item_id)
        if record is not None:
            return ServedItem(
                item_id, record.title, record.category, record.brand, record.price, float(score), source, shares
            )
        index, info = dep.item_index(item_id), dep.info
        price = float(info.price[index]) if np.isfinite(info.price[index]) else None
        return ServedItem(
            item_id,
            str(info.title[index]),
            str(info.category[index]),
            str(info.brand[index]),
            price,
            float(score),
            source,
            shares,
        )

    # ------------------------------------------------------------------ events and catalog
    def check_items(self, item_ids: list[str]) -> None:
        """Events must name catalog items (trained, or added through the API)."""
        self.sync_catalog()
        dep = self.versions.default()
        index = dep.item_indices(item_ids)
        unknown = sorted(
            {i for i, x in zip(item_ids, index.tolist(), strict=True) if x < 0 and not self.overlay.record(i)}
        )
        if unknown:
            shown = ", ".join(repr(i) for i in unknown[:5]) + (
                f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            )
            raise UnknownItems(
                f"unknown item id {shown}: not in the catalog. Add the item first (PUT /v1/items/{{item_id}}); "
                "no event of this request was stored"
            )

    def record_live(self, events: list[Event]) -> None:
        self.live.record(events)

    def upsert_items(self, records: list[ItemRecord], encode) -> int:
        """Store items with their text vectors (``encode(texts) -> (n, d)``), then fold them in."""
        from shoprec.text.itemtext import join_parts

        texts = [join_parts([r.title, r.description, r.category, r.brand]) for r in records]
        vectors = encode(texts)
        stored = [
            ItemRecord(
                r.item_id,
                r.title,
                r.description,
                r.category,
                r.brand,
                r.price,
                r.language,
                r.attributes,
                np.asarray(v, dtype=np.float32),
            )
            for r, v in zip(records, vectors, strict=True)
        ]
        seq = self.store.upsert_items(stored)
        self.sync_catalog(force=True)
        return seq

    def delete_item(self, item_id: str) -> None:
        dep = self.versions.default()
        known = dep.item_index(item_id) >= 0
        if not self.store.delete_item(item_id):
            if not known:
                raise NotFound(f"unknown item {item_id!r}: not in the catalog")
            self.store.upsert_items([ItemRecord(item_id, str(dep.info.title[self._index(dep, item_id)]))])
            self.store.delete_item(item_id)
        self.sync_catalog(force=True)

    def _index(self, dep: Deployed, item_id: str) -> int:
        return dep.item_index(item_id)

    def item(self, item_id: str) -> dict:
        """Catalog facts of one item (overlay first), or NotFound."""
        self.sync_catalog()
        record = self.overlay.record(item_id)
        if record is not None:
            if record.deleted:
                raise NotFound(f"item {item_id!r} was deleted from the catalog")
            return _record_dict(record, new=not self._index(self.versions.default(), item_id) >= 0)
        dep = self.versions.default()
        index = self._index(dep, item_id)
        if index < 0:
            raise NotFound(f"unknown item {item_id!r}: not in the catalog")
        info = dep.info
        return {
            "item_id": item_id,
            "title": str(info.title[index]),
            "category": str(info.category[index]),
            "brand": str(info.brand[index]),
            "price": float(info.price[index]) if np.isfinite(info.price[index]) else None,
            "in_stock": bool(info.in_stock[index]),
            "tags": list(info.tags[index]),
            "new": False,
        }

    def search(self, text: str, limit: int = 20) -> list[dict]:
        """Items whose id or title contains ``text`` (case-insensitive): the version's catalog and the overlay."""
        self.sync_catalog()
        dep = self.versions.default()
        needle = text.casefold()
        found: dict[str, dict] = {}
        for record in self.store.search_items(text, limit):
            found[record.item_id] = _record_dict(record, new=self._index(dep, record.item_id) < 0)
        titles, ids = dep.info.title, dep.info.item_id
        hits = [i for i in range(len(ids)) if needle in str(ids[i]).casefold() or needle in str(titles[i]).casefold()]
        for index in hits:
            item_id = str(ids[index])
            if len(found) >= limit:
                break
            if item_id not in found and not self.overlay.is_deleted(item_id):
                found[item_id] = self.item(item_id)
        return list(found.values())[:limit]

    # ------------------------------------------------------------------ profile and explanations
    def profile(self, user_id: str, lang: str = "en") -> dict:
        dep = self.versions.for_user(user_id)
        ctx, live = self.context(dep, user_id)
        if not len(ctx.history) and not live:
            raise NotFound(f"unknown user {user_id!r}: no events from this user yet")
        profiles = dep.profiles.empty()
        if len(ctx.history):
            frame = pd.DataFrame(
                {
                    "item_id": dep.info.item_id[ctx.history],
                    "event": ctx.events if len(ctx.events) == len(ctx.history) else "click",
                    "timestamp": ctx.times,
                }
            )
            profiles.update(user_id, frame)
        else:
            profiles.update(user_id, None)
        recent = ctx.recent(20)
        return {
            "user_id": user_id,
            "version": dep.version,
            "known_to_model": ctx.user >= 0,
            "sentence": profiles.describe(user_id, lang),
            "events": int(len(ctx.history)),
            "live_events": len(live),
            "top_categories": [
                {"category": c, "share": round(float(s), 3)} for c, s in profiles.top_categories(user_id)
            ],
            "top_tags": [t for t, _ in profiles.top_tags(user_id)],
            "recent_items": [
                self.item(str(dep.info.item_id[i]))
                for i in recent.tolist()
                if not self.overlay.is_deleted(str(dep.info.item_id[i]))
            ],
        }

    def explain(
        self, user_id: str, scenario: str = "home", lang: str = "en", k: int = 10, item_id: str | None = None
    ) -> dict:
        """The user's current list with an explanation per item and the heatmap grid."""
        from shoprec.pipeline.explain_text import heatmap_data, render

        dep = self.versions.for_user(user_id)
        ctx, _ = self.context(dep, user_id)
        anchor = self._anchor(dep, item_id) if scenario in ITEM_SCENARIOS else None
        if anchor is not None and anchor < 0:
            raise NotFound(f"{item_id!r} is new since version {dep.version}: explanations cover trained items only")
        rec = dep.pipeline.recommend([ctx], k)[0] if scenario == "home" else dep.scenarios.run(scenario, ctx, k, anchor)
        explanations = dep.scenarios.explain(ctx, rec, scenario)
        rows = []
        for exp in explanations:
            data = exp.to_dict()
            rows.append({"item_id": exp.item_id, "title": exp.title, "text": render(exp, lang), "facts": data})
        return {
            "user_id": user_id,
            "scenario": scenario,
            "version": dep.version,
            "lang": lang,
            "items": rows,
            "heatmap": heatmap_data(ctx, explanations, dep.info),
        }

    def bundle(self, **request) -> dict:
        from shoprec.bundles.api import recommend_bundle

        dep = self.versions.default()
        out = recommend_bundle(dep.bundles, **request)
        out["version"] = dep.version
        return out


def _passes(record: ItemRecord, filters: Filters) -> bool:
    from shoprec.pipeline.filters import covers

    if filters.categories and not any(covers(p, record.category) for p in filters.categories):
        return False
    if filters.exclude_categories and any(covers(p, record.category) for p in filters.exclude_categories):
        return False
    if filters.min_price is not None and (record.price is None or record.price < filters.min_price):
        return False
    if filters.max_price is not None and (record.price is None or record.price > filters.max_price):
        return False
    if filters.in_stock and record.attributes.get("in_stock") is False:
        return False
    return record.item_id not in filters.exclude_items


def _record_dict(record: ItemRecord, new: bool) -> dict:
    return {
        "item_id": record.item_id,
        "title": record.title,
        "category": record.category,
        "brand": record.brand,
        "price": record.price,
        "in_stock": record.attributes.get("in_stock", True) is not False,
        "tags": [],
        "new": new,
    }
