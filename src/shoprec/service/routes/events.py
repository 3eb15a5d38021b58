"""Event ingest (write scope): acknowledged only after the events are durably committed; a shopper's
live events and search queries as the feeds see them (read scope).

Search-driven events: a click, cart or purchase may carry the ``search_id`` of the ``/v1/search``
answer it came from. The query is looked up in the search log and stored with the event. A
``search_id`` the log does not know (a search of another deployment, a log lost with its database, a
client bug) does not cost the shop its purchase: the event is stored with the id and no query, the
acknowledgement lists the id under ``unknown_search_ids``, and the search analytics count such events
(``unknown_search_events``). A ``view`` carrying a ``search_id`` is refused (422): showing a product
is not acting on a search result.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from shoprec.errors import ConfigError
from shoprec.service.deps import EngineDep, ReadKey, Settings, WriteKey
from shoprec.service.platforms import normalize_platform
from shoprec.service.schemas import EventAck, EventBatch, EventIn, EventOut, LiveOut
from shoprec.service.store.base import Event

router = APIRouter(tags=["events"])
SEARCH_EVENTS = ("click", "cart", "purchase")
"""Events that may carry a search_id."""


class LiveEventOut(EventOut):
    query: str | None = Field(None, description="The query of the search the event followed (from the search log).")


class LiveQueryOut(BaseModel):
    query: str
    timestamp: float


class LiveSearchOut(LiveOut):
    events: list[LiveEventOut] = Field(description="Oldest first: the live events the shopper's next feed builds on.")
    queries: list[LiveQueryOut] = Field(
        default_factory=list,
        description="Oldest first: the shopper's search queries since the version's snapshot, which the next "
        "home feed reads (with the snapshot's own queries) as its recent queries.",
    )


def _check_search_ids(events: list[EventIn], where: tuple) -> None:
    problems = [
        {
            "loc": (*where, n, "search_id"),
            "msg": f"a {e.event} event cannot carry a search_id: only {', '.join(SEARCH_EVENTS)} do (leave it out)",
            "type": "value_error",
        }
        for n, e in enumerate(events)
        if e.search_id is not None and e.event not in SEARCH_EVENTS
    ]
    if problems:
        if where == ("body",):  # a single event: no list position in the location
            for p in problems:
                p["loc"] = ("body", "search_id")
        raise RequestValidationError(problems)


async def _ingest(request: Request, engine, events: list[EventIn]) -> EventAck:
    now = time.time()
    engine.check_items([e.item_id for e in events])
    asked = list(dict.fromkeys(e.search_id for e in events if e.search_id is not None))
    logged = await run_in_threadpool(engine.store.get_searches, asked) if asked else {}
    rows = [
        Event(
            e.event_id,
            e.user_id,
            e.item_id,
            e.event,
            e.timestamp or now,
            e.recommendation_id,
            e.search_id,
            logged[e.search_id].query if e.search_id in logged else None,
            normalize_platform(e.platform),
            e.language,
        )
        for e in events
    ]
    # Stored, then recorded in the live state by the committer, before this returns.
    result = await asyncio.wrap_future(request.app.state.committer.submit(rows))
    request.app.state.metrics.events(len(result.inserted), len(result.duplicates))
    stored = set(result.inserted)
    engine.platforms.add("events", [r.platform for r in rows if r.event_id in stored])
    return EventAck(
        accepted=len(result.inserted),
        duplicates=len(result.duplicates),
        duplicate_ids=result.duplicates,
        unknown_search_ids=[s for s in asked if s not in logged],
    )


@router.post("/events", response_model=EventAck)
async def post_event(event: EventIn, request: Request, engine: EngineDep, _: WriteKey) -> EventAck:
    """One event. The response comes after the commit; retry with the same event_id on any failure."""
    _check_search_ids([event], ("body",))
    return await _ingest(request, engine, [event])


@router.post("/events/batch", response_model=EventAck)
async def post_events(
    batch: EventBatch, request: Request, engine: EngineDep, settings: Settings, _: WriteKey
) -> EventAck:
    """Up to ``max_batch`` events, committed in one transaction."""
    if len(batch.events) > settings.max_batch:
        raise ConfigError(
            f"batch of {len(batch.events)} events is over this service's limit of {settings.max_batch}",
            fix=f"split it into batches of at most {settings.max_batch}",
        )
    _check_search_ids(batch.events, ("body", "events"))
    return await _ingest(request, engine, batch.events)


@router.get("/users/{user_id}/events", response_model=LiveSearchOut)
async def live_events(user_id: str, engine: EngineDep, _: ReadKey) -> LiveSearchOut:
    """The shopper's live events newer than the serving version's snapshot (the latest 200 at most),
    oldest first, read exactly as the next feed reads them, with where they were read; and the
    shopper's search queries since the snapshot (the latest 20 at most)."""
    dep, live = await run_in_threadpool(engine.live_events, user_id)
    return LiveSearchOut(
        user_id=user_id,
        version=dep.version,
        live_state=live.state,
        degraded=live.degraded,
        events=[
            {
                "event_id": e.event_id,
                "item_id": e.item_id,
                "event": e.event,
                "timestamp": e.timestamp,
                "recommendation_id": e.recommendation_id,
                "search_id": e.search_id,
                "query": e.query,
                "platform": e.platform,
                "language": e.language,
            }
            for e in live
        ],
        queries=[{"query": q.query, "timestamp": q.timestamp} for q in live.queries],
    )
