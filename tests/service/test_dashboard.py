"""The dashboard in a real browser: Debian's Chromium (headless, driven by Playwright) against
``shoprec serve`` processes on loopback, over a tiny trained model.

The module trains one version (with offline metrics) and publishes a copy of it as a second
version, so the overview has two A/B arms; it then sends real traffic through the API
(recommendations, then clicks carrying their recommendation ids). Pages are checked against what
the JSON API says for the same user or item.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from helpers import Server, two_versions, version_users

from shoprec.service.auth import create_key
from shoprec.service.store import open_store
from shoprec.service.web.charts import bar_chart, nice_ceiling
from shoprec.service.web.overview import Overview, render_overview

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/dashboard-user.png")
TRAFFIC_USERS = 24
CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models_dir(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two versions (the same model published twice) so that the overview has two A/B arms."""
    return two_versions(trained, tmp_path_factory.mktemp("dashboard-models"))


@pytest.fixture(scope="module")
def users(models_dir: Path) -> list[str]:
    return version_users(models_dir)


@pytest.fixture(scope="module")
def server(models_dir: Path, users: list[str]) -> Iterator[Server]:
    with Server(models_dir, "--no-auth") as srv:
        with httpx.Client(base_url=srv.url, timeout=30) as client:
            plan = client.put("/v1/models/plan", json={"arms": {"v0001": 0.5, "v0002": 0.5}})
            assert plan.status_code == 200, plan.text
            _send_traffic(client, users[:TRAFFIC_USERS])
        yield srv


def _send_traffic(client: httpx.Client, users: list[str]) -> None:
    """Home feeds for ``users``, and one click on the first item of each (with its recommendation id)."""
    versions: dict[str, int] = {}
    for n, user in enumerate(users):
        served = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        versions[served["version"]] = versions.get(served["version"], 0) + 1
        click = {
            "event_id": f"dash-{n}",
            "user_id": user,
            "item_id": served["items"][0]["item_id"],
            "event": "click",
            "recommendation_id": served["recommendation_id"],
        }
        assert client.post("/v1/events", json=click).status_code == 200
    assert set(versions) == {"v0001", "v0002"}, f"the A/B split served only {versions}"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless; the browser tests skip without it (before any training)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def new_tab(context):
    """A tab whose requests are recorded in ``tab.seen`` (checked by :func:`visit`)."""
    tab = context.new_page()
    tab.seen = []
    tab.on("request", lambda request: tab.seen.append(request.url))
    return tab


@pytest.fixture
def page(browser, server: Server) -> Iterator[object]:
    """A tab in a fresh browser context (no cookies)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield new_tab(context)
    context.close()


def visit(page, url: str, status: int = 200):
    """Open ``url``; check the status, that no traceback shows and that no other origin was contacted."""
    response = page.goto(url)
    assert response.status == status, f"{url}: HTTP {response.status}"
    _sound(page, url)
    return response


def _sound(page, url: str) -> None:
    text = page.content()
    assert "Traceback (most recent call last)" not in text and 'File "/' not in text, f"{url} shows a traceback"
    origin = re.match(r"https?://[^/]+", url).group(0)
    assert all(seen.startswith(origin) for seen in page.seen), f"{url} fetched from elsewhere: {page.seen}"
    assert page.locator("nav a[href='/dashboard']").count() == 1, f"{url} lacks the nav bar"


def api(server: Server, path: str, **params) -> dict:
    response = httpx.get(f"{server.url}{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------- overview
def test_overview_shows_counts_versions_and_both_charts(page, server: Server, models_dir: Path) -> None:
    stats = api(server, "/v1/stats/online", by="version")
    visit(page, f"{server.url}/dashboard")

    def count(name: str) -> str:
        return page.locator(f".card[data-count='{name}'] .value").inner_text()

    assert count("catalog-items") == "300"
    assert count("api-events") == str(TRAFFIC_USERS)
    assert count("impressions") == f"{sum(row['impressions'] for row in stats):,}"
    assert count("clicks") == f"{sum(row['clicks'] for row in stats):,}"
    assert "A/B split by user: v0001 50%, v0002 50%" in page.locator(".plan").inner_text()
    assert page.locator("table.versions tbody tr").count() == 2

    series = [
        k
        for k, v in json.loads((models_dir / "v0001" / "manifest.json").read_text())["metrics"].items()
        if isinstance(v, dict)
    ]
    bars = page.locator("svg.chart-bars")
    assert bars.count() == 2 and series[0] == "pipeline" and len(series) >= 3
    for chart, metric in zip(bars.all(), ("ndcg@10", "recall@10"), strict=True):
        assert chart.locator(".legend-entry text").all_text_contents() == series
        assert chart.locator("rect.bar").count() == 2 * len(series)
        assert chart.locator(".y-label").text_content() == metric
        assert chart.locator(".x-label").text_content() == "model version"
        assert {"v0001", "v0002"} <= set(chart.locator(".tick").all_text_contents())

    ctr = page.locator("svg.chart-lines")
    assert sorted(ctr.locator(".legend-entry text").all_text_contents()) == ["v0001", "v0002"]
    assert ctr.locator(".x-label").text_content() == "hour (UTC)" and ctr.locator(".y-label").text_content() == "CTR"
    for row in stats:  # one point per version and hour, its tooltip giving the API's counts
        tips = ctr.locator(f"g.series[data-series='{row['version']}'] circle title").all_text_contents()
        assert tips and f"{row['clicks']} clicks / {row['impressions']} impressions" in tips[-1]


# ---------------------------------------------------------------------- user
def test_user_page_shows_profile_explanations_and_heatmap(page, server: Server, users: list[str]) -> None:
    user = users[0]
    visit(page, f"{server.url}/dashboard/users/{user}")
    profile = api(server, f"/v1/users/{user}/profile")
    explained = api(server, f"/v1/users/{user}/explanations", k=10)

    assert page.locator(".sentence").inner_text() == profile["sentence"]
    history = page.locator("ol.history a").all_inner_texts()
    assert history == [item["title"] for item in profile["recent_items"]] and history
    recs = page.locator("ol.recs li.rec")
    assert [r.get_attribute("data-item") for r in recs.all()] == [i["item_id"] for i in explained["items"]]
    texts = page.locator("ol.recs .why").all_inner_texts()
    assert texts == [re.sub(r"\*([^*]+)\*", r"\1", i["text"]) for i in explained["items"]]

    grid = explained["heatmap"]
    rows, cols = len(grid["rows"]), len(grid["cols"])
    assert rows > 0 and cols == len(explained["items"])
    assert page.locator("table.heatmap td.hm-cell").count() == rows * cols
    assert page.locator("table.heatmap th.hm-row").all_inner_texts() == [r["label"] for r in grid["rows"]]
    assert page.locator("table.heatmap th.hm-col").count() == cols
    shares = [
        float(s)
        for s in page.locator("table.heatmap td.hm-cell").evaluate_all("cells => cells.map(c => c.dataset.share)")
    ]
    assert shares == pytest.approx([v for row in grid["values"] for v in row], abs=1e-4)
    darkest = page.locator("table.heatmap td.hm-cell").nth(shares.index(max(shares)))
    assert f"{max(shares):.3f}" in darkest.get_attribute("style")  # colour intensity = share
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


def test_user_page_in_chinese(page, server: Server, users: list[str]) -> None:
    user = users[0]
    visit(page, f"{server.url}/dashboard/users/{user}")
    page.click("a.lang-switch")
    assert page.url.endswith(f"/dashboard/users/{user}?lang=zh")
    _sound(page, page.url)
    profile = api(server, f"/v1/users/{user}/profile", lang="zh")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator(".sentence").inner_text() == profile["sentence"]
    assert "用户画像" in page.locator("h2").all_inner_texts()
    assert all(CJK.search(text) for text in page.locator("ol.recs .why").all_inner_texts())


def test_unknown_user_gets_a_404_page(page, server: Server) -> None:
    visit(page, f"{server.url}/dashboard/users/nobody-here", status=404)
    assert page.locator("h1").inner_text() == "Not found"
    assert "unknown user 'nobody-here'" in page.locator(".error").inner_text()


def test_markup_in_input_is_shown_as_text(page, server: Server) -> None:
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    probe = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    response = visit(page, f"{server.url}/dashboard/users/{quote(probe, safe='')}", status=404)
    assert probe in page.locator(".error").inner_text()
    visit(page, f"{server.url}/dashboard/search?q={quote(probe, safe='')}")
    assert page.locator("input[name=q]").input_value() == probe
    assert probe in page.locator("section.search-results h2").inner_text()
    assert page.locator("main img, main script").count() == 0 and not dialogs
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy  # no script may run at all


def test_bad_language_is_explained(page, server: Server, users: list[str]) -> None:
    visit(page, f"{server.url}/dashboard/users/{users[0]}?lang=fr", status=400)
    assert "use lang=en or lang=zh" in page.locator(".error").inner_text().lower()


# ---------------------------------------------------------------------- item and bundles
def _priced_item(server: Server, users: list[str]) -> dict:
    for row in api(server, f"/v1/users/{users[1]}/recommendations", k=10)["items"]:
        if row["price"]:
            return row
    raise AssertionError("no priced item in the feed")


def test_item_page_shows_neighbours_and_builds_a_bundle(page, server: Server, users: list[str]) -> None:
    item = _priced_item(server, users)
    visit(page, f"{server.url}/dashboard/items/{item['item_id']}")
    assert page.locator("h1").inner_text() == item["title"]
    assert page.locator("section.similar table.served tbody tr").count() == 10
    assert page.locator("section.complements table.served tbody tr").count() > 0

    budget = round(item["price"] + 200, 2)
    page.fill("form.bundle-form input[name=budget]", str(budget))
    page.fill("form.bundle-form input[name=size]", "3")
    page.click("form.bundle-form button")
    page.wait_for_url(re.compile(r"budget=.*size=3"))
    _sound(page, page.url)
    rows = page.locator("table.bundle-items tbody tr")
    assert 2 <= rows.count() <= 3
    assert rows.first.locator("a").inner_text() == item["title"]
    prices = [float(p.replace(",", "")) for p in page.locator("table.bundle-items .price").all_inner_texts()]
    total = float(page.locator(".bundle-total").get_attribute("data-total"))
    assert total == pytest.approx(sum(prices), abs=0.011) and total <= budget
    assert page.locator("form.bundle-form input[name=budget]").input_value() == str(budget)


def test_infeasible_bundle_shows_the_reason(page, server: Server, users: list[str]) -> None:
    item = _priced_item(server, users)
    visit(page, f"{server.url}/dashboard/items/{item['item_id']}?budget={item['price'] / 2:.2f}&size=3")
    message = page.locator(".bundle-error").inner_text()
    assert "infeasible" in message and "budget" in message
    assert page.locator("table.bundle-items").count() == 0


# ---------------------------------------------------------------------- search
def test_search_finds_an_item_by_a_word_of_its_title(page, server: Server, users: list[str]) -> None:
    item = _priced_item(server, users)
    word = _distinctive_word(server, item)
    visit(page, f"{server.url}/dashboard/search")
    page.fill("form.item-search input[name=q]", word)
    page.click("form.item-search button")
    page.wait_for_url(re.compile(r"q="))
    _sound(page, page.url)
    link = page.locator("table.results a.item-link", has_text=item["title"])
    assert link.count() == 1
    link.click()
    page.wait_for_url(re.compile(r"/dashboard/items/"))
    assert page.locator("h1").inner_text() == item["title"]


def _distinctive_word(server: Server, item: dict) -> str:
    """A word of the item's title that the search API finds the item by (among its first 20)."""
    for word in sorted(item["title"].split(), key=len, reverse=True):
        found = api(server, "/v1/search", q=word, k=20)["hits"]
        if len(word) >= 3 and item["item_id"] in [h["item_id"] for h in found]:
            return word
    raise AssertionError(f"no word of {item['title']!r} finds the item")


def test_user_lookup_opens_the_user_page(page, server: Server, users: list[str]) -> None:
    visit(page, f"{server.url}/dashboard/search")
    page.fill("form.user-lookup input[name=user]", users[2])
    page.click("form.user-lookup button")
    page.wait_for_url(re.compile(rf"/dashboard/users/{users[2]}$"))
    _sound(page, page.url)
    assert page.locator("h1").inner_text().startswith(users[2])


# ---------------------------------------------------------------------- access with keys
def test_auth_needs_a_key_then_keeps_it_in_a_cookie(browser, models_dir: Path, users: list[str]) -> None:
    store_url = f"sqlite:///{models_dir}/dashboard-auth.db"  # its own store: no A/B plan, no traffic
    with open_store(store_url) as store:
        key = create_key(store, ["read"])
    with Server(models_dir, "--store", store_url) as srv:
        context = browser.new_context()
        page = new_tab(context)
        assert page.goto(f"{srv.url}/dashboard").status == 401
        assert page.locator("form.login input[name=key]").count() == 1

        bad = "sr_0000_not-the-secret"
        assert page.goto(f"{srv.url}/dashboard?key={bad}").status == 401
        assert "unknown or revoked" in page.locator(".error").inner_text()
        assert bad not in page.content() and not context.cookies()

        response = page.goto(f"{srv.url}/dashboard/users/{users[0]}?key={key}")
        assert response.status == 200 and page.url == f"{srv.url}/dashboard/users/{users[0]}"
        assert key not in page.content()
        cookie = next(c for c in context.cookies() if c["name"] == "shoprec_key")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/dashboard"
        assert page.goto(f"{srv.url}/dashboard/search?q=a").status == 200
        _sound(page, page.url)
        context.add_cookies([{**cookie, "value": "sr_0000_revoked-or-forged"}])
        assert page.goto(f"{srv.url}/dashboard/search?q=a").status == 401
        assert not [c for c in context.cookies() if c["name"] == "shoprec_key"]  # the bad cookie is dropped
        context.close()

        context = browser.new_context()  # the sign-in form, back to the page asked for
        page = new_tab(context)
        assert page.goto(f"{srv.url}/dashboard/search?q=a").status == 401
        page.fill("form.login input[name=key]", key)
        with page.expect_navigation():
            page.click("form.login button")
        assert page.url == f"{srv.url}/dashboard/search?q=a"
        assert page.locator("section.search-results").count() == 1
        context.close()
        assert httpx.get(f"{srv.url}/v1/items", params={"q": "a"}).status_code == 401  # the API still wants a header


# ---------------------------------------------------------------------- rendering without a browser
def test_charts_scale_bars_and_escape_labels() -> None:
    svg = bar_chart(["v1", "v2"], ["<a>", "b"], {("v1", "<a>"): 0.4, ("v2", "b"): 0.1}, "t", "x", "y")
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 2 and heights[0] == pytest.approx(4 * heights[1])  # 0.4 and 0.1 on one scale
    assert "&lt;a&gt;" in svg and "<a>" not in svg
    assert [nice_ceiling(v) for v in (0.37, 0.04, 1.0, 0.0)] == [0.5, 0.05, 1.0, 1.0]


def test_overview_says_when_there_is_nothing_to_plot() -> None:
    status = {"available": ["v0001"], "loaded": {}, "plan": {}, "load_errors": {}}
    html = render_overview(Overview("v0001", 10, 50, 0, 0, status, manifests={"v0001": {"metrics": {}}}))
    assert "No version on disk has offline metrics" in html and "No impressions logged yet" in html
    assert "<svg" not in html
