"""The in-memory dataset every model and protocol works on.

A :class:`Dataset` holds the catalog, the events mapped to integer indices, id vocabularies for
users and items, and derived views: a user-item CSR matrix, per-user time-ordered sequences and
purchase baskets. It saves as Parquet files plus a JSON schema (no pickle).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec import __version__
from shoprec.data.derived import TimeCut, check_derived, cut_side_tables, derive_items
from shoprec.data.report import IngestReport
from shoprec.data.schema import DEFAULT_EVENT_WEIGHTS, EVENT_TYPES
from shoprec.data.validate import check_events, drop_unusable
from shoprec.data.vocab import Vocabulary
from shoprec.errors import DataError

FORMAT_VERSION = 1
EVENT_CODES = {name: code for code, name in enumerate(EVENT_TYPES)}


@dataclass(frozen=True)
class Sequences:
    """Per-user time-ordered item sequences in CSR layout: user ``u`` owns
    ``items[indptr[u]:indptr[u + 1]]`` (oldest first)."""

    indptr: np.ndarray  # (n_users + 1,) int64
    items: np.ndarray  # (n_events,) int32
    timestamps: np.ndarray  # (n_events,) int64

    def of(self, user: int) -> np.ndarray:
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)


@dataclass(frozen=True)
class Baskets:
    """Baskets (orders or sessions) in CSR layout: basket ``b`` holds
    ``items[indptr[b]:indptr[b + 1]]``, bought by ``user[b]`` at ``timestamp[b]``."""

    indptr: np.ndarray  # (n_baskets + 1,) int64
    items: np.ndarray  # (n_entries,) int32
    user: np.ndarray  # (n_baskets,) int32
    timestamp: np.ndarray  # (n_baskets,) int64
    basket_id: np.ndarray  # (n_baskets,) object

    def __len__(self) -> int:
        return len(self.user)

    def of(self, basket: int) -> np.ndarray:
        return self.items[self.indptr[basket] : self.indptr[basket + 1]]

    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)


class Dataset:
    """Catalog + events + optional reviews and search logs, indexed for models.

    Build one with :meth:`Dataset.build` from cleaned tables (see :mod:`shoprec.data.io` for
    loading files), or :meth:`Dataset.load` from a folder written by :meth:`save`.

    Attributes:
        items: catalog, row ``i`` describes item index ``i``.
        interactions: columns ``user``, ``item`` (int32 indices), ``event``, ``value``,
            ``timestamp`` (unix seconds), ``session_id``, ``quantity``; sorted by user, then time.
        user_vocab, item_vocab: external id <-> index.
        reviews, queries: optional tables; ``item`` holds the item index (-1 where none).
        report: what ingestion kept and dropped.
        derived: item columns computed from the events (column -> rule of
            :data:`shoprec.data.derived.DERIVATIONS`, e.g. ``{"created_at": "first_event_time"}``);
            every :meth:`subset` recomputes them from the events it keeps.
        side_cut: what the :meth:`subset` that made this dataset removed from reviews and queries
            (counts by table and reason; empty otherwise).
    """

    def __init__(
        self,
        items: pd.DataFrame,
        interactions: pd.DataFrame,
        user_vocab: Vocabulary,
        item_vocab: Vocabulary,
        reviews: pd.DataFrame | None = None,
        queries: pd.DataFrame | None = None,
        report: IngestReport | None = None,
        name: str = "dataset",
        derived: dict[str, str] | None = None,
    ) -> None:
        self.items = items
        self.interactions = interactions
        self.user_vocab = user_vocab
        self.item_vocab = item_vocab
        self.reviews = reviews
        self.queries = queries
        self.report = report or IngestReport()
        self.name = name
        self.derived = dict(derived or {})
        check_derived(self.derived)
        self.side_cut: dict[str, int] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        items: pd.DataFrame,
        interactions: pd.DataFrame,
        reviews: pd.DataFrame | None = None,
        queries: pd.DataFrame | None = None,
        report: IngestReport | None = None,
        name: str = "dataset",
        default_event: str = "purchase",
        derived: dict[str, str] | None = None,
    ) -> Dataset:
        """Index cleaned tables (as returned by :mod:`shoprec.data.validate`).

        Interactions whose item is not in the catalog, whose user id is empty or whose event type
        is unknown are dropped and counted in ``report``. Item columns named in ``derived`` are
        computed from the kept interactions (see :attr:`derived`).
        """
        report = report or IngestReport()
        item_vocab = Vocabulary(items["item_id"])
        frame = interactions.reset_index(drop=True)
        report.rows_read.setdefault("interactions", len(frame))
        if "event" not in frame.columns:
            frame = frame.assign(event=default_event)
            report.note(f"interactions have no 'event' column: every row is taken as '{default_event}'")
        if "timestamp" not in frame.columns:
            frame = frame.assign(timestamp=np.arange(len(frame), dtype=np.int64))
            report.note("interactions have no 'timestamp' column: file order is used as time")
        item_idx = item_vocab.index(frame["item_id"].fillna(""))
        frame = drop_unusable(
            frame.assign(_item=item_idx),
            "interactions",
            {
                "empty user_id": frame["user_id"].isna(),
                "empty item_id": frame["item_id"].isna(),
                "item not in the catalog": pd.Series(item_idx < 0, index=frame.index),
                "unknown event type (use view, click, cart, purchase or rating)": check_events(
                    frame["event"].fillna("")
                ),
                "empty timestamp": frame["timestamp"].isna(),
            },
            report,
        )
        if len(frame) == 0:
            raise DataError(
                "no usable interactions remain after dropping unusable rows ("
                + "; ".join(f"{r}: {n}" for (t, r), n in report.dropped.items() if t == "interactions")
                + ")",
                file="interactions",
                fix="Check that interaction item ids match the catalog's item_id values",
            )
        user_vocab = Vocabulary(pd.unique(frame["user_id"].to_numpy(dtype=object)))
        table = pd.DataFrame(
            {
                "user": user_vocab.index(frame["user_id"]).astype(np.int32),
                "item": frame["_item"].to_numpy(dtype=np.int32),
                "event": pd.Categorical(frame["event"].astype(str), categories=list(EVENT_TYPES)),
                "value": _column(frame, "value", 1.0, np.float32),
                "timestamp": frame["timestamp"].to_numpy(dtype=np.int64),
                "session_id": frame["session_id"].astype("string")
                if "session_id" in frame
                else pd.Series(pd.NA, index=frame.index, dtype="string"),
                "quantity": _column(frame, "quantity", 1.0, np.float32),
            }
        )
        if "price" in frame:  # the unit price paid, kept where a catalogue price is derived from events
            table["price"] = frame["price"].astype("float64").to_numpy()
        if "platform" in frame:  # where the shopper was (web, app, ...): trimmed, lower-cased, "" as missing
            platform = frame["platform"].astype("string").str.strip().str.lower()
            table["platform"] = platform.mask(platform == "").to_numpy()
        tiebreak = _column(frame, "position", 0.0, np.float64)
        order = np.lexsort((np.arange(len(table)), tiebreak, table["timestamp"].to_numpy(), table["user"].to_numpy()))
        table = table.iloc[order].reset_index(drop=True)
        report.rows_kept["interactions"] = len(table)
        items = derive_items(items.reset_index(drop=True), table, derived or {})
        return cls(
            items,
            table,
            user_vocab,
            item_vocab,
            reviews=_index_side_table(reviews, "reviews", item_vocab, report, item_required=True),
            queries=_index_side_table(queries, "queries", item_vocab, report, item_required=False),
            report=report,
            name=name,
            derived=derived,
        )

    # ------------------------------------------------------------------ basic facts
    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    def __len__(self) -> int:
        return len(self.interactions)

    def __repr__(self) -> str:
        return f"Dataset({self.name!r}: {self.n_users:,} users, {self.n_items:,} items, {len(self):,} events)"

    def describe(self) -> dict:
        """Counts worth printing: users, items, events by type, density, sequence lengths."""
        lengths = self.sequences().lengths()
        events = self.interactions["event"].value_counts()
        return {
            "users": self.n_users,
            "items": self.n_items,
            "items_with_events": int(self.interactions["item"].nunique()),
            "interactions": len(self),
            "events": {str(k): int(v) for k, v in events.items() if v},
            "density": len(self) / max(1, self.n_users * self.n_items),
            "events_per_user": {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())},
            "baskets": len(self.baskets()),
            "reviews": 0 if self.reviews is None else len(self.reviews),
            "queries": 0 if self.queries is None else len(self.queries),
        }

    # ------------------------------------------------------------------ derived views
    def matrix(self, weighting: str = "binary", event_weights: dict[str, float] | None = None) -> sp.csr_matrix:
        """User-item matrix (n_users, n_items), float32 CSR.

        ``binary``: 1 where the user has any event with the item; ``count``: number of events;
        ``weighted``: sum of per-event-type weights (purchase > cart > click > view).
        """
        if weighting not in ("binary", "count", "weighted"):
            raise ValueError(f"weighting must be 'binary', 'count' or 'weighted', not {weighting!r}")
        if weighting == "weighted":
            weights = {**DEFAULT_EVENT_WEIGHTS, **(event_weights or {})}
            lookup = np.array([weights[e] for e in EVENT_TYPES], dtype=np.float32)
            data = lookup[self.interactions["event"].cat.codes.to_numpy()]
        else:
            data = np.ones(len(self), dtype=np.float32)
        m = sp.csr_matrix(
            (data, (self.interactions["user"].to_numpy(), self.interactions["item"].to_numpy())),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        if weighting == "binary":
            m.data[:] = 1.0
        return m

    @cached_property
    def _sequences(self) -> Sequences:
        users = self.interactions["user"].to_numpy()
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=self.n_users), out=indptr[1:])
        return Sequences(
            indptr,
            self.interactions["item"].to_numpy(dtype=np.int32),
            self.interactions["timestamp"].to_numpy(dtype=np.int64),
        )

    def sequences(self) -> Sequences:
        """Per-user item sequences, oldest first (all event types)."""
        return self._sequences

    def baskets(self, events: tuple[str, ...] = ("purchase",)) -> Baskets:
        """Events of the given types grouped by ``session_id`` (an order or session).

        Rows without a session id form no basket. Baskets are ordered by time.
        """
        frame = self.interactions
        frame = frame[frame["event"].isin(events) & frame["session_id"].notna()]
        if len(frame) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Baskets(
                np.zeros(1, np.int64), empty.astype(np.int32), empty.astype(np.int32), empty, np.zeros(0, object)
            )
        codes, uniques = pd.factorize(frame["session_id"].to_numpy(dtype=object))
        first_time = pd.Series(frame["timestamp"].to_numpy()).groupby(codes).transform("min").to_numpy()
        order = np.lexsort((frame["item"].to_numpy(), codes, first_time))
        codes, items = codes[order], frame["item"].to_numpy(dtype=np.int32)[order]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        indptr = np.r_[starts, len(codes)].astype(np.int64)
        return Baskets(
            indptr,
            items,
            frame["user"].to_numpy(dtype=np.int32)[order][starts],
            first_time[order][starts].astype(np.int64),
            uniques[codes[starts]],
        )

    def subset(self, mask: np.ndarray | pd.Series, name: str | None = None, cut: TimeCut | None = None) -> Dataset:
        """A dataset with only the interactions where ``mask`` is True; vocabularies are shared, so
        indices mean the same items and users.

        ``cut`` says where the kept events end in time: reviews and queries past it are removed as
        well (counted in :attr:`side_cut`); without it they are kept whole, which is right only for a
        subset that is not a cut in time. Every split passes one. Item columns declared in
        :attr:`derived` are recomputed from the kept events.
        """
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise ValueError(f"mask must have one entry per interaction ({len(self)}), got {mask.shape}")
        if cut is not None and cut.per_user is not None and len(cut.per_user) != self.n_users:
            raise ValueError(f"cut.per_user must have one entry per user ({self.n_users}), got {len(cut.per_user)}")
        interactions = self.interactions[mask].reset_index(drop=True)
        sides, removed = cut_side_tables({"reviews": self.reviews, "queries": self.queries}, self.user_vocab, cut)
        out = Dataset(
            derive_items(self.items, interactions, self.derived),
            interactions,
            self.user_vocab,
            self.item_vocab,
            sides["reviews"],
            sides["queries"],
            self.report,
            name or self.name,
            self.derived,
        )
        out.side_cut = removed
        return out

    def with_items(self, items: pd.DataFrame) -> Dataset:
        """The same events, vocabularies and side tables with a changed catalogue table (one row
        per item index, in the same order), e.g. with added tags or derived categories."""
        if len(items) != self.n_items:
            raise ValueError(f"items must have one row per item ({self.n_items}), got {len(items)}")
        return Dataset(
            items,
            self.interactions,
            self.user_vocab,
            self.item_vocab,
            self.reviews,
            self.queries,
            self.report,
            self.name,
            self.derived,
        )

    def fingerprint(self) -> str:
        """Short content hash of the events and catalog ids, for model manifests."""
        h = hashlib.sha256()
        for col in ("user", "item", "timestamp"):
            h.update(np.ascontiguousarray(self.interactions[col].to_numpy()).tobytes())
        h.update("\x1f".join(self.item_vocab.ids()).encode())
        h.update("\x1f".join(self.user_vocab.ids()).encode())
        return h.hexdigest()[:16]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``schema.json`` and one Parquet file per table into folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tables = {
            "items": self.items,
            "users": pd.DataFrame({"user_id": pd.Series(self.user_vocab.ids(), dtype="string")}),
            "interactions": self.interactions.assign(event=self.interactions["event"].astype("string")),
        }
        if self.reviews is not None:
            tables["reviews"] = self.reviews
        if self.queries is not None:
            tables["queries"] = self.queries
        for table, frame in tables.items():
            frame.to_parquet(path / f"{table}.parquet", index=False)
        schema = {
            "format": "shoprec-dataset",
            "format_version": FORMAT_VERSION,
            "shoprec_version": __version__,
            "name": self.name,
            "fingerprint": self.fingerprint(),
            "tables": {
                t: {"rows": len(f), "columns": {c: str(f[c].dtype) for c in f.columns}} for t, f in tables.items()
            },
            "report": self.report.to_dict(),
            "derived": self.derived,
        }
        (path / "schema.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a folder written by :meth:`save`."""
        path = Path(path)
        schema_file = path / "schema.json"
        if not schema_file.exists():
            raise DataError(
                "no schema.json here: not a saved shoprec dataset",
                file=str(path),
                fix="Point at a folder written by Dataset.save or 'shoprec datasets import'",
            )
        schema = json.loads(schema_file.read_text())
        if schema.get("format") != "shoprec-dataset" or schema.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"unsupported dataset format {schema.get('format')!r} version {schema.get('format_version')!r}",
                file=str(schema_file),
                fix=f"Re-import the data with shoprec {__version__}",
            )
        read = {t: pd.read_parquet(path / f"{t}.parquet") for t in schema["tables"]}
        interactions = read["interactions"]
        interactions["event"] = pd.Categorical(interactions["event"].astype(str), categories=list(EVENT_TYPES))
        return cls(
            read["items"],
            interactions,
            Vocabulary(read["users"]["user_id"]),
            Vocabulary(read["items"]["item_id"]),
            read.get("reviews"),
            read.get("queries"),
            IngestReport.from_dict(schema.get("report", {})),
            schema.get("name", path.name),
            schema.get("derived", {}),
        )


def _column(frame: pd.DataFrame, name: str, default: float, dtype: type) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), default, dtype=dtype)
    return frame[name].astype("float64").fillna(default).to_numpy(dtype=dtype)


def _index_side_table(
    frame: pd.DataFrame | None, table: str, item_vocab: Vocabulary, report: IngestReport, item_required: bool
) -> pd.DataFrame | None:
    """Map ``item_id`` to ``item`` (index) in reviews/queries; count rows for unknown items."""
    if frame is None:
        return None
    frame = frame.reset_index(drop=True)
    report.rows_read.setdefault(table, len(frame))
    has_item = frame["item_id"].notna() if "item_id" in frame else pd.Series(False, index=frame.index)
    idx = item_vocab.index(frame["item_id"].fillna("")) if "item_id" in frame else np.full(len(frame), -1)
    unknown = has_item & (idx < 0)
    reasons = {"item not in the catalog": unknown}
    if item_required:
        reasons["empty item_id"] = ~has_item
    if table == "queries":
        reasons["empty query"] = frame["query"].fillna("") == ""
    kept = drop_unusable(frame.assign(item=idx.astype(np.int32)), table, reasons, report)
    report.rows_kept[table] = len(kept)
    return kept.reset_index(drop=True)
