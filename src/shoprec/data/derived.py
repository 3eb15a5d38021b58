"""What a subset of the events keeps of everything else: side tables cut in time, and catalogue
columns derived from events recomputed from the events kept.

A split trains on the events before a cutoff. The reviews and search queries beside the events, and
any catalogue column a loader computed from the events themselves (Online Retail has no catalogue:
an item's launch date is its first sale and its price the median price it sold at), must obey the
same cutoff, or a model learns from the test period through them. :meth:`Dataset.subset` applies
both through this module:

- :class:`TimeCut` says where the subset ends in time: one global cutoff (temporal splits) and/or a
  cutoff per user (leave-last-out: the user's held-out event). Reviews and queries dated at or after
  the cutoff that applies to them are removed.
- :data:`DERIVATIONS` names the rules a loader may declare for an item column
  (``Dataset.derived``: column -> rule); every subset recomputes those columns from its own events.

>>> cut = TimeCut(at=1_700_000_000)
>>> train = dataset.subset(times < cut.at, cut=cut)   # doctest: +SKIP
>>> train.side_cut                                      # doctest: +SKIP
{'queries_removed_after_cutoff': 412, 'queries_removed_no_timestamp': 0, ...}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.data.vocab import Vocabulary
from shoprec.errors import DataError

NO_CUT = np.iinfo(np.int64).max
"""Per-user cutoff of a user with nothing held out: every row of theirs is kept."""


@dataclass(frozen=True)
class TimeCut:
    """Where a subset of the events ends in time, for the tables beside them.

    ``at``: global cutoff (unix seconds): every review and query at or after it is removed, and so
    is every row without a timestamp (it cannot be shown to precede the cutoff).
    ``per_user``: (n_users,) int64 cutoffs (:data:`NO_CUT` = none): a user's rows at or after
    their cutoff are removed, and their rows without a timestamp when they have a cutoff. Rows
    without a known user (anonymous queries, reviewers with no events) have no per-user cutoff and
    are kept, exactly as leave-last-out keeps other users' later events in training; they are
    counted as ``*_kept_no_user``.
    """

    at: int | None = None
    per_user: np.ndarray | None = None

    def keep(self, frame: pd.DataFrame, user_vocab: Vocabulary, table: str) -> tuple[np.ndarray, dict[str, int]]:
        """Mask of the rows of side table ``frame`` to keep, and counts of what was removed and why."""
        n = len(frame)
        times = (
            frame["timestamp"].to_numpy(dtype=np.float64, na_value=np.nan)
            if "timestamp" in frame
            else np.full(n, np.nan)
        )
        no_time = np.isnan(times)
        limit = np.full(n, np.inf)
        if self.at is not None:
            limit[:] = self.at
        no_user = np.zeros(n, dtype=bool)
        if self.per_user is not None:
            users = _user_index(frame, user_vocab)
            no_user = users < 0
            own = np.where(no_user, NO_CUT, self.per_user[np.maximum(users, 0)]).astype(np.float64)
            own[own >= NO_CUT] = np.inf
            limit = np.minimum(limit, own)
        has_limit = np.isfinite(limit)
        after = ~no_time & (times >= limit)
        undated = no_time & has_limit
        counts = {
            f"{table}_removed_after_cutoff": int(after.sum()),
            f"{table}_removed_no_timestamp": int(undated.sum()),
        }
        if self.per_user is not None:
            counts[f"{table}_kept_no_user"] = int((no_user & ~after & ~undated).sum())
        return ~(after | undated), counts


def _user_index(frame: pd.DataFrame, user_vocab: Vocabulary) -> np.ndarray:
    """User index of each side-table row; -1 where the row names no user or one without events."""
    if "user_id" not in frame:
        return np.full(len(frame), -1, dtype=np.int64)
    ids = frame["user_id"].astype("string")
    index = np.asarray(user_vocab.index(ids.fillna("")), dtype=np.int64)
    return np.where(ids.isna().to_numpy(), -1, index)


def cut_side_tables(
    tables: dict[str, pd.DataFrame | None], user_vocab: Vocabulary, cut: TimeCut | None
) -> tuple[dict[str, pd.DataFrame | None], dict[str, int]]:
    """Each side table with the rows past ``cut`` removed (None = kept whole), and the counts."""
    if cut is None:
        return dict(tables), {}
    out: dict[str, pd.DataFrame | None] = {}
    counts: dict[str, int] = {}
    for table, frame in tables.items():
        if frame is None:
            out[table] = None
            continue
        keep, removed = cut.keep(frame, user_vocab, table)
        out[table] = frame[keep].reset_index(drop=True)
        counts.update(removed)
    return out, counts


# ---------------------------------------------------------------------- derived catalogue columns
def first_event_time(interactions: pd.DataFrame, n_items: int) -> pd.Series:
    """Time of each item's first event (Int64 unix seconds; NA for an item without events)."""
    first = np.full(n_items, NO_CUT, dtype=np.int64)
    np.minimum.at(first, interactions["item"].to_numpy(), interactions["timestamp"].to_numpy(dtype=np.int64))
    return pd.Series(first, dtype="Int64").mask(first == NO_CUT)


def median_event_price(interactions: pd.DataFrame, n_items: int) -> pd.Series:
    """Median unit price paid per item (the interactions' ``price`` column; NaN without events)."""
    if "price" not in interactions:
        raise DataError(
            "the catalogue's price is declared as derived from events, but the interactions have no price",
            file="interactions",
            column="price",
            fix="Keep each event's unit price in an interactions column named 'price'",
        )
    known = interactions[interactions["price"].notna()]
    median = known.groupby("item", observed=True)["price"].median()
    return pd.Series(median.reindex(np.arange(n_items)).to_numpy(dtype=np.float64))


DERIVATIONS: dict[str, Callable[[pd.DataFrame, int], pd.Series]] = {
    "first_event_time": first_event_time,
    "median_event_price": median_event_price,
}
"""Rules a loader may declare for an item column; each maps (interactions, n_items) to one value
per item index, computed from the events of the dataset at hand only."""


def check_derived(derived: dict[str, str]) -> None:
    """Raise a :class:`DataError` naming an unknown derivation rule."""
    for column, rule in derived.items():
        if rule not in DERIVATIONS:
            raise DataError(
                f"unknown derivation rule {rule!r} for item column {column!r}",
                file="items",
                column=column,
                fix=f"Use one of {', '.join(DERIVATIONS)}",
            )


def derive_items(items: pd.DataFrame, interactions: pd.DataFrame, derived: dict[str, str]) -> pd.DataFrame:
    """``items`` with every declared column recomputed from ``interactions`` (item indices = rows)."""
    if not derived:
        return items
    check_derived(derived)
    return items.assign(
        **{
            column: DERIVATIONS[rule](interactions, len(items)).set_axis(items.index)
            for column, rule in derived.items()
        }
    )
