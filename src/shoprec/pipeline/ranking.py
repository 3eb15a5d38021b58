"""Rankers over merged candidates: a learned purchase model and weighted fusion of sources.

**Learned ranker: gradient-boosted trees (LightGBM).** The features mix scales (source scores,
ranks, days, prices) and carry NaN where a source did not propose an item or a fact is unknown;
trees split on raw values and route missing values as a learned branch, so no normalisation or
imputation is needed. They train in seconds on a few hundred thousand candidate rows on two cores,
where a neural ranker would need more data and tuning for the same features. LightGBM also gives
exact per-feature attributions of each prediction (TreeSHAP, ``pred_contrib``), which the
explanations turn into each source's share of the final score. The default objective is
``binary`` (the purchase probability of each pair); ``lambdarank`` optimises NDCG over each user's
candidate list instead. Both are trained on a validation window the test window never sees.

**Weighted fusion** is the simpler alternative: ``score = sum_s w_s / (c + rank_s)`` (reciprocal
rank, so sources on different scales mix), with the weights found by coordinate ascent on
validation NDCG@10.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shoprec.errors import ConfigError, ModelError
from shoprec.ranks import ndcg_from_hits, top_k

OBJECTIVES = ("lambdarank", "binary")


@dataclass
class RankerConfig:
    objective: str = "binary"
    """``binary`` (purchase probability per pair) or ``lambdarank`` (order each user's candidates).
    With one positive among hundreds of candidates per user, lambdarank's early stopping ended
    after few rounds on the small validation sets tried, so binary is the default."""
    n_estimators: int = 400
    """Maximum boosting rounds; early stopping on held-out validation users picks the number."""
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 50
    """Fewest rows per leaf: guards against leaves that memorise a handful of users."""
    early_stopping_rounds: int = 30
    holdout_share: float = 0.2
    """Share of the validation users kept aside for early stopping."""
    threads: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"ranker objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if not 0 < self.holdout_share < 1:
            raise ConfigError(f"ranker holdout_share must lie in (0, 1), got {self.holdout_share}")


class LearnedRanker:
    """LightGBM over (user, candidate) features; rows of one user are contiguous (a group)."""

    kind = "learned"

    def __init__(self, config: RankerConfig | None = None, **settings: object) -> None:
        self.config = config or RankerConfig(**settings)
        self.booster = None
        self.feature_names: list[str] = []
        self.fit_stats: dict = {}
        self.compiled = None
        """:class:`~shoprec.pipeline.trees.Trees` of the booster for request-sized batches (None:
        LightGBM's predict, with the reason in ``compiled_note``)."""
        self.compiled_note = ""

    @property
    def is_fitted(self) -> bool:
        return self.booster is not None

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray, feature_names: list[str]) -> LearnedRanker:
        """Train on rows ``X`` with 0/1 labels ``y``; ``groups`` holds each user's row count in order."""
        import lightgbm as lgb

        if len(groups) < 5 or y.sum() == 0:
            raise ModelError(
                f"the ranker needs validation users whose held-out item is among the candidates; got "
                f"{len(groups)} users with {int(y.sum())} positives. Raise the sources' recall k or use fusion"
            )
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        holdout = rng.random(len(groups)) < cfg.holdout_share
        bounds = np.concatenate([[0], np.cumsum(groups)])
        row_holdout = np.repeat(holdout, groups)
        params = {
            "objective": cfg.objective,
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_child_samples": cfg.min_child_samples,
            "num_threads": cfg.threads,
            "seed": cfg.seed,
            "verbose": -1,
            "deterministic": True,
            "force_row_wise": True,
        }
        # early stopping watches NDCG@10 of the held-out users whatever the objective: it is what
        # the lists are judged by, and log loss keeps improving on easy negatives long after
        params.update({"metric": "ndcg", "eval_at": [10]})
        if cfg.objective == "lambdarank":
            params["lambdarank_truncation_level"] = 20
        train = lgb.Dataset(X[~row_holdout], y[~row_holdout], group=groups[~holdout], feature_name=feature_names)
        valid = lgb.Dataset(X[row_holdout], y[row_holdout], group=groups[holdout], reference=train)
        self.booster = lgb.train(
            params,
            train,
            num_boost_round=cfg.n_estimators,
            valid_sets=[valid],
            callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
        )
        self.feature_names = list(feature_names)
        self._compile()
        self.fit_stats = {
            "rows": len(y),
            "users": len(groups),
            "positives": int(y.sum()),
            "best_iteration": int(self.booster.best_iteration),
            "holdout_users": int(holdout.sum()),
            "span": int(bounds[-1]),
        }
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check()
        threads = self._threads(len(X))
        if self.compiled is not None and threads == 1:
            return self.compiled.predict(X).astype(np.float32)
        return self.booster.predict(X, num_iteration=self.booster.best_iteration, num_threads=threads).astype(
            np.float32
        )

    def _compile(self) -> None:
        """Compile the trees that predict uses (the best iteration's) for request-sized batches."""
        from shoprec.pipeline.trees import compile_trees

        text = self.booster.model_to_string(num_iteration=self.booster.best_iteration)
        self.compiled, self.compiled_note = compile_trees(text)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """(n, n_features + 1) exact per-feature attributions (TreeSHAP); the last column is the bias."""
        self._check()
        threads = self._threads(len(X))
        return np.asarray(
            self.booster.predict(X, num_iteration=self.booster.best_iteration, pred_contrib=True, num_threads=threads)
        )

    def _threads(self, rows: int) -> int:
        """One thread for a request-sized batch: starting a thread team costs more than the trees."""
        return 1 if rows < 5000 else self.config.threads

    def importance(self) -> dict[str, float]:
        self._check()
        gains = self.booster.feature_importance("gain")
        total = gains.sum() or 1.0
        return {
            n: float(g / total) for n, g in sorted(zip(self.feature_names, gains, strict=True), key=lambda t: -t[1])
        }

    def _check(self) -> None:
        if self.booster is None:
            raise ModelError("the learned ranker is not trained: call Pipeline.fit_ranker on a validation window first")

    def to_string(self) -> str:
        self._check()
        return self.booster.model_to_string(num_iteration=self.booster.best_iteration)

    @classmethod
    def from_string(cls, text: str, config: RankerConfig, feature_names: list[str]) -> LearnedRanker:
        import lightgbm as lgb

        ranker = cls(config)
        ranker.booster = lgb.Booster(model_str=text)
        ranker.feature_names = feature_names
        ranker._compile()
        return ranker


@dataclass
class WeightedFusion:
    """``score = sum_s w_s / (c + rank_s)`` over the sources that proposed the item."""

    weights: dict[str, float] = field(default_factory=dict)
    c: float = 10.0
    """Rank offset: larger flattens the difference between a source's first and tenth item."""
    kind: str = "fusion"

    def score(self, sources: tuple[str, ...], ranks: np.ndarray) -> np.ndarray:
        """(n,) fused score from (n, n_sources) ranks (-1 where absent)."""
        w = np.array([self.weights.get(s, 1.0) for s in sources], dtype=np.float64)
        part = np.where(ranks >= 0, 1.0 / (self.c + ranks + 1.0), 0.0)
        return (part @ w).astype(np.float32)

    def shares(self, sources: tuple[str, ...], ranks: np.ndarray) -> np.ndarray:
        """(n, n_sources) each source's share of the fused score."""
        w = np.array([self.weights.get(s, 1.0) for s in sources], dtype=np.float64)
        part = np.where(ranks >= 0, 1.0 / (self.c + ranks + 1.0), 0.0) * w
        total = part.sum(axis=1, keepdims=True)
        return np.divide(part, total, out=np.zeros_like(part), where=total > 0)

    def tune(
        self,
        sources: tuple[str, ...],
        rank_lists: list[np.ndarray],
        labels: list[np.ndarray],
        grid: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0),
        rounds: int = 3,
    ) -> dict[str, float]:
        """Coordinate ascent on mean NDCG@10 over validation users; returns the chosen weights."""
        self.weights = {s: 1.0 for s in sources}
        best = self._ndcg(sources, rank_lists, labels)
        for _ in range(rounds):
            improved = False
            for s in sources:
                for value in grid:
                    old = self.weights[s]
                    if value == old:
                        continue
                    self.weights[s] = value
                    trial = self._ndcg(sources, rank_lists, labels)
                    if trial > best + 1e-9:
                        best, improved = trial, True
                    else:
                        self.weights[s] = old
            if not improved:
                break
        self.tuned_ndcg = best
        return dict(self.weights)

    def _ndcg(self, sources: tuple[str, ...], rank_lists: list[np.ndarray], labels: list[np.ndarray]) -> float:
        total = 0.0
        for ranks, y in zip(rank_lists, labels, strict=True):
            total += ndcg_at(self.score(sources, ranks), y, 10)
        return total / max(len(rank_lists), 1)


def ndcg_at(scores: np.ndarray, labels: np.ndarray, k: int, n_relevant: int | None = None) -> float:
    """NDCG@k of one candidate list ordered by ``scores`` against 0/1 ``labels``: the order of
    :func:`shoprec.ranks.top_k`, so ties go by position in the list, as the pipeline shows them.

    ``n_relevant`` counts relevant items outside the list too (the ideal DCG's length); by default
    the positives in ``labels``.
    """
    n_rel = int(labels.sum()) if n_relevant is None else n_relevant
    if n_rel == 0:
        return 0.0
    order = top_k(np.asarray(scores, dtype=np.float64)[None, :], k)[0]  # (1, k), PAD_ITEM past the list
    hits = np.append(np.asarray(labels, dtype=np.float64), 0.0)[order] > 0  # PAD_ITEM (-1) reads the 0
    return float(ndcg_from_hits(hits, np.array([n_rel]))[0])
