"""Both Online Retail releases as published: the first (InvoiceNo, UnitPrice, CustomerID) and
Online Retail II (Invoice, Price, Customer ID; one sheet per year), as .xlsx, .csv and .parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from shoprec.cli.main import main
from shoprec.data.adapters import detect_format, load_dataset, load_online_retail
from shoprec.errors import DataError, ShoprecError
from tinyretail import FIRST_RELEASE, KEPT, SECOND_RELEASE, SHEETS, dropped, write_release, write_workbook, years


def drops(ds) -> dict[str, int]:
    return {reason: n for (_, reason), n in ds.report.dropped.items()}


def events(ds) -> pd.DataFrame:
    """The purchases as external ids, in a canonical order (for comparing loads)."""
    rows = ds.interactions
    frame = pd.DataFrame(
        {
            "user": ds.user_vocab.ids(rows["user"].to_numpy()),
            "item": ds.item_vocab.ids(rows["item"].to_numpy()),
            "timestamp": rows["timestamp"].to_numpy(),
            "value": rows["value"].round(6).to_numpy(),
            "session": rows["session_id"].astype(str).to_numpy(),
        }
    )
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[tuple[str, str], object]:
    folder = tmp_path_factory.mktemp("retail")
    return {
        (layout.release, suffix): write_release(folder, layout, suffix)
        for layout in (FIRST_RELEASE, SECOND_RELEASE)
        for suffix in (".xlsx", ".csv", ".parquet")
    }


@pytest.mark.parametrize("suffix", [".xlsx", ".csv", ".parquet"])
@pytest.mark.parametrize("layout", [FIRST_RELEASE, SECOND_RELEASE], ids=["first", "II"])
def test_each_release_and_file_type_counts_every_row(files, layout, suffix):
    ds = load_online_retail(files[layout.release, suffix], progress=False)
    assert drops(ds) == dropped(layout)
    assert len(ds) == KEPT["both"]
    assert ds.report.rows_read["interactions"] == 16 == len(ds) + ds.report.dropped_total("interactions")
    assert sorted(ds.user_vocab.ids()) == ["13085", "13313", "17530", "17850"]  # 13085.0 loses its float tail
    assert sorted(set(ds.interactions["session_id"])) == ["489434", "536365", "538171", "539993", "539995"]


def test_releases_and_file_types_give_the_same_purchases(files):
    reference = events(load_online_retail(files[SECOND_RELEASE.release, ".xlsx"], progress=False))
    assert len(reference) == KEPT["both"] and reference["session"].value_counts()["536365"] == 2  # not 4
    for path in files.values():
        assert events(load_online_retail(path, progress=False)).equals(reference), path


def test_workbook_sheets_read_one_at_a_time_add_up(files):
    path = files[SECOND_RELEASE.release, ".xlsx"]
    both = load_online_retail(path, progress=False)
    one, two = (load_online_retail(path, sheet=name, progress=False) for name in SHEETS)
    for name, ds in zip(SHEETS, (one, two), strict=True):
        assert drops(ds) == dropped(SECOND_RELEASE, name) and len(ds) == KEPT[name]
    overlap = 3  # lines of the invoices both sheets hold
    assert len(both) == len(one) + len(two) - overlap
    assert both.report.rows_read["interactions"] == 10 + 6 == one.report.rows_read["interactions"] + 6
    assert events(two).merge(events(one)).shape[0] == overlap
    notes = " ".join(both.report.notes)
    assert "Online Retail II columns" in notes and "'Year 2009-2010' (10 rows), 'Year 2010-2011' (6 rows)" in notes


def test_sheet_name_ignores_case_and_spaces(files):
    ds = load_online_retail(files[SECOND_RELEASE.release, ".xlsx"], sheet=" year 2010-2011", progress=False)
    assert len(ds) == KEPT[SHEETS[1]]


def test_detect_format_knows_both_releases(files):
    for path in files.values():
        assert detect_format(path) == "online-retail"
    ds = load_dataset(files[SECOND_RELEASE.release, ".xlsx"], sheet=SHEETS[0], progress=False)
    assert len(ds) == KEPT[SHEETS[0]]


# ---------------------------------------------------------------- bad input says what, where, what to do
def test_unknown_sheet_names_the_sheets_there_are(files):
    path = files[SECOND_RELEASE.release, ".xlsx"]
    with pytest.raises(DataError) as info:
        load_online_retail(path, sheet="Year 2011-2012", progress=False)
    text = str(info.value)
    assert str(path) in text and "no sheet named 'Year 2011-2012'" in text
    assert "(sheets: 'Year 2009-2010', 'Year 2010-2011')" in text and "leave it out to read every sheet" in text


def test_sheet_for_a_csv_is_refused(files):
    path = files[SECOND_RELEASE.release, ".csv"]
    with pytest.raises(DataError, match=r"only Excel workbooks have sheets\. Leave sheet out") as info:
        load_online_retail(path, sheet=SHEETS[0])
    assert str(path) in str(info.value)


def test_workbook_with_neither_release_names_file_sheet_and_both_layouts(tmp_path):
    path = write_workbook(tmp_path / "orders.xlsx", {"Orders": pd.DataFrame({"order": [1], "sku": ["a"]})})
    with pytest.raises(DataError) as info:
        load_online_retail(path, progress=False)
    text = str(info.value)
    assert f"{path}, sheet 'Orders'" in text and "missing Online Retail column 'InvoiceNo'" in text
    assert "Online Retail: InvoiceNo, StockCode" in text and "Online Retail II: Invoice, StockCode" in text
    assert info.value.column == "InvoiceNo"


def test_second_release_missing_a_column_names_its_own_name(tmp_path):
    first, _ = years(SECOND_RELEASE)
    path = tmp_path / "retail.csv"
    first.drop(columns=["Customer ID"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="missing Online Retail column 'Customer ID'") as info:
        load_online_retail(path)
    assert info.value.column == "Customer ID" and str(path) in str(info.value)


def test_a_sheet_without_transactions_is_named_and_sheet_is_suggested(tmp_path):
    first, second = years(SECOND_RELEASE)
    notes = pd.DataFrame({"note": ["exported 2011-12-10"]})
    path = write_workbook(tmp_path / "retail.xlsx", {SHEETS[0]: first, "Notes": notes, SHEETS[1]: second})
    expected = r"sheet 'Notes', column 'InvoiceNo': missing Online Retail column.*pass sheet= \(CLI: --sheet\)"
    with pytest.raises(DataError, match=expected):
        load_online_retail(path, progress=False)
    assert len(load_online_retail(path, sheet=SHEETS[1], progress=False)) == KEPT[SHEETS[1]]


def test_sheets_of_different_releases_are_refused(tmp_path):
    first, _ = years(FIRST_RELEASE)
    _, second = years(SECOND_RELEASE)
    path = write_workbook(tmp_path / "mixed.xlsx", dict(zip(SHEETS, (first, second), strict=True)))
    with pytest.raises(DataError, match=r"columns of different releases \('Year 2009-2010': Online Retail; "):
        load_online_retail(path, progress=False)


def test_bad_number_in_second_sheet_names_sheet_row_and_column(tmp_path):
    first, second = years(SECOND_RELEASE)
    second = second.astype({"Price": object})
    second.loc[4, "Price"] = "1,95 GBP"
    path = write_workbook(tmp_path / "retail.xlsx", dict(zip(SHEETS, (first, second), strict=True)))
    with pytest.raises(DataError, match=r"retail\.xlsx, sheet 'Year 2010-2011', row 5, column 'Price': '1,95 GBP'"):
        load_online_retail(path, progress=False)


# ---------------------------------------------------------------- the command line
def test_cli_describe_reads_one_sheet_or_all(files, capsys):
    path = str(files[SECOND_RELEASE.release, ".xlsx"])
    assert main(["datasets", "describe", path, "--json"]) == 0
    out = capsys.readouterr().out
    assert "dropped 3: copy of an invoice already read" in out and "dropped 1: Price <= 0" in out
    assert main(["datasets", "describe", path, "--sheet", SHEETS[1], "--json"]) == 0
    out = capsys.readouterr().out
    assert "sheets read: 'Year 2010-2011' (6 rows)" in out and "copy of an invoice" not in out


def test_cli_sheet_for_another_format_is_an_error(tmp_path, capsys):
    folder = tmp_path / "shop"
    folder.mkdir()
    pd.DataFrame({"item_id": ["a"]}).to_csv(folder / "items.csv", index=False)
    pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}).to_csv(folder / "interactions.csv", index=False)
    code = main(["datasets", "describe", str(folder), "--sheet", "Year 2010-2011"])
    assert code != 0 and "format 'folder' takes no option 'sheet'" in capsys.readouterr().err


def test_cli_formats_lists_both_releases_and_downloads(capsys):
    assert main(["datasets", "formats"]) == 0
    out = capsys.readouterr().out
    assert "Online Retail II: Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID" in out
    assert "Online Retail: InvoiceNo, StockCode" in out
    assert "online-retail-ii" in out and "online_retail_II.xlsx" in out


def test_load_dataset_rejects_sheet_for_other_formats(tmp_path):
    with pytest.raises(ShoprecError, match="format 's3rec' takes no option 'sheet'"):
        (tmp_path / "x.txt").write_text("u1 i1 i2\n")
        load_dataset(tmp_path / "x.txt", sheet="a")
