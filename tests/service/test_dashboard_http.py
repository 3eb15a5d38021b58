"""The dashboard over plain HTTP, without a browser: every page renders, with data, in every environment.

A ``shoprec serve`` process on loopback serves two published versions (an A/B split), receives
real traffic through the API (feeds, then clicks carrying their recommendation ids, and a few live
events of one shopper), and each page is fetched with httpx and read as HTML. What a page shows is
checked against the JSON API and the manifests for the same user, item or version. The Chromium
tests (``test_dashboard.py``) check the same pages in a real browser where Chromium is installed.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import Server, two_versions, version_users

TRAFFIC_USERS = 12
LIVE_EVENTS = 3


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models_dir(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_versions(trained, tmp_path_factory.mktemp("dashboard-http"))


@pytest.fixture(scope="module")
def users(models_dir: Path) -> list[str]:
    return version_users(models_dir)


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[httpx.Client]:
    with Server(models_dir, "--no-auth") as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        assert http.put("/v1/models/plan", json={"arms": {"v0001": 0.5, "v0002": 0.5}}).status_code == 200
        yield http


@pytest.fixture(scope="module")
def traffic(client: httpx.Client, users: list[str]) -> dict:
    """Feeds for some users and a click on each feed's first item; then live events of one shopper
    on items of another shopper's feed. Returns what was sent."""
    for n, user in enumerate(users[:TRAFFIC_USERS]):
        served = get(client, f"/v1/users/{user}/recommendations", k=10)
        click = _event(f"http-{n}", user, served["items"][0]["item_id"], "click", served["recommendation_id"])
        assert client.post("/v1/events", json=click).status_code == 200
    shopper = users[-1]
    items = [row["item_id"] for row in get(client, f"/v1/users/{users[0]}/recommendations", k=10)["items"]]
    live = items[-LIVE_EVENTS:]
    for n, item in enumerate(live):
        assert client.post("/v1/events", json=_event(f"live-{n}", shopper, item, "view")).status_code == 200
    return {"events": TRAFFIC_USERS + LIVE_EVENTS, "shopper": shopper, "live_items": live}


def _event(event_id: str, user: str, item: str, name: str, rec: str | None = None) -> dict:
    return {"event_id": event_id, "user_id": user, "item_id": item, "event": name, "recommendation_id": rec}


def get(client: httpx.Client, path: str, **params) -> dict:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def page(client: httpx.Client, path: str, status: int = 200, **params) -> str:
    """A dashboard page's HTML, checked for status, type, the nav bar and the absence of a traceback."""
    response = client.get(path, params=params)
    assert response.status_code == status, f"{path}: HTTP {response.status_code}"
    assert response.headers["content-type"].startswith("text/html")
    text = response.text
    assert '<nav><span class="brand">shoprec</span>' in text and "Traceback" not in text
    return text


def texts(markup: str, pattern: str) -> list[str]:
    """The unescaped, tag-free text of each match of ``pattern``'s first group."""
    return [html.unescape(re.sub(r"<[^>]+>", "", m)) for m in re.findall(pattern, markup, flags=re.S)]


def card(markup: str, name: str) -> str:
    return texts(markup, rf'<div class="card" data-count="{name}"><div class="value">(.*?)</div>')[0]


# ---------------------------------------------------------------------- pages
def test_overview_shows_counts_version_metrics_and_online_ctr(client, traffic, models_dir: Path) -> None:
    stats = get(client, "/v1/stats/online", by="version")
    markup = page(client, "/dashboard")
    assert card(markup, "catalog-items") == "300"
    assert card(markup, "api-events") == str(traffic["events"])
    assert card(markup, "impressions") == f"{sum(r['impressions'] for r in stats):,}"
    assert card(markup, "clicks") == f"{sum(r['clicks'] for r in stats):,}" != "0"
    assert "A/B split by user: v0001 50%, v0002 50%" in markup

    versions = re.search(r'<table class="data versions">.*?<tbody>(.*?)</tbody>', markup, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", versions, re.S)
    assert len(rows) == 2
    for row in rows:
        cells = texts(row, r"<td[^>]*>(.*?)</td>")
        manifest = json.loads((models_dir / cells[0] / "manifest.json").read_text())
        assert cells[5] == f"{manifest['metrics']['pipeline']['ndcg@10']:.4f}"  # the version's offline metric
        assert cells[6] == "loaded" and cells[7] == "50%"
    charts = texts(markup, r'<svg class="chart chart-bars".*?<text class="chart-title"[^>]*>(.*?)</text>')
    assert [c.split()[0] for c in charts] == ["ndcg@10", "recall@10"] and '<svg class="chart chart-lines"' in markup

    online = re.search(r'<table class="data online">.*?<tbody>(.*?)</tbody>', markup, re.S).group(1)
    shown = {
        cells[0]: cells[1:3]
        for cells in (texts(r, r"<td[^>]*>(.*?)</td>") for r in re.findall(r"<tr>(.*?)</tr>", online, re.S))
    }
    assert shown == {r["version"]: [f"{r['impressions']:,}", f"{r['clicks']:,}"] for r in stats}


def test_user_page_shows_live_history_profile_and_explained_feed(client, traffic) -> None:
    shopper = traffic["shopper"]
    markup = page(client, f"/dashboard/users/{shopper}")
    profile = get(client, f"/v1/users/{shopper}/profile")
    explained = get(client, f"/v1/users/{shopper}/explanations", k=10)
    titles = {i: get(client, f"/v1/items/{i}")["title"] for i in traffic["live_items"]}

    history = re.findall(r'<ol class="history">(.*?)</ol>', markup, re.S)
    shown = texts(history[0], r'<a class="item-link"[^>]*>(.*?)</a>') if history else []
    assert shown == [i["title"] for i in profile["recent_items"]]
    assert shown[:LIVE_EVENTS] == [titles[i] for i in reversed(traffic["live_items"])]  # the live events, newest first
    assert texts(markup, r'<p class="sentence">(.*?)</p>') == [profile["sentence"]]
    recs = re.findall(r'<li class="rec" data-item="([^"]*)"', markup)
    assert recs == [html.escape(i["item_id"]) for i in explained["items"]] and recs
    assert markup.count('class="hm-cell"') == len(explained["heatmap"]["rows"]) * len(recs)


def test_user_page_in_chinese(client, traffic) -> None:
    markup = page(client, f"/dashboard/users/{traffic['shopper']}", lang="zh")
    assert '<html lang="zh-CN">' in markup and "用户画像" in markup
    assert texts(markup, r'<p class="sentence">(.*?)</p>') == [
        get(client, f"/v1/users/{traffic['shopper']}/profile", lang="zh")["sentence"]
    ]


def test_item_page_shows_neighbours_and_a_bundle(client, traffic, users: list[str]) -> None:
    feed = get(client, f"/v1/users/{users[1]}/recommendations", k=10)["items"]
    item = next(row for row in feed if row["price"])
    markup = page(client, f"/dashboard/items/{item['item_id']}", budget=f"{item['price'] + 200:.2f}", size="3")
    assert texts(markup, r"<h1>(.*?)</h1>") == [item["title"]]
    similar = re.search(r'<section class="similar">(.*?)</section>', markup, re.S).group(1)
    assert similar.count("<tr>") == 1 + 10  # header and ten neighbours
    bundle = re.search(r'<table class="data bundle-items">.*?<tbody>(.*?)</tbody>', markup, re.S).group(1)
    assert 2 <= bundle.count("<tr>") <= 3 and item["title"] in html.unescape(bundle)


def test_search_finds_items_and_looks_users_up(client, traffic, users: list[str]) -> None:
    item = get(client, f"/v1/users/{users[1]}/recommendations", k=1)["items"][0]
    word = next(
        w
        for w in sorted(item["title"].split(), key=len, reverse=True)
        if item["item_id"] in [h["item_id"] for h in get(client, "/v1/search", q=w, k=20)["hits"]]
    )
    markup = page(client, "/dashboard/search", q=word)
    assert item["title"] in texts(markup, r'<a class="item-link"[^>]*>(.*?)</a>')
    response = client.get("/dashboard/search", params={"user": users[2]})
    assert response.status_code == 303 and response.headers["location"] == f"/dashboard/users/{users[2]}"


def test_unknown_user_and_bad_language_are_error_pages(client, traffic, users: list[str]) -> None:
    assert "unknown user &#x27;nobody-here&#x27;" in page(client, "/dashboard/users/nobody-here", status=404)
    assert "lang=en or lang=zh" in page(client, f"/dashboard/users/{users[0]}", status=400, lang="fr").lower()


# ---------------------------------------------------------------------- start-up
def test_a_dashboard_that_cannot_be_imported_stops_the_service(monkeypatch, tmp_path: Path) -> None:
    """The dashboard is advertised: failing to import it fails the app factory, not just /dashboard."""
    import shoprec.service as package
    from shoprec.service.app import create_app
    from shoprec.service.settings import ServiceSettings

    monkeypatch.setitem(sys.modules, "shoprec.service.dashboard", None)  # import raises ImportError
    monkeypatch.delattr(package, "dashboard", raising=False)
    with pytest.raises(ImportError, match="shoprec.service.dashboard"):
        create_app(ServiceSettings(models_dir=str(tmp_path)))
