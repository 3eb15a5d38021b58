"""Warm starts: a refit from the previous version's parameters reaches the cold fit's quality in fewer
iterations, known ids keep their rows, and new items start from their text."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from shoprec.data import dataset_from_frames
from shoprec.data.demo import generate_demo_shop
from shoprec.errors import ModelError
from shoprec.eval.metrics.accuracy import ndcg
from shoprec.models import create_model
from shoprec.models.sequential import warm_item_net
from shoprec.models.warmstart import index_map

DAY = 86_400


def text_vectors(dataset, dim: int = 16) -> np.ndarray:
    """A fixed random unit 'text' vector per item id (the same item gets the same vector in every dataset)."""
    rows = [np.random.default_rng(zlib.crc32(str(i).encode())).normal(size=dim) for i in dataset.item_vocab.ids()]
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def periods():
    """A small demo shop seen at day 100 (old) and day 110 (full, with items created since), and the
    truth of days 110-120 for the full dataset's users."""
    shop = generate_demo_shop(seed=3, n_items=300, n_users=200)
    events, items = shop.interactions, shop.items
    start = int(events["timestamp"].min())
    old_end, new_end = start + 100 * DAY, start + 110 * DAY
    old_items = items[items["created_at"] < old_end]
    old_events = events[(events["timestamp"] < old_end) & events["item_id"].isin(old_items["item_id"])]
    old = dataset_from_frames(old_items, old_events, name="old")
    full = dataset_from_frames(items, events[events["timestamp"] < new_end], name="full")
    later = events[events["timestamp"] >= new_end]
    users = full.user_vocab.index(later["user_id"])
    item_idx = full.item_vocab.index(later["item_id"])
    keep = (users >= 0) & (item_idx >= 0)
    truth = np.zeros((full.n_users, full.n_items), dtype=bool)
    truth[users[keep], item_idx[keep]] = True
    truth &= full.matrix("binary").toarray() == 0  # only items new to the user count
    return old, full, truth


def quality(model, full, truth) -> float:
    import scipy.sparse as sp

    users = np.flatnonzero(truth.any(axis=1))
    recs, _ = model.recommend(users, k=10)
    return float(ndcg(recs, sp.csr_matrix(truth[users]), 10).mean())


def maps(old, full):
    return index_map(full.item_vocab.ids(), old.item_vocab.ids()), index_map(
        full.user_vocab.ids(), old.user_vocab.ids()
    )


def test_periods_have_new_items_and_users(periods):
    old, full, _ = periods
    items, users = maps(old, full)
    assert (items < 0).sum() > 5 and (items >= 0).sum() > 200
    assert (users >= 0).sum() > 150
    assert full.n_items > old.n_items


def test_als_warm_start_reaches_the_cold_quality_in_fewer_iterations(periods):
    old, full, truth = periods
    settings = dict(embedding_size=32, epochs=15, num_threads=1, seed=0)
    previous = create_model("als", **settings).fit(old)
    cold = quality(create_model("als", **settings).fit(full), full, truth)
    cold_short = quality(create_model("als", **{**settings, "epochs": 1}).fit(full), full, truth)
    items, users = maps(old, full)
    warm_model = create_model("als", **settings, warm_epochs=1).warm_start(previous, items, users).fit(full)
    warm = quality(warm_model, full, truth)
    assert warm >= cold - 0.01, (warm, cold)
    assert warm > cold_short, (warm, cold_short)
    assert warm_model.warm is None  # a warm start serves one fit
    known = np.flatnonzero(items >= 0)
    # the first user solve moves every item a little, but a known item stays near its old factors
    moved = np.linalg.norm(warm_model.item_factors[known] - previous.item_factors[items[known]], axis=1)
    assert np.median(moved) < np.median(np.linalg.norm(previous.item_factors, axis=1))


def test_warm_start_refuses_another_model_and_wrong_maps(periods):
    old, full, _ = periods
    previous = create_model("als", embedding_size=8, epochs=2, num_threads=1).fit(old)
    with pytest.raises(ModelError, match="no warm start"):
        create_model("ease").warm_start(previous, np.zeros(1), np.zeros(1))
    with pytest.raises(ModelError, match="only from a fitted 'sasrec'"):
        create_model("sasrec", item_repr="id").warm_start(previous, np.zeros(1), np.zeros(1))
    model = create_model("als", embedding_size=8, epochs=2, num_threads=1)
    with pytest.raises(ModelError, match="warm start maps cover"):
        model.warm_start(previous, np.zeros(3, np.int64), np.zeros(3, np.int64)).fit(full)
    items, users = maps(old, full)
    with pytest.raises(ModelError, match="cannot warm start 16 factors"):
        create_model("als", embedding_size=16, epochs=2, num_threads=1).warm_start(previous, items, users).fit(full)


def sasrec(**extra):
    settings = dict(embedding_size=32, layers=1, heads=1, dropout=0.2, negatives=0, valid_users=150, patience=4)
    settings.update(learning_rate=3e-3, batch_size=64, seed=1)
    return create_model("sasrec", **{**settings, **extra})


def test_sasrec_warm_start_reaches_the_cold_quality_in_fewer_epochs(periods):
    old, full, truth = periods
    previous = sasrec(epochs=60).set_item_vectors(text_vectors(old)).fit(old)
    cold_model = sasrec(epochs=60).set_item_vectors(text_vectors(full)).fit(full)
    items, users = maps(old, full)
    warm_model = sasrec(epochs=60, warm_epochs=60).set_item_vectors(text_vectors(full))
    warm_model.warm_start(previous, items, users).fit(full)
    cold, warm = quality(cold_model, full, truth), quality(warm_model, full, truth)
    assert warm >= cold - 0.02, (warm, cold)
    assert warm_model.log.best_epoch < cold_model.log.best_epoch, (warm_model.log, cold_model.log)


def test_new_items_start_from_their_text_in_sasrec(periods):
    old, full, _ = periods
    previous = sasrec(epochs=2).set_item_vectors(text_vectors(old)).fit(old)
    items, _ = maps(old, full)
    fresh = sasrec(epochs=2)
    net = fresh._build(full.n_items, torch.from_numpy(text_vectors(full)), torch.ones(full.n_items))
    warm_item_net(net, previous.net, items)
    with torch.no_grad():
        table = net.items.all()  # (n_items + 1, D)
        new = np.flatnonzero(items < 0)
        expected = previous.net.items.project(torch.from_numpy(text_vectors(full)[new]))
        assert torch.allclose(table[new + 1], expected, atol=1e-5)
        known = np.flatnonzero(items >= 0)
        known = known[previous.net.items.trained[items[known] + 1, 0].numpy() > 0]  # had an id row before
        old_table = previous.net.items.all()
        assert torch.allclose(table[known + 1], old_table[items[known] + 1], atol=1e-5)


def test_lightgcn_warm_start_keeps_known_rows_and_places_new_items_by_text(periods, tmp_path):
    from shoprec.models.base import Recommender
    from shoprec.models.lightgcn import LightGCNNet, warm_layer0

    old, full, truth = periods
    settings = dict(embedding_size=16, layers=2, batch_size=512, negatives=0, valid_users=150, patience=5, epochs=40)
    previous = create_model("lightgcn", **settings).set_item_vectors(text_vectors(old)).fit(old)
    previous = Recommender.load(previous.save(tmp_path / "lgcn"))  # the layer-0 parameters survive saving
    items, users = maps(old, full)
    net = LightGCNNet(
        full.n_users, full.n_items, 16, "fused", torch.from_numpy(text_vectors(full)), np.ones(full.n_items)
    )
    warm_layer0(net, previous.layer0, items, users)
    with torch.no_grad():
        layer0 = net.layer0()[full.n_users :]
        new = np.flatnonzero(items < 0)
        project = previous.layer0["project.weight"], previous.layer0["project.bias"]
        expected = text_vectors(full)[new] @ project[0].T + project[1]
        assert np.allclose(layer0[new].numpy(), expected, atol=1e-5)
        known_users = np.flatnonzero(users >= 0)
        assert np.allclose(net.users[known_users].numpy(), previous.layer0["users"][users[known_users]])
    cold_model = create_model("lightgcn", **settings).set_item_vectors(text_vectors(full)).fit(full)
    short_model = create_model("lightgcn", **{**settings, "epochs": 3}).set_item_vectors(text_vectors(full)).fit(full)
    warm_model = create_model("lightgcn", **settings, warm_epochs=3).set_item_vectors(text_vectors(full))
    warm_model.warm_start(previous, items, users).fit(full)
    cold, warm = quality(cold_model, full, truth), quality(warm_model, full, truth)
    assert warm >= cold - 0.015, (warm, cold)
    assert warm > quality(short_model, full, truth) + 0.02  # three cold epochs are not enough
    assert warm_model.log.epochs <= 3 < cold_model.log.best_epoch
