"""Product search and autocomplete (read scope)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from shoprec.service import search as answers
from shoprec.service.deps import EngineDep, ReadKey, Settings
from shoprec.service.routes.feeds import FiltersDep
from shoprec.service.searching import UnknownFilterValue

router = APIRouter(tags=["search"])
MAX_OFFSET = 10_000


def _invalid(parameter: str, message: str) -> RequestValidationError:
    """A 422 in the API's validation format, naming the query parameter."""
    return RequestValidationError([{"loc": ("query", parameter), "msg": message, "type": "value_error"}])


@router.get("/search")
async def search(
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    filters: FiltersDep,
    q: Annotated[
        str | None,
        Query(description="What the shopper typed; constraints in it (brand, category, 'under 50') become filters."),
    ] = None,
    user_id: Annotated[
        str | None, Query(max_length=128, description="The shopper: their history personalises the order.")
    ] = None,
    k: Annotated[int, Query(ge=1, le=1000, description="Results to return (capped by the service's max_k).")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip (paging).")] = 0,
    lang: Literal["en", "zh"] = "en",
) -> dict:
    """Hybrid product search (BM25 and the version's text vectors, fused; typos corrected; constraints
    parsed from the text). Returns the parsed query, the hits with each source's rank and score, score
    shares and a reason in ``lang``, facets (category, brand, price buckets) over all ``total`` matches,
    what was relaxed or corrected, notes, and a ``search_id`` to send back with click events."""
    if k > settings.max_k:
        raise _invalid("k", f"k={k} is above this service's limit of {settings.max_k}: ask for k <= {settings.max_k}")
    try:
        return await run_in_threadpool(answers.search, engine, q, user_id, k, offset, filters, lang)
    except UnknownFilterValue as err:
        raise _invalid(err.parameter, str(err)) from None


@router.get("/search/suggest")
async def suggest(
    engine: EngineDep,
    _: ReadKey,
    q: Annotated[str, Query(max_length=200, description="The typed prefix; empty: the most searched queries.")] = "",
    k: Annotated[int, Query(ge=1, le=50)] = 10,
    user_id: Annotated[str | None, Query(max_length=128)] = None,
) -> dict:
    """Autocomplete: past queries that start with ``q`` (most searched first), then product titles."""
    return await run_in_threadpool(answers.suggest, engine, q, k, user_id)
