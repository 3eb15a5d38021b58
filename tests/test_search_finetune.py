"""Search fine-tuning: judgments, term splits, and the query tower improving its own held-out queries."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shoprec.errors import ShoprecError
from shoprec.search.finetune import (
    Judgments,
    QueryTowerSettings,
    finetune_queries,
    judgments_from_frame,
    read_judgments,
    retrieval_metrics,
    split_terms,
    top_items,
)
from shoprec.search.products import Product, ProductTable

GROUPS = {"zorp": "garden hose", "quib": "table lamp", "flen": "cordless drill", "drax": "kitchen sink"}
ADJECTIVES = ["red", "blue", "green", "black", "white", "small", "large", "steel", "brass", "plastic"]


def world() -> tuple[ProductTable, Judgments]:
    """40 products, 10 per kind; query "<code word> <n>" wants every product of its code's kind.
    The code words are nonsense, so only training can tie a code word to its kind."""
    products, rows = [], []
    for code, noun in GROUPS.items():
        for j, adjective in enumerate(ADJECTIVES):
            products.append(Product(f"{code}-{j}", f"{adjective} {noun}"))
            rows += [(f"{code} {n}", f"{code}-{j}", 3.0) for n in range(10)]
    table = ProductTable(products)
    return table, judgments_from_frame(pd.DataFrame(rows, columns=["query", "item_id", "relevance"]), table)


def test_judgments_are_normalised_averaged_and_dropped_rows_counted(tmp_path):
    table, _ = world()
    frame = pd.DataFrame(
        {
            "query": ["Red  Hose", "red hose", "", "lamp", "lamp"],
            "item_id": ["zorp-0", "zorp-0", "zorp-1", "nope", "quib-0"],
            "relevance": [3, 2, 3, 3, 1],
        }
    )
    judged = judgments_from_frame(frame, table)
    assert judged.query.tolist() == ["lamp", "red hose"]
    assert judged.relevance.tolist() == [1.0, 2.5]  # the two spellings of "red hose" averaged
    assert judged.dropped == {"empty query": 1, "item not in catalogue": 1, "no relevance": 0, "merged": 1}
    path = tmp_path / "judged.csv"
    frame.assign(relevance=["3", "x", "1", "1", "1"]).to_csv(path, index=False)
    with pytest.raises(ShoprecError, match="row 2: relevance 'x' is not a number"):
        read_judgments(path, table)
    with pytest.raises(ShoprecError, match="missing column"):
        judgments_from_frame(frame.drop(columns="item_id"), table)


def test_terms_are_split_whole_and_in_the_given_shares():
    _, judged = world()
    parts = split_terms(judged, (0.6, 0.2, 0.2), seed=3)
    terms = [set(p.terms()) for p in parts]
    assert [len(t) for t in terms] == [24, 8, 8]
    assert not (terms[0] & terms[1]) and not (terms[0] & terms[2]) and not (terms[1] & terms[2])
    assert sum(len(p) for p in parts) == len(judged)  # every judgment of a term goes with it
    assert [p.terms() for p in split_terms(judged, (0.6, 0.2, 0.2), seed=3)] == [p.terms() for p in parts]
    with pytest.raises(ShoprecError, match="add up to 1"):
        split_terms(judged, (0.5, 0.2))


def test_retrieval_metrics_count_relevant_items_in_the_first_k():
    ranked = [np.array([5, 1, 2]), np.array([9, 8, 7])]
    metrics = retrieval_metrics(ranked, [np.array([1, 7]), np.array([4])], ks=(1, 3))
    assert metrics["recall@1"] == 0.0
    assert metrics["recall@3"] == pytest.approx((0.5 + 0.0) / 2)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 0) / 2)
    vectors = np.eye(4, dtype=np.float32)
    assert top_items(np.array([[0.0, 0.9, 0.1, 0.0]], dtype=np.float32), vectors, 2).tolist() == [[1, 2]]


@pytest.fixture(scope="module")
def minilm_vectors():
    from shoprec.text.encoders import load_encoder

    table, _ = world()
    return load_encoder("minilm").encode([p.title for p in table.products])


def test_query_tower_learns_the_code_words_of_its_training_queries(tmp_path, minilm_vectors):
    """Held-out queries ("zorp 8") share only the code word with training queries ("zorp 1"): before
    training they find a kind at random, after it the right one. Fails if training does not learn."""
    _, judged = world()
    held = np.array([q.split()[1] in {"8", "9"} for q in judged.query.tolist()])
    settings = QueryTowerSettings(
        epochs=2, batch_size=8, learning_rate=5e-4, train_layers=2, max_length=16, threads=1, seed=1
    )
    result = finetune_queries("minilm", minilm_vectors, judged.select(~held), judged.select(held), tmp_path, settings)
    assert result.pairs == {"train_pairs": 320, "train_queries": 32, "held_out_queries": 8}
    assert result.before["recall@10"] < 0.6
    assert result.after["recall@10"] > result.before["recall@10"] + 0.3
    saved = json.loads((tmp_path / "query_tower.json").read_text())
    assert saved["after"] == result.after and (tmp_path / "modules.json").is_file()


def test_query_tower_refuses_training_data_without_a_positive(tmp_path, minilm_vectors):
    _, judged = world()
    with pytest.raises(ShoprecError, match="no training pair has relevance >= 4"):
        finetune_queries("minilm", minilm_vectors, judged, judged, tmp_path, QueryTowerSettings(min_relevance=4.0))


# ---------------------------------------------------------------------------------------------- search-train
@pytest.fixture
def judged_shop(tmp_path):
    """A folder shop (24 products: 6 of each of 4 kinds) and a judgments CSV: "<kind> <n>" rates its
    kind's products 3 and two products of other kinds 1."""
    kinds = ["garden hose", "table lamp", "cordless drill", "kitchen sink"]
    colours = ["red", "blue", "green", "black", "white", "grey"]
    items = [(f"{k.split()[1]}-{j}", f"{c} {k}") for k in kinds for j, c in enumerate(colours)]
    pd.DataFrame(items, columns=["item_id", "title"]).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["hose-0", "lamp-1"]}).to_csv(
        tmp_path / "interactions.csv", index=False
    )
    rows = []
    for k, kind in enumerate(kinds):
        word = kind.split()[1]
        for n in range(8):
            rows += [(f"{word} {n}", f"{word}-{j}", 3.0) for j in range(6)]
            other = kinds[(k + 1) % 4].split()[1]
            rows += [(f"{word} {n}", f"{other}-{j}", 1.0) for j in range(2)]
    pd.DataFrame(rows, columns=["query", "item_id", "relevance"]).to_csv(tmp_path / "judged.csv", index=False)
    return tmp_path


def test_search_train_writes_models_and_a_manifest_of_held_out_metrics(judged_shop, tmp_path, capsys):
    from shoprec.cli.main import main
    from shoprec.search.crossencoder import CrossEncoderStage
    from shoprec.search.ranker import RankerStage

    out = tmp_path / "search-models"
    argv = ["search-train", str(judged_shop), "--out", str(out), "--judgments", str(judged_shop / "judged.csv")]
    argv += ["--min-relevance", "2.5", "--max-length", "16", "--threads", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "queries: 19 train, 7 validation, 6 test (seed 0)" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["judgments"]["pairs"] == 256 and manifest["item_encoder"] == "minilm-int8"
    assert set(manifest["query_tower"]["before"]) >= {"recall@10", "recall@100", "mrr"}
    assert manifest["query_tower"]["pairs"]["held_out_queries"] == 6  # measured on the test queries
    assert manifest["crossencoder"]["after"]["pair_accuracy"] >= 0.0
    assert (out / "query_encoder" / "modules.json").is_file()
    CrossEncoderStage(out / "crossencoder")
    if manifest["ranker"]["trained"]:
        RankerStage(out / "ranker")
    else:
        assert "queries have a relevant product" in manifest["ranker"]["reason"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--split", "0.5,0.5"], "--split needs three shares"),
        (["--split", "0.5,0.2,0.2"], "add up to 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--item-encoder", "use-multilingual"], "must come from minilm or minilm-int8"),
        (["--judgments", "missing.csv"], "judgments file missing.csv: not found"),
        ([], "no judgments: the dataset has no search log"),
    ],
)
def test_search_train_bad_input_ends_in_one_line(judged_shop, tmp_path, capsys, extra, message):
    from shoprec.cli.main import main

    assert main(["search-train", str(judged_shop), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
