"""Solvers for the bundle objective: greedy, local search, a genetic algorithm and an exact solver.

All take a compiled :class:`~shoprec.bundles.objective.Problem` and return a :class:`Solution`
holding a valid bundle (every constraint met) or raise
:class:`~shoprec.bundles.objective.InfeasibleBundle`. All are deterministic for a given seed.

- ``greedy``: adds the candidate with the best marginal gain ``relevance[j] + sum_s pairs[s, j]``
  while a gain is positive (and until the size and category rules are met). Gains are kept as one
  vector updated with the pair row of each item picked, so a step costs O(m) and pair rows are
  computed only for picked items (lazily, which lets greedy run on 100k candidates without an
  (m, m) matrix). Feasibility is checked lazily too: candidates are tried best gain first and the
  first one from which a valid bundle can still be completed (exact cheapest-completion test) is
  taken. A priority queue of stale gains (the "lazy greedy" of submodular maximisation) would be
  wrong here: complementarity makes gains grow as items join, so old gains are no upper bounds.
- ``local``: starts from greedy and applies the best improving add, drop or swap until none
  improves (never worse than greedy).
- ``genetic``: a population seeded with greedy and noisy greedy bundles; children keep their
  parents' common items and are filled greedily from the parents' union, mutation drops items and
  refills with noise; (mu + lambda) selection keeps the best, so it is never worse than greedy.
- ``exact``: enumerates every subset when there are few (at most ``enumeration_limit``), else
  solves an integer programme with scipy's HiGHS (``scipy.optimize.milp``): the quadratic pair
  terms are linearised with one variable ``y_ij`` per pair (``y <= x_i, y <= x_j`` for positive
  pairs, ``y >= x_i + x_j - 1`` for negative ones). ``optimal`` says whether optimality was proven.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from shoprec.bundles.objective import EPS, InfeasibleBundle, Problem
from shoprec.errors import ShoprecError


@dataclass
class SolverConfig:
    """Settings of the solvers (each reads its own)."""

    seed: int = 0
    """Seed of the genetic algorithm's random choices."""
    population: int = 24
    """Bundles kept per generation (genetic)."""
    generations: int = 30
    """Generations (genetic); stops early after ``patience`` generations without improvement."""
    patience: int = 8
    mutation_rate: float = 0.4
    """Chance that a child has items dropped and refilled with noise (genetic)."""
    noise: float = 0.5
    """Noise added to gains when refilling, as a share of the spread of the relevance scores (genetic)."""
    local_iterations: int = 200
    """Most improving moves (local search)."""
    exact_time_limit: float = 20.0
    """Seconds HiGHS may spend; without proof of optimality the solution says ``optimal=False``."""
    enumeration_limit: int = 5000
    """Largest number of subsets the exact solver enumerates before it switches to the ILP."""


@dataclass
class Solution:
    """A valid bundle's candidate positions, its objective value and how it was found."""

    positions: np.ndarray  # (k,) int64 positions in the instance's candidates
    items: np.ndarray  # (k,) int64 item indices
    value: float
    solver: str
    optimal: bool | None = None  # exact solver: optimality proven; None for heuristics
    seconds: float = 0.0
    evaluations: int = 0
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- greedy
def greedy_fill(
    problem: Problem, start: list[int], allowed: np.ndarray | None = None, noise: np.ndarray | None = None
) -> list[int]:
    """Extend ``start`` (which must be completable) greedily; returns positions, possibly incomplete
    only when ``allowed`` leaves too few candidates."""
    inst, sel = problem.instance, [int(s) for s in start]
    gains = inst.relevance.copy()
    if sel:
        gains += inst.pairs.rows(sel).sum(axis=0)
    price = np.where(np.isnan(inst.price), 0.0, inst.price)
    while len(sel) < problem.size_hi:
        complete = problem.is_valid(sel)
        mask = problem.open_mask(sel) if allowed is None else problem.open_mask(sel) & allowed
        need = max(problem.size_lo - len(sel) - 1, 0)
        if np.isfinite(problem.budget_left) and mask.any():
            spare = problem.budget_left - float(price[sel].sum()) + EPS
            floor = float(np.partition(price[mask], need)[:need].sum()) if need < mask.sum() else 0.0
            mask &= price <= spare - floor  # j plus the cheapest possible completion must fit
        cand = np.flatnonzero(mask)
        if len(cand) == 0:
            break
        score = gains[cand] if noise is None else gains[cand] + noise[cand]
        if complete and score.max() <= 0:
            break
        pick = next(
            (int(j) for j in cand[np.argsort(-score, kind="stable")] if problem.can_complete(sel + [int(j)])), None
        )
        if pick is None:
            break
        sel.append(pick)
        gains += inst.pairs.rows([pick])[0]
    return sel


def greedy(problem: Problem, config: SolverConfig | None = None) -> Solution:
    """Greedy with incrementally updated gains and lazy feasibility checks (see module doc)."""
    start = time.perf_counter()
    sel = greedy_fill(problem, [])
    if not problem.is_valid(sel):  # cannot happen after compile_problem proved feasibility; guard anyway
        raise InfeasibleBundle("solver", "greedy could not complete a valid bundle")
    return _solution(problem, sel, "greedy", start, len(sel) + 1)


# ---------------------------------------------------------------------------------------------- local search
def _moves(problem: Problem, sel: list[int]) -> list[tuple[float, list[int]]]:
    """Improving add / drop / swap moves as (delta, new selection), best first."""
    inst = problem.instance
    rows = inst.pairs.rows(sel) if sel else np.zeros((0, problem.m))  # (k, m)
    add = inst.relevance + rows.sum(axis=0)  # (m,) gain of adding j
    keep = np.array([inst.relevance[s] + rows[i, sel].sum() for i, s in enumerate(sel)])  # (k,) loss of dropping
    out: list[tuple[float, list[int]]] = []
    free = problem.eligible.copy()
    free[sel] = False
    cand = np.flatnonzero(free)
    if len(sel) < problem.size_hi:
        out += [(float(add[j]), sel + [int(j)]) for j in cand[add[cand] > EPS]]
    if len(sel) > problem.size_lo:
        out += [(float(-keep[i]), sel[:i] + sel[i + 1 :]) for i in range(len(sel)) if -keep[i] > EPS]
    if len(sel) and len(cand):
        delta = add[cand][None, :] - rows[:, cand] - keep[:, None]  # (k, c) swap sel[i] -> cand[c]
        for i, c in zip(*np.nonzero(delta > EPS), strict=True):
            out.append((float(delta[i, c]), sel[:i] + sel[i + 1 :] + [int(cand[c])]))
    out.sort(key=lambda move: -move[0])
    return out


def local_search(problem: Problem, config: SolverConfig | None = None, start: list[int] | None = None) -> Solution:
    """Best-improvement local search from greedy (or ``start``); never worse than its start."""
    config = config or SolverConfig()
    began = time.perf_counter()
    sel = greedy_fill(problem, []) if start is None else list(start)
    evaluations = len(sel) + 1
    for _ in range(config.local_iterations):
        moves = _moves(problem, sel)
        evaluations += len(moves)
        better = next((new for _, new in moves if problem.is_valid(new)), None)
        if better is None:
            break
        sel = better
    return _solution(problem, sel, "local", began, evaluations)


# ---------------------------------------------------------------------------------------------- genetic
def genetic(problem: Problem, config: SolverConfig | None = None) -> Solution:
    """Genetic algorithm seeded with greedy; (mu + lambda) selection, so never worse than greedy."""
    config = config or SolverConfig()
    began = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    scale = config.noise * max(float(np.std(problem.instance.relevance)), 1e-6)
    best = greedy_fill(problem, [])
    pool: dict[frozenset, float] = {frozenset(best): problem.value(best)}
    for _ in range(4 * config.population):
        if len(pool) >= config.population:
            break
        _add(problem, pool, greedy_fill(problem, [], noise=rng.normal(0.0, scale, problem.m)))
    evaluations, stale, top = len(pool), 0, max(pool.values())
    for _ in range(config.generations):
        members = list(pool)
        for _ in range(config.population):
            a, b = _tournament(members, pool, rng), _tournament(members, pool, rng)
            child = _crossover(problem, a, b, rng, scale, config.mutation_rate)
            evaluations += _add(problem, pool, child)
        pool = dict(sorted(pool.items(), key=lambda kv: -kv[1])[: config.population])
        stale = 0 if max(pool.values()) > top + EPS else stale + 1
        top = max(top, max(pool.values()))
        if stale >= config.patience:
            break
    winner = max(pool, key=lambda key: (pool[key], -sum(key)))
    return _solution(problem, sorted(winner), "genetic", began, evaluations)


def _add(problem: Problem, pool: dict[frozenset, float], sel: list[int]) -> int:
    key = frozenset(sel)
    if key in pool or not problem.is_valid(sel):
        return 0
    pool[key] = problem.value(sel)
    return 1


def _tournament(members: list[frozenset], pool: dict[frozenset, float], rng: np.random.Generator) -> frozenset:
    picks = rng.choice(len(members), size=min(3, len(members)), replace=False)
    return max((members[i] for i in picks), key=lambda key: pool[key])


def _crossover(
    problem: Problem, a: frozenset, b: frozenset, rng: np.random.Generator, scale: float, mutation_rate: float
) -> list[int]:
    """Keep the parents' common items, fill from their union; mutation drops items and refills with noise."""
    common = sorted(a & b)
    union = np.zeros(problem.m, bool)
    union[list(a | b)] = True
    noise = None
    if rng.random() < mutation_rate:
        if common:
            drop = rng.choice(len(common), size=int(rng.integers(1, len(common) + 1)), replace=False)
            common = [c for i, c in enumerate(common) if i not in set(drop.tolist())]
        union[:] = True
        noise = rng.normal(0.0, scale, problem.m)
    child = greedy_fill(problem, common, allowed=union, noise=noise)
    if not problem.is_valid(child):
        child = greedy_fill(problem, child, noise=noise)
    return child


# ---------------------------------------------------------------------------------------------- exact
def exact(problem: Problem, config: SolverConfig | None = None) -> Solution:
    """Proven optimum: enumeration for tiny instances, else an ILP through HiGHS."""
    config = config or SolverConfig()
    n = int(problem.eligible.sum())
    subsets = sum(math.comb(n, k) for k in range(problem.size_lo, min(problem.size_hi, n) + 1))
    if subsets <= config.enumeration_limit:
        return enumerate_best(problem)
    return milp_best(problem, config.exact_time_limit)


def enumerate_best(problem: Problem) -> Solution:
    """Best valid bundle by trying every subset of the eligible candidates (tiny instances only)."""
    began = time.perf_counter()
    cand = np.flatnonzero(problem.eligible).tolist()
    best, best_value, count = None, -np.inf, 0
    for k in range(problem.size_lo, min(problem.size_hi, len(cand)) + 1):
        for combo in itertools.combinations(cand, k):
            count += 1
            if problem.is_valid(combo):
                value = problem.value(combo)
                if value > best_value + EPS:
                    best, best_value = list(combo), value
    if best is None:
        raise InfeasibleBundle("solver", "enumeration found no valid bundle")
    solution = _solution(problem, best, "exact", began, count)
    solution.optimal = True
    solution.notes.append(f"enumerated {count} subsets")
    return solution


def milp_best(problem: Problem, time_limit: float = 20.0) -> Solution:
    """Best valid bundle from the linearised integer programme (see module doc)."""
    began = time.perf_counter()
    inst, cand = problem.instance, np.flatnonzero(problem.eligible)
    n = len(cand)
    if n > 400:
        raise ShoprecError(f"exact solver: {n} eligible candidates are too many for the ILP; prune to at most 400")
    block = inst.pairs.block(cand)
    iu, ju = np.nonzero(np.triu(np.abs(block) > 1e-12, 1))
    p = block[iu, ju]
    n_y = len(p)
    cost = -np.r_[inst.relevance[cand], p]  # milp minimises
    rows, lo, hi = _linear_rows(problem, cand, n, n_y, iu, ju, p)
    matrix = sp.vstack(rows).tocsr() if rows else sp.csr_matrix((0, n + n_y))
    result = milp(
        cost,
        constraints=[LinearConstraint(matrix, np.array(lo), np.array(hi))] if rows else [],
        integrality=np.r_[np.ones(n), np.zeros(n_y)],
        bounds=Bounds(np.zeros(n + n_y), np.ones(n + n_y)),
        options={"time_limit": time_limit, "presolve": True},
    )
    if result.x is None:
        if result.status == 2:  # proven infeasible: compile_problem should have said so first
            raise InfeasibleBundle("solver", f"the ILP proves no valid bundle exists ({result.message})")
        fallback = greedy(problem)
        fallback.solver, fallback.optimal = "exact", False
        fallback.notes.append(
            f"HiGHS found no solution in {time_limit:g} s ({result.message}); greedy's bundle returned"
        )
        return fallback
    sel = cand[result.x[:n] > 0.5].tolist()
    solution = _solution(problem, sel, "exact", began, int(getattr(result, "mip_node_count", 0) or 0))
    solution.optimal = result.status == 0
    solution.notes.append(f"HiGHS: {result.message}")
    return solution


def _linear_rows(
    problem: Problem, cand: np.ndarray, n: int, n_y: int, iu: np.ndarray, ju: np.ndarray, p: np.ndarray
) -> tuple[list[sp.csr_matrix], list[float], list[float]]:
    """Constraint rows over variables [x (n), y (n_y)] with their lower and upper bounds."""
    width = n + n_y
    rows: list[sp.csr_matrix] = []
    lo: list[float] = []
    hi: list[float] = []

    def add(cols: np.ndarray, values: np.ndarray, low: float, high: float) -> None:
        rows.append(sp.csr_matrix((values, (np.zeros(len(cols), int), cols)), shape=(1, width)))
        lo.append(low)
        hi.append(high)

    _pair_rows(rows, lo, hi, problem.size_hi, n, width, iu, ju, p)
    all_x = np.arange(n)
    add(all_x, np.ones(n), problem.size_lo, problem.size_hi)
    if np.isfinite(problem.budget_left):
        add(all_x, np.nan_to_num(problem.instance.price[cand]), -np.inf, problem.budget_left)
    cats = problem.cat[cand]
    if problem.mix_left is not None:
        for code, need in problem.mix_left.items():
            add(np.flatnonzero(cats == code), np.ones(int((cats == code).sum())), need, need)
    else:
        if problem.constraints.one_per_category:
            for code in np.unique(cats):
                members = np.flatnonzero(cats == code)
                if len(members) > 1:
                    add(members, np.ones(len(members)), -np.inf, 1.0)
        for code in problem.required_cats.tolist():
            add(np.flatnonzero(cats == code), np.ones(int((cats == code).sum())), 1.0, np.inf)
    return rows, lo, hi


def _pair_rows(
    rows: list, lo: list, hi: list, size_hi: int, n: int, width: int, iu: np.ndarray, ju: np.ndarray, p: np.ndarray
) -> None:
    """Rows linking each pair variable y_ij to x_i and x_j (see module doc), appended in place."""
    n_y = len(p)
    if not n_y:
        return
    pos, neg = np.flatnonzero(p > 0), np.flatnonzero(p < 0)
    if len(pos):  # y - x_i <= 0 and y - x_j <= 0
        r = np.arange(2 * len(pos))
        data = np.r_[np.ones(len(r)), -np.ones(len(r))]
        cols = np.r_[n + pos, n + pos, iu[pos], ju[pos]]
        rows.append(sp.csr_matrix((data, (np.r_[r, r], cols)), shape=(len(r), width)))
        lo += [-np.inf] * len(r)
        hi += [0.0] * len(r)
    if len(neg):  # x_i + x_j - y <= 1
        r = np.arange(len(neg))
        data = np.r_[np.ones(len(neg)), np.ones(len(neg)), -np.ones(len(neg))]
        cols = np.r_[iu[neg], ju[neg], n + neg]
        rows.append(sp.csr_matrix((data, (np.r_[r, r, r], cols)), shape=(len(neg), width)))
        lo += [-np.inf] * len(neg)
        hi += [1.0] * len(neg)
    # sum_j y_ij <= (size_hi - 1) x_i: tightens the relaxation a lot (each item has few partners)
    r = np.r_[iu, ju]
    data = np.r_[np.ones(2 * n_y), -(size_hi - 1) * np.ones(n)]
    cols = np.r_[n + np.arange(n_y), n + np.arange(n_y), np.arange(n)]
    rows.append(sp.csr_matrix((data, (np.r_[r, np.arange(n)], cols)), shape=(n, width)))
    lo += [-np.inf] * n
    hi += [0.0] * n


# ---------------------------------------------------------------------------------------------- shared
def _solution(problem: Problem, sel: list[int], solver: str, began: float, evaluations: int) -> Solution:
    sel_arr = np.array(sorted(int(s) for s in sel), dtype=np.int64)
    return Solution(
        positions=sel_arr,
        items=problem.instance.items[sel_arr],
        value=problem.value(sel_arr),
        solver=solver,
        seconds=time.perf_counter() - began,
        evaluations=evaluations,
    )


SOLVERS: dict[str, Callable[[Problem, SolverConfig | None], Solution]] = {
    "greedy": greedy,
    "local": local_search,
    "genetic": genetic,
    "exact": exact,
}
"""Solver name -> function(problem, config)."""


def solve(problem: Problem, method: str = "greedy", config: SolverConfig | None = None) -> Solution:
    """Run solver ``method`` (see :data:`SOLVERS`) on ``problem``."""
    if method not in SOLVERS:
        raise ShoprecError(f"unknown bundle solver {method!r}; choose one of {', '.join(SOLVERS)}")
    return SOLVERS[method](problem, config)
