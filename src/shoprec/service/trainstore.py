"""The training set of a retrain: a base snapshot plus what the service acknowledged since.

Every version folder holds the data it was trained on (``data/``). A version trained from files
(``shoprec train DATA``) is a *base*: its snapshot holds no event of the store. A version trained
from the store records its *lineage* in its manifest::

    "lineage": {"base": "v0001", "base_fingerprint": "...", "events_seq": 5120, "items_seq": 37,
                "forgotten": 2, "store": "sqlite:///..."}

``events_seq`` / ``items_seq`` are the newest store event and catalog change folded in. The next
retrain starts again from the **original base**'s snapshot (not from the previous version's), adds
every store event and catalog change after the *base's* counters (0 for a base), and drops every
forgotten user. So each store event is counted exactly once however long the chain, an event the
service acknowledged is never lost, and a user forgotten after a version was trained leaves the next
one. If the base folder was deleted, the newest snapshot in the chain that still exists is used with
its own counters (its events are in it already, so nothing is counted twice) and a note says so.
A base snapshot is assumed to hold no event exported from the store; if yours does, train from that
file alone (or give ``base=`` the version whose counters cover it).

Rows go through the same validation as file input (:func:`~shoprec.data.frames.dataset_from_frames`):
events of unknown items or of an unknown type are dropped and counted; events of deleted items and
of forgotten users are dropped and counted too.

>>> dataset, report = dataset_from_store(store, "models")   # doctest: +SKIP
>>> print("\\n".join(report.lines()))                         # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.data.frames import dataset_from_frames
from shoprec.data.report import IngestReport
from shoprec.errors import ConfigError
from shoprec.service.store.base import ItemRecord, Store
from shoprec.service.versions import list_versions, newest_version, read_manifest

PAGE = 10_000
"""Store events read per query."""
ITEM_FIELDS = ("title", "description", "category", "brand", "price", "language")


@dataclass
class StoreData:
    """What :func:`dataset_from_store` used: the base, the store's counters, and the counts."""

    base: str
    """Version whose snapshot is the base."""
    base_fingerprint: str
    previous: str
    """The newest version: "new data" means new since it was trained."""
    events_seq: int = 0
    items_seq: int = 0
    base_events: int = 0
    store_events: int = 0
    """Store events added to the base (after the base's counter)."""
    new_events: int = 0
    """Store events the previous version did not see."""
    upserts: int = 0
    deletes: int = 0
    new_item_changes: int = 0
    forgotten: int = 0
    newly_forgotten: int = 0
    """Forgotten users still in the previous version's training data."""
    forgotten_supported: bool = True
    store: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def has_new_data(self) -> bool:
        return bool(self.new_events or self.new_item_changes or self.newly_forgotten)

    def no_new_data_message(self) -> str:
        return (
            f"no new data since {self.previous}: no event after store position {self.events_seq}, "
            "no catalog change and no newly forgotten user"
        )

    def lineage(self) -> dict:
        """What a version trained on this data records in its manifest."""
        keys = ("base", "base_fingerprint", "previous", "events_seq", "items_seq", "store")
        return {k: getattr(self, k) for k in keys} | {"forgotten": self.forgotten}

    def lines(self) -> list[str]:
        out = [
            f"base {self.base} ({self.base_events:,} events) + {self.store_events:,} store events "
            f"(up to position {self.events_seq}), {self.upserts} items upserted, {self.deletes} deleted",
            f"new since {self.previous}: {self.new_events:,} events, {self.new_item_changes} catalog changes, "
            f"{self.newly_forgotten} forgotten users",
        ]
        if self.forgotten:
            out.append(f"{self.forgotten} forgotten users left out")
        return out + [f"note: {n}" for n in self.notes]


def dataset_from_store(
    store: Store, models_dir: str | Path, *, base: str | Path | None = None
) -> tuple[Dataset, StoreData]:
    """The training set of the next version: the base snapshot + store events and catalog changes
    since it - forgotten users (see the module docstring). ``base``: a version name or folder to
    start from instead of the lineage's original base."""
    models_dir = Path(models_dir)
    previous = newest_version(models_dir)
    prev_manifest = read_manifest(previous)
    base_path, notes = _base(models_dir, previous, prev_manifest, base)
    base_lineage = read_manifest(base_path).get("lineage") or {}
    report = StoreData(
        base=base_path.name,
        base_fingerprint=str(read_manifest(base_path).get("data", {}).get("fingerprint", "")),
        previous=previous.name,
        store=store.url,
        notes=notes,
    )
    prev_lineage = prev_manifest.get("lineage") or {}
    snapshot = Dataset.load(base_path / "data")
    forgotten = _forgotten(store, report)
    events = _store_events(
        store, int(base_lineage.get("events_seq", 0)), int(prev_lineage.get("events_seq", 0)), report
    )
    changes = store.items_changed_after(int(base_lineage.get("items_seq", 0)))
    report.items_seq = max([int(base_lineage.get("items_seq", 0))] + [r.updated_seq for r in changes])
    report.new_item_changes = sum(r.updated_seq > int(prev_lineage.get("items_seq", 0)) for r in changes)
    if forgotten:
        prev_users = pd.read_parquet(previous / "data" / "users.parquet")["user_id"].astype(str)
        report.newly_forgotten = int(prev_users.isin(forgotten).sum())
    ingest = IngestReport()
    items, deleted = _catalog(snapshot.items, changes, report)
    interactions = _interactions(snapshot, events, forgotten, deleted, ingest, report)
    reviews, queries = (_side(getattr(snapshot, t), forgotten) for t in ("reviews", "queries"))
    dataset = dataset_from_frames(
        items,
        interactions,
        reviews,
        queries,
        name=f"{snapshot.name}+store",
        report=ingest,
        derived=snapshot.derived,
    )
    return dataset, report


def _base(models_dir: Path, previous: Path, manifest: dict, base: str | Path | None) -> tuple[Path, list[str]]:
    if base is not None:
        path = Path(base) if Path(base).is_dir() else models_dir / str(base)
        if not (path / "data").is_dir():
            raise ConfigError(
                f"base {base}: no version folder with a data/ snapshot",
                fix=f"give a version of {models_dir} ({', '.join(list_versions(models_dir))})",
            )
        return path, []
    root = (manifest.get("lineage") or {}).get("base") or previous.name
    if (models_dir / root / "data").is_dir():
        return models_dir / root, []
    for name in reversed(list_versions(models_dir)):  # newest snapshot of the chain that still exists
        if (models_dir / name / "data").is_dir() and (read_manifest(models_dir / name).get("lineage") or {}):
            return models_dir / name, [f"base {root} is gone: started from {name}'s snapshot and counters"]
    raise ConfigError(
        f"the base version {root} of {previous.name} is gone from {models_dir}",
        fix="train a new base from files with 'shoprec train DATA --models ...'",
    )


def _forgotten(store: Store, report: StoreData) -> set[str]:
    if not hasattr(store, "forgotten_users"):  # older store without the forget table
        report.forgotten_supported = False
        report.notes.append("this store cannot list forgotten users: none left out")
        return set()
    users = {str(u) for u in store.forgotten_users()}
    report.forgotten = len(users)
    return users


def _store_events(store: Store, after: int, previous_seq: int, report: StoreData) -> pd.DataFrame:
    rows, seq = [], after
    while page := store.events_after(seq, limit=PAGE):
        for stored in page:
            e = stored.event
            rows.append((e.user_id, e.item_id, e.event, e.timestamp, stored.seq))
        seq = page[-1].seq
    report.events_seq = seq
    report.store_events = len(rows)
    report.new_events = sum(r[4] > previous_seq for r in rows)
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp", "seq"])


def _catalog(items: pd.DataFrame, changes: list[ItemRecord], report: StoreData) -> tuple[pd.DataFrame, set[str]]:
    """The base catalog with the store's upserts applied and its deleted items removed."""
    items = items.copy()
    items["item_id"] = items["item_id"].astype(str)
    latest = {r.item_id: r for r in changes}  # changes come oldest first: the last state wins
    deleted = {i for i, r in latest.items() if r.deleted}
    upserts = [r for r in latest.values() if not r.deleted]
    report.upserts, report.deletes = len(upserts), len(deleted)
    rows = pd.DataFrame(
        {
            "item_id": [r.item_id for r in upserts],
            **{f: [getattr(r, f) for r in upserts] for f in ITEM_FIELDS},
            "attributes": [json.dumps(r.attributes or {}, ensure_ascii=False, sort_keys=True) for r in upserts],
        }
    )
    known = items.set_index("item_id")
    kept = rows[rows["item_id"].isin(known.index)].set_index("item_id")
    if len(kept):
        columns = [c for c in (*ITEM_FIELDS, "attributes") if c in known.columns]
        known.loc[kept.index, columns] = kept[columns].astype(known[columns].dtypes.to_dict())
    fresh = rows[~rows["item_id"].isin(known.index)]
    merged = pd.concat([known.reset_index(), fresh], ignore_index=True)
    return merged[~merged["item_id"].isin(deleted)].reset_index(drop=True), deleted


def _interactions(
    snapshot: Dataset,
    events: pd.DataFrame,
    forgotten: set[str],
    deleted: set[str],
    ingest: IngestReport,
    report: StoreData,
) -> pd.DataFrame:
    """Base events (back to ids) then store events, with forgotten users and deleted items dropped."""
    table = snapshot.interactions
    base = table.drop(columns=["user", "item"]).assign(
        user_id=snapshot.user_vocab.ids(table["user"].to_numpy()),
        item_id=snapshot.item_vocab.ids(table["item"].to_numpy()),
    )
    base["event"] = base["event"].astype(str)
    report.base_events = len(base)
    frame = pd.concat([base, events.drop(columns=["seq"])], ignore_index=True)
    frame["user_id"], frame["item_id"] = frame["user_id"].astype(str), frame["item_id"].astype(str)
    ingest.rows_read["interactions"] = len(frame)
    gone_user = frame["user_id"].isin(forgotten)
    gone_item = frame["item_id"].isin(deleted) & ~gone_user
    ingest.drop("interactions", "user asked to be forgotten", int(gone_user.sum()))
    ingest.drop("interactions", "item deleted from the catalog", int(gone_item.sum()))
    return frame[~(gone_user | gone_item)].reset_index(drop=True)


def _side(table: pd.DataFrame | None, forgotten: set[str]) -> pd.DataFrame | None:
    """A reviews or queries table back to raw columns, without forgotten users' rows."""
    if table is None:
        return None
    table = table.drop(columns=["item"], errors="ignore")
    if "user_id" in table.columns and forgotten:
        table = table[~table["user_id"].astype("string").isin(forgotten).fillna(False)]
    return table.reset_index(drop=True)
