"""Loading dataset folders: every bad file gets one clear DataError; unusable rows are counted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shoprec.data import Dataset
from shoprec.data.io import load_folder, read_table, write_folder
from shoprec.errors import DataError

ITEMS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Red mug", "Blue mug", "Tea pot", "Candle"],
        "category": ["Home > Mugs", "Home > Mugs", "Home > Tea", "Home > Decor"],
        "price": [3.5, 4.0, 20.0, 2.0],
        "colour": ["red", "blue", None, None],
    }
)
EVENTS = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u1", "u2", "u2", "u3"],
        "item_id": ["a", "c", "b", "a", "d", "c"],
        "event": ["view", "purchase", "cart", "purchase", "purchase", "click"],
        "timestamp": ["2024-01-01T10:00", "2024-01-03", "2024-01-02", "2024-01-05", "2024-01-05", "2024-01-06"],
        "session_id": ["s1", "o1", "s2", "o2", "o2", "s3"],
    }
)


def write_csv(tmp_path, items=ITEMS, events=EVENTS):
    items.to_csv(tmp_path / "items.csv", index=False)
    events.to_csv(tmp_path / "interactions.csv", index=False)
    return tmp_path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_folder_loads_in_every_format(tmp_path, fmt):
    write_folder({"items": ITEMS, "interactions": EVENTS}, tmp_path, fmt=fmt)
    ds = load_folder(tmp_path)
    assert (ds.n_users, ds.n_items, len(ds)) == (3, 4, 6)
    # u1's events come back in time order, not file order: a (01-01), b (01-02), c (01-03)
    seq = ds.sequences()
    assert ds.item_vocab.ids(seq.of(ds.user_vocab.index(["u1"])[0])).tolist() == ["a", "b", "c"]
    assert json.loads(ds.items["attributes"].iloc[0]) == {"colour": "red"}
    baskets = ds.baskets()
    assert sorted(ds.item_vocab.ids(baskets.of(int(np.flatnonzero(baskets.basket_id == "o2")[0])))) == ["a", "d"]


def test_matrix_weightings(tmp_path):
    ds = load_folder(write_csv(tmp_path))
    u1 = ds.user_vocab.index(["u1"])[0]
    weighted = ds.matrix("weighted")[u1].toarray().ravel()
    a, b, c = ds.item_vocab.index(["a", "b", "c"])
    assert weighted[c] > weighted[b] > weighted[a] > 0  # purchase > cart > view
    assert set(np.unique(ds.matrix("binary").data)) == {1.0}


def test_save_load_round_trip(tmp_path):
    ds = load_folder(write_csv(tmp_path))
    saved = ds.save(tmp_path / "saved")
    back = Dataset.load(saved)
    assert back.fingerprint() == ds.fingerprint()
    assert back.user_vocab == ds.user_vocab and back.item_vocab == ds.item_vocab
    pd.testing.assert_frame_equal(back.interactions, ds.interactions)
    assert (back.matrix() != ds.matrix()).nnz == 0
    assert back.report.rows_read == ds.report.rows_read
    assert not list(saved.glob("*.pkl")) and not list(saved.glob("*.pickle"))


def test_unusable_rows_are_counted_not_silently_dropped(tmp_path):
    events = pd.concat(
        [
            EVENTS,
            pd.DataFrame(
                {
                    "user_id": [None, "u9", "u9"],
                    "item_id": ["a", "zzz", "a"],
                    "event": ["view", "view", "wishlist"],
                    "timestamp": ["2024-01-01"] * 3,
                    "session_id": ["x", "y", "z"],
                }
            ),
        ]
    )
    ds = load_folder(write_csv(tmp_path, events=events))
    report = ds.report
    assert report.rows_read["interactions"] == 9
    assert report.rows_kept["interactions"] == 6
    assert report.dropped_total("interactions") == 3
    reasons = {reason for (_, reason) in report.dropped}
    assert {"empty user_id", "item not in the catalog"} <= reasons
    assert any(r.startswith("unknown event type") for r in reasons)
    assert "u9" not in ds.user_vocab  # a user with no usable event gets no index


@pytest.mark.parametrize(
    ("mutate", "file", "expect"),
    [
        (lambda i, e: (i.drop(columns="item_id"), e), "items.csv", "missing required column 'item_id'"),
        (lambda i, e: (i, e.drop(columns="user_id")), "interactions.csv", "missing required column 'user_id'"),
        (
            lambda i, e: (i, e.assign(timestamp=["2024-01-01", "yesterday", *e.timestamp[2:]])),
            "interactions.csv",
            "row 2 (line 3), column 'timestamp': cannot read 'yesterday' as a time",
        ),
        (
            lambda i, e: (i.assign(price=[1.0, -2.0, 3.0, 4.0]), e),
            "items.csv",
            "row 2 (line 3), column 'price': price -2.0",
        ),
        (
            lambda i, e: (i.assign(item_id=["a", "b", "a", "d"]), e),
            "items.csv",
            "row 3 (line 4), column 'item_id': duplicate item id 'a' (first seen in row 1)",
        ),
        (lambda i, e: (i.assign(price=["1", "2", "3 EUR", "4"]), e), "items.csv", "'3 EUR' is not a number"),
    ],
)
def test_bad_files_name_file_row_column(tmp_path, mutate, file, expect):
    items, events = mutate(ITEMS.copy(), EVENTS.copy())
    write_csv(tmp_path, items, events)
    with pytest.raises(DataError) as err:
        load_folder(tmp_path)
    message = str(err.value)
    assert file in message and expect in message, message
    assert err.value.fix  # always says what to do


def test_empty_and_header_only_files(tmp_path):
    write_csv(tmp_path)
    (tmp_path / "interactions.csv").write_text("")
    with pytest.raises(DataError, match="interactions.csv: the file is empty"):
        load_folder(tmp_path)
    (tmp_path / "interactions.csv").write_text("user_id,item_id\n")
    with pytest.raises(DataError, match="interactions.csv: the table has no rows"):
        load_folder(tmp_path)


def test_malformed_csv_and_missing_files(tmp_path):
    write_csv(tmp_path)
    (tmp_path / "interactions.csv").write_text('user_id,item_id\nu1,a\nu2,"b\n')
    with pytest.raises(DataError, match="cannot parse the file"):
        load_folder(tmp_path)
    (tmp_path / "interactions.csv").unlink()
    with pytest.raises(DataError, match="no interactions file"):
        load_folder(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "nope")
    (tmp_path / "x.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read the file as parquet"):
        read_table(tmp_path / "x.parquet")


def test_no_usable_interactions_is_an_error(tmp_path):
    events = EVENTS.assign(item_id="unknown")
    with pytest.raises(DataError, match="no usable interactions"):
        load_folder(write_csv(tmp_path, events=events))


def test_numeric_ids_keep_leading_zeros_and_float_ids_are_normalised(tmp_path):
    items = pd.DataFrame({"item_id": ["007", "08"]})
    events = pd.DataFrame({"user_id": [17850.0, 12.0], "item_id": ["007", "08"], "timestamp": [1, 2]})
    write_folder({"items": items, "interactions": events}, tmp_path, fmt="parquet")
    ds = load_folder(tmp_path)
    assert ds.item_vocab.ids().tolist() == ["007", "08"]
    assert sorted(ds.user_vocab.ids()) == ["12", "17850"]


def test_reviews_and_queries_are_indexed_and_counted(tmp_path):
    write_csv(tmp_path)
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "nope"], "rating": [5, 3], "text": ["great", "ok"]}).to_csv(
        tmp_path / "reviews.csv", index=False
    )
    pd.DataFrame({"user_id": ["u1", "u1"], "query": ["red mug", ""], "item_id": ["a", None]}).to_csv(
        tmp_path / "queries.csv", index=False
    )
    ds = load_folder(tmp_path)
    assert len(ds.reviews) == 1 and ds.report.dropped[("reviews", "item not in the catalog")] == 1
    assert len(ds.queries) == 1 and ds.report.dropped[("queries", "empty query")] == 1
    assert ds.queries["item"].iloc[0] == ds.item_vocab.index(["a"])[0]
