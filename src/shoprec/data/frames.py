"""Build a Dataset straight from in-memory tables (the path adapters and the demo shop take)."""

from __future__ import annotations

import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.data.report import IngestReport
from shoprec.data.schema import INTERACTIONS, QUERIES, REVIEWS
from shoprec.data.validate import clean_items, clean_table


def dataset_from_frames(
    items: pd.DataFrame,
    interactions: pd.DataFrame,
    reviews: pd.DataFrame | None = None,
    queries: pd.DataFrame | None = None,
    name: str = "dataset",
    report: IngestReport | None = None,
    default_event: str = "purchase",
    derived: dict[str, str] | None = None,
) -> Dataset:
    """Validate raw tables with the schema's column names and index them (``derived``: item
    columns computed from the events, see :attr:`Dataset.derived`).

    >>> import pandas as pd
    >>> ds = dataset_from_frames(pd.DataFrame({"item_id": ["a", "b"]}),
    ...                          pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "timestamp": [0]}))
    >>> ds.n_users, ds.n_items
    (1, 2)
    """
    report = report or IngestReport()
    reviews = _optional(reviews, "reviews", report)
    queries = _optional(queries, "queries", report)
    items = clean_items(items, "items", report)
    interactions = clean_table(interactions, INTERACTIONS, "interactions", report)
    if reviews is not None:
        reviews = clean_table(reviews, REVIEWS, "reviews", report)
    if queries is not None:
        queries = clean_table(queries, QUERIES, "queries", report)
    return Dataset.build(
        items, interactions, reviews, queries, report=report, name=name, default_event=default_event, derived=derived
    )


def _optional(frame: pd.DataFrame | None, table: str, report: IngestReport) -> pd.DataFrame | None:
    """An optional table with no rows is the same as no table (noted, not an error)."""
    if frame is not None and len(frame) == 0:
        report.note(f"the {table} table has no rows: loaded without {table}")
        return None
    return frame
