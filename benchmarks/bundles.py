"""Bundle recommendation benchmark: basket completion, annotated bundles, optimality gap, latency.

    .venv/bin/python benchmarks/bundles.py                  # everything (about 10 minutes on 1 core)
    .venv/bin/python benchmarks/bundles.py --quick          # fewer bundles, to try the script

Protocols (results in ``benchmarks/results/bundles.json``, markdown tables on stdout):

- **Online Retail basket completion.** Invoices are baskets. Test = invoices of the last 30 days
  with at least 4 distinct items (a seeded sample of ``--limit``); a random half of each is hidden,
  the other half is the cart (anchor), and every method generates as many items as were hidden;
  precision, recall and F1 against the hidden items (items never sold before the test window count
  as misses for every method). Training = all invoices before the window. The catalogue has no
  categories: they are derived from the text (k-means, 60 clusters, over the minilm-int8 vectors of
  the descriptions), so "one per category" means one per text cluster.
- **BundleRec electronic.** Sessions are ordered by time: the first 60 % give the training
  bundles (annotated bundles as baskets), the next 20 % validation (afterwards training too), the
  last 20 % test. For each
  test bundle: (a) from one random member, generate the other k-1 items; (b) from the bundle's
  intent text alone, generate k items. Precision, recall, F1 and the exact category-mix rate
  (whole generated bundle vs the annotated one, leaf categories with multiplicity).
- Baselines, same training data: most co-purchased with the anchors (raw counts; from an intent:
  the nearest item by text, then its most co-purchased), nearest text neighbours, popularity.
- **Tuning**: the bundle weights are chosen by coordinate search on the validation slice only
  (Online Retail: the 30 days before the test window, model fitted on what precedes them;
  BundleRec: the validation sessions, model fitted on the training sessions); the test data is
  scored once with the chosen settings.
- **Optimality gap**: greedy, local search and genetic vs the exact solver (ILP, HiGHS) on the
  same 30-candidate instances built from test anchors, with size 2-6 and (Online Retail) a budget.
- **Latency**: synthetic catalogues of 1k, 10k and 100k items; a bundle of 3-5 items under a
  budget drawn from all items as candidates (scoring every item, pruning to a pool, solving), and
  greedy over every candidate without pruning (lazy pair rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bundle_tasks import (  # noqa: E402
    Baselines,
    before,
    bundle_dataset,
    bundle_method,
    bundle_tasks,
    completion_tasks,
    score_method,
)
from bundle_tuning import gap_study, latency_study, random_gap_study, tune  # noqa: E402
from docblock import write_block  # noqa: E402 (benchmarks/ is the script folder)
from shoprec.bundles.categories import text_categories, with_categories  # noqa: E402
from shoprec.bundles.complements import ComplementConfig  # noqa: E402
from shoprec.bundles.recommender import BundleConfig, BundleRecommender  # noqa: E402
from shoprec.data.adapters import load_dataset  # noqa: E402
from shoprec.data.adapters.bundlerec import load_bundlerec, read_bundles  # noqa: E402
from shoprec.text.encoders import OnnxMiniLMEncoder  # noqa: E402
from shoprec.text.vectors import item_vectors  # noqa: E402
from shoprec.timeunits import DAY  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHOPREC_SHARED_DATA", REPO.parent / "shared" / "datasets"))
CACHE = REPO.parent / "cache" / "vectors"
RESULTS = REPO / "benchmarks" / "results" / "bundles.json"
CLUSTERS = 60
METHODS = ("bundle (greedy)", "bundle (genetic)", "co-purchase", "text neighbours", "popularity")


def methods(rec: BundleRecommender, base: Baselines, one_per_category: bool, genetic: bool) -> dict:
    out = {"bundle (greedy)": bundle_method(rec, "greedy", one_per_category)}
    if genetic:
        out["bundle (genetic)"] = bundle_method(rec, "genetic", one_per_category)
    out.update({"co-purchase": base.co_purchase, "text neighbours": base.text, "popularity": base.popular})
    return out


def fit(train, vectors, settings: dict, encode=None) -> BundleRecommender:
    return BundleRecommender(settings["bundle"], settings["complements"], encode=encode).fit(train, vectors)


def online_retail(args, encoder) -> dict:
    ds = load_dataset(SHARED / "online-retail-2010-2011/online_retail.parquet", "online-retail", progress=False)
    vectors = item_vectors(ds, encoder, cache_dir=CACHE)
    ds = with_categories(ds, text_categories(vectors, ds.items["title"].tolist(), CLUSTERS, seed=0))
    end = int(ds.interactions["timestamp"].max()) + 1
    test_start, val_start = end - 30 * DAY, end - 60 * DAY
    val_tasks = completion_tasks(ds, val_start, test_start, args.val_limit, args.seed)
    tuned = tune(lambda s: fit(before(ds, val_start), vectors, s), val_tasks, args.quick)
    train = before(ds, test_start)
    tasks = completion_tasks(ds, test_start, end, args.limit, args.seed + 1)
    rec = fit(train, vectors, tuned["settings"])
    chosen = methods(rec, Baselines.fit(train, vectors), tuned["settings"]["one_per_category"], True)
    rows = {}
    for name, method in chosen.items():
        subset = tasks[: args.genetic_limit] if "genetic" in name else tasks
        rows[name] = score_method(method, subset)
        print(f"  online retail {name}: {rows[name]}", flush=True)
    if args.genetic_limit < len(tasks):  # greedy on the genetic solver's subset, for a like-for-like row
        name = f"bundle (greedy, first {args.genetic_limit})"
        rows[name] = score_method(chosen["bundle (greedy)"], tasks[: args.genetic_limit])
    gap = gap_study(rec, [t.anchors[:1] for t in tasks[: args.gap_limit]], budget=25.0)
    return {"test": rows, "tuning": tuned["log"], "chosen": _plain(tuned["settings"]), "gap": gap}


def bundlerec(args, encoder) -> dict:
    folder = SHARED / "bundlerec-electronic"
    full = load_bundlerec(folder)
    truth = read_bundles(folder, full)
    vectors = item_vectors(full, encoder, cache_dir=CACHE)
    intents = encoder.encode(list(truth.intent))
    sessions = sorted(set(truth.session_id.tolist()), key=lambda s: (truth.timestamp[truth.session_id == s][0], s))
    rank = {s: i / len(sessions) for i, s in enumerate(sessions)}
    share = np.array([rank[s] for s in truth.session_id])
    train_mask, val_mask, test_mask = share < 0.6, (share >= 0.6) & (share < 0.8), share >= 0.8
    categories = full.items["category"].to_numpy(dtype=object)
    val_item, _ = bundle_tasks(truth, val_mask, categories, intents, args.seed)
    train_v = bundle_dataset(full, truth, train_mask)
    tuned = tune(lambda s: fit(train_v, vectors, s), val_item, args.quick)
    train = bundle_dataset(full, truth, train_mask | val_mask)
    by_item, by_intent = bundle_tasks(truth, test_mask, categories, intents, args.seed + 1)
    rec = fit(train, vectors, tuned["settings"])
    base = Baselines.fit(train, vectors)
    out: dict = {"item": {}, "intent": {}}
    for task_name, tasks in (("item", by_item), ("intent", by_intent)):
        for name, method in methods(rec, base, tuned["settings"]["one_per_category"], True).items():
            out[task_name][name] = score_method(method, tasks, categories)
            print(f"  bundlerec {task_name} {name}: {out[task_name][name]}", flush=True)
    out["gap"] = gap_study(rec, [t.anchors for t in by_item[: args.gap_limit]], budget=None)
    out.update(tuning=tuned["log"], chosen=_plain(tuned["settings"]), split={"train": int(train_mask.sum())})
    out["split"].update(validation=int(val_mask.sum()), test=int(test_mask.sum()))
    return out


def _plain(settings: dict) -> dict:
    return {
        "bundle": dataclasses.asdict(settings["bundle"]),
        "complements": dataclasses.asdict(settings["complements"]),
        "one_per_category": settings["one_per_category"],
    }


def _cell(column: str, value) -> str:
    if isinstance(value, int) or column == "bundles":
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}" if column.endswith(("ms", "ms_per_bundle", "_s")) else f"{value:.4f}"
    return str(value)


def table(rows: dict, columns: tuple[str, ...]) -> str:
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_cell(c, row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def report(results: dict) -> str:
    cols = ("precision", "recall", "f1", "ms_per_bundle", "bundles")
    out = []
    if "online_retail" in results:
        out += ["### Online Retail basket completion (hide half, generate the rest)"]
        out += [table(results["online_retail"]["test"], cols)]
    if "bundlerec" in results:
        mix = ("precision", "recall", "f1", "category_mix", "ms_per_bundle", "bundles")
        out += ["### BundleRec electronic: from one item", table(results["bundlerec"]["item"], mix)]
        out += ["### BundleRec electronic: from the intent text", table(results["bundlerec"]["intent"], mix)]
    gaps = {name: results[name]["gap"] for name in ("online_retail", "bundlerec") if name in results}
    if "gap_random" in results:
        gaps["random quadratic instances"] = results["gap_random"]
    for name, rows in gaps.items():
        out += [f"### Optimality gap vs exact ({name})"]
        out += [table(rows, ("mean_gap", "max_gap", "optimal_share", "ms", "instances"))]
    if "latency" in results:
        columns = tuple(next(iter(results["latency"].values())).keys())
        out += ["### Latency (median ms per bundle, synthetic catalogues)", table(results["latency"], columns)]
    return "\n\n".join(out)


def write_doc(text: str) -> None:
    write_block("bundles", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=800, help="Online Retail test invoices at most")
    parser.add_argument("--val-limit", type=int, default=150, help="Online Retail validation invoices at most")
    parser.add_argument(
        "--genetic-limit", type=int, default=200, help="Online Retail test invoices also solved by the genetic solver"
    )
    parser.add_argument("--gap-limit", type=int, default=60, help="instances for the optimality gap")
    parser.add_argument("--sections", default="online_retail,bundlerec,latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    parser.add_argument("--doc", action="store_true", help="only write the saved results into docs/benchmarks.md")
    args = parser.parse_args()
    if args.doc:
        write_doc(report(json.loads(RESULTS.read_text())))
        return
    if args.quick:
        args.limit, args.val_limit, args.genetic_limit, args.gap_limit = 150, 80, 40, 10
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)  # one BLAS thread: small matrix products slow down 20x when threads contend
    began = time.perf_counter()
    encoder = OnnxMiniLMEncoder(threads=1)
    results: dict = {}
    sections = args.sections.split(",")
    if "online_retail" in sections:
        results["online_retail"] = online_retail(args, encoder)
    if "bundlerec" in sections:
        results["bundlerec"] = bundlerec(args, encoder)
    if "latency" in sections:
        results["gap_random"] = random_gap_study(10 if args.quick else 40)
        results["latency"] = latency_study(args.quick)
    results["meta"] = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "seconds": time.perf_counter() - began,
        "command": "python benchmarks/bundles.py" + (" --quick" if args.quick else ""),
        "encoder": "minilm-int8",
        "defaults": {
            "bundle": dataclasses.asdict(BundleConfig()),
            "complements": dataclasses.asdict(ComplementConfig()),
        },
    }
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
    print(report(results))


if __name__ == "__main__":
    main()
