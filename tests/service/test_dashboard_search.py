"""The dashboard's search page: the search box shows what ``GET /v1/search`` answers for the same
query (the parsed query, each result's score shares and reason), and the analytics panel lists the
zero-result and low-click queries of the search log with their counts. Checked over plain HTTP in
every environment, and in Debian's Chromium where it is installed; shopper text that looks like HTML
is shown as text.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from helpers import Server, copy_version
from test_dashboard import ARGS, CHROMIUM, new_tab, visit

from shoprec.service.store import open_store

MARKUP = "<img src=x onerror=alert(1)><script>alert(2)</script>"
LOW_CLICK = "blue velvet sofa"
ZERO = f"{MARKUP} unicorn"


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models_dir(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dashboard-search")
    copy_version(trained, root)
    return root


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[Server]:
    """A service whose search log holds a zero-result query that looks like HTML (3 searches by 2
    shoppers) and a query searched 12 times and clicked once (a low-click query)."""
    with Server(models_dir, "--no-auth") as srv:
        now = time.time()
        with open_store(f"sqlite:///{models_dir / 'shoprec.db'}") as store:
            for n in range(3):
                store.log_search(f"plant-z{n}", f"shopper-{n % 2}", ZERO, 0, now - 60 + n)
            for n in range(12):
                store.log_search(f"plant-l{n}", f"shopper-{n}", LOW_CLICK, 4, now - 50 + n)
        item = _catalog(srv)[0]["item_id"]
        click = {"event_id": "plant-c", "user_id": "shopper-0", "item_id": item, "event": "click"}
        assert httpx.post(f"{srv.url}/v1/events", json={**click, "search_id": "plant-l0"}).status_code == 200
        yield srv


def _catalog(server: Server) -> list[dict]:
    response = httpx.get(f"{server.url}/v1/items", params={"q": "e", "limit": 50}, timeout=30)
    assert response.status_code == 200, response.text
    rows = response.json()
    return rows["items"] if isinstance(rows, dict) else rows


def constrained_query(server: Server) -> tuple[str, dict]:
    """A query with a brand, a title word and a price bound built from a priced, branded item, and the
    answer /v1/search gives it."""
    for item in _catalog(server):
        if not item.get("brand") or not item.get("price"):
            continue
        words = [w for w in re.findall(r"[A-Za-z]{4,}", item["title"]) if w.lower() not in item["brand"].lower()]
        if not words:
            continue
        query = f"{item['brand']} {max(words, key=len).lower()} under {math.ceil(item['price']) + 5}"
        answer = api_search(server, query)
        if answer["hits"] and answer["query"]["brands"] and answer["query"]["max_price"]:
            return query, answer
    raise AssertionError("no item gives a query with a brand and a price bound")


def api_search(server: Server, query: str, **params) -> dict:
    response = httpx.get(f"{server.url}/v1/search", params={"q": query, "k": 20, **params}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def page_html(server: Server, **params) -> str:
    response = httpx.get(f"{server.url}/dashboard/search", params=params, timeout=60)
    assert response.status_code == 200, response.text
    assert "Traceback" not in response.text
    return response.text


def cells(markup: str, css: str) -> list[list[str]]:
    """The text of each body row's cells of the table with class ``css``."""
    body = re.search(rf'<table class="data {css}">.*?<tbody>(.*?)</tbody>', markup, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [html.unescape(re.sub(r"<[^>]+>", " ", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]


# ---------------------------------------------------------------------- over HTTP
def test_search_box_shows_the_api_answer(server: Server) -> None:
    query, answer = constrained_query(server)
    markup = page_html(server, q=query)
    parsed = re.search(r'<strong class="parsed-query">(.*?)</strong>', markup).group(1)
    assert html.unescape(parsed) == answer["query"]["describe"]
    assert "brand: " in parsed and "max price: " in parsed
    rows = cells(markup, "results")
    assert [r[1] for r in rows] == [h["title"] for h in answer["hits"]]
    for row, hit in zip(rows, answer["hits"], strict=True):
        shares = " · ".join(f"{name} {value:.0%}" for name, value in hit["shares"].items() if value > 0)
        assert shares in row[6] and row[7] == hit["explanation"] and row[7]


def test_analytics_panel_lists_zero_result_and_low_click_queries(server: Server) -> None:
    markup = page_html(server)
    zero = {row[0]: row for row in cells(markup, "zero-result")}
    assert zero[" ".join(ZERO.casefold().split())][1:3] == ["3", "2"]  # searches, shoppers
    low = {row[0]: row for row in cells(markup, "low-click")}
    assert low[LOW_CLICK][1:5] == ["12", "1", "8.3%", "0"]
    assert "<script>alert(2)</script>" not in markup and "&lt;script&gt;alert(2)&lt;/script&gt;" in markup


def test_dashboard_searches_are_not_logged(server: Server) -> None:
    def searches() -> int:
        return httpx.get(f"{server.url}/v1/stats/search", timeout=30).json()["totals"]["searches"]

    before = searches()
    assert 'class="search-results"' in page_html(server, q="unicorn lamp")
    assert 'class="search-results"' in page_html(server, q="tent", shopper="shopper-1")
    assert searches() == before
    api_search(server, "unicorn lamp")  # a shopper's search is
    assert searches() == before + 1


def test_dashboard_searches_bad_input_on_the_page(server: Server) -> None:
    blank = page_html(server, q="   ")
    assert 'class="search-results"' not in blank and 'class="error"' not in blank  # just the form
    markup = page_html(server, q=MARKUP)
    assert "<img src=x" not in markup and "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert httpx.get(f"{server.url}/dashboard/search", params={"q": "tent", "lang": "fr"}).status_code == 400


# ---------------------------------------------------------------------- in a browser
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server: Server) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield new_tab(context)
    context.close()


def test_search_box_in_a_browser(page, server: Server) -> None:
    query, answer = constrained_query(server)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    visit(page, f"{server.url}/dashboard/search")
    page.fill("form.item-search input[name=q]", query)
    page.click("form.item-search button")
    page.wait_for_url(re.compile(r"q="))
    assert page.locator(".parsed-query").inner_text() == answer["query"]["describe"]
    rows = page.locator("table.results tbody tr")
    assert rows.count() == len(answer["hits"])
    first = answer["hits"][0]
    assert rows.first.locator("a.item-link").inner_text() == first["title"]
    assert rows.first.locator(".why").inner_text() == first["explanation"]
    widths = rows.first.locator(".share-bar .seg").evaluate_all("segs => segs.map(s => parseFloat(s.style.width))")
    assert widths == pytest.approx([100 * v for v in first["shares"].values() if v > 0], abs=0.051)
    rows.first.locator("a.item-link").click()
    page.wait_for_url(re.compile(r"/dashboard/items/"))
    assert page.locator("h1").inner_text() == first["title"]

    visit(page, f"{server.url}/dashboard/search?q={quote(MARKUP, safe='')}")
    assert page.locator("input[name=q]").input_value() == MARKUP
    assert MARKUP in page.locator("section.search-results h2").inner_text()
    zero = page.locator("table.zero-result a.query-link", has_text="<script>alert(2)</script>")
    assert zero.count() == 1
    assert page.locator("main img, main script").count() == 0 and not dialogs
    zero.click()  # a listed query opens its search
    page.wait_for_url(re.compile(r"q="))
    assert page.locator("input[name=q]").input_value() == " ".join(ZERO.casefold().split())
