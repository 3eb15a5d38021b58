"""Fit models on a split, recommend for its evaluated users and score the lists.

>>> from shoprec.eval import evaluate, leave_last_out                      # doctest: +SKIP
>>> from shoprec.models import create_model                              # doctest: +SKIP
>>> split = leave_last_out(dataset)                                      # doctest: +SKIP
>>> result = evaluate({"pop": create_model("popularity")}, split)        # doctest: +SKIP
>>> result.to_dict()["models"]["pop"]["metrics"]["ndcg@10"]              # doctest: +SKIP
0.0071
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from shoprec.errors import ModelError
from shoprec.eval.metrics import (
    accuracy_metrics,
    catalog_coverage,
    intra_list_diversity,
    item_popularity,
    long_tail_share,
    novelty,
    popularity_share,
    tail_items,
)
from shoprec.eval.splits import Split
from shoprec.models.base import Recommender

try:  # peak memory is a nicety; the resource module does not exist on Windows
    import resource
except ImportError:  # pragma: no cover
    resource = None


@dataclass
class ModelResult:
    """Scores and costs of one model on one split."""

    metrics: dict[str, float]
    """Mean over evaluated users (coverage: over all lists), e.g. ``{"ndcg@10": 0.031}``."""
    fit_seconds: float
    """Wall time of ``fit`` (0.0 when the model came fitted)."""
    recommend_seconds: float
    """Wall time of ``recommend`` for every evaluated user."""
    ci95: dict[str, list[float]] = field(default_factory=dict)
    """Normal-approximation 95% interval ``[low, high]`` of each per-user mean."""
    users: int = 0
    """Users evaluated."""
    unknown_users: int = 0
    """Evaluated users the model did not know (answered by its popularity fallback)."""
    fitted_before: bool = False
    """True when ``evaluate(fitted=True)`` skipped fitting."""
    peak_rss_mb: float | None = None
    """Process peak resident memory after this model ran (a high-water mark, MiB)."""
    rss_growth_mb: float | None = None
    """How much this model raised that high-water mark (0 when it stayed under an earlier peak)."""

    def to_dict(self) -> dict:
        """JSON-ready: NaN (a metric with no defined value) becomes None."""
        return _plain(
            {
                "metrics": self.metrics,
                "fit_seconds": self.fit_seconds,
                "recommend_seconds": self.recommend_seconds,
                "ci95": self.ci95,
                "users": self.users,
                "unknown_users": self.unknown_users,
                "fitted_before": self.fitted_before,
                "peak_rss_mb": self.peak_rss_mb,
                "rss_growth_mb": self.rss_growth_mb,
            }
        )


@dataclass
class EvalResult:
    """Results of several models on one split; :meth:`to_dict` is the JSON report layout."""

    dataset: str
    protocol: str
    variant: str
    stage: str
    ks: list[int]
    split_info: dict
    models: dict[str, ModelResult] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """``{"dataset", "protocol", "models": {name: {"metrics", "fit_seconds", "recommend_seconds", ...}}, ...}``."""
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "variant": self.variant,
            "stage": self.stage,
            "ks": list(self.ks),
            "split_info": self.split_info,
            "models": {name: r.to_dict() for name, r in self.models.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> EvalResult:
        """Inverse of :meth:`to_dict` (e.g. to re-plot a saved ``report.json``)."""
        known = set(ModelResult.__dataclass_fields__)
        models = {}
        for name, entry in data["models"].items():
            fields = {k: v for k, v in entry.items() if k in known}
            fields["metrics"] = {k: math.nan if v is None else v for k, v in entry["metrics"].items()}
            models[name] = ModelResult(**fields)
        return cls(
            data["dataset"],
            data["protocol"],
            data.get("variant", ""),
            data.get("stage", "test"),
            list(data.get("ks", [])),
            data.get("split_info", {}),
            models,
        )

    def metric(self, name: str) -> dict[str, float]:
        """One metric for every model: ``{model: value}`` (NaN where a model lacks it)."""
        return {m: r.metrics.get(name, math.nan) for m, r in self.models.items()}


def evaluate(
    models: dict[str, Recommender],
    split: Split,
    ks: Iterable[int] = (5, 10, 20),
    item_vectors: np.ndarray | None = None,
    batch_size: int = 2048,
    progress: bool = True,
    fitted: bool = False,
) -> EvalResult:
    """Fit each model on ``split.train`` (unless ``fitted``), rank the full catalogue for the
    evaluated users and compute every metric at every K.

    Metrics: ``hr``, ``recall``, ``precision``, ``f1``, ``ndcg``, ``mrr`` (per user, averaged with a
    95% interval), ``coverage``, ``novelty``, ``longtail`` and, when ``item_vectors`` (n_items, d)
    are given, ``diversity``; keys look like ``"ndcg@10"``.
    """
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive list lengths, got {ks}")
    users = split.users
    truth = split.truth[users]
    context = _context(split, item_vectors)
    result = EvalResult(split.train.name, split.protocol, split.variant, split.stage, ks, _plain(split.info))
    for name, model in tqdm(models.items(), desc="models", disable=not progress):
        result.models[name] = _evaluate_one(name, model, split, users, truth, ks, context, batch_size, progress, fitted)
    return result


def score_recommendations(
    recs: np.ndarray, split: Split, ks: Iterable[int] = (5, 10, 20), item_vectors: np.ndarray | None = None
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Metrics of ready-made lists: ``recs`` (len(split.users), max k) item indices in the order of
    :attr:`Split.users`, PAD -1 where a list is short. Returns ``(metrics, ci95)`` as :func:`evaluate`
    computes them, for recommenders that are not a :class:`Recommender` (a pipeline)."""
    ks = sorted({int(k) for k in ks})
    users = split.users
    if recs.shape[0] != len(users) or recs.shape[1] < ks[-1]:
        raise ValueError(f"recs must have shape ({len(users)}, >= {ks[-1]}), got {recs.shape}")
    return _score(recs, split.truth[users], ks, _context(split, item_vectors), split.train.n_items)


def _context(split: Split, item_vectors: np.ndarray | None) -> dict:
    counts = item_popularity(split.train.matrix("binary"))
    active = int(np.unique(split.train.interactions["user"].to_numpy()).size)
    return {"share": popularity_share(counts, max(active, 1)), "tail": tail_items(counts), "vectors": item_vectors}


def _evaluate_one(
    name: str,
    model: Recommender,
    split: Split,
    users: np.ndarray,
    truth,
    ks: list[int],
    context: dict,
    batch_size: int,
    progress: bool,
    fitted: bool,
) -> ModelResult:
    """Fit (timed), recommend in batches (timed) and score one model."""
    rss_before = _peak_rss_mb()
    fit_seconds = 0.0
    if not fitted:
        start = time.perf_counter()
        model.fit(split.train)
        fit_seconds = time.perf_counter() - start
    elif not model.is_fitted or model.n_items != split.train.n_items:
        raise ModelError(
            f"model '{name}' must be fitted on this split's training data "
            f"({split.train.n_items} items) when fitted=True"
        )
    recs, seconds = _recommend_all(model, users, max(ks), split.exclude_seen, batch_size, progress, name)
    metrics, ci95 = _score(recs, truth, ks, context, split.train.n_items)
    rss_after = _peak_rss_mb()
    return ModelResult(
        metrics=metrics,
        fit_seconds=fit_seconds,
        recommend_seconds=seconds,
        ci95=ci95,
        users=len(users),
        unknown_users=int((~model.is_known(users)).sum()),
        fitted_before=fitted,
        peak_rss_mb=rss_after,
        rss_growth_mb=None if rss_after is None else rss_after - rss_before,
    )


def _recommend_all(
    model: Recommender, users: np.ndarray, k: int, exclude_seen: bool, batch_size: int, progress: bool, name: str
) -> tuple[np.ndarray, float]:
    """(len(users), k) recommendations in batches of ``batch_size`` users, and the time it took."""
    recs = np.empty((len(users), k), dtype=np.int64)
    elapsed = 0.0
    starts = range(0, len(users), batch_size)
    for start in tqdm(starts, desc=f"recommend {name}", disable=not progress, leave=False):
        block = users[start : start + batch_size]
        began = time.perf_counter()
        items, _ = model.recommend(block, k=k, exclude_seen=exclude_seen, batch_size=batch_size)
        elapsed += time.perf_counter() - began
        recs[start : start + len(block)] = items
    return recs, elapsed


def _score(
    recs: np.ndarray, truth, ks: list[int], context: dict, n_items: int
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Means and 95% intervals of every per-user metric; coverage as one number."""
    per_user = accuracy_metrics(recs, truth, ks)
    for k in ks:
        per_user[f"novelty@{k}"] = novelty(recs, context["share"], k)
        per_user[f"longtail@{k}"] = long_tail_share(recs, context["tail"], k)
        if context["vectors"] is not None:
            per_user[f"diversity@{k}"] = intra_list_diversity(recs, context["vectors"], k)
    metrics, ci95 = {}, {}
    for key, values in per_user.items():
        mean, half = _mean_ci(values)
        metrics[key], ci95[key] = mean, [mean - half, mean + half]
    for k in ks:
        metrics[f"coverage@{k}"] = catalog_coverage(recs, n_items, k)
    return metrics, ci95


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    """Mean over non-NaN values and the half-width of its normal 95% interval."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(half)


def _peak_rss_mb() -> float | None:
    if resource is None:  # pragma: no cover
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0)  # macOS: bytes, Linux: KiB


def _plain(value):
    """Numpy scalars -> Python numbers and NaN -> None, recursively, so the result is valid JSON."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
