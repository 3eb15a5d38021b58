"""Scenario feeds over one fitted pipeline: home, similar items, complements, cross-category,
trending now, new arrivals, promotions; and the explanation of any list.

Every feed goes through the same rules (filters, pins, diversity) and fallback fill as the home
feed, so a blocked item never appears in any of them. Each returns a :class:`Recommendation`
whose notes say what happened (fallback fill, promotions, unknown anchor).

>>> feeds = Scenarios(pipe, graph=item_graph, crosscat=cross_model)      # doctest: +SKIP
>>> feeds.run("complements", context, k=5, anchor=42)                    # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from shoprec.errors import ConfigError, ModelError
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.explain import Explanation, co_purchase_counts, explain
from shoprec.pipeline.pipeline import Pipeline, Recommendation
from shoprec.pipeline.sources import NewArrivalsSource, PopularitySource

SCENARIOS = ("home", "similar", "complements", "cross-category", "trending", "new-arrivals", "promotions")


class Scenarios:
    """The feeds a shop shows, built on a fitted :class:`Pipeline`.

    ``graph`` (an :class:`~shoprec.models.itemgraph.ItemGraph`) serves complements; ``crosscat``
    (a fitted :class:`~shoprec.pipeline.crosscat.CrossCategory`) the cross-category feed; the
    pipeline's calendar the promotion feed. A feed whose model is missing is a clear error.
    """

    def __init__(self, pipeline: Pipeline, graph=None, crosscat=None, trending_days: float = 7, new_days: float = 30):
        if pipeline.resources is None:
            raise ModelError("fit the pipeline before building its scenarios")
        self.pipe, self.graph, self.crosscat = pipeline, graph, crosscat
        self.info = pipeline.resources.info
        self.vectors = pipeline.resources.item_vectors
        self.trending = PopularitySource("trending", window_days=trending_days, exclude_seen=pipeline.exclude_seen)
        self.new = NewArrivalsSource("new-arrivals", days=new_days)
        for source in (self.trending, self.new):
            source.fit(pipeline.train, pipeline.resources)
        self._co_counts: sp.csr_matrix | None = None

    @property
    def co_counts(self) -> sp.csr_matrix:
        if self._co_counts is None:
            self._co_counts = co_purchase_counts(self.pipe.train)
        return self._co_counts

    def run(self, scenario: str, context: UserContext, k: int = 10, anchor: int | None = None) -> Recommendation:
        """One feed for one request; ``anchor`` (an item index) for similar and complements."""
        if scenario not in SCENARIOS:
            raise ConfigError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        if scenario == "home":
            return self.pipe.recommend([context], k)[0]
        began = time.perf_counter()
        items, scores, notes = self._propose(scenario, context, k, anchor)
        cand = Candidates.merge({scenario: (items, scores)})
        cand.score = np.asarray(scores, dtype=np.float32)
        cand.notes = notes
        shown_context = context
        if anchor is not None and scenario in ("similar", "complements"):
            history = np.append(context.history, anchor)  # never recommend the anchor itself
            shown_context = UserContext(context.user, history, np.append(context.times, context.now), context.now)
        final, _ = self.pipe._rerank(shown_context, cand, k)
        shares = np.where(final.source_ranks >= 0, 1.0, 0.0).astype(np.float32)
        timing = {"total": 1000 * (time.perf_counter() - began)}
        return Recommendation(context.user, final.items, final.score, final, shares, final.notes, timing)

    def _propose(self, scenario: str, ctx: UserContext, k: int, anchor: int | None) -> tuple:
        depth = 4 * k + 20  # room for the rules to filter
        if scenario in ("similar", "complements"):
            anchor = self._check_anchor(anchor)
            return self._similar(anchor, depth) if scenario == "similar" else self._complements(anchor, depth)
        if scenario == "trending":
            [(items, scores)] = self.trending.recall([ctx], depth)
            return items, scores, []
        if scenario == "new-arrivals":
            [(items, scores)] = self.new.recall([ctx], depth)
            return items, scores, [] if len(items) else [f"no item launched in the last {self.new.days:g} days"]
        if scenario == "cross-category":
            return self._cross_category(ctx, depth)
        return self._promotions(ctx, depth)

    def _check_anchor(self, anchor: int | None) -> int:
        if anchor is None or not 0 <= int(anchor) < self.info.n_items:
            raise ModelError(
                f"unknown anchor item {anchor!r}: give an item of the catalogue (0..{self.info.n_items - 1})"
            )
        return int(anchor)

    def _similar(self, anchor: int, depth: int) -> tuple:
        """Text neighbours blended with co-occurrence neighbours (either alone when the other is missing)."""
        scores = np.zeros(self.info.n_items, dtype=np.float32)
        if self.vectors is not None:
            scores += self.vectors @ self.vectors[anchor]
        for source in self.pipe.sources:
            if source.kind == "item-to-item" and getattr(source, "similarity", "") == "cooccurrence":
                scores += source.history_scores([np.array([anchor])])[0]
                break
        scores[anchor] = -np.inf
        order = np.argsort(-scores, kind="stable")[:depth]
        return order, scores[order], []

    def _complements(self, anchor: int, depth: int) -> tuple:
        if self.graph is None:
            raise ConfigError("the complements feed needs an item graph: pass graph=ItemGraph.build(...)")
        items, scores = self.graph.complements(anchor, k=depth)
        notes = [] if len(items) else ["no item was bought together with this one in another category"]
        return items, scores, notes

    def _cross_category(self, ctx: UserContext, depth: int) -> tuple:
        if self.crosscat is None:
            raise ConfigError("the cross-category feed needs a fitted CrossCategory model")
        if not len(ctx.history):
            return np.empty(0, np.int64), np.empty(0, np.float32), ["no history: cross-category needs past items"]
        items, scores, _ = self.crosscat.recommend([ctx.history], k=depth)
        keep = items[0] >= 0
        return items[0][keep], scores[0][keep], []

    def _promotions(self, ctx: UserContext, depth: int) -> tuple:
        calendar = self.pipe.calendar
        if calendar is None:
            return np.empty(0, np.int64), np.empty(0, np.float32), ["no promotion calendar is configured"]
        personal = self._personal_scores(ctx)
        feed = calendar.feed(ctx, self.info, ctx.now, depth, scores=personal)
        notes = [f"promotions active: {', '.join(sorted(set(feed.promotion.tolist())))}"] if len(feed.items) else []
        return feed.items, feed.scores, notes or ["no promotion is active for this shopper now"]

    def _personal_scores(self, ctx: UserContext) -> np.ndarray:
        scores = np.full(self.info.n_items, np.nan)
        [rec] = self.pipe.recommend([ctx], k=min(200, self.info.n_items), with_shares=False)
        scores[rec.items] = np.arange(len(rec.items), 0, -1)
        popularity = self.trending.counts(ctx.now)
        return np.where(np.isnan(scores), -1.0 / (1.0 + popularity), scores)

    # ------------------------------------------------------------------ explanations
    def history_scorer(self, scenario: str = "home"):
        """The history part of the score behind a feed, used for occlusion. Complements come from
        the co-basket graph, so they are explained by it: ``score = sum_h co_basket(h, i)``. Other
        feeds use the pipeline sources that score from the history alone (item-to-item,
        sequential), each scaled to its row maximum and weighted by the tuned fusion weights."""
        if scenario == "complements" and self.graph is not None:
            co_basket = self.graph.edges("co_basket")

            def basket_score(histories: list[np.ndarray]) -> np.ndarray:
                rows = np.zeros((len(histories), self.info.n_items), dtype=np.float64)
                for r, h in enumerate(histories):
                    if len(h):
                        rows[r] = np.asarray(co_basket[np.unique(h)].sum(axis=0)).ravel()
                return rows

            return basket_score
        live = [s for s in self.pipe.sources if s.scores_history]
        weights = self.pipe.fusion.weights

        def score(histories: list[np.ndarray]) -> np.ndarray:
            total = np.zeros((len(histories), self.info.n_items), dtype=np.float64)
            for source in live:
                rows = np.asarray(source.history_scores(histories), dtype=np.float64)
                top = np.abs(rows).max(axis=1, keepdims=True)
                total += weights.get(source.name, 1.0) * np.divide(rows, top, out=np.zeros_like(rows), where=top > 0)
            return total

        return score if live else None

    def explain(self, context: UserContext, rec: Recommendation, scenario: str = "home") -> list[Explanation]:
        """Structured explanations of a returned list (render them with ``explain_text.render``)."""
        shares = {name: rec.source_shares[:, j] for j, name in enumerate(rec.candidates.sources)}
        return explain(
            context,
            rec.candidates,
            self.info,
            scorer=self.history_scorer(scenario),
            source_shares=shares,
            co_counts=self.co_counts,
            scenario=scenario,
            attributes=self.info.attributes or None,
        )
