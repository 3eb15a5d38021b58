"""Cross-encoder reranking: training improves its held-out queries; the stage reorders engine hits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from shoprec.errors import ShoprecError
from shoprec.search.crossencoder import (
    CrossEncoder,
    CrossEncoderSettings,
    CrossEncoderStage,
    train_cross_encoder,
    training_pairs,
)
from shoprec.search.finetune import Judgments, judgments_from_frame
from shoprec.search.hybrid import SearchEngine
from shoprec.search.products import Product, ProductTable

GROUPS = {"hose": "garden hose", "lamp": "table lamp", "drill": "cordless drill", "sink": "kitchen sink"}
ADJECTIVES = ["red", "blue", "green", "black", "white", "small"]
TINY = {"layers": 2, "max_length": 16, "batch_size": 16, "threads": 1, "seed": 0}


def world() -> tuple[ProductTable, Judgments]:
    """24 products, 6 per kind; query "<kind> <n>" wants every product of that kind."""
    products, rows = [], []
    for code, noun in GROUPS.items():
        for j, adjective in enumerate(ADJECTIVES):
            products.append(Product(f"{code}-{j}", f"{adjective} {noun}"))
            rows += [(f"{code} {n}", f"{code}-{j}", 3.0) for n in range(10)]
    table = ProductTable(products)
    return table, judgments_from_frame(pd.DataFrame(rows, columns=["query", "item_id", "relevance"]), table)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    table, judged = world()
    held = np.array([q.split()[1] in {"8", "9"} for q in judged.query.tolist()])
    everything = {q: np.arange(len(table)) for q in judged.terms()}  # unjudged products are the negatives
    settings = CrossEncoderSettings(**TINY, epochs=4, learning_rate=3e-4, negatives=4, max_judged=4)
    out = tmp_path_factory.mktemp("crossencoder")
    texts = [p.title for p in table.products]
    result = train_cross_encoder("minilm", texts, judged.select(~held), everything, out, judged.select(held), settings)
    return table, result


def test_training_pairs_mix_judged_products_and_unjudged_candidates():
    table, judged = world()
    one = judged.for_terms({"hose 1"})
    queries, items, labels = training_pairs(one, {"hose 1": np.arange(len(table))}, CrossEncoderSettings(negatives=3))
    assert queries == ["hose 1"] * 7
    assert labels.tolist() == [1.0] * 4 + [0.0] * 3
    assert all(table.products[i].item_id.startswith("hose") for i in items[:4])
    assert not any(table.products[i].item_id.startswith("hose") for i in items[4:])


def test_cross_encoder_training_improves_its_held_out_queries(trained):
    """Held-out queries ("hose 8") are not trained on; a 2-layer model with a fresh head orders their pairs
    by chance before training. Fails if training does not learn."""
    _, result = trained
    assert result.before["pair_accuracy"] < 0.75
    assert result.after["pair_accuracy"] > 0.9
    assert result.after["ndcg@10"] > result.before["ndcg@10"]
    saved = json.loads((result.out_dir / "crossencoder.json").read_text())
    assert saved["settings"]["layers"] == 2 and saved["pairs"]["train_pairs"] == result.pairs["train_pairs"]


def test_saved_cross_encoder_scores_as_trained_and_truncates_to_its_layers(trained):
    _, result = trained
    model = CrossEncoder(result.out_dir, threads=1)
    assert model.model.config.num_hidden_layers == 2
    hose, lamp = model.score("hose 9", ["black garden hose", "black table lamp"])
    assert hose > lamp
    quantized = CrossEncoder(result.out_dir, threads=1, quantize=True).score(
        "hose 9", ["black garden hose", "black table lamp"]
    )
    assert quantized[0] > quantized[1]  # int8 linear layers keep the order of a clear case


def test_cross_encoder_stage_reorders_the_engines_best_hits(trained):
    table, result = trained
    plain = SearchEngine(table).search("hose 9 lamp", k=12)
    staged = SearchEngine(table, stages=[CrossEncoderStage(result.out_dir, top=12)]).search("hose 9 lamp", k=12)
    assert {h.item_id for h in staged.hits} == {h.item_id for h in plain.hits}  # the same hits, reordered
    own = CrossEncoder(result.out_dir).score("hose 9 lamp", [h.product.title for h in plain.hits])
    expected = [plain.hits[i].item_id for i in np.lexsort((np.arange(len(own)), -own))]
    assert [h.item_id for h in staged.hits] == expected
    assert [h.features["stage_crossencoder"] for h in staged.hits] == pytest.approx(sorted(own, reverse=True), abs=1e-5)


def test_cross_encoder_folder_errors_name_the_problem(tmp_path):
    with pytest.raises(ShoprecError, match="not a cross-encoder folder"):
        CrossEncoder(tmp_path)
    with pytest.raises(ShoprecError, match="top must be at least 1"):
        CrossEncoderStage(tmp_path, top=0)
