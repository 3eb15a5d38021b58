"""Tasks, baselines and scoring loops for ``benchmarks/bundles.py`` (see its docstring for the protocols)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shoprec.bundles.metrics import mean_scores, same_category_mix, set_scores
from shoprec.bundles.objective import BundleConstraints, InfeasibleBundle
from shoprec.bundles.recommender import Anchor, BundleRecommender
from shoprec.data.dataset import Dataset


@dataclass
class Task:
    """One bundle to generate: anchor items (in the bundle), hidden truth, size to generate, maybe an intent."""

    anchors: list[int]
    truth: list[int]
    n_generate: int
    intent: str | None = None
    intent_vector: np.ndarray | None = None
    truth_categories: list[str] = field(default_factory=list)  # the whole true bundle's categories


@dataclass
class Baselines:
    """Most co-purchased, nearest text neighbours, most popular: fitted on the same training baskets."""

    counts: sp.csr_matrix  # raw co-occurrence counts over every training basket
    popularity: np.ndarray  # baskets per item
    vectors: np.ndarray  # (n_items, d) unit rows

    @classmethod
    def fit(cls, train: Dataset, vectors: np.ndarray) -> Baselines:
        baskets = train.baskets()
        rows = np.repeat(np.arange(len(baskets)), baskets.sizes())
        member = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, baskets.items)), shape=(len(baskets), train.n_items)
        )
        member.sum_duplicates()
        member.data[:] = 1.0
        counts = (member.T @ member).tocsr()
        counts.setdiag(0)
        counts.eliminate_zeros()
        return cls(counts, np.asarray(member.sum(axis=0)).ravel(), vectors)

    def _top(self, scores: np.ndarray, k: int, exclude: list[int]) -> list[int]:
        scores = scores + 1e-9 * self.popularity / max(self.popularity.max(), 1)  # ties: popular first
        scores[exclude] = -np.inf
        return np.argsort(-scores, kind="stable")[:k].tolist()

    def co_purchase(self, task: Task) -> list[int]:
        if task.intent_vector is not None and not task.anchors:  # intent: seed = nearest item by text
            seed = int(np.argmax(self.vectors @ task.intent_vector))
            rest = self._top(np.asarray(self.counts[seed].toarray()).ravel(), task.n_generate - 1, [seed])
            return [seed, *rest]
        scores = np.asarray(self.counts[task.anchors].sum(axis=0)).ravel().astype(np.float64)
        return self._top(scores, task.n_generate, task.anchors)

    def text(self, task: Task) -> list[int]:
        query = task.intent_vector if task.intent_vector is not None else self.vectors[task.anchors].sum(axis=0)
        return self._top((self.vectors @ query).astype(np.float64), task.n_generate, task.anchors)

    def popular(self, task: Task) -> list[int]:
        return self._top(self.popularity.astype(np.float64), task.n_generate, task.anchors)


class BundleMethod:
    """Our bundle as a method: anchors stay in, exactly ``n_generate`` items are added.

    When one item per category cannot fill the size (an invoice larger than the number of text
    clusters), the rule is relaxed for that bundle and counted in :attr:`relaxed`.
    """

    def __init__(self, rec: BundleRecommender, solver: str, one_per_category: bool) -> None:
        self.rec, self.solver, self.one_per_category = rec, solver, one_per_category
        self.relaxed = 0

    def __call__(self, task: Task) -> list[int]:
        size = len(task.anchors) + task.n_generate
        anchor = Anchor(items=tuple(task.anchors), intent=task.intent, intent_vector=task.intent_vector)
        con = BundleConstraints(min_size=size, max_size=size, one_per_category=self.one_per_category)
        con.in_stock_only = False
        try:
            return self.rec.recommend(anchor, con, self.solver).added.tolist()
        except InfeasibleBundle:
            if not self.one_per_category:
                raise
            self.relaxed += 1
            con.one_per_category = False
            return self.rec.recommend(anchor, con, self.solver).added.tolist()


def bundle_method(rec: BundleRecommender, solver: str, one_per_category: bool) -> BundleMethod:
    return BundleMethod(rec, solver, one_per_category)


def score_method(
    method: Callable[[Task], list[int]], tasks: list[Task], categories: np.ndarray | None = None
) -> dict[str, float]:
    """Mean precision, recall, F1 (and exact category-mix rate when categories are given), time per bundle."""
    rows, mixes = [], []
    began = time.perf_counter()
    for task in tasks:
        generated = method(task)
        rows.append(set_scores(generated, task.truth))
        if categories is not None and task.truth_categories:
            whole = list(task.anchors) + list(generated)
            mixes.append(same_category_mix(categories[whole].tolist(), task.truth_categories))
    out = mean_scores(rows)
    if mixes:
        out["category_mix"] = float(np.mean(mixes))
    out["ms_per_bundle"] = 1000 * (time.perf_counter() - began) / max(len(tasks), 1)
    out["bundles"] = len(tasks)
    if isinstance(method, BundleMethod) and method.one_per_category:
        out["relaxed_one_per_category"] = method.relaxed
    return out


# ---------------------------------------------------------------------------- Online Retail
def completion_tasks(dataset: Dataset, start: int, end: int, limit: int, seed: int) -> list[Task]:
    """Invoices in [start, end) with >= 4 distinct items: a random half is hidden, the rest is the cart."""
    rng = np.random.default_rng(seed)
    baskets = dataset.baskets()
    picks = np.flatnonzero((baskets.timestamp >= start) & (baskets.timestamp < end))
    tasks = []
    for b in picks.tolist():
        items = np.unique(baskets.of(b))
        if len(items) >= 4:
            items = rng.permutation(items)
            hidden = len(items) // 2
            tasks.append(Task(items[hidden:].tolist(), items[:hidden].tolist(), hidden))
    if len(tasks) > limit:
        tasks = [tasks[i] for i in sorted(rng.choice(len(tasks), limit, replace=False).tolist())]
    return tasks


def before(dataset: Dataset, time_limit: int) -> Dataset:
    return dataset.subset((dataset.interactions["timestamp"] < time_limit).to_numpy())


# ---------------------------------------------------------------------------- BundleRec
def bundle_dataset(full: Dataset, truth, keep: np.ndarray) -> Dataset:
    """Training baskets = the annotated bundles in ``keep`` (one purchase per bundle item)."""
    from shoprec.data.frames import dataset_from_frames

    users = full.interactions.drop_duplicates("session_id").set_index("session_id")["user"]
    rows = []
    for b in np.flatnonzero(keep).tolist():
        user = int(users.get(truth.session_id[b], 0))
        for item in truth.items[b].tolist():
            rows.append((full.user_vocab.ids()[user], full.item_vocab.ids()[item], truth.timestamp[b], f"B{b}"))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "session_id"]).assign(event="purchase")
    items = full.items[["item_id", "title", "category"]]
    return dataset_from_frames(items, frame, name="bundlerec-train")


def bundle_tasks(truth, keep: np.ndarray, categories: np.ndarray, intents: np.ndarray, seed: int) -> tuple[list, list]:
    """Per kept bundle: an item-anchored task (one random member) and an intent task."""
    rng = np.random.default_rng(seed)
    by_item, by_intent = [], []
    for b in np.flatnonzero(keep).tolist():
        items = truth.items[b].tolist()
        if len(items) < 2:
            continue
        cats = categories[items].tolist()
        anchor = int(items[int(rng.integers(len(items)))])
        rest = [i for i in items if i != anchor]
        by_item.append(Task([anchor], rest, len(rest), truth_categories=cats))
        by_intent.append(Task([], items, len(items), truth.intent[b], intents[b], truth_categories=cats))
    return by_item, by_intent
