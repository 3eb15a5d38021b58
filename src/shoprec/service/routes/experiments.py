"""The running A/B experiment: per-arm statistics with intervals, the sequential test's running
estimate, guardrails and decisions (read scope); a decision on demand (admin scope)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from shoprec.service.deps import AdminKey, EngineDep, ReadKey

router = APIRouter(tags=["experiments"])


@router.get("/experiments")
async def experiments(
    request: Request,
    engine: EngineDep,
    _: ReadKey,
    by: Annotated[str | None, Query(pattern="^platform$", description="'platform': arms by platform too")] = None,
) -> dict:
    """Per arm: impressions, clicks, purchases, CTR and conversion with 95% Wilson intervals; per
    challenger: the mSPRT's running estimate of the difference from the control with its always-valid
    interval at each time bucket, its decision and the guardrails; the latest recorded decisions."""
    engine.impressions.flush()
    return await run_in_threadpool(request.app.state.experiments.status, time.time(), by == "platform")


@router.post("/experiments/decide")
async def decide(request: Request, engine: EngineDep, _: AdminKey) -> dict:
    """Judge the running experiment now: promote a winner, roll back a loser or a guardrail breach, or
    continue (recorded with its evidence, like every action)."""
    engine.impressions.flush()
    result = await run_in_threadpool(request.app.state.experiments.decide, time.time(), True)
    if result["plan"] != engine.versions.plan:
        await run_in_threadpool(engine.versions.refresh, True)
    return result
