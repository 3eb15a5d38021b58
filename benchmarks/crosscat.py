"""Cross-category recommendation: attention model and graph fallback against restricted baselines.

    .venv/bin/python benchmarks/crosscat.py                     # every run (a few minutes on 2 cores)
    .venv/bin/python benchmarks/crosscat.py --runs demo

Protocol (:func:`shoprec.eval.crosscat.cross_category_split`): temporal, the last 30 days are the
test window; the truth of a user is what they bought in it in a category they never bought in
training; every method ranks the full catalogue restricted to categories new to the user's
purchase history. Runs:

- ``demo``: the generated demo shop (``default`` preset), its true leaf categories;
- ``demo-interacted``: the same shop with histories of every event type, so the truth holds only
  purchases in categories the shopper never even viewed (views predict purchases in the same
  category, which the ``demo`` run leaves to the baselines that read views: EASE);
- ``retail``: UCI Online Retail, which has no categories: k-means (:data:`RETAIL_CLUSTERS`
  clusters, fixed before looking at results) over the items' text vectors.

Methods: ``attention`` (learned, id + text vectors), ``attention-id`` (learned, no text), ``graph``
(parameter-free co-basket attention), and the baselines ``popularity``, ``item-graph`` (co-basket
cosine summed over the whole history) and ``ease``, each restricted to new categories. Text vectors
come from the ``auto`` encoder, through the cache at ``../cache/vectors`` when that folder exists.
Torch runs on one thread. Results go to ``benchmarks/results/crosscat.json``; a markdown table is
printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from docblock import write_block  # noqa: E402 (benchmarks/ is the script folder)
from shoprec.eval.crosscat import cross_category_split, evaluate_cross_category
from shoprec.pipeline.crosscat import CrossCategory, derive_categories

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
DEFAULT_CACHE = Path(os.environ.get("SHOPREC_VECTOR_CACHE", REPO.parent / "cache" / "vectors"))
RETAIL = "online-retail-2010-2011/online_retail.parquet"
RETAIL_CLUSTERS = 50
"""k-means categories for Online Retail: about 73 items each over its 3,659 products."""
TEST_DAYS = 30
MODELS: dict[str, dict] = {
    "attention": {"mode": "attention", "text": True},
    "attention-id": {"mode": "attention", "text": False},
    "graph": {"mode": "graph", "text": False},
}
"""Label -> CrossCategory settings (``text``: hand it the item text vectors)."""
ALL_EVENTS = ("view", "click", "cart", "purchase")
RUNS: dict[str, dict] = {
    "demo": {"title": "demo shop (default preset), true leaf categories", "data": "demo", "history": ("purchase",)},
    "demo-interacted": {
        "title": "demo shop, histories of every event type: truth = purchases in categories never interacted with",
        "data": "demo",
        "history": ALL_EVENTS,
    },
    "retail": {"title": "UCI Online Retail, k-means categories", "data": "retail", "history": ("purchase",)},
}
"""Run -> data set and the event types that make histories (and define "a category new to the user")."""


@functools.cache
def load_data(name: str, shared: Path, cache: Path) -> tuple:
    """(dataset, item text vectors, category labels, notes) of ``demo`` or ``retail``, loaded once
    (the vectors of the whole dataset only derive Online Retail's categories)."""
    from shoprec.models.textside import TextVectors

    cache_dir = str(cache) if cache.is_dir() else None
    if name == "demo":
        from shoprec.data.demo import generate_preset

        dataset = generate_preset("default").to_dataset()
        vectors = TextVectors("auto", cache_dir=cache_dir).vectors(dataset)
        categories = dataset.items["category"].astype(str).to_numpy()
        return dataset, vectors, categories, {"categories": "true leaf categories"}
    from shoprec.data.adapters import load_dataset

    dataset = load_dataset(shared / RETAIL, "online-retail", progress=False)
    vectors = TextVectors("auto", cache_dir=cache_dir).vectors(dataset)
    categories = derive_categories(vectors, RETAIL_CLUSTERS, seed=0)
    return dataset, vectors, categories, {"categories": f"k-means over text vectors, {RETAIL_CLUSTERS} clusters"}


def training_vectors(train, cache: Path) -> np.ndarray:
    """Item text vectors of the training data: item text includes reviews, and a review written
    after the cutoff must not reach a model (the demo shop has reviews; Online Retail has none)."""
    from shoprec.models.textside import TextVectors

    return TextVectors("auto", cache_dir=str(cache) if cache.is_dir() else None).vectors(train)


def run_one(run: str, shared: Path, cache: Path) -> dict:
    """Fit every model on one run's training data and evaluate them and the baselines."""
    spec = RUNS[run]
    began = time.perf_counter()
    dataset, vectors, categories, notes = load_data(spec["data"], shared, cache)
    prepared = time.perf_counter()
    split = cross_category_split(dataset, categories, test_days=TEST_DAYS, history_events=spec["history"])
    vectors = training_vectors(split.train, cache)
    models, fits = {}, {}
    for label, settings in MODELS.items():
        settings = {**settings, "history_events": spec["history"]}
        text = vectors if settings.pop("text") else None
        start = time.perf_counter()
        models[label] = CrossCategory(**settings).fit(split.train, text, categories)
        fits[label] = time.perf_counter() - start
        print(f"   {run}: fitted {label} in {fits[label]:.1f} s", flush=True)
    results = evaluate_cross_category(split, models)
    for label, model in models.items():
        results[label].update(
            fit_s=fits[label], training=model.info.get("training"), fallback=model.info.get("fallback")
        )
    return {
        "run": run,
        "title": spec["title"],
        "dataset": dataset.describe(),
        "notes": notes,
        "split": split.info,
        "results": results,
        "load_and_encode_s": prepared - began,  # 0 when an earlier run loaded the same data
        "wall_s": time.perf_counter() - began,
    }


def table(records: list[dict]) -> str:
    lines = [
        "| run | method | HR@10 | NDCG@10 | Recall@20 | attention entropy (uniform) | fit s | score s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for record in records:
        for label, r in record["results"].items():
            entropy = f"{r['attention_entropy']:.2f} ({r['attention_entropy_uniform']:.2f})" if "mode" in r else ""
            lines.append(
                f"| {record['run']} | {label} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['recall@20']:.4f} | "
                f"{entropy} | {r['fit_s']:.1f} | {r['score_s']:.1f} |"
            )
    return "\n".join(lines)


def write_doc(text: str) -> None:
    write_block("crosscat", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder of the public datasets")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="item-vector cache folder (used if present)")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma-separated: " + ", ".join(RUNS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "crosscat.json")
    parser.add_argument("--doc", action="store_true", help="only write the saved results into docs/benchmarks.md")
    args = parser.parse_args()
    if args.doc:
        write_doc(table(json.loads(args.out.read_text())["runs"]))
        return
    torch.set_num_threads(1)
    started = time.perf_counter()
    records = []
    for run in args.runs.split(","):
        if run not in RUNS:
            parser.error(f"unknown run {run!r}; choose from {', '.join(RUNS)}")
        print(f"== {run}: {RUNS[run]['title']}", flush=True)
        records.append(run_one(run, args.shared, args.cache))
    meta = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "torch_threads": torch.get_num_threads(),
        "total_seconds": time.perf_counter() - started,
        "command": " ".join(["python benchmarks/crosscat.py", *sys.argv[1:]]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "runs": records}, indent=2, default=float))
    print(f"\n{table(records)}\n\ndone in {meta['total_seconds']:.0f} s; results in {args.out}")


if __name__ == "__main__":
    main()
