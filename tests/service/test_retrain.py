"""Retraining from the store (real SQLite): the training set (base snapshot + store events + catalog
changes - forgotten users), the offline guard, publishing a challenger, and a retrain with no new data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import copy_version

from shoprec.cli.main import main
from shoprec.data.demo import generate_demo_shop
from shoprec.service.ab import SETTING
from shoprec.service.retrain import retrain_once
from shoprec.service.store import Event, ItemRecord, open_store
from shoprec.service.trainstore import dataset_from_store
from shoprec.service.versions import list_versions, read_manifest, train_version

DAY = 86_400
CONFIG = """
[pipeline]
k = 10
recall_k = 50
rank = "learned"

[[source]]
name = "ease"
type = "model"
model = "ease"

[[source]]
name = "als"
type = "model"
model = "als"
settings = { embedding_size = 16, epochs = 6, warm_epochs = 2, num_threads = 1 }

[[source]]
name = "trending"
type = "popularity"
window_days = 7
"""
WORSE = """
[pipeline]
k = 10
recall_k = 50
rank = "fusion"

[[source]]
name = "trending"
type = "popularity"
window_days = 1
"""


@pytest.fixture(scope="module")
def shop():
    """A small demo shop: the first 105 days are the base file, the last 15 days arrive through the API."""
    shop = generate_demo_shop(seed=3, n_items=300, n_users=200)
    start = int(shop.interactions["timestamp"].min())
    return shop, start + 105 * DAY


@pytest.fixture(scope="module")
def base_version(shop, tmp_path_factory) -> Path:
    from shoprec.data import dataset_from_frames

    data, cut = shop
    early = data.interactions[data.interactions["timestamp"] < cut]
    dataset = dataset_from_frames(data.items, early, data.reviews, data.queries, name="demo-early")
    cache = Path(os.environ.get("SHOPREC_TEST_VECTOR_CACHE", tmp_path_factory.getbasetemp() / "vector-cache"))
    return train_version(dataset, tmp_path_factory.mktemp("base"), CONFIG, evaluate=False, vector_cache=cache)


@pytest.fixture
def setup(base_version, tmp_path):
    models = tmp_path / "models"
    copy_version(base_version, models)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield models, store
    store.close()


def post_late_events(store, shop) -> int:
    data, cut = shop
    late = data.interactions[data.interactions["timestamp"] >= cut]
    events = [
        Event(f"e{n}", str(r.user_id), str(r.item_id), str(r.event), float(r.timestamp))
        for n, r in enumerate(late.itertuples())
    ]
    for start in range(0, len(events), 1000):
        store.append_events(events[start : start + 1000])
    return len(events)


def test_training_set_is_the_base_plus_store_events_and_catalog_changes_minus_forgotten_users(setup, shop):
    models, store = setup
    data, cut = shop
    posted = post_late_events(store, shop)
    base_events = len(data.interactions) - posted
    items = data.items["item_id"].tolist()
    store.upsert_items([ItemRecord(items[0], title="Renamed mug", price=9.5), ItemRecord("NEW1", title="A new lamp")])
    store.append_events([Event("n1", "U00001", "NEW1", "purchase", cut + 10.0)])
    store.append_events([Event("x1", "U00001", "NOPE", "view", cut)])
    store.append_events([Event("x2", "U00002", items[5], "wishlist", cut + 5.0)])
    store.upsert_items([ItemRecord(items[1], title="gone")])  # as the API deletes a trained item
    store.delete_item(items[1])
    early = data.interactions[data.interactions["timestamp"] < cut]
    forgotten = str(early["user_id"].iloc[0])
    store.delete_user(forgotten, actor="test", require_known=False)
    dataset, report = dataset_from_store(store, models)

    assert "NEW1" in dataset.item_vocab and items[1] not in dataset.item_vocab
    renamed = dataset.items[dataset.items["item_id"] == items[0]].iloc[0]
    assert renamed["title"] == "Renamed mug" and renamed["price"] == 9.5
    assert forgotten not in dataset.user_vocab
    new_user, new_item = dataset.user_vocab.index(["U00001"])[0], dataset.item_vocab.index(["NEW1"])[0]
    frame = dataset.interactions
    assert ((frame["user"] == new_user) & (frame["item"] == new_item)).sum() == 1
    dropped = {reason: n for (_, reason), n in dataset.report.dropped.items()}
    assert dropped["user asked to be forgotten"] == (early["user_id"] == forgotten).sum()
    assert dropped["item deleted from the catalog"] > 0
    assert dropped["item not in the catalog"] == 1
    assert dropped["unknown event type (use view, click, cart, purchase or rating)"] == 1
    assert dataset.report.rows_read["interactions"] == base_events + report.store_events
    assert report.base == report.previous == "v0001" and report.upserts == 2 and report.deletes == 1
    assert report.forgotten == 1 and report.newly_forgotten == 1 and report.has_new_data
    assert (
        report.store_events
        == posted + 3 - (data.interactions["user_id"] == forgotten).sum() + (early["user_id"] == forgotten).sum()
    )  # the forgotten user's store events were deleted by the store
    assert len(dataset) == base_events + report.store_events - sum(dropped.values())


def test_retrain_publishes_a_challenger_and_a_second_run_finds_no_new_data(setup, shop):
    models, store = setup
    post_late_events(store, shop)
    result = retrain_once(models, store, share=0.2, tolerance=0.5, window_seconds=5 * DAY)
    assert result.action == "challenger", result.message
    assert result.serving == "v0001" and result.candidate == "v0002"
    assert store.get_setting(SETTING) == {"arms": {"v0001": 0.8, "v0002": 0.2}}
    manifest = read_manifest(models / "v0002")
    lineage = manifest["lineage"]
    assert lineage["base"] == "v0001" and lineage["events_seq"] == result.data.events_seq > 0
    assert lineage["guard"]["scores"]["candidate"]["users"] > 20
    assert manifest["warm_start"] == {"ease": "cold: 'ease' has no warm start", "als": "warm from v0001"}
    decision = store.decisions(limit=1)[0]
    assert decision["experiment"] == "retrain" and decision["action"] == "challenger"
    assert decision["evidence"]["candidate"] == "v0002"

    _, again = dataset_from_store(store, models)  # the chain keeps v0001 as base and counts nothing twice
    assert again.base == "v0001" and again.previous == "v0002" and not again.has_new_data
    second = retrain_once(models, store)
    assert second.action == "no-new-data" and "no new data since v0002" in second.message
    assert list_versions(models) == ["v0001", "v0002"]
    assert store.decisions(limit=1)[0]["action"] == "no-new-data"


def test_guard_rejects_a_worse_candidate_and_keeps_serving(setup, shop):
    models, store = setup
    post_late_events(store, shop)
    result = retrain_once(models, store, config_text=WORSE, tolerance=0.02, window_seconds=5 * DAY)
    assert result.action == "rejected", result.message
    scores = result.evidence["guard"]["scores"]
    assert scores["candidate"]["ndcg@10"] < scores["serving"]["ndcg@10"] * 0.98
    assert list_versions(models) == ["v0001"]
    assert (models / "v0002.rejected" / "manifest.json").exists()
    assert read_manifest(models / "v0002.rejected")["rejected"]["guard"]["passed"] is False
    assert store.get_setting(SETTING) == {"pinned": "v0001"}
    assert store.decisions(limit=1)[0]["action"] == "rejected"
    assert not [p for p in models.iterdir() if p.name.startswith(".guard")]


def test_cli_train_from_store_says_what_is_wrong(setup, tmp_path, capsys):
    models, store = setup
    assert main(["train", "--store", f"sqlite:///{tmp_path / 'empty.db'}", "--models", str(models)]) == 0
    assert "no new data since v0001" in capsys.readouterr().out
    code = main(["train", "--store", "postgresql://nobody@127.0.0.1:1/none", "--models", str(models)])
    captured = capsys.readouterr()
    assert code != 0 and "Traceback" not in captured.err + captured.out
    assert "127.0.0.1" in captured.err
    assert np.isfinite(code)


def test_scheduler_retrains_when_due_one_process_at_a_time(setup):
    import fcntl

    from shoprec.service.schedule import LOCK, RetrainScheduler, parse_duration

    models, store = setup
    now = [1_000_000.0]
    scheduler = RetrainScheduler(models, store, every=parse_duration("6h"), clock=lambda: now[0])
    assert scheduler.due_in() == 0  # never retrained: due at once
    with open(models / LOCK, "w") as held:  # another process is retraining
        fcntl.flock(held, fcntl.LOCK_EX)
        assert scheduler.run_if_due() is None
    result = scheduler.run_if_due()
    assert result.action == "no-new-data" and list_versions(models) == ["v0001"]
    now[0] = store.decisions(limit=1)[0]["at"] + 3600
    assert scheduler.due_in() == pytest.approx(5 * 3600) and scheduler.run_if_due() is None
    now[0] += 5 * 3600
    assert scheduler.due_in() == 0


def test_retrain_command_and_settings_check_their_input(setup, tmp_path, capsys):
    from shoprec.errors import ConfigError
    from shoprec.service.settings import ServiceSettings

    models, store = setup
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["retrain", "--models", str(models), "--store", url, "--once"]) == 0
    assert "no-new-data: no new data since v0001" in capsys.readouterr().out
    assert main(["retrain", "--models", str(models), "--store", url, "--every", "soon"]) == 2
    assert "--every 'soon' is not a positive duration" in capsys.readouterr().err
    assert main(["retrain", "--models", str(tmp_path / "none"), "--store", url, "--once"]) == 2
    assert "no trained model version" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="retrain_every '0' is not a positive duration"):
        ServiceSettings(retrain_every="0").check()
    with pytest.raises(ConfigError, match="retrain_share"):
        ServiceSettings(retrain_every="6h", retrain_share=1.0).check()
