"""The experiments API and page on a running app with two trained versions: real feeds served by an
A/B plan, clicks sent back through the events API, then ``GET /v1/experiments`` (arms, intervals, the
running estimate), ``POST /v1/experiments/decide`` promoting the arm shoppers clicked more, the plan
following it, and the dashboard page drawing the running estimate with its interval."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import two_versions

from shoprec.service.app import create_app
from shoprec.service.experiments import Rules
from shoprec.service.settings import ServiceSettings

CLICK_RATE = {"v0001": 0.02, "v0002": 0.25}
"""The simulated shoppers click v0002's lists far more: the test must find it."""
SHOPPERS = 240


@pytest.fixture(scope="module")
def client(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    models = two_versions(trained, tmp_path_factory.mktemp("experiments"))
    settings = ServiceSettings(models_dir=str(models), auth=False, warm_cache=False, experiments_every=0)
    with TestClient(create_app(settings)) as test_client:
        test_client.app.state.experiments.rules = Rules(min_impressions=500)  # about 1,200 shown items per arm
        yield test_client


def test_an_ab_plan_whose_shares_do_not_sum_to_one_is_refused(client: TestClient) -> None:
    response = client.put("/v1/models/plan", json={"arms": {"v0001": 0.6, "v0002": 0.3}})
    assert response.status_code == 400
    assert "shares sum to 0.9, not 1" in response.json()["error"]


def test_the_experiment_promotes_the_arm_shoppers_click_more(client: TestClient) -> None:
    assert client.put("/v1/models/plan", json={"arms": {"v0001": 0.5, "v0002": 0.5}}).status_code == 200
    rng = np.random.default_rng(0)
    events = []
    for n in range(SHOPPERS):
        served = client.get(f"/v1/users/shopper-{n}/recommendations", params={"k": 10}).json()
        for row in served["items"]:
            if rng.random() < CLICK_RATE[served["version"]]:
                events.append(
                    {
                        "event_id": f"e{len(events)}",
                        "user_id": f"shopper-{n}",
                        "item_id": row["item_id"],
                        "event": "click",
                        "recommendation_id": served["recommendation_id"],
                    }
                )
    assert client.post("/v1/events/batch", json={"events": events}).status_code == 200

    status = client.get("/v1/experiments").json()
    arms = {a["version"]: a for a in status["arms"]}
    assert set(arms) == {"v0001", "v0002"} and status["control"] == "v0001"
    assert sum(a["impressions"] for a in arms.values()) == SHOPPERS * 10
    low, high = arms["v0002"]["ctr_interval"]
    assert low < arms["v0002"]["ctr"] < high
    (comparison,) = status["comparisons"]
    assert comparison["decision"] == "promote" and comparison["series"][-1]["low"] > 0

    page = client.get("/dashboard/experiments")
    assert page.status_code == 200 and "v0002 vs v0001" in page.text
    assert re.search(r'<polygon class="band" points="[\d., ]+"', page.text), "the interval band is drawn"

    decided = client.post("/v1/experiments/decide").json()
    assert decided["action"] == "promote" and decided["plan"] == {"pinned": "v0002"}
    assert client.get("/v1/models").json()["plan"] == {"pinned": "v0002"}
    after = client.get("/v1/experiments").json()
    assert after["experiment"] is None and after["decisions"][0]["action"] == "promote"
    assert after["decisions"][0]["evidence"]["challenger"] == "v0002"
    served = {client.get(f"/v1/users/later-{n}/recommendations").json()["version"] for n in range(10)}
    assert served == {"v0002"}
    assert "promote" in client.get("/dashboard/experiments").text
