"""Recommendation feeds, explanations, profiles and bundles (read scope)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from shoprec.service.deps import EngineDep, ReadKey, Settings
from shoprec.service.platforms import LANGUAGE_PATTERN, PLATFORM_PATTERN, normalize_platform
from shoprec.service.schemas import BundleIn, ListOut
from shoprec.service.served import Filters, ServedList

router = APIRouter(tags=["recommendations"])
K = Annotated[int, Query(ge=1, le=1000, description="Items to return (capped by the service's max_k).")]
UserScenario = Literal["home", "cross-category", "trending", "new-arrivals", "promotions"]


async def _filters(
    category: Annotated[
        list[str] | None, Query(max_length=20, description="Keep items under these category paths.")
    ] = None,
    exclude_category: Annotated[list[str] | None, Query(max_length=50)] = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    in_stock: bool = False,
    exclude: Annotated[list[str] | None, Query(max_length=200, description="Item ids never to return.")] = None,
) -> Filters:
    return Filters(category or [], exclude_category or [], min_price, max_price, in_stock, exclude or [])


FiltersDep = Annotated[Filters, Depends(_filters)]


@dataclass(frozen=True)
class Where:
    """Where the request comes from: the platform (channel) and the device language."""

    platform: str | None = None
    language: str | None = None


async def _where(
    platform: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=PLATFORM_PATTERN,
            description="Where the shopper is: web, app, mini-program, email, or any other channel name "
            "(accepted and counted); the ranker of a version trained with platforms uses it.",
        ),
    ] = None,
    language: Annotated[
        str | None,
        Query(max_length=35, pattern=LANGUAGE_PATTERN, description="The device language, e.g. en, zh-CN."),
    ] = None,
) -> Where:
    return Where(normalize_platform(platform), language)


WhereDep = Annotated[Where, Depends(_where)]


def _out(served: ServedList) -> ListOut:
    return ListOut.model_validate(served, from_attributes=True)


async def _run(engine, settings, k: int, where: Where, **kwargs) -> ListOut:
    from shoprec.errors import ConfigError

    if k > settings.max_k:
        raise ConfigError(
            f"k={k} is above this service's limit of {settings.max_k}", fix=f"ask for k <= {settings.max_k}"
        )
    return _out(
        await run_in_threadpool(engine.recommend, k=k, platform=where.platform, language=where.language, **kwargs)
    )


@router.get("/users/{user_id}/recommendations", response_model=ListOut)
async def user_feed(
    user_id: str,
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    filters: FiltersDep,
    where: WhereDep,
    scenario: UserScenario = "home",
    k: K = 10,
) -> ListOut:
    """A shopper's feed. An unknown user gets the cold-start feed (popular, trending); events sent
    for this user before this request are already reflected."""
    return await _run(engine, settings, k, where, scenario=scenario, user_id=user_id, filters=filters)


@router.get("/items/{item_id}/similar", response_model=ListOut)
async def similar(
    item_id: str,
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    filters: FiltersDep,
    where: WhereDep,
    k: K = 10,
    user_id: str | None = None,
) -> ListOut:
    """Items like this one (text and co-occurrence neighbours); new items by text."""
    return await _run(engine, settings, k, where, scenario="similar", item_id=item_id, user_id=user_id, filters=filters)


@router.get("/items/{item_id}/complements", response_model=ListOut)
async def complements(
    item_id: str,
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    filters: FiltersDep,
    where: WhereDep,
    k: K = 10,
    user_id: str | None = None,
) -> ListOut:
    """Items bought together with this one in other categories."""
    return await _run(
        engine, settings, k, where, scenario="complements", item_id=item_id, user_id=user_id, filters=filters
    )


@router.get("/users/{user_id}/cross-category", response_model=ListOut)
async def cross_category(
    user_id: str, engine: EngineDep, settings: Settings, _: ReadKey, filters: FiltersDep, where: WhereDep, k: K = 10
) -> ListOut:
    """Items from categories the shopper has not bought in, driven by their history."""
    return await _run(engine, settings, k, where, scenario="cross-category", user_id=user_id, filters=filters)


@router.get("/trending", response_model=ListOut)
async def trending(
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    filters: FiltersDep,
    where: WhereDep,
    k: K = 10,
    user_id: str | None = None,
) -> ListOut:
    """Most active items of the last 7 days."""
    return await _run(engine, settings, k, where, scenario="trending", user_id=user_id, filters=filters)


@router.get("/new-arrivals", response_model=ListOut)
async def new_arrivals(
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    filters: FiltersDep,
    where: WhereDep,
    k: K = 10,
    user_id: str | None = None,
) -> ListOut:
    """Items launched recently (and items added since training), matched to the shopper when known."""
    return await _run(engine, settings, k, where, scenario="new-arrivals", user_id=user_id, filters=filters)


@router.get("/users/{user_id}/explanations")
async def explanations(
    user_id: str,
    engine: EngineDep,
    settings: Settings,
    _: ReadKey,
    k: K = 10,
    scenario: Literal["home", "similar", "complements", "cross-category"] = "home",
    item_id: str | None = None,
    lang: Literal["en", "zh"] = "en",
) -> dict:
    """The shopper's current list with a reason per item (en/zh) and the contribution heatmap grid
    (rows: history items, columns: recommended items, values: shares). ``item_id`` is the anchor
    for similar and complements."""
    if k > settings.max_k:
        from shoprec.errors import ConfigError

        raise ConfigError(f"k={k} is above this service's limit of {settings.max_k}")
    return await run_in_threadpool(engine.explain, user_id, scenario, lang, k, item_id)


@router.get("/users/{user_id}/profile")
async def profile(user_id: str, engine: EngineDep, _: ReadKey, lang: Literal["en", "zh"] = "en") -> dict:
    """What the service knows about the shopper: a sentence, top categories and tags, recent items."""
    return await run_in_threadpool(engine.profile, user_id, lang)


@router.post("/bundles")
async def bundle(body: BundleIn, engine: EngineDep, _: ReadKey) -> dict:
    """A bundle around items, a cart, a shopper or an intent, under size, budget and category rules."""
    request = body.model_dump()
    request["user"] = request.pop("user_id")
    return await run_in_threadpool(engine.bundle, **request)
