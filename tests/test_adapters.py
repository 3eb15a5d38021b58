"""Adapters for public data: Online Retail, S3-Rec text, the folder layout, and format detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shoprec.data import dataset_from_frames
from shoprec.data.adapters import FORMATS, detect_format, load_dataset, load_online_retail, load_s3rec
from shoprec.data.io import load_folder, write_folder
from shoprec.errors import DataError, ShoprecError

RETAIL = "online-retail-2010-2011/online_retail.parquet"
CANCEL = "cancellation (InvoiceNo starts with C)"
RETURN = "return or stock adjustment (Quantity <= 0)"
GUEST = "guest without CustomerID (guests='drop')"
NON_PRODUCT = "non-product stock code (postage, fees, discounts, manual entries, samples, vouchers)"
FREE = "UnitPrice <= 0"


def dropped(ds, reason: str) -> int:
    return ds.report.dropped[("interactions", reason)]


# ---------------------------------------------------------------- Online Retail, tiny synthetic file
def tiny_retail() -> pd.DataFrame:
    """Nine lines, one of each kind; the kept purchases are lines 0, 1, 2 and 8."""
    rows = [
        ("536365", "85123A", "HEART HOLDER", 6, "2010-12-01 08:26:00", 2.55, 17850.0, "United Kingdom"),
        ("536365", " 71053 ", "WHITE LANTERN", 2, "2010-12-01 08:26:00", 3.39, 17850.0, "United Kingdom"),
        ("536366", "85123a", "heart holder", 1, "2010-12-02 09:00:00", 2.65, 13047.0, "France"),
        ("C536367", "85123A", "HEART HOLDER", -1, "2010-12-02 10:00:00", 2.55, 17850.0, "United Kingdom"),
        ("536368", "71053", "damaged", -5, "2010-12-03 10:00:00", 0.0, None, "United Kingdom"),
        ("536369", "71053", "WHITE LANTERN", 3, "2010-12-03 11:00:00", 3.39, None, "United Kingdom"),
        ("536370", "POST", "POSTAGE", 1, "2010-12-03 12:00:00", 18.0, 13047.0, "France"),
        ("536371", "84406B", "CREAM CUPID", 1, "2010-12-04 12:00:00", 0.0, 13047.0, "France"),
        ("536372", "85123A", "HEART HOLDER", 2, "2010-12-05 12:00:00", 2.95, 13047.0, "France"),
    ]
    columns = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    return pd.DataFrame(rows, columns=columns)


def test_online_retail_tiny_file_counts_every_reason(tmp_path):
    path = tmp_path / "retail.csv"
    tiny_retail().to_csv(path, index=False)
    ds = load_online_retail(path)
    assert {r: n for (_, r), n in ds.report.dropped.items()} == {
        CANCEL: 1,
        RETURN: 1,
        GUEST: 1,
        NON_PRODUCT: 1,
        FREE: 1,
    }
    assert ds.report.rows_read["interactions"] == 9 == len(ds) + ds.report.dropped_total("interactions")
    assert sorted(ds.user_vocab.ids()) == ["13047", "17850"]  # "17850.0" from the CSV loses its float tail
    assert list(ds.item_vocab.ids()) == ["71053", "85123A"]  # " 71053 " and "85123a" normalised
    heart = ds.items.iloc[1]
    assert heart["title"] == "HEART HOLDER" and heart["price"] == pytest.approx(2.65)  # median of 2.55, 2.65, 2.95
    assert heart["created_at"] == int(pd.Timestamp("2010-12-01 08:26:00").timestamp())
    assert '"n_countries": 2' in heart["attributes"]
    first = ds.interactions.iloc[0]
    assert first["value"] == pytest.approx(6 * 2.55) and first["quantity"] == 6 and first["session_id"] == "536365"
    assert len(ds.baskets()) == 3


def test_online_retail_guest_invoices_become_users(tmp_path):
    path = tmp_path / "retail.parquet"
    tiny_retail().to_parquet(path)
    ds = load_online_retail(path, guests="invoice")
    assert "guest:536369" in ds.user_vocab
    assert ds.n_users == 3 and len(ds) == 5
    assert all(reason != GUEST for _, reason in ds.report.dropped)


def test_online_retail_min_price_drops_cheap_lines(tmp_path):
    path = tmp_path / "retail.parquet"
    tiny_retail().to_parquet(path)
    ds = load_online_retail(path, min_price=2.6)
    assert dropped(ds, "UnitPrice <= 2.6") == 2  # 2.55 (kept line 0) and the free line 7
    assert len(ds) == 3


def test_online_retail_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "retail.csv"
    tiny_retail().drop(columns=["UnitPrice"]).to_csv(path, index=False)
    with pytest.raises(DataError, match="UnitPrice") as info:
        load_online_retail(path)
    assert info.value.column == "UnitPrice" and str(path) in str(info.value)


def test_online_retail_bad_number_names_row_and_line(tmp_path):
    path = tmp_path / "retail.csv"
    frame = tiny_retail().astype({"Quantity": object})
    frame.loc[4, "Quantity"] = "five"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"row 5 \(line 6\).*Quantity.*'five'"):
        load_online_retail(path)


def test_online_retail_rejects_unknown_guest_mode(tmp_path):
    with pytest.raises(ShoprecError, match="guests must be one of drop, invoice"):
        load_online_retail(tmp_path / "x.csv", guests="keep")


def test_online_retail_us_style_dates_in_csv(tmp_path):
    frame = tiny_retail()
    frame["InvoiceDate"] = pd.to_datetime(frame["InvoiceDate"]).dt.strftime("%-m/%-d/%Y %-H:%M")
    path = tmp_path / "retail.csv"
    frame.to_csv(path, index=False)
    ds = load_online_retail(path)
    assert ds.interactions["timestamp"].min() == int(pd.Timestamp("2010-12-01 08:26:00").timestamp())


# ---------------------------------------------------------------- Online Retail, the published data
@pytest.fixture(scope="module")
def retail_raw(shared_data) -> pd.DataFrame:
    return pd.read_parquet(shared_data / RETAIL)


@pytest.fixture(scope="module")
def retail(shared_data):
    return load_online_retail(shared_data / RETAIL)


@pytest.mark.shared_data
def test_online_retail_matches_published_counts(retail, retail_raw):
    # README: after dropping guests and cancellations, 397,924 rows (the 1,336 returns are all guests).
    after_guests = len(retail_raw) - dropped(retail, CANCEL) - dropped(retail, RETURN) - dropped(retail, GUEST)
    assert after_guests == 397_924
    cancelled = retail_raw["InvoiceNo"].str.startswith("C")
    assert dropped(retail, CANCEL) == 9_288 == cancelled.sum()
    assert dropped(retail, GUEST) + dropped(retail, RETURN) == (retail_raw["CustomerID"].isna() & ~cancelled).sum()
    # Then postage, carriage, manual lines etc. and free lines go: 4 customers bought only those.
    assert dropped(retail, NON_PRODUCT) == 1_554 and dropped(retail, FREE) == 33
    assert (retail.n_users, retail.n_items, len(retail), len(retail.baskets())) == (4_334, 3_659, 396_337, 18_402)
    assert retail.report.rows_read["interactions"] == len(retail) + retail.report.dropped_total("interactions")


@pytest.mark.shared_data
def test_online_retail_items_are_products_with_titles(retail, retail_raw):
    ids = pd.Series(retail.item_vocab.ids())
    assert ids.str.match(r"^\d").all() and (ids == ids.str.upper()).all()
    assert "POST" not in retail.item_vocab and "C2" not in retail.item_vocab
    heart = retail.items.iloc[int(retail.item_vocab.index(["85123A"])[0])]
    assert heart["title"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    sales = retail_raw[
        (retail_raw["StockCode"].str.upper() == "85123A")
        & retail_raw["CustomerID"].notna()
        & ~retail_raw["InvoiceNo"].str.startswith("C")
        & (retail_raw["UnitPrice"] > 0)
    ]
    assert heart["price"] == pytest.approx(sales["UnitPrice"].median())
    assert (retail.items["title"] != "").all()


@pytest.mark.shared_data
def test_online_retail_value_is_line_revenue_and_lines_keep_order(retail):
    rows = retail.interactions
    first = rows[rows["session_id"] == "536365"]
    assert first["value"].tolist() == pytest.approx([15.3, 20.34, 22.0, 20.34, 20.34, 15.3, 25.5])
    assert list(retail.item_vocab.ids(first["item"])) == [
        "85123A",
        "71053",
        "84406B",
        "84029G",
        "84029E",
        "22752",
        "21730",
    ]


@pytest.mark.shared_data
def test_online_retail_guests_as_invoices_keep_more_users(shared_data, retail):
    guests = load_online_retail(shared_data / RETAIL, guests="invoice", progress=False)
    users = pd.Series(guests.user_vocab.ids())
    n_guest = int(users.str.startswith("guest:").sum())
    assert n_guest > 1_000 and guests.n_users == retail.n_users + n_guest
    assert len(guests) > len(retail) and guests.n_items >= retail.n_items
    assert guests.report.rows_read["interactions"] == len(guests) + guests.report.dropped_total("interactions")
    baskets = guests.baskets()
    guest_user = users.str.startswith("guest:").to_numpy()[baskets.user]
    assert np.unique(baskets.user[guest_user]).size == guest_user.sum()  # one invoice per guest user


@pytest.fixture(scope="module")
def retail_slice(retail_raw, tmp_path_factory) -> dict[str, Path]:
    """~300 lines with cancellations, guests, postage and free lines, as parquet, CSV and Excel."""
    raw = retail_raw
    cancel = raw["InvoiceNo"].str.startswith("C")
    picks = [
        raw.index[:200],
        raw.index[cancel][:30],
        raw.index[raw["StockCode"].isin(["POST", "M", "C2", "DOT"])][:30],
        raw.index[(raw["UnitPrice"] <= 0) & raw["CustomerID"].notna()][:20],
        raw.index[raw["CustomerID"].isna()][:40],
        raw.index[(raw["Quantity"] <= 0) & ~cancel][:10],
        raw.index[raw["StockCode"].str.contains("[a-z]")][:20],
    ]
    part = raw.loc[sorted(set().union(*map(set, picks)))].reset_index(drop=True)
    folder = tmp_path_factory.mktemp("retail-slice")
    paths = {"parquet": folder / "slice.parquet", "csv": folder / "slice.csv", "xlsx": folder / "slice.xlsx"}
    part.to_parquet(paths["parquet"], index=False)
    part.to_csv(paths["csv"], index=False)
    part.to_excel(paths["xlsx"], index=False, engine="openpyxl")
    return paths


@pytest.mark.shared_data
@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_online_retail_csv_and_excel_equal_parquet(retail_slice, kind):
    expected = load_online_retail(retail_slice["parquet"])
    got = load_online_retail(retail_slice[kind], progress=False)
    assert len(expected.report.dropped) == 5  # the slice exercises every reason
    assert got.report.dropped == expected.report.dropped
    assert got.user_vocab == expected.user_vocab and got.item_vocab == expected.item_vocab
    pd.testing.assert_frame_equal(got.interactions, expected.interactions)
    pd.testing.assert_frame_equal(got.items, expected.items)


# ---------------------------------------------------------------- S3-Rec text
def test_s3rec_tiny_file_keeps_line_order(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("1 10 2 30\n\n2 2 10\n3\n")
    ds = load_s3rec(path)
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 3, 5)
    assert list(ds.item_vocab.ids()) == ["2", "10", "30"]  # numeric order
    seqs = ds.sequences()
    assert list(ds.item_vocab.ids(seqs.of(int(ds.user_vocab.index(["1"])[0])))) == ["10", "2", "30"]
    assert seqs.timestamps.tolist() == [0, 1, 2, 0, 1]
    notes = " ".join(ds.report.notes)
    assert "positions" in notes and "1 blank lines" in notes and "1 lines with a user id but no items" in notes


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 2 3\n2 4 x5\n", r"line 2: 'x5' is not a whole-number id"),
        ("1 2 3\n\n2 4 -5\n", r"line 3: '-5'"),
        ("1 2 3\n2 4\n1 5\n", r"line 3: user 1 already has a line \(line 1\)"),
    ],
)
def test_s3rec_malformed_lines_name_the_line(tmp_path, text, match):
    path = tmp_path / "seq.txt"
    path.write_text(text)
    with pytest.raises(DataError, match=match) as info:
        load_s3rec(path)
    assert str(path) in str(info.value)


def test_s3rec_file_without_items_is_an_error(tmp_path):
    path = tmp_path / "seq.txt"
    path.write_text("\n1\n")
    with pytest.raises(DataError, match="no user has any items"):
        load_s3rec(path)


@pytest.mark.shared_data
def test_s3rec_published_beauty(shared_data):
    ds = load_s3rec(shared_data / "amazon-beauty/s3rec_Beauty.txt")
    assert (ds.n_users, ds.n_items, len(ds)) == (22_363, 12_101, 198_502)
    first = ds.item_vocab.ids(ds.sequences().of(0))
    assert ds.user_vocab.ids([0])[0] == "1" and list(first) == ["1", "2", "3", "4", "5"]
    assert ds.sequences().lengths().min() >= 5  # a 5-core


# ---------------------------------------------------------------- folder layout (Amazon Beauty parquet)
@pytest.mark.shared_data
def test_amazon_beauty_folder_follows_published_order(shared_data):
    folder = shared_data / "amazon-beauty"
    ds = load_folder(folder)
    assert (ds.n_users, ds.n_items, len(ds)) == (22_332, 12_086, 198_215)
    raw = pd.read_parquet(folder / "interactions.parquet").sort_values(["user_id", "position"])
    assert raw.duplicated(["user_id", "timestamp"]).sum() > 10_000  # same-day ties are common
    got = pd.DataFrame(
        {"user": ds.user_vocab.ids(ds.interactions["user"]), "item": ds.item_vocab.ids(ds.interactions["item"])}
    )
    got = got.assign(user=got["user"].astype(int)).sort_values("user", kind="stable")
    assert got["item"].astype(int).tolist() == raw["item_id"].tolist()
    assert ds.items["title"].ne("").mean() > 0.99


# ---------------------------------------------------------------- load_dataset and detection
@pytest.fixture
def layouts(tmp_path) -> dict[str, Path]:
    tiny = dataset_from_frames(
        pd.DataFrame({"item_id": ["a", "b"]}), pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"]})
    )
    retail = tiny_retail()
    paths = {
        "saved": tiny.save(tmp_path / "saved"),
        "s3rec": tmp_path / "seq.txt",
        "xlsx": tmp_path / "retail.xlsx",
        "csv": tmp_path / "retail.csv",
        "parquet": tmp_path / "retail.parquet",
    }
    paths["folder"] = write_folder(
        {
            "items": pd.DataFrame({"item_id": ["a", "b"]}),
            "interactions": pd.DataFrame({"user_id": ["u"], "item_id": ["a"]}),
        },
        tmp_path / "folder",
        fmt="csv",
    )
    paths["s3rec"].write_text("1 1 2\n2 2 3\n")
    retail.to_excel(paths["xlsx"], index=False)
    retail.to_csv(paths["csv"], index=False)
    retail.to_parquet(paths["parquet"])
    return paths


@pytest.mark.parametrize(
    ("kind", "fmt", "shape"),
    [
        ("saved", "saved", (2, 2, 3)),
        ("folder", "folder", (1, 2, 1)),
        ("s3rec", "s3rec", (2, 3, 4)),
        ("xlsx", "online-retail", (2, 2, 4)),
        ("csv", "online-retail", (2, 2, 4)),
        ("parquet", "online-retail", (2, 2, 4)),
    ],
)
def test_load_dataset_detects_each_format(layouts, kind, fmt, shape):
    assert detect_format(layouts[kind]) == fmt
    ds = load_dataset(layouts[kind])
    assert (ds.n_users, ds.n_items, len(ds)) == shape
    assert len(load_dataset(layouts[kind], fmt=fmt)) == shape[2]


def test_load_dataset_passes_options(layouts):
    assert load_dataset(layouts["parquet"], guests="invoice").n_users == 3
    with pytest.raises(ShoprecError, match=r"format 's3rec' takes no option 'guests'; its options are: name, event"):
        load_dataset(layouts["s3rec"], guests="invoice")


def test_load_dataset_unknown_format_lists_valid_ones(layouts):
    with pytest.raises(DataError, match="unknown data format 'excel'") as info:
        load_dataset(layouts["csv"], fmt="excel")
    assert all(name in str(info.value) for name in FORMATS)


def test_detect_format_rejects_a_plain_table_and_missing_paths(tmp_path):
    path = tmp_path / "items.csv"
    pd.DataFrame({"item_id": ["a"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"cannot tell the data format \(columns: item_id\)"):
        detect_format(path)
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nothing.csv")


def test_online_retail_broken_workbook_is_a_data_error(tmp_path):
    path = tmp_path / "Online Retail.xlsx"
    path.write_bytes(b"PK\x03\x04 truncated download")
    with pytest.raises(DataError, match="cannot read the file as an Excel workbook") as info:
        load_dataset(path)
    assert str(path) in str(info.value)
