"""Model versions, the A/B serving plan, forgetting a shopper, online statistics and search analytics
(admin scope; stats also read)."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from shoprec.service.deps import AdminKey, EngineDep, ReadKey
from shoprec.service.schemas import PlanIn
from shoprec.timeunits import DAY

SEARCH_WINDOW_DAYS = 30
"""The search analytics' default window: the last 30 days."""

router = APIRouter(tags=["models"])


@router.get("/models")
async def models(engine: EngineDep, _: ReadKey) -> dict:
    """Versions on disk, loaded versions with their manifests, the serving plan, load errors."""
    return engine.versions.status()


@router.put("/models/plan")
async def set_plan(body: PlanIn, engine: EngineDep, _: AdminKey) -> dict:
    """Pin a version, or split users between versions (A/B); empty body: serve the newest."""
    plan = {k: v for k, v in body.model_dump().items() if v}
    plan = engine.versions.set_plan(plan)
    await run_in_threadpool(engine.versions.refresh, True)
    return {"plan": plan, "loaded": sorted(engine.versions.loaded)}


@router.post("/models/reload")
async def reload(engine: EngineDep, _: AdminKey) -> dict:
    """Look for new versions now and load them, retrying failed ones (the swap does not interrupt requests)."""
    engine.versions.forget_failures()
    await run_in_threadpool(engine.versions.refresh, True)
    return {"loaded": sorted(engine.versions.loaded), "load_errors": engine.versions.load_errors}


@router.delete("/users/{user_id}", tags=["users"])
async def forget_user(user_id: str, engine: EngineDep, key: AdminKey) -> dict:
    """Forget a shopper: their events, impressions and searches are removed from the store and their
    live state from Redis; every worker serves them as an anonymous shopper from now on (the loaded
    versions were trained on their old events) and no later training set holds them. Audited with
    the API key id. 404 when neither the store nor any model version knows the user."""
    actor = key.key_id if key is not None else "auth-off"
    engine.impressions.flush()  # lists served to the user before this are in the store, to be removed
    return await run_in_threadpool(engine.forget_user, user_id, actor)


@router.get("/audit")
async def audit_log(engine: EngineDep, _: AdminKey, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    """The latest audit entries, newest first: who (API key id or "cli") did what to what, and when."""
    return await run_in_threadpool(engine.store.audit_log, limit)


@router.get("/stats/online")
async def online(
    engine: EngineDep,
    _: ReadKey,
    by: Annotated[list[Literal["version", "source", "scenario", "platform"]] | None, Query(max_length=4)] = None,
    bucket_seconds: Annotated[int | None, Query(ge=60, le=31 * DAY)] = None,
    since: float | None = None,
) -> list[dict]:
    """Impressions, clicks, purchases, CTR and conversion joined on recommendation id, grouped by
    ``by`` (version, source, scenario and the request's platform; lists served without a platform
    have platform null)."""
    if by and len(set(by)) < len(by):
        fields = "version, source, scenario, platform"
        problem = f"names a field twice ({', '.join(by)}): give each of {fields} at most once"
        raise RequestValidationError([{"loc": ("query", "by"), "msg": problem, "type": "value_error"}])
    engine.impressions.flush()
    return await run_in_threadpool(engine.store.online_stats, tuple(by or ["version"]), bucket_seconds, since)


@router.get("/stats/platforms")
async def platforms(engine: EngineDep, _: ReadKey) -> dict:
    """This worker's events stored and feed requests served by platform since it started (``other``:
    a value outside the known platforms, ``none``: no platform given), and the unknown values seen
    with their counts. Click-through by platform: ``/v1/stats/online?by=platform``."""
    return engine.platforms.snapshot()


@router.get("/stats/search")
async def search_stats(
    engine: EngineDep,
    _: ReadKey,
    since: Annotated[float | None, Query(ge=0, description="Unix seconds; default: 30 days ago.")] = None,
    until: Annotated[float | None, Query(ge=0, description="Unix seconds (exclusive); default: now.")] = None,
    min_searches: Annotated[int, Query(ge=1, le=1_000_000)] = 5,
    max_click_rate: Annotated[float, Query(ge=0, le=1)] = 0.1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict:
    """What shoppers search for and do not find: zero-result queries (how often, by how many shoppers)
    and low-click queries (searched at least ``min_searches`` times with results, click-through below
    ``max_click_rate``: the share of searches followed by a click, cart or purchase carrying the search
    id), grouped by normalised query text, over searches at ``since`` <= time < ``until``."""
    now = time.time()
    since = now - SEARCH_WINDOW_DAYS * DAY if since is None else since
    if until is not None and until <= since:
        problem = f"until ({until}) must be after since ({since}): give a window that is not empty"
        raise RequestValidationError([{"loc": ("query", "until"), "msg": problem, "type": "value_error"}])
    report = await run_in_threadpool(engine.store.search_analytics, since, until, min_searches, max_click_rate, limit)
    window = {"since": since, "until": until, "min_searches": min_searches, "max_click_rate": max_click_rate}
    return {"window": window, **report}
