"""Load shop data in any supported layout: shoprec folders, saved datasets and public formats.

>>> from shoprec.data.adapters import load_dataset
>>> ds = load_dataset("Online Retail.xlsx")              # doctest: +SKIP
>>> ds = load_dataset("s3rec_Beauty.txt", fmt="s3rec")   # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shoprec.data.adapters.bundlerec import load_bundlerec
from shoprec.data.adapters.download import DATASETS, DEFAULT_URL, download_online_retail
from shoprec.data.adapters.online_retail import load_online_retail
from shoprec.data.adapters.retail_files import is_online_retail, xlsx_columns
from shoprec.data.adapters.s3rec import load_s3rec
from shoprec.data.dataset import Dataset
from shoprec.data.io import load_folder
from shoprec.errors import DataError, ShoprecError

FORMATS: dict[str, str] = {
    "auto": "detect the format from the path (the default)",
    "folder": "a folder of items.* and interactions.* (+ reviews.*, queries.*) in CSV, TSV, Parquet or JSON Lines",
    "saved": "a folder written by Dataset.save (has schema.json)",
    "online-retail": "UCI Online Retail or Online Retail II transactions (.xlsx with every sheet read, or one with "
    "--sheet; .csv or .parquet); invoices become baskets",
    "s3rec": "S3-Rec text file (.txt), one line per user: 'user item item ...' oldest first",
    "bundlerec": "BundleRec folder (item_titles.csv, session_item.csv, ...): each session is a basket",
}
"""Format name -> one-line description (the CLI prints these)."""

LOADERS: dict[str, Callable[..., Dataset]] = {
    "folder": load_folder,
    "saved": Dataset.load,
    "online-retail": load_online_retail,
    "s3rec": load_s3rec,
    "bundlerec": load_bundlerec,
}

__all__ = [
    "DATASETS",
    "DEFAULT_URL",
    "FORMATS",
    "detect_format",
    "download_online_retail",
    "load_dataset",
    "load_online_retail",
    "load_s3rec",
]


def _header(path: Path) -> list[str]:
    """Column names of a single table file, without reading its rows ([] when unreadable)."""
    name = path.name.lower()
    try:
        if name.endswith((".xlsx", ".xlsm")):
            return xlsx_columns(path)
        if name.endswith(".parquet"):
            return list(pq.read_schema(path).names)
        if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
            sep = "\t" if ".tsv" in name else ","
            return [str(c).strip() for c in pd.read_csv(path, sep=sep, nrows=0).columns]
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError, DataError):
        return []
    return []


def detect_format(path: str | Path) -> str:
    """The format of ``path``: a folder with schema.json is ``saved``, any other folder ``folder``,
    a ``.txt`` file ``s3rec``, an ``.xlsx`` or a table with the Online Retail columns ``online-retail``."""
    path = Path(path)
    if not path.exists():
        raise DataError("file or folder not found", file=str(path), fix="Check the path")
    if path.is_dir():
        return "saved" if (path / "schema.json").is_file() else "folder"
    if path.suffix.lower() == ".txt":
        return "s3rec"
    columns = _header(path)
    if path.suffix.lower() in (".xlsx", ".xlsm") or is_online_retail(columns):
        return "online-retail"
    found = ", ".join(columns[:10]) if columns else "none readable"
    raise DataError(
        f"cannot tell the data format (columns: {found})",
        file=str(path),
        fix="A single table is not a dataset: put items.* and interactions.* in a folder, or choose a format "
        f"with fmt= / --format ({', '.join(f for f in FORMATS if f != 'auto')})",
    )


def _check_options(fmt: str, loader: Callable[..., Dataset], options: dict) -> None:
    """Reject options the chosen loader does not take, instead of passing them on blindly."""
    params = list(inspect.signature(loader).parameters)[1:]
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ShoprecError(
            f"format '{fmt}' takes no option {', '.join(map(repr, unknown))}; "
            f"its options are: {', '.join(params) or 'none'}"
        )


def load_dataset(path: str | Path, fmt: str = "auto", **options: object) -> Dataset:
    """Load ``path`` as a :class:`Dataset` in format ``fmt`` (see :data:`FORMATS`).

    ``options`` go to the format's loader, e.g. ``guests="invoice"`` for ``online-retail``;
    an option the loader does not take is an error.
    """
    if fmt not in FORMATS:
        raise DataError(
            f"unknown data format {fmt!r}",
            file=str(path),
            fix=f"Use one of: {', '.join(FORMATS)}",
        )
    if fmt == "auto":
        fmt = detect_format(path)
    loader = LOADERS[fmt]
    _check_options(fmt, loader, options)
    return loader(path, **options)
