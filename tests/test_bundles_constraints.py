"""Bundle constraints: contradictions and infeasible limits name the constraint that binds."""

from __future__ import annotations

import numpy as np
import pytest

from shoprec.bundles.constraints import bundle_violations, compile_problem
from shoprec.bundles.objective import BundleConstraints, DensePairs, InfeasibleBundle, Instance


def shop(base: int = 1) -> Instance:
    """Candidates: two cameras bags (c), two memory cards (m), one tripod (t, out of stock)."""
    n = 5
    return Instance(
        items=np.arange(10, 10 + n),
        relevance=np.array([1.0, 0.8, 0.9, 0.3, 0.5]),
        pairs=DensePairs(np.zeros((n, n))),
        price=np.array([30.0, 20.0, 15.0, 8.0, 25.0]),
        category=np.array(["bag", "bag", "card", "card", "tripod"], dtype=object),
        in_stock=np.array([True, True, True, True, False]),
        base_items=np.arange(base),
        base_price=np.full(base, 100.0),
        base_category=np.array(["camera"] * base, dtype=object),
    )


def binding(inst: Instance, con: BundleConstraints) -> InfeasibleBundle:
    with pytest.raises(InfeasibleBundle) as err:
        compile_problem(inst, con)
    return err.value


def test_budget_below_cheapest_valid_bundle_says_what_it_costs() -> None:
    err = binding(shop(), BundleConstraints(min_size=3, max_size=3, budget=120.0))
    assert err.constraint == "budget"
    # camera 100 + cheapest card 8 + cheapest bag 20 (distinct categories; the tripod is out of stock)
    assert "128.00" in str(err) and "120.00" in str(err)


def test_budget_respects_repeats_when_allowed() -> None:
    con = BundleConstraints(min_size=3, max_size=3, budget=120.0, one_per_category=False)
    err = binding(shop(), con)
    assert "123.00" in str(err)  # 100 + 8 + 15: two cards allowed
    problem = compile_problem(shop(), BundleConstraints(min_size=3, max_size=3, budget=123.0, one_per_category=False))
    assert problem.completion([])[0] == pytest.approx(23.0)


def test_contradictory_categories() -> None:
    err = binding(shop(), BundleConstraints(required_categories=("bag",), excluded_categories=("bag",)))
    assert err.constraint == "categories" and "'bag'" in str(err)
    err = binding(shop(), BundleConstraints(excluded_categories=("camera",)))
    assert err.constraint == "excluded categories"


def test_required_category_without_eligible_item_names_it() -> None:
    err = binding(shop(), BundleConstraints(required_categories=("tripod",)))
    assert err.constraint == "required categories" and "tripod" in str(err)
    assert compile_problem(shop(), BundleConstraints(required_categories=("tripod",), in_stock_only=False))


def test_too_many_required_categories_for_the_size() -> None:
    err = binding(shop(), BundleConstraints(max_size=2, required_categories=("bag", "card")))
    assert err.constraint == "required categories"


def test_required_and_excluded_item() -> None:
    err = binding(shop(), BundleConstraints(required_items=(0,), excluded_items=(0,)))
    assert err.constraint == "excluded items"


def test_size_beyond_available_categories() -> None:
    err = binding(shop(), BundleConstraints(min_size=4, max_size=4))
    assert err.constraint == "size" and "2 categories" in str(err)


def test_category_mix_shortage_and_contradiction() -> None:
    err = binding(shop(), BundleConstraints(min_size=1, max_size=4, category_mix={"camera": 1, "tripod": 1}))
    assert err.constraint == "category mix" and "tripod" in str(err)
    err = binding(shop(), BundleConstraints(min_size=1, max_size=4, category_mix={"bag": 1}))
    assert err.constraint == "category mix" and "camera" in str(err)
    err = binding(shop(), BundleConstraints(min_size=1, max_size=2, category_mix={"camera": 1, "bag": 2}))
    assert err.constraint == "size"


def test_bad_settings_are_rejected_at_construction() -> None:
    with pytest.raises(InfeasibleBundle, match="min_size 5 is above max_size 3"):
        BundleConstraints(min_size=5, max_size=3)
    with pytest.raises(InfeasibleBundle, match="budget"):
        BundleConstraints(budget=-1.0)


def test_out_of_stock_anchor_and_unpriced_anchor() -> None:
    inst = shop()
    inst.base_in_stock[:] = False
    assert binding(inst, BundleConstraints()).constraint == "stock"
    inst = shop()
    inst.base_price[:] = np.nan
    assert binding(inst, BundleConstraints(budget=500.0)).constraint == "budget"


def test_ruled_out_candidates_are_counted() -> None:
    problem = compile_problem(shop(), BundleConstraints(excluded_items=(10,), budget=1000.0))
    assert "1 candidate(s) ruled out: excluded item" in problem.notes
    assert "1 candidate(s) ruled out: out of stock" in problem.notes
    assert problem.eligible.tolist() == [False, True, True, True, False]


def test_audit_catches_each_broken_rule() -> None:
    inst = shop()
    con = BundleConstraints(min_size=2, max_size=3, budget=130.0, excluded_categories=("tripod",))
    assert bundle_violations(inst, con, [1, 3]) == []
    assert any("two items share" in v for v in bundle_violations(inst, con, [2, 3]))
    assert any("over budget" in v for v in bundle_violations(inst, con, [0, 2]))
    assert any("excluded category" in v for v in bundle_violations(inst, con, [4]))
    assert any("size" in v for v in bundle_violations(inst, con, [0, 2, 4]))
