"""The HTTP API in process (FastAPI's TestClient runs the app and its lifespan).

Every endpoint's happy path and response shape; live state (an event changes the very next
response); catalog changes without retraining; the feedback loop's CTR; A/B serving; API keys,
limits and CORS; and bad input, which must get a 4xx naming the field and never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import copy_version

from shoprec.service.app import create_app
from shoprec.service.auth import create_key
from shoprec.service.settings import ServiceSettings
from shoprec.service.store import Store, open_store

ORIGIN = "https://shop.example"
MAX_BODY, MAX_K, MAX_BATCH = 20_000, 50, 20
LIMITED_RATE = 60
"""Requests per minute of the rate-limited key: a burst of 10, then 429."""
CHARGER = "P00101"
"""A demo-shop item with several close relatives in its category (wireless chargers)."""


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def models_dir(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh models folder holding a copy of the session's trained version."""
    root = tmp_path_factory.mktemp("api-models")
    copy_version(trained, root)
    return root


@pytest.fixture(scope="module")
def store(models_dir: Path) -> Iterator[Store]:
    """The service's own database, opened beside it to check what was (not) stored."""
    opened = open_store(f"sqlite:///{models_dir / 'shoprec.db'}")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def keys(store: Store) -> dict[str, str]:
    high = 1_000_000  # the tests send hundreds of requests a second; only "limited" is rate-limited
    return {
        "read": create_key(store, ["read"], high),
        "write": create_key(store, ["write"], high),
        "admin": create_key(store, ["admin"], high),
        "limited": create_key(store, ["read"], LIMITED_RATE),
    }


@pytest.fixture(scope="module")
def client(models_dir: Path, keys: dict[str, str]) -> Iterator[TestClient]:
    settings = ServiceSettings(
        models_dir=str(models_dir),
        cors_origins=[ORIGIN],
        max_body_bytes=MAX_BODY,
        max_k=MAX_K,
        max_batch=MAX_BATCH,
        poll_seconds=3600,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def auth(keys: dict[str, str], scope: str) -> dict[str, str]:
    return {"X-API-Key": keys[scope]}


@pytest.fixture(scope="module")
def read(keys: dict[str, str]) -> dict[str, str]:
    return auth(keys, "read")


@pytest.fixture(scope="module")
def write(keys: dict[str, str]) -> dict[str, str]:
    return auth(keys, "write")


@pytest.fixture(scope="module")
def admin(keys: dict[str, str]) -> dict[str, str]:
    return auth(keys, "admin")


@pytest.fixture(scope="module")
def catalog(client: TestClient) -> dict:
    """The serving version's users and items, read from the engine."""
    dep = client.app.state.engine.versions.default()
    return {"users": list(dep.dataset.user_vocab.ids()), "items": list(dep.dataset.item_vocab.ids())}


def event(user: str, item: str, name: str = "click", rec: str | None = None, **extra) -> dict:
    body = {"event_id": f"t-{uuid.uuid4().hex}", "user_id": user, "item_id": item, "event": name, **extra}
    if rec is not None:
        body["recommendation_id"] = rec
    return body


def ids(listing: dict) -> list[str]:
    return [item["item_id"] for item in listing["items"]]


def check_list(body: dict, k: int, known_items: set[str]) -> None:
    """The shape every recommendation list shares."""
    assert re.fullmatch(r"[0-9a-f]{32}", body["recommendation_id"])
    assert re.fullmatch(r"v\d{4,}", body["version"])
    assert 0 < len(body["items"]) <= k
    assert len(set(ids(body))) == len(body["items"]), "an item is listed twice"
    for item in body["items"]:
        assert item["item_id"] in known_items
        assert item["title"] and item["source"]
        assert isinstance(item["score"], float) and isinstance(item["shares"], dict)
    assert body["timings_ms"]["total"] >= 0


# ---------------------------------------------------------------------- endpoints
def test_openapi_publishes_the_versioned_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/items/{item_id}/complements",
        "/v1/users/{user_id}/cross-category",
        "/v1/trending",
        "/v1/new-arrivals",
        "/v1/users/{user_id}/explanations",
        "/v1/users/{user_id}/profile",
        "/v1/bundles",
        "/v1/items",
        "/v1/items/{item_id}",
        "/v1/events",
        "/v1/events/batch",
        "/v1/models",
        "/v1/models/plan",
        "/v1/models/reload",
        "/v1/stats/online",
        "/v1/health",
        "/v1/ready",
    } <= paths
    assert all(p.startswith("/v1/") for p in paths)
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "X-API-Key"
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("path", "scenario"),
    [
        ("/v1/users/{user}/recommendations", "home"),
        ("/v1/users/{user}/recommendations?scenario=promotions", "promotions"),
        ("/v1/users/{user}/cross-category", "cross-category"),
        ("/v1/trending?user_id={user}", "trending"),
        ("/v1/trending", "trending"),
        ("/v1/new-arrivals", "new-arrivals"),
        ("/v1/items/{item}/similar", "similar"),
        ("/v1/items/{item}/complements?user_id={user}", "complements"),
    ],
)
def test_every_feed_returns_a_list_with_a_recommendation_id(client, read, catalog, path, scenario) -> None:
    user, item = catalog["users"][5], catalog["items"][7]
    sep = "&" if "?" in path else "?"
    response = client.get(path.format(user=user, item=item) + f"{sep}k=8", headers=read)
    assert response.status_code == 200, response.text
    body = response.json()
    check_list(body, 8, set(catalog["items"]))
    assert body["scenario"] == scenario
    if "{user}" in path:
        assert body["user_id"] == user
    if "{item}" in path:
        assert body["anchor"] == item and item not in ids(body)
    again = client.get(path.format(user=user, item=item) + f"{sep}k=8", headers=read).json()
    assert again["recommendation_id"] != body["recommendation_id"]


def test_home_feed_of_a_known_user_leaves_out_what_they_interacted_with(client, read, catalog) -> None:
    user = catalog["users"][0]
    body = client.get(f"/v1/users/{user}/recommendations?k=20", headers=read).json()
    dep = client.app.state.engine.versions.default()
    index = dep.dataset.user_vocab.index([user])[0]
    seen = set(dep.info.item_id[dep.sequences.of(index)].tolist())
    assert seen and not seen & set(ids(body))
    assert len(body["items"]) == 20


def test_item_lookup_and_search(client, read, catalog) -> None:
    item = catalog["items"][3]
    info = client.get(f"/v1/items/{item}", headers=read).json()
    assert info["item_id"] == item and info["title"] and info["new"] is False
    word = info["title"].split()[0]
    found = client.get("/v1/items", params={"q": word, "limit": 5}, headers=read).json()
    assert 0 < len(found) <= 5
    assert all(word.casefold() in (f["title"] + f["item_id"]).casefold() for f in found)
    by_id = client.get("/v1/items", params={"q": item}, headers=read).json()
    assert [f["item_id"] for f in by_id] == [item]


def test_explanations_profile_and_bundle(client, read, catalog) -> None:
    user = catalog["users"][1]
    explained = client.get(f"/v1/users/{user}/explanations?k=5", headers=read).json()
    assert explained["user_id"] == user and 0 < len(explained["items"]) <= 5
    assert all(row["text"] and row["item_id"] in catalog["items"] for row in explained["items"])
    assert "heatmap" in explained
    chinese = client.get(f"/v1/users/{user}/explanations?k=3&lang=zh", headers=read).json()
    assert chinese["lang"] == "zh" and all(row["text"] for row in chinese["items"])
    profile = client.get(f"/v1/users/{user}/profile", headers=read).json()
    assert profile["known_to_model"] is True and profile["events"] > 0 and profile["sentence"]
    assert profile["top_categories"] and profile["recent_items"]
    bundle = client.post("/v1/bundles", json={"items": [CHARGER], "max_size": 3}, headers=read)
    assert bundle.status_code == 200, bundle.text
    members = [i["item_id"] for i in bundle.json()["items"]]
    assert CHARGER in members and 2 <= len(members) <= 3


def test_models_health_ready_and_metrics(client, read, models_dir) -> None:
    models = client.get("/v1/models", headers=read).json()
    assert "v0001" in models["available"] and models["loaded"]
    assert client.get("/v1/health").json() == {"status": "ok"}
    ready = client.get("/v1/ready")
    assert ready.json()["status"] == "ready" and ready.json()["versions"] and ready.json()["store"] == "sqlite"
    assert models_dir.name not in ready.text, "readiness needs no key, so it names no files"
    client.get(f"/v1/items/{CHARGER}/similar", headers=read)
    metrics = client.get("/metrics").text
    assert re.search(
        r'shoprec_requests_total\{method="GET",route="(/v1)?/items/\{item_id\}/similar",status="200"\}', metrics
    )
    assert CHARGER not in metrics, "routes are labelled by template, not by the ids in them"


def test_events_are_idempotent_by_event_id(client, write, store) -> None:
    single = event("u-idem", CHARGER, "view")
    first = client.post("/v1/events", json=single, headers=write).json()
    assert first == {"accepted": 1, "duplicates": 0, "duplicate_ids": [], "unknown_search_ids": []}
    again = client.post("/v1/events", json=single, headers=write).json()
    assert again == {"accepted": 0, "duplicates": 1, "duplicate_ids": [single["event_id"]], "unknown_search_ids": []}
    batch = [event("u-idem", CHARGER, "cart"), single, event("u-idem", CHARGER, "purchase")]
    ack = client.post("/v1/events/batch", json={"events": batch}, headers=write).json()
    assert ack["accepted"] == 2 and ack["duplicate_ids"] == [single["event_id"]]
    assert len(store.get_events([e["event_id"] for e in batch])) == 3


# ---------------------------------------------------------------------- live state
def test_a_click_shapes_the_very_next_feed_of_a_known_user(client, read, write) -> None:
    user = "U00123"
    before = client.get(f"/v1/users/{user}/recommendations", headers=read).json()
    clicked = before["items"][0]["item_id"]
    profile_before = client.get(f"/v1/users/{user}/profile", headers=read).json()
    ack = client.post("/v1/events", json=event(user, clicked, rec=before["recommendation_id"]), headers=write)
    assert ack.json()["accepted"] == 1
    after = client.get(f"/v1/users/{user}/recommendations", headers=read).json()
    assert clicked not in ids(after), "a clicked item is seen and must leave the feed at once"
    profile = client.get(f"/v1/users/{user}/profile", headers=read).json()
    assert profile["live_events"] == profile_before["live_events"] + 1
    assert profile["recent_items"][0]["item_id"] == clicked


def test_a_feed_names_the_newest_live_event_it_reflects(client, read, write, catalog) -> None:
    user = f"reflect-{uuid.uuid4().hex[:8]}"
    assert client.get(f"/v1/users/{user}/recommendations", headers=read).json()["live_event_id"] is None
    for item in (CHARGER, CHARGER, catalog["items"][5]):
        sent = event(user, item, "view")
        assert client.post("/v1/events", json=sent, headers=write).json()["accepted"] == 1
        for _ in range(2):  # the first answer runs the pipeline, the second comes from the feed cache
            feed = client.get(f"/v1/users/{user}/recommendations", headers=read).json()
            assert feed["live_event_id"] == sent["event_id"]
        assert item not in ids(feed)
    assert "served from the feed cache" in feed["notes"]


def test_a_first_click_turns_a_cold_feed_into_co_viewed_items(client, read, write) -> None:
    user = f"cold-{uuid.uuid4().hex[:8]}"
    cold = client.get(f"/v1/users/{user}/recommendations", headers=read).json()
    assert "also-viewed" not in {i["source"] for i in cold["items"]}
    assert client.get(f"/v1/users/{user}/profile", headers=read).status_code == 404
    client.post("/v1/events", json=event(user, CHARGER), headers=write)
    warm = client.get(f"/v1/users/{user}/recommendations", headers=read).json()
    co_viewed = [i for i in warm["items"] if i["source"] == "also-viewed"]
    assert len(co_viewed) >= 3 and CHARGER not in ids(warm)
    similar = set(ids(client.get(f"/v1/items/{CHARGER}/similar?k=20", headers=read).json()))
    assert {i["item_id"] for i in co_viewed} & similar, "co-viewed items of a charger are other chargers"
    profile = client.get(f"/v1/users/{user}/profile", headers=read).json()
    assert profile["live_events"] == 1 and profile["known_to_model"] is False


def test_trending_and_new_arrivals_still_work_after_a_users_live_event(client, read, write) -> None:
    """The demo shop's data is old, so the service runs on the data's clock; a live event stamped
    with the wall clock must not move the user's 'now' a year ahead (empty trending window)."""
    user = f"clock-{uuid.uuid4().hex[:8]}"
    client.post("/v1/events", json=event(user, CHARGER, "view"), headers=write)
    for path, source in (("/v1/trending", "trending"), ("/v1/new-arrivals", "new-arrivals")):
        anonymous = client.get(path, headers=read).json()
        assert {i["source"] for i in anonymous["items"]} == {source}
        personal = client.get(f"{path}?user_id={user}", headers=read).json()
        sources = Counter(i["source"] for i in personal["items"])
        assert sources[source] >= len(personal["items"]) // 2, f"{path} for {user}: {dict(sources)}"


# ---------------------------------------------------------------------- catalog changes
NEW_CHARGER = {
    "title": "Soniq Wireless Charger, Aluminium, 2 m cable, Red",
    "description": "Soniq wireless charger in aluminium with a 2 m cable.",
    "category": "Electronics > Accessories > Chargers",
    "brand": "Soniq",
    "price": 16.99,
}


def test_a_new_item_is_served_at_once_and_a_deleted_one_nowhere(client, read, write, catalog) -> None:
    new_id = f"NEW-{uuid.uuid4().hex[:6]}"
    put = client.put(f"/v1/items/{new_id}", json=NEW_CHARGER, headers=write)
    assert put.status_code == 200, put.text
    assert put.json()["new"] is True and put.json()["title"] == NEW_CHARGER["title"]
    similar = client.get(f"/v1/items/{CHARGER}/similar", headers=read).json()
    assert new_id in ids(similar)
    assert next(i for i in similar["items"] if i["item_id"] == new_id)["source"] == "new-item-text"
    own = client.get(f"/v1/items/{new_id}/similar", headers=read).json()
    assert CHARGER in ids(own)[:3], "the new charger's text neighbours are chargers"
    user = f"fan-{uuid.uuid4().hex[:8]}"
    client.post("/v1/events", json=event(user, CHARGER), headers=write)
    assert new_id in ids(client.get(f"/v1/users/{user}/recommendations", headers=read).json())
    assert client.post("/v1/events", json=event(user, new_id), headers=write).json()["accepted"] == 1

    assert client.delete(f"/v1/items/{new_id}", headers=write).status_code == 204
    assert client.get(f"/v1/items/{new_id}", headers=read).status_code == 404
    assert client.get(f"/v1/items/{new_id}/similar", headers=read).status_code == 404
    for path in (
        f"/v1/items/{CHARGER}/similar",
        f"/v1/users/{user}/recommendations",
        f"/v1/new-arrivals?user_id={user}",
    ):
        assert new_id not in ids(client.get(path, headers=read).json()), path


def test_a_deleted_trained_item_leaves_every_feed(client, read, write, catalog) -> None:
    trending = client.get("/v1/trending?k=20", headers=read).json()
    gone = ids(trending)[1]
    holders = [
        u
        for u in catalog["users"][:60]
        if gone in ids(client.get(f"/v1/users/{u}/recommendations?k=20", headers=read).json())
    ]
    anchors = [
        i for i in catalog["items"][:60] if gone in ids(client.get(f"/v1/items/{i}/similar?k=20", headers=read).json())
    ]
    assert holders and anchors, "the item must be served somewhere before it is deleted"
    assert client.delete(f"/v1/items/{gone}", headers=write).status_code == 204
    paths = [f"/v1/users/{u}/{feed}?k=20" for u in holders for feed in ("recommendations", "cross-category")]
    paths += [f"/v1/items/{i}/{feed}?k=20" for i in anchors for feed in ("similar", "complements")]
    paths += [
        "/v1/trending?k=50",
        "/v1/new-arrivals?k=50",
        f"/v1/users/{holders[0]}/recommendations?scenario=promotions",
    ]
    for path in paths:
        response = client.get(path, headers=read)
        assert response.status_code == 200 and gone not in ids(response.json()), path
    assert client.get(f"/v1/items/{gone}", headers=read).status_code == 404
    assert client.get(f"/v1/items/{gone}/similar", headers=read).status_code == 404
    assert gone not in [f["item_id"] for f in client.get("/v1/items", params={"q": gone}, headers=read).json()]


# ---------------------------------------------------------------------- feedback loop
def test_online_ctr_counts_clicks_on_served_lists(client, read, write, catalog) -> None:
    since = time.time()
    lists = [client.get(f"/v1/users/ctr-{n}/recommendations?k=6", headers=read).json() for n in range(3)]
    impressions: Counter = Counter()
    clicks: Counter = Counter()
    for listing in lists:
        for item in listing["items"]:
            impressions[(listing["version"], item["source"])] += 1
    for n, listing in enumerate(lists):
        for item in listing["items"][: n + 1]:  # 1, 2 and 3 clicks on the three lists
            clicks[(listing["version"], item["source"])] += 1
            click = event(listing["user_id"], item["item_id"], rec=listing["recommendation_id"])
            client.post("/v1/events", json=click, headers=write)
            client.post("/v1/events", json={**click, "event_id": click["event_id"] + "-again"}, headers=write)
    other = lists[0]["items"][-1]["item_id"]  # a click not tied to a list, and one naming an item the list lacks
    client.post("/v1/events", json=event("ctr-0", other), headers=write)
    unlisted = next(i for i in catalog["items"] if i not in ids(lists[1]))
    client.post("/v1/events", json=event("ctr-1", unlisted, rec=lists[1]["recommendation_id"]), headers=write)
    response = client.get("/v1/stats/online", params={"by": ["version", "source"], "since": since}, headers=read)
    assert response.status_code == 200, response.text
    rows = {(r["version"], r["source"]): r for r in response.json()}
    assert set(rows) == set(impressions)
    for key, shown in impressions.items():
        assert rows[key]["impressions"] == shown
        assert rows[key]["clicks"] == clicks[key]
        assert rows[key]["ctr"] == pytest.approx(clicks[key] / shown)


# ---------------------------------------------------------------------- A/B serving
def served_versions(client: TestClient, headers: dict, users: list[str]) -> dict[str, str]:
    return {u: client.get(f"/v1/users/{u}/recommendations?k=3", headers=headers).json()["version"] for u in users}


def test_ab_plan_splits_users_by_share_and_keeps_each_user_in_one_arm(client, read, write, admin, models_dir) -> None:
    copy_version(models_dir / "v0001", models_dir, "v0002")
    users = [f"ab-{n}" for n in range(400)]
    try:
        plan = {"arms": {"v0001": 0.25, "v0002": 0.75}, "salt": "exp-1"}
        response = client.put("/v1/models/plan", json=plan, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["loaded"] == ["v0001", "v0002"]
        first = served_versions(client, read, users)
        assert served_versions(client, read, users[:100]) == {u: first[u] for u in users[:100]}
        share = Counter(first.values())["v0001"] / len(users)
        assert abs(share - 0.25) < 0.08, share
        profile_user = users[0]
        client.post("/v1/events", json=event(profile_user, CHARGER), headers=write)
        assert client.get(f"/v1/users/{profile_user}/profile", headers=read).json()["version"] == first[profile_user]

        resalted = {**plan, "salt": "exp-2"}
        assert client.put("/v1/models/plan", json=resalted, headers=admin).status_code == 200
        assert served_versions(client, read, users[:100]) != {u: first[u] for u in users[:100]}, "a new salt reshuffles"

        for pinned in ("v0001", "v0002"):
            assert client.put("/v1/models/plan", json={"pinned": pinned}, headers=admin).status_code == 200
            assert set(served_versions(client, read, users[:50]).values()) == {pinned}
    finally:
        client.put("/v1/models/plan", json={}, headers=admin)
    assert set(served_versions(client, read, users[:20]).values()) == {"v0002"}, "empty plan: the newest"


def test_plan_naming_a_missing_version_is_refused(client, admin) -> None:
    for plan in ({"pinned": "v0099"}, {"arms": {"v0001": 0.5, "v0099": 0.5}}):
        response = client.put("/v1/models/plan", json=plan, headers=admin)
        assert response.status_code == 400
        assert "v0099" in response.json()["error"] and "available" in response.json()["error"]
    both = client.put("/v1/models/plan", json={"pinned": "v0001", "arms": {"v0001": 1.0}}, headers=admin)
    assert both.status_code == 400 and "either pinned or arms" in both.json()["error"]
    negative = client.put("/v1/models/plan", json={"arms": {"v0001": -1.0}}, headers=admin)
    assert negative.status_code == 400 and "shares" in negative.json()["error"]


# ---------------------------------------------------------------------- security
def test_a_request_without_a_valid_key_is_401(client, keys) -> None:
    missing = client.get("/v1/trending")
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]
    malformed = client.get("/v1/trending", headers={"X-API-Key": "letmein"})
    assert malformed.status_code == 401 and "malformed" in malformed.json()["error"]
    key_id = keys["read"].split("_")[1]
    wrong = client.get("/v1/trending", headers={"X-API-Key": f"sr_{key_id}_not-the-secret"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.json()["error"]


@pytest.mark.parametrize(
    ("scope", "method", "path", "body"),
    [
        ("read", "POST", "/v1/events", {"event_id": "x", "user_id": "u", "item_id": CHARGER, "event": "view"}),
        ("read", "PUT", "/v1/items/NEW-X", {"title": "x"}),
        ("read", "DELETE", f"/v1/items/{CHARGER}", None),
        ("write", "PUT", "/v1/models/plan", {}),
        ("write", "POST", "/v1/models/reload", None),
    ],
)
def test_a_key_without_the_scope_is_403(client, keys, store, scope, method, path, body) -> None:
    response = client.request(method, path, json=body, headers=auth(keys, scope))
    assert response.status_code == 403
    assert "lacks the" in response.json()["error"] and scope in response.json()["error"]
    assert client.get(f"/v1/items/{CHARGER}", headers=auth(keys, "read")).status_code == 200
    assert not store.get_events(["x"])


def test_admin_key_may_reload_and_set_the_plan(client, admin) -> None:
    assert client.post("/v1/models/reload", headers=admin).status_code == 200
    assert client.put("/v1/models/plan", json={}, headers=admin).status_code == 200


def test_keys_are_stored_only_as_hashes(models_dir, keys) -> None:
    stored = b"".join(p.read_bytes() for p in models_dir.glob("shoprec.db*"))
    for key in keys.values():
        _, key_id, secret = key.split("_", 2)
        assert key_id.encode() in stored
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
        assert secret.encode() not in stored


def test_a_key_over_its_rate_is_429_with_retry_after(client, keys) -> None:
    headers = auth(keys, "limited")
    statuses = [client.get("/v1/trending?k=1", headers=headers).status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
    limited = client.get("/v1/trending?k=1", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in limited.json()["error"]
    assert client.get("/v1/trending?k=1", headers=auth(keys, "read")).status_code == 200, "limits are per key"


def big_batch() -> dict:
    """Valid events, more bytes than the limit allows."""
    return {"events": [event("u-big", CHARGER, "view") for _ in range(MAX_BODY // 100)]}


def test_a_body_over_the_limit_is_413_with_content_length(client, write, store) -> None:
    before = store.count_events()
    body = json.dumps(big_batch()).encode()
    assert len(body) > MAX_BODY
    response = client.post("/v1/events/batch", content=body, headers={**write, "Content-Type": "application/json"})
    assert response.status_code == 413 and str(MAX_BODY) in response.json()["error"]
    assert store.count_events() == before


def test_a_chunked_body_over_the_limit_is_413(client, write, store) -> None:
    before = store.count_events()
    body = json.dumps(big_batch()).encode()
    chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
    response = client.post("/v1/events/batch", content=chunks, headers={**write, "Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413, response.text
    assert str(MAX_BODY) in response.json()["error"]
    assert store.count_events() == before


def test_k_over_max_k_is_400(client, read, catalog) -> None:
    assert client.get(f"/v1/trending?k={MAX_K}", headers=read).status_code == 200
    user = catalog["users"][0]
    for path in (
        "/v1/trending",
        f"/v1/users/{user}/recommendations",
        f"/v1/items/{CHARGER}/similar",
        f"/v1/users/{user}/explanations",
    ):
        response = client.get(f"{path}?k={MAX_K + 1}", headers=read)
        assert response.status_code == 400, path
        assert f"k={MAX_K + 1}" in response.json()["error"] and str(MAX_K) in response.json()["error"]


def test_a_batch_over_max_batch_is_400_and_stores_nothing(client, write, store) -> None:
    events = [event("u-batch", CHARGER, "view") for _ in range(MAX_BATCH + 1)]
    response = client.post("/v1/events/batch", json={"events": events}, headers=write)
    assert response.status_code == 400 and str(MAX_BATCH) in response.json()["error"]
    assert store.get_events([e["event_id"] for e in events]) == []
    assert client.post("/v1/events/batch", json={"events": events[:MAX_BATCH]}, headers=write).status_code == 200


def test_cors_allows_only_the_configured_origin(client, read) -> None:
    allowed = client.get("/v1/trending", headers={**read, "Origin": ORIGIN})
    assert allowed.headers.get("access-control-allow-origin") == ORIGIN
    other = client.get("/v1/trending", headers={**read, "Origin": "https://evil.example"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    ok = client.options("/v1/events", headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    assert "x-api-key" in ok.headers["access-control-allow-headers"].lower()
    refused = client.options("/v1/events", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in refused.headers


def test_a_store_outage_is_a_503_that_names_no_server_path(client, write, store, models_dir) -> None:
    """Another process holding SQLite's write lock past the busy timeout (10 s): the event is not
    acknowledged, the answer says to retry without naming files on the server, and a retry with the
    same id once the lock is gone stores it once."""
    body = event("u-outage", CHARGER, "view")
    with closing(sqlite3.connect(models_dir / "shoprec.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        response = client.post("/v1/events", json=body, headers=write)
        other.execute("ROLLBACK")
    assert response.status_code == 503
    assert str(models_dir) not in response.text and "shoprec.db" not in response.text, response.text
    assert store.get_events([body["event_id"]]) == []
    assert client.post("/v1/events", json=body, headers=write).json()["accepted"] == 1


# ---------------------------------------------------------------------- bad input
VALID = {"event_id": "bad-0", "user_id": "u-bad", "item_id": CHARGER, "event": "click"}
BAD_REQUESTS = [
    # (scope, method, path, JSON body or raw bytes, status, words the message must contain)
    ("write", "POST", "/v1/events", b'{"event_id": "bad-1", "user_id": ', 422, ["JSON"]),
    ("write", "POST", "/v1/events", b"[1, 2]", 422, ["body"]),
    ("write", "POST", "/v1/events", {**VALID, "user_id": 123}, 422, ["user_id"]),
    ("write", "POST", "/v1/events", {**VALID, "timestamp": "yesterday"}, 422, ["timestamp"]),
    ("write", "POST", "/v1/events", {**VALID, "timestamp": 10.0}, 422, ["timestamp", "2000"]),
    ("write", "POST", "/v1/events", {**VALID, "event": "like"}, 422, ["event", "click"]),
    ("write", "POST", "/v1/events", {k: v for k, v in VALID.items() if k != "event_id"}, 422, ["event_id"]),
    ("write", "POST", "/v1/events", {**VALID, "colour": "red"}, 422, ["colour"]),
    ("write", "POST", "/v1/events", {**VALID, "item_id": "NOPE-1"}, 422, ["NOPE-1", "PUT /v1/items"]),
    ("write", "POST", "/v1/events", {**VALID, "user_id": ""}, 422, ["user_id"]),
    ("write", "POST", "/v1/events/batch", {"events": []}, 422, ["events"]),
    (
        "write",
        "POST",
        "/v1/events/batch",
        {"events": [VALID, {**VALID, "event_id": "bad-2", "item_id": "NOPE-2"}]},
        422,
        ["NOPE-2"],
    ),
    ("write", "PUT", "/v1/items/NEW-BAD", {"title": "x", "price": -5}, 422, ["price"]),
    ("write", "PUT", "/v1/items/NEW-BAD", {"price": 5}, 422, ["title"]),
    ("write", "PUT", "/v1/items/NEW-BAD", {"title": "x", "in_stock": "maybe"}, 422, ["in_stock"]),
    ("write", "DELETE", "/v1/items/NOPE-3", None, 404, ["NOPE-3"]),
    ("read", "GET", "/v1/items/NOPE-4", None, 404, ["NOPE-4"]),
    ("read", "GET", "/v1/items/NOPE-5/similar", None, 404, ["NOPE-5"]),
    ("read", "GET", "/v1/items/NOPE-6/complements", None, 404, ["NOPE-6"]),
    ("read", "GET", "/v1/users/nobody-7/profile", None, 404, ["nobody-7"]),
    ("read", "GET", "/v1/users/U00001/recommendations?scenario=bogus", None, 422, ["scenario", "home"]),
    ("read", "GET", "/v1/users/U00001/recommendations?min_price=-1", None, 422, ["min_price"]),
    ("read", "GET", "/v1/users/U00001/recommendations?max_price=cheap", None, 422, ["max_price"]),
    ("read", "GET", "/v1/trending?k=0", None, 422, ["k"]),
    ("read", "GET", "/v1/trending?k=ten", None, 422, ["k"]),
    ("read", "GET", "/v1/trending?in_stock=perhaps", None, 422, ["in_stock"]),
    ("read", "GET", "/v1/users/U00001/explanations?lang=fr", None, 422, ["lang"]),
    ("read", "GET", "/v1/users/U00001/explanations?scenario=similar&item_id=NOPE-8", None, 404, ["NOPE-8"]),
    ("read", "GET", "/v1/items?q=", None, 422, ["q"]),
    ("read", "GET", "/v1/stats/online?by=user", None, 422, ["by"]),
    ("read", "GET", "/v1/stats/online?bucket_seconds=5", None, 422, ["bucket_seconds"]),
    ("read", "GET", "/v1/stats/online?by=source&by=source", None, 422, ["by"]),
    ("read", "POST", "/v1/bundles", {"items": [CHARGER], "min_size": 0}, 422, ["min_size"]),
    ("read", "POST", "/v1/bundles", {"items": [CHARGER], "solver": "magic"}, 422, ["solver"]),
    ("admin", "PUT", "/v1/models/plan", {"pinned": "latest"}, 422, ["pinned"]),
    ("admin", "PUT", "/v1/models/plan", {"arms": {"v0001": "half"}}, 422, ["arms"]),
    ("read", "GET", "/v1/no-such-thing", None, 404, ["/v1/no-such-thing"]),
    ("read", "DELETE", "/v1/trending", None, 405, ["method"]),
]


@pytest.mark.parametrize(
    ("scope", "method", "path", "body", "status", "words"),
    BAD_REQUESTS,
    ids=[f"{r[1]} {r[2]} {r[4]} {r[5][0]}" for r in BAD_REQUESTS],
)
def test_bad_input_is_a_4xx_naming_what_is_wrong(
    client, keys, store, models_dir, scope, method, path, body, status, words
) -> None:
    before = store.count_events()
    if isinstance(body, bytes):
        response = client.request(
            method, path, content=body, headers={**auth(keys, scope), "Content-Type": "application/json"}
        )
    else:
        response = client.request(method, path, json=body, headers=auth(keys, scope))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    for word in words:
        assert word in error, f"{word!r} not in {error!r}"
    text = response.text
    assert "Traceback" not in text and str(models_dir) not in text and ".py" not in text
    assert store.count_events() == before, "a refused request stored events"


def test_a_warmed_feed_is_served_from_the_cache_until_the_shopper_acts(client, read) -> None:
    """The warm-up writes entries under the stamp a shopper with no live event and no live query
    has; a stamp format that drifted from it would make every warmed entry a miss."""
    warming = client.app.state.engine.cache.warming
    deadline = time.monotonic() + 60
    while not (warming and all(state["finished"] for state in warming.values())):
        assert time.monotonic() < deadline, f"the feed cache did not finish warming: {warming}"
        time.sleep(0.05)
    user = str(client.app.state.engine.versions.default().dataset.user_vocab.ids()[-1])
    assert client.get(f"/v1/users/{user}/profile", headers=read).json()["live_events"] == 0
    feed = client.get(f"/v1/users/{user}/recommendations", headers=read).json()
    assert "served from the feed cache" in feed["notes"], feed["notes"]
