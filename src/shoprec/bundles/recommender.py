"""From an anchor to a bundle: score every item, keep a candidate pool, compile constraints, solve.

An :class:`Anchor` is what the shopper starts from: items that will be in the bundle (one product,
or a cart), context items that shape it without joining (a shopper's recent history), and a
free-text intent ("home office setup"). :class:`BundleRecommender` turns it into an
:class:`~shoprec.bundles.objective.Instance`:

    relevance[j] = anchor_weight * mean_a w_a complement(a, j)
                 - redundancy_weight * max_a substitute(a, j)
                 + intent_weight * cos(intent, j) + popularity_weight * popularity[j]
    pairs[i, j]  = pair_weight * complement(i, j) - redundancy_weight * substitute(i, j)

Every item is scored (vectorised, O(n_items) per anchor); the ``pool_size`` best plus the cheapest
item of every category and the cheapest items overall (so pruning never makes a budget or category
rule infeasible that the whole catalogue could meet) go to the solver.

>>> rec = BundleRecommender().fit(train, item_vectors)                       # doctest: +SKIP
>>> bundle = rec.recommend(Anchor(items=(42,)), BundleConstraints(max_size=3))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shoprec.bundles.complements import ComplementConfig, ComplementModel
from shoprec.bundles.constraints import compile_problem
from shoprec.bundles.objective import BundleConstraints, DensePairs, Instance, LazyPairs, Problem
from shoprec.bundles.solvers import Solution, SolverConfig, solve
from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.pipeline.catalog import ItemInfo

Encode = Callable[[list[str]], np.ndarray]


@dataclass
class BundleConfig:
    """Weights of the bundle objective and the size of the solver's candidate pool."""

    anchor_weight: float = 1.0
    """Relevance from complementarity to the anchor items (and context)."""
    pair_weight: float = 0.5
    """Complementarity among the chosen items."""
    redundancy_weight: float = 1.0
    """Penalty for substitutes, with the anchors and among the chosen items."""
    intent_weight: float = 1.0
    """Relevance from the cosine between the intent text and the item text."""
    popularity_weight: float = 0.05
    """Prior for items bought often (breaks ties where no pair evidence exists)."""
    pool_size: int = 150
    """Candidates handed to the solver (best relevance first, plus the cheapest per category)."""
    dense_limit: int = 3000
    """Pools larger than this get pair rows computed lazily (greedy only needs the rows it picks)."""
    exact_pool_size: int = 40
    """Candidates handed to the exact solver (its ILP grows with the square of the pool)."""
    history: int = 10
    """Recent distinct items of a shopper used as context for a user anchor."""
    history_decay: float = 0.8
    """Weight of the r-th most recent history item: decay ** r."""
    solver: str = "greedy"
    """Default solver: greedy, local, genetic or exact."""


@dataclass
class Anchor:
    """What a bundle starts from (item indices); any combination of the fields."""

    items: tuple[int, ...] = ()
    """Items in the bundle from the start: one product, or a cart."""
    context: tuple[int, ...] = ()
    """Items that shape relevance but do not join the bundle (most recent first)."""
    intent: str | None = None
    """Free-text intent such as "home office setup" (needs item vectors and an encoder)."""
    intent_vector: np.ndarray | None = None
    """The intent already encoded (overrides encoding ``intent``)."""
    exclude: tuple[int, ...] = ()
    """Items never proposed (for a user: what they already bought)."""


@dataclass
class Bundle:
    """A solved bundle: the anchor items first, then the chosen ones."""

    items: np.ndarray  # (k,) int64 item indices: anchors (and required items), then added ones
    n_base: int  # how many leading items were fixed before solving
    solution: Solution
    problem: Problem
    anchor: Anchor
    total_price: float
    notes: list[str] = field(default_factory=list)

    @property
    def added(self) -> np.ndarray:
        return self.items[self.n_base :]

    @property
    def base(self) -> np.ndarray:
        return self.items[: self.n_base]


class BundleRecommender:
    """Fits the complement model on a dataset and answers anchors with bundles."""

    def __init__(
        self,
        config: BundleConfig | None = None,
        complements: ComplementConfig | None = None,
        solver_config: SolverConfig | None = None,
        encode: Encode | None = None,
    ) -> None:
        self.config = config or BundleConfig()
        self.model = ComplementModel(complements)
        self.solver_config = solver_config or SolverConfig()
        self.encode = encode
        self.info: ItemInfo | None = None

    def fit(self, dataset: Dataset, item_vectors: np.ndarray | None = None) -> BundleRecommender:
        """Learn from ``dataset``; ``item_vectors`` (n_items, dim) enable text evidence and intents."""
        self.model.fit(dataset, item_vectors)
        self.info = ItemInfo.from_dataset(dataset)
        self.dataset = dataset
        return self

    @property
    def n_items(self) -> int:
        if self.info is None:
            raise ModelError("bundle recommender: call fit(dataset) first")
        return self.info.n_items

    # ------------------------------------------------------------------ scoring
    def intent_scores(self, anchor: Anchor) -> np.ndarray | None:
        """Cosine of every item's text vector with the intent, or None without an intent."""
        if anchor.intent_vector is None and not anchor.intent:
            return None
        if self.model.vectors is None:
            raise ModelError("bundle recommender: an intent needs item text vectors: fit with item_vectors")
        query = anchor.intent_vector
        if query is None:
            if self.encode is None:
                raise ModelError("bundle recommender: an intent text needs an encoder: pass encode= (or intent_vector)")
            query = np.asarray(self.encode([str(anchor.intent)]), dtype=np.float32).reshape(-1)
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.model.vectors.shape[1]:
            raise ModelError(
                f"bundle recommender: the intent vector has {query.shape[0]} dimensions, the item vectors "
                f"{self.model.vectors.shape[1]}: encode the intent with the items' encoder"
            )
        query = query / max(float(np.linalg.norm(query)), 1e-12)
        return self.model.vectors @ query

    def relevance(self, anchor: Anchor) -> np.ndarray:
        """Relevance of every item to the anchor (n_items,)."""
        cfg, n = self.config, self.n_items
        rel = cfg.popularity_weight * self.model.popularity.astype(np.float64)
        linked = np.array(list(anchor.items) + list(anchor.context), dtype=np.int64)
        if len(linked):
            comp, subst = self.model.scores(linked)  # (k, n)
            weights = np.r_[np.ones(len(anchor.items)), cfg.history_decay ** np.arange(len(anchor.context))]
            rel += cfg.anchor_weight * (weights @ comp) / weights.sum()
            rel -= cfg.redundancy_weight * subst.max(axis=0)
        intent = self.intent_scores(anchor)
        if intent is not None:
            rel += cfg.intent_weight * intent
        return rel[:n]

    def pool(
        self, rel: np.ndarray, open_items: np.ndarray, constraints: BundleConstraints, size: int | None = None
    ) -> np.ndarray:
        """Candidate item indices: the best ``size`` by relevance, plus what keeps every rule as
        satisfiable as on the whole catalogue: the best (and, with a budget, cheapest) items of each
        named category, the best item per category when the pool spans too few categories, and with
        a budget the cheapest item of the cheapest categories and the cheapest items overall."""
        info, con = self.info, constraints
        cand = np.flatnonzero(open_items)
        size = max(self.config.pool_size if size is None else size, 2 * con.max_size)  # room for large bundles
        if len(cand) <= size:
            return cand
        best = cand[np.argsort(-rel[cand], kind="stable")[:size]]
        cats = info.category[cand].astype(str)
        price = np.where(np.isnan(info.price[cand]), np.inf, info.price[cand])
        per_cat = con.max_size if con.category_mix is not None else 1
        extra = []
        named = np.isin(cats, [*con.required_categories, *(con.category_mix or {})])
        if named.any():
            rows = np.flatnonzero(named)
            extra += [cand[rows[_first_per_group(-rel[cand][rows], cats[rows], per_cat)]]]
            extra += [cand[rows[_first_per_group(price[rows], cats[rows], per_cat)]]]
        if con.one_per_category and len(set(info.category[best].tolist())) < con.max_size:
            tops = _first_per_group(-rel[cand], cats, 1)  # best item of each category, best categories first
            extra += [cand[tops[np.argsort(-rel[cand][tops], kind="stable")[: con.max_size + named.sum()]]]]
        if con.budget is not None:
            cheapest = _first_per_group(price, cats, 1)
            extra += [cand[cheapest[np.argsort(price[cheapest], kind="stable")[: con.max_size + named.sum()]]]]
            extra += [cand[np.argsort(price, kind="stable")[: 2 * con.max_size]]]
        return np.unique(np.concatenate([best, *extra]))

    def instance(self, anchor: Anchor, constraints: BundleConstraints, pool_size: int | None = None) -> Instance:
        """The solver's instance: pool candidates, their relevance and pair values, the fixed base."""
        info, cfg = self.info, self.config
        if info is None:
            raise ModelError("bundle recommender: call fit(dataset) first")
        base = list(dict.fromkeys([*anchor.items, *constraints.required_items]))
        for i in [*base, *anchor.context, *anchor.exclude]:
            if not 0 <= int(i) < info.n_items:
                raise ModelError(f"bundle recommender: item index {i} is outside 0..{info.n_items - 1}")
        rel = self.relevance(anchor)
        open_items = np.ones(info.n_items, bool)
        open_items[base + list(anchor.exclude) + list(constraints.excluded_items)] = False
        if constraints.in_stock_only:
            open_items &= info.in_stock
        if constraints.excluded_categories:
            open_items &= ~np.isin(info.category, list(constraints.excluded_categories))
        if constraints.category_mix is not None:
            open_items &= np.isin(info.category, list(constraints.category_mix))
        items = self.pool(rel, open_items, constraints, pool_size)
        if len(items) > cfg.dense_limit:
            pairs = LazyPairs(lambda rows: self.pair_values(items[rows], items), len(items))
        else:
            dense = self.pair_values(items, items)
            pairs = DensePairs((dense + dense.T) / 2.0)
        base_arr = np.array(base, dtype=np.int64)
        return Instance(
            items=items,
            relevance=rel[items],
            pairs=pairs,
            price=info.price[items],
            category=info.category[items],
            in_stock=info.in_stock[items],
            base_items=base_arr,
            base_price=info.price[base_arr],
            base_category=info.category[base_arr],
            base_in_stock=info.in_stock[base_arr],
        )

    def pair_values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``pair_weight * complement - redundancy_weight * substitute`` for rows x cols (0 on the diagonal)."""
        comp, subst = self.model.scores(rows, cols)
        cfg = self.config
        return cfg.pair_weight * comp.astype(np.float64) - cfg.redundancy_weight * subst.astype(np.float64)

    def labels(self, items: np.ndarray) -> dict[int, str]:
        return {int(i): f"item {self.info.item_id[i]} ({self.info.title[i][:40]})" for i in items}

    # ------------------------------------------------------------------ solving
    def recommend(
        self, anchor: Anchor, constraints: BundleConstraints | None = None, solver: str | None = None
    ) -> Bundle:
        """Solve for the best bundle; raises InfeasibleBundle naming the binding constraint."""
        constraints = constraints or BundleConstraints()
        solver = solver or self.config.solver
        inst = self.instance(anchor, constraints, self.config.exact_pool_size if solver == "exact" else None)
        problem = compile_problem(inst, constraints, self.labels(inst.base_items))
        solution = solve(problem, solver, self.solver_config)
        items = np.r_[inst.base_items, solution.items].astype(np.int64)
        total = float(np.nansum(self.info.price[items]))
        notes = list(problem.notes)
        if not len(solution.items):
            notes.append("no candidate improved the bundle: only the anchor and required items are returned")
        return Bundle(items, len(inst.base_items), solution, problem, anchor, total, notes)

    def user_anchor(self, user: int) -> Anchor:
        """Context = the user's recent distinct items; what they bought is not proposed again."""
        if not 0 <= user < self.dataset.n_users:
            raise ModelError(f"bundle recommender: user index {user} is outside 0..{self.dataset.n_users - 1}")
        seqs = self.dataset.sequences()
        history = seqs.of(user)[::-1]
        recent = list(dict.fromkeys(history.tolist()))[: self.config.history]
        frame = self.dataset.interactions
        lo, hi = seqs.indptr[user], seqs.indptr[user + 1]
        bought = frame["item"].to_numpy()[lo:hi][(frame["event"].to_numpy()[lo:hi] == "purchase")]
        return Anchor(context=tuple(recent), exclude=tuple(np.unique(bought).tolist()))


def _first_per_group(key: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` smallest ``key`` values of every group."""
    order = np.lexsort((key, groups))
    sorted_groups = groups[order]
    first = np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    return order[np.arange(len(order)) - start < k]
