"""Request dependencies: the engine, the settings and API-key checks by scope.

All are ``async def``: FastAPI runs a plain ``def`` dependency on its thread pool, a thread hop per
dependency per request that costs more than these checks themselves. The one blocking step, a key
lookup in the store (once per key every few seconds), goes to the thread pool explicitly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from shoprec.service.engine import Engine
from shoprec.service.settings import ServiceSettings
from shoprec.service.store.base import ApiKeyRecord

key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="sr_<id>_<secret> from 'shoprec keys create'")


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def _scope(scope: str):
    async def check(request: Request, key: Annotated[str | None, Depends(key_header)]) -> ApiKeyRecord | None:
        if not request.app.state.settings.auth:
            return None
        keys = request.app.state.keys
        if keys.stale(key):
            await run_in_threadpool(keys.look_up, key)
        record = keys.check(key, scope)
        request.state.key_id = record.key_id
        return record

    return check


EngineDep = Annotated[Engine, Depends(get_engine)]
Settings = Annotated[ServiceSettings, Depends(get_settings)]
ReadKey = Annotated[ApiKeyRecord | None, Depends(_scope("read"))]
WriteKey = Annotated[ApiKeyRecord | None, Depends(_scope("write"))]
AdminKey = Annotated[ApiKeyRecord | None, Depends(_scope("admin"))]
