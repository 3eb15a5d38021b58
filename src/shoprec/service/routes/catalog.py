"""Catalog: item lookup and search (read), upsert and delete (write).

An upserted item is encoded by the serving version's text encoder and stored with its vector, so it
is recommendable at once by its text, on every worker, without retraining.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from shoprec.service.deps import EngineDep, ReadKey, WriteKey
from shoprec.service.schemas import ItemIn, ItemInfoOut
from shoprec.service.store.base import ItemRecord

router = APIRouter(tags=["catalog"])
ItemId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/]+$")]


@router.get("/items", response_model=list[ItemInfoOut])
async def search_items(
    engine: EngineDep,
    _: ReadKey,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict]:
    """Product lookup: items whose id or title contains ``q`` (case-insensitive)."""
    return await run_in_threadpool(engine.search, q, limit)


@router.get("/items/{item_id}", response_model=ItemInfoOut)
async def get_item(item_id: ItemId, engine: EngineDep, _: ReadKey) -> dict:
    return await run_in_threadpool(engine.item, item_id)


@router.put("/items/{item_id}", response_model=ItemInfoOut)
async def put_item(item_id: ItemId, body: ItemIn, request: Request, engine: EngineDep, _: WriteKey) -> dict:
    """Add or replace an item; it is served by its text right away."""
    attributes = {**body.attributes, "in_stock": body.in_stock}
    record = ItemRecord(
        item_id, body.title, body.description, body.category, body.brand, body.price, body.language, attributes
    )
    await run_in_threadpool(engine.upsert_items, [record], request.app.state.encode)
    return await run_in_threadpool(engine.item, item_id)


@router.delete("/items/{item_id}", status_code=204)
async def delete_item(item_id: ItemId, engine: EngineDep, _: WriteKey) -> None:
    """Remove an item from every feed at once (it stays in history and statistics)."""
    await run_in_threadpool(engine.delete_item, item_id)
