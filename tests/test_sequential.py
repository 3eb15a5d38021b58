"""Sequential recommenders (SASRec, GRU): a deterministic next-item task, text-aware items, live
histories, long sequences, bad input. The shared contract tests live in test_models.py."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.errors import ModelError
from shoprec.models import Recommender, create_model
from shoprec.models.seqtrain import Examples, user_histories
from tinydata import make_dataset

SEQUENTIAL = ("sasrec", "gru4rec")
FAST = {"embedding_size": 32, "dropout": 0.0, "learning_rate": 0.005, "threads": 1, "seed": 3}
N_CYCLE = 12


def cycle_dataset(n_users: int = 60, seed: int = 0):
    """Users walk a fixed cycle of 12 items from random starting points: after item i comes item
    NEXT[i], always. A next-item model must learn the permutation exactly."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(N_CYCLE)
    successor = {int(order[i]): int(order[(i + 1) % N_CYCLE]) for i in range(N_CYCLE)}
    events, t = [], 0
    for u in range(n_users):
        item = int(rng.integers(N_CYCLE))
        for _ in range(int(rng.integers(4, 9))):
            events.append((f"u{u}", f"i{item}", t))
            item, t = successor[item], t + 1
    dataset = make_dataset(events, [f"i{i}" for i in range(N_CYCLE)])
    index = {f"i{i}": int(dataset.item_vocab.index(np.array([f"i{i}"], dtype=object))[0]) for i in range(N_CYCLE)}
    return dataset, {index[f"i{a}"]: index[f"i{b}"] for a, b in successor.items()}


@pytest.fixture(scope="module")
def cycle():
    return cycle_dataset()


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_a_deterministic_next_item_is_learned(name, cycle):
    dataset, successor = cycle
    model = create_model(name, item_repr="id", epochs=40, valid_users=0, **FAST).fit(dataset)
    rng = np.random.default_rng(1)
    histories, expected = [], []
    for _ in range(50):
        start, length = int(rng.integers(N_CYCLE)), int(rng.integers(1, 6))
        walk = [start]
        for _ in range(length - 1):
            walk.append(successor[walk[-1]])
        histories.append(np.array(walk))
        expected.append(successor[walk[-1]])
    top = model.score_histories(histories).argmax(axis=1)
    assert (top == np.array(expected)).mean() >= 0.96


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_live_history_equals_stored_user_state_and_survives_save_load(name, cycle, tmp_path):
    dataset, _ = cycle
    model = create_model(name, item_repr="id", epochs=3, valid_users=0, **FAST).fit(dataset)
    users = np.array([0, 5, 7])
    histories = [dataset.sequences().of(int(u)) for u in users]
    np.testing.assert_allclose(model.score_histories(histories), model.score(users), rtol=1e-4, atol=1e-5)
    loaded = Recommender.load(model.save(tmp_path / name))
    np.testing.assert_allclose(loaded.score_histories(histories), model.score_histories(histories), atol=1e-6)
    assert loaded.log.epochs == 3


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_refit_replaces_the_cached_item_table(name, cycle):
    """Live scoring caches the input item table; a second fit must not score with the first's."""
    dataset, _ = cycle
    model = create_model(name, item_repr="id", epochs=2, valid_users=0, **FAST).fit(dataset)
    histories = [dataset.sequences().of(u) for u in (0, 5)]
    first = model.score_histories(histories)
    model.config.seed += 1
    model.fit(dataset)
    second = model.score_histories(histories)
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, model.score(np.array([0, 5])), rtol=1e-4, atol=1e-5)


def test_only_the_most_recent_max_len_items_are_read(cycle):
    dataset, _ = cycle
    model = create_model("sasrec", item_repr="id", max_len=4, epochs=2, valid_users=0, **FAST).fit(dataset)
    long = np.arange(N_CYCLE)[::-1]
    np.testing.assert_allclose(model.score_histories([long]), model.score_histories([long[-4:]]), atol=1e-6)


def test_long_histories_train_as_several_windows():
    examples = Examples()
    examples.add(np.arange(1, 12), max_len=4)  # 11 items -> 10 targets
    assert sum(len(t) for t in examples.targets) == 10
    assert all(len(x) <= 4 for x in examples.inputs)
    assert [list(t) for t in examples.targets][0] == [8, 9, 10, 11]  # newest window first


def test_back_to_back_repeats_collapse_and_one_item_users_are_counted():
    events = [("a", "x", 1), ("a", "x", 2), ("a", "y", 3), ("a", "x", 4), ("b", "y", 1), ("c", "x", 1), ("c", "y", 2)]
    dataset = make_dataset(events)
    histories = user_histories(dataset)
    x, y = (int(dataset.item_vocab.index(np.array([i], dtype=object))[0]) + 1 for i in "xy")
    assert [list(h) for h in histories] == [[x, y, x], [y], [x, y]]
    assert [len(h) for h in user_histories(dataset, collapse_repeats=False)] == [4, 1, 2]
    model = create_model("gru4rec", item_repr="id", epochs=2, valid_users=0, **FAST).fit(dataset)
    assert model.fit_stats["users_with_one_item"] == 1
    assert model.is_known(np.array([1])).all()  # scored from its one item, not the fallback


@pytest.mark.parametrize("mode", ["fused", "text"])
def test_items_absent_from_training_are_placed_by_their_text(mode, cycle, rng):
    dataset, _ = cycle
    train = dataset.subset(dataset.interactions["item"].to_numpy() != 0)  # item 0 never seen in training
    vectors = rng.normal(size=(dataset.n_items, 8)).astype(np.float32)
    vectors[0] = vectors[3]  # the unseen item reads exactly like item 3
    model = create_model("sasrec", item_repr=mode, epochs=3, valid_users=0, **FAST)
    model.set_item_vectors(vectors).fit(train)
    scores = model.score_histories([np.array([1, 2])])[0]
    assert np.isfinite(scores).all()
    if mode == "text":
        assert scores[0] == pytest.approx(scores[3], rel=1e-5)  # the same text, the same score
    else:
        assert scores[0] != 0.0  # no id part, but its text part scores it


def test_early_stopping_keeps_the_best_epoch(cycle):
    dataset, _ = cycle
    model = create_model("sasrec", item_repr="id", epochs=12, patience=2, valid_users=20, **FAST).fit(dataset)
    log = model.log
    assert len(log.valid_ndcg) == log.epochs and log.best_ndcg == max(log.valid_ndcg)
    assert log.valid_ndcg[log.best_epoch - 1] == log.best_ndcg
    assert model.fit_stats["validation_users"] == 20


def test_seeded_fits_are_identical(cycle):
    dataset, _ = cycle
    a = create_model("sasrec", item_repr="id", epochs=2, valid_users=0, **FAST).fit(dataset)
    b = create_model("sasrec", item_repr="id", epochs=2, valid_users=0, **FAST).fit(dataset)
    np.testing.assert_array_equal(a.score(np.arange(5)), b.score(np.arange(5)))


@pytest.mark.parametrize(
    "settings",
    [{"item_repr": "both"}, {"heads": 3}, {"dropout": 1.0}, {"max_len": 0}, {"negatives": -1}, {"learning_rate": 0}],
)
def test_bad_settings_are_errors(settings):
    with pytest.raises(ModelError):
        create_model("sasrec", **settings)


def test_bad_histories_and_data_are_errors(cycle):
    dataset, _ = cycle
    model = create_model("gru4rec", item_repr="id", epochs=1, valid_users=0, **FAST)
    with pytest.raises(ModelError, match="not fitted"):
        model.score_histories([np.array([1])])
    model.fit(dataset)
    with pytest.raises(ModelError, match="history 1: item indices must lie in 0..11"):
        model.score_histories([np.array([1]), np.array([3, 99])])
    empty = model.score_histories([np.array([], dtype=np.int64)])
    np.testing.assert_array_equal(empty[0], model.fallback_scores)  # nothing to read: popularity
    singles = make_dataset([("a", "x", 1), ("b", "y", 1)])
    with pytest.raises(ModelError, match="no user has two or more items"):
        create_model("sasrec", item_repr="id", **FAST).fit(singles)
