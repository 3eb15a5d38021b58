"""Tiny Online Retail files in each release's published layout, with their known counts.

Two "years" as Online Retail II publishes them: sheet "Year 2009-2010" ends with the invoices of
early December 2010, which sheet "Year 2010-2011" repeats at its start (as the published workbook
does for 2010-12-01 to 2010-12-09). Each line is one kind of row the adapter must handle.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shoprec.data.adapters.retail_files import FIRST_RELEASE, SECOND_RELEASE, Layout

SHEETS = ("Year 2009-2010", "Year 2010-2011")
_FIRST_YEAR = [  # Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country
    (489434, "85048", "GLASS BALL 20 LIGHTS", 12, "2009-12-01 07:45", 6.95, 13085.0, "United Kingdom"),  # kept
    (489434, "79323P", "PINK CHERRY LIGHTS", 12, "2009-12-01 07:45", 6.75, 13085.0, "United Kingdom"),  # kept
    ("C489449", "22087", "PAPER BUNTING", -12, "2009-12-01 10:33", 2.95, 16321.0, "Australia"),  # cancellation
    (489450, "21871", "damaged", -3, "2009-12-01 10:50", 0.0, None, "United Kingdom"),  # return / adjustment
    (489451, "22111", "SCOTTIE DOG HOT WATER BOTTLE", 2, "2009-12-01 11:00", 4.25, None, "United Kingdom"),  # guest
    (489452, "POST", "POSTAGE", 1, "2009-12-02 12:00", 18.0, 12682.0, "France"),  # non-product
    (489453, "21523", "DOORMAT FANCY FONT", 1, "2009-12-02 12:30", 0.0, 12682.0, "France"),  # free
    (536365, "85123A", "WHITE HANGING HEART", 6, "2010-12-01 08:26", 2.55, 17850.0, "United Kingdom"),  # kept
    (536365, "71053", "WHITE METAL LANTERN", 6, "2010-12-01 08:26", 3.39, 17850.0, "United Kingdom"),  # kept
    (538171, "22962", "JAM JAR SEALER", 2, "2010-12-09 20:01", 0.85, 17530.0, "United Kingdom"),  # kept
]
_SECOND_YEAR = _FIRST_YEAR[-3:] + [  # the overlap again, then 2011
    (539993, "22386", "JUMBO BAG PINK", 10, "2011-01-04 10:00", 1.95, 13313.0, "United Kingdom"),  # kept
    ("C539994", "22386", "JUMBO BAG PINK", -10, "2011-01-04 10:05", 1.95, 13313.0, "United Kingdom"),  # cancel
    (539995, "85123A", "WHITE HANGING HEART", 3, "2011-01-05 09:00", 2.95, 13085.0, "United Kingdom"),  # kept
]

KEPT = {"both": 7, SHEETS[0]: 5, SHEETS[1]: 5}
"""Purchases kept when reading both sheets, or one."""


def dropped(layout: Layout, which: str = "both") -> dict[str, int]:
    """The drop counts the adapter must report, labelled with ``layout``'s column names."""
    counts = {
        "copy of an invoice already read (the same lines again, e.g. where two sheets overlap)": 3,
        f"cancellation ({layout.invoice} starts with C)": 2,
        "return or stock adjustment (Quantity <= 0)": 1,
        f"guest without {layout.customer} (guests='drop')": 1,
        "non-product stock code (postage, fees, discounts, manual entries, samples, vouchers)": 1,
        f"{layout.price} <= 0": 1,
    }
    if which == SHEETS[1]:
        return {f"cancellation ({layout.invoice} starts with C)": 1}
    if which == SHEETS[0]:
        del counts[next(iter(counts))]
        counts[f"cancellation ({layout.invoice} starts with C)"] = 1
    return counts


def year(rows: list[tuple], layout: Layout = SECOND_RELEASE) -> pd.DataFrame:
    """Rows as the workbook holds them: invoice numbers as numbers (text only with a letter), times
    as datetimes, customer ids as floats."""
    columns = [layout.invoice, "StockCode", "Description", "Quantity", "InvoiceDate", layout.price]
    frame = pd.DataFrame(rows, columns=[*columns, layout.customer, "Country"])
    frame[layout.invoice] = frame[layout.invoice].astype(object)
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"])
    return frame


def years(layout: Layout = SECOND_RELEASE) -> tuple[pd.DataFrame, pd.DataFrame]:
    return year(_FIRST_YEAR, layout), year(_SECOND_YEAR, layout)


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    """An .xlsx with one sheet per entry, header in row 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


def write_release(folder: Path, layout: Layout, suffix: str) -> Path:
    """Both years in ``layout``: a workbook with one sheet per year (Online Retail II) or one sheet
    (the first release, ``Online Retail``); or the years stacked into one CSV or Parquet file, as
    exports of the workbook are passed around."""
    first, second = years(layout)
    path = folder / f"{layout.release.replace(' ', '_')}{suffix}"
    if suffix == ".xlsx" and layout == SECOND_RELEASE:
        return write_workbook(path, dict(zip(SHEETS, (first, second), strict=True)))
    stacked = pd.concat([first, second], ignore_index=True)
    if suffix == ".xlsx":
        return write_workbook(path, {"Online Retail": stacked})
    folder.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        stacked.to_csv(path, index=False)
    else:
        stacked.astype({layout.invoice: str}).to_parquet(path, index=False)
    return path


__all__ = ["FIRST_RELEASE", "KEPT", "SECOND_RELEASE", "SHEETS", "dropped", "write_release", "write_workbook", "years"]
