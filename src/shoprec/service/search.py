"""Search answers: ``GET /v1/search`` and its suggestions over the serving version's search engine, and
the product lookup of ``GET /v1/items?q=``.

A search runs on the version that serves the shopper (the same A/B arm as their feeds), with the
request's filters and, for a shopper with a history (the version's snapshot plus live events, and
their past queries from the search log), their :class:`~shoprec.search.personal.SearchProfile`; an
anonymous request gets the non-personal order. Every answer gets a ``search_id`` and is written to the
search log before it is returned, so a click that carries the id finds its query.

The lookup keeps its contract (items whose id or title contains the text, never a deleted one) and
reads it from the search engine's table (the version's items with the API's changes applied); the
engine orders the matches by relevance, an exact id comes first.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shoprec.errors import ShoprecError
from shoprec.service.catalog import Catalog
from shoprec.service.served import Filters

if TYPE_CHECKING:
    from shoprec.service.searching import VersionSearch


class Engine(Protocol):
    """The parts of :class:`shoprec.service.engine.Engine` a search reads (named by shape: the engine
    imports this module)."""

    versions: object
    histories: object
    catalog: Catalog
    store: object
    live: object


RECENT_QUERIES = 20
"""Past queries of a shopper that feed their search profile."""


def search(
    engine: Engine,
    query: str | None,
    user_id: str | None = None,
    k: int = 10,
    offset: int = 0,
    filters: Filters | None = None,
    lang: str = "en",
    log: bool = True,
) -> dict:
    """The ``GET /v1/search`` answer: the engine's result (``SearchResult.to_dict``) with a ``search_id``.

    ``log=False`` (previews such as the dashboard's) writes nothing to the search log or the shopper's
    live queries, and the answer's ``search_id`` is None: no click can refer to it.
    """
    if query is None or not query.strip():
        raise ShoprecError("the query parameter q is empty: give some words to search for (e.g. q=wireless charger)")
    began = time.perf_counter()
    user_id = user_id or None
    dep = engine.versions.for_user(user_id)
    history, live_state = _history(engine, dep, user_id)
    result, vs = engine.catalog.searching.search(
        dep, query, k, offset, filters, profile=(lambda vs: _profile(vs, *history)) if history else None
    )
    search_id, at = (uuid.uuid4().hex if log else None), time.time()
    if log:
        engine.store.log_search(search_id, user_id, result.query.text, result.total, at)
        if user_id:
            engine.live.record_search(user_id, result.query.text, at)
    body = result.to_dict(lang)
    body["notes"] = [*body["notes"], *vs.notes]
    body.update(
        search_id=search_id,
        user_id=user_id,
        version=dep.version,
        lang=lang,
        personalised=bool(history),
        dense=vs.dense,
        live_state=live_state,
        timings_ms={"total": round(1000 * (time.perf_counter() - began), 3)},
    )
    return body


def _history(engine: Engine, dep, user_id: str | None) -> tuple[tuple | None, str]:
    """The shopper's item history (version indices, ids of live items the version lacks) and past
    queries (the context's when the history holds them, else the search log's); None when anonymous
    or with neither."""
    if not user_id:
        return None, "none"
    ctx, live = engine.histories.context(dep, user_id)
    queries = list(ctx.queries) or [r.query for r in engine.store.user_searches(user_id, RECENT_QUERIES)]
    extra = [e.item_id for e in live if dep.item_index(e.item_id) < 0]
    if not len(ctx.history) and not extra and not queries:
        return None, live.state
    return (np.asarray(ctx.history, dtype=np.int64), extra, queries[-RECENT_QUERIES:]), live.state


def _profile(vs: VersionSearch, items: np.ndarray, extra: list[str], queries: list[str]):
    """The shopper's search profile over the engine's table (called under the engine's read lock)."""
    from shoprec.search.personal import SearchProfile

    table = vs.engine.table
    positions = [int(i) for i in items if 0 <= i < len(table) and table.alive[i]]
    positions += [p for p in (table.position(i) for i in extra) if p >= 0]
    vectors = vs.engine.dense.vectors if vs.engine.dense is not None else None
    return SearchProfile.from_history(table, np.asarray(positions, dtype=np.int64), vectors, queries)


def suggest(engine: Engine, prefix: str, k: int = 10, user_id: str | None = None) -> dict:
    """Completions of a typed prefix: past queries (most searched first), then titles."""
    dep = engine.versions.for_user(user_id or None)
    found = engine.catalog.searching.suggest(dep, prefix or "", k)
    return {
        "prefix": prefix or "",
        "version": dep.version,
        "suggestions": [{"text": s.text, "count": s.count, "source": s.source} for s in found],
    }


def search_items(catalog: Catalog, text: str, limit: int = 20) -> list[dict]:
    """Items whose id or title contains ``text`` (case-insensitive), an exact id first, then ordered by
    the search engine's relevance for ``text``; never a deleted one; at most ``limit``."""
    dep = catalog.versions.default()
    searching = catalog.searching
    vs = searching.current(dep)
    needle = text.strip().casefold()
    if not needle:
        raise ShoprecError("the query parameter q is empty: give part of an item id or title")
    with vs.lock.reading():
        table = vs.engine.table
        contains = np.array(
            [
                alive and (needle in p.item_id.casefold() or needle in p.title.casefold())
                for p, alive in zip(table.products, table.alive, strict=True)
            ],
            dtype=bool,
        )
        exact = table.position(text.strip())
        order = [exact] if exact >= 0 else []
        if contains.any():
            ranked = vs.engine.search(text, k=limit, allowed=contains).hits
            order += [h.position for h in ranked]
            order += np.flatnonzero(contains).tolist()
        ids = [table.products[p].item_id for p in dict.fromkeys(order)][:limit]
    return [catalog.item(i) for i in ids]
