"""Compile constraints against an instance, say which one binds when none can hold, and audit bundles.

:func:`compile_problem` checks the base (anchors and required items) against the constraints,
marks which candidates may be chosen (every candidate ruled out is counted in the problem's notes),
and proves that at least one valid bundle exists by computing the cheapest completion; when none
exists it raises :class:`~shoprec.bundles.objective.InfeasibleBundle` naming the binding constraint
with the numbers behind it. :func:`bundle_violations` audits a finished bundle straight from the raw
facts, independently of the compiled masks, so tests can hold every solver to it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np

from shoprec.bundles.objective import EPS, BundleConstraints, InfeasibleBundle, Instance, Problem, _codes
from shoprec.errors import ShoprecError


def _check_base(inst: Instance, con: BundleConstraints, label: dict[int, str]) -> None:
    """Contradictions visible from the base and the constraints alone."""
    base = inst.base_items.tolist()
    name = lambda i: label.get(i, f"item {i}")  # noqa: E731
    clash = sorted(set(base) & set(con.excluded_items))
    if clash:
        raise InfeasibleBundle("excluded items", f"{name(clash[0])} is both an anchor or required item and excluded")
    both = sorted(set(con.required_categories) & set(con.excluded_categories))
    if both:
        raise InfeasibleBundle("categories", f"category '{both[0]}' is both required and excluded")
    for item, cat, stock, price in zip(base, inst.base_category, inst.base_in_stock, inst.base_price, strict=True):
        if cat and cat in con.excluded_categories:
            raise InfeasibleBundle("excluded categories", f"{name(item)} is in excluded category '{cat}'")
        if con.in_stock_only and not stock:
            raise InfeasibleBundle("stock", f"{name(item)} is out of stock", "Drop it or allow out-of-stock items")
        if con.budget is not None and np.isnan(price):
            raise InfeasibleBundle("budget", f"{name(item)} has no price, so no budget can be checked")
    if len(base) > con.max_size:
        raise InfeasibleBundle("size", f"{len(base)} anchor and required items exceed max_size {con.max_size}")
    cats = [c for c in inst.base_category.tolist() if c]
    if con.category_mix is None and con.one_per_category:
        twice = [c for c, n in Counter(cats).items() if n > 1]
        if twice:
            raise InfeasibleBundle(
                "one per category", f"two anchor or required items share category '{twice[0]}'", "Allow repeats"
            )
    if con.budget is not None and float(inst.base_price.sum()) > con.budget + EPS:
        raise InfeasibleBundle(
            "budget",
            f"anchor and required items alone cost {inst.base_price.sum():.2f}, over the budget {con.budget:.2f}",
        )
    if con.category_mix is not None:
        _check_mix(inst, con)


def _check_mix(inst: Instance, con: BundleConstraints) -> None:
    mix = con.category_mix or {}
    total = sum(mix.values())
    if not con.min_size <= total <= con.max_size:
        raise InfeasibleBundle(
            "size", f"the category mix holds {total} items but the size range is {con.min_size}-{con.max_size}"
        )
    for cat, n in Counter(inst.base_category.tolist()).items():
        if mix.get(cat, 0) < n:
            raise InfeasibleBundle("category mix", f"anchor category '{cat or 'unknown'}' is not in the mix {mix}")
    for cat in list(con.required_categories) + list(con.excluded_categories):
        if (cat in mix) != (cat in con.required_categories):
            raise InfeasibleBundle("category mix", f"category '{cat}' contradicts the mix {mix}")


def _eligible(inst: Instance, con: BundleConstraints, notes: list[str]) -> np.ndarray:
    """Candidates that may be chosen, with each reason for ruling one out counted."""
    m = len(inst)
    base_cats = {c for c in inst.base_category.tolist() if c}
    rules = {
        "excluded item": np.isin(inst.items, np.asarray(con.excluded_items, dtype=np.int64)),
        "already in the bundle": np.isin(inst.items, inst.base_items),
        "out of stock": ~inst.in_stock if con.in_stock_only else np.zeros(m, bool),
        "excluded category": np.isin(inst.category, list(con.excluded_categories)),
        "no price (a budget is set)": np.isnan(inst.price) if con.budget is not None else np.zeros(m, bool),
    }
    if con.category_mix is not None:
        rules["category not in the mix"] = ~np.isin(inst.category, list(con.category_mix))
    elif con.one_per_category:
        rules["category of an anchor item"] = np.isin(inst.category, list(base_cats)) & (inst.category != "")
    ok = np.ones(m, bool)
    for reason, hit in rules.items():
        n = int((hit & ok).sum())
        if n:
            notes.append(f"{n} candidate(s) ruled out: {reason}")
        ok &= ~hit
    return ok


def compile_problem(inst: Instance, con: BundleConstraints, labels: dict[int, str] | None = None) -> Problem:
    """Masks and codes for the solvers; raises :class:`InfeasibleBundle` when no valid bundle exists.

    ``labels`` maps item indices to names used in messages (titles or ids).
    """
    labels = labels or {}
    missing = sorted(set(con.required_items) - set(inst.base_items.tolist()))
    if missing:
        raise ShoprecError(f"required item {missing[0]} is not in the instance's base: add required items to the base")
    _check_base(inst, con, labels)
    lookup: dict[str, int] = {}
    base_cats = _codes(inst.base_category, lookup)
    cat = _codes(inst.category, lookup)
    notes: list[str] = []
    eligible = _eligible(inst, con, notes)
    b = len(inst.base_items)
    mix_left = None
    required = np.empty(0, dtype=np.int64)
    if con.category_mix is not None:
        mix_left = {lookup.setdefault(c, len(lookup)): n for c, n in con.category_mix.items()}
        for c in base_cats.tolist():
            mix_left[c] -= 1
        size_lo = size_hi = sum(con.category_mix.values()) - b
    else:
        size_lo, size_hi = max(0, con.min_size - b), con.max_size - b
        codes = [lookup.setdefault(c, len(lookup)) for c in con.required_categories]
        required = np.array(sorted(set(codes) - set(base_cats.tolist())), dtype=np.int64)
    names = [""] * len(lookup)
    for key, code in lookup.items():
        names[code] = "unknown" if key.startswith("\x00") else key
    budget_left = np.inf if con.budget is None else con.budget - float(inst.base_price.sum())
    problem = Problem(
        inst, con, eligible, cat, base_cats, size_lo, size_hi, budget_left, required, mix_left, names, notes
    )
    _prove_feasible(problem)
    return problem


def _prove_feasible(problem: Problem) -> None:
    extra, reason = problem.completion([])
    if np.isfinite(extra):
        return
    con, inst = problem.constraints, problem.instance
    if reason == "budget":
        free = dataclasses.replace(problem, budget_left=np.inf)
        cheapest, why = free.completion([])
        if not np.isfinite(cheapest):
            reason = why
        else:
            base = float(inst.base_price.sum())
            raise InfeasibleBundle(
                "budget",
                f"the budget {con.budget:.2f} is below the cheapest valid bundle, which costs {base + cheapest:.2f} "
                f"(anchor and required items {base:.2f} + at least {problem.size_lo} more item(s) "
                f"{_rule_words(con)})",
                "Raise the budget, lower min_size or relax the category rules",
            )
    n_ok = int(problem.eligible.sum())
    if reason == "category mix":
        raise InfeasibleBundle("category mix", _mix_shortage(problem), "Change the mix or the exclusions")
    if reason == "required categories":
        raise InfeasibleBundle("required categories", _required_shortage(problem))
    n_cats = len(set(problem.cat[problem.eligible].tolist()))
    what = f"{n_ok} eligible candidate(s) in {n_cats} categor{'y' if n_cats == 1 else 'ies'}"
    raise InfeasibleBundle(
        "size",
        f"the bundle needs {problem.size_lo} more item(s) {_rule_words(con)} but there are only {what}"
        + (f" ({'; '.join(problem.notes)})" if problem.notes else ""),
        "Lower min_size, allow several items per category, or widen the candidates",
    )


def _rule_words(con: BundleConstraints) -> str:
    if con.category_mix is not None:
        return "matching the category mix"
    return "from distinct categories" if con.one_per_category else "(any categories)"


def _mix_shortage(problem: Problem) -> str:
    for code, need in (problem.mix_left or {}).items():
        have = int((problem.eligible & (problem.cat == code)).sum())
        if have < need:
            return f"the mix needs {need} more item(s) of '{problem.names[code]}' but {have} are eligible"
    return "the cheapest items of the mix exceed the budget"


def _required_shortage(problem: Problem) -> str:
    if len(problem.required_cats) > problem.size_hi:
        return f"{len(problem.required_cats)} required categories do not fit in {problem.size_hi} free slot(s)"
    for code in problem.required_cats.tolist():
        if not (problem.eligible & (problem.cat == code)).any():
            return f"required category '{problem.names[code]}' has no eligible candidate"
    return "the required categories cannot all be covered"


def bundle_violations(inst: Instance, con: BundleConstraints, chosen: Sequence[int]) -> list[str]:
    """Every constraint the bundle ``base + candidates[chosen]`` breaks (empty when valid).

    Works from the raw instance facts only, as an independent audit of any solver.
    """
    chosen = [int(c) for c in chosen]
    items = inst.base_items.tolist() + inst.items[chosen].tolist()
    cats = inst.base_category.tolist() + inst.category[chosen].tolist()
    prices = inst.base_price.tolist() + inst.price[chosen].tolist()
    stock = inst.base_in_stock.tolist() + inst.in_stock[chosen].tolist()
    out = []
    if len(set(items)) != len(items):
        out.append("an item appears twice")
    if con.category_mix is not None:
        if Counter(cats) != Counter(con.category_mix):
            out.append(f"category mix {dict(Counter(cats))} differs from {con.category_mix}")
    else:
        if not con.min_size <= len(items) <= con.max_size:
            out.append(f"size {len(items)} outside {con.min_size}-{con.max_size}")
        known = [c for c in cats if c]
        if con.one_per_category and len(set(known)) != len(known):
            out.append("two items share a category")
    if con.budget is not None and (any(np.isnan(prices)) or sum(prices) > con.budget + EPS):
        out.append(f"total price {sum(prices):.2f} over budget {con.budget:.2f}")
    out += [f"excluded item {i}" for i in items if i in set(con.excluded_items)]
    out += [f"excluded category {c}" for c in cats if c in set(con.excluded_categories)]
    out += [f"required category {c} missing" for c in con.required_categories if c not in cats]
    out += [f"required item {i} missing" for i in con.required_items if i not in items]
    if con.in_stock_only and not all(stock):
        out.append("an item is out of stock")
    return out
