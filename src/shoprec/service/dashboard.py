"""The web dashboard: server-rendered pages under ``/dashboard`` over the service's :class:`Engine`.

Pages: the overview (counts, versions and serving plan, offline metrics per version, online CTR per
A/B arm), a user (profile, history, explained recommendations, contribution heatmap; ``?lang=zh``),
an item (facts, similar, complements, bundle builder) and search: the product search box (the
answer of ``GET /v1/search``, built by the same function on the server, with the parsed query, score
shares and reasons; a merchant's searches here are not logged, so they never count in the analytics),
a user lookup, and the search analytics (zero-result and low-click queries).
No script and no external resource: CSS is inline, charts are SVG drawn in Python
(:mod:`shoprec.service.web`).

Access: with ``auth`` off the pages are open. Otherwise a browser brings a key with the ``read``
scope once, as ``?key=...`` or through the sign-in form; the dashboard checks it, keeps it in an
HttpOnly, SameSite=Strict cookie limited to ``/dashboard``, and redirects to the same page without
the key. Without a valid key every page answers 401 with the sign-in form; a key is never echoed.

>>> # shoprec serve --models models   then open   http://127.0.0.1:8000/dashboard?key=sr_...
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shoprec.errors import ConfigError, ShoprecError
from shoprec.service.auth import AuthError, RateLimited
from shoprec.service.engine import Engine
from shoprec.service.problems import status_of
from shoprec.service.search import search as search_answer
from shoprec.service.served import NotFound
from shoprec.service.store.base import StoreError
from shoprec.service.versions import list_versions, read_manifest
from shoprec.service.web.experimentsview import render_experiments
from shoprec.service.web.layout import BASE, error_page, login_page, user_url
from shoprec.service.web.overview import BUCKET_SECONDS, Overview, render_overview
from shoprec.service.web.searchview import SearchView, render_search_page
from shoprec.service.web.views import DEFAULT_BUNDLE_SIZE, BundleView, render_item, render_user
from shoprec.timeunits import DAY

router = APIRouter(prefix=BASE, include_in_schema=False)
COOKIE = "shoprec_key"
FEED_K = 10
SEARCH_K = 20
SEARCH_DAYS = 30
"""The analytics panel's window."""
MIN_SEARCHES, MAX_CLICK_RATE = 5, 0.1
"""A low-click query: searched at least this often, with a click-through below this."""
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
Page = Callable[[Engine], "str | Response"]


# ---------------------------------------------------------------------- pages
@router.get("")
async def overview(request: Request) -> Response:
    return await _serve(request, lambda engine: render_overview(gather_overview(engine)))


@router.get("/users/{user_id:path}")
async def user(request: Request, user_id: str, lang: str = "en") -> Response:
    return await _serve(request, lambda engine: _user_page(engine, user_id, lang))


@router.get("/items/{item_id:path}")
async def item(request: Request, item_id: str, budget: str | None = None, size: str | None = None) -> Response:
    return await _serve(request, lambda engine: _item_page(engine, item_id, budget, size))


@router.get("/search")
async def search(request: Request, q: str = "", user: str = "", shopper: str = "", lang: str = "en") -> Response:
    return await _serve(request, lambda engine: _search_page(engine, q.strip(), user.strip(), shopper.strip(), lang))


@router.get("/experiments")
async def experiments(request: Request) -> Response:
    experiments = request.app.state.experiments

    def build(engine: Engine) -> str:
        engine.impressions.flush()
        return render_experiments(experiments.status())

    return await _serve(request, build)


@router.post("/login")
async def login(request: Request) -> Response:
    """The sign-in form: check the pasted key, keep it in the cookie, go back to the page asked for."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key, target = form.get("key", [""])[0].strip(), _local(form.get("next", [BASE])[0])
    if not request.app.state.settings.auth:
        return RedirectResponse(target, status_code=303)
    try:
        await run_in_threadpool(request.app.state.keys.check, key, "read")
    except AuthError as err:
        return _html(login_page(target, str(err)), 401)
    except RateLimited as err:
        return _html(error_page("Too many requests", str(err)), 429)
    return _remember(RedirectResponse(target, status_code=303), key, request)


# ---------------------------------------------------------------------- what each page gathers
def gather_overview(engine: Engine) -> Overview:
    """Counts, version status, every manifest on disk and the online stats (after writing queued impressions)."""
    engine.impressions.flush()
    status = engine.versions.status()
    try:
        serving = engine.versions.default()
    except ConfigError:
        serving = None
    manifests, errors = {}, {}
    for version in list_versions(engine.versions.models_dir):
        try:
            manifests[version] = read_manifest(engine.versions.models_dir / version)
        except (ShoprecError, OSError, ValueError) as err:
            errors[version] = f"unreadable manifest: {err}"
    return Overview(
        serving=serving.version if serving else None,
        catalog_items=serving.dataset.n_items if serving else None,
        snapshot_events=len(serving.dataset) if serving else None,
        api_items=engine.store.count_items(),
        api_events=engine.store.count_events(),
        status=status,
        manifests=manifests,
        manifest_errors=errors,
        online=engine.store.online_stats(by=("version",)),
        hourly=engine.store.online_stats(by=("version",), bucket_seconds=BUCKET_SECONDS),
    )


def _user_page(engine: Engine, user_id: str, lang: str) -> str:
    if lang not in ("en", "zh"):
        raise ConfigError(f"unknown language lang={lang!r}", fix="Use lang=en or lang=zh")
    profile = engine.profile(user_id, lang)
    explained = engine.explain(user_id, "home", lang, FEED_K)
    return render_user(profile, explained, lang)


def _item_page(engine: Engine, item_id: str, budget: str | None, size: str | None) -> str:
    facts = engine.item(item_id)
    similar = engine.recommend("similar", item_id=item_id, k=FEED_K, log=False)
    complements = engine.recommend("complements", item_id=item_id, k=FEED_K, log=False)
    return render_item(facts, similar, complements, _bundle(engine, item_id, budget, size))


def _bundle(engine: Engine, item_id: str, budget: str | None, size: str | None) -> BundleView:
    """The builder's state; a bundle only once the form was sent, its failure shown as a message."""
    view = BundleView(budget or "", size or DEFAULT_BUNDLE_SIZE)
    if budget is None and size is None:
        return view
    try:
        limit = _number(budget, "budget", float, 0.01, 1e9) if budget and budget.strip() else None
        count = int(_number(size or DEFAULT_BUNDLE_SIZE, "size", int, 1, 20))
        view.result = engine.bundle(items=[item_id], min_size=min(2, count), max_size=count, budget=limit)
    except ShoprecError as err:
        view.problem = str(err)
    return view


def _number(text: str, name: str, kind: type, low: float, high: float) -> float:
    try:
        value = kind(text.strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        whole = "whole " if kind is int else ""
        raise ConfigError(
            f"bundle {name} must be a {whole}number from {low:g} to {high:,.12g}, not {text!r}",
            fix=f"Correct the {name} field",
        )
    return value


def _search_page(engine: Engine, query: str, user_id: str, shopper: str, lang: str) -> str | Response:
    if user_id:
        return RedirectResponse(user_url(user_id), status_code=303)
    if lang not in ("en", "zh"):
        raise ConfigError(f"unknown language lang={lang!r}", fix="Use lang=en or lang=zh")
    view = SearchView(query, shopper, lang)
    if query:
        try:
            view.answer = search_answer(engine, query, shopper or None, k=SEARCH_K, lang=lang, log=False)
        except StoreError:
            raise
        except ShoprecError as err:  # a query the search cannot take: said on the page, the form kept
            view.problem = str(err)
        view.exact_item = _item_with_id(engine, query)
    try:
        since = time.time() - SEARCH_DAYS * DAY
        report = engine.store.search_analytics(since, None, MIN_SEARCHES, MAX_CLICK_RATE)
        view.analytics = {"window": _window(since), **report}
    except StoreError as err:
        view.analytics_problem = f"the search log cannot be read now: {err.problem}"
    return render_search_page(view)


def _window(since: float) -> dict:
    """The analytics window and thresholds, as ``GET /v1/stats/search`` reports them."""
    return {"since": since, "until": None, "min_searches": MIN_SEARCHES, "max_click_rate": MAX_CLICK_RATE}


def _item_with_id(engine: Engine, text: str) -> dict | None:
    """The item whose id is exactly ``text`` (a merchant pasting an id), else None."""
    try:
        return engine.item(text)
    except NotFound:
        return None


# ---------------------------------------------------------------------- serving, errors and access
async def _serve(request: Request, build: Page) -> Response:
    """Check access, build the page on a worker thread, and turn known errors into error pages."""
    blocked = await _guard(request)
    if blocked is not None:
        return blocked
    try:
        out = await run_in_threadpool(build, request.app.state.engine)
    except NotFound as err:
        return _html(error_page("Not found", str(err), "Look the id up on the search page."), 404)
    except ShoprecError as err:
        return _html(error_page("This page cannot be shown", str(err)), status_of(err))
    return out if isinstance(out, Response) else _html(out)


async def _guard(request: Request) -> Response | None:
    """None when the request may see the page; otherwise the redirect (key given) or the sign-in page."""
    if not request.app.state.settings.auth:
        return None
    keys = request.app.state.keys
    given = request.query_params.get("key")
    key = given if given is not None else request.cookies.get(COOKIE)
    here = _here(request)
    try:
        await run_in_threadpool(keys.check, key, "read")
    except AuthError as err:
        response = _html(login_page(here, str(err) if key else None), 401)
        if given is None and key:
            response.delete_cookie(COOKIE, path=BASE)
        return response
    except RateLimited as err:
        return _html(error_page("Too many requests", str(err)), 429)
    if given is not None:
        return _remember(RedirectResponse(here, status_code=303), given, request)
    return None


def _remember(response: Response, key: str, request: Request) -> Response:
    response.set_cookie(COOKIE, key, httponly=True, samesite="strict", path=BASE, secure=request.url.scheme == "https")
    for name, value in HEADERS.items():
        response.headers[name] = value
    return response


def _here(request: Request) -> str:
    """The requested path (as sent, still percent-encoded) and query, without the key."""
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "key"])
    return path + (f"?{query}" if query else "")


def _local(target: str) -> str:
    """A dashboard path to go back to after sign-in (anything else, another site included, goes to the overview)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not (parts.path == BASE or parts.path.startswith(f"{BASE}/")):
        return BASE
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)
