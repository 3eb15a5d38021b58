"""LightGCN: text-aware items, cold items placed by text, item-graph edges, settings, determinism.

The shared contract (checkerboard, exclusions, save/load, ...) runs in test_models.py with the
fast settings registered there.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from shoprec.data.demo import generate_demo_shop
from shoprec.errors import ModelError
from shoprec.models import Recommender, create_model
from shoprec.models.lightgcn import SymmetricSpMM, adjacency, ndcg_at_10, pick_holdout, without
from tinydata import make_dataset

FAST = {"embedding_size": 8, "epochs": 40, "learning_rate": 0.05, "batch_size": 64, "threads": 1, "valid_users": 0}


def group_vectors(dataset, dim: int = 6) -> np.ndarray:
    """Text vectors that know the checkerboard's groups: a* items near e0, b* items near e1."""
    rng = np.random.default_rng(0)
    ids = dataset.item_vocab.ids()
    vectors = rng.normal(scale=0.1, size=(len(ids), dim)).astype(np.float32)
    vectors[:, 0] += np.array([str(i).startswith("a") for i in ids], dtype=np.float32)
    vectors[:, 1] += np.array([str(i).startswith("b") for i in ids], dtype=np.float32)
    return vectors


def checkerboard_with_cold_item(checkerboard):
    """The checkerboard events plus a catalogue item 'a_new' nobody has touched."""
    frame = checkerboard.interactions
    events = list(
        zip(
            checkerboard.user_vocab.ids()[frame["user"]],
            checkerboard.item_vocab.ids()[frame["item"]],
            frame["timestamp"],
            strict=True,
        )
    )
    return make_dataset(events, items=[*checkerboard.item_vocab.ids(), "a_new"])


def fit(dataset, vectors=None, **settings):
    model = create_model("lightgcn", **{**FAST, **settings})
    if vectors is not None:
        model.set_item_vectors(vectors)
    return model.fit(dataset)


@pytest.mark.parametrize("mode", ["fused", "text"])
def test_text_modes_learn_the_checkerboard_from_handed_over_vectors(checkerboard, mode):
    model = fit(checkerboard, group_vectors(checkerboard), item_repr=mode)
    users = np.arange(checkerboard.n_users)
    items, _ = model.recommend(users, k=1)
    own = np.array([uid.startswith("u") for uid in checkerboard.user_vocab.ids()])
    in_a = np.array([iid.startswith("a") for iid in checkerboard.item_vocab.ids()])
    np.testing.assert_array_equal(in_a[items[:, 0]], own)  # each user's top item is from their group


def test_text_vectors_change_the_item_vectors(checkerboard):
    vectors = group_vectors(checkerboard)
    first = fit(checkerboard, vectors, item_repr="fused", epochs=3)
    other = fit(checkerboard, vectors[::-1].copy(), item_repr="fused", epochs=3)
    assert not np.allclose(first.item_vectors, other.item_vectors)


def test_item_absent_from_training_is_scored_by_its_text(checkerboard):
    data = checkerboard_with_cold_item(checkerboard)
    vectors = group_vectors(data)  # 'a_new' gets an a-group text vector
    model = fit(data, vectors, item_repr="fused")
    cold = data.item_vocab.index(np.array(["a_new"], dtype=object))[0]
    scores = model.score(np.arange(data.n_users))[:, cold]
    assert np.isfinite(scores).all()
    likes_a = np.array([uid.startswith("u") for uid in data.user_vocab.ids()])
    assert scores[likes_a].min() > scores[~likes_a].max(), "a-group shoppers must score the a-like new item higher"
    id_only = fit(data, item_repr="id")
    np.testing.assert_array_equal(id_only.score(np.arange(4))[:, cold], 0.0)


def basket_shop():
    """Two users buy {x, y} together; other users buy x or y with z; 'w' only by one user."""
    orders = [("u0", ["x", "y"]), ("u1", ["x", "y"]), ("u2", ["x", "z"]), ("u3", ["y", "z", "w"])]
    events = []
    for n, (u, order) in enumerate(orders):
        events += [(u, item, 10 * n, "purchase", f"O{n}") for item in order]
        events += [(u, "z", 10 * n + 5, "view", f"S{n}")]
    return make_dataset(events, items=["w", "x", "y", "z"])


def test_item_graph_edges_join_the_propagation_and_are_saved(tmp_path):
    data = basket_shop()
    plain = fit(data, item_repr="id", seed=3)
    linked = fit(data, item_repr="id", seed=3, item_graph_weight=1.0)
    assert plain.item_graph is None and linked.item_graph is not None
    assert linked.item_graph.edges("co_basket").nnz > 0
    assert not np.allclose(plain.item_vectors, linked.item_vectors)
    loaded = Recommender.load(linked.save(tmp_path / "m"))
    assert (loaded.item_graph.edges("co_basket") != linked.item_graph.edges("co_basket")).nnz == 0
    np.testing.assert_array_equal(loaded.score(np.arange(4)), linked.score(np.arange(4)))


def test_adjacency_is_symmetrically_normalised_with_weighted_item_edges():
    user_items = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))  # 2 users, 3 items
    item_items = sp.csr_matrix(np.array([[0, 0, 0.5], [0, 0, 0], [0.5, 0, 0]], dtype=np.float32))
    a = np.zeros((5, 5))
    a[:2, 2:] = user_items.toarray()
    a[2:, :2] = user_items.toarray().T
    a[2:, 2:] = 2.0 * item_items.toarray()
    degree = a.sum(axis=1)
    expected = a / np.sqrt(np.outer(degree, degree))
    np.testing.assert_allclose(adjacency(user_items, item_items, 2.0).toarray(), expected, rtol=1e-6)
    plain = adjacency(user_items, item_items, 0.0).toarray()
    assert plain[2:, 2:].sum() == 0 and plain[4].sum() == 0  # item 2 is isolated without the item edge


def test_symmetric_sparse_product_has_the_dense_gradient(rng):
    m = sp.random(12, 12, density=0.3, random_state=1, format="csr", dtype=np.float32)
    m = (m + m.T).tocsr()
    x = torch.from_numpy(rng.normal(size=(12, 4)).astype(np.float32)).requires_grad_()
    y = torch.from_numpy(rng.normal(size=(12, 4)).astype(np.float32))
    (SymmetricSpMM.apply(m, x) * y).sum().backward()
    dense = x.detach().clone().requires_grad_()
    (torch.from_numpy(m.toarray()) @ dense * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), dense.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_holdout_is_each_sampled_users_last_new_item():
    shop = generate_demo_shop(seed=2, n_items=300, n_users=200, days=28).to_dataset()
    holdout = pick_holdout(shop, 50, np.random.default_rng(0))
    assert len(holdout) == 50 and len(np.unique(holdout.users)) == 50
    seqs = shop.sequences()
    for user, item in zip(holdout.users, holdout.items, strict=True):
        history = seqs.of(user)
        assert history[-1] == item and (history == item).sum() == 1
    full = shop.matrix("binary")
    kept = without(full, holdout)
    assert full.nnz - kept.nnz == 50 and kept[holdout.users, holdout.items].sum() == 0


def test_validation_ndcg_ranks_the_target_among_unseen_items():
    users = np.eye(3, dtype=np.float32)  # user u scores item j by items[j, u]
    items = np.array([[3, 0, 1], [2, 5, 1], [1, 4, 2], [0, 3, 3]], dtype=np.float32)  # (4 items, 3)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]))
    targets = np.array([1, 2, 3])
    # user 0 (item 0 seen) ranks target 1 first, user 1 (item 1 seen) target 2, user 2 target 3.
    assert ndcg_at_10(users, items, seen, targets, block=2) == pytest.approx(1.0)
    targets = np.array([2, 3, 0])  # ranks 1, 1 and 2 (user 2's item 0 wins its tie with item 1: lower index)
    expected = np.mean([1 / np.log2(3), 1 / np.log2(3), 1 / np.log2(4)])
    assert ndcg_at_10(users, items, seen, targets, block=2) == pytest.approx(expected)
    targets = np.array([2, 3, 1])  # user 2's item 1 loses the same tie to item 0: rank 3
    expected = np.mean([1 / np.log2(3), 1 / np.log2(3), 1 / np.log2(5)])
    assert ndcg_at_10(users, items, seen, targets, block=2) == pytest.approx(expected)


def test_early_stopping_keeps_the_best_epoch():
    data = generate_demo_shop(seed=2, n_items=300, n_users=200, days=28).to_dataset()
    model = fit(data, item_repr="id", embedding_size=16, epochs=30, patience=2, valid_users=40, batch_size=512)
    log = model.log
    assert len(log.valid_ndcg) == log.epochs and log.best_ndcg == max(log.valid_ndcg)
    assert log.valid_ndcg[log.best_epoch - 1] == log.best_ndcg
    if log.epochs < 30:
        assert log.epochs == log.best_epoch + 2 and "no gain" in log.stopped
    assert model.fit_stats["validation_users"] == 40


def test_same_seed_gives_identical_vectors(checkerboard):
    first = fit(checkerboard, item_repr="id", seed=5, epochs=5)
    again = fit(checkerboard, item_repr="id", seed=5, epochs=5)
    other = fit(checkerboard, item_repr="id", seed=6, epochs=5)
    np.testing.assert_array_equal(first.user_vectors, again.user_vectors)
    np.testing.assert_array_equal(first.item_vectors, again.item_vectors)
    assert not np.allclose(first.item_vectors, other.item_vectors)


@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_both_losses_learn_the_checkerboard(checkerboard, loss):
    model = fit(checkerboard, item_repr="id", loss=loss, negatives=4, epochs=80, seed=2)
    users = np.arange(checkerboard.n_users)
    items, _ = model.recommend(users, k=1)
    own = np.array([uid.startswith("u") for uid in checkerboard.user_vocab.ids()])
    in_a = np.array([iid.startswith("a") for iid in checkerboard.item_vocab.ids()])
    np.testing.assert_array_equal(in_a[items[:, 0]], own)


@pytest.mark.parametrize(
    "settings",
    [
        {"embedding_size": 0},
        {"layers": -1},
        {"epochs": 0},
        {"learning_rate": 0.0},
        {"reg": -1.0},
        {"batch_size": 0},
        {"loss": "hinge"},
        {"negatives": -5},
        {"item_repr": "image"},
        {"item_graph_weight": -0.5},
        {"item_graph_weight": float("nan")},
        {"patience": 0},
        {"valid_users": -1},
        {"threads": 0},
    ],
)
def test_bad_settings_are_errors(settings):
    with pytest.raises(ModelError, match=next(iter(settings))):
        create_model("lightgcn", **settings)


def test_wrong_number_of_handed_over_vectors_is_an_error(checkerboard):
    model = create_model("lightgcn", **FAST).set_item_vectors(np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ModelError, match="gave 3 vectors but the dataset has 10 items"):
        model.fit(checkerboard)
    assert not model.is_fitted
