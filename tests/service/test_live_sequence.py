"""The sequential model scores the live sequence: a click sent to the service is the newest step of
the history SASRec reads for that shopper's very next request.

The version here ranks with SASRec alone (fusion over one source keeps its order), so the served
feed after a click must be SASRec's ranking of the history that ends with that click.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import tiny_shop

from shoprec.service.app import create_app
from shoprec.service.settings import ServiceSettings
from shoprec.service.versions import train_version

SASREC_ONLY = """
[pipeline]
k = 10
recall_k = 100
rank = "fusion"
exclude_seen = true

[[source]]
name = "sasrec"
type = "model"
model = "sasrec"

[source.settings]
item_repr = "id"
embedding_size = 32
epochs = 3
threads = 1
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    models = tmp_path_factory.mktemp("sequential-models")
    train_version(tiny_shop(), models, SASREC_ONLY, evaluate=False, crosscat_mode="graph")
    app = create_app(ServiceSettings(models_dir=str(models), auth=False, poll_seconds=3600))
    with TestClient(app) as test_client:
        yield test_client


def feed(client: TestClient, user: str) -> list[str]:
    answer = client.get(f"/v1/users/{user}/recommendations?k=10")
    assert answer.status_code == 200, answer.text
    return [item["item_id"] for item in answer.json()["items"]]


def test_the_next_feed_is_sasrecs_ranking_of_the_history_ending_with_the_click(client: TestClient) -> None:
    engine = client.app.state.engine
    dep = engine.versions.default()
    [sasrec] = dep.pipeline.sources
    user = str(dep.dataset.user_vocab.ids()[7])
    before = feed(client, user)
    snapshot, _ = engine.context(dep, user)
    # A click on an item far from the shopper's history: the lowest-scored item SASRec can rank.
    [(ranked, _)] = sasrec.recall([snapshot], dep.dataset.n_items)
    unseen = [int(i) for i in ranked if int(i) not in set(snapshot.history.tolist())]
    clicked = str(dep.dataset.item_vocab.ids()[unseen[-1]])
    ack = client.post("/v1/events", json={"event_id": "seq-1", "user_id": user, "item_id": clicked, "event": "click"})
    assert ack.json()["accepted"] == 1

    after = feed(client, user)
    live, _ = engine.context(dep, user)
    assert len(live.history) == len(snapshot.history) + 1 and live.history[-1] == unseen[-1]
    [(expected, _)] = sasrec.recall([live], dep.dataset.n_items)
    seen = set(live.history.tolist())
    expected_ids = [str(dep.dataset.item_vocab.ids()[i]) for i in expected if int(i) not in seen][:10]
    assert after == expected_ids, "the feed is SASRec's ranking of the live sequence"
    assert after != before, "the click changed what SASRec ranks first"
    assert clicked not in after


def test_sasrec_scores_differ_between_the_snapshot_and_the_live_sequence(client: TestClient) -> None:
    engine = client.app.state.engine
    dep = engine.versions.default()
    [sasrec] = dep.pipeline.sources
    user = str(dep.dataset.user_vocab.ids()[11])
    snapshot, _ = engine.context(dep, user)
    fresh = next(i for i in range(dep.dataset.n_items) if i not in set(snapshot.history.tolist()))
    item = str(dep.dataset.item_vocab.ids()[fresh])
    client.post("/v1/events", json={"event_id": "seq-2", "user_id": user, "item_id": item, "event": "view"})
    live, _ = engine.context(dep, user)
    [(_, scores_before)] = sasrec.recall([snapshot], 20)
    [(_, scores_after)] = sasrec.recall([live], 20)
    assert not np.allclose(scores_before, scores_after)
