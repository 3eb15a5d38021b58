"""``shoprec search``: the understood query and the results are printed; bad input ends in one line."""

from __future__ import annotations

import pandas as pd
import pytest

from shoprec.cli.main import main


@pytest.fixture
def shop(tmp_path):
    pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Nordhaus steel kettle", "Nordhaus glass kettle", "Makito cordless drill"],
            "category": ["Home > Kettles", "Home > Kettles", "Tools > Drills"],
            "brand": ["Nordhaus", "Nordhaus", "Makito"],
            "price": [45.0, 60.0, 80.0],
        }
    ).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "c"]}).to_csv(tmp_path / "interactions.csv", index=False)
    return tmp_path


def test_search_prints_the_parsed_query_and_results(shop, capsys):
    assert main(["search", str(shop), "nordhuas kettle under 50", "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "understood: brand: Nordhaus, category: Home > Kettles, max price: 50" in out
    assert "searched for 'nordhaus' instead of 'nordhuas'" in out
    assert "  1. a  Nordhaus steel kettle" in out and " b " not in out


def test_search_in_chinese_describes_in_chinese(shop, capsys):
    assert main(["search", str(shop), "Makito 100元以下"]) == 0
    out = capsys.readouterr().out
    assert "understood: 品牌：Makito，最高价格：100" in out and "  1. c  Makito cordless drill" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["   "], "the search query is empty"),
        (["kettle", "-k", "0"], "-k must be at least 1"),
        (["kettle", "--encoder", "no-such-encoder"], "unknown encoder 'no-such-encoder'"),
    ],
)
def test_bad_input_ends_in_one_line(shop, capsys, argv, message):
    assert main(["search", str(shop), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_search_prints_explanations_facets_and_pages(shop, capsys):
    assert main(["search", str(shop), "kettle", "-k", "1", "--offset", "1"]) == 0
    out = capsys.readouterr().out
    assert "results 2-2 of 2" in out and "  2. b  Nordhaus glass kettle" in out and "  1. a" not in out
    assert "why: matches: kettle; among the most popular products that satisfy the constraints" in out
    assert "facet brand: Nordhaus (2)" in out and "facet price: 25-50 (1), 50-100 (1)" in out
    assert main(["search", str(shop), "steel kettle", "--lang", "zh"]) == 0
    assert "why: 匹配词：steel, kettle" in capsys.readouterr().out


def test_search_applies_a_merchandising_file(shop, capsys):
    merch = shop / "search.toml"
    merch.write_text('[synonyms]\ntwo_way = [["teapot", "kettle"]]\n\n[queries."teapot"]\npinned = { "c" = 0 }\n')
    assert main(["search", str(shop), "teapot", "--merch", str(merch)]) == 0
    out = capsys.readouterr().out
    assert "  1. c  Makito cordless drill" in out and "why: placed here by the shop" in out
    assert "also searched for 'kettle' (a synonym of 'teapot')" in out and "  2. a" in out


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[queries."teapot"]\npinned = { "zz" = 0 }\n', "item ids not in the catalogue: 'zz'"),
        ("[queries.teapot]\npinned = 3\n", "pinned: expected a table of item id -> slot"),
    ],
)
def test_a_bad_merchandising_file_ends_in_one_line(shop, capsys, toml, message):
    merch = shop / "search.toml"
    merch.write_text(toml)
    assert main(["search", str(shop), "teapot", "--merch", str(merch)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert main(["search", str(shop), "kettle", "--offset", "-1"]) == 2
    assert "--offset must be 0 or more" in capsys.readouterr().err
