"""Warm vs cold retraining on the demo shop: time and full-catalogue quality.

    flock /work/coord/cpu.lock .venv/bin/python benchmarks/warmstart.py                 # ALS, SASRec, LightGCN
    flock /work/coord/cpu.lock .venv/bin/python benchmarks/warmstart.py --models als --day 100

The shop (3,000 items, 2,000 shoppers, 120 days, seed 7) is seen twice: "previous" holds the events
before day N-1 and the items created by then; "now" holds the events before day N and every item
created by then (new items and new shoppers included). A previous model is fitted on "previous";
then the model for "now" is fitted cold (the default settings) and warm (``warm_start`` from the
previous model, ids matched, new items from their text, ``warm_epochs``). Both are scored on the
following days (day N to the end): per shopper, the items they had no event with before day N,
ranked against the whole catalogue minus their history (NDCG@10, recall@20). Text vectors come from
the default encoder (cached). Results go to benchmarks/results/warmstart.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shoprec.data import dataset_from_frames
from shoprec.data.demo import generate_demo_shop
from shoprec.eval.metrics.accuracy import ndcg, recall
from shoprec.models import create_model
from shoprec.models.warmstart import index_map

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SHOPREC_VECTOR_CACHE", REPO.parent / "cache" / "vectors"))
DAY = 86_400
MODELS = {
    "als": ("als", {"num_threads": 2}),
    "sasrec": ("sasrec", {}),
    "lightgcn": ("lightgcn", {}),
}


def periods(day: int, seed: int):
    shop = generate_demo_shop(seed=seed)
    events, items = shop.interactions, shop.items
    start = int(events["timestamp"].min())
    old_end, now_end = start + (day - 1) * DAY, start + day * DAY
    old_items = items[items["created_at"] < old_end]
    old_events = events[(events["timestamp"] < old_end) & events["item_id"].isin(old_items["item_id"])]
    old = dataset_from_frames(old_items, old_events, name="previous")
    now = dataset_from_frames(items[items["created_at"] < now_end], events[events["timestamp"] < now_end], name="now")
    later = events[events["timestamp"] >= now_end]
    users, item_idx = now.user_vocab.index(later["user_id"]), now.item_vocab.index(later["item_id"])
    keep = (users >= 0) & (item_idx >= 0)
    truth = sp.csr_matrix((np.ones(keep.sum()), (users[keep], item_idx[keep])), shape=(now.n_users, now.n_items))
    truth.data[:] = 1
    seen = now.matrix("binary")
    truth = (truth - truth.multiply(seen)).tocsr()
    truth.eliminate_zeros()
    return old, now, truth


def vectors(dataset):
    from shoprec.text.encoders import load_encoder
    from shoprec.text.vectors import item_vectors

    encoder = load_encoder("auto", sample_texts=dataset.items["title"].astype(str).tolist()[:500])
    return item_vectors(dataset, encoder, cache_dir=CACHE), encoder.name


def score(model, truth) -> dict:
    users = np.flatnonzero(truth.getnnz(axis=1) > 0)
    recs, _ = model.recommend(users, k=20)
    rows = truth[users]
    return {
        "users": len(users),
        "ndcg@10": round(float(ndcg(recs, rows, 10).mean()), 5),
        "recall@20": round(float(recall(recs, rows, 20).mean()), 5),
    }


def fitted(name: str, settings: dict, dataset, text, warm=None):
    model = create_model(name, **settings)
    if hasattr(model, "set_item_vectors"):
        model.set_item_vectors(text)
    if warm is not None:
        model.warm_start(*warm)
    began = time.perf_counter()
    model.fit(dataset)
    seconds = time.perf_counter() - began
    log = getattr(model, "log", None)
    epochs = getattr(log, "epochs", None) if log is not None else None
    return model, round(seconds, 2), epochs


def run_one(key: str, day: int, seed: int) -> dict:
    name, settings = MODELS[key]
    old, now, truth = periods(day, seed)
    (old_text, encoder), (now_text, _) = vectors(old), vectors(now)
    previous, prev_seconds, _ = fitted(name, settings, old, old_text)
    cold, cold_seconds, cold_epochs = fitted(name, settings, now, now_text)
    maps = (
        previous,
        index_map(now.item_vocab.ids(), old.item_vocab.ids()),
        index_map(now.user_vocab.ids(), old.user_vocab.ids()),
    )
    warm, warm_seconds, warm_epochs = fitted(name, settings, now, now_text, warm=maps)
    default_epochs = getattr(cold.config, "epochs", None)
    return {
        "model": key,
        "day": day,
        "seed": seed,
        "encoder": encoder,
        "previous": {"users": old.n_users, "items": old.n_items, "events": len(old)},
        "now": {"users": now.n_users, "items": now.n_items, "events": len(now), "new_items": int((maps[1] < 0).sum())},
        "cold": {"seconds": cold_seconds, "epochs": cold_epochs or default_epochs, **score(cold, truth)},
        "warm": {"seconds": warm_seconds, "epochs": warm_epochs or cold.config.warm_epochs, **score(warm, truth)},
        "previous_model": {"seconds": prev_seconds, **score(previous_on_now(previous, old, now), truth)}
        if key == "als"
        else None,
    }


def previous_on_now(previous, old, now):
    """The previous ALS model answering for "now"'s users (no retraining at all), ids mapped."""
    model = create_model("als", **MODELS["als"][1])
    users, items = (
        index_map(now.user_vocab.ids(), old.user_vocab.ids()),
        index_map(now.item_vocab.ids(), old.item_vocab.ids()),
    )
    d = previous.user_factors.shape[1]
    model.user_factors = np.where((users >= 0)[:, None], previous.user_factors[np.maximum(users, 0)], 0).astype(
        np.float32
    )
    model.item_factors = np.where((items >= 0)[:, None], previous.item_factors[np.maximum(items, 0)], 0).astype(
        np.float32
    )
    model.item_factors = model.item_factors.reshape(-1, d)
    model.n_users, model.n_items = now.n_users, now.n_items
    model.seen = now.matrix("binary")
    model.fallback_scores = np.asarray(model.seen.sum(axis=0), dtype=np.float32).ravel()
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--day", type=int, default=110, help="the new day N (default 110 of 120)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "warmstart.json"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.day, args.seed)))
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    results = []
    for key in args.models.split(","):
        began = time.perf_counter()
        cmd = [sys.executable, __file__, "--one", key, "--day", str(args.day), "--seed", str(args.seed)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        row = json.loads(out)
        row["wall_seconds"] = round(time.perf_counter() - began, 1)
        results.append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps({"commit": commit.strip(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
