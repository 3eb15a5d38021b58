"""The bundle objective and its constraints: what a good bundle is, and which bundles are allowed.

A bundle is a set of items. Some are fixed before solving (the *base*: anchor items the shopper
starts from, required items); the solvers choose the rest from the *candidates* of an
:class:`Instance`. The value of a chosen set ``S`` of candidates is

    f(S) = sum_{j in S} relevance[j] + sum_{i < j in S} pairs[i, j]

where ``relevance`` says how well a candidate fits the anchor (complementary to it, not a
substitute for it, matching the intent) and ``pairs`` how well two candidates go together
(complementarity minus redundancy). :class:`BundleConstraints` hold the shopper's limits, always
counted over the whole bundle (base + chosen): size range, total budget, at most one item per
category or an exact category mix, required and excluded categories, stock. :func:`compile_problem`
turns both into a :class:`Problem` the solvers share; it raises :class:`InfeasibleBundle` naming the
constraint that binds when no bundle can satisfy them all.

>>> from shoprec.bundles.constraints import compile_problem
>>> inst = Instance(items=np.array([7, 8, 9]), relevance=np.array([1.0, 0.5, 0.2]),
...                 pairs=DensePairs(np.zeros((3, 3))), price=np.array([5.0, 3.0, 1.0]),
...                 category=np.array(["a", "b", "b"], dtype=object))
>>> problem = compile_problem(inst, BundleConstraints(min_size=2, max_size=2, budget=7.0))
>>> problem.value([0, 2]), problem.is_valid([0, 2]), problem.is_valid([0, 1])
(1.2, True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from shoprec.errors import ShoprecError

EPS = 1e-9


class InfeasibleBundle(ShoprecError):
    """No bundle satisfies the constraints; ``constraint`` names the one that binds."""

    def __init__(self, constraint: str, problem: str, fix: str | None = None) -> None:
        self.constraint = constraint
        text = f"infeasible bundle constraints ({constraint}): {problem}"
        super().__init__(text + (f". {fix}" if fix else ""))


@dataclass
class BundleConstraints:
    """The shopper's limits on the whole bundle (anchors included).

    Items are item indices; categories are category labels as the catalogue writes them
    ("Electronics > Cameras > Memory Cards").
    """

    min_size: int = 2
    """Fewest items in the bundle, anchors included."""
    max_size: int = 4
    """Most items in the bundle, anchors included."""
    budget: float | None = None
    """Most the whole bundle may cost; None: no limit. Items without a price cannot join a budgeted bundle."""
    one_per_category: bool = True
    """At most one item per category (a camera bundle holds one camera). Ignored with ``category_mix``."""
    category_mix: dict[str, int] | None = None
    """Exact number of items per category; the bundle holds nothing else (its size is the sum)."""
    required_items: tuple[int, ...] = ()
    """Items that must be in the bundle (they join the base)."""
    excluded_items: tuple[int, ...] = ()
    """Items that must not be in the bundle."""
    required_categories: tuple[str, ...] = ()
    """Categories the bundle must hold at least one item of."""
    excluded_categories: tuple[str, ...] = ()
    """Categories the bundle must not hold."""
    in_stock_only: bool = True
    """Only items in stock may be chosen (and required items must be in stock)."""

    def __post_init__(self) -> None:
        for name in ("min_size", "max_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise InfeasibleBundle("size", f"{name} must be a whole number >= 1, got {value!r}")
        if self.min_size > self.max_size:
            raise InfeasibleBundle(
                "size", f"min_size {self.min_size} is above max_size {self.max_size}", "Give min_size <= max_size"
            )
        if self.budget is not None and not (np.isfinite(self.budget) and self.budget >= 0):
            raise InfeasibleBundle("budget", f"budget must be a finite amount >= 0 or None, got {self.budget!r}")
        if self.category_mix is not None:
            bad = {c: n for c, n in self.category_mix.items() if not isinstance(n, int | np.integer) or n < 1}
            if bad or not self.category_mix:
                raise InfeasibleBundle("category mix", f"each category needs a count >= 1, got {self.category_mix!r}")


class DensePairs:
    """Pair values as a dense symmetric (m, m) matrix with a zero diagonal."""

    def __init__(self, matrix: np.ndarray) -> None:
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ShoprecError(f"pair matrix must be square, got shape {matrix.shape}")
        self.matrix = matrix

    def rows(self, rows: Sequence[int]) -> np.ndarray:
        return self.matrix[np.asarray(rows, dtype=np.int64)]

    def block(self, rows: Sequence[int]) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return self.matrix[np.ix_(rows, rows)]

    def dense(self) -> np.ndarray:
        return self.matrix


class LazyPairs:
    """Pair values computed a row at a time by ``row_fn(rows) -> (len(rows), m)`` and cached.

    For candidate sets too large for an (m, m) matrix: greedy needs only the rows of what it picks.
    """

    def __init__(self, row_fn: Callable[[np.ndarray], np.ndarray], m: int) -> None:
        self.row_fn = row_fn
        self.m = m
        self.cache: dict[int, np.ndarray] = {}

    def rows(self, rows: Sequence[int]) -> np.ndarray:
        rows = [int(r) for r in rows]
        missing = [r for r in rows if r not in self.cache]
        if missing:
            for r, values in zip(missing, np.asarray(self.row_fn(np.array(missing)), dtype=np.float64), strict=True):
                self.cache[r] = values
        return np.stack([self.cache[r] for r in rows]) if rows else np.zeros((0, self.m))

    def block(self, rows: Sequence[int]) -> np.ndarray:
        return self.rows(rows)[:, np.asarray(rows, dtype=np.int64)]

    def dense(self) -> np.ndarray:
        if self.m > 5000:
            raise ShoprecError(f"refusing to build a dense {self.m} x {self.m} pair matrix: prune the candidates first")
        return self.rows(range(self.m))


@dataclass
class Instance:
    """Candidates with their scores and facts, plus the fixed base of the bundle."""

    items: np.ndarray  # (m,) int64 item indices of the candidates
    relevance: np.ndarray  # (m,) float64
    pairs: DensePairs | LazyPairs  # (m, m) pair values, zero diagonal
    price: np.ndarray  # (m,) float64, NaN when unknown
    category: np.ndarray  # (m,) object labels, "" when unknown
    in_stock: np.ndarray | None = None  # (m,) bool; None: all in stock
    base_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    base_price: np.ndarray = field(default_factory=lambda: np.empty(0))
    base_category: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    base_in_stock: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.items = np.asarray(self.items, dtype=np.int64)
        m = len(self.items)
        self.relevance = np.asarray(self.relevance, dtype=np.float64)
        self.price = np.asarray(self.price, dtype=np.float64)
        self.category = np.asarray(self.category, dtype=object)
        self.in_stock = np.ones(m, bool) if self.in_stock is None else np.asarray(self.in_stock, bool)
        self.base_items = np.asarray(self.base_items, dtype=np.int64)
        self.base_price = np.asarray(self.base_price, dtype=np.float64)
        self.base_category = np.asarray(self.base_category, dtype=object)
        b = len(self.base_items)
        self.base_in_stock = np.ones(b, bool) if self.base_in_stock is None else np.asarray(self.base_in_stock, bool)
        for name, n in (("relevance", m), ("price", m), ("category", m), ("in_stock", m)):
            if len(getattr(self, name)) != n:
                raise ShoprecError(f"bundle instance: {name} has {len(getattr(self, name))} entries for {n} candidates")
        for name in ("base_price", "base_category", "base_in_stock"):
            if len(getattr(self, name)) != b:
                raise ShoprecError(f"bundle instance: {name} has {len(getattr(self, name))} entries for {b} base items")

    def __len__(self) -> int:
        return len(self.items)


def _codes(labels: np.ndarray, lookup: dict[str, int]) -> np.ndarray:
    """Category codes; unknown ("") categories get their own code each (never clash)."""
    out = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels.tolist()):
        key = label if label else f"\x00unknown-{len(lookup)}"
        out[i] = lookup.setdefault(key, len(lookup))
    return out


@dataclass
class Problem:
    """An instance compiled against constraints: masks and codes the solvers read.

    Positions (``sel``) index the instance's candidates.
    """

    instance: Instance
    constraints: BundleConstraints
    eligible: np.ndarray  # (m,) bool: may be chosen at all
    cat: np.ndarray  # (m,) int64 category codes
    base_cats: np.ndarray  # (b,) int64
    size_lo: int  # fewest candidates to choose
    size_hi: int  # most candidates to choose
    budget_left: float  # inf without a budget
    required_cats: np.ndarray  # codes the chosen items must cover (not covered by the base)
    mix_left: dict[int, int] | None  # code -> items still needed (exact mix)
    names: list[str]  # code -> label (for messages)
    notes: list[str] = field(default_factory=list)

    @property
    def m(self) -> int:
        return len(self.eligible)

    def value(self, sel: Sequence[int]) -> float:
        """Objective of choosing candidate positions ``sel``."""
        sel = np.asarray(list(sel), dtype=np.int64)
        if len(sel) == 0:
            return 0.0
        block = self.instance.pairs.block(sel)
        return float(self.instance.relevance[sel].sum() + np.triu(block, 1).sum())

    def _flags(self, codes: np.ndarray) -> np.ndarray:
        """Boolean lookup over category codes, True for ``codes`` (cheaper than np.isin on tiny sets)."""
        flags = np.zeros(len(self.names), bool)
        flags[codes] = True
        return flags

    def open_mask(self, sel: Sequence[int]) -> np.ndarray:
        """Candidates that could be added to ``sel`` without breaking a category rule at once."""
        sel = list(sel)
        mask = self.eligible.copy()
        mask[sel] = False
        if self.mix_left is not None:
            left = self._mix_remaining(sel)
            mask &= self._flags(np.array([c for c, n in left.items() if n > 0], dtype=np.int64))[self.cat]
        elif self.constraints.one_per_category and sel:
            mask &= ~self._flags(self.cat[sel])[self.cat]
        return mask

    def _mix_remaining(self, sel: Sequence[int]) -> dict[int, int]:
        left = dict(self.mix_left or {})
        for c in self.cat[list(sel)].tolist():
            left[c] = left.get(c, 0) - 1
        return left

    def completion(self, sel: Sequence[int]) -> tuple[float, str | None]:
        """Least extra cost to turn ``sel`` into a valid bundle, or (inf, why not).

        Exact for every constraint combination here: the cheapest completion takes the cheapest
        item of each category still required (or the mix's cheapest items), then the cheapest
        remaining items (one per unused category when ``one_per_category``).
        """
        sel = [int(s) for s in sel]
        n, cost = len(sel), float(self.instance.price[sel].sum()) if sel else 0.0
        if n > self.size_hi:
            return np.inf, "size"
        if cost > self.budget_left + EPS:
            return np.inf, "budget"
        avail = self.open_mask(sel)
        price = np.where(np.isnan(self.instance.price), 0.0, self.instance.price)
        if self.mix_left is not None:
            extra = self._mix_completion(sel, avail, price)
            if not np.isfinite(extra):
                return extra, "category mix"
            return (extra, None) if cost + extra <= self.budget_left + EPS else (np.inf, "budget")
        covered = set(self.cat[sel].tolist())
        uncovered = [int(c) for c in self.required_cats.tolist() if c not in covered]
        if n + len(uncovered) > self.size_hi:
            return np.inf, "required categories"
        extra, used = 0.0, np.zeros(self.m, bool)
        for c in uncovered:
            rows = np.flatnonzero(avail & (self.cat == c))
            if len(rows) == 0:
                return np.inf, "required categories"
            best = rows[np.argmin(price[rows])]
            extra += float(price[best])
            used[best] = True
        need = self.size_lo - n - len(uncovered)
        if need > 0:
            rest = avail & ~used
            if self.constraints.one_per_category:
                rest &= ~self._flags(np.array(uncovered, dtype=np.int64))[self.cat]
                values = _cheapest_per_group(price[rest], self.cat[rest])
            else:
                values = price[rest]
            if len(values) < need:
                return np.inf, "size"
            extra += float(np.partition(values, need - 1)[:need].sum())
        if cost + extra > self.budget_left + EPS:
            return np.inf, "budget"
        return extra, None

    def _mix_completion(self, sel: list[int], avail: np.ndarray, price: np.ndarray) -> float:
        """Cheapest items still needed by the category mix (inf when a category runs short)."""
        extra = 0.0
        for c, need in self._mix_remaining(sel).items():
            have = np.sort(price[avail & (self.cat == c)])
            if need < 0 or len(have) < need:
                return np.inf
            extra += float(have[:need].sum())
        return extra

    def can_complete(self, sel: Sequence[int]) -> bool:
        return np.isfinite(self.completion(sel)[0])

    def is_valid(self, sel: Sequence[int]) -> bool:
        """True when ``sel`` is a complete bundle satisfying every constraint."""
        sel = [int(s) for s in sel]
        if len(set(sel)) != len(sel) or not self.eligible[sel].all():
            return False
        if not self.size_lo <= len(sel) <= self.size_hi:
            return False
        cost = float(np.nansum(self.instance.price[sel])) if sel else 0.0
        return cost <= self.budget_left + EPS and self.open_ok(sel) and self._covers(sel)

    def open_ok(self, sel: Sequence[int]) -> bool:
        """Category rules hold among ``sel`` and the base."""
        cats = self.cat[list(sel)]
        if self.mix_left is not None:
            return all(v >= 0 for v in self._mix_remaining(sel).values())
        if self.constraints.one_per_category:
            return len(set(cats.tolist())) == len(cats) and not self._flags(self.base_cats)[cats].any()
        return True

    def _covers(self, sel: Sequence[int]) -> bool:
        if self.mix_left is not None:
            return all(v == 0 for v in self._mix_remaining(sel).values())
        return bool(self._flags(self.cat[list(sel)])[self.required_cats].all())


def _cheapest_per_group(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """The smallest value of each group."""
    if len(values) == 0:
        return values
    order = np.lexsort((values, groups))
    first = np.r_[True, groups[order][1:] != groups[order][:-1]]
    return values[order][first]
