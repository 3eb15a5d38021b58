"""Product search over HTTP: ``GET /v1/search`` and ``/v1/search/suggest`` on the session's tiny demo
version (300 items, English and Chinese listings, the multilingual encoder's item vectors).

What a shopper and a client rely on: hits with score shares, reasons and facets; the search log entry
behind each ``search_id``; catalog upserts and deletions searchable by the next request; the feeds'
filters; personal orders for shoppers with a history; and bad input, which gets a 4xx naming the
parameter (or a note) and never a traceback.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import copy_version

from shoprec.errors import ShoprecError
from shoprec.service.app import create_app
from shoprec.service.auth import create_key
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import Store, open_store

MAX_K = 50


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models_dir(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search-models")
    copy_version(trained, root)
    return root


@pytest.fixture(scope="module")
def store(models_dir: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{models_dir / 'shoprec.db'}")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def keys(store: Store) -> dict[str, dict[str, str]]:
    return {scope: {"X-API-Key": create_key(store, [scope], 1_000_000)} for scope in ("read", "write")}


@pytest.fixture(scope="module")
def client(models_dir: Path, keys) -> Iterator[TestClient]:
    settings = ServiceSettings(models_dir=str(models_dir), max_k=MAX_K, poll_seconds=3600)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def read(keys) -> dict[str, str]:
    return keys["read"]


@pytest.fixture(scope="module")
def write(keys) -> dict[str, str]:
    return keys["write"]


@pytest.fixture(scope="module")
def items(client: TestClient):
    """The serving version's catalogue (items frame)."""
    return client.app.state.engine.versions.default().dataset.items


def search(client: TestClient, headers: dict, status: int = 200, **params) -> dict:
    response = client.get("/v1/search", params=params, headers=headers)
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text
    return response.json()


def hit_ids(body: dict) -> list[str]:
    return [h["item_id"] for h in body["hits"]]


def english(items, category_prefix: str = ""):
    rows = items[(items["language"] == "en") & items["category"].str.startswith(category_prefix)]
    assert len(rows), category_prefix
    return rows


# ---------------------------------------------------------------------- answers
def test_a_search_returns_hits_with_reasons_facets_and_a_logged_search_id(client, read, store, items) -> None:
    row = english(items).iloc[0]
    body = search(client, read, q=row["title"], k=5)
    assert hit_ids(body)[0] == row["item_id"], "an item's own title finds it first"
    assert 0 < len(body["hits"]) <= 5 and body["total"] >= len(body["hits"])
    first = body["hits"][0]
    assert first["matched"] and first["explanation"].startswith("matches: ")
    assert abs(sum(first["shares"].values()) - 1.0) < 1e-6 and set(first["sources"]) <= {"lexical", "dense"}
    assert body["dense"] is True and "dense" in {s for h in body["hits"] for s in h["sources"]}
    for name in ("category", "brand", "price"):
        assert sum(count for _, count in body["facets"][name]) == body["total"], name
    assert re.fullmatch(r"[0-9a-f]{32}", body["search_id"]) and body["version"] == "v0001"
    logged = store.get_searches([body["search_id"]])[body["search_id"]]
    assert logged.query == row["title"] and logged.n_results == body["total"] and logged.user_id is None
    chinese = search(client, read, q=row["title"], k=5, lang="zh")
    assert chinese["hits"][0]["explanation"].startswith("匹配词：")
    assert chinese["search_id"] != body["search_id"]


def test_constraints_in_the_text_are_parsed_and_applied(client, read, items) -> None:
    brand = english(items)["brand"].value_counts().index[0]
    cheapest = float(items.loc[items["brand"] == brand, "price"].max())
    body = search(client, read, q=f"{brand} under {cheapest:g}", k=20)
    assert body["query"]["brands"] == [brand] and body["query"]["max_price"]["value"] == cheapest
    assert body["hits"] and all(h["brand"] == brand and h["price"] < cheapest for h in body["hits"])
    assert brand in body["query"]["describe"]


def test_paging_with_offset_continues_the_same_order(client, read) -> None:
    whole = search(client, read, q="cotton", k=12)
    assert whole["total"] >= 12
    second = search(client, read, q="cotton", k=6, offset=6)
    assert hit_ids(second) == hit_ids(whole)[6:12] and second["offset"] == 6
    past = search(client, read, q="cotton", k=5, offset=whole["total"])
    assert past["hits"] == [] and past["total"] == whole["total"]


def test_request_filters_are_the_feeds_filters(client, read, items) -> None:
    body = search(client, read, q="cotton", k=50, category="Fashion", max_price=60, in_stock="true")
    assert body["hits"]
    assert all(h["category"].startswith("Fashion") and h["price"] <= 60 for h in body["hits"])
    assert [c for c, _ in body["facets"]["category"]] == ["Fashion"]
    excluded = hit_ids(body)[0]
    again = search(client, read, q="cotton", k=50, category="Fashion", max_price=60, exclude=excluded)
    assert excluded not in hit_ids(again) and len(again["hits"]) == len(body["hits"]) - 1
    outside = search(client, read, q="cotton", k=50, exclude_category="Fashion")
    assert outside["hits"] and not any(h["category"].startswith("Fashion") for h in outside["hits"])


def test_the_feeds_price_filter_keeps_the_prices_inside_the_bounds(client, read) -> None:
    """Found while reusing the feeds' filters: min_price and max_price kept the items outside the range."""
    body = client.get("/v1/trending", params={"k": 30, "min_price": 20, "max_price": 80}, headers=read).json()
    assert body["items"] and all(20 <= item["price"] <= 80 for item in body["items"])


def test_a_catalog_upsert_is_searchable_by_the_next_request(client, read, write, items) -> None:
    item = {"title": "Zorblax quantum kettle", "brand": "Zorblax", "category": "Home & Kitchen > Kitchen > Kettles"}
    assert search(client, read, q="zorblax kettle")["hits"][:1] != [{"item_id": "ZX-1"}]
    assert client.put("/v1/items/ZX-1", json={**item, "price": 42.0}, headers=write).status_code == 200
    found = search(client, read, q="zorblax kettle", k=5)
    assert hit_ids(found)[0] == "ZX-1" and found["hits"][0]["price"] == 42.0
    assert search(client, read, q="zorblx", k=3)["corrections"] == [["zorblx", "zorblax"]], "its words are known"
    assert hit_ids(search(client, read, q="kettle", k=50, min_price=40, max_price=45)).count("ZX-1") == 1
    # an item of the version, renamed through the API
    known = english(items, "Toys").iloc[0]["item_id"]
    renamed = {"title": "Quibbleflux spinning top", "category": "Toys > Classic", "price": 9.5}
    assert client.put(f"/v1/items/{known}", json=renamed, headers=write).status_code == 200
    assert hit_ids(search(client, read, q="quibbleflux", k=3))[0] == known
    assert client.delete("/v1/items/ZX-1", headers=write).status_code == 204
    gone = search(client, read, q="zorblax kettle", k=50)
    assert "ZX-1" not in hit_ids(gone)
    assert client.get("/v1/items", params={"q": "ZX-1"}, headers=read).json() == []


def test_the_item_lookup_orders_id_and_title_matches_by_relevance(client, read, items) -> None:
    row = english(items, "Electronics").iloc[0]
    word = max(row["title"].split(), key=len).casefold()
    found = client.get("/v1/items", params={"q": word, "limit": 10}, headers=read).json()
    assert found and all(word in (f["title"] + f["item_id"]).casefold() for f in found)
    assert client.get("/v1/items", params={"q": row["item_id"]}, headers=read).json()[0]["item_id"] == row["item_id"]
    chinese = items[items["language"] == "zh"].iloc[0]
    part = chinese["title"].split()[1]
    found = client.get("/v1/items", params={"q": part}, headers=read).json()
    assert chinese["item_id"] in [f["item_id"] for f in found]


def test_a_chinese_query_finds_an_english_listing(client, read, items) -> None:
    """The multilingual encoder's vectors: a Chinese category word with no Chinese listing under it."""
    body = search(client, read, q="连衣裙", k=10)  # "dress"
    assert any("dress" in h["title"].casefold() for h in body["hits"] if h["title"].isascii())
    assert body["query"]["language"] == "zh"


def test_known_shoppers_get_their_own_order_and_the_anonymous_order_is_not_personal(client, read) -> None:
    dep = client.app.state.engine.versions.default()
    users = list(dep.dataset.user_vocab.ids())
    anonymous = search(client, read, q="cotton", k=20)
    assert anonymous["personalised"] is False
    assert all("personal" not in h["shares"] for h in anonymous["hits"])
    orders = {}
    for user in users[:8]:
        body = search(client, read, q="cotton", k=20, user_id=user)
        assert body["personalised"] is True and body["user_id"] == user
        orders[user] = tuple(hit_ids(body))
    assert len(set(orders.values())) >= 2, "shoppers with different histories get different orders"
    assert any(tuple(hit_ids(anonymous)) != order for order in orders.values())
    stranger = search(client, read, q="cotton", k=20, user_id=f"new-{uuid.uuid4().hex[:8]}")
    assert stranger["personalised"] is False and hit_ids(stranger) == hit_ids(anonymous)


def test_a_search_by_a_shopper_is_logged_under_their_id(client, read, store) -> None:
    user = f"searcher-{uuid.uuid4().hex[:8]}"
    body = search(client, read, q="garden hose", k=3, user_id=user)
    assert [r.query for r in store.user_searches(user)] == ["garden hose"]
    assert store.get_searches([body["search_id"]])[body["search_id"]].user_id == user
    # the shopper's past query now shapes their profile
    assert search(client, read, q="seeds", k=3, user_id=user)["personalised"] is True


def test_suggestions_complete_past_queries_then_titles(client, read) -> None:
    dep = client.app.state.engine.versions.default()
    popular = dep.dataset.queries["query"].value_counts().index[0]
    body = client.get("/v1/search/suggest", params={"q": popular[:3], "k": 5}, headers=read).json()
    texts = [s["text"] for s in body["suggestions"]]
    assert texts and all(t.startswith(popular[:3].casefold()) for t in texts)
    assert body["suggestions"][0]["source"] == "query" and body["suggestions"][0]["count"] >= 1
    top = client.get("/v1/search/suggest", headers=read).json()["suggestions"]
    assert top[0]["text"] == popular.casefold()
    assert client.get("/v1/search/suggest", params={"k": 0}, headers=read).status_code == 422


def test_search_needs_a_read_key(client) -> None:
    response = client.get("/v1/search", params={"q": "cotton"})
    assert response.status_code == 401 and response.json()["error"]


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   \t "}])
def test_an_empty_query_is_a_400_naming_q(client, read, params) -> None:
    body = search(client, read, status=400, **params)
    assert "query parameter q is empty" in body["error"]


def test_a_very_long_query_is_cut_and_the_cut_is_noted(client, read) -> None:
    body = search(client, read, q=("cotton dress " * 800)[:10_000], k=5)
    assert body["hits"] and len(body["query"]["text"]) <= 256
    assert any("cut to its first" in note and "10000" in note for note in body["notes"])


@pytest.mark.parametrize("q", ["?!... ---", "🙂🙂🎉", "¿¡ 🙂 !!"])
def test_only_punctuation_or_emoji_gives_no_hits_and_a_note(client, read, q) -> None:
    body = search(client, read, q=q)
    assert body["hits"] == [] and body["total"] == 0
    assert any("no words" in note for note in body["notes"])


@pytest.mark.parametrize(
    "q",
    ["'; DROP TABLE searches; --", "1 OR 1=1", '<script>alert("x")</script> kettle', "<b>cotton</b>"],
)
def test_sql_or_html_looking_text_is_just_text(client, read, store, q) -> None:
    response = client.get("/v1/search", params={"q": q}, headers=read)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["query"]["text"] == q
    assert store.get_searches([body["search_id"]])[body["search_id"]].query == q, "stored as text"
    assert search(client, read, q="cotton", k=1)["hits"], "the store still answers"


def test_mixed_scripts_are_searched_in_both(client, read, items) -> None:
    zh = items[items["language"] == "zh"].iloc[0]
    chinese_word = zh["title"].split()[1]
    body = search(client, read, q=f"{zh['brand']} {chinese_word}", k=5)
    assert body["query"]["mixed"] is True and zh["item_id"] in hit_ids(body)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"category": "Spaceships"}, "category"),
        ({"category": "Fashion > Spacesuits"}, "category"),
        ({"exclude_category": "Nowhere"}, "exclude_category"),
        ({"min_price": 50, "max_price": 10}, "min_price"),
        ({"min_price": -1}, "min_price"),
        ({"k": 0}, "k"),
        ({"k": MAX_K + 1}, "k"),
        ({"k": "ten"}, "k"),
        ({"offset": -1}, "offset"),
        ({"offset": 10_001}, "offset"),
        ({"lang": "fr"}, "lang"),
    ],
)
def test_unknown_filter_values_and_out_of_range_paging_are_422_naming_them(client, read, params, named) -> None:
    body = search(client, read, status=422, q="cotton", **params)
    assert f"query.{named}" in body["error"] and body["detail"][0]["where"] == f"query.{named}"
    if "category" in params:
        assert params["category"] in body["error"] and "Fashion" in body["error"], "says what exists"


def test_a_preview_search_is_not_logged(client, store) -> None:
    """The dashboard's search box: ``log=False`` leaves the search log and the live queries alone."""
    from shoprec.service.search import search as answer

    user = f"merchant-{uuid.uuid4().hex[:8]}"
    body = answer(client.app.state.engine, "cotton", user_id=user, k=3, log=False)
    assert body["search_id"] is None and body["hits"]
    assert store.user_searches(user) == []


# ---------------------------------------------------------------------- re-scoring stages
def test_a_configured_search_ranker_reorders_the_best_hits(models_dir: Path, tmp_path: Path) -> None:
    """A ranker trained to put products with short titles first (a planted rule) re-scores the hits."""
    import numpy as np

    from shoprec.search.ranker import FEATURES, SearchRanker

    rng = np.random.default_rng(0)
    lists = []
    for _ in range(30):
        x = rng.normal(size=(40, len(FEATURES)))
        words = x[:, FEATURES.index("title_words")] = rng.integers(3, 20, size=40)
        lists.append((x, (words < 8).astype(np.int32) * 3))
    folder = SearchRanker().fit(lists).save(tmp_path / "ranker")
    settings = ServiceSettings(
        models_dir=str(models_dir), auth=False, search_dense=False, search_ranker=str(folder), poll_seconds=3600
    )
    with TestClient(create_app(settings)) as ranked:
        body = ranked.get("/v1/search", params={"q": "cotton", "k": 10}).json()
    scores = [h["features"]["stage_ranker"] for h in body["hits"]]
    assert len(scores) == 10 and scores == sorted(scores, reverse=True)
    assert body["dense"] is False and all(set(h["sources"]) == {"lexical"} for h in body["hits"])


def test_a_missing_stage_folder_stops_the_service_at_start(models_dir: Path, tmp_path: Path) -> None:
    settings = ServiceSettings(models_dir=str(models_dir), auth=False, search_cross_encoder=str(tmp_path / "nope"))
    with (
        pytest.raises(ShoprecError, match="search_cross_encoder: no such file or folder"),
        TestClient(create_app(settings)),
    ):
        pass


def test_search_merchandising_pins_blocks_and_synonyms_apply_over_http(models_dir: Path, tmp_path: Path) -> None:
    plain_settings = ServiceSettings(models_dir=str(models_dir), auth=False, search_dense=False, poll_seconds=3600)
    with TestClient(create_app(plain_settings)) as plain:
        before = hit_ids(plain.get("/v1/search", params={"q": "cotton", "k": 10}).json())
        items = plain.app.state.engine.versions.default().dataset.items
    pinned = next(i for i in items["item_id"] if i not in before)
    merch = tmp_path / "merch.toml"
    merch.write_text(
        f'[synonyms]\none_way = {{ "zorblax" = ["cotton"] }}\n\n'
        f'[queries."cotton"]\npinned = {{ "{pinned}" = 0 }}\nblocked = ["{before[0]}"]\n',
        encoding="utf-8",
    )
    settings = ServiceSettings(**{**vars(plain_settings), "search_merch": str(merch)})
    with TestClient(create_app(settings)) as merchandised:
        after = hit_ids(merchandised.get("/v1/search", params={"q": "cotton", "k": 10}).json())
        synonym = merchandised.get("/v1/search", params={"q": "zorblax", "k": 5}).json()
    assert after[0] == pinned and before[0] not in after
    assert synonym["hits"], "a synonym widens the words searched for"
    merch.write_text('[queries."cotton"]\npinned = { "NO-SUCH-ITEM" = 0 }\n', encoding="utf-8")
    with pytest.raises(ShoprecError, match="NO-SUCH-ITEM"), TestClient(create_app(settings)):
        pass


def test_searches_running_while_the_catalog_changes_all_answer(client, read, write) -> None:
    """Searches share the engine; a catalog change waits for them and goes alone."""
    from concurrent.futures import ThreadPoolExecutor

    engine = client.app.state.engine
    dep = engine.versions.default()
    searching = engine.catalog.searching

    def searches(n: int) -> int:
        return sum(len(searching.search(dep, "cotton kettle", k=5)[0].hits) > 0 for _ in range(n))

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(searches, 15) for _ in range(4)]
        for n in range(6):
            body = {"title": f"Vexillon lamp {n}", "category": "Home & Kitchen > Lighting", "price": 10.0 + n}
            assert client.put(f"/v1/items/VX-{n}", json=body, headers=write).status_code == 200
        assert [f.result() for f in running] == [15] * 4
    assert set(hit_ids(search(client, read, q="vexillon lamp", k=10))[:6]) == {f"VX-{n}" for n in range(6)}


def test_the_version_pipeline_gets_the_query_encoder_for_recent_searches(client) -> None:
    """The pipeline's "queries" recall source encodes recent searches with the version's encoder."""
    dep = client.app.state.engine.versions.default()
    encoder = dep.pipeline.resources.encoder
    assert encoder is not None and encoder.name == dep.manifest["encoder"]
    assert encoder.dim == dep.item_vectors.shape[1]
    vectors = encoder.encode(["cotton dress"])
    assert vectors.shape == (1, encoder.dim) and abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4
