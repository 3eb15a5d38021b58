"""Evaluation splits: hand-checked tiny cases plus hypothesis properties on random event logs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprec.errors import DataError
from shoprec.eval import event_roles, leave_last_out, temporal_split
from shoprec.eval.splits import TEST, TRAIN, VALID
from shoprec.timeunits import DAY
from tinydata import make_dataset

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

event_logs = st.lists(
    st.tuples(
        st.sampled_from([f"u{i}" for i in range(6)]),
        st.sampled_from([f"i{i}" for i in range(8)]),
        st.integers(0, 60 * DAY),
        st.sampled_from(["view", "purchase"]),
    ),
    min_size=1,
    max_size=60,
)


def rows(m) -> dict[int, set[int]]:
    """CSR -> {row: set of columns} for rows with entries."""
    return {
        r: set(m.indices[m.indptr[r] : m.indptr[r + 1]].tolist())
        for r in range(m.shape[0])
        if m.indptr[r + 1] > m.indptr[r]
    }


def train_items(split) -> dict[int, set[int]]:
    return rows(split.train.matrix("binary"))


# ---------------------------------------------------------------- leave-last-out, known answers
def test_leave_last_out_holds_out_last_and_second_last_and_counts_short_users():
    ds = make_dataset(
        [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "w", 4), ("b", "x", 5), ("b", "y", 6), ("c", "z", 1)]
    )
    a, b = ds.user_vocab.index(["a", "b"])
    x, y, z, w = ds.item_vocab.index(["x", "y", "z", "w"])
    test = leave_last_out(ds)
    assert rows(test.truth) == {a: {w}}
    assert train_items(test)[a] == {x, y, z} and train_items(test)[b] == {x, y}
    assert test.info["users_evaluated"] == 1
    assert test.info["users_skipped"] == {"fewer than 3 distinct items": 2}
    assert test.exclude_seen and test.protocol == "leave-last-out" and test.stage == "test"
    valid = leave_last_out(ds, stage="valid")
    assert rows(valid.truth) == {a: {z}}
    assert train_items(valid)[a] == {x, y}
    assert valid.train.item_vocab == ds.item_vocab and valid.train.user_vocab == ds.user_vocab


def test_leave_last_out_orders_by_time_not_file_order_and_counts_unreachable_repeats():
    ds = make_dataset([("a", "late", 30), ("a", "x", 10), ("a", "early", 5), ("a", "x", 20)])
    split = leave_last_out(ds)
    assert rows(split.truth) == {0: {ds.item_vocab.index(["late"])[0]}}
    repeat = leave_last_out(make_dataset([("a", "x", 1), ("a", "y", 2), ("a", "x", 3)]), distinct=False)
    assert repeat.info["truth_already_in_train"] == 1


def test_leave_last_out_rejects_impossible_settings():
    ds = make_dataset([("a", "x", 1), ("a", "y", 2)])
    with pytest.raises(DataError, match="min_events"):
        leave_last_out(ds)
    with pytest.raises(ValueError, match="min_events >= 3"):
        leave_last_out(ds, stage="valid", min_events=2)
    with pytest.raises(ValueError, match="stage"):
        leave_last_out(ds, stage="dev")
    assert leave_last_out(ds, min_events=2).info["users_evaluated"] == 1


# ---------------------------------------------------------------- leave-last-out, properties
@PROPERTY
@given(event_logs, st.integers(2, 5))
def test_event_roles_partition_every_event(events, min_events):
    ds = make_dataset(events)
    roles = event_roles(ds, min_events, distinct=False)
    lengths = ds.sequences().lengths()
    eligible = lengths >= min_events
    users = ds.interactions["user"].to_numpy()
    for role in (TEST, VALID):
        # exactly one event of each held-out role per eligible user, none for the others
        assert np.array_equal(np.bincount(users[roles == role], minlength=ds.n_users), eligible.astype(int))
    assert set(np.unique(roles)) <= {TRAIN, VALID, TEST}
    ends = ds.sequences().indptr[1:][eligible]
    assert (roles[ends - 1] == TEST).all() and (roles[ends - 2] == VALID).all()


@PROPERTY
@given(event_logs)
def test_leave_last_out_test_and_valid_splits_tile_the_data(events):
    ds = make_dataset(events)
    eligible = int((ds.sequences().lengths() >= 3).sum())
    if eligible == 0:
        with pytest.raises(DataError):
            leave_last_out(ds)
        return
    test, valid = leave_last_out(ds, distinct=False), leave_last_out(ds, stage="valid", distinct=False)
    assert np.array_equal(np.diff(test.truth.indptr)[test.users], np.ones(eligible))
    assert np.array_equal(test.users, valid.users)
    # train(valid) + one validation event + one test event per user == every event, once
    assert len(valid.train) + 2 * eligible == len(ds) and len(test.train) + eligible == len(ds)
    seq = ds.sequences()
    for u in test.users:
        assert rows(test.truth)[u] == {seq.of(u)[-1]} and rows(valid.truth)[u] == {seq.of(u)[-2]}
    # nobody evaluated without training history
    assert (np.bincount(valid.train.interactions["user"], minlength=ds.n_users)[valid.users] > 0).all()
    assert test.info["users_evaluated"] + sum(test.info["users_skipped"].values()) == ds.n_users


# ---------------------------------------------------------------- temporal, known answers
def temporal_log():
    d = DAY
    return make_dataset(
        [
            ("a", "x", 1 * d, "purchase"),
            ("a", "y", 2 * d, "view"),
            ("b", "z", 3 * d, "purchase"),
            ("a", "x", 40 * d, "purchase"),  # repeat purchase in the test window
            ("a", "w", 41 * d, "purchase"),
            ("a", "v", 41 * d, "view"),  # a view is not a purchase: not truth
            ("b", "z", 42 * d, "purchase"),  # b only re-buys
            ("c", "x", 43 * d, "purchase"),  # cold user
            ("b", "v", 50 * d, "view"),
        ]
    )


def test_temporal_repeat_keeps_rebuys_and_skips_cold_users():
    ds = temporal_log()
    a, b = ds.user_vocab.index(["a", "b"])
    x, z, w = ds.item_vocab.index(["x", "z", "w"])
    split = temporal_split(ds, test_days=15)
    assert split.info["cutoff"] == 35 * DAY
    assert rows(split.truth) == {a: {x, w}, b: {z}}
    assert split.info["users_skipped"] == {"no training history (cold start)": 1}
    assert not split.exclude_seen and split.variant == "repeat"
    assert len(split.train) == 3


def test_temporal_discovery_drops_rebuys_and_counts_emptied_users():
    ds = temporal_log()
    a, w = ds.user_vocab.index(["a"])[0], ds.item_vocab.index(["w"])[0]
    split = temporal_split(ds, test_days=15, variant="discovery")
    assert rows(split.truth) == {a: {w}}
    assert split.exclude_seen
    assert split.info["users_skipped"] == {
        "no training history (cold start)": 1,
        "only items already in training (discovery)": 1,
    }
    assert split.info["repeat_items_removed"] == 2


def test_temporal_valid_stage_moves_the_window_back():
    ds = temporal_log()
    split = temporal_split(ds, test_days=8, stage="valid", valid_days=40)
    # test cutoff = day 50 - 8 = day 42; validation window = [day 2, day 42); b is cold before day 2
    assert (split.info["cutoff"], split.info["window_end"]) == (2 * DAY, 42 * DAY)
    assert rows(split.truth) == {ds.user_vocab.index(["a"])[0]: set(ds.item_vocab.index(["x", "w"]))}
    assert split.info["users_skipped"] == {"no training history (cold start)": 1}
    assert len(split.train) == 1 and split.info["events_after_window"] == 3


def test_temporal_errors_say_what_to_change():
    ds = temporal_log()
    with pytest.raises(DataError, match="no cart events.*purchase: 4"):
        temporal_split(ds, test_days=15, events=("cart",))
    with pytest.raises(DataError, match="nothing to train on"):
        temporal_split(ds, test_days=100)
    with pytest.raises(ValueError, match="variant"):
        temporal_split(ds, variant="new")
    with pytest.raises(ValueError, match="events"):
        temporal_split(ds, events=("buy",))


# ---------------------------------------------------------------- temporal, properties
@PROPERTY
@given(event_logs, st.integers(1, 30), st.sampled_from(["repeat", "discovery"]), st.sampled_from(["test", "valid"]))
def test_temporal_split_respects_time_and_history(events, days, variant, stage):
    ds = make_dataset(events)
    try:
        split = temporal_split(ds, test_days=days, variant=variant, stage=stage)
    except DataError:
        return  # empty window or nothing before it: reported, never a silent empty split
    start, end = split.info["cutoff"], split.info["window_end"]
    assert split.train.interactions["timestamp"].max() < start
    frame = ds.interactions
    late = frame[(frame["timestamp"] >= start) & (frame["event"] == "purchase")]
    if end is not None:
        late = late[late["timestamp"] < end]
    bought = set(zip(late["user"], late["item"], strict=True))
    history = train_items(split)
    for u, items in rows(split.truth).items():
        assert u in history  # no user without training history is evaluated
        assert all((u, i) in bought for i in items)  # truth is at/after the cutoff (and in the window)
        if variant == "discovery":
            assert not items & history[u]
    assert split.exclude_seen == (variant == "discovery")
    assert len(split.users) == split.info["users_evaluated"] > 0


@PROPERTY
@given(event_logs, st.sampled_from(["test", "valid"]))
def test_distinct_targets_are_new_items_and_training_precedes_them(events, stage):
    ds = make_dataset(events)
    distinct = np.array([len(set(ds.sequences().of(u))) for u in range(ds.n_users)])
    if not (distinct >= 3).any():
        with pytest.raises(DataError):
            leave_last_out(ds, stage=stage)
        return
    split = leave_last_out(ds, stage=stage)
    assert np.array_equal(split.users, np.flatnonzero(distinct >= 3))
    assert split.info["truth_already_in_train"] == 0
    train_seen = split.train.matrix()
    train_seq = split.train.sequences()
    full_seq = ds.sequences()
    for u in split.users:
        (target,) = split.truth[u].indices
        assert target not in train_seen[u].indices
        # training is a prefix of the user's history: everything before the target first appeared
        n = len(train_seq.of(u))
        assert np.array_equal(train_seq.of(u), full_seq.of(u)[:n])
        assert full_seq.of(u)[n] == target


def test_distinct_skips_repeat_views_as_targets():
    # u0 views a, b, c, then views b again: the test item is c (the last new item), not b
    ds = make_dataset([("u0", "a", 1), ("u0", "b", 2), ("u0", "c", 3), ("u0", "b", 4)])
    split = leave_last_out(ds)
    assert ds.item_vocab.ids(split.truth[0].indices).tolist() == ["c"]
    assert len(split.train) == 2 and split.info["held_out_events"] == 2
    raw = leave_last_out(ds, distinct=False)
    assert ds.item_vocab.ids(raw.truth[0].indices).tolist() == ["b"]
    assert raw.info["truth_already_in_train"] == 1
