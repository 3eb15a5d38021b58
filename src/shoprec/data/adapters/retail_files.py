"""Reading UCI Online Retail files as published: both releases' columns, and one sheet per year.

Two releases are in circulation:

- **Online Retail** (2010-12 to 2011-12): ``Online Retail.xlsx`` with one sheet, columns
  ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country``;
- **Online Retail II** (2009-12 to 2011-12): ``online_retail_II.xlsx`` with one sheet per year
  ("Year 2009-2010", "Year 2010-2011"), columns ``Invoice, StockCode, Description, Quantity,
  InvoiceDate, Price, Customer ID, Country``.

Either may also come as CSV or Parquet. :func:`read_online_retail` reads any of them (every sheet
of a workbook, concatenated in workbook order, or one chosen sheet) into the first release's column
names, so the rest of the adapter sees one layout; :class:`RetailRows` remembers which release and
which sheets the rows came from, for messages and the ingest report.

>>> rows = read_online_retail("online_retail_II.xlsx", sheet="Year 2010-2011")  # doctest: +SKIP
>>> rows.layout.release, rows.sheets                                             # doctest: +SKIP
('Online Retail II', [('Year 2010-2011', 541910)])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shoprec.data.io import read_table
from shoprec.errors import DataError

OPTIONAL_COLUMNS: tuple[str, ...] = ("Description", "Country")
"""Columns used when present: item titles and the country mix of each item's buyers."""
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


@dataclass(frozen=True)
class Layout:
    """The column names of one release (the columns that differ between releases)."""

    release: str
    invoice: str
    price: str
    customer: str

    @property
    def required(self) -> tuple[str, ...]:
        """Columns every file of this release must have."""
        return (self.invoice, "StockCode", "Quantity", "InvoiceDate", self.price, self.customer)

    def describe(self) -> str:
        """The release and its columns in published order (Description and Country are optional)."""
        published = (self.invoice, "StockCode", "Description", "Quantity", "InvoiceDate", self.price)
        return f"{self.release}: {', '.join(published + (self.customer, 'Country'))}"


FIRST_RELEASE = Layout("Online Retail", invoice="InvoiceNo", price="UnitPrice", customer="CustomerID")
SECOND_RELEASE = Layout("Online Retail II", invoice="Invoice", price="Price", customer="Customer ID")
LAYOUTS: tuple[Layout, ...] = (FIRST_RELEASE, SECOND_RELEASE)
REQUIRED_COLUMNS: tuple[str, ...] = FIRST_RELEASE.required
"""The first release's required columns: the names rows carry after :func:`read_online_retail`."""


def layout_of(columns: list[str] | pd.Index) -> Layout | None:
    """The release whose required columns are all in ``columns`` (None when neither's are)."""
    present = {str(c).strip() for c in columns}
    return next((lay for lay in LAYOUTS if all(c in present for c in lay.required)), None)


def is_online_retail(columns: list[str] | pd.Index) -> bool:
    """Whether a header holds every required column of either release (for format detection)."""
    return layout_of(columns) is not None


def check_columns(columns: list[str] | pd.Index, file: str, more_fix: str = "") -> Layout:
    """The release ``columns`` belong to; a :class:`DataError` naming the first missing column of
    the nearer release (ties go to the first release) when they hold neither's."""
    layout = layout_of(columns)
    if layout is not None:
        return layout
    present = {str(c).strip() for c in columns}
    nearest = max(LAYOUTS, key=lambda lay: sum(c in present for c in lay.required))  # max keeps the first on ties
    missing = next(c for c in nearest.required if c not in present)
    found = ", ".join(str(c) for c in list(columns)[:12]) or "none"
    raise DataError(
        f"missing Online Retail column '{missing}' (columns found: {found})",
        file=file,
        column=missing,
        fix="An Online Retail file needs the columns of either release ("
        + "; ".join(lay.describe() for lay in LAYOUTS)
        + ")"
        + more_fix,
    )


@dataclass
class RetailRows:
    """Raw rows in the first release's column names, with where they came from."""

    frame: pd.DataFrame
    layout: Layout
    sheets: list[tuple[str, int]] = field(default_factory=list)
    """(sheet name, rows) in read order; empty for CSV and Parquet files."""

    def part(self) -> np.ndarray:
        """Which sheet each row came from (0 for every row of a CSV or Parquet file)."""
        if not self.sheets:
            return np.zeros(len(self.frame), dtype=np.int64)
        return np.repeat(np.arange(len(self.sheets)), [n for _, n in self.sheets])

    def locate(self, row: int) -> tuple[str | None, int]:
        """The sheet (None for a CSV or Parquet file) and 1-based row within it of data row ``row``."""
        for name, n in self.sheets:
            if row <= n:
                return name, row
            row -= n
        return None, row


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


def _choose_sheets(names: list[str], sheet: str | None, path: Path) -> list[str]:
    if sheet is None:
        return names
    chosen = [n for n in names if n.strip().lower() == sheet.strip().lower()]
    if not chosen:
        raise DataError(
            f"no sheet named '{sheet}' (sheets: {', '.join(repr(n) for n in names)})",
            file=str(path),
            fix="Pass one of these names as sheet= (CLI: --sheet), or leave it out to read every sheet",
        )
    return chosen[:1]


def _sheet_frame(book, name: str, path: Path, progress: bool) -> pd.DataFrame | None:
    """One sheet as a DataFrame, header from row 1 (None for a sheet with no cells)."""
    sheet = book[name]
    rows = sheet.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None or all(c is None for c in header):
        return None
    total = max(0, (sheet.max_row or 1) - 1) or None
    desc = f"reading {path.name} [{name}]"
    data = list(tqdm(rows, total=total, desc=desc, unit=" rows", disable=not progress))
    names = [str(c).strip() if c is not None else f"column_{i + 1}" for i, c in enumerate(header)]
    return pd.DataFrame.from_records(data, columns=names)


def read_xlsx(path: str | Path, sheet: str | None = None, progress: bool = True) -> list[tuple[str, pd.DataFrame]]:
    """Every sheet of an Excel workbook (or only ``sheet``) as ``(name, DataFrame)`` pairs, header in
    row 1, streamed with openpyxl and a progress bar; sheets with no cells are left out."""
    path = Path(path)
    book = _open_workbook(path)
    try:
        frames = []
        for name in _choose_sheets(list(book.sheetnames), sheet, path):
            frame = _sheet_frame(book, name, path, progress)
            if frame is not None:
                frames.append((name, frame))
    except DataError:
        raise
    except Exception as err:
        raise _workbook_error(path, err) from None
    finally:
        book.close()
    if not frames:
        raise DataError(
            "the workbook has no sheet with a header in row 1", file=str(path), fix="Put the header in row 1"
        )
    return frames


def _to_first_release(frame: pd.DataFrame, file: str, more_fix: str = "") -> tuple[pd.DataFrame, Layout]:
    frame.columns = [str(c).strip() for c in frame.columns]
    layout = check_columns(frame.columns, file, more_fix)
    names = dict(zip(layout.required, FIRST_RELEASE.required, strict=True))
    return frame.rename(columns=names), layout


def _read_workbook(path: Path, sheet: str | None, progress: bool) -> RetailRows:
    sheets = read_xlsx(path, sheet=sheet, progress=progress)
    hint = ", or pass sheet= (CLI: --sheet) to read only one sheet" if len(sheets) > 1 else ""
    frames, layouts = [], []
    for name, frame in sheets:
        frame, layout = _to_first_release(frame, f"{path}, sheet '{name}'", hint)
        frames.append(frame)
        layouts.append(layout)
    if len(set(layouts)) > 1:
        which = "; ".join(f"'{name}': {lay.release}" for (name, _), lay in zip(sheets, layouts, strict=True))
        raise DataError(
            f"the sheets have the columns of different releases ({which})",
            file=str(path),
            fix="Read one sheet at a time with sheet= (CLI: --sheet)",
        )
    raw = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return RetailRows(raw, layouts[0], [(name, len(frame)) for name, frame in sheets])


def read_online_retail(path: str | Path, sheet: str | None = None, progress: bool = True) -> RetailRows:
    """The raw rows of an Online Retail file of either release (.xlsx, .csv, .tsv or .parquet),
    columns checked and renamed to the first release's names.

    ``sheet`` picks one sheet of a workbook by name; by default every sheet is read, in order.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=str(path), fix="Check the path, or run 'shoprec datasets download'")
    if path.suffix.lower() in EXCEL_SUFFIXES:
        rows = _read_workbook(path, sheet, progress)
    elif sheet is not None:
        raise DataError(
            f"sheet='{sheet}' was given, but only Excel workbooks have sheets",
            file=str(path),
            fix="Leave sheet out for a CSV or Parquet file",
        )
    else:
        raw, layout = _to_first_release(read_table(path), str(path))
        rows = RetailRows(raw, layout)
    if len(rows.frame) == 0:
        raise DataError("the file has a header but no rows", file=str(path), fix="Export the transactions too")
    return rows
