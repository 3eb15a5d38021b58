"""The service's request logic, independent of HTTP: one object the API routes and the dashboard hold.

:class:`Engine` wires the parts and delegates; each part has one reason to change:

- :mod:`~shoprec.service.history`: the user's context (version snapshot + live events, version clock);
- :mod:`~shoprec.service.feeds`: feeds (scenario, cache, filters, new items, impression logging);
- :mod:`~shoprec.service.newitems`: items added since training, served by their text;
- :mod:`~shoprec.service.catalog`: item facts and the API's catalog changes over the version;
- :mod:`~shoprec.service.search`, :mod:`~shoprec.service.profiles`,
  :mod:`~shoprec.service.explanations`, :mod:`~shoprec.service.bundles`: one answer each;
- :mod:`~shoprec.service.served`: request filters, served lists and request errors.
"""

from __future__ import annotations

import inspect
import time

from shoprec.pipeline.context import UserContext
from shoprec.pipeline.pipeline import Recommendation
from shoprec.service.ab import VersionManager
from shoprec.service.background import BackgroundWriter
from shoprec.service.bundles import serve_bundle
from shoprec.service.catalog import Catalog, Encoder
from shoprec.service.counters import VersionCounters, is_server_error
from shoprec.service.explanations import explain_list
from shoprec.service.feedcache import FeedCache, Proposal
from shoprec.service.feeds import Feeds, proposal
from shoprec.service.forget import FORGOTTEN_NOTE, Forgotten, forget_user, trained_on
from shoprec.service.history import Histories
from shoprec.service.live import LiveEvents, LiveState
from shoprec.service.platforms import PlatformCounts
from shoprec.service.profiles import user_profile
from shoprec.service.search import search_items
from shoprec.service.served import Filters, ServedList
from shoprec.service.store.base import Event, ItemRecord, Store
from shoprec.service.versions import Deployed

_FEEDS_TAKE_PLATFORM = "platform" in inspect.signature(Feeds.recommend).parameters
"""Until Feeds.recommend takes the request's platform and language (requested of its owner)."""


class Engine:
    """The service's parts over a store, a live state and the loaded model versions."""

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
        self.forgotten = Forgotten(store)  # served as anonymous shoppers (see forget.py)
        self.platforms = PlatformCounts()  # events and feed requests by platform, this worker
        self.counters = VersionCounters(store)  # feed requests, errors, latency per version -> store
        self.histories = Histories(live, clock, self.forgotten)
        self.catalog = Catalog(store, versions)
        self.overlay = self.catalog.overlay
        self.impressions = BackgroundWriter(store.log_impressions, name="impressions")
        self.cache = FeedCache()
        self.forgotten.on_new.append(self.cache.drop_users)
        self.feeds = Feeds(versions, self.histories, self.catalog, self.impressions, self.cache, feed_cache)
        if warm_cache and feed_cache:
            versions.on_load = lambda dep: self.cache.warm(self, dep)
            for dep in list(versions.loaded.values()):
                self.cache.warm(self, dep)

    def close(self) -> None:
        self.impressions.close()
        self.counters.close()

    # ------------------------------------------------------------------ state (the feed cache's warm-up reads it)
    def now(self, dep: Deployed) -> float:
        return self.histories.now(dep)

    def context(self, dep: Deployed, user_id: str | None) -> tuple[UserContext, LiveEvents]:
        return self.histories.context(dep, user_id)

    @staticmethod
    def proposal(dep: Deployed, rec: Recommendation, scenario: str) -> Proposal:
        return proposal(dep, rec, scenario)

    # ------------------------------------------------------------------ answers
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
        """One feed (see :meth:`Feeds.recommend`) for a request from ``platform`` in ``language``; a
        forgotten shopper gets the anonymous feed."""
        if log:
            self.platforms.add("requests", [platform])
        where = {"platform": platform, "language": language} if _FEEDS_TAKE_PLATFORM else {}
        forgotten = bool(user_id) and user_id in self.forgotten
        began = time.perf_counter()
        try:
            served = self.feeds.recommend(scenario, None if forgotten else user_id, item_id, k, filters, log, **where)
        except Exception as err:
            if log and is_server_error(err):
                self.counters.observe(self.versions.for_user(user_id).version, time.perf_counter() - began, True)
            raise
        if log:
            self.counters.observe(served.version, time.perf_counter() - began)
        if forgotten:
            served.user_id, served.notes = user_id, [*served.notes, FORGOTTEN_NOTE]
        return served

    def live_events(self, user_id: str) -> tuple[Deployed, LiveEvents]:
        """The user's serving version and live events, as the user's next feed reads them."""
        dep = self.versions.for_user(user_id)
        return dep, self.histories.context(dep, user_id)[1]

    def profile(self, user_id: str, lang: str = "en") -> dict:
        return user_profile(self.versions, self.histories, self.catalog, user_id, lang)

    def explain(
        self, user_id: str, scenario: str = "home", lang: str = "en", k: int = 10, item_id: str | None = None
    ) -> dict:
        return explain_list(self.versions, self.histories, self.catalog, user_id, scenario, lang, k, item_id)

    def bundle(self, **request) -> dict:
        return serve_bundle(self.versions, **request)

    def item(self, item_id: str) -> dict:
        return self.catalog.item(item_id)

    def search(self, text: str, limit: int = 20) -> list[dict]:
        return search_items(self.catalog, text, limit)

    # ------------------------------------------------------------------ events and catalog changes
    def check_items(self, item_ids: list[str]) -> None:
        self.catalog.check_items(item_ids)

    def record_live(self, events: list[Event]) -> None:
        self.live.record(events)

    def upsert_items(self, records: list[ItemRecord], encode: Encoder) -> int:
        return self.catalog.upsert_items(records, encode)

    def forget_user(self, user_id: str, actor: str) -> dict:
        """Forget a shopper everywhere (see :mod:`~shoprec.service.forget`); NotFound if nothing knows them."""

        def known(user: str) -> bool:
            loaded = any(dep.user_index(user) >= 0 for dep in list(self.versions.loaded.values()))
            return loaded or bool(trained_on(self.versions.models_dir, user))

        report = forget_user(self.store, self.live, user_id, actor, known)
        self.forgotten.add(user_id)
        return report

    def delete_item(self, item_id: str) -> None:
        self.catalog.delete_item(item_id)
