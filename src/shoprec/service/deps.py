"""Request dependencies: the engine, the settings and API-key checks by scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from shoprec.service.engine import Engine
from shoprec.service.settings import ServiceSettings
from shoprec.service.store.base import ApiKeyRecord

key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="sr_<id>_<secret> from 'shoprec keys create'")


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def _scope(scope: str):
    def check(request: Request, key: Annotated[str | None, Depends(key_header)]) -> ApiKeyRecord | None:
        if not request.app.state.settings.auth:
            return None
        record = request.app.state.keys.check(key, scope)
        request.state.key_id = record.key_id
        return record

    return check


EngineDep = Annotated[Engine, Depends(get_engine)]
Settings = Annotated[ServiceSettings, Depends(get_settings)]
ReadKey = Annotated[ApiKeyRecord | None, Depends(_scope("read"))]
WriteKey = Annotated[ApiKeyRecord | None, Depends(_scope("write"))]
AdminKey = Annotated[ApiKeyRecord | None, Depends(_scope("admin"))]
