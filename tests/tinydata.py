"""Tiny datasets written out as event tuples, for tests that need a known answer.

A plain module rather than part of ``conftest.py``: test modules import it by name, and a
``conftest`` module name is ambiguous once a sub-folder has its own conftest.
"""

from __future__ import annotations

import pandas as pd

from shoprec.data import Dataset, dataset_from_frames


def make_dataset(events: list[tuple], items: list[str] | None = None, **columns) -> Dataset:
    """Tiny dataset from ``(user, item, timestamp[, event[, session]])`` tuples."""
    names = ["user_id", "item_id", "timestamp", "event", "session_id"][: len(events[0])]
    inter = pd.DataFrame(events, columns=names)
    item_ids = items or sorted({str(e[1]) for e in events})
    catalog = pd.DataFrame({"item_id": item_ids, "title": [f"item {i}" for i in item_ids], **columns})
    return dataset_from_frames(catalog, inter, name="tiny")
