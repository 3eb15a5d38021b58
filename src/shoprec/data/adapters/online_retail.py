"""The UCI "Online Retail" transactions (a UK gift shop, 2010-12 to 2011-12) as a shoprec Dataset.

Each invoice is a basket: ``session_id`` is the ``InvoiceNo``, every invoice line is one
``purchase`` event with ``quantity = Quantity`` and ``value = Quantity * UnitPrice`` (the line's
revenue in GBP; the unit price itself is the item's ``price`` in the catalog). Rows that are not
purchases are dropped and counted in the report, first matching reason wins:

1. cells needed for an event are empty (InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice);
2. cancellations (``InvoiceNo`` starting with ``C``);
3. returns and stock adjustments (``Quantity <= 0`` on a normal invoice);
4. guests without a ``CustomerID`` (with ``guests="drop"``; ``guests="invoice"`` keeps each guest
   invoice as its own anonymous user ``guest:<InvoiceNo>``);
5. non-product stock codes (postage, carriage, fees, discounts, manual entries, samples, gift
   vouchers): product codes start with a digit (``85123A``), these do not (``POST``, ``C2``);
6. unit prices at or below ``min_price`` (free samples, write-offs).

>>> ds = load_online_retail("Online Retail.xlsx")      # doctest: +SKIP
>>> print("\\n".join(ds.report.lines()))                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shoprec.data.dataset import Dataset
from shoprec.data.frames import dataset_from_frames
from shoprec.data.io import read_table
from shoprec.data.report import IngestReport
from shoprec.data.schema import INTERACTIONS
from shoprec.data.validate import drop_unusable, parse_float, parse_time
from shoprec.errors import DataError, ShoprecError

REQUIRED_COLUMNS: tuple[str, ...] = ("InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID")
"""Columns every Online Retail file must have."""
OPTIONAL_COLUMNS: tuple[str, ...] = ("Description", "Country")
"""Columns used when present: item titles and the country mix of each item's buyers."""
PRODUCT_CODE = r"^\d"
"""Stock codes of real products start with a digit (``85123A``, ``15056BL``); service codes do not."""
GUEST_MODES = ("drop", "invoice")


def check_columns(columns: list[str] | pd.Index, file: str) -> None:
    """Raise a :class:`DataError` naming the first missing Online Retail column."""
    present = {str(c).strip() for c in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        found = ", ".join(str(c) for c in list(columns)[:12]) or "none"
        raise DataError(
            f"missing Online Retail column '{missing[0]}' (columns found: {found})",
            file=file,
            column=missing[0],
            fix=f"An Online Retail file needs columns {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}",
        )


def is_online_retail(columns: list[str] | pd.Index) -> bool:
    """Whether a header holds every required Online Retail column (for format detection)."""
    present = {str(c).strip() for c in columns}
    return all(c in present for c in REQUIRED_COLUMNS)


def _workbook_error(path: Path | str, err: Exception) -> DataError:
    return DataError(
        f"cannot read the file as an Excel workbook: {str(err)[:200]}",
        file=str(path),
        fix="Check that the file is a complete .xlsx workbook",
    )


def _open_workbook(path: str | Path):  # -> openpyxl.Workbook (imported lazily: it is slow to import)
    import openpyxl

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises zip, XML and key errors for broken files
        raise _workbook_error(path, err) from None


def xlsx_columns(path: str | Path) -> list[str]:
    """Header row of the first sheet of an Excel workbook, read without loading the rows."""
    book = _open_workbook(path)
    try:
        header = next(book.worksheets[0].iter_rows(max_row=1, values_only=True), ())
    except Exception as err:
        raise _workbook_error(path, err) from None
    finally:
        book.close()
    return [str(c).strip() for c in header if c is not None]


def read_xlsx(path: str | Path, progress: bool = True) -> pd.DataFrame:
    """First sheet of an Excel workbook as a DataFrame (openpyxl, streamed with a progress bar)."""
    path = Path(path)
    book = _open_workbook(path)
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        total = max(0, (sheet.max_row or 1) - 1) or None
        data = list(tqdm(rows, total=total, desc=f"reading {path.name}", unit=" rows", disable=not progress))
    except Exception as err:
        raise _workbook_error(path, err) from None
    finally:
        book.close()
    if header is None:
        raise DataError("the workbook's first sheet is empty", file=str(path), fix="Put the header in row 1")
    names = [str(c).strip() if c is not None else f"column_{i + 1}" for i, c in enumerate(header)]
    return pd.DataFrame.from_records(data, columns=names)


def read_online_retail(path: str | Path, progress: bool = True) -> pd.DataFrame:
    """The raw rows of an Online Retail file (.xlsx, .csv, .tsv or .parquet), columns checked."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path), fix="Check the path, or run 'shoprec datasets download'")
    excel = path.suffix.lower() in (".xlsx", ".xlsm")
    raw = read_xlsx(path, progress=progress) if excel else read_table(path)
    raw.columns = [str(c).strip() for c in raw.columns]
    check_columns(raw.columns, str(path))
    if len(raw) == 0:
        raise DataError("the file has a header but no rows", file=str(path), fix="Export the transactions too")
    return raw


def _scalar_id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _id_text(values: pd.Series) -> pd.Series:
    """Ids as stripped strings: Excel numbers (``536365``, ``17850.0``) lose their float tail."""
    if pd.api.types.is_float_dtype(values):
        whole = values.dropna()
        if (whole == np.floor(whole)).all():
            values = values.astype("Int64")
    elif values.dtype == object:
        values = values.map(_scalar_id, na_action="ignore")
    out = values.astype("string").str.strip()
    return out.mask(out == "", pd.NA)


def _customer_ids(values: pd.Series) -> pd.Series:
    """Customer ids as strings; ``"17850.0"`` (a float written to CSV) becomes ``"17850"``."""
    ids = _id_text(values)
    numbers = pd.to_numeric(ids, errors="coerce")
    whole = numbers.notna() & (numbers == np.floor(numbers))
    return ids.mask(whole, numbers.where(whole, 0).astype("int64").astype("string"))


def _invoice_seconds(values: pd.Series, source: str) -> pd.Series:
    """InvoiceDate as unix seconds (Int64, NA where empty); naive times are taken as UTC."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values
    else:
        raw = values.astype("string").str.strip()
        raw = raw.mask(raw == "", pd.NA)
        stamps = None
        for fmt in ("ISO8601", "%m/%d/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M:%S"):
            try:
                stamps = pd.to_datetime(raw, format=fmt)
                break
            except (ValueError, TypeError):
                continue
        if stamps is None:  # mixed formats: the generic parser names the first bad row
            return parse_time(values, "InvoiceDate", INTERACTIONS, source)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = stamps.dt.round("s")  # Excel stores times as fractions of a day
    seconds = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    return seconds.astype("Int64")


def parse_rows(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Typed columns from raw rows; text that is not a number or a time is a DataError naming its row."""
    try:
        frame = pd.DataFrame(
            {
                "invoice": _id_text(raw["InvoiceNo"]).str.upper(),
                "item_id": _id_text(raw["StockCode"]).str.upper().str.replace(r"\s+", " ", regex=True),
                "quantity": parse_float(raw["Quantity"], "Quantity", INTERACTIONS, source),
                "price": parse_float(raw["UnitPrice"], "UnitPrice", INTERACTIONS, source),
                "timestamp": _invoice_seconds(raw["InvoiceDate"], source),
                "customer": _customer_ids(raw["CustomerID"]),
            }
        )
    except DataError as err:
        if err.row is None or not source.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
            raise
        raise DataError(
            err.problem, file=err.file, row=err.row, column=err.column, fix=err.fix, line_offset=1
        ) from None
    for column, name in (("description", "Description"), ("country", "Country")):
        text = raw[name].astype("string").str.strip() if name in raw.columns else pd.Series("", index=raw.index)
        frame[column] = text.fillna("").astype("string")
    frame["position"] = np.arange(len(frame), dtype=np.float64)
    return frame


def _drop_reasons(frame: pd.DataFrame, guests: str, min_price: float) -> dict[str, pd.Series]:
    """Masks of rows that are not product purchases, in the order they are counted."""
    needed = frame[["invoice", "item_id", "quantity", "price", "timestamp"]].isna().any(axis=1)
    reasons = {
        "empty InvoiceNo, StockCode, Quantity, UnitPrice or InvoiceDate": needed,
        "cancellation (InvoiceNo starts with C)": frame["invoice"].str.startswith("C").fillna(False).astype(bool),
        "return or stock adjustment (Quantity <= 0)": (frame["quantity"] <= 0).fillna(False),
    }
    if guests == "drop":
        reasons["guest without CustomerID (guests='drop')"] = frame["customer"].isna()
    product = frame["item_id"].str.contains(PRODUCT_CODE, regex=True).fillna(False).astype(bool)
    reasons["non-product stock code (postage, fees, discounts, manual entries, samples, vouchers)"] = ~product
    reasons[f"UnitPrice <= {min_price:g}"] = (frame["price"] <= min_price).fillna(False)
    return reasons


def _mode(frame: pd.DataFrame, column: str) -> pd.Series:
    """Most frequent non-empty ``column`` per item (ties: alphabetically first), indexed by item_id."""
    have = frame[frame[column] != ""]
    counts = have.groupby(["item_id", column], observed=True).size().rename("n").reset_index()
    counts = counts.sort_values(["item_id", "n", column], ascending=[True, False, True], kind="mergesort")
    return counts.drop_duplicates("item_id").set_index("item_id")[column]


def build_catalog(kept: pd.DataFrame) -> pd.DataFrame:
    """One row per stock code sold: most frequent description as title, median price, first sale
    time, and the country mix of its buyers (number of countries, most common country)."""
    grouped = kept.groupby("item_id", observed=True)
    items = pd.DataFrame(
        {
            "price": grouped["price"].median(),
            "created_at": grouped["timestamp"].min().astype("int64"),
            "n_countries": kept["country"].mask(kept["country"] == "").groupby(kept["item_id"]).nunique(),
        }
    )
    items["title"] = _mode(kept, "description").reindex(items.index).fillna("").astype("string")
    items["top_country"] = _mode(kept, "country").reindex(items.index).fillna("").astype("string")
    items = items.sort_index().reset_index()
    return items[["item_id", "title", "price", "created_at", "n_countries", "top_country"]]


def _notes(
    report: IngestReport, frame: pd.DataFrame, reasons: dict[str, pd.Series], kept: pd.DataFrame, guests: str
) -> None:
    codes = frame.loc[reasons[next(r for r in reasons if r.startswith("non-product"))], "item_id"].value_counts()
    if len(codes):
        top = ", ".join(f"{code} {n:,}" for code, n in codes.head(8).items())
        report.note(f"non-product stock codes seen (all rows, before other drops): {top}")
    report.note("each invoice is a basket: session_id = InvoiceNo, one 'purchase' event per invoice line")
    report.note("value = Quantity * UnitPrice (line revenue, GBP); item price = median UnitPrice of its sales")
    report.note("InvoiceDate has no time zone: read as UTC; invoice lines keep their file order (position)")
    if guests == "invoice":
        n_guest = int(kept["user_id"].str.startswith("guest:").sum())
        invoices = kept.loc[kept["user_id"].str.startswith("guest:"), "session_id"].nunique()
        report.note(f"{n_guest:,} guest lines kept as {invoices:,} anonymous users 'guest:<InvoiceNo>'")
    repeats = int(kept.duplicated(["session_id", "item_id"]).sum())
    if repeats:
        report.note(f"{repeats:,} invoice lines repeat an item already on the same invoice: kept as separate events")


def load_online_retail(
    path: str | Path,
    guests: str = "drop",
    min_price: float = 0.0,
    name: str = "online-retail",
    progress: bool = True,
) -> Dataset:
    """Load the UCI Online Retail file (.xlsx as published, or .csv / .parquet) as a Dataset.

    Args:
        path: the file; columns InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
            UnitPrice, CustomerID, Country (Description and Country may be absent).
        guests: ``"drop"`` rows without a CustomerID (counted), or ``"invoice"`` to keep each guest
            invoice as its own user ``guest:<InvoiceNo>``.
        min_price: lines whose UnitPrice is at or below this (GBP) are dropped and counted.
        name: the dataset's name.
        progress: show a progress bar while reading an Excel file (the published one takes one to two
            minutes to read with openpyxl).

    >>> ds = load_online_retail("online_retail.parquet")  # doctest: +SKIP
    >>> ds.n_users, ds.n_items                            # doctest: +SKIP
    (4334, 3659)
    """
    if guests not in GUEST_MODES:
        raise ShoprecError(f"guests must be one of {', '.join(GUEST_MODES)}, not {guests!r}")
    source = str(path)
    raw = read_online_retail(path, progress=progress)
    frame = parse_rows(raw, source)
    report = IngestReport()
    reasons = _drop_reasons(frame, guests, min_price)
    kept = drop_unusable(frame, "interactions", reasons, report)
    if len(kept) == 0:
        raise DataError(
            "no product purchases remain after dropping cancellations, returns, guests and non-product lines",
            file=source,
            fix="Check the file, or pass guests='invoice'",
        )
    user_id = kept["customer"].fillna("guest:" + kept["invoice"])
    interactions = pd.DataFrame(
        {
            "user_id": user_id,
            "item_id": kept["item_id"],
            "event": "purchase",
            "value": kept["quantity"] * kept["price"],
            "timestamp": kept["timestamp"],
            "session_id": kept["invoice"],
            "quantity": kept["quantity"],
            "position": kept["position"],
        }
    ).reset_index(drop=True)
    _notes(report, frame, reasons, interactions, guests)
    dataset = dataset_from_frames(build_catalog(kept), interactions, name=name, report=report)
    report.rows_read["interactions"] = len(raw)  # clean_table counted only the rows that reached it
    return dataset
