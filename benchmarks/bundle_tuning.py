"""Tuning on validation, the optimality-gap study and the latency study for ``benchmarks/bundles.py``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from bundle_tasks import Task, bundle_method, score_method
from shoprec.bundles.complements import ComplementConfig
from shoprec.bundles.constraints import compile_problem
from shoprec.bundles.objective import BundleConstraints, DensePairs, InfeasibleBundle, Instance
from shoprec.bundles.recommender import Anchor, BundleConfig, BundleRecommender
from shoprec.bundles.solvers import SolverConfig, solve
from shoprec.data.frames import dataset_from_frames
from shoprec.models.textside import normalise

COORDINATES: list[tuple[str, list]] = [
    ("complements.cross_text", [0.2, 0.0, 0.5, 1.0]),
    ("complements.within_text", [0.0, 0.5, 1.0]),
    ("bundle.redundancy_weight", [1.0, 0.0, 0.3]),
    ("bundle.popularity_weight", [0.05, 0.0, 0.2]),
    ("bundle.pair_weight", [0.5, 0.0, 1.0]),
    ("complements.category", [0.3, 0.0, 1.0]),
    ("complements.coarse_depth", [2, 3]),
    ("complements.coarse", [0.3, 0.0, 1.0]),
    ("complements.transfer", [0.5, 0.0, 1.0]),
    ("complements.co_basket", [1.0, 0.5, 2.0]),
]
"""Settings searched one at a time (coordinate ascent, one pass) for each choice of
``one_per_category`` (it changes which other settings matter); the first value is the default."""
SOLVERS = ("greedy", "local", "genetic")
FIT_FIELDS = ("coarse_depth", "category_depth", "text_neighbors", "max_basket")
"""Complement settings that change the fitted statistics (the model is refitted when they change)."""


def _apply(settings: dict, key: str, value) -> dict:
    out = dict(settings)
    if "." in key:
        part, name = key.split(".")
        out[part] = dataclasses.replace(settings[part], **{name: value})
    else:
        out[key] = value
    return out


def tune(fit: Callable[[dict], BundleRecommender], tasks: list[Task], quick: bool = False) -> dict:
    """Coordinate search of the bundle weights on validation tasks by the greedy bundle's F1.

    The complement statistics do not depend on the weights, so the model is refitted only when a
    setting in :data:`FIT_FIELDS` changes; otherwise only its weights change between trials.
    """
    settings = {"bundle": BundleConfig(), "complements": ComplementConfig(), "one_per_category": True}
    fitted = {"rec": fit(settings), "key": None}
    log, cache = [], {}

    def model_for(candidate: dict) -> BundleRecommender:
        key = tuple(getattr(candidate["complements"], f) for f in FIT_FIELDS)
        if fitted["key"] not in (None, key):
            fitted["rec"] = fit(candidate)
        fitted["key"] = key
        return fitted["rec"]

    def score(candidate: dict) -> float:
        key = repr(candidate)
        if key not in cache:
            rec = model_for(candidate)
            rec.config, rec.model.config = candidate["bundle"], candidate["complements"]
            f1 = score_method(bundle_method(rec, "greedy", candidate["one_per_category"]), tasks)["f1"]
            cache[key] = f1
        return cache[key]

    winner, best = settings, -1.0
    for one_per_category in (True, False):
        start = dict(settings, one_per_category=one_per_category)
        found, f1 = _ascend(start, score(start), score, log, quick)
        print(f"    one_per_category={one_per_category}: validation F1 {f1:.4f}", flush=True)
        if f1 > best + 1e-6:
            winner, best = found, f1
    settings = winner
    return {"settings": settings, "log": log, "validation_f1": best}


def _ascend(settings: dict, best: float, score: Callable[[dict], float], log: list, quick: bool) -> tuple[dict, float]:
    """Coordinate ascent from ``settings``: one pass over :data:`COORDINATES`."""
    for round_ in range(1):
        before = best
        for key, values in COORDINATES[:2] if quick else COORDINATES:
            for value in values:
                trial = _apply(settings, key, value)
                f1 = score(trial)
                log.append({"one_per_category": settings["one_per_category"], "round": round_, "setting": key})
                log[-1].update(value=value, validation_f1=f1)
                if f1 > best + 1e-6:
                    best, settings = f1, trial
        if best <= before + 1e-6:
            break
    return settings, best


def gap_study(rec: BundleRecommender, anchors: list[list[int]], budget: float | None) -> dict:
    """Heuristics vs the exact optimum on 30-candidate instances (size 2-6, optional extra budget)."""
    problems, skipped = [], 0
    for items in anchors:
        price = float(np.nansum(rec.info.price[items]))
        con = BundleConstraints(
            min_size=2, max_size=6, budget=None if budget is None else price + budget, in_stock_only=False
        )
        try:
            problems.append(compile_problem(rec.instance(Anchor(items=tuple(items)), con, pool_size=30), con))
        except InfeasibleBundle:
            skipped += 1
    out = compare_solvers(problems, rec.solver_config)
    out["exact"]["skipped_infeasible"] = skipped
    return out


def random_gap_study(n: int = 40, m: int = 30, seed: int = 0) -> dict:
    """The same comparison on random quadratic instances (pair values of both signs, size 3-8, budget,
    one per category): harder than the near-additive objectives of the real data."""
    rng = np.random.default_rng(seed)
    problems = []
    for _ in range(n):
        pairs = rng.normal(0.0, 0.5, (m, m))
        pairs = (pairs + pairs.T) / 2
        np.fill_diagonal(pairs, 0.0)
        inst = Instance(
            np.arange(m),
            rng.normal(0.2, 0.5, m),
            DensePairs(pairs),
            rng.uniform(1, 10, m),
            rng.integers(0, 12, m).astype(str),
        )
        con = BundleConstraints(min_size=3, max_size=8, budget=float(rng.uniform(20, 40)))
        problems.append(compile_problem(inst, con))
    return compare_solvers(problems, SolverConfig(seed=seed))


def compare_solvers(problems: list, config: SolverConfig) -> dict:
    """Per heuristic: mean and max relative gap to the exact optimum, share optimal, mean time."""
    gaps: dict[str, list[float]] = {s: [] for s in SOLVERS}
    times: dict[str, list[float]] = {s: [] for s in (*SOLVERS, "exact")}
    proven = []
    for problem in problems:
        exact = solve(problem, "exact", config)
        proven.append(bool(exact.optimal))
        times["exact"].append(exact.seconds)
        for s in SOLVERS:
            sol = solve(problem, s, config)
            gaps[s].append((exact.value - sol.value) / max(abs(exact.value), 1e-9))
            times[s].append(sol.seconds)
    out = {}
    for s in SOLVERS:
        g = np.array(gaps[s]) if gaps[s] else np.array([np.nan])
        out[s] = {"mean_gap": float(g.mean()), "max_gap": float(g.max()), "optimal_share": float((g <= 1e-9).mean())}
        out[s].update(ms=1000 * float(np.mean(times[s] or [np.nan])), instances=len(gaps[s]))
    out["exact"] = {"mean_gap": 0.0, "max_gap": 0.0, "optimal_share": float(np.mean(proven or [0.0]))}
    out["exact"].update(ms=1000 * float(np.mean(times["exact"] or [np.nan])), instances=len(proven))
    return out


def synthetic_shop(n: int, seed: int = 0):
    """``n`` items in n/100 leaves with planted leaf complements; 2n baskets; clustered 64-d text vectors."""
    rng = np.random.default_rng(seed)
    n_leaves = max(20, n // 100)
    leaf = rng.integers(n_leaves, size=n)
    order = np.argsort(leaf, kind="stable")
    starts = np.searchsorted(leaf[order], np.arange(n_leaves + 1))
    popularity = rng.pareto(1.5, n) + 1.0
    n_baskets = 2 * n
    first = rng.choice(n, n_baskets, p=popularity / popularity.sum())
    partner_leaf = (leaf[first] + 1) % n_leaves
    size = np.maximum(starts[partner_leaf + 1] - starts[partner_leaf], 1)
    second = order[np.minimum(starts[partner_leaf] + rng.integers(0, 1 << 30, n_baskets) % size, n - 1)]
    third = rng.choice(n, n_baskets, p=popularity / popularity.sum())
    keep3 = rng.random(n_baskets) < 0.5
    basket = np.r_[np.arange(n_baskets), np.arange(n_baskets), np.flatnonzero(keep3)]
    item = np.r_[first, second, third[keep3]]
    ids = np.array([f"I{i}" for i in range(n)], dtype=object)
    items = pd.DataFrame({"item_id": ids, "title": ids, "category": [f"C{x // 10} > L{x}" for x in leaf]}).assign(
        price=np.round(rng.lognormal(3.0, 0.6, n), 2)
    )
    frame = pd.DataFrame(
        {
            "user_id": (basket % max(n // 5, 10)).astype(str),
            "item_id": ids[item],
            "timestamp": 1_700_000_000 + basket * 60,
            "session_id": np.char.add("B", basket.astype(str)),
            "event": "purchase",
        }
    )
    centroids = rng.normal(size=(n_leaves, 64))
    vectors = normalise((centroids[leaf] + 0.7 * rng.normal(size=(n, 64))).astype(np.float32))
    return dataset_from_frames(items, frame, name=f"synthetic-{n}"), vectors


def latency_study(quick: bool = False, sizes: tuple[int, ...] = (1_000, 10_000, 100_000), repeats: int = 15) -> dict:
    """Milliseconds per bundle (3-5 items, budget) drawn from every item of synthetic catalogues."""
    out = {}
    for n in sizes[:2] if quick else sizes:
        began = time.perf_counter()
        dataset, vectors = synthetic_shop(n)
        rec = BundleRecommender().fit(dataset, vectors)
        row = {"fit_s": time.perf_counter() - began}
        rng = np.random.default_rng(1)
        anchors = rng.choice(n, repeats, replace=False).tolist()
        con = BundleConstraints(min_size=3, max_size=5, budget=150.0, in_stock_only=False)
        full = BundleRecommender(dataclasses.replace(rec.config, pool_size=n))
        full.model, full.info, full.dataset = rec.model, rec.info, rec.dataset
        for name, model, solver in [(s, rec, s) for s in (*SOLVERS, "exact")] + [
            ("greedy, no pruning", full, "greedy")
        ]:
            times = []
            for a in anchors:
                start = time.perf_counter()
                try:
                    model.recommend(Anchor(items=(a,)), con, solver)
                except InfeasibleBundle:
                    continue
                times.append(time.perf_counter() - start)
            row[f"{name} ms"] = 1000 * float(np.median(times)) if times else float("nan")
        out[f"{n:,} candidates"] = row
        print(f"  latency {n:,}: {row}", flush=True)
    return out
