"""The S3-Rec / ICLRec sequence text format: one line per user, ``user item item ...``, oldest first.

This is the file behind most published full-ranking numbers on Amazon Beauty, Sports, Toys and
Yelp. It has no times and no titles: an event's ``timestamp`` is its position in the user's line
(0, 1, 2, ...), so only the order within one user means anything, and the catalog holds the
item ids alone.

>>> ds = load_s3rec("s3rec_Beauty.txt")   # doctest: +SKIP
>>> ds.n_users, ds.n_items, len(ds)       # doctest: +SKIP
(22363, 12101, 198502)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.dataset import Dataset
from shoprec.data.frames import dataset_from_frames
from shoprec.data.report import IngestReport
from shoprec.errors import DataError

FORMAT_FIX = "Each line must be 'user item item ...': whole-number ids separated by spaces"


def _bad_token(tokens: list[str]) -> str | None:
    """The first token that is not a whole non-negative number, or None."""
    return next((t for t in tokens if not (t.isascii() and t.isdigit())), None)


def parse_s3rec(lines: list[str], file: str) -> tuple[list[str], list[list[str]], dict[str, int]]:
    """Users and their item lists from the lines of an S3-Rec file.

    Blank lines and lines with a user but no items are skipped and counted (``counts``); a token
    that is not a whole number or a user on two lines is a :class:`DataError` naming the line.
    """
    users: list[str] = []
    sequences: list[list[str]] = []
    first_line: dict[str, int] = {}
    counts = {"blank": 0, "no_items": 0}
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            counts["blank"] += 1
            continue
        bad = _bad_token(tokens)
        if bad is not None:
            raise DataError(f"line {number}: '{bad[:40]}' is not a whole-number id", file=file, fix=FORMAT_FIX)
        user = str(int(tokens[0]))
        if user in first_line:
            raise DataError(
                f"line {number}: user {user} already has a line (line {first_line[user]})",
                file=file,
                fix="Put each user's whole history on one line",
            )
        first_line[user] = number
        if len(tokens) == 1:
            counts["no_items"] += 1
            continue
        users.append(user)
        sequences.append([str(int(t)) for t in tokens[1:]])
    return users, sequences, counts


def load_s3rec(path: str | Path, name: str | None = None, event: str = "purchase") -> Dataset:
    """Load an S3-Rec ``user item item ...`` file; each line is one user's time-ordered history.

    Args:
        path: the text file (UTF-8).
        name: the dataset's name (default: the file name without suffix).
        event: the event type given to every interaction (the Amazon files are reviews taken as
            implicit purchases, as the folder form of the same data is).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=str(path), fix="Check the path to the S3-Rec .txt file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(
            f"not a UTF-8 text file ({err.reason} at byte {err.start})", file=str(path), fix=FORMAT_FIX
        ) from None
    users, sequences, counts = parse_s3rec(lines, str(path))
    if not users:
        raise DataError("no user has any items", file=str(path), fix=FORMAT_FIX)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    items = [item for seq in sequences for item in seq]
    interactions = pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(users, dtype=object), lengths),
            "item_id": np.asarray(items, dtype=object),
            "event": event,
            "timestamp": np.arange(len(items), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths),
        }
    )
    catalog = pd.DataFrame({"item_id": sorted(set(items), key=int)})
    report = IngestReport()
    report.note("S3-Rec text format: timestamps are positions within each user's line (0, 1, 2, ...), not times")
    report.note("the catalog holds item ids only (no titles); items are ordered by numeric id")
    if counts["blank"]:
        report.note(f"skipped {counts['blank']:,} blank lines")
    if counts["no_items"]:
        report.note(f"skipped {counts['no_items']:,} lines with a user id but no items")
    return dataset_from_frames(catalog, interactions, name=name or path.stem, report=report, default_event=event)
