"""The HTTP service: app factory, start-up and shutdown, error mapping, size limits, CORS, metrics.

Paths are versioned (``/v1/...``); the OpenAPI schema is at ``/openapi.json`` and browsable at
``/docs``. Every error is JSON ``{"error": ..., "detail": ...}`` with a 4xx status saying what to fix;
an unexpected failure is a 500 carrying only a request id (the log has the exception type, never
a traceback or a secret).

>>> app = create_app(ServiceSettings(models_dir="models"))   # doctest: +SKIP
>>> uvicorn.run(app, port=8000)                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shoprec import __version__
from shoprec.errors import ShoprecError
from shoprec.loop.explore import Explorer
from shoprec.service.ab import VersionManager
from shoprec.service.auth import KeyChecker, RateLimited
from shoprec.service.engine import Engine
from shoprec.service.experiments import DecisionLoop, Experiments, rules_from
from shoprec.service.live_redis import open_live
from shoprec.service.metrics import Metrics
from shoprec.service.problems import status_of
from shoprec.service.schedule import start_from_settings
from shoprec.service.schemas import Problem
from shoprec.service.searching import Searching, SharedEncoders, load_stages
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import open_store
from shoprec.service.store.base import StoreError
from shoprec.service.store.group import GroupCommitter

log = logging.getLogger("shoprec.service")
API = "/v1"


def store_url(settings: ServiceSettings) -> str:
    return settings.store_url or f"sqlite:///{Path(settings.models_dir) / 'shoprec.db'}"


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: ServiceSettings = app.state.settings
    Path(settings.models_dir).mkdir(parents=True, exist_ok=True)
    store = open_store(store_url(settings))
    live = open_live(settings.redis_url, store, settings.redis_prefix)
    versions = VersionManager(settings.models_dir, store, settings.poll_seconds)
    versions.refresh(wait=True)
    app.state.engine = Engine(store, live, versions, settings.clock, settings.warm_cache, settings.feed_cache)
    if settings.explore_share:  # exploration per request, after the feed cache (see feeds.py)
        app.state.engine.feeds.explorer = Explorer(settings.explore_share, settings.explore_pool)
    encoders = SharedEncoders()
    app.state.engine.catalog.searching = _searching(app.state.engine, settings, encoders)
    app.state.committer = GroupCommitter(store, on_commit=app.state.engine.record_live)
    app.state.keys = KeyChecker(store)
    app.state.encode = _encoder(app, encoders)
    app.state.experiments = Experiments(store, versions, rules_from(settings))
    every = settings.experiments_every
    app.state.decisions = DecisionLoop(app.state.experiments, every) if every > 0 else None
    app.state.retrainer = start_from_settings(settings, store)  # None unless retrain_every is set
    try:
        yield
    finally:
        if app.state.decisions is not None:
            app.state.decisions.close()
        if app.state.retrainer is not None:
            app.state.retrainer.close()
        app.state.committer.close()
        app.state.engine.close()
        live.close()
        store.close()


def _searching(engine: Engine, settings: ServiceSettings, encoders: SharedEncoders) -> Searching:
    """Search engines for the loaded versions, built now (the service is ready once they are), and for
    each version loaded later right after it starts serving (on the loader's thread)."""
    from shoprec.search.merch import Merchandising

    stages = load_stages(settings.search_ranker, settings.search_cross_encoder)
    merch = Merchandising.from_toml(settings.search_merch) if settings.search_merch else None
    searching = Searching(engine.catalog, settings.search_dense, encoders, stages, merch)
    for dep in list(engine.versions.loaded.values()):
        searching.prepare(dep)
    searching.serving()
    warm = engine.versions.on_load

    def on_load(dep) -> None:
        if warm is not None:
            warm(dep)
        searching.prepare(dep)

    engine.versions.on_load = on_load
    return searching


def _encoder(app: FastAPI, encoders: SharedEncoders):
    """Encodes catalog texts with the serving version's encoder, loaded on first use (the instance
    search queries use too)."""

    def encode(texts: list[str]):
        name = app.state.engine.versions.default().manifest.get("encoder", "auto")
        return encoders.get(name, sample_texts=texts).encode(texts, progress=False)

    return encode


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    # Every part the README advertises is imported here, unguarded: a part that cannot be imported
    # stops the service at start with the import error, instead of a route silently missing.
    from shoprec.service import dashboard
    from shoprec.service.routes import admin, catalog, events, experiments, feeds, health, search

    settings = settings or ServiceSettings.from_env()
    app = FastAPI(
        title="shoprec",
        version=__version__,
        summary="E-commerce recommendations and product search: feeds, search, similar items, complements, bundles, "
        "events, explanations.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    for module in (feeds, search, catalog, events, admin, experiments, health):
        app.include_router(module.router, prefix=API, responses=ERROR_RESPONSES)
    app.include_router(health.root)
    app.include_router(dashboard.router)
    _errors(app)
    _middleware(app, settings)
    return app


ERROR_RESPONSES = {
    status: {"model": Problem, "description": what}
    for status, what in [
        (400, "Bad parameters: the message says which and what to send"),
        (401, "Missing or unknown API key"),
        (403, "The key lacks the scope this call needs"),
        (404, "Unknown user, item or recommendation"),
        (409, "The model cannot answer this (for example no version loaded)"),
        (413, "Request body over the size limit"),
        (422, "Invalid request: each problem with where it is"),
        (429, "Rate limit reached: see Retry-After"),
        (503, "Store or model temporarily unavailable: retry"),
    ]
}


def _middleware(app: FastAPI, settings: ServiceSettings) -> None:
    app.add_middleware(Guard, limit=settings.max_body_bytes, metrics=app.state.metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type"],
        )


class Guard:
    """Pure ASGI middleware: body size limit (declared or streamed) and per-route metrics."""

    def __init__(self, app, limit: int, metrics: Metrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began, status, seen = time.perf_counter(), [500], 0
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = _problem(
            413, f"request body over the limit of {self.limit} bytes", "send smaller requests (split event batches)"
        )

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # FastAPI turns other exceptions raised while reading the body into a 400.
                raise StarletteHTTPException(413, f"request body over the limit of {self.limit} bytes")
            return message

        async def observed(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await too_large(scope, receive, observed)
        else:
            await self.app(scope, limited, observed)
        route = scope.get("route")
        self.metrics.observe(
            getattr(route, "path", "unmatched"), scope["method"], status[0], time.perf_counter() - began
        )


def _problem(status: int, error: str, detail=None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ShoprecError)
    async def known(request: Request, err: ShoprecError):
        status = status_of(err)
        headers = {"Retry-After": str(max(1, round(err.retry_after)))} if isinstance(err, RateLimited) else None
        message = str(err)
        if isinstance(err, StoreError):
            # The store's own message may name files or hosts: it goes to the log only.
            log.error("store error on %s: %s", request.url.path, err)
            message, headers = "store unavailable: retry shortly", {"Retry-After": "1"}
        return _problem(status, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", ""), "type": e.get("type")}
            for e in err.errors()
        ]
        summary = "; ".join(f"{p['where']}: {p['problem']}" for p in problems[:5])
        return _problem(422, f"invalid request: {summary}", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        messages = {
            404: f"no such path {request.url.path}: see /docs for the API",
            405: "method not allowed here",
            413: f"{err.detail}: send smaller requests (split event batches)",
        }
        return _problem(err.status_code, messages.get(err.status_code, str(err.detail)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        request_id = uuid.uuid4().hex[:12]
        log.error("internal error %s on %s %s: %s", request_id, request.method, request.url.path, type(err).__name__)
        return _problem(500, "internal error", f"request id {request_id}; the service log has the details")
