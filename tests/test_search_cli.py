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
