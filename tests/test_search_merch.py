"""Search merchandising: synonyms widen retrieval; per-query pins, boosts, buries and blocks go through
the feeds' rules; configuration mistakes are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.errors import ConfigError
from shoprec.search.hybrid import SearchEngine
from shoprec.search.merch import Merchandising, normalise
from shoprec.search.products import Product, ProductTable

SHOP = [
    Product("s1", "Velvet sofa, three seats", category="Home > Living Room > Seating", brand="Nordhaus", price=499.0),
    Product("s2", "Linen sofa bed", category="Home > Living Room > Seating", brand="Nordhaus", price=399.0),
    Product("c1", "Leather couch", category="Home > Living Room > Seating", brand="Oakline", price=899.0),
    Product("p1", "Mobile phone 128 GB", category="Electronics > Phones", brand="Zentek", price=299.0),
    Product("p2", "智能手机 256GB", category="Electronics > Phones", brand="Zentek", price=399.0),
    Product("t1", "Cotton t-shirt", category="Fashion > Tops", brand="Linen Lane", price=15.0),
    Product("t2", "Cotton tee", category="Fashion > Tops", brand="Linen Lane", price=12.0),
    *[
        Product(f"m{i}", f"Coffee mug no {i}", category="Home > Kitchen > Cups", brand="Nordhaus", price=5.0 + i)
        for i in range(8)
    ],
    Product("g1", "Gift card", category="Gifts", brand="Shop", price=25.0),
]

TOML = """
[synonyms]
two_way = [["sofa", "couch"], ["手机", "mobile phone"]]
one_way = { "tee" = ["t-shirt"] }

[queries."coffee mug"]
pinned = { "g1" = 0, "m7" = 4 }
boosted = { "m6" = 1.0 }
buried = { "m0" = 1.0 }
blocked = ["m1"]

[queries."leather couch"]
pinned = { "s2" = 0 }
"""


@pytest.fixture
def merch(tmp_path) -> Merchandising:
    path = tmp_path / "search.toml"
    path.write_text(TOML, encoding="utf-8")
    return Merchandising.from_toml(path)


def ids(result) -> list[str]:
    return [h.item_id for h in result.hits]


def test_synonyms_widen_retrieval_both_ways_and_one_way(merch):
    engine = SearchEngine(ProductTable(SHOP), merch=merch)
    plain = SearchEngine(ProductTable(SHOP))
    assert set(ids(plain.search("couch"))) == {"c1"}
    result = engine.search("couch")
    assert set(ids(result)) == {"c1", "s1", "s2"}
    assert result.query.synonyms == (("couch", "sofa"),)
    assert "also searched for 'sofa' (a synonym of 'couch')" in result.notes
    sofa_hit = next(h for h in result.hits if h.item_id == "s1")
    assert sofa_hit.matched == ("sofa",)
    assert set(ids(engine.search("sofa"))) == {"c1", "s1", "s2"}
    assert set(ids(engine.search("手机"))) == {"p1", "p2"}  # Chinese finds the English listing
    assert set(ids(engine.search("mobile phone"))) == {"p1", "p2"}
    assert set(ids(engine.search("tee"))) == {"t1", "t2"}  # one way: tee also finds t-shirts ...
    assert set(ids(engine.search("t-shirt"))) == {"t1"}  # ... a t-shirt query does not find tees


def test_query_rules_pin_boost_bury_and_block(merch):
    plain = SearchEngine(ProductTable(SHOP)).search("coffee mug", k=20)
    engine = SearchEngine(ProductTable(SHOP), merch=merch)
    result = engine.search("Coffee  MUG!", k=20)  # the rule's key is the normalised query
    got = ids(result)
    assert ids(plain) == ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"]  # BM25 ties: by position
    # g1 and m7 pinned at slots 0 and 4 (the gift card is no mug at all), m1 blocked, m6 boosted by one
    # score spread (level with the best), m0 buried by one (level with the worst; ties keep fused order)
    assert got == ["g1", "m6", "m2", "m3", "m7", "m4", "m5", "m0"]
    assert result.total == 8
    gift = result.hits[0]
    assert gift.shares == {"merch": 1.0} and gift.features["merch_slot"] == 0
    boosted = result.hits[got.index("m6")]
    assert boosted.features["merch_lift"] > 0 and boosted.shares["merch"] > 0
    assert sum(boosted.shares.values()) == pytest.approx(1.0)
    assert any("pinned 2 items" in n for n in result.notes) and any("buried 1 items" in n for n in result.notes)
    # pages continue the arranged ordering, and a pin is at its slot of the whole list
    assert ids(engine.search("coffee mug", k=3, offset=3)) == got[3:6]
    assert ids(engine.search("coffee mug", k=2, offset=4))[0] == "m7"
    out = result.to_dict()
    assert "placed here by the shop" in out["hits"][0]["explanation"]
    assert "promoted by the shop" in out["hits"][got.index("m6")]["explanation"]
    assert result.to_dict("zh")["hits"][0]["explanation"].startswith("由商家固定在此位置")


def test_a_pin_outside_the_constraints_or_the_mask_is_not_shown(merch):
    engine = SearchEngine(ProductTable(SHOP), merch=merch)
    mask = np.ones(len(engine.table), dtype=bool)
    mask[engine.table.position("s2")] = False
    result = engine.search("leather couch", allowed=mask)
    assert "s2" not in ids(result) and any("1 of 1 pinned items not shown" in n for n in result.notes)
    assert ids(engine.search("leather couch"))[0] == "s2"


class TitleLength:
    name, top = "length", 10

    def score(self, query, hits):
        return np.array([len(h.product.title) for h in hits], dtype=float)


def test_stages_reorder_around_pins(merch):
    engine = SearchEngine(ProductTable(SHOP), merch=merch, stages=[TitleLength()])
    got = ids(engine.search("coffee mug", k=10))
    assert got[0] == "g1" and got[4] == "m7"
    others = [h for h in engine.search("coffee mug", k=10).hits if h.item_id not in {"g1", "m7"}]
    lengths = [len(h.product.title) for h in others]
    assert lengths == sorted(lengths, reverse=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1", "unknown key 'colour'"),
        ("[synonyms]\nthree_way = []", "synonyms: unknown key 'three_way'"),
        ('[synonyms]\ntwo_way = [["sofa"]]', "each a list of two or more words"),
        ('[synonyms]\none_way = { "tee" = "t-shirt" }', "one_way must map a word to a list of words"),
        ('[queries."mug"]\npromoted = { "m1" = 1 }', "unknown key 'promoted'"),
        ('[queries."mug"]\nboosted = { "m1" = -1 }', "boosted: expected a table of item id -> a finite number >= 0"),
        ('[queries."mug"]\npinned = { "m1" = 1.5 }', "pinned: expected a table of item id -> slot"),
        ('[queries."mug"]\npinned = { "m1" = 0 }\nblocked = ["m1"]', "both pinned and blocked"),
        ('[queries."?!"]\npinned = { "m1" = 0 }', "a query with no words"),
        ("[queries", "not valid TOML"),
    ],
)
def test_configuration_mistakes_are_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        Merchandising.from_toml(path)


def test_unknown_item_ids_and_rule_conflicts_are_errors_when_bound():
    merch = Merchandising.from_dict({"queries": {"mug": {"pinned": {"nope": 0}, "buried": {"gone": 1.0}}}})
    with pytest.raises(ConfigError, match="item ids not in the catalogue: 'gone', 'nope'"):
        SearchEngine(ProductTable(SHOP), merch=merch)
    twice = Merchandising.from_dict({"queries": {"mug": {"pinned": {"m1": 0, "m2": 0}}}})
    with pytest.raises(ConfigError, match="slot 0 is given to 2 items"):
        SearchEngine(ProductTable(SHOP), merch=twice)
    with pytest.raises(ConfigError, match="file not found"):
        Merchandising.from_toml("no/such/file.toml")


def test_normalised_query_keys():
    assert normalise("  Coffee   MUG!! ") == "coffee mug"
    assert normalise("不粘锅") == normalise("不粘锅 ")


def test_a_rule_on_a_browsing_query_pins_and_blocks():
    merch = Merchandising.from_dict({"queries": {"nordhaus": {"pinned": {"m5": 0}, "blocked": ["s1"]}}})
    engine = SearchEngine(ProductTable(SHOP), merch=merch)
    plain = SearchEngine(ProductTable(SHOP)).search("nordhaus", k=20)
    result = engine.search("nordhaus", k=20)  # a brand alone: every Nordhaus product, most popular first
    expected = ["m5"] + [i for i in ids(plain) if i not in {"m5", "s1"}]
    assert ids(result) == expected and result.total == len(plain.hits) - 1
    assert result.hits[0].shares["popularity"] == pytest.approx(1.0)  # proposed by browsing, then pinned
    assert result.hits[0].features["merch_slot"] == 0


def test_one_configuration_serves_engines_over_different_tables(merch):
    forward = SearchEngine(ProductTable(SHOP), merch=merch)
    backward = SearchEngine(ProductTable(SHOP[::-1]), merch=merch)  # the same ids at other positions
    for _ in range(2):  # alternating: each engine's rules read its own table
        assert ids(forward.search("coffee mug", k=5))[0] == "g1" and ids(backward.search("coffee mug", k=5))[0] == "g1"
        assert (
            "m1" not in ids(backward.search("coffee mug", k=20)) and ids(forward.search("coffee mug", k=5))[4] == "m7"
        )
