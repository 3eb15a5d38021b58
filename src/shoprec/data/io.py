"""Reading shop data from disk: CSV, TSV, Parquet or JSON Lines, one file per table.

A dataset folder holds ``items.*`` and ``interactions.*`` and optionally ``reviews.*`` and
``queries.*``, with the column names of :mod:`shoprec.data.schema`.

>>> from shoprec.data.io import load_folder
>>> ds = load_folder("my-shop/")          # doctest: +SKIP
>>> print("\\n".join(ds.report.lines()))   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa

from shoprec.data.dataset import Dataset
from shoprec.data.report import IngestReport
from shoprec.data.schema import INTERACTIONS, QUERIES, REVIEWS, TABLES
from shoprec.data.validate import clean_items, clean_table
from shoprec.errors import DataError

SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".json", ".csv.gz", ".tsv.gz", ".jsonl.gz")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), path.suffix.lower())


def read_table(path: str | Path) -> pd.DataFrame:
    """Read one table file; every failure becomes a :class:`DataError` naming the file.

    Text formats are read as strings so ids such as ``00123`` keep their leading zeros.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path), fix="Check the path")
    if path.stat().st_size == 0:
        raise DataError("the file is empty", file=str(path), fix="Write a header row and at least one data row")
    suffix = _suffix(path)
    try:
        if suffix in (".csv", ".csv.gz", ".tsv", ".tsv.gz"):
            sep = "\t" if suffix.startswith(".tsv") else ","
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".json", ".jsonl.gz"):
            return pd.read_json(path, lines=True, dtype=False)
    except pd.errors.EmptyDataError:
        raise DataError(
            "the file is empty", file=str(path), fix="Write a header row and at least one data row"
        ) from None
    except pd.errors.ParserError as err:
        raise DataError(
            f"cannot parse the file: {str(err).strip()}",
            file=str(path),
            fix="Check quoting and that every row has as many fields as the header",
        ) from None
    except (ValueError, pa.ArrowException, OSError, UnicodeDecodeError) as err:
        raise DataError(
            f"cannot read the file as {suffix[1:]}: {str(err).strip()[:200]}",
            file=str(path),
            fix="Check that the file is complete and in the format its name says",
        ) from None
    raise DataError(f"unsupported file type '{suffix}'", file=str(path), fix=f"Use one of: {', '.join(SUFFIXES)}")


def find_table(folder: Path, table: str, required: bool) -> Path | None:
    """The one file named ``<table>.<suffix>`` in ``folder``."""
    found = [
        p
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name.lower().startswith(table + ".") and _suffix(p) in SUFFIXES
    ]
    if len(found) > 1:
        raise DataError(
            f"several files for the {table} table: {', '.join(p.name for p in found)}",
            file=str(folder),
            fix="Keep exactly one",
        )
    if not found:
        if required:
            raise DataError(
                f"no {table} file (looked for {table}{{{','.join(SUFFIXES)}}})",
                file=str(folder),
                fix=f"Add {table}.csv, {table}.parquet or {table}.jsonl",
            )
        return None
    return found[0]


def load_folder(path: str | Path, name: str | None = None) -> Dataset:
    """Load and validate a dataset folder; see the module docstring for the layout."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(
            "not a folder", file=str(folder), fix="Point at a folder holding items.* and interactions.* files"
        )
    report = IngestReport()
    files = {t: find_table(folder, t, required=t in ("items", "interactions")) for t in TABLES}
    items = clean_items(read_table(files["items"]), str(files["items"]), report)
    interactions = clean_table(read_table(files["interactions"]), INTERACTIONS, str(files["interactions"]), report)
    reviews = queries = None
    if files["reviews"] is not None:
        reviews = clean_table(read_table(files["reviews"]), REVIEWS, str(files["reviews"]), report)
    if files["queries"] is not None:
        queries = clean_table(read_table(files["queries"]), QUERIES, str(files["queries"]), report)
    return Dataset.build(items, interactions, reviews, queries, report=report, name=name or folder.name)


def write_folder(frames: dict[str, pd.DataFrame], path: str | Path, fmt: str = "parquet") -> Path:
    """Write raw tables (``items``, ``interactions``, ...) as a dataset folder in ``fmt``."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in frames.items():
        if fmt == "parquet":
            frame.to_parquet(folder / f"{table}.parquet", index=False)
        elif fmt == "csv":
            frame.to_csv(folder / f"{table}.csv", index=False)
        elif fmt == "jsonl":
            frame.to_json(folder / f"{table}.jsonl", orient="records", lines=True, force_ascii=False)
        else:
            raise ValueError(f"fmt must be parquet, csv or jsonl, not {fmt!r}")
    return folder
