"""Event ingest (write scope): acknowledged only after the events are durably committed; a shopper's
live events as the feeds see them (read scope)."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from shoprec.errors import ConfigError
from shoprec.service.deps import EngineDep, ReadKey, Settings, WriteKey
from shoprec.service.schemas import EventAck, EventBatch, EventIn, LiveOut
from shoprec.service.store.base import Event

router = APIRouter(tags=["events"])


async def _ingest(request: Request, engine, events: list[EventIn]) -> EventAck:
    now = time.time()
    rows = [Event(e.event_id, e.user_id, e.item_id, e.event, e.timestamp or now, e.recommendation_id) for e in events]
    engine.check_items([e.item_id for e in rows])
    # Stored, then recorded in the live state by the committer, before this returns.
    result = await asyncio.wrap_future(request.app.state.committer.submit(rows))
    request.app.state.metrics.events(len(result.inserted), len(result.duplicates))
    return EventAck(accepted=len(result.inserted), duplicates=len(result.duplicates), duplicate_ids=result.duplicates)


@router.post("/events", response_model=EventAck)
async def post_event(event: EventIn, request: Request, engine: EngineDep, _: WriteKey) -> EventAck:
    """One event. The response comes after the commit; retry with the same event_id on any failure."""
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
    return await _ingest(request, engine, batch.events)


@router.get("/users/{user_id}/events", response_model=LiveOut)
async def live_events(user_id: str, engine: EngineDep, _: ReadKey) -> LiveOut:
    """The shopper's live events newer than the serving version's snapshot (the latest 200 at most),
    oldest first, read exactly as the next feed reads them, with where they were read."""
    dep, live = await run_in_threadpool(engine.live_events, user_id)
    return LiveOut(
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
            }
            for e in live
        ],
    )
