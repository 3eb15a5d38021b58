"""Why each search result matched, in English and Chinese: words, meaning, the shopper's history,
constraints, browsing; personal results differ by history and an anonymous shopper gets the plain order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shoprec.search.dense import DenseIndex, product_text
from shoprec.search.explain import explain_hit, reasons
from shoprec.search.hybrid import SearchEngine
from shoprec.search.personal import SearchProfile
from shoprec.search.products import Product, ProductTable
from shoprec.text.encoders import Encoder

WORDS = ["kettle", "tea", "drill", "tent"]


class WordEncoder(Encoder):
    """Counts of four words, with 茶 (tea) read as tea: exact, tiny, cross-lingual on one word."""

    name = "words"
    dim = len(WORDS)

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            low = text.lower().replace("茶", " tea ")
            rows.append([low.count(w) + 0.01 for w in WORDS])
        return np.array(rows, dtype=np.float32)


SHOP = [
    Product("k1", "Nordhaus steel kettle", category="Home > Kitchen > Kettles", brand="Nordhaus", price=45.0),
    Product("k2", "Oakline glass kettle", category="Home > Kitchen > Kettles", brand="Oakline", price=39.0),
    Product("k3", "Nordhaus travel kettle", category="Home > Kitchen > Kettles", brand="Nordhaus", price=25.0),
    Product("t1", "Green tea leaves", category="Food > Tea", brand="Leafy", price=8.0),
    Product("t2", "Tea infuser", category="Home > Kitchen > Tea", brand="Oakline", price=12.0),
    Product("d1", "Cordless drill", category="Tools > Drills", brand="Makito", price=89.0),
    Product("c1", "Dome tent", category="Sports > Camping", brand="TrailMark", price=120.0),
]


@pytest.fixture(scope="module")
def engine() -> SearchEngine:
    table = ProductTable(SHOP)
    encoder = WordEncoder()
    vectors = encoder.encode([product_text(p) for p in table.products])
    return SearchEngine(table, dense=DenseIndex(encoder, vectors, table.alive))


def test_each_hit_says_why_in_english_and_chinese(engine):
    result = engine.search("steel kettle under 50", k=3)
    top = result.hits[0]
    assert top.item_id == "k1"
    kinds = [r["kind"] for r in reasons(top, result)]
    assert kinds == ["words", "semantic", "constraints"]
    assert explain_hit(top, result) == (
        "matches: steel, kettle; close in meaning to the query (#1); "
        "satisfies category: Home > Kitchen > Kettles, max price: 50"
    )
    assert explain_hit(top, result, "zh") == (
        "匹配词：steel, kettle；语义相近（第 1 名）；满足 类目：Home > Kitchen > Kettles，最高价格：50"
    )


def test_a_semantic_only_match_says_so(engine):
    result = engine.search("茶", k=5)  # no product has the Chinese word; the encoder reads it as tea
    hit = next(h for h in result.hits if h.item_id in {"t1", "t2"})
    assert [r["kind"] for r in reasons(hit, result)] == ["semantic"]
    assert hit.matched == () and "语义相近" in explain_hit(hit, result, "zh")


def test_relaxed_constraints_are_not_claimed(engine):
    result = engine.search("makito kettle", k=3)  # Makito sells no kettle: the category is dropped
    assert result.relaxed == ("category",)
    text = explain_hit(result.hits[0], result)
    assert "brand: Makito" in text and "Kettles" not in text


def test_personal_boost_is_explained_and_histories_change_the_order(engine):
    table = engine.table
    vectors = engine.dense.vectors
    nordhaus_fan = SearchProfile.from_history(table, [table.position("k1"), table.position("k3")], vectors, weight=0.6)
    oakline_fan = SearchProfile.from_history(table, [table.position("k2"), table.position("t2")], vectors, weight=0.6)
    plain = engine.search("glass steel travel kettle", k=3)
    first = engine.search("glass steel travel kettle", k=3, profile=nordhaus_fan)
    second = engine.search("glass steel travel kettle", k=3, profile=oakline_fan)
    assert [h.item_id for h in first.hits] != [h.item_id for h in second.hits]
    assert first.hits[0].product.brand == "Nordhaus" and second.hits[0].product.brand == "Oakline"
    hit = second.hits[0]
    assert hit.shares["personal"] >= 0.05 and sum(hit.shares.values()) == pytest.approx(1.0)
    assert any(name.startswith("personal_") and name != "personal_rank" for name in hit.features)
    assert "suits your history" in explain_hit(hit, second)
    assert "符合你的历史偏好" in explain_hit(hit, second, "zh")
    # an anonymous shopper and one with no history get the plain order, with no personal reason
    empty = SearchProfile.from_history(table, [], vectors)
    for result in (
        engine.search("glass steel travel kettle", k=3, profile=None),
        engine.search("glass steel travel kettle", k=3, profile=empty),
    ):
        assert [h.item_id for h in result.hits] == [h.item_id for h in plain.hits]
        assert [h.score for h in result.hits] == [h.score for h in plain.hits]
        assert all("personal" not in h.shares for h in result.hits)


def test_to_dict_is_json_with_reasons_and_no_nan(engine):
    result = engine.search("nordhaus", k=2)  # browse: no lexical or dense score (NaN features)
    out = json.loads(json.dumps(result.to_dict("zh"), allow_nan=False))
    hit = out["hits"][0]
    assert hit["features"]["lexical_score"] is None
    assert [r["kind"] for r in hit["reasons"]] == ["words", "browse", "constraints"]
    assert hit["explanation"].endswith("满足 品牌：Nordhaus")
    assert out["query"]["describe"] == "品牌：Nordhaus"
    assert out["query"]["brands"] == ["Nordhaus"] and out["query"]["synonyms"] == []
