"""User profiles ("user portraits") in the item-text vector space.

A user's vector is the recency-decayed, event-weighted mean of the vectors of the items they
touched and of their search queries, L2-normalised: an event ``half_life_days`` before the user's
last event counts half, and a purchase counts more than a view
(:data:`~shoprec.data.schema.DEFAULT_EVENT_WEIGHTS`). Each profile also keeps the decayed weight of
every item touched and the count of every item bought, from which its top categories, top tags and
price band follow. :meth:`UserProfiles.update` folds new events into the decayed sums without a
rebuild (new users included) and gives the same result as rebuilding from all events.

>>> profiles = UserProfiles.build(dataset, item_vectors, encoder=encoder, currency="GBP")   # doctest: +SKIP
>>> profiles.describe("U00042")                                                              # doctest: +SKIP
'Mostly buys mugs and tea sets, GBP 9-27'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.data.report import IngestReport
from shoprec.data.schema import DEFAULT_EVENT_WEIGHTS, EVENT_TYPES, INTERACTIONS
from shoprec.data.validate import clean_table
from shoprec.errors import DataError, ModelError
from shoprec.text.portrait import ProfileFacts, describe
from shoprec.timeunits import DAY

PURCHASE = EVENT_TYPES.index("purchase")
FORMAT_VERSION = 1


class SparseRows:
    """A sparse float64 matrix whose rows can be replaced one at a time (merged on :meth:`matrix`),
    so an update costs the size of one row, not of the whole matrix."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.base = sp.csr_matrix(matrix, dtype=np.float64)
        self.n_rows = self.base.shape[0]
        self.changed: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of row ``r``."""
        if r in self.changed:
            return self.changed[r]
        if r >= self.base.shape[0]:
            return np.zeros(0, np.int64), np.zeros(0)
        lo, hi = self.base.indptr[r], self.base.indptr[r + 1]
        return self.base.indices[lo:hi].astype(np.int64), self.base.data[lo:hi].copy()

    def set_row(self, r: int, cols: np.ndarray, values: np.ndarray) -> None:
        self.changed[r] = (cols, values)
        self.n_rows = max(self.n_rows, r + 1)

    def matrix(self) -> sp.csr_matrix:
        """All rows as one CSR matrix."""
        n_cols = self.base.shape[1]
        base = sp.vstack([self.base, sp.csr_matrix((self.n_rows - self.base.shape[0], n_cols))], format="csr")
        if self.changed:
            keep = np.ones(self.n_rows)
            keep[list(self.changed)] = 0.0
            rows = np.concatenate([np.full(len(c), r) for r, (c, _) in self.changed.items()])
            cols, vals = (np.concatenate([pair[j] for pair in self.changed.values()]) for j in (0, 1))
            base = sp.csr_matrix(sp.diags(keep) @ base + sp.csr_matrix((vals, (rows, cols)), shape=base.shape))
            base.eliminate_zeros()
        self.base, self.changed = base, {}
        return base


class UserProfiles:
    """Per-user vectors, top categories, tags and price bands. Build with :meth:`build`."""

    def __init__(self, item_vectors: np.ndarray, catalog: dict[str, Any], settings: dict[str, Any]) -> None:
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self.catalog = catalog  # item_ids, category (codes), categories, prices, item_tags (CSR), tags
        self.settings = settings  # half_life_days, query_weight, event_weights, currency
        self.user_ids: list[str] = []
        self._lookup: dict[str, int] | None = None
        self.sums = np.zeros((0, self.item_vectors.shape[1]), dtype=np.float32)  # decayed weighted vector sums
        self.weights = np.zeros(0, dtype=np.float64)  # decayed total weights
        self.last_time = np.zeros(0, dtype=np.int64)  # reference time of the decay: the user's last event
        self.n_events = np.zeros(0, dtype=np.int64)  # events and queries folded in
        self.touched = SparseRows(sp.csr_matrix((0, len(self.item_vectors))))  # decayed item weights
        self.bought = SparseRows(sp.csr_matrix((0, len(self.item_vectors))))  # purchase counts
        self.report: dict[str, int] = {}
        self.encoder: Any = None
        """Encodes query texts (for :meth:`build` and :meth:`update`); not saved."""

    def __len__(self) -> int:
        return len(self.user_ids)

    def __repr__(self) -> str:
        return f"UserProfiles({len(self):,} users, dim={self.item_vectors.shape[1]})"

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        dataset: Dataset,
        item_vectors: np.ndarray,
        encoder: Any = None,
        tags: Sequence[Sequence[str]] | None = None,
        half_life_days: float = 30.0,
        query_weight: float = 2.0,
        event_weights: dict[str, float] | None = None,
        currency: str = "",
    ) -> UserProfiles:
        """Profiles of every user of ``dataset`` (row = user index).

        Args:
            item_vectors: (n_items, dim) vectors of the catalogue (row i = item index i).
            encoder: encodes the texts of ``dataset.queries`` (queries are skipped when None).
            tags: per item a list of tags (for instance from :func:`shoprec.text.tags.extract_tags`).
            half_life_days: an event this long before the user's last event counts half.
            query_weight: weight of one search query in event-weight units (a click is 2).
            event_weights: overrides of :data:`DEFAULT_EVENT_WEIGHTS`.
            currency: shown with price bands by :meth:`describe` (``GBP``, ``EUR``; blank for none).
        """
        if half_life_days <= 0 or query_weight < 0:
            raise ModelError("profiles: half_life_days must be > 0 and query_weight >= 0")
        if len(item_vectors) != dataset.n_items:
            raise ModelError(f"profiles: {len(item_vectors)} item vectors for {dataset.n_items} catalogue items")
        settings = {
            "half_life_days": float(half_life_days),
            "query_weight": float(query_weight),
            "event_weights": {**DEFAULT_EVENT_WEIGHTS, **(event_weights or {})},
            "currency": currency,
        }
        profiles = cls(item_vectors, _catalog(dataset, tags), settings)
        profiles.encoder = encoder
        profiles.user_ids = [str(u) for u in dataset.user_vocab.ids()]
        profiles._fill(dataset)
        return profiles

    def empty(self) -> UserProfiles:
        """A profile set with no users over the same catalogue and settings, to fold one shopper's
        events into without touching this one (the service builds a live profile per request)."""
        fresh = type(self)(self.item_vectors, self.catalog, self.settings)
        fresh.encoder = self.encoder
        return fresh

    def _fill(self, dataset: Dataset) -> None:
        inter = dataset.interactions
        users, items = inter["user"].to_numpy(np.int64), inter["item"].to_numpy(np.int64)
        times, codes = inter["timestamp"].to_numpy(np.float64), inter["event"].cat.codes.to_numpy()
        n, shape = dataset.n_users, (dataset.n_users, dataset.n_items)
        q_users, q_times, q_vectors = self._query_part(dataset)
        last = np.full(n, -np.inf)
        np.fmax.at(last, users, times)
        np.fmax.at(last, q_users, q_times)  # NaN (no time) is ignored
        q_times = np.where(np.isnan(q_times), last[q_users], q_times)  # a query without time counts as recent
        weights = self._event_weights()[codes] * self._decay(last[users] - times)
        touched = sp.csr_matrix((weights, (users, items)), shape=shape, dtype=np.float64)
        q_weights = self.settings["query_weight"] * self._decay(last[q_users] - q_times)
        q_matrix = sp.csr_matrix((q_weights, (q_users, np.arange(len(q_users)))), shape=(n, len(q_users)))
        self.sums = np.asarray(touched @ self.item_vectors + q_matrix @ q_vectors, dtype=np.float32)
        self.weights = np.asarray(touched.sum(axis=1)).ravel() + np.asarray(q_matrix.sum(axis=1)).ravel()
        self.last_time = np.where(np.isfinite(last), last, 0).astype(np.int64)  # 0: a user without events
        self.n_events = np.bincount(users, minlength=n) + np.bincount(q_users, minlength=n)
        self.touched = SparseRows(touched)
        bought = codes == PURCHASE
        self.bought = SparseRows(sp.csr_matrix((np.ones(bought.sum()), (users[bought], items[bought])), shape=shape))

    def _query_part(self, dataset: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user index, time or NaN, vector) of each search query of a user with events."""
        queries = dataset.queries
        none = (np.zeros(0, np.int64), np.zeros(0), np.zeros((0, self.item_vectors.shape[1]), np.float32))
        if queries is None or len(queries) == 0 or "user_id" not in queries or self.settings["query_weight"] == 0:
            return none
        if self.encoder is None:
            self.report["queries_skipped_no_encoder"] = len(queries)
            return none
        users = dataset.user_vocab.index(queries["user_id"].fillna("").astype(str))
        known = users >= 0
        self.report.update(queries_used=int(known.sum()), queries_of_users_without_events=int((~known).sum()))
        unique, inverse = np.unique(queries["query"].astype(str).to_numpy()[known], return_inverse=True)
        vectors = self.encoder.encode(list(unique))[inverse] if len(unique) else none[2]
        times = queries["timestamp"].to_numpy(np.float64, na_value=np.nan) if "timestamp" in queries else None
        return users[known], np.full(int(known.sum()), np.nan) if times is None else times[known], vectors

    def _event_weights(self) -> np.ndarray:
        return np.array([self.settings["event_weights"][e] for e in EVENT_TYPES], dtype=np.float64)

    def _decay(self, age_seconds: np.ndarray | float) -> np.ndarray:
        return np.power(0.5, np.asarray(age_seconds, dtype=np.float64) / (self.settings["half_life_days"] * DAY))

    # ------------------------------------------------------------------ reading
    def vectors(self) -> np.ndarray:
        """Profile vectors (n_users, dim), float32, unit length (zero for users without vectors)."""
        out = self.sums[: len(self)].copy()
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)

    def means(self) -> np.ndarray:
        """Decayed weighted means (n_users, dim), before normalisation."""
        sums, w = self.sums[: len(self)], self.weights[: len(self), None]
        return np.divide(sums, w, out=np.zeros_like(sums), where=w > 0)

    def index_of(self, user: str | int) -> int:
        """Row of a user given by external id (str) or index (int); -1 when unknown."""
        if isinstance(user, int | np.integer):
            return int(user) if 0 <= user < len(self) else -1
        if self._lookup is None:
            self._lookup = {u: i for i, u in enumerate(self.user_ids)}
        return self._lookup.get(str(user), -1)

    def _row(self, user: str | int) -> int:
        row = self.index_of(user)
        if row < 0:
            raise ModelError(f"profiles: unknown user {user!r}; update() creates the profile of a new user")
        return row

    def top_categories(self, user: str | int, n: int = 3) -> list[tuple[str, float]]:
        """The user's ``n`` heaviest leaf categories as (path, share of the user's item weight)."""
        items, weights = self.touched.row(self._row(user))
        codes = self.catalog["category"][items]
        totals = np.bincount(codes[codes >= 0], weights[codes >= 0], minlength=len(self.catalog["categories"]))
        return _top(totals, self.catalog["categories"], n)

    def top_tags(self, user: str | int, n: int = 5) -> list[tuple[str, float]]:
        """The user's ``n`` heaviest tags (none when the profiles were built without tags)."""
        items, weights = self.touched.row(self._row(user))
        item_tags = self.catalog["item_tags"]
        if item_tags.shape[1] == 0 or len(items) == 0:
            return []
        return _top(np.asarray(item_tags[items].T @ weights).ravel(), self.catalog["tags"], n)

    def price_band(self, user: str | int, low: float = 20.0, high: float = 80.0) -> tuple[float, float] | None:
        """``low``-``high`` percentiles of the prices of items bought (else touched); None without prices."""
        row, prices = self._row(user), self.catalog["prices"]
        for items, _ in (self.bought.row(row), self.touched.row(row)):
            known = prices[items][~np.isnan(prices[items])]
            if len(known):
                return float(np.percentile(known, low)), float(np.percentile(known, high))
        return None

    def facts(self, user: str | int) -> ProfileFacts:
        """What :meth:`describe` says about the user, as data."""
        row = self._row(user)
        return ProfileFacts(
            n_events=int(self.n_events[row]),
            top_categories=self.top_categories(row),
            top_tags=[t for t, _ in self.top_tags(row, 3)],
            bought=len(self.bought.row(row)[0]) > 0,
            price_band=self.price_band(row),
            currency=self.settings["currency"],
        )

    def describe(self, user: str | int, lang: str = "en", labels: dict[str, str] | None = None) -> str:
        """One sentence about the user in English or Chinese; see :func:`shoprec.text.portrait.describe`."""
        return describe(self.facts(user), lang, labels)

    # ------------------------------------------------------------------ updating
    def update(self, user_id: str, events: pd.DataFrame | None = None, queries: Sequence[str] | None = None) -> int:
        """Fold new events (and search queries) of one user into the profile; returns the user's row.

        ``events`` uses the interactions schema: ``item_id``, optional ``event`` (default
        ``click``) and ``timestamp`` (unix seconds or ISO; default: the user's latest time, or 0
        for a new user). ``queries`` are search texts, taken as asked at the latest time (needs
        :attr:`encoder`). A user id not seen before gets a new profile.
        """
        row = self.index_of(str(user_id))
        row = self._new_user(str(user_id)) if row < 0 else row
        now = int(self.last_time[row]) if self.n_events[row] else 0
        items, codes, times = self._parse_events(events, now)
        q_vectors = self._encode_queries(queries)
        new_last = max(now, int(times.max(initial=now)))
        factor = float(self._decay(new_last - now)) if self.n_events[row] else 0.0
        weights = self._event_weights()[codes] * self._decay(new_last - times)
        q_weight = self.settings["query_weight"] * len(q_vectors)
        total = (
            self.sums[row] * factor
            + weights @ self.item_vectors[items]
            + self.settings["query_weight"] * q_vectors.sum(0)
        )
        self.sums[row] = total.astype(np.float32)
        self.weights[row] = self.weights[row] * factor + weights.sum() + q_weight
        self.last_time[row], self.n_events[row] = new_last, self.n_events[row] + len(items) + len(q_vectors)
        cols, vals = self.touched.row(row)
        self.touched.set_row(row, *_merge(cols, vals * factor, items, weights))
        bought = items[codes == PURCHASE]
        self.bought.set_row(row, *_merge(*self.bought.row(row), bought, np.ones(len(bought))))
        return row

    def _new_user(self, user_id: str) -> int:
        row = len(self.user_ids)
        if row >= len(self.sums):  # grow by half so that appending users stays cheap
            extra = max(16, len(self.sums) // 2)
            self.sums = np.vstack([self.sums, np.zeros((extra, self.sums.shape[1]), np.float32)])
            grown = (
                np.concatenate([a, np.zeros(extra, a.dtype)]) for a in (self.weights, self.last_time, self.n_events)
            )
            self.weights, self.last_time, self.n_events = grown
        self.user_ids.append(user_id)
        if self._lookup is not None:
            self._lookup[user_id] = row
        self.touched.n_rows = self.bought.n_rows = row + 1
        return row

    def _parse_events(self, events: pd.DataFrame | None, now: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item index, event code, unix time) of new events, checked like ingested interactions."""
        if events is None or len(events) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        source = "update events"
        frame = clean_table(events.assign(user_id="user"), INTERACTIONS, source, IngestReport())
        items = pd.Index(self.catalog["item_ids"]).get_indexer(frame["item_id"].fillna("").astype(str))
        names = frame["event"].fillna("click") if "event" in frame else pd.Series("click", index=frame.index)
        codes = pd.Index(EVENT_TYPES).get_indexer(names.astype(str)).astype(np.int64)
        for bad, column, fix in (
            (items < 0, "item_id", "Add new items to the catalogue and refit the item vectors first"),
            (codes < 0, "event", f"Use one of {', '.join(EVENT_TYPES)}"),
        ):
            if bad.any():
                first = int(np.argmax(bad))
                value = frame[column].iloc[first]
                raise DataError(f"unknown {column} '{value}'", file=source, row=first + 1, column=column, fix=fix)
        times = frame["timestamp"].fillna(now) if "timestamp" in frame else pd.Series(now, index=frame.index)
        return items.astype(np.int64), codes, times.to_numpy(np.int64)

    def _encode_queries(self, queries: Sequence[str] | None) -> np.ndarray:
        if not queries:
            return np.zeros((0, self.item_vectors.shape[1]), np.float32)
        if self.encoder is None:
            raise ModelError("profiles: set profiles.encoder (the encoder of the item vectors) to fold in queries")
        return self.encoder.encode([str(q) for q in queries])

    # ------------------------------------------------------------------ saving
    def to_arrays(self, include_item_vectors: bool = True) -> dict[str, np.ndarray]:
        """Everything as named numpy arrays (no objects: loadable with ``allow_pickle=False``)."""
        n, cat = len(self), self.catalog
        meta = {"format_version": FORMAT_VERSION, "settings": self.settings, "report": self.report}
        arrays = {
            "meta": np.array(json.dumps(meta)),
            "user_ids": np.array(self.user_ids, dtype=str),
            **{name: getattr(self, name)[:n] for name in ("sums", "weights", "last_time", "n_events")},
            **{name: np.asarray(cat[name], dtype=str) for name in ("item_ids", "categories", "tags")},
            "category": cat["category"],
            "prices": cat["prices"],
        }
        for name, m in (
            ("touched", self.touched.matrix()),
            ("bought", self.bought.matrix()),
            ("item_tags", cat["item_tags"]),
        ):
            arrays.update({f"{name}.data": m.data, f"{name}.indices": m.indices, f"{name}.indptr": m.indptr})
        if include_item_vectors:
            arrays["item_vectors"] = self.item_vectors
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], item_vectors: np.ndarray | None = None) -> UserProfiles:
        """Profiles from :meth:`to_arrays` output (pass ``item_vectors`` if they were left out)."""
        meta = json.loads(str(arrays["meta"]))
        if meta["format_version"] > FORMAT_VERSION:
            raise ModelError(f"profiles format {meta['format_version']} is newer than this shoprec: upgrade shoprec")
        vectors = arrays["item_vectors"] if item_vectors is None else item_vectors
        n_items = len(vectors)

        def csr(name: str, shape: tuple[int, int]) -> sp.csr_matrix:
            return sp.csr_matrix((arrays[f"{name}.data"], arrays[f"{name}.indices"], arrays[f"{name}.indptr"]), shape)

        catalog = {name: arrays[name].tolist() for name in ("categories", "tags")}
        catalog.update(item_ids=arrays["item_ids"].astype(object), category=arrays["category"], prices=arrays["prices"])
        catalog["item_tags"] = csr("item_tags", (n_items, len(catalog["tags"])))
        profiles = cls(vectors, catalog, meta["settings"])
        profiles.user_ids, profiles.report = arrays["user_ids"].tolist(), meta["report"]
        profiles.sums, profiles.weights = arrays["sums"].astype(np.float32), arrays["weights"]
        profiles.last_time, profiles.n_events = arrays["last_time"], arrays["n_events"]
        shape = (len(profiles.user_ids), n_items)
        profiles.touched, profiles.bought = SparseRows(csr("touched", shape)), SparseRows(csr("bought", shape))
        return profiles

    def save(self, folder: str | Path) -> Path:
        """Write ``profiles.npz`` (all arrays, item vectors included) and a readable ``profiles.json``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "profiles.npz", **self.to_arrays())
        summary = {"users": len(self), "dim": int(self.item_vectors.shape[1]), **self.settings, "report": self.report}
        (folder / "profiles.json").write_text(json.dumps(summary, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> UserProfiles:
        """Read profiles written by :meth:`save` (set :attr:`encoder` again to fold in queries)."""
        path = Path(folder) / "profiles.npz"
        if not path.exists():
            raise ModelError(f"{folder}: no profiles.npz here: not saved user profiles (write them with save())")
        with np.load(path, allow_pickle=False) as npz:
            return cls.from_arrays({k: npz[k] for k in npz.files})


def _catalog(dataset: Dataset, tags: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """Per-item facts that profiles summarise: category code, price, tags."""
    items, n = dataset.items, dataset.n_items
    paths = items["category"].astype("string").str.strip().replace("", pd.NA) if "category" in items else None
    codes, names = pd.factorize(paths, use_na_sentinel=True) if paths is not None else (np.full(n, -1), [])
    prices = items["price"].to_numpy(np.float64, na_value=np.nan) if "price" in items else np.full(n, np.nan)
    tag_names, item_tags = [], sp.csr_matrix((n, 0))
    if tags is not None:
        if len(tags) != n:
            raise ModelError(f"profiles: {len(tags)} tag lists for {n} catalogue items: give one list per item")
        tag_codes, tag_names = pd.factorize(pd.Series([str(t) for row in tags for t in row], dtype=object))
        rows = np.repeat(np.arange(n), [len(row) for row in tags])
        item_tags = sp.csr_matrix((np.ones(len(rows)), (rows, tag_codes)), shape=(n, len(tag_names)))
        item_tags.data[:] = 1.0  # a tag repeated within one item counts once
    return {
        "item_ids": dataset.item_vocab.ids(),
        "category": np.asarray(codes, dtype=np.int64),
        "categories": [str(c) for c in names],
        "prices": prices,
        "item_tags": item_tags,
        "tags": [str(t) for t in tag_names],
    }


def _top(weights: np.ndarray, names: Sequence[str], n: int) -> list[tuple[str, float]]:
    total = weights.sum()
    return [(names[i], float(weights[i] / total)) for i in np.argsort(-weights, kind="stable")[:n] if weights[i] > 0]


def _merge(
    cols: np.ndarray, vals: np.ndarray, new_cols: np.ndarray, new_vals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A sparse row plus extra (column, value) entries, summed per column, columns sorted."""
    merged, inverse = np.unique(np.concatenate([cols, new_cols]).astype(np.int64), return_inverse=True)
    return merged, np.bincount(inverse, np.concatenate([vals, new_vals]).astype(np.float64), minlength=len(merged))
