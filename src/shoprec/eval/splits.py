"""Evaluation protocols: which events a model may learn from and which items it must find.

Two protocols, both ranking the full catalogue:

- :func:`leave_last_out`: each user's last event is the test item, the second last the
  validation item (the protocol of SASRec, S3-Rec and most sequential papers).
- :func:`temporal_split`: one global cutoff date; the model learns from everything before it and
  must find what users bought after it. ``repeat`` counts re-purchases (replenishment matters in
  shops), ``discovery`` only items new to the user.

Every user who is not evaluated is counted with the reason in :attr:`Split.info`.

Reviews and search queries are cut exactly as the events (:class:`shoprec.data.derived.TimeCut`):
leave-last-out removes a user's rows at or after their held-out event's time, a temporal split every
row at or after the cutoff (the validation stage: the validation cutoff); rows without a timestamp
are removed wherever a cut applies to them. Catalogue columns derived from events (Online Retail's
first sale and median price) are recomputed from the training events. What was removed is counted
in ``info`` (``reviews_removed_after_cutoff``, ``queries_removed_no_timestamp``, ...).

>>> split = leave_last_out(dataset)                          # doctest: +SKIP
>>> split.info["users_evaluated"], split.info["users_skipped"]  # doctest: +SKIP
(22332, {})
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.data.derived import NO_CUT, TimeCut
from shoprec.data.schema import EVENT_TYPES
from shoprec.errors import DataError
from shoprec.timeunits import DAY

TRAIN, VALID, TEST = 0, 1, 2
"""Roles of an event in :func:`event_roles`."""


@dataclass
class Split:
    """Training data plus held-out items for one protocol and stage."""

    train: Dataset
    """What models are fitted on: a :meth:`Dataset.subset` of the full data (same vocabularies)."""
    truth: sp.csr_matrix
    """(n_users, n_items) held-out items (value 1); evaluated users are the rows with entries."""
    protocol: str
    """``leave-last-out`` or ``temporal``."""
    variant: str
    """``""`` for leave-last-out; ``repeat`` or ``discovery`` for temporal."""
    stage: str
    """``test`` or ``valid``."""
    exclude_seen: bool
    """Whether recommendations must drop the user's training items."""
    info: dict = field(default_factory=dict)
    """Counts: users evaluated, users skipped by reason, truth items, cutoffs, and the reviews and
    queries the cut removed (``{table}_removed_after_cutoff``, ``{table}_removed_no_timestamp``;
    leave-last-out also ``{table}_kept_no_user``)."""

    @property
    def users(self) -> np.ndarray:
        """Indices of the evaluated users (rows of :attr:`truth` with at least one item)."""
        return np.flatnonzero(np.diff(self.truth.indptr) > 0)

    @property
    def name(self) -> str:
        """Short label such as ``temporal/discovery (test)``."""
        return f"{self.protocol}{'/' + self.variant if self.variant else ''} ({self.stage})"

    def __repr__(self) -> str:
        return f"Split({self.name}: {len(self.users):,} users, {len(self.train):,} training events)"


def _target_positions(ds: Dataset, min_events: int, distinct: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of each eligible user's validation and test targets, and the users.

    With ``distinct`` the targets are the user's last two *first-time* items (a repeat view or
    purchase of an item already seen is never a target); otherwise the last two events.
    """
    users = ds.interactions["user"].to_numpy()
    if distinct:
        pairs = users.astype(np.int64) * ds.n_items + ds.interactions["item"].to_numpy()
        candidates = np.flatnonzero(~pd.Series(pairs).duplicated().to_numpy())
    else:
        candidates = np.arange(len(ds))
    counts = np.bincount(users[candidates], minlength=ds.n_users)
    ends = np.cumsum(counts)
    eligible = np.flatnonzero(counts >= min_events)
    return candidates[ends[eligible] - 2], candidates[ends[eligible] - 1], eligible


def event_roles(ds: Dataset, min_events: int = 3, distinct: bool = True) -> np.ndarray:
    """Role of every interaction row under leave-last-out: TRAIN (0), VALID (1) or TEST (2).

    For users with at least ``min_events`` (distinct, when ``distinct``) items, the event that
    introduces the test item and everything after it is TEST; the event that introduces the
    validation item up to the test item is VALID; all earlier events are TRAIN. Users with shorter
    histories are TRAIN throughout. Without ``distinct`` this is the classic last / second-last
    event split.
    """
    if min_events < 2:
        raise ValueError(f"min_events must be at least 2 (one event to learn from, one to test), got {min_events}")
    valid_pos, test_pos, eligible = _target_positions(ds, min_events, distinct)
    indptr = ds.sequences().indptr
    roles = np.full(len(ds), TRAIN, dtype=np.int8)
    marks = np.zeros(len(ds) + 1, dtype=np.int8)
    np.add.at(marks, valid_pos, 1)
    np.add.at(marks, test_pos, 1)
    np.add.at(marks, indptr[eligible + 1], -2)
    roles[:] = np.cumsum(marks[:-1])
    return roles


def leave_last_out(ds: Dataset, stage: str = "test", min_events: int = 3, distinct: bool = True) -> Split:
    """Hold out each user's last item (``stage="test"``) or second last (``stage="valid"``).

    Train on everything the user did before the held-out item first appeared (users with fewer
    than ``min_events`` items stay in training only, counted in ``info``); rank the full
    catalogue minus the user's training items. With ``distinct`` (the default) the held-out items
    are the user's last *new* items, so a repeat view of something already seen is never the
    answer; on data without repeats (such as the Amazon 5-core sets) both settings agree.
    """
    _check_stage(stage)
    if stage == "valid" and min_events < 3:
        raise ValueError("stage='valid' needs min_events >= 3: a training, a validation and a test event per user")
    roles = event_roles(ds, min_events, distinct)
    target = TEST if stage == "test" else VALID
    valid_pos, test_pos, eligible = _target_positions(ds, min_events, distinct)
    held = test_pos if stage == "test" else valid_pos
    users = ds.interactions["user"].to_numpy()[held]
    items = ds.interactions["item"].to_numpy()[held]
    held_times = np.full(ds.n_users, NO_CUT, dtype=np.int64)
    held_times[users] = ds.interactions["timestamp"].to_numpy()[held]
    train = ds.subset(roles < target, name=ds.name, cut=TimeCut(per_user=held_times))
    truth = _binary_csr(users, items, ds.n_users, ds.n_items)
    lengths = ds.sequences().lengths()
    unit = "distinct items" if distinct else "events"
    skipped = {f"fewer than {min_events} {unit}": int((lengths > 0).sum()) - len(eligible)}
    skipped["no events"] = int((lengths == 0).sum())
    if len(users) == 0:
        raise DataError(
            f"no user has {min_events} or more {unit}, so leave-last-out has nobody to evaluate",
            file=f"dataset '{ds.name}'",
            fix="Lower min_events or use a dataset with longer user histories",
        )
    seen_before = np.asarray(train.matrix("binary")[users, items]).ravel() > 0
    info = {
        "users_evaluated": len(users),
        "users_skipped": {reason: n for reason, n in skipped.items() if n},
        "truth_items": int(truth.nnz),
        "train_events": len(train),
        "min_events": min_events,
        "distinct_targets": distinct,
        "held_out_events": int((roles >= target).sum()),
        # With exclude_seen these targets cannot be recommended: a ceiling below 1 on every metric.
        "truth_already_in_train": int(seen_before.sum()),
        **train.side_cut,
    }
    return Split(train, truth, "leave-last-out", "", stage, True, info)


def temporal_split(
    ds: Dataset,
    test_days: float = 30,
    variant: str = "repeat",
    stage: str = "test",
    events: tuple[str, ...] = ("purchase",),
    valid_days: float | None = None,
) -> Split:
    """Global time cutoff: learn from events before it, predict ``events`` at or after it.

    The test window is the last ``test_days`` days (cutoff = newest timestamp - test_days);
    ``stage="valid"`` moves the window back to ``[cutoff - valid_days, cutoff)`` (``valid_days``
    defaults to ``test_days``) and trains before it. Training keeps all event types. Only users
    with training history are evaluated; cold users are counted in ``info``.

    Variants: ``repeat`` keeps re-bought items in the truth and lets models recommend seen items
    (``exclude_seen=False``); ``discovery`` removes the user's training items from the truth
    (users left with nothing are counted) and excludes seen items when recommending.
    """
    _check_stage(stage)
    if variant not in ("repeat", "discovery"):
        raise ValueError(f"variant must be 'repeat' or 'discovery', not {variant!r}")
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown or not events:
        raise ValueError(f"events must be a non-empty tuple of {', '.join(EVENT_TYPES)}; got {events!r}")
    valid_days = test_days if valid_days is None else valid_days
    frame = ds.interactions
    times = frame["timestamp"].to_numpy()
    start, end = _window(int(times.max()), test_days, valid_days, stage)
    before = times < start
    in_window = (times >= start) & (times < end if end is not None else True)
    targets = in_window & frame["event"].isin(events).to_numpy()
    _check_window(ds, before, in_window, targets, events, start)
    train = ds.subset(before, name=ds.name, cut=TimeCut(at=start))
    users, items = frame["user"].to_numpy()[targets], frame["item"].to_numpy()[targets]
    has_history = np.bincount(frame["user"].to_numpy()[before], minlength=ds.n_users) > 0
    warm = has_history[users]
    truth = _binary_csr(users[warm], items[warm], ds.n_users, ds.n_items)
    skipped = {"no training history (cold start)": len(np.unique(users[~warm]))}
    info = {"truth_events": int(targets.sum())}
    if variant == "discovery":
        had = _rows_with_items(truth)
        truth, info["repeat_items_removed"] = _drop_seen(truth, train.matrix("binary"))
        skipped["only items already in training (discovery)"] = had - _rows_with_items(truth)
    split = Split(train, truth, "temporal", variant, stage, variant == "discovery")
    split.info = {
        "users_evaluated": len(split.users),
        "users_skipped": {reason: n for reason, n in skipped.items() if n},
        "truth_items": int(truth.nnz),
        "train_events": len(train),
        "events_after_window": int((times >= end).sum()) if end is not None else 0,
        **info,
        **train.side_cut,
        "events": list(events),
        "cutoff": start,
        "cutoff_date": _iso(start),
        "window_end": end,
        "window_end_date": _iso(end) if end is not None else None,
    }
    if not len(split.users):
        raise DataError(
            f"every user with {'/'.join(events)} events after {_iso(start)} is cold or has only repeat items",
            file=f"dataset '{ds.name}'",
            fix="Use a longer test window, the 'repeat' variant, or leave_last_out",
        )
    return split


def _check_stage(stage: str) -> None:
    if stage not in ("test", "valid"):
        raise ValueError(f"stage must be 'test' or 'valid', not {stage!r}")


def _window(newest: int, test_days: float, valid_days: float, stage: str) -> tuple[int, int | None]:
    """``[start, end)`` of the held-out window in unix seconds (``end`` None = up to the newest event)."""
    if test_days <= 0 or valid_days <= 0:
        raise ValueError(f"test_days and valid_days must be positive, got {test_days} and {valid_days}")
    cutoff = newest - round(test_days * DAY)
    return (cutoff, None) if stage == "test" else (cutoff - round(valid_days * DAY), cutoff)


def _drop_seen(truth: sp.csr_matrix, seen: sp.csr_matrix) -> tuple[sp.csr_matrix, int]:
    """Truth without the user's training items, and how many entries that removed."""
    repeats = truth.multiply(seen)
    kept = sp.csr_matrix(truth - repeats)
    kept.eliminate_zeros()
    return kept, int(repeats.nnz)


def _check_window(
    ds: Dataset, before: np.ndarray, in_window: np.ndarray, targets: np.ndarray, events: tuple[str, ...], start: int
) -> None:
    """Fail early, with the fix, when a temporal split would be empty."""
    where = f"dataset '{ds.name}'"
    if not before.any():
        raise DataError(
            f"no events before the cutoff {_iso(start)}: nothing to train on",
            file=where,
            fix="Use a shorter test_days/valid_days window",
        )
    if not targets.any():
        present = ds.interactions["event"][in_window].value_counts()
        found = ", ".join(f"{k}: {v}" for k, v in present.items() if v) or "none"
        raise DataError(
            f"no {'/'.join(events)} events from {_iso(start)} on (events in the window: {found})",
            file=where,
            fix="Pass events=(...) with types the data has, or widen the window",
        )


def _binary_csr(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _rows_with_items(m: sp.csr_matrix) -> int:
    return int((np.diff(m.indptr) > 0).sum())


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
