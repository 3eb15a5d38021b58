"""Liveness, readiness and Prometheus metrics (no key needed: they reveal no shop data)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter(tags=["health"])
root = APIRouter()
"""Mounted without the /v1 prefix: Prometheus scrapes /metrics."""


@router.get("/health")
async def health() -> dict:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> Response:
    """200 once a model version is loaded and the store answers; 503 otherwise, saying why."""
    engine = request.app.state.engine
    problems = []
    if not engine.versions.loaded:
        problems.append(f"no model version loaded from {engine.versions.models_dir}")
    try:
        engine.store.schema_version()
    except Exception as err:  # noqa: BLE001 - reported, not raised
        problems.append(f"store unavailable: {type(err).__name__}")
    if problems:
        return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
    return JSONResponse(
        {
            "status": "ready",
            "versions": sorted(engine.versions.loaded),
            "store": engine.store.url.split(":", 1)[0],  # the backend only: no paths or hosts without a key
            "live": engine.live.name,
            "feed_cache": engine.cache.status(),
        }
    )


@root.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(request.app.state.engine), media_type=CONTENT_TYPE_LATEST)
