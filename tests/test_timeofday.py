"""Time-of-day context: buckets in shop time, the chi-square decision on data with and without a
planted time effect, the prior it yields, and the demo shop (which plants none)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from shoprec.data.demo import generate_preset
from shoprec.data.frames import dataset_from_frames
from shoprec.errors import ConfigError, DataError, ModelError
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.timeofday import (
    ALPHA,
    DAY_BUCKETS,
    HOUR_BUCKETS,
    MIN_CRAMERS_V,
    TimeContext,
    TimeSettings,
    buckets,
    independence,
    smoothed_log_ratio,
)

CATEGORIES = ("Home > Candles", "Home > Mugs", "Garden > Tools", "Toys > Puzzles", "Books > Fiction")
MONDAY = int(datetime(2025, 3, 3, tzinfo=UTC).timestamp())


def unix(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def synthetic(rng, n_events=3000, evening=None, weekend=None, offset_hours=0, unlabelled=0):
    """Five categories of four items, 300 shoppers over eight weeks, hours uniform in shop time;
    the ``evening`` category is only bought 18:00-24:00 and the ``weekend`` one only on Sat/Sun."""
    category = rng.integers(0, len(CATEGORIES), n_events)
    item = category * 4 + rng.integers(0, 4, n_events)
    hour = np.where(category == evening, rng.integers(18, 24, n_events), rng.integers(0, 24, n_events))
    day = rng.integers(0, 8, n_events) * 7 + np.where(
        category == weekend, rng.integers(5, 7, n_events), rng.integers(0, 7, n_events)
    )
    local = MONDAY + day * 86_400 + hour * 3600 + rng.integers(0, 3600, n_events)
    labels = [c for c in CATEGORIES for _ in range(4)] + [""] * unlabelled
    ids = [f"I{i:02d}" for i in range(len(labels))]
    items = pd.DataFrame({"item_id": ids, "category": labels})
    events = pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 300, n_events)],
            "item_id": np.asarray(ids, dtype=object)[item],
            "timestamp": local - offset_hours * 3600,
            "event": "purchase",
        }
    )
    return dataset_from_frames(items, events, name="synthetic")


def fit(dataset, **settings) -> TimeContext:
    return TimeContext.fit(dataset, ItemInfo.from_dataset(dataset).category, TimeSettings(**settings))


# -------------------------------------------------------------------------------- buckets and statistics
def test_buckets_read_hours_and_weekends_in_shop_time():
    # Singles Day 2025-11-11 is a Tuesday; 2025-11-14 a Friday
    times = [unix(2025, 11, 11, 3), unix(2025, 11, 11, 9), unix(2025, 11, 11, 12), unix(2025, 11, 11, 20)]
    hour, weekend = buckets(np.array(times))
    assert [HOUR_BUCKETS[h] for h in hour] == ["night", "morning", "afternoon", "evening"] and not weekend.any()
    hour, weekend = buckets(np.array([unix(2025, 11, 14, 20), unix(2025, 11, 16, 23, 59)]), utc_offset_hours=8)
    assert [HOUR_BUCKETS[h] for h in hour] == ["night", "morning"] and weekend.tolist() == [True, False]
    hour, weekend = buckets(np.array([unix(2025, 11, 15, 2)]), utc_offset_hours=-5)
    assert HOUR_BUCKETS[hour[0]] == "evening" and DAY_BUCKETS[int(weekend[0])] == "weekday"


def test_independence_matches_the_textbook_on_known_tables():
    chi2, p, dof, v = independence(np.outer([100, 300], [50, 150, 200]))  # exactly independent
    assert chi2 == pytest.approx(0.0, abs=1e-9) and p == pytest.approx(1.0) and dof == 2 and v == 0.0
    chi2, p, dof, v = independence(np.array([[500, 0], [0, 500]]))  # perfect association
    assert chi2 == pytest.approx(1000.0) and p < 1e-100 and v == pytest.approx(1.0, abs=1e-3)
    chi2, _, _, v = independence(np.array([[30, 10], [10, 30]]))  # 2x2 by hand: chi2 = 80 * 0.25 = 20
    assert chi2 == pytest.approx(20.0) and v == pytest.approx(np.sqrt(20 / 80 - 1 / 79) / np.sqrt(1 - 1 / 79))


def test_significant_but_tiny_effect_does_not_matter():
    """200,000 visits where 0.75% of one category's visits move from night to evening: p is below
    ALPHA, V far below the threshold."""
    table = np.array([[25_000, 25_000, 25_000, 25_000], [24_250, 25_000, 25_000, 25_750]])
    _, p, _, v = independence(table)
    assert p < ALPHA and 0 < v < MIN_CRAMERS_V / 5


def test_smoothed_log_ratio_is_observed_over_expected_pulled_towards_zero():
    counts = np.array([[90, 10], [10, 90]])
    ratio = smoothed_log_ratio(counts, 5.0)
    assert ratio[0, 0] == pytest.approx(np.log(95 / 55)) and ratio[0, 1] == pytest.approx(np.log(15 / 55))
    assert abs(smoothed_log_ratio(counts, 500.0)[0, 0]) < abs(ratio[0, 0])
    assert np.allclose(smoothed_log_ratio(np.outer([3, 7], [2, 8]), 1.0), 0.0)


# -------------------------------------------------------------------------------- planted effects
def test_an_evening_only_category_is_found_and_favoured_at_20h(rng):
    context = fit(synthetic(rng, evening=0))
    report = context.report()
    assert context.matters and report["hour"]["matters"] and not report["day"]["matters"]
    assert report["hour"]["p_value"] < 1e-10 and report["hour"]["cramers_v"] > 0.25
    assert report["hour"]["category_share"]["Home > Candles"]["evening"] == pytest.approx(1.0)
    assert report["hour"]["overall_share"]["evening"] == pytest.approx(0.4, abs=0.03)
    candles = np.arange(4)
    evening = context.prior(unix(2025, 6, 2, 20))
    assert evening.shape == (20,) and evening.dtype == np.float32
    assert evening[candles].min() > 0.5 and np.delete(evening, candles).max() < 0
    assert np.argsort(-evening)[:4].tolist() == sorted(np.argsort(-evening)[:4].tolist()) == [0, 1, 2, 3]
    morning = context.prior(datetime(2025, 6, 2, 10, tzinfo=UTC))
    assert morning[candles].max() < -2 and np.delete(morning, candles).min() > 0


def test_a_weekend_only_category_is_found_by_the_day_factor(rng):
    context = fit(synthetic(rng, weekend=3))
    assert context.tests["day"].matters and not context.tests["hour"].matters
    puzzles = np.arange(12, 16)
    saturday, tuesday = context.prior(unix(2025, 11, 15, 12)), context.prior(unix(2025, 11, 11, 12))
    assert saturday[puzzles].min() > 0.5 and tuesday[puzzles].max() < -2


def test_no_time_effect_gives_matters_false_and_a_zero_prior(rng):
    context = fit(synthetic(rng))
    report = context.report()
    assert not context.matters and not report["hour"]["matters"] and not report["day"]["matters"]
    assert report["hour"]["cramers_v"] < MIN_CRAMERS_V and report["day"]["cramers_v"] < MIN_CRAMERS_V
    for hour in (3, 9, 15, 21):
        assert not context.prior(unix(2025, 11, 15, hour)).any()


def test_the_effect_size_threshold_is_half_of_the_decision(rng):
    dataset = synthetic(rng, evening=0)
    strict = fit(dataset, min_cramers_v=0.9)
    assert strict.tests["hour"].p_value < 1e-10 and not strict.matters and not strict.prior(unix(2025, 6, 2, 20)).any()


def test_shop_time_offset_puts_the_evening_where_the_shop_has_it(rng):
    """Candles bought 18-24 in +08:00 are bought 10-16 UTC; with the offset, 20:00 shop time favours them."""
    dataset = synthetic(rng, evening=0, offset_hours=8)
    shop_time = fit(dataset, utc_offset_hours=8)
    assert shop_time.report()["hour"]["category_share"]["Home > Candles"]["evening"] == pytest.approx(1.0)
    assert shop_time.prior(unix(2025, 6, 2, 12))[:4].min() > 0.5  # 20:00 in the shop
    assert fit(dataset).report()["hour"]["category_share"]["Home > Candles"]["evening"] == 0.0


def test_unlabelled_items_are_counted_and_get_no_prior(rng):
    dataset = synthetic(rng, evening=0, unlabelled=2)
    events = dataset.interactions
    late = events.assign(item=np.where(np.arange(len(events)) % 10 == 0, 20, events["item"]))
    dataset.interactions = late.astype({"item": np.int32})
    context = fit(dataset)
    counts = context.report()["counts"]
    assert counts["unknown_category"] == int((late["item"] == 20).sum()) > 0
    assert counts["events"] + counts["unknown_category"] == len(late)
    assert context.matters and context.prior(unix(2025, 6, 2, 20))[20:].tolist() == [0.0, 0.0]


def test_visits_not_events_are_the_unit(rng):
    """A session of many events in one category and bucket on one day counts once."""
    dataset = synthetic(rng, n_events=400)
    burst = dataset.interactions.iloc[[0] * 50]
    dataset.interactions = pd.concat([dataset.interactions, burst], ignore_index=True)
    counts = fit(dataset).report()["counts"]
    assert counts["events"] == 450 and counts["hour_visits"] <= 400 and counts["day_visits"] <= counts["hour_visits"]


# -------------------------------------------------------------------------------- the demo shop
@pytest.fixture(scope="module")
def demo():
    dataset = generate_preset("small").to_dataset()
    return dataset, ItemInfo.from_dataset(dataset)


def test_demo_shop_plants_no_time_effect(demo):
    """The demo draws visit times independently of what is viewed: nothing may matter."""
    dataset, info = demo
    context = TimeContext.fit(dataset, info.top)
    report = context.report()
    assert not context.matters and report["hour"]["p_value"] > 0.01 and report["day"]["p_value"] > 0.01
    assert report["counts"]["events"] == len(dataset) and report["counts"]["hour_visits"] < len(dataset) / 3
    assert sum(report["hour"]["overall_share"].values()) == pytest.approx(1.0)
    for shares in report["day"]["category_share"].values():
        assert sum(shares.values()) == pytest.approx(1.0)
    assert report["hour"]["overall_share"]["evening"] > report["hour"]["overall_share"]["night"]  # the demo's rhythm
    assert not context.prior(unix(2025, 6, 1, 20)).any()


def test_demo_leaf_categories_too_thin_for_the_test_say_so(demo):
    dataset, info = demo
    context = TimeContext.fit(dataset, info.category, TimeSettings(events=("purchase",)))
    note = context.report()["hour"]["note"]
    assert not context.matters and "pooled into one row" in note and "no test" in note


# -------------------------------------------------------------------------------- bad input
def test_bad_input_raises_clear_errors(demo):
    dataset, info = demo
    with pytest.raises(DataError, match=r"demo-shop: 3 category labels for 300 items. Pass one label per item"):
        TimeContext.fit(dataset, info.top[:3])
    with pytest.raises(DataError, match=r"no events left to count"):
        TimeContext.fit(dataset, info.top, TimeSettings(events=("rating",)))
    with pytest.raises(ConfigError, match=r"time.events: unknown event types \['buy'\]"):
        TimeSettings(events=("buy",))
    with pytest.raises(ConfigError, match=r"time.utc_offset_hours: 20 is not between -14 and 14"):
        TimeSettings(utc_offset_hours=20)
    with pytest.raises(ConfigError, match=r"time.alpha"):
        TimeSettings(alpha=1.5)
    with pytest.raises(ModelError, match="neither unix seconds nor a datetime"):
        TimeContext.fit(dataset, info.top).prior("20:00")
