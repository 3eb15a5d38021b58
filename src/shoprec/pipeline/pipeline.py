"""The recommendation pipeline: recall sources -> merged candidates -> ranker -> rules -> top k.

Every stage is timed per request. Candidates keep which sources proposed them and with what score
and rank, so the final list can say why each item is there. When the rules leave fewer than k
items, the list is filled from the fallback source (popularity) with allowed items only, and the
response says how many slots were filled that way.

>>> pipe = Pipeline([ModelSource("ease", create_model("ease")), ItemToItemSource("i2i")])   # doctest: +SKIP
>>> pipe.fit(valid_split.train, item_vectors)                        # doctest: +SKIP
>>> pipe.fit_ranker(contexts_from_dataset(valid_split.train, users), valid_split.truth)   # doctest: +SKIP
>>> [rec] = pipe.recommend([context], k=10)                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.errors import ConfigError, ModelError
from shoprec.pipeline.base import Resources, Source
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.features import FeatureBuilder
from shoprec.pipeline.ranking import LearnedRanker, RankerConfig, WeightedFusion
from shoprec.pipeline.rules import Rules
from shoprec.pipeline.rules_config import RulesConfig
from shoprec.pipeline.sources import PopularitySource
from shoprec.pipeline.windows import WindowCounts

RANK_MODES = ("learned", "fusion", "none")


@dataclass
class Recommendation:
    """One user's final list with provenance, notes and per-stage timings (milliseconds)."""

    user: int
    items: np.ndarray
    scores: np.ndarray
    candidates: Candidates
    """The shown rows, in order, with every source's score and rank."""
    source_shares: np.ndarray
    """(k, n_sources) each source's share of each item's final score."""
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Multi-source recall, a learned ranker or weighted fusion, rules, fallback fill."""

    def __init__(
        self,
        sources: list[Source],
        rank: str = "learned",
        recall_k: int | dict[str, int] = 100,
        k: int = 10,
        rules: RulesConfig | None = None,
        ranker: LearnedRanker | None = None,
        fusion: WeightedFusion | None = None,
        fallback: Source | None = None,
        exclude_seen: bool = True,
        calendar=None,
    ) -> None:
        if not sources:
            raise ConfigError("a pipeline needs at least one recall source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"recall source names must be unique, got {names}")
        if rank not in RANK_MODES:
            raise ConfigError(f"rank must be one of {', '.join(RANK_MODES)}, not {rank!r}")
        self.sources, self.rank, self.k = list(sources), rank, k
        self.recall_k = recall_k if isinstance(recall_k, dict) else {s.name: recall_k for s in sources}
        self.rules_config = rules if isinstance(rules, RulesConfig) else RulesConfig()
        self.rules: Rules | None = None
        self.calendar = calendar
        self.ranker = ranker or LearnedRanker(RankerConfig())
        self.fusion = fusion or WeightedFusion()
        self.fallback = fallback or PopularitySource("fallback-popularity", exclude_seen=exclude_seen)
        self.exclude_seen = exclude_seen
        self.features = FeatureBuilder()
        self.resources: Resources | None = None

    @property
    def source_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sources)

    def source(self, name: str) -> Source:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no recall source named {name!r}; sources: {', '.join(self.source_names)}")

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Dataset, item_vectors: np.ndarray | None = None, progress: bool = False) -> Self:
        """Fit every source, the fallback and the item-side features on ``train``."""
        self.train = train
        self.resources = Resources(ItemInfo.from_dataset(train), item_vectors, WindowCounts(train))
        self.fit_seconds: dict[str, float] = {}
        for source in [*self.sources, self.fallback]:
            began = time.perf_counter()
            if progress:
                print(f"fitting source {source.name} ...", flush=True)
            source.fit(train, self.resources)
            self.fit_seconds[source.name] = time.perf_counter() - began
        self.features.fit(train, self.resources)
        self._counts = np.bincount(train.interactions["item"].to_numpy(), minlength=train.n_items)
        self._build_rules()
        if self.calendar is not None:
            self.calendar.check(self.resources.info)
        return self

    def _build_rules(self) -> None:
        config = self.rules_config
        config = dataclasses.replace(config, exclude_seen=config.exclude_seen or self.exclude_seen)
        self.rules = Rules(config, self.resources.info, self._counts, self.resources.item_vectors)

    def set_exclude_seen(self, flag: bool) -> None:
        """Whether items in the user's history may be recommended (False for re-order feeds),
        for every source, the fallback and the rules, without refitting."""
        self.exclude_seen = flag
        for source in [*self.sources, self.fallback]:
            if hasattr(source, "exclude_seen"):
                source.exclude_seen = flag
        if self.resources is not None:
            self._build_rules()

    def _check_fitted(self) -> None:
        if self.resources is None:
            raise ModelError("the pipeline is not fitted: call fit(train) first")

    # ------------------------------------------------------------------ stages
    def candidates(self, contexts: list[UserContext], timings: dict[str, float] | None = None) -> list[Candidates]:
        """Recall from every source and merge per user, keeping provenance."""
        self._check_fitted()
        timings = timings if timings is not None else defaultdict(float)
        proposals = []
        for source in self.sources:
            began = time.perf_counter()
            proposals.append(source.recall(contexts, self.recall_k.get(source.name, 100)))
            timings[f"recall.{source.name}"] += time.perf_counter() - began
        began = time.perf_counter()
        names = self.source_names
        merged = [
            Candidates.merge({n: p[u] for n, p in zip(names, proposals, strict=True)}) for u in range(len(contexts))
        ]
        timings["merge"] += time.perf_counter() - began
        return merged

    def feature_matrix(self, contexts: list[UserContext], cands: list[Candidates]) -> np.ndarray:
        parts = [self.features.build(c, cand) for c, cand in zip(contexts, cands, strict=True) if len(cand)]
        width = len(self.features.names(self.source_names))
        return np.vstack(parts) if parts else np.zeros((0, width), dtype=np.float32)

    def score(self, contexts: list[UserContext], cands: list[Candidates], mode: str, timings: dict) -> list:
        """Set each candidate set's score; returns per user what :meth:`shares` needs later
        (the feature rows for the learned ranker, None for fusion)."""
        began = time.perf_counter()
        names = self.source_names
        if mode != "learned":
            fusion = self.fusion if mode == "fusion" else WeightedFusion({n: 1.0 for n in names})
            for cand in cands:
                cand.score = fusion.score(names, cand.source_ranks)
            timings["rank"] += time.perf_counter() - began
            return [None] * len(cands)
        X = self.feature_matrix(contexts, cands)
        timings["features"] += time.perf_counter() - began
        began = time.perf_counter()
        pred = self.ranker.predict(X) if len(X) else np.zeros(0, np.float32)
        rows, offset = [], 0
        for cand in cands:
            cand.score = pred[offset : offset + len(cand)]
            rows.append(X[offset : offset + len(cand)])
            offset += len(cand)
        timings["rank"] += time.perf_counter() - began
        return rows

    def shares(self, cand: Candidates, rows: np.ndarray | None, mode: str) -> np.ndarray:
        """(len(cand), n_sources) each source's share of each item's final score."""
        names = self.source_names
        if rows is None or not len(cand):
            fusion = self.fusion if mode == "fusion" else WeightedFusion({n: 1.0 for n in names})
            return fusion.shares(names, cand.source_ranks).astype(np.float32)
        return self._source_contributions(rows, cand.score).astype(np.float32)

    def _source_contributions(self, X: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """(n, n_sources) share of each source in the learned score, by occlusion: how far an
        item's score falls when one source's evidence is taken away (its score and rank features
        missing, as for an item that source did not propose, and ``n_sources`` one lower).
        Positive falls over their sum; an item no source lifts gets zeros.

        Faithful by construction, like the history drivers of the explanations, and cheap: one
        batched prediction of the rows a source proposed, once per proposing source (TreeSHAP took
        about 150 times as long at Beauty size). ``scores`` are the ranker's predictions of ``X``
        when already known (the ranking pass made them); a source that did not propose an item
        takes nothing away from it (its features are missing already), so that row is not
        predicted again: its fall is exactly 0."""
        n, m = len(X), len(self.sources)
        count = 2 * m  # the n_sources feature follows the per-source (score, rank) pairs
        proposed = [np.flatnonzero(~np.isnan(X[:, 2 * j + 1])) for j in range(m)]
        variants = [] if scores is not None else [X]
        for j, rows in enumerate(proposed):
            without = X[rows]
            without[:, 2 * j : 2 * j + 2] = np.nan
            without[:, count] -= 1
            variants.append(without)
        stacked = np.vstack(variants)
        pred = self.ranker.predict(stacked) if len(stacked) else np.zeros(0, np.float32)
        if scores is None:
            scores, pred = pred[:n], pred[n:]
        base = np.asarray(scores, dtype=np.float32)
        fall = np.zeros((n, m), dtype=np.float32)
        offset = 0
        for j, rows in enumerate(proposed):
            fall[rows, j] = np.maximum(base[rows] - pred[offset : offset + len(rows)], 0.0)
            offset += len(rows)
        total = fall.sum(axis=1, keepdims=True)
        return np.divide(fall, total, out=np.zeros_like(fall), where=total > 0)

    # ------------------------------------------------------------------ training the ranker
    def training_table(self, contexts: list[UserContext], truth: sp.csr_matrix, batch_size: int = 512):
        """Features and 0/1 labels for validation users whose held-out item was recalled.

        Returns ``(X, y, groups, rank_lists, label_lists, stats)``; users with no recalled positive
        carry no ranking signal and are counted in ``stats``.
        """
        xs, ys, groups, rank_lists, label_lists = [], [], [], [], []
        stats = {"users": len(contexts), "users_without_recalled_positive": 0, "empty_candidates": 0}
        for start in range(0, len(contexts), batch_size):
            block = contexts[start : start + batch_size]
            cands = self.candidates(block)
            for ctx, cand in zip(block, cands, strict=True):
                labels = np.isin(cand.items, truth[ctx.user].indices).astype(np.float32)
                if not len(cand):
                    stats["empty_candidates"] += 1
                    continue
                if labels.sum() == 0:
                    stats["users_without_recalled_positive"] += 1
                    continue
                xs.append(self.features.build(ctx, cand))
                ys.append(labels)
                groups.append(len(cand))
                rank_lists.append(cand.source_ranks)
                label_lists.append(labels)
        if not xs:
            raise ModelError("no validation user had a held-out item among the candidates: raise recall_k")
        return np.vstack(xs), np.concatenate(ys), np.array(groups), rank_lists, label_lists, stats

    def fit_ranker(self, contexts: list[UserContext], truth: sp.csr_matrix) -> dict:
        """Train the learned ranker and tune the fusion weights on a validation window."""
        self._check_fitted()
        X, y, groups, rank_lists, label_lists, stats = self.training_table(contexts, truth)
        names = self.features.names(self.source_names)
        self.ranker.fit(X, y, groups, names)
        weights = self.fusion.tune(self.source_names, rank_lists, label_lists)
        stats.update({"ranker": self.ranker.fit_stats, "fusion_weights": weights})
        self.ranker_stats = stats
        return stats

    # ------------------------------------------------------------------ serving
    def recommend(
        self, contexts: list[UserContext], k: int | None = None, mode: str | None = None, with_shares: bool = True
    ) -> list[Recommendation]:
        """Final lists for a batch of requests (one context per user).

        ``with_shares=False`` skips the per-source attribution of the shown items (offline
        evaluation does not need it).
        """
        self._check_fitted()
        k = k or self.k
        mode = mode or self.rank
        if mode not in RANK_MODES:
            raise ConfigError(f"rank must be one of {', '.join(RANK_MODES)}, not {mode!r}")
        timings: dict[str, float] = defaultdict(float)
        cands = self.candidates(contexts, timings)
        feature_rows = self.score(contexts, cands, mode, timings)
        out = []
        for ctx, cand, rows in zip(contexts, cands, feature_rows, strict=True):
            began = time.perf_counter()
            final, shown = self._rerank(ctx, cand, k)
            timings["rerank"] += time.perf_counter() - began
            began = time.perf_counter()
            share = np.zeros((len(final), len(self.sources)), dtype=np.float32)
            if with_shares:
                known = shown >= 0
                share[known] = self.shares(cand.take(shown[known]), None if rows is None else rows[shown[known]], mode)
            timings["shares"] += time.perf_counter() - began
            out.append(Recommendation(ctx.user, final.items, final.score, final, share, final.notes))
        per_user = {stage: 1000 * seconds / max(len(contexts), 1) for stage, seconds in timings.items()}
        for rec in out:
            rec.timings = dict(per_user)
        return out

    def _rerank(self, ctx: UserContext, cand: Candidates, k: int) -> tuple[Candidates, np.ndarray]:
        """Promotions, rules, truncation and fallback fill; also returns, per shown item, its row
        in ``cand`` (-1 for items the rules or the fill added)."""
        if self.calendar is not None and len(cand):
            boost = self.calendar.boosts(ctx, self.resources.info, ctx.now)[cand.items]
            if boost.any():
                finite = cand.score[np.isfinite(cand.score)]
                spread = float(finite.max() - finite.min()) if len(finite) > 1 else 1.0
                cand = cand.take(np.arange(len(cand)))
                cand.score = cand.score + boost * (spread or 1.0)
                cand.notes.append(f"promotions boosted {int((boost > 0).sum())} candidates")
        final = self.rules.apply(cand, ctx, k)
        if len(final) < k:
            final = self._fill(ctx, final, self.rules.allowed_mask(ctx), k)
        shown = np.full(len(final), -1, dtype=np.int64)
        if len(cand):  # each item's row in cand (candidates hold an item once), by binary search
            order = np.argsort(cand.items, kind="stable")
            rows = order[np.minimum(np.searchsorted(cand.items, final.items, sorter=order), len(cand) - 1)]
            found = cand.items[rows] == final.items
            shown[found] = rows[found]
        return final, shown

    def _fill(self, ctx: UserContext, cand: Candidates, allowed: np.ndarray, k: int) -> Candidates:
        """Fill the list from the fallback source with allowed items not already shown."""
        allowed = allowed.copy()
        allowed[cand.items] = False
        [(items, _)] = self.fallback.recall([ctx], k + int((~allowed).sum()))
        items = items[allowed[items]][: k - len(cand)]
        if not len(items):
            cand.notes.append(f"only {len(cand)} of {k} items could be recommended after the rules")
            return cand
        n = len(items)
        finite = cand.score[np.isfinite(cand.score)]
        low = (finite.min() if len(finite) else 0.0) - 1.0 - np.arange(n, dtype=np.float32)
        extra = Candidates(
            items,
            cand.sources,
            np.full((n, len(cand.sources)), np.nan, dtype=np.float32),
            np.full((n, len(cand.sources)), -1, dtype=np.int32),
            low,
        )
        merged = Candidates(
            np.concatenate([cand.items, extra.items]),
            cand.sources,
            np.vstack([cand.source_scores, extra.source_scores]),
            np.vstack([cand.source_ranks, extra.source_ranks]),
            np.concatenate([cand.score, extra.score]),
            cand.notes + [f"filled {n} of {k} slots from {self.fallback.name} after the rules left {len(cand)}"],
        )
        return merged
