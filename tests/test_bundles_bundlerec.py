"""The BundleRec loader on a tiny folder written here, and the bundle metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shoprec.bundles.metrics import mean_scores, same_category_mix, set_scores
from shoprec.data.adapters.bundlerec import category_path, load_bundlerec, read_bundles
from shoprec.errors import DataError

FILES = {
    "item_titles.csv": "item ID,titles\n1,Nikon D3300 camera\n2,SD card 32GB\n3,Camera bag\n4,USB cable\n",
    "item_categories.csv": 'item ID,categories\n1,"[[Electronics,Camera & Photo,Digital Cameras]]"\n'
    '2,"[[Electronics,Camera & Photo,Memory Cards]]"\n3,"[[Electronics,Camera & Photo,Bags]]"\n'
    '4,"[[Electronics,Cables]]"\n',
    "session_item.csv": "session ID,item ID\n0,1\n0,2\n0,3\n0,99\n1,4\n1,2\n",
    "user_session.csv": "user ID,session ID,timestamp\n7,0,1400000000\n8,1,1400086400\n",
    "bundle_item.csv": "bundle ID,item ID\n0,1\n0,2\n0,3\n1,4\n1,2\n1,99\n",
    "session_bundle.csv": "session ID,bundle ID\n0,0\n1,1\n",
    "bundle_intent.csv": "bundle ID,intent\n0,camera and accessories\n1,cables\n",
}


def write(folder: Path, skip: str | None = None) -> Path:
    folder.mkdir()
    for name, text in FILES.items():
        if name != skip:
            (folder / name).write_text(text)
    return folder


def test_loader_builds_sessions_and_counts_items_without_text(tmp_path) -> None:
    ds = load_bundlerec(write(tmp_path / "br"))
    assert ds.n_items == 4 and ds.n_users == 2
    assert ds.items.set_index("item_id").loc["2", "category"] == "Electronics > Camera & Photo > Memory Cards"
    assert ds.report.dropped[("interactions", "item not in the catalog")] == 1  # item 99 has no title
    baskets = ds.baskets()
    assert sorted(len(baskets.of(b)) for b in range(len(baskets))) == [2, 3]
    truth = read_bundles(tmp_path / "br", ds)
    assert len(truth) == 2 and truth.dropped_items == 1
    assert sorted(ds.item_vocab.ids()[i] for i in truth.items[0]) == ["1", "2", "3"]
    assert truth.intent.tolist() == ["camera and accessories", "cables"]
    assert truth.session_id.tolist() == ["S0", "S1"] and truth.timestamp.tolist() == [1400000000, 1400086400]


def test_loader_names_the_missing_file_and_column(tmp_path) -> None:
    with pytest.raises(DataError, match="item_titles.csv: file not found"):
        load_bundlerec(write(tmp_path / "a", skip="item_titles.csv"))
    folder = write(tmp_path / "b")
    (folder / "user_session.csv").write_text("user,session ID,timestamp\n7,0,1\n")
    with pytest.raises(DataError, match="missing column 'user ID'"):
        load_bundlerec(folder)


def test_category_path() -> None:
    assert category_path("[[Electronics,Camera & Photo,Bags & Cases]]") == "Electronics > Camera & Photo > Bags & Cases"
    assert category_path("") == ""


def test_set_scores_and_mix() -> None:
    assert set_scores([1, 2], [2, 3]) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert set_scores([], [1])["f1"] == 0.0 and set_scores([1], [])["precision"] == 0.0
    scores = set_scores([1, 2, 3, 4], [1])
    assert scores["precision"] == 0.25 and scores["recall"] == 1.0 and scores["f1"] == pytest.approx(0.4)
    assert same_category_mix(["a", "b"], ["b", "a"]) and not same_category_mix(["a", "a"], ["a", "b"])
    assert mean_scores([{"f1": 1.0}, {"f1": 0.0}]) == {"f1": 0.5}
    assert np.isclose(mean_scores([{"f1": 0.2, "p": 1.0}])["p"], 1.0)
