"""Bundle solvers: exact agrees with brute force, every solver returns valid bundles, none is worse than greedy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprec.bundles.constraints import bundle_violations, compile_problem
from shoprec.bundles.objective import BundleConstraints, DensePairs, InfeasibleBundle, Instance, LazyPairs
from shoprec.bundles.solvers import SolverConfig, enumerate_best, greedy, milp_best, solve

CATEGORIES = np.array(list("aabbccddeeffgg"), dtype=object)


def random_instance(seed: int, m: int = 12, n_base: int = 0) -> Instance:
    rng = np.random.default_rng(seed)
    pairs = rng.normal(0.0, 0.6, (m, m))
    pairs = (pairs + pairs.T) / 2
    np.fill_diagonal(pairs, 0.0)
    base_cats = np.array(["z"] * n_base, dtype=object)
    return Instance(
        items=np.arange(m) + 100,
        relevance=rng.normal(0.2, 0.5, m),
        pairs=DensePairs(pairs),
        price=rng.uniform(1, 10, m).round(2),
        category=CATEGORIES[:m],
        in_stock=rng.random(m) > 0.15,
        base_items=np.arange(n_base),
        base_price=np.full(n_base, 2.0),
        base_category=base_cats,
    )


def brute_force(inst: Instance, con: BundleConstraints) -> float:
    """Best objective over every subset of the candidates, valid by the independent audit."""
    best = -np.inf
    for k in range(0, len(inst) + 1):
        for combo in itertools.combinations(range(len(inst)), k):
            if not bundle_violations(inst, con, combo):
                block = inst.pairs.block(list(combo))
                best = max(best, inst.relevance[list(combo)].sum() + np.triu(block, 1).sum())
    return best


constraint_sets = st.builds(
    dict,
    min_size=st.integers(1, 3),
    extra=st.integers(0, 2),
    budget=st.one_of(st.none(), st.floats(3.0, 30.0)),
    one_per_category=st.booleans(),
    required=st.sampled_from([(), ("b",), ("c", "d")]),
    excluded=st.sampled_from([(), ("a",), ("e",)]),
    excluded_items=st.sampled_from([(), (101,), (103, 105)]),
    in_stock_only=st.booleans(),
)


def make_constraints(spec: dict, n_base: int = 0) -> BundleConstraints:
    return BundleConstraints(
        min_size=spec["min_size"] + n_base,
        max_size=spec["min_size"] + spec["extra"] + n_base,
        budget=None if spec["budget"] is None else spec["budget"] + 2.0 * n_base,
        one_per_category=spec["one_per_category"],
        required_categories=spec["required"],
        excluded_categories=spec["excluded"],
        excluded_items=spec["excluded_items"],
        in_stock_only=spec["in_stock_only"],
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), spec=constraint_sets, n_base=st.integers(0, 1))
def test_constraints_always_hold_and_exact_matches_brute_force(seed: int, spec: dict, n_base: int) -> None:
    inst = random_instance(seed, m=10, n_base=n_base)
    con = make_constraints(spec, n_base)
    best = brute_force(inst, con)
    if not np.isfinite(best):
        with pytest.raises(InfeasibleBundle):
            compile_problem(inst, con)
        return
    problem = compile_problem(inst, con)
    exact = enumerate_best(problem)
    ilp = milp_best(problem)
    assert exact.value == pytest.approx(best, abs=1e-9)
    assert ilp.value == pytest.approx(best, abs=1e-6) and ilp.optimal
    base = greedy(problem)
    for method in ("greedy", "local", "genetic"):
        solution = solve(problem, method, SolverConfig(seed=seed))
        assert bundle_violations(inst, con, solution.positions) == [], method
        assert solution.value >= base.value - 1e-9, method
        assert solution.value <= best + 1e-9, method
    for solution in (exact, ilp):
        assert bundle_violations(inst, con, solution.positions) == []


def test_category_mix_is_met_exactly() -> None:
    inst = random_instance(3, m=14)
    con = BundleConstraints(min_size=1, max_size=5, category_mix={"a": 1, "b": 2, "g": 1}, in_stock_only=False)
    problem = compile_problem(inst, con)
    best = brute_force(inst, con)
    for method in ("greedy", "local", "genetic", "exact"):
        solution = solve(problem, method)
        cats = sorted(inst.category[solution.positions].tolist())
        assert cats == ["a", "b", "b", "g"], method
    assert solve(problem, "exact").value == pytest.approx(best)


def test_genetic_is_deterministic_with_a_seed_and_explores() -> None:
    inst = random_instance(11, m=14)
    problem = compile_problem(inst, BundleConstraints(min_size=3, max_size=5, in_stock_only=False))
    a = solve(problem, "genetic", SolverConfig(seed=5))
    b = solve(problem, "genetic", SolverConfig(seed=5))
    assert a.positions.tolist() == b.positions.tolist() and a.value == b.value
    assert a.evaluations > 10


def test_heuristics_close_most_of_the_gap_on_random_instances() -> None:
    """Over many instances the genetic solver finds the optimum more often than greedy."""
    greedy_hits = genetic_hits = 0
    for seed in range(16):
        inst = random_instance(seed, m=12)
        problem = compile_problem(inst, BundleConstraints(min_size=2, max_size=5, in_stock_only=False))
        best = enumerate_best(problem).value
        greedy_hits += solve(problem, "greedy").value >= best - 1e-9
        genetic_hits += solve(problem, "genetic").value >= best - 1e-9
    assert genetic_hits > greedy_hits
    assert genetic_hits >= 14


def test_ilp_matches_enumeration_on_a_larger_instance() -> None:
    inst = random_instance(4, m=14)
    problem = compile_problem(inst, BundleConstraints(min_size=3, max_size=4, budget=20.0, in_stock_only=False))
    assert milp_best(problem).value == pytest.approx(enumerate_best(problem).value, abs=1e-6)


def test_lazy_pairs_give_the_same_greedy_bundle_as_dense() -> None:
    inst = random_instance(8, m=14)
    matrix = inst.pairs.dense()
    calls = []

    def rows(idx: np.ndarray) -> np.ndarray:
        calls.append(len(idx))
        return matrix[idx]

    lazy = Instance(inst.items, inst.relevance, LazyPairs(rows, len(inst)), inst.price, inst.category, inst.in_stock)
    con = BundleConstraints(min_size=2, max_size=4, budget=25.0, in_stock_only=False)
    dense = greedy(compile_problem(inst, con))
    lazy_solution = greedy(compile_problem(lazy, con))
    assert dense.positions.tolist() == lazy_solution.positions.tolist()
    assert sum(calls) <= len(dense.positions) * 2  # only picked rows were computed


def test_greedy_stops_when_no_gain_is_positive() -> None:
    pairs = np.zeros((4, 4))
    inst = Instance(
        np.arange(4), np.array([1.0, 0.5, -0.2, -0.4]), DensePairs(pairs), np.ones(4), np.array(list("abcd"))
    )
    solution = greedy(compile_problem(inst, BundleConstraints(min_size=1, max_size=4)))
    assert solution.positions.tolist() == [0, 1]
