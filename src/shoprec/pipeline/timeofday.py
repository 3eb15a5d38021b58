"""Time of day and day of week as context: does the clock change what people shop for?

:meth:`TimeContext.fit` counts events per category in four hour buckets (night 0-6, morning 6-12,
afternoon 12-18, evening 18-24, in shop time) and in two day buckets (weekday, weekend), and tests
each factor for independence from the category with a chi-square test. A factor *matters* only when
the test is significant (p < :data:`ALPHA`) **and** the effect is large enough to use (Cramer's V
above :data:`MIN_CRAMERS_V`): with tens of thousands of events a chi-square test finds even a shift
of a percent or two, which is no reason to reorder anyone's recommendations.

:meth:`TimeContext.prior` turns the factors that matter into a per-item log-ratio
``log P(category | bucket) / P(category)``, so the pipeline can add it as a feature or a boost and
the data decides: where nothing matters the prior is all zeros.

The unit counted is a *visit*: a shopper touching a category in a bucket on one day (shop time),
however many events that took. Events within a visit are not independent (ten views of mugs at 21:00
are one decision), and counting them as if they were made the test "find" an hour effect in the demo
shop, which plants none (p ~ 1e-28 on events, p ~ 0.9 on visits).

>>> time_context = TimeContext.fit(dataset, ItemInfo.from_dataset(dataset).top)  # doctest: +SKIP
>>> time_context.matters, time_context.report()["hour"]["cramers_v"]              # doctest: +SKIP
(True, 0.31)
>>> scores += time_context.prior(context.now)                                     # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from shoprec.data.dataset import Dataset
from shoprec.data.schema import EVENT_TYPES
from shoprec.errors import ConfigError, DataError, ModelError
from shoprec.timeunits import DAY

HOUR_BUCKETS = ("night", "morning", "afternoon", "evening")
"""Six-hour buckets of shop time: [0, 6), [6, 12), [12, 18), [18, 24)."""
DAY_BUCKETS = ("weekday", "weekend")
"""Monday to Friday, Saturday and Sunday (shop time)."""
ALPHA = 0.01
"""Significance level of the chi-square test of independence."""
MIN_CRAMERS_V = 0.1
"""Smallest effect that counts: Cohen's "small" effect for a two-column table. Below it the category
mix of a bucket differs from the overall mix by a few percent, too little to be worth a feature."""
MIN_EXPECTED = 5.0
"""Cochran's rule for the chi-square approximation: categories whose expected count in some bucket
falls below this are pooled into one row for the test (their prior is still estimated, smoothed)."""


@dataclass
class TimeSettings:
    """How :meth:`TimeContext.fit` reads the events."""

    utc_offset_hours: float = 0.0  # shop time = UTC + this; buckets are read in shop time
    events: tuple[str, ...] = ()  # event types counted, e.g. ("purchase",); empty = every type
    alpha: float = ALPHA  # significance level of the test
    min_cramers_v: float = MIN_CRAMERS_V  # smallest effect size that makes a factor matter
    smoothing: float = 5.0  # pseudo-events added to observed and expected counts in the prior

    def __post_init__(self) -> None:
        if not -14 <= self.utc_offset_hours <= 14:
            raise ConfigError(f"{self.utc_offset_hours} is not between -14 and 14", where="time.utc_offset_hours")
        unknown = sorted(set(self.events) - set(EVENT_TYPES))
        if unknown:
            raise ConfigError(f"unknown event types {unknown}", where="time.events", fix=f"Use some of {EVENT_TYPES}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha {self.alpha} is not in (0, 1)", where="time.alpha")
        if not 0 <= self.min_cramers_v < 1:
            raise ConfigError(f"min_cramers_v {self.min_cramers_v} is not in [0, 1)", where="time.min_cramers_v")
        if not self.smoothing > 0:
            raise ConfigError(f"smoothing {self.smoothing} is not positive", where="time.smoothing")


@dataclass
class FactorTest:
    """One factor (hour or day) against the category: counts, the test, and the smoothed prior."""

    name: str  # "hour" or "day"
    buckets: tuple[str, ...]
    counts: np.ndarray  # (n_categories, n_buckets) events per category and bucket
    log_ratio: np.ndarray  # (n_categories, n_buckets) smoothed log P(c | b) / P(c)
    chi2: float = math.nan
    p_value: float = math.nan
    dof: int = 0
    cramers_v: float = math.nan
    matters: bool = False
    note: str = ""  # why the test could not run, or what was pooled


def independence(table: np.ndarray) -> tuple[float, float, int, float]:
    """Chi-square test of independence on a (rows, columns) count table, without Yates' correction.

    Returns ``(chi2, p_value, dof, cramers_v)``. V is bias-corrected (Bergsma 2013): the plain
    ``sqrt(chi2 / (n * (min(rows, cols) - 1)))`` is about ``sqrt(dof / (n * ...))`` even without any
    effect, which for 40 categories and 2,000 visits already reads 0.14; the correction takes that
    chance level out. Rows and columns that sum to zero must be removed first; the table needs 2 x 2.
    """
    table = np.asarray(table, dtype=np.float64)
    chi2, p_value, dof, _ = chi2_contingency(table, correction=False)
    n, (r, k) = table.sum(), table.shape
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    r_corr, k_corr = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    v = math.sqrt(phi2 / min(k_corr - 1, r_corr - 1))
    return float(chi2), float(p_value), int(dof), v


def smoothed_log_ratio(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """``log((O + s) / (E + s))`` per cell, with ``E`` the count expected under independence.

    ``O / E`` equals ``P(c | b) / P(c)``; the pseudo-events ``s`` pull small counts towards 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / max(total, 1.0)
    return np.log((counts + smoothing) / (expected + smoothing))


class TimeContext:
    """Whether hour of day and weekday/weekend change the category mix, and the prior that follows.

    Build with :meth:`fit`. ``categories`` holds the category labels the counts are kept by.
    """

    def __init__(
        self,
        settings: TimeSettings,
        categories: np.ndarray,
        item_category: np.ndarray,
        tests: dict[str, FactorTest],
        counted: dict[str, int],
    ) -> None:
        self.settings = settings
        self.categories = categories  # (n_categories,) object labels
        self.item_category = item_category  # (n_items,) int64 row in categories, -1 when unknown
        self.tests = tests
        self.counted = counted

    @property
    def matters(self) -> bool:
        """True when hour of day or weekday/weekend changes the category mix (see :data:`ALPHA`)."""
        return any(test.matters for test in self.tests.values())

    @classmethod
    def fit(cls, dataset: Dataset, categories: np.ndarray, settings: TimeSettings | None = None) -> TimeContext:
        """Count the dataset's visits by category and bucket, and test both factors.

        ``categories`` gives each item's label (n_items,), e.g. ``ItemInfo.top`` or ``info.level(2)``;
        events of items with an empty label are left out and counted in ``report()["counts"]``.
        """
        settings = settings or TimeSettings()
        labels = pd.Series(np.asarray(categories, dtype=object)).fillna("").astype(str).str.strip()
        if len(labels) != dataset.n_items:
            raise DataError(
                f"{len(labels)} category labels for {dataset.n_items} items",
                file=dataset.name,
                fix="Pass one label per item index, e.g. ItemInfo.from_dataset(dataset).top",
            )
        codes, uniques = pd.factorize(labels.where(labels != "", None), use_na_sentinel=True)
        visits, counted = _visits(dataset, codes, settings)
        tests = {}
        for name, column, names in (("hour", "hour", HOUR_BUCKETS), ("day", "weekend", DAY_BUCKETS)):
            units = visits.drop_duplicates(["user", "day", "category", column])
            counted[f"{name}_visits"] = len(units)
            rows, columns = units["category"].to_numpy(), units[column].to_numpy()
            tests[name] = _factor(name, names, rows, columns, len(uniques), settings)
        return cls(settings, np.asarray(uniques, dtype=object), codes.astype(np.int64), tests, counted)

    def prior(self, now: int | float | datetime) -> np.ndarray:
        """(n_items,) float32: the sum over the factors that matter of the smoothed log-ratio
        ``log P(category | bucket of now) / P(category)``; 0 for items without a category, and all
        zeros when nothing matters."""
        out = np.zeros(len(self.item_category), dtype=np.float32)
        hour, weekend = buckets(np.array([_seconds(now)]), self.settings.utc_offset_hours)
        column = {"hour": int(hour[0]), "day": int(weekend[0])}
        for name, test in self.tests.items():
            if test.matters:
                per_category = np.append(test.log_ratio[:, column[name]], 0.0)  # last entry for -1
                out += per_category[self.item_category].astype(np.float32)
        return out

    def report(self) -> dict:
        """The test numbers per factor, shares per category and bucket vs overall, and event counts."""
        out: dict = {"matters": self.matters, "settings": asdict(self.settings), "counts": dict(self.counted)}
        for name, test in self.tests.items():
            totals = test.counts.sum(axis=1, keepdims=True)
            shares = test.counts / np.maximum(totals, 1)
            overall = test.counts.sum(axis=0) / max(test.counts.sum(), 1)
            out[name] = {
                "buckets": list(test.buckets),
                "chi2": test.chi2,
                "p_value": test.p_value,
                "dof": test.dof,
                "cramers_v": test.cramers_v,
                "matters": test.matters,
                "note": test.note,
                "overall_share": dict(zip(test.buckets, overall.tolist(), strict=True)),
                "category_share": {
                    str(c): dict(zip(test.buckets, row.tolist(), strict=True))
                    for c, row in zip(self.categories, shares, strict=True)
                },
            }
        return out


def buckets(timestamps: np.ndarray, utc_offset_hours: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Hour bucket (0 night .. 3 evening) and weekend flag of UTC unix seconds, read in shop time."""
    local = np.floor(np.asarray(timestamps, dtype=np.float64) + utc_offset_hours * 3600.0)
    hour = (local // 3600) % 24
    weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    return (hour // 6).astype(np.int64), weekday >= 5


def _visits(dataset: Dataset, codes: np.ndarray, settings: TimeSettings) -> tuple[pd.DataFrame, dict[str, int]]:
    """Counted events as (user, shop-time day, category, hour bucket, weekend) rows, and the tally
    of events counted and left out."""
    frame = dataset.interactions
    keep = frame["event"].isin(settings.events).to_numpy() if settings.events else np.ones(len(frame), bool)
    category = codes[frame["item"].to_numpy()[keep]]
    known = category >= 0
    counted = {
        "events": int(known.sum()),
        "unknown_category": int((~known).sum()),
        "other_event_types": int((~keep).sum()),
    }
    if counted["events"] == 0:
        raise DataError(
            "no events left to count (every event has another type or an item without a category)",
            file=dataset.name,
            fix="Check the categories passed and TimeSettings.events",
        )
    timestamps = frame["timestamp"].to_numpy()[keep][known]
    hour, weekend = buckets(timestamps, settings.utc_offset_hours)
    visits = pd.DataFrame(
        {
            "user": frame["user"].to_numpy()[keep][known],
            "day": (timestamps + settings.utc_offset_hours * 3600.0) // DAY,
            "category": category[known],
            "hour": hour,
            "weekend": weekend.astype(np.int64),
        }
    )
    return visits, counted


def _factor(
    name: str, labels: tuple[str, ...], rows: np.ndarray, columns: np.ndarray, n_rows: int, settings: TimeSettings
) -> FactorTest:
    """Count, test and smooth one factor; pools categories too small for the chi-square rule."""
    counts = np.zeros((n_rows, len(labels)), dtype=np.int64)
    np.add.at(counts, (rows, columns), 1)
    test = FactorTest(name, labels, counts, smoothed_log_ratio(counts, settings.smoothing))
    table, note = _testable(counts)
    if table.shape[0] < 2 or table.shape[1] < 2:
        test.note = "; ".join(filter(None, [note, "no test: it needs 2 categories and 2 buckets with enough visits"]))
        return test
    test.chi2, test.p_value, test.dof, test.cramers_v = independence(table)
    test.matters = bool(test.p_value < settings.alpha and test.cramers_v > settings.min_cramers_v)
    test.note = note
    return test


def _testable(counts: np.ndarray) -> tuple[np.ndarray, str]:
    """The table the test runs on: empty buckets dropped, categories whose expected count in some
    bucket is below :data:`MIN_EXPECTED` pooled into one row (dropped if that row is still too small)."""
    counts = counts[:, counts.sum(axis=0) > 0]
    counts = counts[counts.sum(axis=1) > 0]
    if counts.size == 0:
        return counts, ""
    smallest_share = counts.sum(axis=0).min() / counts.sum()
    small = counts.sum(axis=1) * smallest_share < MIN_EXPECTED
    if not small.any():
        return counts, ""
    pooled = counts[small].sum(axis=0)
    note = f"{int(small.sum())} categories with too few events for the test pooled into one row"
    if pooled.sum() * smallest_share >= MIN_EXPECTED:
        return np.vstack([counts[~small], pooled]), note
    kept = counts[~small]
    note += f"; that row ({int(pooled.sum())} events) was still too small and left out"
    return kept[:, kept.sum(axis=0) > 0], note


def _seconds(now: int | float | datetime) -> float:
    if isinstance(now, datetime):
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()
    if isinstance(now, int | float | np.integer | np.floating) and not isinstance(now, bool):
        return float(now)
    raise ModelError(f"time {now!r} is neither unix seconds nor a datetime")
