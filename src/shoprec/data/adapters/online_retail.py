"""The UCI "Online Retail" transactions (a UK gift shop) as a shoprec Dataset, from either release:
Online Retail (2010-12 to 2011-12) or Online Retail II (2009-12 to 2011-12, one sheet per year);
see :mod:`shoprec.data.adapters.retail_files` for the two layouts. Column names below are the first
release's; Online Retail II calls them ``Invoice``, ``Price`` and ``Customer ID``.

Each invoice is a basket: ``session_id`` is the ``InvoiceNo``, every invoice line is one
``purchase`` event with ``quantity = Quantity`` and ``value = Quantity * UnitPrice`` (the line's
revenue in GBP; the unit price itself is the item's ``price`` in the catalog). Rows that are not
purchases are dropped and counted in the report, first matching reason wins:

1. cells needed for an event are empty (InvoiceNo, StockCode, Quantity, InvoiceDate, UnitPrice);
2. copies of an invoice already read: a run of an invoice's lines that repeats an earlier run of
   the same invoice line for line (Online Retail II's two sheets both hold 2010-12-01 to 2010-12-09);
3. cancellations (``InvoiceNo`` starting with ``C``);
4. returns and stock adjustments (``Quantity <= 0`` on a normal invoice);
5. guests without a ``CustomerID`` (with ``guests="drop"``; ``guests="invoice"`` keeps each guest
   invoice as its own anonymous user ``guest:<InvoiceNo>``);
6. non-product stock codes (postage, carriage, fees, discounts, manual entries, samples, gift
   vouchers, bad-debt adjustments): product codes start with a digit (``85123A``), these do not
   (``POST``, ``C2``, ``B``);
7. unit prices at or below ``min_price`` (free samples, write-offs).

>>> ds = load_online_retail("Online Retail.xlsx")      # doctest: +SKIP
>>> print("\\n".join(ds.report.lines()))                 # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.data.adapters.retail_files import FIRST_RELEASE, Layout, RetailRows, read_online_retail
from shoprec.data.dataset import Dataset
from shoprec.data.frames import dataset_from_frames
from shoprec.data.report import IngestReport
from shoprec.data.schema import INTERACTIONS
from shoprec.data.validate import drop_unusable, parse_float, parse_time
from shoprec.errors import DataError, ShoprecError

PRODUCT_CODE = r"^\d"
"""Stock codes of real products start with a digit (``85123A``, ``15056BL``); service codes do not."""
GUEST_MODES = ("drop", "invoice")


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


def parse_rows(rows: RetailRows, source: str) -> pd.DataFrame:
    """Typed columns from raw rows; text that is not a number or a time is a DataError naming its row
    (and its sheet, in a workbook of several), with the column named as the file names it."""
    raw, layout = rows.frame, rows.layout
    try:
        frame = pd.DataFrame(
            {
                "invoice": _id_text(raw["InvoiceNo"]).str.upper(),
                "item_id": _id_text(raw["StockCode"]).str.upper().str.replace(r"\s+", " ", regex=True),
                "quantity": parse_float(raw["Quantity"], "Quantity", INTERACTIONS, source),
                "price": parse_float(raw["UnitPrice"], layout.price, INTERACTIONS, source),
                "timestamp": _invoice_seconds(raw["InvoiceDate"], source),
                "customer": _customer_ids(raw["CustomerID"]),
            }
        )
    except DataError as err:
        raise _in_sheet(err, rows, source) from None
    for column, name in (("description", "Description"), ("country", "Country")):
        text = raw[name].astype("string").str.strip() if name in raw.columns else pd.Series("", index=raw.index)
        frame[column] = text.fillna("").astype("string")
    frame["position"] = np.arange(len(frame), dtype=np.float64)
    frame["part"] = rows.part()
    return frame


def _in_sheet(err: DataError, rows: RetailRows, source: str) -> DataError:
    """A parse error pinned to the file's own row: the line in a CSV, the sheet and row in a workbook."""
    if err.row is None:
        return err
    if source.lower().endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        return DataError(err.problem, file=err.file, row=err.row, column=err.column, fix=err.fix, line_offset=1)
    sheet, row = rows.locate(err.row)
    if sheet is None or len(rows.sheets) == 1:
        return err
    return DataError(err.problem, file=f"{source}, sheet '{sheet}'", row=row, column=err.column, fix=err.fix)


def repeated_invoices(frame: pd.DataFrame) -> pd.Series:
    """Lines of an invoice that repeat, line for line, an earlier run of the same invoice (a run: the
    invoice's consecutive lines within one sheet). Online Retail II's two sheets both hold the invoices
    of 2010-12-01 to 2010-12-09, and so does a CSV or Parquet file made by stacking them."""
    invoice = frame["invoice"].fillna("")
    codes, part = invoice.to_numpy(dtype=object), frame["part"].to_numpy()
    new_run = np.r_[True, (codes[1:] != codes[:-1]) | (part[1:] != part[:-1])]
    run = np.cumsum(new_run)
    lines = frame[["item_id", "quantity", "price", "timestamp", "customer"]]
    hashes = pd.Series(pd.util.hash_pandas_object(lines, index=False).to_numpy(), index=run)
    signature = hashes.groupby(level=0, sort=False).agg(tuple)
    first_invoice = invoice.groupby(run, sort=False).first()
    runs = pd.DataFrame({"invoice": first_invoice.to_numpy(), "lines": signature.to_numpy()})
    copy = runs.duplicated(["invoice", "lines"]).to_numpy() & (runs["invoice"] != "").to_numpy()
    return pd.Series(copy[run - 1], index=frame.index)


def _drop_reasons(
    frame: pd.DataFrame, guests: str, min_price: float, layout: Layout = FIRST_RELEASE
) -> dict[str, pd.Series]:
    """Masks of rows that are not product purchases, in the order they are counted; each reason
    names the columns as ``layout`` (the file's release) names them."""
    invoice, price, customer = layout.invoice, layout.price, layout.customer
    needed = frame[["invoice", "item_id", "quantity", "price", "timestamp"]].isna().any(axis=1)
    reasons = {
        f"empty {invoice}, StockCode, Quantity, {price} or InvoiceDate": needed,
        "copy of an invoice already read (the same lines again, e.g. where two sheets overlap)": repeated_invoices(
            frame
        ),
        f"cancellation ({invoice} starts with C)": frame["invoice"].str.startswith("C").fillna(False).astype(bool),
        "return or stock adjustment (Quantity <= 0)": (frame["quantity"] <= 0).fillna(False),
    }
    if guests == "drop":
        reasons[f"guest without {customer} (guests='drop')"] = frame["customer"].isna()
    product = frame["item_id"].str.contains(PRODUCT_CODE, regex=True).fillna(False).astype(bool)
    reasons["non-product stock code (postage, fees, discounts, manual entries, samples, vouchers)"] = ~product
    reasons[f"{price} <= {min_price:g}"] = (frame["price"] <= min_price).fillna(False)
    return reasons


def _mode(frame: pd.DataFrame, column: str) -> pd.Series:
    """Most frequent non-empty ``column`` per item (ties: alphabetically first), indexed by item_id."""
    have = frame[frame[column] != ""]
    counts = have.groupby(["item_id", column], observed=True).size().rename("n").reset_index()
    counts = counts.sort_values(["item_id", "n", column], ascending=[True, False, True], kind="mergesort")
    return counts.drop_duplicates("item_id").set_index("item_id")[column]


EVENT_DERIVED: dict[str, str] = {"created_at": "first_event_time", "price": "median_event_price"}
"""The file has no catalogue: an item's launch time is its first sale and its price the median unit
price it sold at. Declared as derived (:attr:`Dataset.derived`), so each split recomputes them from
its training events instead of the whole file (a first sale in the test window is not known before)."""


def build_catalog(kept: pd.DataFrame) -> pd.DataFrame:
    """One row per stock code sold: most frequent description as title, and the country mix of its
    buyers (number of countries, most common country). Price and first sale time are derived from
    the events by the Dataset (:data:`EVENT_DERIVED`)."""
    items = pd.DataFrame(
        {"n_countries": kept["country"].mask(kept["country"] == "").groupby(kept["item_id"]).nunique()}
    )
    items["title"] = _mode(kept, "description").reindex(items.index).fillna("").astype("string")
    items["top_country"] = _mode(kept, "country").reindex(items.index).fillna("").astype("string")
    items = items.sort_index().reset_index()
    return items[["item_id", "title", "n_countries", "top_country"]]


def _notes(
    report: IngestReport, frame: pd.DataFrame, reasons: dict[str, pd.Series], kept: pd.DataFrame, guests: str
) -> None:
    codes = frame.loc[reasons[next(r for r in reasons if r.startswith("non-product"))], "item_id"].value_counts()
    if len(codes):
        top = ", ".join(f"{code} {n:,}" for code, n in codes.head(8).items())
        report.note(f"non-product stock codes seen (all rows, before other drops): {top}")
    report.note("each invoice is a basket: session_id = InvoiceNo, one 'purchase' event per invoice line")
    report.note(
        "value = Quantity * UnitPrice (line revenue, GBP); item price = median UnitPrice of its sales, "
        "created_at = first sale; both recomputed from the training events of each split"
    )
    report.note("InvoiceDate has no time zone: read as UTC; invoice lines keep their file order (position)")
    if guests == "invoice":
        n_guest = int(kept["user_id"].str.startswith("guest:").sum())
        invoices = kept.loc[kept["user_id"].str.startswith("guest:"), "session_id"].nunique()
        report.note(f"{n_guest:,} guest lines kept as {invoices:,} anonymous users 'guest:<InvoiceNo>'")
    repeats = int(kept.duplicated(["session_id", "item_id"]).sum())
    if repeats:
        report.note(f"{repeats:,} invoice lines repeat an item already on the same invoice: kept as separate events")


def _source_note(report: IngestReport, rows: RetailRows) -> None:
    """Which release the columns are from, and which sheets were read (rows per sheet)."""
    where = ", ".join(f"'{name}' ({n:,} rows)" for name, n in rows.sheets)
    report.note(f"{rows.layout.release} columns" + (f"; sheets read: {where}" if where else ""))


def load_online_retail(
    path: str | Path,
    guests: str = "drop",
    min_price: float = 0.0,
    name: str = "online-retail",
    progress: bool = True,
    sheet: str | None = None,
) -> Dataset:
    """Load a UCI Online Retail file of either release (.xlsx as published, or .csv / .parquet) as a Dataset.

    Args:
        path: the file; the first release's columns InvoiceNo, StockCode, Description, Quantity,
            InvoiceDate, UnitPrice, CustomerID, Country, or Online Retail II's Invoice, StockCode,
            Description, Quantity, InvoiceDate, Price, Customer ID, Country (Description and Country
            may be absent).
        guests: ``"drop"`` rows without a CustomerID (counted), or ``"invoice"`` to keep each guest
            invoice as its own user ``guest:<InvoiceNo>``.
        min_price: lines whose UnitPrice is at or below this (GBP) are dropped and counted.
        name: the dataset's name.
        progress: show a progress bar while reading an Excel file (the published ones take one to a few
            minutes to read with openpyxl).
        sheet: read only this sheet of a workbook (Online Retail II: ``"Year 2009-2010"`` or
            ``"Year 2010-2011"``); by default every sheet is read and an invoice found in two sheets
            is kept once (the copy is counted).

    >>> ds = load_online_retail("online_retail.parquet")  # doctest: +SKIP
    >>> ds.n_users, ds.n_items                            # doctest: +SKIP
    (4334, 3659)
    """
    if guests not in GUEST_MODES:
        raise ShoprecError(f"guests must be one of {', '.join(GUEST_MODES)}, not {guests!r}")
    source = str(path)
    raw = read_online_retail(path, sheet=sheet, progress=progress)
    frame = parse_rows(raw, source)
    report = IngestReport()
    _source_note(report, raw)
    reasons = _drop_reasons(frame, guests, min_price, raw.layout)
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
            "price": kept["price"],
        }
    ).reset_index(drop=True)
    _notes(report, frame, reasons, interactions, guests)
    dataset = dataset_from_frames(build_catalog(kept), interactions, name=name, report=report, derived=EVENT_DERIVED)
    report.rows_read["interactions"] = len(raw.frame)  # clean_table counted only the rows that reached it
    return dataset
