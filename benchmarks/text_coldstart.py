"""Item cold start on Online Retail: can anything recommend products nobody has bought yet?

    .venv/bin/python benchmarks/text_coldstart.py
    .venv/bin/python benchmarks/text_coldstart.py --models content,popularity --cache-dir /tmp/vectors

Protocol: the temporal split of ``benchmarks/baselines.py`` (last 30 days = test window, training on
everything before). **Cold items** are items with no training event whose first sale falls in the
window. Evaluated: customers with a training history who bought at least one cold item in the
window; their truth is only the cold items they bought (warm purchases are ignored), so the
metrics measure finding new products. Customers without history who bought cold items are counted
but not evaluated (no model knows anything about them). Each model ranks

- ``full``: the whole catalogue minus the customer's training items (cold items compete with
  every established product), and
- ``cold``: the cold items only (``candidates`` = cold items: a "new arrivals" shelf).

Models: ``content`` (text of each item = its Online Retail ``Description``, short upper-case
phrases such as ``SPOTS ON RED BOOKCOVER TAPE``, encoded with ``minilm``, which lower-cases its
input) and the collaborative baselines ``popularity``, ``itemknn``, ``als`` and ``ease`` at their
default settings. Collaborative models have no signal for an item without interactions: they
give every cold item the same score (``ranks_cold`` = share of customers whose cold-item scores
are not all equal), so their ``cold`` lists are an arbitrary tie order; compare them with the
``random`` row (seeded random rankings of the same candidates, mean of 20). Results go to
``benchmarks/results/text_coldstart.json``; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shoprec.data.adapters import load_dataset
from shoprec.data.dataset import Dataset
from shoprec.eval import temporal_split
from shoprec.eval.metrics import accuracy_metrics
from shoprec.models import create_model
from shoprec.models.base import Recommender

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
DATA_FILE = "online-retail-2010-2011/online_retail.parquet"
MODELS = ("content", "popularity", "itemknn", "als", "ease")
KS = (5, 10, 20)
METRICS = ("recall", "ndcg", "hr")


@dataclass
class ColdSetup:
    """The cold-item evaluation: training data, cold items, evaluated customers and their truth."""

    train: Dataset
    cold_items: np.ndarray  # (n_cold,) item indices with no training event, bought in the window
    users: np.ndarray  # (n_users,) evaluated customers (with training history)
    truth: sp.csr_matrix  # (n_users, n_items) cold items each evaluated customer bought
    info: dict


def cold_setup(dataset: Dataset, test_days: float) -> ColdSetup:
    """Split at ``test_days`` before the newest event and collect the cold items and customers."""
    split = temporal_split(dataset, test_days=test_days, variant="repeat")
    train = split.train
    cutoff = split.info["cutoff"]
    frame = dataset.interactions
    window = (frame["timestamp"].to_numpy() >= cutoff) & (frame["event"] == "purchase").to_numpy()
    users, items = frame["user"].to_numpy()[window], frame["item"].to_numpy()[window]
    trained = np.bincount(train.interactions["item"].to_numpy(), minlength=dataset.n_items) > 0
    sold = np.bincount(items, minlength=dataset.n_items) > 0
    cold_items = np.flatnonzero(sold & ~trained)
    is_cold = ~trained[items]
    has_history = np.bincount(train.interactions["user"].to_numpy(), minlength=dataset.n_users) > 0
    keep = is_cold & has_history[users]
    evaluated = np.unique(users[keep])
    row = np.full(dataset.n_users, -1)
    row[evaluated] = np.arange(len(evaluated))
    truth = sp.csr_matrix(
        (np.ones(keep.sum(), dtype=np.float32), (row[users[keep]], items[keep])),
        shape=(len(evaluated), dataset.n_items),
    )
    truth.sum_duplicates()
    truth.data[:] = 1.0
    info = {
        "cutoff_date": split.info["cutoff_date"],
        "items": dataset.n_items,
        "items_sold_in_window": int(sold.sum()),
        "cold_items": len(cold_items),
        "window_purchases": int(window.sum()),
        "window_purchases_of_cold_items": int(is_cold.sum()),
        "customers_in_window": len(np.unique(users)),
        "customers_buying_cold_items": len(np.unique(users[is_cold])),
        "evaluated_customers": len(evaluated),
        "cold_customers_buying_cold_items_not_evaluated": len(np.unique(users[is_cold & ~has_history[users]])),
        "truth_pairs": int(truth.nnz),
        "mean_cold_items_per_evaluated_customer": float(truth.nnz / max(len(evaluated), 1)),
    }
    return ColdSetup(train, cold_items, evaluated, truth, info)


def summarise(recs: np.ndarray, truth: sp.csr_matrix) -> dict[str, float]:
    """Mean and 95% half-width of recall, NDCG and HR at every K."""
    per_user = accuracy_metrics(recs, truth, KS)
    out = {}
    for k in KS:
        for name in METRICS:
            values = per_user[f"{name}@{k}"]
            out[f"{name}@{k}"] = float(np.nanmean(values))
            out[f"{name}@{k}_ci95"] = float(1.96 * np.nanstd(values, ddof=1) / np.sqrt(len(values)))
    return out


def cold_score_spread(model: Recommender, setup: ColdSetup) -> float:
    """Share of evaluated customers whose scores over the cold items are not all equal."""
    spread = []
    for start in range(0, len(setup.users), 1024):
        scores = model.score(setup.users[start : start + 1024])[:, setup.cold_items]  # (B, n_cold)
        spread.append(np.ptp(scores, axis=1) > 1e-6)
    return float(np.concatenate(spread).mean())


def evaluate_model(name: str, model: Recommender, setup: ColdSetup) -> dict:
    """Fit on the training part, then score the ``full`` and ``cold`` rankings."""
    started = time.perf_counter()
    model.fit(setup.train)
    record: dict = {"fit_seconds": time.perf_counter() - started}
    k = max(KS)
    for scope, candidates in (("full", None), ("cold", setup.cold_items)):
        started = time.perf_counter()
        recs, _ = model.recommend(setup.users, k=k, exclude_seen=True, candidates=candidates)
        record[f"{scope}_seconds"] = time.perf_counter() - started
        record[scope] = summarise(recs, setup.truth)
        record[scope]["cold_share_of_lists"] = float(np.isin(recs, setup.cold_items).mean())
    record["ranks_cold"] = cold_score_spread(model, setup)
    print(
        f"  {name}: fit {record['fit_seconds']:.1f} s; recall@{k} full {record['full'][f'recall@{k}']:.4f}, "
        f"cold-only {record['cold'][f'recall@{k}']:.4f}"
    )
    return record


def random_baseline(setup: ColdSetup, repeats: int = 20) -> dict:
    """Seeded random rankings of the same candidates (the customer's training items excluded),
    averaged over ``repeats`` seeds so that the reference itself is not noisy."""
    seen = setup.train.matrix("binary")[setup.users]
    k = max(KS)
    record: dict = {"fit_seconds": 0.0, "ranks_cold": 1.0, "repeats": repeats}
    for scope, candidates in (("full", None), ("cold", setup.cold_items)):
        allowed = np.zeros(setup.train.n_items, dtype=bool)
        allowed[candidates if candidates is not None else slice(None)] = True
        runs = []
        for seed in range(repeats):
            rng = np.random.default_rng(seed)
            scores = np.where(allowed, rng.random((len(setup.users), setup.train.n_items)), -np.inf)
            scores[seen.nonzero()] = -np.inf
            recs = np.argsort(-scores, axis=1)[:, :k]  # (n_users, k)
            runs.append(
                {**summarise(recs, setup.truth), "cold_share_of_lists": float(np.isin(recs, setup.cold_items).mean())}
            )
        record[scope] = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
    return record


def table(record: dict, k: int) -> str:
    """Markdown table: one row per model, ``full`` and ``cold`` rankings at cut-off ``k``."""
    lines = [
        f"| model | full R@{k} | full NDCG@{k} | full HR@{k} | cold share of top {max(KS)} | cold-only R@{k} | "
        f"cold-only NDCG@{k} | cold-only HR@{k} | ranks cold items | fit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in record["models"].items():
        full, cold = r["full"], r["cold"]
        lines.append(
            f"| {name} | {full[f'recall@{k}']:.4f} | {full[f'ndcg@{k}']:.4f} | {full[f'hr@{k}']:.4f} | "
            f"{full['cold_share_of_lists']:.3f} | {cold[f'recall@{k}']:.4f} | {cold[f'ndcg@{k}']:.4f} | "
            f"{cold[f'hr@{k}']:.4f} | {r['ranks_cold']:.2f} | {r['fit_seconds']:.1f} |"
        )
    return "\n".join(lines)


def make_model(name: str, encoder: str, cache_dir: str | None) -> Recommender:
    if name == "content":
        return create_model("content", encoder=encoder, cache_dir=cache_dir)
    return create_model(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of the public datasets")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--encoder", default="minilm", help="encoder of the content model")
    parser.add_argument("--cache-dir", default=None, help="item-vector cache folder of the content model")
    parser.add_argument("--test-days", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "text_coldstart.json")
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset(args.shared / DATA_FILE)
    setup = cold_setup(dataset, args.test_days)
    print(f"{dataset!r}; split at {setup.info['cutoff_date']}")
    print("  " + ", ".join(f"{key}: {value}" for key, value in setup.info.items()))
    models = {
        name: evaluate_model(name, make_model(name, args.encoder, args.cache_dir), setup)
        for name in args.models.split(",")
    }
    models["random"] = random_baseline(setup)
    record = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(["python benchmarks/text_coldstart.py", *sys.argv[1:]]),
        "dataset": "online-retail",
        "protocol": f"temporal, last {args.test_days:g} days; truth = cold items bought by customers with history",
        "content_encoder": args.encoder,
        "ks": list(KS),
        "setup": setup.info,
        "models": models,
        "total_seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    for k in (max(KS), min(KS)):
        print(f"\n{table(record, k)}")
    print(f"done in {record['total_seconds']:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
