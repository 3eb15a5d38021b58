"""Evaluating cross-category recommendation: held-out purchases in categories new to the shopper.

Protocol (:func:`cross_category_split`), temporal: models learn from every event before the
cutoff (newest timestamp - ``test_days``); the truth of a user is what they bought from the cutoff
on in a category they never *bought* in training (``history_events``, purchases by default, also
define the history the models read). Never-bought rather than never-viewed, because shoppers view
far more categories than they buy, and a suggestion in a category only browsed is still a new
kind of purchase. Purchases of items without a category are dropped, and so are users without
a training purchase or left without truth; every drop is counted in ``info``.

Every method ranks the full catalogue restricted to the categories the user's history does not
hold, so the metrics compare like with like (:func:`evaluate_cross_category`): the
:class:`~shoprec.pipeline.crosscat.CrossCategory` models given, and baselines: ``popularity``
(most-bought items), ``item-graph`` (sum over the history of co-basket cosines) and ``ease``
(the registered EASE model), each restricted to new categories.

>>> split = cross_category_split(dataset, categories, test_days=30)         # doctest: +SKIP
>>> model = CrossCategory().fit(split.train, vectors, categories)           # doctest: +SKIP
>>> evaluate_cross_category(split, {"attention": model})["attention"]       # doctest: +SKIP
{'hr@10': 0.21, 'ndcg@10': 0.11, 'recall@20': 0.19, 'attention_entropy': 0.62, ...}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shoprec.data.dataset import Dataset
from shoprec.errors import ModelError
from shoprec.eval.metrics import accuracy_metrics
from shoprec.eval.splits import temporal_split
from shoprec.models.base import top_k
from shoprec.pipeline.crosscat import CrossCategory, category_codes, new_category_mask
from shoprec.pipeline.crosscat_train import event_histories

BASELINES = ("popularity", "item-graph", "ease")
"""Baselines :func:`evaluate_cross_category` runs, each restricted to categories new to the user."""
METRICS = ("hr@10", "ndcg@10", "recall@20")


@dataclass
class CrossCategorySplit:
    """Training data, the evaluated users' histories, and their new-category purchases."""

    train: Dataset
    users: np.ndarray  # (n,) evaluated user indices
    histories: list[np.ndarray]  # per evaluated user: distinct training items of history_events, oldest first
    truth: sp.csr_matrix  # (n, n_items): row j = held-out new-category purchases of users[j]
    categories: np.ndarray  # (n_items,) labels, "" unknown
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"CrossCategorySplit({len(self.users):,} users, {self.truth.nnz:,} new-category purchases)"


def cross_category_split(
    dataset: Dataset,
    categories: Sequence[str] | np.ndarray,
    test_days: float = 30.0,
    stage: str = "test",
    history_events: tuple[str, ...] = ("purchase",),
) -> CrossCategorySplit:
    """Temporal split whose truth holds only purchases in categories the user never bought in training.

    ``stage="valid"`` moves the window back by ``test_days`` (train before it), for tuning.
    """
    labels, codes = category_codes(categories, dataset.n_items)
    base = temporal_split(dataset, test_days=test_days, variant="repeat", stage=stage, events=("purchase",))
    histories = event_histories(base.train, tuple(history_events))
    truth = base.truth.tocoo()
    cat = codes[truth.col]
    held = _held_categories(histories, codes)
    known = cat >= 0
    new = known & ~np.asarray(held[truth.row, np.maximum(cat, 0)]).ravel()
    has_history = histories.lengths() > 0
    keep = new & has_history[truth.row]
    kept = sp.csr_matrix((truth.data[keep], (truth.row[keep], truth.col[keep])), shape=truth.shape)
    users = np.flatnonzero(np.diff(kept.indptr) > 0)
    truth_users = np.unique(truth.row)
    info = {
        "protocol": f"temporal, last {test_days:g} days ({stage}); truth = purchases in categories never "
        f"{'/'.join(history_events)} in training",
        "users_evaluated": len(users),
        "users_skipped": {
            f"no training {'/'.join(history_events)}": int((~has_history[truth_users]).sum()),
            "no purchase in a new category": int(has_history[truth_users].sum()) - len(users),
        },
        "truth_items": int(kept.nnz),
        "truth_dropped": {
            "category unknown": int((~known).sum()),
            "category already in history": int((known & ~new).sum()),
        },
        "history_events": list(history_events),
        "categories": int(codes.max()) + 1,
        "mean_history": float(histories.lengths()[users].mean()) if len(users) else 0.0,
        "base": base.info,
    }
    if not len(users):
        raise ModelError(
            f"cross-category split of '{dataset.name}': no user bought in a category new to them after "
            f"{base.info['cutoff_date']}; use a longer test window or finer categories"
        )
    return CrossCategorySplit(base.train, users, [histories.of(u) for u in users], kept[users], labels, info)


def evaluate_cross_category(
    split: CrossCategorySplit,
    models: dict[str, CrossCategory] | None = None,
    baselines: Sequence[str] = BASELINES,
    k: int = 20,
    batch_size: int = 256,
) -> dict[str, dict]:
    """HR@10, NDCG@10, Recall@20 (and mean attention entropy for the models) per method.

    ``models`` must be fitted on ``split.train`` with ``split.categories``. Entropy is in nats over
    each recommended item's attention column, with ``attention_entropy_uniform`` (the entropy of
    uniform attention over the same history) for scale.
    """
    unknown = sorted(set(baselines) - set(BASELINES))
    if unknown:
        raise ModelError(
            f"cross-category evaluation: unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}"
        )
    _, codes = category_codes(split.categories, split.train.n_items)
    out: dict[str, dict] = {}
    for name in baselines:
        began = time.perf_counter()
        scorer = _baseline(name, split)
        fitted = time.perf_counter()
        recs = _restricted_top_k(scorer, split, codes, k, batch_size)
        out[name] = {**_metrics(recs, split.truth), "fit_s": fitted - began, "score_s": time.perf_counter() - fitted}
    for name, model in (models or {}).items():
        if not model.is_fitted or not np.array_equal(model.categories, split.categories):
            raise ModelError(f"cross-category evaluation: model {name!r} must be fitted with the split's categories")
        began = time.perf_counter()
        recs, _, attention = model.recommend(split.histories, k=k)
        out[name] = {**_metrics(recs, split.truth), "score_s": time.perf_counter() - began, "mode": model.mode}
        out[name].update(attention_entropy(attention, model.config.max_history))
    return out


def attention_entropy(attention: list[np.ndarray], max_history: int) -> dict[str, float]:
    """Mean entropy (nats) of the attention columns of recommended items, and of uniform attention."""
    entropies, uniform = [], []
    for weights in attention:
        cols = weights[:, ~np.isnan(weights).all(axis=0)]  # (h, recommended)
        if not cols.shape[1]:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(cols > 0, -cols * np.log(cols), 0.0)
        entropies.append(terms.sum(axis=0))
        uniform.append(np.full(cols.shape[1], np.log(min(len(weights), max_history))))
    if not entropies:
        return {"attention_entropy": float("nan"), "attention_entropy_uniform": float("nan")}
    return {
        "attention_entropy": float(np.concatenate(entropies).mean()),
        "attention_entropy_uniform": float(np.concatenate(uniform).mean()),
    }


def _metrics(recs: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    values = accuracy_metrics(recs, truth, ks=(10, 20))
    return {"users": int(truth.shape[0]), **{m: float(np.nanmean(values[m])) for m in METRICS}}


def _baseline(name: str, split: CrossCategorySplit) -> Callable[[np.ndarray, list[np.ndarray]], np.ndarray]:
    """A function (rows of the split, their histories) -> dense scores (len(rows), n_items)."""
    from shoprec.models import create_model
    from shoprec.models.itemgraph import ItemGraph

    train = split.train
    if name in ("popularity", "ease"):
        model = create_model(name).fit(train)
        return lambda rows, _: model.score(split.users[rows])
    graph = ItemGraph.build(train, co_basket=True, consecutive=False, text_neighbors=0).edges("co_basket")
    buyers = np.asarray((train.matrix("binary") > 0).sum(axis=0), dtype=np.float32).ravel()
    tiebreak = 1e-6 * buyers / max(buyers.max(), 1.0)

    def graph_sum(rows: np.ndarray, histories: list[np.ndarray]) -> np.ndarray:
        lengths = [len(h) for h in histories]
        owner = np.repeat(np.arange(len(histories)), lengths)
        member = sp.csr_matrix(
            (np.ones(len(owner), dtype=np.float32), (owner, np.concatenate(histories))),
            shape=(len(histories), train.n_items),
        )
        return (member @ graph).toarray() + tiebreak  # (B, N): summed co-basket cosine to the history

    return graph_sum


def _restricted_top_k(
    scorer: Callable, split: CrossCategorySplit, codes: np.ndarray, k: int, batch_size: int
) -> np.ndarray:
    """Top-``k`` per evaluated user among items of categories new to their history."""
    recs = np.full((len(split.users), k), -1, dtype=np.int64)
    for start in range(0, len(split.users), batch_size):
        rows = np.arange(start, min(start + batch_size, len(split.users)))
        histories = [split.histories[r] for r in rows]
        scores = np.asarray(scorer(rows, histories), dtype=np.float32)
        scores[~new_category_mask(histories, codes)] = -np.inf
        recs[rows] = top_k(scores, k)[0]
    return recs


def _held_categories(histories, codes: np.ndarray) -> sp.csr_matrix:
    """(n_users, n_categories + 1) CSR, True where the user's history holds the category."""
    owner = np.repeat(np.arange(len(histories.indptr) - 1), histories.lengths())
    cat = codes[histories.items]
    n_cat = int(codes.max()) + 1
    ok = cat >= 0
    return sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=bool), (owner[ok], cat[ok])), shape=(len(histories.indptr) - 1, n_cat + 1)
    )
