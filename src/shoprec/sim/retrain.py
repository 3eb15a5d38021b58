"""The simulation's retrain step: a new version from the base data plus every event in the store.

When the service's retrain job (:func:`shoprec.service.retrain.retrain_once`) is available the
step runs it; until then (and with ``own=True``) it does the same thing by hand: read the events
back from the store, append them to the base tables, train with
:func:`~shoprec.service.versions.train_version` (no offline evaluation) and publish.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shoprec.data.frames import dataset_from_frames
from shoprec.service.store.base import Store
from shoprec.service.versions import train_version
from shoprec.sim.world import World

PAGE = 10_000


@dataclass
class Retrained:
    """What one retrain step did."""

    version: str | None
    """The published version, None when nothing was published."""
    seconds: float
    events: int
    """Events read back from the store."""
    note: str = ""


def store_events(store: Store) -> pd.DataFrame:
    """Every event in the store as an ``interactions`` table (the session id is the recommendation id)."""
    rows, seq = [], 0
    while page := store.events_after(seq, PAGE):
        seq = page[-1].seq
        rows += [
            (e.event.user_id, e.event.item_id, e.event.event, e.event.timestamp, e.event.recommendation_id)
            for e in page
        ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp", "session_id"])
    frame["timestamp"] = frame["timestamp"].astype("int64")
    frame["quantity"] = 1
    return frame


def has_retrain_job() -> bool:
    """Whether the service's retrain job exists in this checkout."""
    return importlib.util.find_spec("shoprec.service.retrain") is not None


def retrain(world: World, models_dir: str | Path, store: Store, vector_cache: str | Path | None = None) -> Retrained:
    """Train a version on the base data plus the store's events and publish it in ``models_dir``."""
    began = time.perf_counter()
    base = world.base_frames()
    events = store_events(store)
    interactions = pd.concat([base["interactions"], events], ignore_index=True)
    dataset = dataset_from_frames(base["items"], interactions, base["reviews"], base["queries"], name="sim")
    path = train_version(dataset, models_dir, evaluate=False, vector_cache=vector_cache, crosscat_mode="graph")
    return Retrained(path.name, time.perf_counter() - began, len(events), "train_version on base + store events")
