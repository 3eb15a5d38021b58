"""Promotion calendar: windows at their edges and in time zones, selections, audiences, boosts, the
feed, and one clear error per malformed promotion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from shoprec.data.frames import dataset_from_frames
from shoprec.errors import ConfigError, ModelError
from shoprec.pipeline.calendar import RECENT, Calendar, Promotion, moment
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext
from shoprec.text.tags import with_tags

CATALOG = [  # item id, category, tags, in stock
    ("P1", "Home & Kitchen > Decor > Ornaments", ["Christmas", "gift"], True),
    ("P2", "Home & Kitchen > Decor > Candles", ["christmas"], True),
    ("P3", "Home & Kitchen > Kitchen > Mugs", ["gift"], True),
    ("P4", "Home & Kitchen > Kitchen > Mugs", [], True),
    ("P5", "Home & Garden > Tools", [], True),
    ("P6", "Home > Bedding", [], True),
    ("P7", "Electronics > Audio > Headphones", ["gift"], False),
    ("P8", "Electronics > Audio > Speakers", [], True),
    ("P9", "Books > Fiction", [], True),
    ("P10", "", [], True),
]
CHRISTMAS = {"name": "Christmas", "start": "2025-12-01", "end": "2025-12-24", "tags": ["christmas"]}
SINGLES_DAY = {"name": "Singles Day", "start": "2025-11-11", "end": "2025-11-11", "utc_offset_hours": 8, "tags": "gift"}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def unix(*args: int) -> int:
    return int(utc(*args).timestamp())


@pytest.fixture(scope="module")
def info() -> ItemInfo:
    ids = [row[0] for row in CATALOG]
    items = pd.DataFrame({"item_id": ids, "category": [r[1] for r in CATALOG], "in_stock": [r[3] for r in CATALOG]})
    events = pd.DataFrame({"user_id": ["u"] * len(ids), "item_id": ids, "timestamp": range(len(ids))})
    dataset = with_tags(dataset_from_frames(items, events, name="calendar-shop"), [r[2] for r in CATALOG])
    return ItemInfo.from_dataset(dataset)


def context(history: list[int], now: int = 0) -> UserContext:
    return UserContext(0, np.array(history, dtype=np.int64), np.arange(len(history), dtype=np.int64), now)


def index(info: ItemInfo, *ids: str) -> list[int]:
    return [info.item_id.tolist().index(i) for i in ids]


def one(**table) -> Promotion:
    return Calendar.from_dicts([table]).promotions[0]


# -------------------------------------------------------------------------------- windows
def test_date_window_includes_first_and_last_day_in_utc():
    calendar = Calendar.from_dicts([CHRISTMAS])
    assert [p.name for p in calendar.active(utc(2025, 12, 1))] == ["Christmas"]
    assert calendar.active(unix(2025, 12, 24, 23, 59, 59)) and calendar.active(datetime(2025, 12, 24, 23, 59))
    assert not calendar.active(unix(2025, 11, 30, 23, 59, 59))
    assert not calendar.active(utc(2025, 12, 25))


def test_offset_moves_a_date_window_to_shop_time():
    """Singles Day in +08:00 runs 2025-11-10 16:00 UTC to 2025-11-11 15:59:59 UTC."""
    promotion = Calendar.from_dicts([SINGLES_DAY]).promotions[0]
    assert promotion.start == utc(2025, 11, 10, 16) and promotion.is_active(unix(2025, 11, 10, 16))
    assert not promotion.is_active(unix(2025, 11, 10, 15, 59, 59))
    assert promotion.is_active(unix(2025, 11, 11, 15, 59, 59))
    assert not promotion.is_active(unix(2025, 11, 11, 16))
    assert promotion.is_active(datetime(2025, 11, 11, 23, 30, tzinfo=timezone(timedelta(hours=8))))


def test_datetime_end_is_inclusive_and_naive_datetimes_are_utc():
    flash = one(name="Flash", start="2025-11-11T20:00:00+08:00", end="2025-11-11T22:00:00+08:00", items=["P3"])
    assert flash.is_active(unix(2025, 11, 11, 12)) and flash.is_active(unix(2025, 11, 11, 14))
    assert not flash.is_active(unix(2025, 11, 11, 14, 0, 1)) and not flash.is_active(unix(2025, 11, 11, 11, 59, 59))
    naive = one(name="Lunch", start="2025-06-02T12:00", end="2025-06-02T13:00", items=["P3"])
    assert naive.start == utc(2025, 6, 2, 12) and naive.end == utc(2025, 6, 2, 13)


def test_toml_file_with_native_dates_and_offsets(tmp_path):
    path = tmp_path / "promotions.toml"
    path.write_text(
        "[[promotion]]\nname = 'Singles Day'\nstart = 2025-11-11\nend = 2025-11-11\nutc_offset_hours = 8\n"
        "tags = ['gift']\nboost = 2.0\n\n"
        "[[promotion]]\nname = 'Midnight'\nstart = 2025-11-11T00:00:00+08:00\nend = 2025-11-11T01:00:00+08:00\n"
        "items = ['P9']\n",
        encoding="utf-8",
    )
    calendar = Calendar.from_toml(path)
    assert [p.name for p in calendar] == ["Singles Day", "Midnight"] and calendar.promotions[0].boost == 2.0
    assert [p.name for p in calendar.active(unix(2025, 11, 10, 16, 30))] == ["Singles Day", "Midnight"]
    assert [p.name for p in calendar.active(unix(2025, 11, 10, 17, 30))] == ["Singles Day"]
    assert len(Calendar.from_toml(_write(tmp_path, ""))) == 0  # an empty calendar is off season, not an error


def test_moment_reads_seconds_and_datetimes():
    assert moment(np.int64(0)) == utc(1970, 1, 1) and moment(datetime(2025, 1, 1)) == utc(2025, 1, 1)
    with pytest.raises(ModelError, match="neither unix seconds nor a datetime"):
        moment("2025-01-01")


# -------------------------------------------------------------------------------- selections
@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        ({"tags": ["CHRISTMAS"]}, ["P1", "P2"]),
        ({"categories": ["Home & Kitchen > Kitchen"]}, ["P3", "P4"]),
        ({"categories": ["home & kitchen>decor"]}, ["P1", "P2"]),
        ({"categories": ["Home"]}, ["P6"]),  # a level boundary: not "Home & Kitchen" nor "Home & Garden"
        ({"categories": ["Electronics > Audio > Speakers"]}, ["P8"]),
        ({"items": ["P9", "P5"]}, ["P5", "P9"]),
        ({"items": ["P9"], "tags": ["gift"], "categories": ["Home"]}, ["P1", "P3", "P6", "P7", "P9"]),
    ],
)
def test_selection_by_tags_categories_and_ids(info, selection, expected):
    calendar = Calendar.from_dicts([{"name": "X", "start": "2025-01-01", "end": "2025-01-02", **selection}])
    selected = calendar.items_for(calendar.promotions[0], info)
    assert sorted(info.item_id[selected].tolist()) == sorted(expected)
    assert np.all(np.diff(selected) > 0)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        ({"items": ["P1", "NOPE", "P404"]}, r"items: 2 of 3 item ids are not in the catalog: 'NOPE', 'P404'"),
        ({"tags": ["gift", "xmas"]}, r"tags: 1 of 2 tags are on no item: 'xmas'"),
        ({"categories": ["Home > Garden", "Books"]}, r"categories: 1 of 2 categories match no item: 'Home > Garden'"),
        ({"items": [f"Q{i}" for i in range(8)]}, r"items: 8 of 8 item ids .*'Q4' and 3 more"),
    ],
)
def test_unknown_ids_tags_and_categories_are_counted_and_named(info, selection, message):
    calendar = Calendar.from_dicts([{"name": "Typo", "start": "2025-01-01", "end": "2025-01-02", **selection}])
    with pytest.raises(ConfigError, match=r"promotion 'Typo', " + message):
        calendar.check(info)


# -------------------------------------------------------------------------------- audience and boosts
def test_matching_audience_is_the_share_of_recent_history_in_the_promotions_categories(info):
    calendar = Calendar.from_dicts([{**SINGLES_DAY, "audience": "matching"}, {**CHRISTMAS, "audience": "all"}])
    gifts, christmas = calendar.promotions
    mug, book = index(info, "P4", "P9")  # P4 is untagged but sits beside the "gift" mug P3
    assert calendar.user_matches(gifts, context([mug, book]), info) == pytest.approx(0.5)
    assert calendar.user_matches(gifts, context([book, book]), info) == 0.0
    assert calendar.user_matches(gifts, context([]), info) == 0.0
    assert calendar.user_matches(christmas, context([book]), info) == 1.0
    many = [book] * 3 + index(info, "P1", "P2", "P3", "P4", "P5", "P6")  # distinct recent items count once
    assert calendar.user_matches(gifts, context(many), info) == pytest.approx(3 / 7)
    assert RECENT >= 7


def test_boosts_add_up_over_active_promotions_and_scale_with_the_audience_match(info):
    calendar = Calendar.from_dicts(
        [
            {**CHRISTMAS, "boost": 1.5},
            {"name": "Decor week", "start": "2025-12-20", "end": "2025-12-27", "categories": ["Home & Kitchen > Decor"],
             "boost": 0.5},
            {"name": "Kitchen fans", "start": "2025-12-01", "end": "2025-12-31", "categories": ["Home & Kitchen"],
             "audience": "matching", "boost": 2.0},
        ]
    )  # fmt: skip
    p1, p2, p3, p9 = index(info, "P1", "P2", "P3", "P9")
    book_reader, mug_and_book = context([p9]), context([p3, p9])
    early = calendar.boosts(book_reader, info, unix(2025, 12, 2))
    assert early.shape == (info.n_items,) and early.dtype == np.float32
    assert early[p1] == early[p2] == pytest.approx(1.5) and np.count_nonzero(early) == 2
    overlap = calendar.boosts(mug_and_book, info, unix(2025, 12, 21))
    assert overlap[p1] == pytest.approx(1.5 + 0.5 + 2.0 * 0.5) and overlap[p3] == pytest.approx(1.0)
    assert overlap[p9] == 0.0
    after = calendar.boosts(mug_and_book, info, unix(2025, 12, 28))
    assert after[p3] == pytest.approx(1.0) and after[p1] == pytest.approx(1.0)
    assert not calendar.boosts(mug_and_book, info, unix(2026, 1, 1)).any()


def test_feed_ranks_by_personal_scores_else_popularity_and_skips_out_of_stock(info):
    calendar = Calendar.from_dicts([SINGLES_DAY, {**CHRISTMAS, "start": "2025-11-01"}])
    now = unix(2025, 11, 11, 3)
    p1, p2, p3, p7 = index(info, "P1", "P2", "P3", "P7")
    scores = np.zeros(info.n_items)
    scores[[p1, p2, p3, p7]] = [0.1, 0.9, 0.5, 5.0]
    feed = calendar.feed(context([]), info, now, k=10, scores=scores)
    assert feed.items.tolist() == [p2, p3, p1] and feed.out_of_stock == 1  # P7 (headphones) is out of stock
    assert feed.scores.tolist() == pytest.approx([0.9, 0.5, 0.1])
    assert feed.promotion.tolist() == ["Christmas", "Singles Day", "Singles Day"]  # P1: gift boost 1 = christmas 1
    popularity = np.arange(info.n_items, dtype=np.float64)[::-1]
    assert calendar.feed(context([]), info, now, k=2, popularity=popularity).items.tolist() == [p1, p2]
    scores[p1] = np.nan
    assert calendar.feed(context([]), info, now, k=3, scores=scores).items.tolist()[-1] == p1
    after = calendar.feed(context([]), info, unix(2025, 11, 12, 3), k=10, popularity=popularity)
    assert after.items.tolist() == [p1, p2] and after.promotion.tolist() == ["Christmas"] * 2


def test_feed_is_empty_outside_the_audience_and_refuses_bad_input(info):
    calendar = Calendar.from_dicts([{**CHRISTMAS, "audience": "matching"}])
    now, popularity = unix(2025, 12, 10), np.ones(info.n_items)
    assert len(calendar.feed(context(index(info, "P9")), info, now, k=5, popularity=popularity).items) == 0
    assert len(calendar.feed(context(index(info, "P2")), info, now, k=5, popularity=popularity).items) == 2
    with pytest.raises(ModelError, match="needs personal scores or item popularity"):
        calendar.feed(context([]), info, now, k=5)
    with pytest.raises(ModelError, match=r"shape \(3,\); expected \(10,\)"):
        calendar.feed(context([]), info, now, k=5, scores=np.ones(3))


# -------------------------------------------------------------------------------- malformed promotions
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start": "2025-13-01"}, r"'Christmas' \(#1\), start: '2025-13-01' is not an ISO date or datetime"),
        ({"end": "Christmas Eve"}, r"end: 'Christmas Eve' is not an ISO date or datetime. Write a date as YYYY-MM-DD"),
        ({"end": 20251224}, r"end: 20251224 is not a date or datetime"),
        ({"start": "2025-12-24", "end": "2025-12-01"}, r"end: ends \(2025-12-01T23:59:59.999999\+00:00\) before it"),
        ({"end": "2026-12-24"}, r"end: runs 388 days, longer than a year. Check the years"),
        ({"tags": []}, r"'Christmas' \(#1\): selects no items. Give at least one of items, tags or"),
        ({"boost": -1}, r"boost: boost -1 is not positive. Use a boost > 0"),
        ({"boost": 0}, r"boost: boost 0 is not positive"),
        ({"boost": "high"}, r"boost: boost 'high' is not a finite number"),
        ({"audience": "vip"}, r"audience: unknown audience 'vip'. Use one of \('all', 'matching'\)"),
        ({"catgories": ["Home"]}, r"unknown keys 'catgories' \(did you mean 'categories'\?\)"),
        ({"tags": ["ok", ""]}, r"tags: \['ok', ''\] is not a list of non-empty strings"),
        ({"utc_offset_hours": 30}, r"utc_offset_hours: 30 is not an offset in hours between -14 and 14"),
        ({"start": "2025-12-01T00:00+01:00", "utc_offset_hours": 8}, r"start: .* carries an offset other than"),
        ({"name": ""}, r"\(#1\), name: name '' is not a non-empty string"),
    ],
)
def test_malformed_promotions_say_what_where_and_how_to_fix(change, message):
    with pytest.raises(ConfigError, match=r"^calendar: promotion.*" + message):
        Calendar.from_dicts([{**CHRISTMAS, **change}])


def test_missing_keys_duplicates_and_file_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"promotion 'Christmas' \(#1\): 'end' is missing"):
        Calendar.from_dicts([{k: v for k, v in CHRISTMAS.items() if k != "end"}])
    with pytest.raises(ConfigError, match=r"promotion 'Christmas' \(#3\), name: name is already used by promotion #1"):
        Calendar.from_dicts([CHRISTMAS, SINGLES_DAY, CHRISTMAS])
    with pytest.raises(ConfigError, match=r"promotion #2 is a str, not a table"):
        Calendar.from_dicts([CHRISTMAS, "Easter"])
    with pytest.raises(ConfigError, match=r"promos.toml: promotion 'Sale' \(#1\), end: '2025-02-30' is not an ISO"):
        Calendar.from_toml(_write(tmp_path, "[[promotion]]\nname='Sale'\nstart='2025-02-01'\nend='2025-02-30'\n"))
    with pytest.raises(ConfigError, match=r"not valid TOML"):
        Calendar.from_toml(_write(tmp_path, "[[promotion]\nname='Sale'\n"))
    with pytest.raises(ConfigError, match=r"unknown top-level keys \['promotions'\]"):
        Calendar.from_toml(_write(tmp_path, "[[promotions]]\nname='Sale'\n"))
    with pytest.raises(ConfigError, match=r"file not found"):
        Calendar.from_toml(tmp_path / "missing.toml")


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match="needs a time-zone aware datetime"):
        Promotion("Naive", datetime(2025, 1, 1), datetime(2025, 1, 2), items=("P1",))
    promotion = Promotion("Ok", utc(2025, 1, 1), utc(2025, 1, 2), categories=("Books",))
    assert promotion.boost == 1.0 and promotion.audience == "all"


def _write(folder, text: str):
    path = folder / "promos.toml"
    path.write_text(text, encoding="utf-8")
    return path
