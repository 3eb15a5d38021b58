"""The BundleRec datasets (Sun et al., SIGIR 2022): Amazon sessions annotated with bundles and intents.

A BundleRec folder (e.g. ``bundlerec-electronic/``) holds comma-separated files with headers:
``item_titles.csv`` (item ID, titles), ``item_categories.csv`` (item ID, categories as
``[[Electronics,Camera & Photo,Bags & Cases]]``), ``session_item.csv`` (session ID, item ID),
``user_session.csv`` (user ID, session ID, timestamp), ``bundle_item.csv`` (bundle ID, item ID),
``session_bundle.csv`` (session ID, bundle ID) and ``bundle_intent.csv`` (bundle ID, intent).

:func:`load_bundlerec` gives a :class:`Dataset`: the catalogue is the items with a title (category
paths joined with " > "), each session is one basket of ``purchase`` events (``session_id`` =
``S<session>``) by its user at its time. Session items without a title or category are not in the
catalogue: their events are dropped and counted in the report. :func:`read_bundles` gives the
annotated bundles as item-index arrays with their session, time and intent.

>>> ds = load_bundlerec("../shared/datasets/bundlerec-electronic")     # doctest: +SKIP
>>> truth = read_bundles("../shared/datasets/bundlerec-electronic", ds)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.data.frames import dataset_from_frames
from shoprec.data.report import IngestReport
from shoprec.errors import DataError

FILES: dict[str, tuple[str, ...]] = {
    "item_titles.csv": ("item ID", "titles"),
    "item_categories.csv": ("item ID", "categories"),
    "session_item.csv": ("session ID", "item ID"),
    "user_session.csv": ("user ID", "session ID", "timestamp"),
    "bundle_item.csv": ("bundle ID", "item ID"),
    "session_bundle.csv": ("session ID", "bundle ID"),
    "bundle_intent.csv": ("bundle ID", "intent"),
}
"""File -> columns it must have."""


def _read(folder: Path, file: str) -> pd.DataFrame:
    path = folder / file
    if not path.is_file():
        raise DataError("file not found", file=str(path), fix="Point at a BundleRec folder (item_titles.csv, ...)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in FILES[file]:
        if column not in frame.columns:
            found = ", ".join(frame.columns) or "none"
            raise DataError(f"missing column '{column}' (columns found: {found})", file=str(path), column=column)
    return frame


def category_path(raw: str) -> str:
    """``[[Electronics,Camera & Photo,Bags & Cases]]`` -> ``Electronics > Camera & Photo > Bags & Cases``."""
    inner = str(raw).strip().strip("[]")
    return " > ".join(part.strip() for part in inner.split(",") if part.strip())


def load_bundlerec(path: str | Path, name: str = "bundlerec") -> Dataset:
    """Catalogue and session baskets of a BundleRec folder (see module doc)."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError("not a folder", file=str(folder), fix="Give the BundleRec folder, e.g. bundlerec-electronic/")
    titles = _read(folder, "item_titles.csv")
    cats = _read(folder, "item_categories.csv")
    items = titles.rename(columns={"item ID": "item_id", "titles": "title"}).merge(
        cats.rename(columns={"item ID": "item_id"}), on="item_id", how="left"
    )
    items["category"] = items["categories"].fillna("").map(category_path)
    items = items[["item_id", "title", "category"]].drop_duplicates("item_id")
    sessions = _read(folder, "session_item.csv").merge(_read(folder, "user_session.csv"), on="session ID", how="left")
    report = IngestReport()
    orphan = sessions["user ID"].isna()
    if orphan.any():
        report.note(f"{int(orphan.sum())} session lines have no user in user_session.csv: dropped")
    sessions = sessions[~orphan]
    interactions = pd.DataFrame(
        {
            "user_id": sessions["user ID"].astype(str),
            "item_id": sessions["item ID"].astype(str),
            "event": "purchase",
            "timestamp": pd.to_numeric(sessions["timestamp"], errors="coerce"),
            "session_id": "S" + sessions["session ID"].astype(str),
        }
    )
    report.note("each session is one basket: session_id = S<session ID>, one 'purchase' event per session item")
    report.note("session items without a title are not in the catalogue (BundleRec gives text only for bundle items)")
    return dataset_from_frames(items, interactions, name=name, report=report)


@dataclass
class BundleTruth:
    """Annotated bundles: item indices per bundle, with session, time and intent."""

    bundle_id: np.ndarray  # (b,) object
    session_id: np.ndarray  # (b,) object, the dataset's session_id ("S<session>")
    timestamp: np.ndarray  # (b,) int64 (the session's time)
    intent: np.ndarray  # (b,) object
    items: list[np.ndarray]  # per bundle, (k,) int64 item indices
    dropped_items: int = 0  # bundle lines whose item is not in the catalogue

    def __len__(self) -> int:
        return len(self.bundle_id)


def read_bundles(path: str | Path, dataset: Dataset) -> BundleTruth:
    """The annotated bundles of a BundleRec folder, items mapped to ``dataset``'s indices."""
    folder = Path(path)
    lines = _read(folder, "bundle_item.csv")
    index = dataset.item_vocab.index(lines["item ID"].astype(str).to_numpy(dtype=object))
    lines = lines.assign(item=index)
    dropped = int((index < 0).sum())
    lines = lines[lines["item"] >= 0]
    session = _read(folder, "session_bundle.csv").drop_duplicates("bundle ID").set_index("bundle ID")["session ID"]
    times = _read(folder, "user_session.csv").drop_duplicates("session ID").set_index("session ID")["timestamp"]
    intent = _read(folder, "bundle_intent.csv").drop_duplicates("bundle ID").set_index("bundle ID")["intent"]
    groups = lines.groupby("bundle ID", sort=False)["item"].apply(lambda s: np.unique(s.to_numpy(np.int64)))
    ids = groups.index.to_numpy(dtype=object)
    sessions = session.reindex(ids)
    stamp = pd.to_numeric(times.reindex(sessions.to_numpy()), errors="coerce").fillna(-1).astype(np.int64)
    return BundleTruth(
        bundle_id=ids,
        session_id=("S" + sessions.fillna("").astype(str)).to_numpy(dtype=object),
        timestamp=stamp.to_numpy(),
        intent=intent.reindex(ids).fillna("").astype(str).to_numpy(dtype=object),
        items=list(groups.to_numpy()),
        dropped_items=dropped,
    )
